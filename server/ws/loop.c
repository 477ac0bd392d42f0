/* SPDX-License-Identifier: MIT */
/*
 * The transport's thread ("ws-loop"): epoll over every socket plus an eventfd for work queued by other threads
 * (new sockets from MHD's upgrade callback, frames and decisions from rt-worker), timers every 250 ms, and one
 * write per socket per iteration. Nothing here waits on anything but epoll. Start and stop: main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "ws/ws_int.h"

void
wsq_free(struct wsq *it)
{
    if (!it)
        return;
    if (it->kind == WQ_CONN && it->fd > 0)
        close(it->fd);
    free(it->extra);
    free(it->frame);
    free(it->users);
    for (size_t i = 0; i < it->nframes; i++)
        free(it->frames[i].data);
    free(it->frames);
    explicit_bzero(it->verifier, sizeof it->verifier);
    free(it);
}

void
ws_enqueue(struct ws *w, struct wsq *it)
{
    uint64_t one = 1;

    pthread_mutex_lock(&w->qmu);
    if (w->qtail)
        w->qtail->next = it;
    else
        w->q = it;
    w->qtail = it;
    pthread_mutex_unlock(&w->qmu);
    if (write(w->efd, &one, sizeof one) < 0) {
        /* the counter is saturated only if the loop is gone; the item is freed by ws_stop */
    }
}

/* End of a loop iteration: write every socket that got frames. */
static void
flush_dirty(struct ws *w)
{
    while (w->dirty) {
        struct ws_conn *c = w->dirty;
        w->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        if (!c->gone)
            conn_flush(c);
    }
}

static void
drain_queue(struct ws *w)
{
    struct wsq *it;

    pthread_mutex_lock(&w->qmu);
    it = w->q;
    w->q = w->qtail = NULL;
    pthread_mutex_unlock(&w->qmu);
    while (it) {
        struct wsq *next = it->next;
        switch (it->kind) {
        case WQ_CONN:
            if (w->stopping) {
                ws_forget(w, it->ip, it->authed ? POOL_USER : POOL_UNAUTH, it->user);
                break; /* wsq_free closes it */
            }
            conn_new(w, it);
            it->fd = -1; /* the socket's now */
            w->adopted_since_trim++;
            w->last_adopt = clock_mono_ms();
            break;
        case WQ_STOP:
            if (!w->stopping) {
                w->stopping = true;
                w->stop_deadline = clock_mono_ms() + WS_CLOSE_FLUSH_MS;
                for (struct ws_conn *c = w->conns, *nx; c; c = nx) {
                    nx = c->next;
                    conn_close(c, 1001, "server shutting down");
                }
            }
            break;
        default:
            if (!w->stopping)
                hub_handle(w, it);
            break;
        }
        wsq_free(it);
        it = next;
    }
}

static void
tick(struct ws *w)
{
    int64_t now = clock_mono_ms();

    for (struct ws_conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        conn_tick(c, now);
    }
    /* The one churn left in a connect storm is not ours: each handshake's libmicrohttpd pool (24 KiB, from the
     * heap at webserver.connection_memory <= 32KiB) is freed when its socket comes here, and glibc keeps the pages
     * of those in flight together. Once a good number came, and then a quiet moment, hand free pages back (a pass
     * over the heap: milliseconds, at most every few seconds). */
    if (w->adopted_since_trim >= 256 && now - w->last_adopt > 2000 && now - w->trimmed_at > 5000) {
        malloc_trim(128 * 1024);
        w->adopted_since_trim = 0;
        w->trimmed_at = now;
    }
}

static void *
loop_main(void *arg)
{
    struct ws *w = arg;
    struct epoll_event evs[256];
    int64_t next_tick = clock_mono_ms() + 250;

    for (;;) {
        int64_t wait = next_tick - clock_mono_ms();
        int n = epoll_wait(w->ep, evs, 256, wait > 0 ? (int)wait : 0);

        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == w) {
                uint64_t v;
                if (read(w->efd, &v, sizeof v) < 0) {
                    /* EAGAIN: another wake-up already took the count */
                }
                drain_queue(w);
            } else {
                conn_io(evs[i].data.ptr, evs[i].events);
            }
        }
        if (clock_mono_ms() >= next_tick) {
            next_tick = clock_mono_ms() + 250;
            tick(w);
        }
        flush_dirty(w);
        conn_reap(w);
        if (w->stopping && (!w->conns || clock_mono_ms() >= w->stop_deadline))
            break;
    }
    while (w->conns)
        conn_free(w->conns);
    conn_reap(w);
    return NULL;
}

enum ch_status
ws_start(const struct ws_opts *o, struct ws **out, struct ch_err *err)
{
    struct ws *w = calloc(1, sizeof *w);
    struct epoll_event e = { .events = EPOLLIN };

    if (!w)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    w->o = *o;
    w->ep = w->efd = -1;
    pthread_mutex_init(&w->qmu, NULL);
    pthread_mutex_init(&w->cmu, NULL);
    w->by_id = map_new();
    w->by_user = map_new();
    w->per_ip = map_new();
    w->per_user = map_new();
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    e.data.ptr = w;
    if (!w->by_id || !w->by_user || !w->per_ip || !w->per_user || w->ep < 0 || w->efd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &e) != 0) {
        ws_stop(w);
        return ch_err_set(err, CH_ENOMEM, NULL, "cannot set up the WebSocket loop");
    }
    if (pthread_create(&w->loop, NULL, loop_main, w) != 0) {
        ws_stop(w);
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the WebSocket thread");
    }
    pthread_setname_np(w->loop, "ws-loop");
    w->loop_started = true;
    *out = w;
    return CH_OK;
}

void
ws_quiesce(struct ws *w)
{
    struct wsq *stop;

    if (!w || w->quiesced)
        return;
    w->quiesced = true;
    if (!w->loop_started)
        return;
    if ((stop = calloc(1, sizeof *stop))) {
        stop->kind = WQ_STOP;
        ws_enqueue(w, stop);
    } else {
        log_error("ws: out of memory while stopping; WebSockets are dropped without a close frame");
    }
    pthread_join(w->loop, NULL);
    w->loop_started = false;
}

void
ws_stop(struct ws *w)
{
    if (!w)
        return;
    ws_quiesce(w);
    while (w->conns)
        conn_free(w->conns);
    for (struct wsq *it = w->q, *nx; it; it = nx) {
        nx = it->next;
        if (it->kind == WQ_CONN)
            ws_forget(w, it->ip, it->authed ? POOL_USER : POOL_UNAUTH, it->user);
        wsq_free(it);
    }
    map_free(w->by_id, NULL);
    map_free(w->by_user, NULL); /* empty: every socket is gone */
    map_free(w->per_ip, NULL);
    map_free(w->per_user, NULL);
    pthread_mutex_destroy(&w->cmu);
    if (w->ep >= 0)
        close(w->ep);
    if (w->efd >= 0)
        close(w->efd);
    pthread_mutex_destroy(&w->qmu);
    free(w);
}

static uintptr_t
count_of(struct map *m, const char *key)
{
    return (uintptr_t)map_get(m, key);
}

static void
count_add(struct map *m, const char *key, int delta)
{
    uintptr_t n = count_of(m, key) + (uintptr_t)(intptr_t)delta;

    if ((intptr_t)n > 0)
        map_put(m, key, (void *)n, NULL);
    else
        map_del(m, key);
}

enum ch_status
ws_reserve(struct ws *w, const char *ip, const char *uid, const char **why)
{
    int cur = atomic_load(&w->slots);
    enum ch_status st = CH_OK;

    do {
        if (cur >= w->o.max_connections) {
            *why = "too many realtime connections on this server; retry later";
            return CH_EUNAVAIL;
        }
    } while (!atomic_compare_exchange_weak(&w->slots, &cur, cur + 1));
    pthread_mutex_lock(&w->cmu);
    if (w->o.max_per_ip > 0 && count_of(w->per_ip, ip) >= (uintptr_t)w->o.max_per_ip) {
        *why = "too many realtime connections from your address (realtime.max_connections_per_ip)";
        st = CH_ELIMIT;
    } else if (uid && w->o.max_per_user > 0 && count_of(w->per_user, uid) >= (uintptr_t)w->o.max_per_user) {
        *why = "too many realtime connections for this account (realtime.max_connections_per_user)";
        st = CH_ELIMIT;
    } else if (!uid && w->o.max_unauthenticated > 0 && w->unauthenticated >= w->o.max_unauthenticated) {
        *why = "too many realtime connections still to say who they are; retry later";
        st = CH_ELIMIT;
    } else {
        count_add(w->per_ip, ip, 1);
        if (uid)
            count_add(w->per_user, uid, 1);
        else
            w->unauthenticated++;
    }
    pthread_mutex_unlock(&w->cmu);
    if (st != CH_OK)
        atomic_fetch_sub(&w->slots, 1);
    return st;
}

void
ws_release(struct ws *w, const char *ip, const char *uid)
{
    pthread_mutex_lock(&w->cmu);
    count_add(w->per_ip, ip, -1);
    if (uid)
        count_add(w->per_user, uid, -1);
    else
        w->unauthenticated--;
    pthread_mutex_unlock(&w->cmu);
    atomic_fetch_sub(&w->slots, 1);
}

bool
ws_admit_user(struct ws *w, const char *uid)
{
    bool ok = true;

    pthread_mutex_lock(&w->cmu);
    w->unauthenticated--; /* out of the pool, whatever happens */
    if (w->o.max_per_user > 0 && count_of(w->per_user, uid) >= (uintptr_t)w->o.max_per_user)
        ok = false;
    else
        count_add(w->per_user, uid, 1);
    pthread_mutex_unlock(&w->cmu);
    return ok;
}

void
ws_forget(struct ws *w, const char *ip, int pool, const char *uid)
{
    pthread_mutex_lock(&w->cmu);
    count_add(w->per_ip, ip, -1);
    if (pool == POOL_USER)
        count_add(w->per_user, uid, -1);
    else if (pool == POOL_UNAUTH)
        w->unauthenticated--;
    pthread_mutex_unlock(&w->cmu);
    atomic_fetch_sub(&w->slots, 1);
}

void
ws_adopt(struct ws *w, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra_in, size_t extra_len,
         const struct principal *who, const char *ip)
{
    struct wsq *it = calloc(1, sizeof *it);
    int own = -1;

    /* The transport keeps its own descriptor and hands the connection back to MHD at once, so MHD frees the
     * request's memory pool (up to webserver.connection_memory) instead of holding it for the socket's life.
     * MHD only closes its descriptor (no shutdown(), see the websocket tests), so ours stays open. */
    if (it && (!extra_len || (it->extra = malloc(extra_len))))
        own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (extra_len && it && it->extra)
        memcpy(it->extra, extra_in, extra_len);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    if (own < 0) {
        if (it)
            free(it->extra);
        free(it);
        ws_release(w, ip, who ? who->user.id : NULL);
        return;
    }
    it->kind = WQ_CONN;
    it->fd = own;
    snprintf(it->ip, sizeof it->ip, "%s", ip);
    it->extra_len = extra_len;
    if (who) {
        it->authed = true;
        snprintf(it->user, sizeof it->user, "%s", who->user.id);
        memcpy(it->verifier, who->verifier, sizeof it->verifier);
    }
    ws_enqueue(w, it);
}

size_t
ws_connections(struct ws *w)
{
    return (size_t)atomic_load(&w->slots);
}
