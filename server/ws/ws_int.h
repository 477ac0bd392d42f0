/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Internals shared by loop.c (thread, queue, timers), conn.c (one socket: wslay, buffers, closing) and hub.c
 * (who is who: sockets by id and by user, delivery, per-user status). Everything here belongs to the ws-loop
 * thread except the queue (qmu) and the slot counter (atomic).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <wslay/wslay.h>

#include "base/clock.h"
#include "base/map.h"
#include "crypto/crypto.h"
#include "ws/ws.h"

#define WS_DOOM_GRACE_MS 5000 /* a closing socket that does not take its backlog is cut off after this */
#define WS_LINGER_MS 2000     /* after our close frame: how long we wait for the peer once it has gone quiet */
#define WS_LINGER_MAX_MS 10000 /* ... and at most, however long it keeps sending */
#define WS_CLOSE_FLUSH_MS 2000
/* Frames are gathered per socket (struct rt_wsout) and written with one send() per loop iteration: a burst of
 * events costs one system call per socket, and one copy of each frame, not wslay's two. */

enum wsq_kind { WQ_CONN, WQ_DELIVER, WQ_UNICAST, WQ_ADMIT, WQ_REFUSE, WQ_TERMINATE, WQ_STOP };

/* Work for the loop, from other threads. */
struct wsq {
    enum wsq_kind kind;
    struct wsq *next;
    /* WQ_CONN */
    int fd;
    char ip[64];
    char *extra;
    size_t extra_len;
    bool authed;
    char user[ID_MAX + 1];
    char verifier[CRYPTO_VERIFIER_HEX];
    /* WQ_DELIVER: frame to users (all: everyone); WQ_UNICAST: frame to conn */
    char *frame;
    size_t len;
    char (*users)[ID_MAX + 1];
    size_t nusers;
    bool all;
    /* WQ_ADMIT (conn, user, verifier, frames), WQ_REFUSE (conn, code, reason), WQ_TERMINATE (user, verifier) */
    uint64_t conn;
    struct rt_frame *frames;
    size_t nframes;
    uint16_t code;
    char reason[96];
};

/* Where we are in the incoming frame stream (conn.c follows the headers). */
struct ws_scan {
    uint8_t hdr[14];
    uint8_t hlen, need;
    bool fragmented; /* inside a message sent in several frames */
    uint64_t skip;   /* payload bytes still to pass */
};

struct ws_conn {
    uint64_t id;
    int fd;
    wslay_event_context_ptr ctx; /* reading only (8.8 KB); NULL while no input is in flight (conn_shed) */
    struct ws *w;
    char *extra;
    size_t extra_len, extra_off;
    bool authed;     /* credentials known (from the upgrade, or once the hello's token passed) */
    bool hello;      /* hello received (rt decides; no second hello) */
    bool ready;      /* admitted: receives its user's frames */
    bool doomed;     /* no more events; closing */
    bool gone;       /* freed at the end of this loop iteration */
    bool no_read;    /* a protocol violation: wslay reads nothing more; we drop what still arrives */
    bool linger;     /* our close went out: read and drop until the peer closes or WS_LINGER_MS passes */
    bool bad_control; /* a control frame over 125 bytes or fragmented: wslay gets nothing from it on */
    bool in_recv;     /* inside wslay_event_recv: its callbacks queue, conn_io writes once it returns */
    struct ws_scan scan;
    char user[ID_MAX + 1]; /* the principal's id and session verifier: all a socket needs to keep */
    char ip[64];           /* the client's address (counted against max_per_ip) */
    enum { POOL_UNAUTH, POOL_USER, POOL_NONE } pool; /* which count besides its address holds it */
    char verifier[CRYPTO_VERIFIER_HEX];
    char status[8]; /* online | away */
    int64_t opened, last_recv, last_ping, soft_since, doom_at, linger_at;
    uint32_t events; /* current epoll interest */
    bool dirty;      /* has queued frames; flushed once at the end of the loop iteration */
    struct rt_wsout out; /* frames the socket did not take yet; no buffer while empty */
    struct ws_conn *next, *prev, *dirty_next, *grave_next;
};

struct ws {
    struct ws_opts o;
    int ep, efd;
    pthread_t loop;
    bool loop_started, quiesced;

    pthread_mutex_t qmu; /* guards q, qtail */
    struct wsq *q, *qtail;

    atomic_int slots; /* reserved + open sockets */

    pthread_mutex_t cmu;  /* guards the three counts below (upgrade workers, and ws-loop at admission and close) */
    struct map *per_ip;   /* address -> (uintptr_t) sockets */
    struct map *per_user; /* uid -> (uintptr_t) sockets */
    int unauthenticated;

    /* ws-loop only */
    struct ws_conn *conns;
    struct ws_conn *dirty; /* sockets with frames queued during this loop iteration */
    struct ws_conn *graves; /* sockets conn_free() ended during this loop iteration: conn_reap() frees them */
    uint64_t next_id;
    struct map *by_id;   /* "<id in hex>" -> struct ws_conn */
    struct map *by_user; /* uid -> struct userconns (admitted sockets only) */
    bool stopping;
    int64_t stop_deadline;
    size_t adopted_since_trim; /* sockets adopted since the heap was last trimmed (see tick) */
    int64_t last_adopt, trimmed_at;
};

struct userconns {
    struct ws_conn **v;
    size_t n, cap;
};

void ws_enqueue(struct ws *w, struct wsq *it);
void wsq_free(struct wsq *it);

/* conn.c */
void conn_new(struct ws *w, struct wsq *it);
void conn_io(struct ws_conn *c, uint32_t events);
void conn_send(struct ws_conn *c, const char *frame, size_t len);
void conn_send_simple(struct ws_conn *c, const char *type, const char *k, const char *v);
void conn_flush(struct ws_conn *c);
void conn_mark_dirty(struct ws_conn *c);
/* Stop sending events and close: after the backlog (conn_close) or ahead of it (conn_abort: a reader too slow to
 * keep up would never read its way to the close frame). */
void conn_close(struct ws_conn *c, uint16_t code, const char *reason);
void conn_abort(struct ws_conn *c, uint16_t code, const char *reason);
/* End a socket at once: out of every list and count, its descriptor closed. The memory stays until conn_reap()
 * at the end of the loop iteration, because a caller up the stack (wslay inside a callback, conn_io, the
 * epoll batch) may still hold it; they check `gone`. */
void conn_free(struct ws_conn *c);
void conn_reap(struct ws *w);
/* Timers for one socket (pings, hello and idle timeouts, slow readers, lingering). */
void conn_tick(struct ws_conn *c, int64_t now);

/* loop.c: the counts behind ws_reserve */
/* An unauthenticated socket passed its hello as uid: out of the unauthenticated pool, into uid's count; false
 * (and in no count) when uid has its max_per_user already. */
bool ws_admit_user(struct ws *w, const char *uid);
/* A socket ends: its address, and its pool (uid for POOL_USER), stop counting it; its slot is free. */
void ws_forget(struct ws *w, const char *ip, int pool, const char *uid);

/* hub.c */
void hub_conn_added(struct ws *w, struct ws_conn *c);
void hub_conn_removed(struct ws *w, struct ws_conn *c);
/* The socket's own status changed (a presence frame). */
void hub_conn_status(struct ws *w, struct ws_conn *c, const char *status);
void hub_handle(struct ws *w, struct wsq *it);
