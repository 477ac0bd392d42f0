/* SPDX-License-Identifier: MIT */
/*
 * Who is who among the sockets (ws-loop thread, except the rt_transport callbacks at the end, which run on
 * rt-worker and only queue work): sockets by id and by user, delivery of frames to a user's sockets, admission,
 * refusal and termination, and this process's per-user status (online if any of the user's sockets is, away if
 * all are), which lib/realtime turns into presence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "ws/ws_int.h"

/* This process's view of uid: dnd if any socket says so (a choice), else online if any socket is online, away if
 * all are away, NULL if none. */
static const char *
local_status(struct ws *w, const char *uid)
{
    struct userconns *u = map_get(w->by_user, uid);
    bool away = false, online = false;

    for (size_t i = 0; u && i < u->n; i++) {
        if (!strcmp(u->v[i]->status, "dnd"))
            return "dnd";
        online |= !strcmp(u->v[i]->status, "online");
        away = true;
    }
    return online ? "online" : away ? "away" : NULL;
}

static bool
same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static void
user_add(struct ws *w, struct ws_conn *c)
{
    struct userconns *u = map_get(w->by_user, c->user);

    if (!u) {
        bool oom = false;
        if (!(u = calloc(1, sizeof *u)))
            return;
        map_put(w->by_user, c->user, u, &oom);
        if (oom) {
            free(u);
            return;
        }
    }
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 1; /* most users have one socket */
        struct ws_conn **nv = realloc(u->v, cap * sizeof *nv);
        if (!nv)
            return;
        u->v = nv;
        u->cap = cap;
    }
    u->v[u->n++] = c;
    c->ready = true;
}

static void
user_del(struct ws *w, struct ws_conn *c)
{
    struct userconns *u = map_get(w->by_user, c->user);

    for (size_t i = 0; u && i < u->n; i++)
        if (u->v[i] == c) {
            u->v[i] = u->v[--u->n];
            break;
        }
    if (u && u->n == 0) {
        map_del(w->by_user, c->user);
        free(u->v);
        free(u);
    }
    c->ready = false;
}

void
hub_conn_added(struct ws *w, struct ws_conn *c)
{
    const char *before = local_status(w, c->user);

    user_add(w, c);
    const char *after = local_status(w, c->user);
    if (!same(before, after))
        rt_local_status(w->o.rt, c->user, after);
}

void
hub_conn_removed(struct ws *w, struct ws_conn *c)
{
    if (!c->ready)
        return;
    const char *before = local_status(w, c->user);
    user_del(w, c);
    const char *after = local_status(w, c->user);
    if (!same(before, after))
        rt_local_status(w->o.rt, c->user, after);
}

void
hub_conn_status(struct ws *w, struct ws_conn *c, const char *status)
{
    const char *before = local_status(w, c->user);

    snprintf(c->status, sizeof c->status, "%s", status);
    const char *after = local_status(w, c->user);
    if (!same(before, after))
        rt_local_status(w->o.rt, c->user, after);
}

static struct ws_conn *
by_id(struct ws *w, uint64_t id)
{
    char key[24];
    struct ws_conn *c;

    snprintf(key, sizeof key, "%llx", (unsigned long long)id);
    c = map_get(w->by_id, key);
    return c && !c->gone ? c : NULL;
}

static void
deliver(struct ws *w, struct wsq *it)
{
    if (it->all) {
        for (struct ws_conn *c = w->conns, *next; c; c = next) {
            next = c->next; /* conn_send may free c (a socket that cannot take more) */
            if (c->ready)
                conn_send(c, it->frame, it->len);
        }
        return;
    }
    for (size_t i = 0; i < it->nusers; i++) {
        struct userconns *u = map_get(w->by_user, it->users[i]);
        size_t j = 0;
        while (u && j < u->n) {
            struct ws_conn *c = u->v[j];
            conn_send(c, it->frame, it->len);
            /* a socket that could not take it is gone: its slot now holds another (or the list is gone) */
            u = map_get(w->by_user, it->users[i]);
            if (u && j < u->n && u->v[j] == c)
                j++;
        }
    }
}

static void
admit(struct ws *w, struct wsq *it)
{
    struct ws_conn *c = by_id(w, it->conn);

    if (!c || c->doomed)
        return;
    if (c->pool == POOL_UNAUTH) { /* it said who it is with its hello: now it counts as that user's */
        bool room = ws_admit_user(w, it->user);
        c->pool = room ? POOL_USER : POOL_NONE;
        if (!room) {
            memcpy(c->user, it->user, sizeof c->user); /* for the log line */
            conn_close(c, 1008, "too many realtime connections for this account");
            return;
        }
    }
    c->authed = true;
    memcpy(c->user, it->user, sizeof c->user);
    memcpy(c->verifier, it->verifier, sizeof c->verifier);
    for (size_t i = 0; i < it->nframes && !c->gone; i++)
        conn_send(c, it->frames[i].data, it->frames[i].len);
    if (!c->gone && !c->doomed)
        hub_conn_added(w, c);
}

static void
terminate(struct ws *w, struct wsq *it)
{
    for (;;) {
        /* closing can free a socket (and so change the user's list): look again after each */
        struct userconns *u = map_get(w->by_user, it->user);
        struct ws_conn *hit = NULL;
        for (size_t i = 0; u && i < u->n && !hit; i++)
            if (!u->v[i]->doomed && !strcmp(u->v[i]->verifier, it->verifier))
                hit = u->v[i];
        if (!hit)
            break;
        conn_send_simple(hit, "session.terminated", "reason",
                         "the session was ended (logout, password change or account disabled)");
        conn_close(hit, 1008, "session terminated"); /* dooms it (skipped next round) or frees it */
    }
    /* sockets still saying hello with that session are not in the list yet */
    for (struct ws_conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (!c->ready && c->authed && !c->gone && !strcmp(c->user, it->user) && !strcmp(c->verifier, it->verifier))
            conn_close(c, 1008, "session terminated");
    }
}

void
hub_handle(struct ws *w, struct wsq *it)
{
    struct ws_conn *c;

    switch (it->kind) {
    case WQ_DELIVER:
        deliver(w, it);
        break;
    case WQ_UNICAST:
        if ((c = by_id(w, it->conn)) && c->ready)
            conn_send(c, it->frame, it->len);
        break;
    case WQ_ADMIT:
        admit(w, it);
        break;
    case WQ_REFUSE:
        if ((c = by_id(w, it->conn)))
            conn_close(c, it->code, it->reason[0] ? it->reason : "refused");
        break;
    case WQ_TERMINATE:
        terminate(w, it);
        break;
    default:
        break;
    }
}

/* ---- struct rt_transport: rt-worker hands us work ---- */

static void
tx_deliver(void *ctx, const char *frame, size_t len, const char (*users)[ID_MAX + 1], size_t n, bool all)
{
    struct wsq *it = calloc(1, sizeof *it);

    if (!it || !(it->frame = malloc(len ? len : 1)) || (!all && n && !(it->users = malloc(n * sizeof *users)))) {
        wsq_free(it);
        log_warn("ws: out of memory; a frame was not delivered");
        return;
    }
    it->kind = WQ_DELIVER;
    metrics_inc(MET_WS_HANDOFFS, NULL, NULL);
    memcpy(it->frame, frame, len);
    it->len = len;
    it->all = all;
    if (!all && n) {
        memcpy(it->users, users, n * sizeof *users);
        it->nusers = n;
    }
    ws_enqueue(ctx, it);
}

static void
tx_admit(void *ctx, uint64_t conn, const char *uid, const char *verifier, struct rt_frame *frames, size_t n)
{
    struct wsq *it = calloc(1, sizeof *it);

    if (!it) {
        for (size_t i = 0; i < n; i++)
            free(frames[i].data);
        free(frames);
        return;
    }
    it->kind = WQ_ADMIT;
    it->conn = conn;
    snprintf(it->user, sizeof it->user, "%s", uid);
    snprintf(it->verifier, sizeof it->verifier, "%s", verifier);
    it->frames = frames;
    it->nframes = n;
    ws_enqueue(ctx, it);
}

static void
tx_refuse(void *ctx, uint64_t conn, uint16_t code, const char *reason)
{
    struct wsq *it = calloc(1, sizeof *it);

    if (!it)
        return;
    it->kind = WQ_REFUSE;
    it->conn = conn;
    it->code = code;
    snprintf(it->reason, sizeof it->reason, "%s", reason);
    ws_enqueue(ctx, it);
}

static void
tx_terminate(void *ctx, const char *uid, const char *verifier)
{
    struct wsq *it = calloc(1, sizeof *it);

    if (!it)
        return;
    it->kind = WQ_TERMINATE;
    snprintf(it->user, sizeof it->user, "%s", uid);
    snprintf(it->verifier, sizeof it->verifier, "%s", verifier);
    ws_enqueue(ctx, it);
}

static void
tx_unicast(void *ctx, uint64_t conn, const char *frame, size_t len)
{
    struct wsq *it = calloc(1, sizeof *it);

    if (!it || !(it->frame = malloc(len ? len : 1))) {
        wsq_free(it);
        return;
    }
    it->kind = WQ_UNICAST;
    it->conn = conn;
    memcpy(it->frame, frame, len);
    it->len = len;
    ws_enqueue(ctx, it);
}

static const struct rt_transport transport = { tx_deliver, tx_admit, tx_refuse, tx_terminate, tx_unicast };

const struct rt_transport *
ws_transport(void)
{
    return &transport;
}
