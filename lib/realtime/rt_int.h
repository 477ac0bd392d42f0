/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Internals shared by the files of lib/realtime only.
 *
 * Locking: `qmu` guards the worker's queue; `iomu` guards the io thread's requests; `pmu` guards `snap`. None is
 * held across a NATS call or a transport callback, and none is taken while another is held. Everything else is
 * owned by one thread: ring, typers, presence entries and aggregates by rt-worker; `mine` by rt-io.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "base/map.h"
#include "crypto/crypto.h"
#include "realtime/realtime.h"

#define RT_TICK_MS 250

enum rt_kind { RT_CHANGE, RT_NOTIFY, RT_TYPING, RT_PRESENCE, RT_LOCAL, RT_WATCH, RT_GONE, RT_REVOKED, RT_ADMIT, RT_REFUSE };

/* One piece of work for rt-worker (one a socket's hello, admission, status and goodbye: kept small). */
struct rt_item {
    enum rt_kind kind;
    struct rt_item *next;
    /* RT_CHANGE; RT_NOTIFY (frame, aud: the one user it is for) */
    uint64_t seq;
    char room[ID_MAX + 1], type[32], subject_user[ID_MAX + 1];
    char *frame;
    size_t frame_len;
    char (*aud)[ID_MAX + 1];
    size_t naud;
    /* RT_TYPING (room, user, thread); RT_REVOKED (key); RT_LOCAL (user, status: "" = gone);
     * RT_PRESENCE (key: the subject, frame: the announcement); RT_WATCH (conn, frame: the user ids, ID_MAX + 1
     * bytes each, naud of them); RT_GONE (conn) */
    char user[ID_MAX + 1], thread[ID_MAX + 1], status[16];
    char *key; /* RT_PRESENCE, RT_REVOKED: allocated to size (a subject, a credential key) */
    /* RT_ADMIT (conn, user, verifier, resume) and RT_REFUSE (conn, code, reason) */
    uint64_t conn;
    char verifier[CRYPTO_VERIFIER_HEX];
    char resume[24];
    uint16_t code;
    const char *reason; /* static */
};

/* A hello token to check on rt-io. */
struct rt_auth {
    struct rt_auth *next;
    uint64_t conn;
    char token[512];
    char resume[24];
};

struct ring_entry {
    uint64_t seq;
    char room[ID_MAX + 1], type[32], subject_user[ID_MAX + 1];
    char *frame;
    size_t len;
};

/* Presence (presence.c). A status is a small code: PRES_OFF (absent), PRES_AWAY, PRES_ONLINE, PRES_DND. */
enum { PRES_OFF = 0, PRES_AWAY = 1, PRES_ONLINE = 2, PRES_DND = 3 };

/* What one process (ourselves included) says about the users it holds sockets for (rt-worker). */
struct pres_proc {
    char key[ID_MAX + 1];
    uint64_t epoch, seq;
    int64_t heard;        /* monotonic: the last announcement */
    struct map *users;    /* uid -> (uintptr_t) PRES_* */
    struct map *building; /* a full summary arriving in parts */
    uint64_t building_id;
};

/* The sockets that show one user (rt-worker): the user's id once, and back-links into their watch lists. */
struct pres_conns;
struct pres_link {
    struct pres_conns *pc; /* the user shown */
    uint32_t at;           /* this watch's index in pc->v */
};
struct pres_slot {
    struct pres_watch *w;
    uint32_t at; /* the index of the link to us in w->links */
};
struct pres_conns {
    char uid[ID_MAX + 1];
    struct pres_slot *v;
    uint32_t n, cap;
    uint32_t own; /* how many of them are uid's own sockets (links[0]): uid is connected here */
};

/* One socket's watch list and what changed for it since its last presence frame (rt-worker). The list holds
 * links, not ids: 16 bytes a user shown, and a change reaches the socket without a lookup. links[0] is its own
 * user. */
struct pres_watch {
    uint64_t conn;
    struct pres_link *links;
    uint32_t n, cap;
    struct pres_change {
        struct pres_conns *pc;
        int status;
    } *pending; /* allocated while changes wait; freed once sent */
    uint32_t npending, cappending;
    int64_t last_sent; /* monotonic */
    bool due;          /* on rt->pres_due */
};

struct typer {
    char room[ID_MAX + 1], user[ID_MAX + 1], thread[ID_MAX + 1];
    int64_t expires;
};

struct rt {
    struct rt_opts o;
    char instance_key[64];
    const struct rt_transport *tx;
    void *tx_ctx;
    atomic_bool live; /* the chat model finished its start-up replay: its changes are news */

    pthread_t worker, io;
    bool started, io_running; /* main thread only */

    pthread_mutex_t qmu; /* guards q, qtail, nq, stop */
    pthread_cond_t qcv;
    struct rt_item *q, *qtail;
    size_t nq;
    bool stop;
    atomic_size_t nlocal; /* sockets admitted here or whose admission is queued (up when it is queued, down when it
                           * fails or the socket's watch goes; read by whoever enqueues) */

    pthread_mutex_t iomu; /* guards auth, pending, io_busy, io_stop */
    pthread_cond_t iocv;
    struct rt_auth *auth, *authtail;
    struct map *pending; /* uid -> status to announce ("" = gone), latest wins */
    struct map *resync;  /* processes to ask for a full summary */
    bool io_busy;        /* rt-io is making calls for requests it took */
    bool io_stop;

    /* rt-io only */
    struct map *mine;     /* uid -> (uintptr_t) PRES_*: what this process has announced for its users */
    int64_t next_heartbeat;
    uint64_t epoch, seq;  /* our announcements: this run's random epoch and their sequence */
    bool full_due;        /* under iomu: someone asked for our full summary (a new process, a gap) */
    bool hello_due;       /* under iomu: ask every process for its summary (we just started) */

    /* rt-worker only */
    struct ring_entry *ring;
    size_t ring_cap, ring_start, ring_n;
    uint64_t ring_floor; /* events after this seq are all in the ring */
    struct typer *typers;
    size_t ntypers, captypers;
    struct map *procs;    /* process key -> struct pres_proc (ours included) */
    struct map *counts;   /* uid -> struct pres_count: how many processes say online / away */
    struct map *watches;  /* "<conn in hex>" -> struct pres_watch */
    struct map *watchers; /* uid -> struct pres_conns: the sockets showing uid (only while any does) */
    struct pres_watch **pres_due; /* watches with changes to send */
    size_t ndue, capdue;
    int64_t next_aging;

    pthread_mutex_t pmu; /* guards snap */
    struct map *snap;    /* uid -> static status string, for rt_presence() */

    struct store_sub *typing_sub, *presence_sub;
    struct store_sub *notify_sub; /* new notifications (any process made them) */
};

/* Queue work for rt-worker (takes it). */
void rt_enqueue(struct rt *rt, struct rt_item *it);
void rt_item_free(struct rt_item *it);

/* ring.c (rt-worker) */
enum ch_status rt_ring_init(struct rt *rt);
void rt_ring_free(struct rt *rt);
void rt_ring_push(struct rt *rt, const struct rt_item *it);
/* Answer an authenticated hello: the frames the socket gets before live events (reset?, ready, what it missed). */
void rt_ring_admit(struct rt *rt, const struct rt_item *it);

/* typing.c (rt-worker) */
void rt_typing_update(struct rt *rt, const struct rt_item *it);
void rt_typing_tick(struct rt *rt, int64_t now);
void rt_typing_free(struct rt *rt);

/* presence.c: processes' announcements, aggregates and watches on rt-worker; our announcements on rt-io */
enum ch_status rt_presence_init(struct rt *rt);
void rt_presence_free(struct rt *rt);
/* rt-worker: an announcement or request heard on core NATS (it->key: subject, it->frame: payload). */
void rt_presence_heard(struct rt *rt, const struct rt_item *it);
/* rt-worker: one of our users' status on this process changed. */
/* uid's record changed (custom status): the sockets that show uid get a fresh presence entry for them. */
void rt_presence_touch(struct rt *rt, const char *uid);
void rt_presence_local(struct rt *rt, const char *uid, int status);
/* rt-worker: a socket was admitted (conn, its user; false: out of memory, refuse it) / says what it shows / is
 * gone. */
bool rt_presence_admit(struct rt *rt, uint64_t conn, const char *uid);
/* rt-worker: keep those of ids[0..n) with a socket admitted here, in place; how many are left. A frame for the
 * others has nobody to reach in this process. */
size_t rt_presence_local_only(struct rt *rt, char (*ids)[ID_MAX + 1], size_t n);
void rt_presence_watch(struct rt *rt, const struct rt_item *it);
void rt_presence_gone(struct rt *rt, uint64_t conn);
/* rt-worker: age out silent processes; send what is due. */
void rt_presence_tick(struct rt *rt, int64_t now);
void rt_presence_flush(struct rt *rt, int64_t now);
/* rt-io: announce what rt_local_status asked for (pending: uid -> status string, "" = gone), and our full
 * summary when due. */
void rt_presence_announce(struct rt *rt, struct map *pending, int64_t now);
/* rt-io, at shutdown: say we are going, so our users go offline at once everywhere. */
void rt_presence_leave(struct rt *rt);

/* A JSON frame {"type": type, k: v} (k may be NULL). Caller frees. */
char *rt_frame_simple(const char *type, const char *k, const char *v, size_t *len);
