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

enum rt_kind { RT_CHANGE, RT_TYPING, RT_PRESENCE, RT_REVOKED, RT_ADMIT, RT_REFUSE };

/* One piece of work for rt-worker. */
struct rt_item {
    enum rt_kind kind;
    struct rt_item *next;
    /* RT_CHANGE */
    uint64_t seq;
    char room[ID_MAX + 1], type[32], subject_user[ID_MAX + 1];
    char *frame;
    size_t frame_len;
    char (*aud)[ID_MAX + 1];
    size_t naud;
    /* RT_TYPING (room, user, thread); RT_PRESENCE and RT_REVOKED (key, status, deleted) */
    char user[ID_MAX + 1], thread[ID_MAX + 1], key[256], status[16];
    bool deleted;
    /* RT_ADMIT (conn, user, verifier, resume) and RT_REFUSE (conn, code, reason) */
    uint64_t conn;
    char verifier[CRYPTO_VERIFIER_HEX];
    char resume[24];
    uint16_t code;
    char reason[96];
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

    pthread_mutex_t qmu; /* guards q, qtail, stop */
    pthread_cond_t qcv;
    struct rt_item *q, *qtail;
    bool stop;

    pthread_mutex_t iomu; /* guards auth, pending, io_busy, io_stop */
    pthread_cond_t iocv;
    struct rt_auth *auth, *authtail;
    struct map *pending; /* uid -> status to write ("" = remove), latest wins */
    bool io_busy;        /* rt-io is making calls for requests it took */
    bool io_stop;

    /* rt-io only */
    struct map *mine;     /* uid -> "online"|"away": what this process has written for its users */
    int64_t next_heartbeat;

    /* rt-worker only */
    struct ring_entry *ring;
    size_t ring_cap, ring_start, ring_n;
    uint64_t ring_floor; /* events after this seq are all in the ring */
    struct typer *typers;
    size_t ntypers, captypers;
    struct map *presence; /* "uid.process" -> struct presence_entry */
    struct map *agg;      /* uid -> "online"|"away" (static strings); absent = offline */
    int64_t next_aging;

    pthread_mutex_t pmu; /* guards snap */
    struct map *snap;    /* uid -> static status string, for rt_presence() */

    struct store_sub *typing_sub;
    struct store_watch *presence_w, *tokens_w;
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

/* presence.c: entries and aggregates on rt-worker; this process's own entries on rt-io */
void rt_presence_update(struct rt *rt, const struct rt_item *it);
void rt_presence_tick(struct rt *rt, int64_t now);
/* rt-io: write what rt_local_status asked for, and refresh our entries when the heartbeat is due. */
void rt_presence_write(struct rt *rt, struct map *pending, int64_t now);
/* rt-io, at shutdown: remove every entry of ours (only while NATS answers). */
void rt_presence_leave(struct rt *rt);

/* A JSON frame {"type": type, k: v} (k may be NULL). Caller frees. */
char *rt_frame_simple(const char *type, const char *k, const char *v, size_t *len);
