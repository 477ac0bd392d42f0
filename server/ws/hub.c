/* SPDX-License-Identifier: MIT */
/*
 * The realtime hub (see hub.h). Everything about a connection happens on the ws-loop thread, so connections and
 * wslay contexts need no locks; other threads hand work over through `q` (mutex + eventfd).
 *
 * Delivery of durable events: the chat model calls our listener in stream order on its follower thread; we
 * serialise the frame once, enqueue it, and the loop appends it to the replay ring and writes it to every socket
 * of every user in its audience. A client resuming with a cursor gets the ring's later events for rooms it is in
 * (the ring and the live fan-out are on one thread, so nothing is skipped or sent twice), or "reset" when its
 * cursor is older than the ring.
 *
 * Slow consumers: a socket whose unsent bytes pass queue_hard, or stay above queue_soft for soft_grace_ms, gets
 * no more events, a close (1008 / 1013) after its backlog, and is cut off if it does not drain within 5 s.
 */
#include "ws/hub.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "base/map.h"
#include "chat/chat.h"
#include "json/json.h"
#include "log/log.h"
#include "store/store.h"

#define DOOM_GRACE_MS 5000
/* Frames are gathered per connection and written with one send() per loop iteration: a burst of events costs
 * one system call per socket, not two per frame (wslay writes header and payload separately). */
#define OUT_MAX (64 * 1024)
#define CLOSE_FLUSH_MS 2000

enum qkind { Q_CONN, Q_CHANGE, Q_TYPING, Q_PRESENCE, Q_REVOKED, Q_AUTH, Q_STOP };

struct qitem {
    enum qkind kind;
    struct qitem *next;
    /* Q_CONN */
    int fd;
    char *extra;
    size_t extra_len;
    bool authed;
    struct principal who; /* Q_CONN, Q_AUTH */
    /* Q_CHANGE */
    uint64_t seq;
    char room[65], type[32], subject_user[65];
    char *frame;
    size_t frame_len;
    char (*aud)[65];
    size_t naud;
    /* Q_TYPING, Q_PRESENCE, Q_REVOKED */
    char user[65], thread[65], key[256], status[16];
    bool deleted;
    /* Q_AUTH */
    uint64_t conn_id;
    bool ok;
};

struct ws_conn {
    uint64_t id;
    int fd;
    wslay_event_context_ptr ctx;
    struct hub *h;
    char *extra;
    size_t extra_len, extra_off;
    bool authed;     /* credentials known (upgrade or hello) */
    bool hello;      /* hello received */
    bool ready;      /* registered for events */
    bool auth_wait;  /* a hello token is being checked */
    bool doomed;     /* no more events; closing */
    bool gone;       /* freed at the end of this loop iteration */
    bool no_read;    /* a protocol violation: read nothing more, just deliver our close frame */
    struct {         /* the part of struct principal a socket needs (kept small: thousands of idle sockets) */
        struct {
            char id[ID_MAX + 1];
        } user;
        char verifier[CRYPTO_VERIFIER_HEX];
    } who;
    char status[8]; /* online | away */
    uint64_t resume_from;
    bool has_resume;
    int64_t opened, last_recv, last_ping, soft_since, doom_at;
    uint32_t events; /* current epoll interest */
    bool dirty;      /* has queued frames; flushed once at the end of the loop iteration */
    uint16_t close_code;      /* a close frame to queue once the messages before it are out (wslay would */
    const char *close_reason; /* send a control frame ahead of queued messages) */
    char *out;       /* frames wslay handed us and the socket did not take yet (freed when empty) */
    uint32_t out_len, out_cap;
    struct ws_conn *next, *prev, *dirty_next;
};

struct typer {
    char room[65], user[65], thread[65];
    int64_t expires;
};

struct ring_entry {
    uint64_t seq;
    char room[65], type[32], subject_user[65];
    char *frame;
    size_t len;
};

struct presence_entry {
    char user[65];
    char status[16];
    int64_t seen;
};

struct hub {
    struct hub_opts o;
    char instance_key[64];
    int ep, efd;
    pthread_t loop, auth;

    pthread_mutex_t qmu; /* guards q, auth queue, stop flags */
    pthread_cond_t acv;
    struct qitem *q, *qtail;
    struct qitem *aq, *aqtail; /* hello tokens to check (Q_AUTH requests with key = token) */
    bool auth_stop;

    atomic_int slots; /* reserved + open sockets */
    atomic_bool live; /* the chat model finished its start-up replay */

    /* loop-thread state */
    struct ws_conn *conns;
    struct ws_conn *dirty; /* connections with frames queued during this loop iteration */
    uint64_t next_id;
    struct map *by_user; /* uid -> struct userconns */
    struct ring_entry *ring;
    size_t ring_cap, ring_start, ring_n;
    uint64_t ring_floor; /* events after this seq are all in the ring */
    struct typer *typers;
    size_t ntypers, captypers;
    struct map *presence; /* "uid.process" -> struct presence_entry */
    struct map *agg;      /* uid -> status string (online|away), absent = offline */
    int64_t next_heartbeat;
    bool stopping;
    int64_t stop_deadline;

    pthread_mutex_t pmu; /* guards snap */
    struct map *snap;    /* uid -> static status string, for hub_presence() */

    struct store_sub *typing_sub;
    struct store_watch *presence_w, *tokens_w;
};

struct userconns {
    struct ws_conn **v;
    size_t n, cap;
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the queue ---- */

static void
enqueue(struct hub *h, struct qitem *it)
{
    uint64_t one = 1;

    pthread_mutex_lock(&h->qmu);
    if (h->qtail)
        h->qtail->next = it;
    else
        h->q = it;
    h->qtail = it;
    pthread_mutex_unlock(&h->qmu);
    if (write(h->efd, &one, sizeof one) < 0) {
    }
}

static void
qitem_free(struct qitem *it)
{
    if (!it)
        return;
    free(it->extra);
    free(it->frame);
    free(it->aud);
    sodium_memzero(&it->who, sizeof it->who);
    free(it);
}

/* ---- sending ---- */

static void conn_close(struct ws_conn *c, uint16_t code, const char *reason);
static void conn_abort(struct ws_conn *c, uint16_t code, const char *reason);

static void
conn_update_epoll(struct ws_conn *c)
{
    uint32_t ev = 0;
    struct epoll_event e;

    if (c->gone)
        return;
    if (wslay_event_want_read(c->ctx) && !c->no_read)
        ev |= EPOLLIN;
    if (wslay_event_want_write(c->ctx) || c->out_len)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    e.events = ev | EPOLLRDHUP;
    e.data.ptr = c;
    epoll_ctl(c->h->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void conn_free(struct ws_conn *c);

/* Write what we can now; a socket that cannot take more is retried on EPOLLOUT. */
/* Write what we gathered; false if the peer is gone. */
static bool
out_write(struct ws_conn *c)
{
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (uint32_t)n;
    }
    free(c->out); /* idle sockets keep no buffer */
    c->out = NULL;
    c->out_cap = 0;
    return true;
}

static void
conn_flush(struct ws_conn *c)
{
    if (c->gone)
        return;
    do {
        if (wslay_event_send(c->ctx) != 0 || !out_write(c)) {
            conn_free(c);
            return;
        }
        if (c->close_code && wslay_event_get_queued_msg_count(c->ctx) == 0) {
            wslay_event_queue_close(c->ctx, c->close_code, (const uint8_t *)c->close_reason, strlen(c->close_reason));
            c->close_code = 0;
        }
        /* wslay stops when our buffer is full; go on while the socket keeps taking it */
    } while (!c->out_len && wslay_event_want_write(c->ctx));
    if ((!wslay_event_want_read(c->ctx) || c->no_read) && !wslay_event_want_write(c->ctx) && !c->out_len) {
        conn_free(c); /* close handshake done, or nothing left to say to a peer we stopped reading */
        return;
    }
    conn_update_epoll(c);
}

static void
mark_dirty(struct ws_conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = c->h->dirty;
    c->h->dirty = c;
}

/* End of a loop iteration: write every socket that got frames. */
static void
flush_dirty(struct hub *h)
{
    while (h->dirty) {
        struct ws_conn *c = h->dirty;
        h->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        if (!c->gone)
            conn_flush(c);
    }
}

static void
conn_send(struct ws_conn *c, const char *frame, size_t len)
{
    struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)frame, len };
    size_t queued;

    if (c->gone || c->doomed)
        return;
    if (wslay_event_queue_msg(c->ctx, &m) != 0) {
        conn_free(c);
        return;
    }
    mark_dirty(c);
    queued = wslay_event_get_queued_msg_length(c->ctx) + c->out_len;
    if (queued > c->h->o.queue_hard) {
        log_warn("ws: closing connection of %s: %zu bytes not read (over the hard limit)", c->who.user.id, queued);
        conn_abort(c, 1008, "too slow: too many unread messages");
    } else if (queued > c->h->o.queue_soft) {
        if (!c->soft_since)
            c->soft_since = now_ms();
    } else {
        c->soft_since = 0;
    }
}

static void
conn_send_json(struct ws_conn *c, cJSON *o)
{
    size_t len;
    char *s = json_print(o, &len);

    cJSON_Delete(o);
    if (s)
        conn_send(c, s, len);
    free(s);
}

static void
send_simple(struct ws_conn *c, const char *type, const char *k, const char *v)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "type", type);
    if (k)
        cJSON_AddStringToObject(o, k, v);
    conn_send_json(c, o);
}

/* Stop sending events and close: after the backlog, or ahead of it (a reader too slow to keep up would never
 * read its way to the close frame). */
static void
conn_end(struct ws_conn *c, uint16_t code, const char *reason, bool ahead)
{
    if (c->gone || c->doomed)
        return;
    c->doomed = true;
    c->doom_at = now_ms();
    if (ahead) {
        wslay_event_queue_close(c->ctx, code, (const uint8_t *)reason, strlen(reason));
    } else {
        c->close_code = code; /* queued by conn_flush once the messages before it are out */
        c->close_reason = reason;
    }
    conn_flush(c);
}

static void
conn_abort(struct ws_conn *c, uint16_t code, const char *reason)
{
    conn_end(c, code, reason, true);
}

static void
conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
    conn_end(c, code, reason, false);
}

/* ---- per-user registry and presence ---- */

static void
presence_publish(struct hub *h, const char *uid, const char *status)
{
    char key[200];

    snprintf(key, sizeof key, "%s.%s", uid, h->instance_key);
    if (status)
        store_kv_put(h->o.store, STORE_B_PRESENCE, key, status, strlen(status), NULL, NULL);
    else
        store_kv_purge(h->o.store, STORE_B_PRESENCE, key, NULL);
}

/* This process's view of uid: online if any socket is online, away if all are away, NULL if none. */
static const char *
local_status(struct hub *h, const char *uid)
{
    struct userconns *u = map_get(h->by_user, uid);
    bool away = false;

    for (size_t i = 0; u && i < u->n; i++) {
        if (!u->v[i]->ready)
            continue;
        if (!strcmp(u->v[i]->status, "online"))
            return "online";
        away = true;
    }
    return away ? "away" : NULL;
}

static void
user_add(struct hub *h, struct ws_conn *c)
{
    struct userconns *u = map_get(h->by_user, c->who.user.id);

    if (!u && (u = calloc(1, sizeof *u)))
        map_put(h->by_user, c->who.user.id, u, NULL);
    if (!u)
        return;
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 4;
        struct ws_conn **nv = realloc(u->v, cap * sizeof *nv);
        if (!nv)
            return;
        u->v = nv;
        u->cap = cap;
    }
    u->v[u->n++] = c;
}

static void
user_del(struct hub *h, struct ws_conn *c)
{
    struct userconns *u = map_get(h->by_user, c->who.user.id);

    for (size_t i = 0; u && i < u->n; i++)
        if (u->v[i] == c) {
            u->v[i] = u->v[--u->n];
            break;
        }
    if (u && u->n == 0) {
        map_del(h->by_user, c->who.user.id);
        free(u->v);
        free(u);
    }
}

/* ---- connection lifetime ---- */

static void
conn_free(struct ws_conn *c)
{
    struct hub *h = c->h;

    if (c->gone)
        return;
    c->gone = true;
    epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ready) {
        const char *before = local_status(h, c->who.user.id);
        user_del(h, c);
        c->ready = false;
        const char *after = local_status(h, c->who.user.id);
        if (before != after && (!before || !after || strcmp(before, after)))
            presence_publish(h, c->who.user.id, after);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->dirty) {
        struct ws_conn **pp = &h->dirty;
        while (*pp && *pp != c)
            pp = &(*pp)->dirty_next;
        if (*pp)
            *pp = c->dirty_next;
    }
    wslay_event_context_free(c->ctx);
    close(c->fd);
    atomic_fetch_sub(&h->slots, 1);
    free(c->extra);
    free(c->out);
    sodium_memzero(&c->who, sizeof c->who);
    free(c);
}

/* ---- replay ring ---- */

static void
ring_push(struct hub *h, const struct qitem *it)
{
    struct ring_entry *e;

    if (!h->ring_cap || !it->seq)
        return;
    if (h->ring_n == h->ring_cap) {
        e = &h->ring[h->ring_start];
        h->ring_floor = e->seq;
        free(e->frame);
        h->ring_start = (h->ring_start + 1) % h->ring_cap;
        h->ring_n--;
    }
    e = &h->ring[(h->ring_start + h->ring_n) % h->ring_cap];
    e->seq = it->seq;
    memcpy(e->room, it->room, sizeof e->room);
    memcpy(e->type, it->type, sizeof e->type);
    memcpy(e->subject_user, it->subject_user, sizeof e->subject_user);
    e->frame = malloc(it->frame_len);
    if (!e->frame)
        return;
    memcpy(e->frame, it->frame, it->frame_len);
    e->len = it->frame_len;
    h->ring_n++;
}

/* Events after this are all in the ring: those evicted, and the start-up replay (never delivered), are not. */
static uint64_t
ring_floor(struct hub *h)
{
    uint64_t target = chat_replay_target(h->o.chat);

    return h->ring_floor > target ? h->ring_floor : target;
}

static uint64_t
ring_last(struct hub *h)
{
    return h->ring_n ? h->ring[(h->ring_start + h->ring_n - 1) % h->ring_cap].seq : ring_floor(h);
}

/* The conn is authenticated and said hello: ready, then what it missed, then live events. */
static void
conn_make_ready(struct hub *h, struct ws_conn *c)
{
    uint64_t last = ring_last(h), floor = ring_floor(h), from = last;
    bool reset = false;
    cJSON *o;

    if (c->has_resume) {
        if (c->resume_from >= floor && c->resume_from <= last)
            from = c->resume_from;
        else if (c->resume_from < floor)
            reset = true; /* too much was missed (or this process has not seen it): refetch */
    }
    if (reset)
        send_simple(c, "reset", "reason", "too many events missed; reload the rooms you show");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ready");
    json_add_int64_str(o, "cursor", (int64_t)from);
    cJSON_AddStringToObject(o, "userId", c->who.user.id);
    conn_send_json(c, o);
    for (size_t i = 0; from < last && i < h->ring_n && !c->gone; i++) {
        struct ring_entry *e = &h->ring[(h->ring_start + i) % h->ring_cap];
        if (e->seq <= from || !e->frame)
            continue;
        if (chat_is_member(h->o.chat, e->room, c->who.user.id) ||
            (!strcmp(e->type, "member.left") && !strcmp(e->subject_user, c->who.user.id)))
            conn_send(c, e->frame, e->len);
    }
    if (c->gone)
        return;
    const char *before = local_status(h, c->who.user.id);
    c->ready = true;
    snprintf(c->status, sizeof c->status, "online");
    user_add(h, c);
    if (!before || strcmp(before, "online"))
        presence_publish(h, c->who.user.id, "online");
}

/* ---- incoming frames ---- */

static void
handle_text(struct ws_conn *c, const uint8_t *msg, size_t len)
{
    struct hub *h = c->h;
    cJSON *o = NULL;
    struct ch_err err = { 0 };
    const char *type = NULL;

    if (json_parse_object((const char *)msg, len, 8, &o, &err) != CH_OK ||
        json_get_str(o, "type", true, 1, 32, &type, &err) != CH_OK) {
        char m[CH_ERR_MSG_MAX + 80];
        cJSON_Delete(o);
        if (!c->hello) {
            conn_close(c, 1008, "the first frame must be a JSON hello");
            return;
        }
        send_simple(c, "error", "message", ch_err_text(&err, m, sizeof m));
        return;
    }
    if (!c->hello) {
        const char *token = NULL, *resume = NULL;
        if (strcmp(type, "hello") != 0) {
            cJSON_Delete(o);
            conn_close(c, 1008, "the first frame must be a hello");
            return;
        }
        c->hello = true;
        json_get_str(o, "token", false, 0, 512, &token, NULL);
        json_get_str(o, "resumeFrom", false, 0, 24, &resume, NULL);
        if (resume && *resume) {
            char *end;
            c->resume_from = strtoull(resume, &end, 10);
            c->has_resume = *end == '\0';
        }
        if (c->authed) {
            conn_make_ready(h, c);
        } else if (token && *token) {
            /* check the token off this thread: it is a NATS round trip */
            struct qitem *it = calloc(1, sizeof *it);
            if (!it) {
                conn_close(c, 1011, "out of memory");
            } else {
                it->kind = Q_AUTH;
                it->conn_id = c->id;
                snprintf(it->key, sizeof it->key, "%s", token);
                c->auth_wait = true;
                pthread_mutex_lock(&h->qmu);
                if (h->aqtail)
                    h->aqtail->next = it;
                else
                    h->aq = it;
                h->aqtail = it;
                pthread_cond_signal(&h->acv);
                pthread_mutex_unlock(&h->qmu);
            }
        } else {
            conn_close(c, 1008, "authentication required: send {\"type\":\"hello\",\"token\":...}");
        }
        cJSON_Delete(o);
        return;
    }
    if (!strcmp(type, "ping")) {
        send_simple(c, "pong", NULL, NULL);
    } else if (!strcmp(type, "presence") && c->ready) {
        const char *st = NULL;
        json_get_str(o, "status", true, 1, 16, &st, NULL);
        if (st && (!strcmp(st, "online") || !strcmp(st, "away"))) {
            const char *before = local_status(h, c->who.user.id);
            snprintf(c->status, sizeof c->status, "%s", st);
            const char *after = local_status(h, c->who.user.id);
            if (after && (!before || strcmp(before, after)))
                presence_publish(h, c->who.user.id, after);
        } else {
            send_simple(c, "error", "message", "status: must be online or away");
        }
    } else if (!strcmp(type, "hello")) {
        send_simple(c, "error", "message", "already said hello");
    } else {
        send_simple(c, "error", "message", "unknown frame type");
    }
    cJSON_Delete(o);
}

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    struct ws_conn *c = ud;
    ssize_t n;

    (void)flags;
    if (c->no_read) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (c->extra_off < c->extra_len) {
        size_t k = c->extra_len - c->extra_off < len ? c->extra_len - c->extra_off : len;
        memcpy(buf, c->extra + c->extra_off, k);
        c->extra_off += k;
        if (c->extra_off == c->extra_len) { /* consumed: give the memory back */
            free(c->extra);
            c->extra = NULL;
            c->extra_len = c->extra_off = 0;
        }
        return (ssize_t)k;
    }
    n = recv(c->fd, buf, len, MSG_DONTWAIT);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct ws_conn *c = ud;

    (void)flags;
    if (c->out_len + len > OUT_MAX && c->out_len) {
        if (!out_write(c)) {
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
    }
    if (c->out_len + len > OUT_MAX) {
        if (c->out_len) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        len = OUT_MAX; /* a frame bigger than the buffer goes in pieces */
    }
    if (c->out_len + len > c->out_cap) {
        uint32_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p) {
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += (uint32_t)len;
    return (ssize_t)len;
}

static void
frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
    struct ws_conn *c = ud;

    (void)ctx;
    c->last_recv = now_ms();
    /* wslay only notices an oversized message once it has buffered it: refuse it from its header */
    if (arg->payload_length > c->h->o.max_message) {
        c->no_read = true;
        conn_close(c, 1009, "message too big");
    }
}

static void
msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    struct ws_conn *c = ud;

    (void)ctx;
    c->last_recv = now_ms();
    if (arg->opcode == WSLAY_TEXT_FRAME)
        handle_text(c, arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_BINARY_FRAME)
        conn_close(c, 1003, "binary frames are not supported");
}

static const struct wslay_event_callbacks callbacks = {
    recv_cb, send_cb, NULL, frame_start_cb, NULL, NULL, msg_cb,
};

static void
conn_io(struct ws_conn *c, uint32_t events)
{
    if (c->gone)
        return;
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && wslay_event_want_read(c->ctx) && !c->no_read) {
        int rv = wslay_event_recv(c->ctx);
        if (rv != 0) {
            /* a protocol violation (wslay has usually queued its close frame) or a dead socket: read no more,
             * deliver what close frame there is, then hang up */
            c->no_read = true;
            if (!c->doomed) {
                c->doomed = true;
                c->doom_at = now_ms();
            }
            if (rv == WSLAY_ERR_PROTO && !wslay_event_get_close_sent(c->ctx))
                wslay_event_queue_close(c->ctx, 1002, (const uint8_t *)"protocol error", 14);
        }
    } else if (events & (EPOLLHUP | EPOLLERR)) {
        conn_free(c);
        return;
    }
    if (!c->gone)
        conn_flush(c);
}

static void
conn_new(struct hub *h, struct qitem *it)
{
    struct ws_conn *c = calloc(1, sizeof *c);
    struct epoll_event e;

    if (!c || wslay_event_context_server_init(&c->ctx, &callbacks, c) != 0) {
        free(c);
        close(it->fd);
        atomic_fetch_sub(&h->slots, 1);
        return;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, h->o.max_message);
    c->id = ++h->next_id;
    c->h = h;
    c->fd = it->fd;
    c->extra = it->extra;
    c->extra_len = it->extra_len;
    it->extra = NULL;
    c->authed = it->authed;
    if (c->authed) {
        memcpy(c->who.user.id, it->who.user.id, sizeof c->who.user.id);
        memcpy(c->who.verifier, it->who.verifier, sizeof c->who.verifier);
    }
    c->opened = c->last_recv = c->last_ping = now_ms();
    snprintf(c->status, sizeof c->status, "online");
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.ptr = c;
    c->events = EPOLLIN;
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        conn_free(c);
        return;
    }
    if (c->extra_len)
        conn_io(c, EPOLLIN); /* the client may have sent its hello with the upgrade request */
}

/* ---- events from other threads ---- */

static void
fanout_change(struct hub *h, struct qitem *it)
{
    ring_push(h, it);
    for (size_t i = 0; i < it->naud; i++) {
        struct userconns *u = map_get(h->by_user, it->aud[i]);
        for (size_t j = 0; u && j < u->n; j++) {
            struct ws_conn *c = u->v[j];
            conn_send(c, it->frame, it->frame_len);
            if (map_get(h->by_user, it->aud[i]) != u)
                break; /* the last socket of that user went away while we sent */
        }
    }
}

static void
typing_broadcast(struct hub *h, const char *room)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    char(*ids)[65] = NULL;
    size_t n = 0, len;
    char *s;

    cJSON_AddStringToObject(o, "type", "typing");
    cJSON_AddStringToObject(o, "roomId", room);
    arr = cJSON_AddArrayToObject(o, "users");
    for (size_t i = 0; i < h->ntypers; i++) {
        if (strcmp(h->typers[i].room, room))
            continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "userId", h->typers[i].user);
        if (h->typers[i].thread[0])
            cJSON_AddStringToObject(x, "threadRootEventId", h->typers[i].thread);
        cJSON_AddItemToArray(arr, x);
    }
    s = json_print(o, &len);
    cJSON_Delete(o);
    if (s && chat_room_member_ids(h->o.chat, room, &ids, &n)) {
        for (size_t i = 0; i < n; i++) {
            struct userconns *u = map_get(h->by_user, ids[i]);
            for (size_t j = 0; u && j < u->n; j++) {
                conn_send(u->v[j], s, len);
                if (map_get(h->by_user, ids[i]) != u)
                    break;
            }
        }
    }
    free(ids);
    free(s);
}

static void
typing_update(struct hub *h, struct qitem *it)
{
    int64_t until = now_ms() + h->o.typing_ms;

    for (size_t i = 0; i < h->ntypers; i++) {
        struct typer *t = &h->typers[i];
        if (!strcmp(t->room, it->room) && !strcmp(t->user, it->user)) {
            bool changed = strcmp(t->thread, it->thread) != 0;
            t->expires = until;
            snprintf(t->thread, sizeof t->thread, "%s", it->thread);
            if (changed)
                typing_broadcast(h, it->room);
            return;
        }
    }
    if (h->ntypers == h->captypers) {
        size_t cap = h->captypers ? h->captypers * 2 : 16;
        struct typer *nv = realloc(h->typers, cap * sizeof *nv);
        if (!nv)
            return;
        h->typers = nv;
        h->captypers = cap;
    }
    struct typer *t = &h->typers[h->ntypers++];
    memcpy(t->room, it->room, sizeof t->room);
    memcpy(t->user, it->user, sizeof t->user);
    memcpy(t->thread, it->thread, sizeof t->thread);
    t->expires = until;
    typing_broadcast(h, it->room);
}

static void
broadcast_presence(struct hub *h, const char *uid, const char *status)
{
    cJSON *o = cJSON_CreateObject();
    size_t len;
    char *s;

    cJSON_AddStringToObject(o, "type", "presence");
    cJSON_AddStringToObject(o, "userId", uid);
    cJSON_AddStringToObject(o, "status", status);
    s = json_print(o, &len);
    cJSON_Delete(o);
    for (struct ws_conn *c = h->conns, *next; s && c; c = next) {
        next = c->next;
        if (c->ready)
            conn_send(c, s, len);
    }
    free(s);
}

/* Recompute uid's status from every process's entries; tell everyone when it changed. */
static void
presence_aggregate(struct hub *h, const char *uid)
{
    size_t it = 0;
    void *v;
    const char *best = "offline";

    while (map_next(h->presence, &it, NULL, &v)) {
        struct presence_entry *e = v;
        if (strcmp(e->user, uid))
            continue;
        if (!strcmp(e->status, "online"))
            best = "online";
        else if (!strcmp(e->status, "away") && strcmp(best, "online"))
            best = "away";
    }
    const char *prev = map_get(h->agg, uid);
    if (!strcmp(best, prev ? prev : "offline"))
        return;
    static const char *const names[] = { "online", "away" };
    const char *keep = !strcmp(best, "online") ? names[0] : !strcmp(best, "away") ? names[1] : NULL;
    if (keep)
        map_put(h->agg, uid, (void *)keep, NULL);
    else
        map_del(h->agg, uid);
    pthread_mutex_lock(&h->pmu);
    if (keep)
        map_put(h->snap, uid, (void *)keep, NULL);
    else
        map_del(h->snap, uid);
    pthread_mutex_unlock(&h->pmu);
    broadcast_presence(h, uid, best);
}

static void
presence_update(struct hub *h, struct qitem *it)
{
    char uid[65];
    size_t n = strcspn(it->key, ".");

    if (n == 0 || n > 64)
        return;
    snprintf(uid, sizeof uid, "%.*s", (int)n, it->key);
    if (it->deleted) {
        free(map_del(h->presence, it->key));
    } else {
        struct presence_entry *e = map_get(h->presence, it->key);
        if (!e && (e = calloc(1, sizeof *e)))
            map_put(h->presence, it->key, e, NULL);
        if (!e)
            return;
        snprintf(e->user, sizeof e->user, "%s", uid);
        snprintf(e->status, sizeof e->status, "%s", it->status);
        e->seen = now_ms();
    }
    presence_aggregate(h, uid);
}

static void
revoked(struct hub *h, struct qitem *it)
{
    /* key: <uid>.<kind>.<verifier> */
    char uid[65];
    const char *ver;
    size_t n = strcspn(it->key, ".");

    if (n == 0 || n > 64 || strlen(it->key) < n + 3)
        return;
    snprintf(uid, sizeof uid, "%.*s", (int)n, it->key);
    ver = it->key + n + 3;
    for (struct ws_conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->gone || !c->authed || strcmp(c->who.user.id, uid) || strcmp(c->who.verifier, ver))
            continue;
        send_simple(c, "session.terminated", "reason", "the session was ended (logout, password change or account "
                                                       "disabled)");
        conn_close(c, 1008, "session terminated");
    }
}

static void
auth_result(struct hub *h, struct qitem *it)
{
    for (struct ws_conn *c = h->conns; c; c = c->next) {
        if (c->id != it->conn_id || c->gone)
            continue;
        c->auth_wait = false;
        if (!it->ok) {
            conn_close(c, 1008, "invalid token");
            return;
        }
        c->authed = true;
        memcpy(c->who.user.id, it->who.user.id, sizeof c->who.user.id);
        memcpy(c->who.verifier, it->who.verifier, sizeof c->who.verifier);
        conn_make_ready(h, c);
        return;
    }
}

static void
drain_queue(struct hub *h)
{
    struct qitem *it;

    pthread_mutex_lock(&h->qmu);
    it = h->q;
    h->q = h->qtail = NULL;
    pthread_mutex_unlock(&h->qmu);
    while (it) {
        struct qitem *next = it->next;
        switch (it->kind) {
        case Q_CONN:
            if (h->stopping) {
                close(it->fd);
                atomic_fetch_sub(&h->slots, 1);
            } else {
                conn_new(h, it);
            }
            break;
        case Q_CHANGE:
            fanout_change(h, it);
            break;
        case Q_TYPING:
            typing_update(h, it);
            break;
        case Q_PRESENCE:
            presence_update(h, it);
            break;
        case Q_REVOKED:
            revoked(h, it);
            break;
        case Q_AUTH:
            auth_result(h, it);
            break;
        case Q_STOP:
            if (!h->stopping) {
                h->stopping = true;
                h->stop_deadline = now_ms() + CLOSE_FLUSH_MS;
                for (struct ws_conn *c = h->conns, *nx; c; c = nx) {
                    nx = c->next;
                    conn_close(c, 1001, "server shutting down");
                }
            }
            break;
        }
        qitem_free(it);
        it = next;
    }
}

/* ---- timers ---- */

static void
tick(struct hub *h)
{
    int64_t now = now_ms();

    for (struct ws_conn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->doomed) {
            if (now - c->doom_at > DOOM_GRACE_MS)
                conn_free(c); /* never drained its backlog */
            continue;
        }
        if (!c->hello && now - c->opened > h->o.hello_ms) {
            conn_close(c, 1008, "no hello received in time");
            continue;
        }
        if (now - c->last_recv > h->o.idle_ms) {
            log_info("ws: closing a connection silent for %lld ms", (long long)(now - c->last_recv));
            conn_close(c, 1001, "no response to pings");
            continue;
        }
        if (c->soft_since && now - c->soft_since > h->o.soft_grace_ms) {
            log_warn("ws: closing connection of %s: unread messages for %lld ms", c->who.user.id,
                     (long long)(now - c->soft_since));
            conn_abort(c, 1013, "too slow: unread messages for too long");
            continue;
        }
        if (now - c->last_ping >= h->o.ping_ms) {
            struct wslay_event_msg m = { WSLAY_PING, (const uint8_t *)"", 0 };
            c->last_ping = now;
            if (wslay_event_queue_msg(c->ctx, &m) == 0)
                conn_flush(c);
        }
    }
    /* typing indicators that were not refreshed */
    for (size_t i = 0; i < h->ntypers;) {
        if (h->typers[i].expires > now) {
            i++;
            continue;
        }
        char room[65];
        memcpy(room, h->typers[i].room, sizeof room);
        h->typers[i] = h->typers[--h->ntypers];
        typing_broadcast(h, room);
    }
    /* presence: refresh our entries, age out those of processes that stopped refreshing theirs */
    if (now >= h->next_heartbeat) {
        size_t it = 0;
        const char *uid;
        h->next_heartbeat = now + h->o.presence_ms;
        while (map_next(h->by_user, &it, &uid, NULL)) {
            const char *st = local_status(h, uid);
            if (st)
                presence_publish(h, uid, st);
        }
        for (;;) {
            size_t k = 0;
            const char *key;
            void *v;
            bool removed = false;
            while (map_next(h->presence, &k, &key, &v)) {
                struct presence_entry *e = v;
                if (now - e->seen > 3 * h->o.presence_ms) {
                    char user[65];
                    memcpy(user, e->user, sizeof user);
                    free(map_del(h->presence, key));
                    presence_aggregate(h, user);
                    removed = true;
                    break; /* the map changed: start over */
                }
            }
            if (!removed)
                break;
        }
    }
}

static void *
loop_main(void *arg)
{
    struct hub *h = arg;
    struct epoll_event evs[256];
    int64_t next_tick = now_ms() + 250;

    for (;;) {
        int64_t wait = next_tick - now_ms();
        int n = epoll_wait(h->ep, evs, 256, wait > 0 ? (int)wait : 0);

        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == h) {
                uint64_t v;
                if (read(h->efd, &v, sizeof v) < 0) {
                }
                drain_queue(h);
            } else {
                conn_io(evs[i].data.ptr, evs[i].events);
            }
        }
        if (now_ms() >= next_tick) {
            next_tick = now_ms() + 250;
            tick(h);
        }
        flush_dirty(h);
        if (h->stopping && (!h->conns || now_ms() >= h->stop_deadline))
            break;
    }
    while (h->conns)
        conn_free(h->conns);
    return NULL;
}

static void *
auth_main(void *arg)
{
    struct hub *h = arg;

    for (;;) {
        struct qitem *it;
        pthread_mutex_lock(&h->qmu);
        while (!h->aq && !h->auth_stop)
            pthread_cond_wait(&h->acv, &h->qmu);
        if (h->auth_stop) {
            pthread_mutex_unlock(&h->qmu);
            break;
        }
        it = h->aq;
        h->aq = it->next;
        if (!h->aq)
            h->aqtail = NULL;
        it->next = NULL;
        pthread_mutex_unlock(&h->qmu);
        it->ok = accounts_auth_bearer(h->o.accounts, it->key, &it->who, NULL) == CH_OK;
        explicit_bzero(it->key, sizeof it->key);
        enqueue(h, it);
    }
    return NULL;
}

/* ---- feeds (other threads) ---- */

static void
on_change(void *ctx, const struct chat_change *ch)
{
    struct hub *h = ctx;
    struct qitem *it;

    if (!atomic_load(&h->live)) {
        /* the start-up replay of history is nobody's news */
        if (ch->seq && ch->seq < chat_replay_target(h->o.chat))
            return;
        atomic_store(&h->live, true);
    }
    if (!(it = calloc(1, sizeof *it)))
        return;
    it->kind = Q_CHANGE;
    it->seq = ch->seq;
    snprintf(it->room, sizeof it->room, "%s", ch->room_id);
    snprintf(it->type, sizeof it->type, "%s", ch->type);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(ch->payload, "userId");
    if (cJSON_IsString(u))
        snprintf(it->subject_user, sizeof it->subject_user, "%s", u->valuestring);
    it->frame = json_print(ch->payload, &it->frame_len);
    it->aud = calloc(ch->naudience ? ch->naudience : 1, sizeof *it->aud);
    if (!it->frame || !it->aud) {
        qitem_free(it);
        return;
    }
    for (size_t i = 0; i < ch->naudience; i++)
        snprintf(it->aud[i], sizeof it->aud[i], "%s", ch->audience[i]);
    it->naud = ch->naudience;
    enqueue(h, it);
}

static void
on_typing(void *ctx, const char *subject, const char *data, size_t len)
{
    struct hub *h = ctx;
    cJSON *o = cJSON_ParseWithLength(data, len);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "roomId"), *u = cJSON_GetObjectItemCaseSensitive(o, "userId"),
                *t = cJSON_GetObjectItemCaseSensitive(o, "threadRootEventId");
    struct qitem *it;

    (void)subject;
    if (cJSON_IsString(r) && cJSON_IsString(u) && id_valid(r->valuestring) && id_valid(u->valuestring) &&
        (it = calloc(1, sizeof *it))) {
        it->kind = Q_TYPING;
        snprintf(it->room, sizeof it->room, "%s", r->valuestring);
        snprintf(it->user, sizeof it->user, "%s", u->valuestring);
        if (cJSON_IsString(t) && id_valid(t->valuestring))
            snprintf(it->thread, sizeof it->thread, "%s", t->valuestring);
        enqueue(h, it);
    }
    cJSON_Delete(o);
}

static void
on_presence(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    struct hub *h = ctx;
    struct qitem *it;

    (void)rev;
    if (!key || !(it = calloc(1, sizeof *it)))
        return;
    it->kind = Q_PRESENCE;
    snprintf(it->key, sizeof it->key, "%s", key);
    it->deleted = val == NULL;
    if (val)
        snprintf(it->status, sizeof it->status, "%.*s", (int)(len < 15 ? len : 15), val);
    enqueue(h, it);
}

static void
on_token(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    struct hub *h = ctx;
    struct qitem *it;

    (void)len;
    (void)rev;
    if (!key || val || !(it = calloc(1, sizeof *it))) /* only removals matter */
        return;
    it->kind = Q_REVOKED;
    snprintf(it->key, sizeof it->key, "%s", key);
    enqueue(h, it);
}

/* ---- public ---- */

enum ch_status
hub_start(const struct hub_opts *o, struct hub **out, struct ch_err *err)
{
    struct hub *h = calloc(1, sizeof *h);
    struct epoll_event e;
    enum ch_status st;
    size_t k = 0;

    if (!h)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    h->o = *o;
    for (const char *p = o->instance; *p && k < sizeof h->instance_key - 1; p++)
        h->instance_key[k++] = (char)(((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
                                          ? *p
                                          : '-');
    h->instance_key[k] = '\0';
    pthread_mutex_init(&h->qmu, NULL);
    pthread_mutex_init(&h->pmu, NULL);
    pthread_cond_init(&h->acv, NULL);
    h->by_user = map_new();
    h->presence = map_new();
    h->agg = map_new();
    h->snap = map_new();
    h->ring_cap = o->replay_events;
    h->ring = calloc(h->ring_cap ? h->ring_cap : 1, sizeof *h->ring);
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!h->by_user || !h->presence || !h->agg || !h->snap || !h->ring || h->ep < 0 || h->efd < 0) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "cannot set up the realtime hub");
        goto fail;
    }
    h->ring_floor = chat_applied(o->chat);
    e.events = EPOLLIN;
    e.data.ptr = h;
    epoll_ctl(h->ep, EPOLL_CTL_ADD, h->efd, &e);
    if (pthread_create(&h->loop, NULL, loop_main, h) != 0) {
        st = ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the realtime thread");
        goto fail;
    }
    pthread_setname_np(h->loop, "ws-loop");
    if (pthread_create(&h->auth, NULL, auth_main, h) != 0) {
        st = ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the realtime auth thread");
        enqueue(h, calloc(1, sizeof(struct qitem))); /* Q_CONN with nothing: harmless */
        goto fail;
    }
    pthread_setname_np(h->auth, "ws-auth");
    chat_set_listener(o->chat, on_change, h);
    if ((st = store_kv_watch(o->store, STORE_B_PRESENCE, ">", on_presence, h, &h->presence_w, err)) != CH_OK ||
        (st = store_kv_watch(o->store, STORE_B_TOKENS, ">", on_token, h, &h->tokens_w, err)) != CH_OK ||
        (st = store_core_subscribe(o->store, "chatto.rt.typing.>", on_typing, h, &h->typing_sub, err)) != CH_OK) {
        hub_stop(h);
        return st;
    }
    *out = h;
    return CH_OK;
fail:
    map_free(h->by_user, NULL);
    map_free(h->presence, free);
    map_free(h->agg, NULL);
    map_free(h->snap, NULL);
    free(h->ring);
    if (h->ep >= 0)
        close(h->ep);
    if (h->efd >= 0)
        close(h->efd);
    free(h);
    return st;
}

void
hub_stop(struct hub *h)
{
    struct qitem *stop;

    if (!h)
        return;
    chat_set_listener(h->o.chat, NULL, NULL);
    store_core_unsubscribe(h->typing_sub);
    store_kv_watch_stop(h->presence_w);
    store_kv_watch_stop(h->tokens_w);
    if ((stop = calloc(1, sizeof *stop))) {
        stop->kind = Q_STOP;
        enqueue(h, stop);
    }
    pthread_join(h->loop, NULL);
    pthread_mutex_lock(&h->qmu);
    h->auth_stop = true;
    pthread_cond_signal(&h->acv);
    pthread_mutex_unlock(&h->qmu);
    if (h->auth)
        pthread_join(h->auth, NULL);
    drain_queue(h); /* anything that arrived late */
    for (struct qitem *it = h->aq, *nx; it; it = nx) {
        nx = it->next;
        qitem_free(it);
    }
    /* our presence entries go with us */
    size_t it = 0;
    const char *uid;
    while (map_next(h->by_user, &it, &uid, NULL))
        presence_publish(h, uid, NULL);
    for (size_t i = 0; i < h->ring_n; i++)
        free(h->ring[(h->ring_start + i) % h->ring_cap].frame);
    free(h->ring);
    free(h->typers);
    map_free(h->by_user, NULL);
    map_free(h->presence, free);
    map_free(h->agg, NULL);
    map_free(h->snap, NULL);
    close(h->ep);
    close(h->efd);
    pthread_mutex_destroy(&h->qmu);
    pthread_mutex_destroy(&h->pmu);
    pthread_cond_destroy(&h->acv);
    free(h);
}

bool
hub_reserve(struct hub *h)
{
    int cur = atomic_load(&h->slots);

    while (cur < h->o.max_connections)
        if (atomic_compare_exchange_weak(&h->slots, &cur, cur + 1))
            return true;
    return false;
}

void
hub_release(struct hub *h)
{
    atomic_fetch_sub(&h->slots, 1);
}

void
hub_adopt(struct hub *h, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra_in, size_t extra_len,
          const struct principal *who)
{
    struct qitem *it = calloc(1, sizeof *it);
    int own = -1;

    /* The hub keeps its own descriptor and hands the connection back to MHD at once, so MHD frees the
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
        hub_release(h);
        return;
    }
    it->kind = Q_CONN;
    it->fd = own;
    it->extra_len = extra_len;
    if (who) {
        it->authed = true;
        it->who = *who;
    }
    enqueue(h, it);
}

enum ch_status
hub_typing(struct hub *h, const char *room, const char *uid, const char *thread_root, struct ch_err *err)
{
    cJSON *o = cJSON_CreateObject();
    char subject[128], *s;
    size_t len;
    enum ch_status st;

    cJSON_AddStringToObject(o, "roomId", room);
    cJSON_AddStringToObject(o, "userId", uid);
    if (thread_root && *thread_root)
        cJSON_AddStringToObject(o, "threadRootEventId", thread_root);
    s = json_print(o, &len);
    cJSON_Delete(o);
    if (!s)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    snprintf(subject, sizeof subject, "chatto.rt.typing.%s", room);
    st = store_core_publish(h->o.store, subject, s, len, err);
    free(s);
    return st;
}

const char *
hub_presence(struct hub *h, const char *uid)
{
    const char *s;

    pthread_mutex_lock(&h->pmu);
    s = map_get(h->snap, uid);
    pthread_mutex_unlock(&h->pmu);
    return s ? s : "offline";
}

size_t
hub_connections(struct hub *h)
{
    return (size_t)atomic_load(&h->slots);
}
