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

    pthread_t keeper;
    pthread_mutex_t mu; /* guards stop, and the ready cache below */
    pthread_cond_t cv;
    bool stop;
    int64_t ready_checked_ms; /* monotonic */
    bool ready_ok;
    char ready_reason[160];
    char connect_error[160]; /* why the initial connect failed; cleared once connected */
    pthread_mutex_t err_mu;   /* guards the three below */
    natsStatus err_last;      /* asynchronous errors: the last one logged, when, and how many since not logged */
    int64_t err_logged_ms;
    long err_quiet;
    pthread_mutex_t check_mu; /* one live readiness check at a time */

    /* process registry (procs.c); the record and key are set at open, the rest by the keeper */
    char *proc_record;         /* NULL for CLI commands, which do not register */
    char proc_key[96];
    int64_t proc_refreshed_ms; /* monotonic */
    char fatal[640];           /* guarded by mu: why this process must not serve (settings mismatch) */
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

struct store_follower {
    struct store *st;
    enum store_stream stream;
    store_follow_fn fn;
    void *ctx;
    natsSubscription *sub; /* set by the keeper (under st->mu) */
    _Atomic uint64_t target;
    struct store_follower *next;
};

/* Make every registered core subscription that is not made yet (once connected). */
void store_subs_attach(struct store *st);

/* Subscribe every registered follower that is not yet subscribed. Keeper thread, after bootstrap. */
void store_followers_attach(struct store *st);

/* Create every stream and bucket (idempotent). Called by the keeper thread. */
enum ch_status store_bootstrap(struct store *st, struct ch_err *err);

/* nats.c's last error text for this thread, without its "(file.c:123): " prefix; never NULL. */
const char *store_last_error(void);

int64_t store_now_mono_ms(void);
int64_t store_now_ms(void);
