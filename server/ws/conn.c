/* SPDX-License-Identifier: MIT */
/*
 * One WebSocket (ws-loop thread only): its wslay context, the bytes it still has to write, the frames it sends
 * us, and how it ends. Closing is careful about order and about the peer: our close frame goes after the
 * messages queued before it (wslay would put a control frame ahead of them) unless the reader is too slow to get
 * there; once it is out we half-close and keep reading (and dropping) what the peer still sends for a moment, so
 * that closing a socket with unread input does not turn into a TCP reset that destroys our close frame on its
 * way (a client in the middle of sending a big message would see "connection reset" instead of 1009).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json/json.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "ws/ws_int.h"

static const struct wslay_event_callbacks callbacks;

/* The socket's wslay context, made anew if it was shed; NULL when out of memory. */
static wslay_event_context_ptr
conn_ctx(struct ws_conn *c)
{
    if (!c->ctx && wslay_event_context_server_init(&c->ctx, &callbacks, c) == 0)
        wslay_event_config_set_max_recv_msg_length(c->ctx, c->w->o.max_message);
    return c->ctx;
}

/* Give the wslay context back as soon as nothing is in flight: no partial frame or message coming in, nothing
 * wslay still has to write, no close under way. Frames we send do not need it (rt_wsout), so a context lives only
 * while a socket's input is read: a connect storm reuses a handful of them instead of leaving one freed 8.8 KB
 * block per socket between the sockets' long-lived memory. */
static void
conn_shed(struct ws_conn *c)
{
    if (!c->ctx || c->doomed || c->linger || c->no_read || c->bad_control || c->in_recv || c->extra ||
        c->scan.hlen || c->scan.skip || c->scan.fragmented || wslay_event_want_write(c->ctx) ||
        wslay_event_get_queued_msg_count(c->ctx) || wslay_event_get_close_sent(c->ctx) ||
        wslay_event_get_close_received(c->ctx))
        return;
    wslay_event_context_free(c->ctx);
    c->ctx = NULL;
}

static bool
want_read(struct ws_conn *c)
{
    return c->ctx ? wslay_event_want_read(c->ctx) : true;
}

static bool
want_write(struct ws_conn *c)
{
    return c->ctx && wslay_event_want_write(c->ctx);
}

static void
conn_update_epoll(struct ws_conn *c)
{
    uint32_t ev = 0;
    struct epoll_event e;

    if (c->gone)
        return;
    if ((want_read(c) && !c->no_read) || c->no_read || c->linger)
        ev |= EPOLLIN;
    if (want_write(c) || c->out.len)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    e.events = ev | EPOLLRDHUP;
    e.data.ptr = c;
    epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* Write what we gathered, every frame waiting in one send(); false if the peer is gone. */
static bool
out_write(struct ws_conn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.buf, c->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        rt_wsout_consumed(&c->out, (size_t)n); /* frees the buffer once empty */
        if (c->out.len)
            return true; /* the socket is full: EPOLLOUT tells us when it takes more */
    }
    return true;
}

void
conn_flush(struct ws_conn *c)
{
    if (c->gone)
        return;
    /* wslay's control frames (pongs, the close) go after the frames gathered before them; send_cb takes them
     * whole */
    if ((c->ctx && wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx) != 0) || !out_write(c)) {
        conn_free(c);
        return;
    }
    if (!c->ctx) {
        conn_update_epoll(c);
        return;
    }
    if (!wslay_event_want_write(c->ctx) && !c->out.len && wslay_event_get_close_sent(c->ctx)) {
        if (wslay_event_get_close_received(c->ctx)) {
            conn_free(c); /* the close handshake is done */
            return;
        }
        /* not when wslay merely stopped reading after its own close (a message too big, bad UTF-8): the peer may
         * still be sending, and closing on unread bytes resets the connection, which can throw away our close
         * frame before the peer read it (75_websocket's 1009 came back as "dropped" now and then) */
        if (!c->linger) {
            /* our close frame is out: say we are done writing, and wait briefly for the peer's side */
            shutdown(c->fd, SHUT_WR);
            c->linger = true;
            c->linger_at = clock_mono_ms();
        }
    }
    conn_shed(c);
    conn_update_epoll(c);
}

void
conn_mark_dirty(struct ws_conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = c->w->dirty;
    c->w->dirty = c;
}

void
conn_send(struct ws_conn *c, const char *frame, size_t len)
{
    size_t queued;

    if (c->gone || c->doomed)
        return;
    if (!rt_wsout_frame(&c->out, 0x1, frame, len)) { /* a text frame, straight into the socket's bytes */
        conn_free(c);
        return;
    }
    conn_mark_dirty(c);
    metrics_inc(MET_WS_FRAMES, NULL, NULL);
    queued = c->out.len + (c->ctx ? wslay_event_get_queued_msg_length(c->ctx) : 0);
    if (queued > c->w->o.queue_hard) {
        log_warn("ws: closing connection of %s: %zu bytes not read (over the hard limit)", c->user, queued);
        metrics_inc(MET_WS_SLOW, NULL, NULL);
        conn_abort(c, 1008, "too slow: too many unread messages");
    } else if (queued > c->w->o.queue_soft) {
        if (!c->soft_since)
            c->soft_since = clock_mono_ms();
    } else {
        c->soft_since = 0;
    }
}

void
conn_send_simple(struct ws_conn *c, const char *type, const char *k, const char *v)
{
    cJSON *o = cJSON_CreateObject();
    size_t len;
    char *s;

    cJSON_AddStringToObject(o, "type", type);
    if (k)
        cJSON_AddStringToObject(o, k, v);
    s = json_print(o, &len);
    cJSON_Delete(o);
    if (s)
        conn_send(c, s, len);
    free(s);
}

static void
conn_end(struct ws_conn *c, uint16_t code, const char *reason, bool ahead)
{
    if (c->gone || c->doomed)
        return;
    c->doomed = true;
    c->doom_at = clock_mono_ms();
    if (!conn_ctx(c)) {
        conn_free(c);
        return;
    }
    /* our frames are gathered in c->out, not in wslay's queue: its close goes after them unless it must go ahead
     * (a reader too slow to get there); a frame partly sent is finished first either way */
    if (ahead)
        rt_wsout_drop_unsent(&c->out);
    wslay_event_queue_close(c->ctx, code, (const uint8_t *)reason, strlen(reason));
    if (!c->in_recv) /* wslay is not re-entered from its own callbacks */
        conn_flush(c);
}

void
conn_abort(struct ws_conn *c, uint16_t code, const char *reason)
{
    conn_end(c, code, reason, true);
}

void
conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
    conn_end(c, code, reason, false);
}

void
conn_free(struct ws_conn *c)
{
    struct ws *w = c->w;
    char key[24];

    if (c->gone)
        return;
    c->gone = true;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    hub_conn_removed(w, c);
    if (c->hello)
        rt_conn_gone(w->o.rt, c->id); /* realtime may know it (watches) */
    snprintf(key, sizeof key, "%llx", (unsigned long long)c->id);
    map_del(w->by_id, key);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->dirty) {
        struct ws_conn **pp = &w->dirty;
        while (*pp && *pp != c)
            pp = &(*pp)->dirty_next;
        if (*pp)
            *pp = c->dirty_next;
    }
    close(c->fd);
    c->fd = -1;
    ws_forget(w, c->ip, (int)c->pool, c->user);
    explicit_bzero(c->verifier, sizeof c->verifier);
    c->grave_next = w->graves;
    w->graves = c;
}

void
conn_reap(struct ws *w)
{
    while (w->graves) {
        struct ws_conn *c = w->graves;
        w->graves = c->grave_next;
        if (c->ctx)
            wslay_event_context_free(c->ctx);
        free(c->extra);
        rt_wsout_free(&c->out);
        free(c);
    }
}

/* ---- incoming frames ---- */

static void
handle_hello(struct ws_conn *c, const cJSON *o)
{
    const char *token = NULL, *resume = NULL;

    c->hello = true;
    json_get_str(o, "token", false, 0, 512, &token, NULL);
    json_get_str(o, "resumeFrom", false, 0, 20, &resume, NULL);
    if (c->authed)
        rt_hello(c->w->o.rt, c->id, c->user, c->verifier, NULL, resume);
    else if (token && *token)
        rt_hello(c->w->o.rt, c->id, NULL, NULL, token, resume); /* checked off this thread: a NATS round trip */
    else
        conn_close(c, 1008, "authentication required: send {\"type\":\"hello\",\"token\":...}");
}

#define WATCH_MAX 1000

/* {"type":"presence.watch","userIds":[...]}: the users this client shows (its DM partners, the member list,
 * the authors on screen). */
static void
handle_watch(struct ws_conn *c, const cJSON *o)
{
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "userIds");
    char(*v)[ID_MAX + 1] = NULL;
    size_t n = 0, i = 0;
    const cJSON *x;

    if (!cJSON_IsArray(ids)) {
        conn_send_simple(c, "error", "message", "userIds: must be an array of user ids");
        return;
    }
    if ((size_t)cJSON_GetArraySize(ids) > WATCH_MAX) {
        conn_send_simple(c, "error", "message", "userIds: at most 1000 users");
        return;
    }
    cJSON_ArrayForEach(x, ids) n++;
    if (n && !(v = calloc(n, sizeof *v)))
        return;
    cJSON_ArrayForEach(x, ids) {
        if (!cJSON_IsString(x) || !id_valid(x->valuestring)) {
            free(v);
            conn_send_simple(c, "error", "message", "userIds: every item must be a user id");
            return;
        }
        snprintf(v[i++], ID_MAX + 1, "%s", x->valuestring);
    }
    rt_watch(c->w->o.rt, c->id, (const char(*)[ID_MAX + 1])v, n);
    free(v);
}

static void
handle_text(struct ws_conn *c, const uint8_t *msg, size_t len)
{
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
        conn_send_simple(c, "error", "message", ch_err_text(&err, m, sizeof m));
        return;
    }
    if (!c->hello) {
        if (strcmp(type, "hello") != 0)
            conn_close(c, 1008, "the first frame must be a hello");
        else
            handle_hello(c, o);
    } else if (!strcmp(type, "ping")) {
        conn_send_simple(c, "pong", NULL, NULL);
    } else if (!strcmp(type, "presence") && c->ready) {
        const char *st = NULL;
        json_get_str(o, "status", true, 1, 16, &st, NULL);
        if (st && (!strcmp(st, "online") || !strcmp(st, "away") || !strcmp(st, "dnd")))
            hub_conn_status(c->w, c, st);
        else
            conn_send_simple(c, "error", "message", "status: must be online, away or dnd");
    } else if (!strcmp(type, "presence.watch") && c->ready) {
        handle_watch(c, o);
    } else if (!strcmp(type, "hello")) {
        conn_send_simple(c, "error", "message", "already said hello");
    } else {
        conn_send_simple(c, "error", "message", "unknown frame type");
    }
    cJSON_Delete(o);
}

/* RFC 6455 5.5: control frames carry at most 125 bytes and are never fragmented. wslay fails such a frame
 * without a close code, so we follow the frame headers in the bytes we hand it and stop short of a bad one; the
 * caller then closes with 1002. Returns how many of the n bytes wslay may have. */
static size_t
scan_frames(struct ws_conn *c, const uint8_t *p, size_t n)
{
    struct ws_scan *sc = &c->scan;
    size_t i = 0;

    while (i < n) {
        if (sc->skip) {
            uint64_t k = sc->skip < n - i ? sc->skip : n - i;
            sc->skip -= k;
            i += (size_t)k;
            continue;
        }
        size_t start = i;
        sc->hdr[sc->hlen++] = p[i++];
        if (sc->hlen == 2) {
            uint8_t len7 = sc->hdr[1] & 0x7f;
            sc->need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((sc->hdr[1] & 0x80) ? 4 : 0));
        }
        if (sc->hlen < 2 || sc->hlen < sc->need)
            continue;
        uint8_t len7 = sc->hdr[1] & 0x7f;
        uint64_t plen = len7;
        if (len7 == 126)
            plen = (uint64_t)sc->hdr[2] << 8 | sc->hdr[3];
        else if (len7 == 127)
            for (int k = 0; k < 8; k++)
                plen = plen << 8 | sc->hdr[2 + k];
        bool control = sc->hdr[0] & 0x08, fin = sc->hdr[0] & 0x80;
        if (!control)
            sc->fragmented = !fin; /* a first or middle fragment opens it; the final one closes it */
        size_t hdr_start = start + 1 >= sc->hlen ? start + 1 - sc->hlen : 0;
        sc->hlen = sc->need = 0;
        sc->skip = plen;
        if (control && (!fin || plen > 125)) {
            c->bad_control = true;
            return hdr_start;
        }
    }
    return n;
}

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    struct ws_conn *c = ud;
    ssize_t n;

    (void)flags;
    if (c->no_read || c->bad_control) {
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
        n = (ssize_t)k;
    } else {
        n = recv(c->fd, buf, len, MSG_DONTWAIT);
    }
    if (n > 0) {
        n = (ssize_t)scan_frames(c, buf, (size_t)n);
        if (n > 0)
            return n;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK); /* the bad frame starts right here */
        return -1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

/* wslay writes only control frames (pongs, the close; small): all of each, so c->out holds whole frames. */
static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct ws_conn *c = ud;

    (void)flags;
    if (!rt_wsout_append(&c->out, data, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

/* A protocol violation: stop handing input to wslay and close with code, ahead of anything queued. */
static void
violation(struct ws_conn *c, uint16_t code, const char *reason)
{
    c->no_read = true;
    conn_abort(c, code, reason);
}

static void
frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
    struct ws_conn *c = ud;

    (void)ctx;
    c->last_recv = clock_mono_ms();
    /* wslay only notices an oversized message once it has buffered it: refuse it from its header */
    if (arg->payload_length > c->w->o.max_message)
        violation(c, 1009, "message too big");
}

static void
msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    struct ws_conn *c = ud;

    (void)ctx;
    c->last_recv = clock_mono_ms();
    if (c->no_read || c->doomed)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME)
        handle_text(c, arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_BINARY_FRAME)
        conn_close(c, 1003, "binary frames are not supported");
}

static const struct wslay_event_callbacks callbacks = {
    recv_cb, send_cb, NULL, frame_start_cb, NULL, NULL, msg_cb,
};

/* Read and drop what a socket we are closing still sends; false when the peer closed its side (or failed). A peer
 * still sending keeps a lingering socket open (see conn_tick). */
static bool
drain_input(struct ws_conn *c)
{
    char buf[4096];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            c->last_recv = clock_mono_ms();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

void
conn_io(struct ws_conn *c, uint32_t events)
{
    if (c->gone)
        return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        if (c->no_read || (c->linger && !want_read(c))) {
            if (!drain_input(c)) {
                conn_free(c);
                return;
            }
        } else if (want_read(c)) {
            if (!conn_ctx(c)) {
                conn_free(c);
                return;
            }
            c->in_recv = true;
            int rv = wslay_event_recv(c->ctx);
            c->in_recv = false;
            if (c->gone) /* a callback ended it (conn_free keeps the memory until conn_reap) */
                return;
            if (c->bad_control && !c->doomed) {
                violation(c, 1002, "control frames must not be fragmented or longer than 125 bytes");
            } else if (rv != 0) {
                /* a protocol violation (wslay has usually queued its close frame) or a dead socket */
                c->no_read = true;
                if (!c->doomed) {
                    c->doomed = true;
                    c->doom_at = clock_mono_ms();
                }
                if (rv == WSLAY_ERR_PROTO && !wslay_event_get_close_sent(c->ctx))
                    wslay_event_queue_close(c->ctx, 1002, (const uint8_t *)"protocol error", 14);
                if (rv != WSLAY_ERR_PROTO && !drain_input(c)) {
                    conn_free(c);
                    return;
                }
            }
        } else if (events & (EPOLLHUP | EPOLLERR)) {
            conn_free(c);
            return;
        }
    }
    if (!c->gone)
        conn_flush(c);
}

void
conn_new(struct ws *w, struct wsq *it)
{
    struct ws_conn *c = calloc(1, sizeof *c);
    struct epoll_event e;
    char key[24];

    if (!c) {
        close(it->fd);
        ws_forget(w, it->ip, it->authed ? POOL_USER : POOL_UNAUTH, it->user);
        return;
    }
    c->id = ++w->next_id;
    c->w = w; /* no wslay context until input arrives (conn_io) */
    snprintf(c->ip, sizeof c->ip, "%s", it->ip);
    c->pool = it->authed ? POOL_USER : POOL_UNAUTH;
    c->fd = it->fd;
    c->extra = it->extra;
    c->extra_len = it->extra_len;
    it->extra = NULL;
    c->authed = it->authed;
    if (c->authed) {
        memcpy(c->user, it->user, sizeof c->user);
        memcpy(c->verifier, it->verifier, sizeof c->verifier);
    }
    c->opened = c->last_recv = c->last_ping = clock_mono_ms();
    snprintf(c->status, sizeof c->status, "online");
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    snprintf(key, sizeof key, "%llx", (unsigned long long)c->id);
    bool oom = false;
    map_put(w->by_id, key, c, &oom);
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.ptr = c;
    c->events = EPOLLIN;
    if (oom || epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        conn_free(c);
        return;
    }
    if (c->extra_len)
        conn_io(c, EPOLLIN); /* the client may have sent its hello with the upgrade request */
}

void
conn_tick(struct ws_conn *c, int64_t now)
{
    struct ws *w = c->w;

    if (c->linger) {
        /* the peer never answered our close. While it is still sending (say, the rest of a message too big for
         * us) we keep reading: closing on unread bytes would reset the connection, and a reset throws away our
         * close frame before the peer has read it; but not for ever */
        int64_t quiet = now - (c->last_recv > c->linger_at ? c->last_recv : c->linger_at);
        if (quiet > WS_LINGER_MS || now - c->linger_at > WS_LINGER_MAX_MS)
            conn_free(c);
        return;
    }
    if (c->doomed) {
        if (now - c->doom_at > WS_DOOM_GRACE_MS)
            conn_free(c); /* never drained its backlog */
        return;
    }
    if (!c->hello && now - c->opened > w->o.hello_ms) {
        conn_close(c, 1008, "no hello received in time");
        return;
    }
    if (now - c->last_recv > w->o.idle_ms) {
        log_info("ws: closing a connection silent for %lld ms", (long long)(now - c->last_recv));
        conn_close(c, 1001, "no response to pings");
        return;
    }
    if (c->soft_since && now - c->soft_since > w->o.soft_grace_ms) {
        log_warn("ws: closing connection of %s: unread messages for %lld ms", c->user,
                 (long long)(now - c->soft_since));
        metrics_inc(MET_WS_SLOW, NULL, NULL);
        conn_abort(c, 1013, "too slow: unread messages for too long");
        return;
    }
    if (now - c->last_ping >= w->o.ping_ms) {
        c->last_ping = now;
        if (!rt_wsout_frame(&c->out, 0x9, "", 0)) /* a ping needs no wslay context */
            conn_free(c);
        else
            conn_flush(c);
        return;
    }
    conn_shed(c);
}
