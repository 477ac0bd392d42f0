/* SPDX-License-Identifier: MIT */
#pragma once
/* Internals shared by the files of lib/store only. */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

struct store {
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    int replicas;
    int64_t asset_cache_ttl_ms; /* 0: ASSET_CACHE is not ours to create or check */
    int64_t snapshot_ttl_ms;    /* 0: PROJECTION_SNAPSHOTS is not ours to create or check */
    int64_t timeout_ms;
    char *nkey_seed; /* kept for the signature callback; zeroed on close */
    char urls[512];  /* for log lines */

    kvStore *kv[STORE_B_COUNT]; /* set by the keeper before `bootstrapped` becomes true, read-only after */
    struct store_follower *followers; /* guarded by mu; subscribed by the keeper once bootstrapped */
    struct store_sub *subs;           /* guarded by mu; core subscriptions, made once connected */
    pthread_mutex_t closed_mu;        /* the closed callback has run (store_close waits for it) */
    pthread_cond_t closed_cv;
    bool closed;
    char server_id[40];
    int64_t server_created_ms;

    atomic_bool bootstrapped;
    atomic_bool closing;
    atomic_bool up; /* the connection is up: set and cleared by nats.c's callbacks, read without any lock (nats.c's
                     * own status call takes the connection's mutex, which a stalled socket write can hold) */

    pthread_t keeper;
    pthread_mutex_t mu; /* guards stop, connect_error, fatal and the followers' and subscriptions' lists */
    pthread_cond_t cv;
    pthread_cond_t attach_cv; /* a follower or subscription finished attaching (see store_follower_stop) */
    bool stop;
    char connect_error[160]; /* why the initial connect failed; cleared once connected */

    /* readiness (health.c): the "store-health" thread asks JetStream, store_ready() only reads */
    pthread_t health;
    pthread_mutex_t hmu; /* guards the fields below; never held across a NATS call */
    pthread_cond_t hcv;
    bool hstop;
    int64_t asking_since_ms;  /* monotonic; since when health requests go unanswered (0: the last one answered) */
    int64_t last_answer_ms;   /* monotonic; the last time JetStream answered a health request */
    bool checked;             /* a full check has completed since the store was bootstrapped */
    bool check_ok;            /* ... and its result */
    char check_reason[160];
    struct log_limit *err_limit; /* asynchronous errors: each kind once, then at most every 30 s */

    /* process registry (procs.c); the record and key are set at open, the rest by the keeper */
    char *proc_record;         /* NULL for CLI commands, which do not register */
    char proc_key[96];
    int64_t proc_refreshed_ms; /* monotonic */
    char fatal[640];           /* guarded by mu: why this process must not serve (settings mismatch) */
    bool operator_command;     /* store_opts.operator_command */

    /* the leader each clustered stream last named in a STREAM.INFO answer (events.c, leader_last_seq) */
    pthread_mutex_t lmu;
    struct {
        char stream[64], leader[64];
    } leaders[32];
};

#define PROCS_REFRESH_MS 10000
#define PROCS_TTL_S 30

/* Fingerprint the must-match settings into this process's record. */
enum ch_status store_procs_init(struct store *st, const struct store_opts *o, struct ch_err *err);
/* Register this process and compare its settings with every running process's; CH_EINVAL (and st->fatal)
 * when one differs from a process that registered earlier. Keeper thread, after the buckets exist. */
enum ch_status store_procs_join(struct store *st, struct ch_err *err);
/* Refresh the record when due. Keeper thread. */
void store_procs_refresh(struct store *st);
/* Remove the record (clean shutdown) and free it. */
void store_procs_leave(struct store *st);

/* Map a nats.c status (and JetStream error code, 0 if none) into our status, with what in the message. */
enum ch_status store_map(natsStatus s, jsErrCode jerr, const char *what, struct ch_err *err);

/* A subscription's end: nats.c calls its completion callback once the handler has returned for the last time,
 * so whoever frees what the handler uses waits for it (store_sub_done_wait). */
struct store_sub_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};
void store_sub_done_init(struct store_sub_done *d);
void store_sub_done_destroy(struct store_sub_done *d);
/* nats.c completion callback (closure: struct store_sub_done *). */
void store_sub_done_cb(void *closure);
/* Wait (at most timeout_ms) until the completion callback ran. */
void store_sub_done_wait(struct store_sub_done *d, int64_t timeout_ms);

struct store_follower {
    struct store *st;
    enum store_stream stream;
    store_follow_fn fn;
    store_follow_prepare_fn prepare; /* NULL, or called once before the first subscription (keeper thread) */
    bool prepared;                   /* keeper thread */
    void *ctx;
    natsSubscription *sub; /* under st->mu: set by the keeper once subscribed */
    bool attaching;        /* under st->mu: the keeper is subscribing or checking it (without the lock) */
    int64_t check_ms;           /* under st->mu / keeper: when the keeper last looked at it */
    uint64_t check_last;        /* ... the last delivered sequence then */
    uint64_t check_stream_last; /* ... and the stream's last sequence then (0: unknown) */
    pthread_mutex_t done_mu;   /* guards the two counts below */
    pthread_cond_t done_cv;    /* a subscription completed */
    unsigned subs_made, subs_completed; /* subscriptions made; those whose callback returned for good */
    pthread_mutex_t deliver_mu; /* held while a message is handed on: one at a time, in order */
    _Atomic uint64_t last;      /* the last sequence handed on (start - 1 before the first) */
    _Atomic uint64_t target; /* the stream's last sequence when the current subscription was made */
    _Atomic uint64_t pending; /* events after the last one delivered, as the server counted when it sent it */
    uint64_t backlog;         /* the most pending seen since memory was last given back (under deliver_mu) */
    unsigned long fault_drop, fault_stall, fault_count; /* test hook (follow.c); count under deliver_mu */
    /* delivered messages not destroyed yet (under deliver_mu; store_follower_stop's once the last callback
     * returned) */
    natsMsg *spent[256];
    int nspent;
    size_t spent_bytes;
    struct store_follower *next;
};

/* Make every registered core subscription that is not made yet (once connected). */
void store_subs_attach(struct store *st);

/* Subscribe every registered follower that is not yet subscribed. Keeper thread, after bootstrap. */
void store_followers_attach(struct store *st);
/* Resubscribe followers stalled behind their stream, then attach any not subscribed. Keeper thread. */
void store_followers_check(struct store *st);

/* Start / stop the store-health thread (health.c). */
enum ch_status store_health_start(struct store *st, struct ch_err *err);
void store_health_stop(struct store *st);

/* Create every stream and bucket (idempotent). Called by the keeper thread. */
enum ch_status store_bootstrap(struct store *st, struct ch_err *err);

/* True on the thread running store_bootstrap(st): it may use the buckets it has bound (the layout migration runs
 * there) before the store counts as bootstrapped for everyone else. */
bool store_bootstrapping(const struct store *st);

/* Before bootstrap changes anything: refuse (CH_EINVAL and st->fatal) a store whose layout is newer than
 * STORE_LAYOUT_VERSION. A store without chatto_meta is fine. Keeper thread. */
enum ch_status store_layout_check(struct store *st, struct ch_err *err);
/* Once every bucket is bound: write the current layout version into a fresh store, or migrate an older one
 * (exactly one process does, under the lease "layout"; the others wait, up to a bound, then CH_EUNAVAIL so the
 * keeper tries again). Keeper thread, inside store_bootstrap. */
enum ch_status store_layout_migrate(struct store *st, struct ch_err *err);
/* Operator commands instead of store_layout_migrate: a fresh store gets the current version as with a server; an
 * older layout is refused (st->fatal), not migrated: a server does that when it starts. Keeper thread. */
enum ch_status store_layout_require_current(struct store *st, struct ch_err *err);
/* CH_EUNAVAIL (saying who and until when) while `chatto restore` holds STORE_RESTORE_LEASE; CH_OK otherwise,
 * also when there is no chatto_leases bucket yet. Reads through nats.c directly: runs before the buckets are
 * bound. Keeper thread (lease.c). */
enum ch_status store_restore_check(struct store *st, struct ch_err *err);

/* nats.c's last error text for this thread, without its "(file.c:123): " prefix; never NULL. */
const char *store_last_error(void);

/* A message fetched from a stream's leader (events.c; the caller frees it with store_fetched_free). */
struct store_fetched {
    uint64_t seq;
    char *subject;
    unsigned char *data; /* NUL-terminated */
    size_t len;
    int64_t unix_ms;
};
void store_fetched_free(struct store_fetched *m);
/* The first message on filter's subjects at or after sequence from, asked of the stream's leader (STREAM.MSG.GET
 * with next_by_subj): unlike a direct get, which any replica may answer from a moment behind, the leader holds
 * every acknowledged message, so "nothing there" means erased. NATS_NOT_FOUND when there is none. */
natsStatus store_leader_next(struct store *st, enum store_stream s, const char *filter, uint64_t from,
                             struct store_fetched *out);
