/* SPDX-License-Identifier: MIT */
/*
 * Read-your-writes: sync_events (resp. sync_reads, sync_users) learns the last sequence of CHATTO_EVENTS (resp.
 * the last revision of the reads or users bucket) and waits until the local model has applied it, so a command
 * sees every write acknowledged anywhere before it started. Concurrent callers share one NATS request per round
 * (struct syncer). Called by the command files on HTTP worker threads; never with the model lock held.
 */
#include "chat/chat_int.h"
#include "store/store.h"

void
sync_init(struct chat *c)
{
    struct syncer *ss[] = { &c->sync_ev, &c->sync_reads, &c->sync_users };
    for (int i = 0; i < 3; i++) {
        pthread_mutex_init(&ss[i]->mu, NULL);
        pthread_cond_init(&ss[i]->cv, NULL);
    }
}

void
sync_destroy(struct chat *c)
{
    struct syncer *ss[] = { &c->sync_ev, &c->sync_reads, &c->sync_users };
    for (int i = 0; i < 3; i++) {
        pthread_mutex_destroy(&ss[i]->mu);
        pthread_cond_destroy(&ss[i]->cv);
    }
}

typedef enum ch_status (*last_fn)(struct chat *c, uint64_t *out, struct ch_err *err);

static enum ch_status
syncer_last(struct chat *c, struct syncer *s, last_fn fn, uint64_t *out, struct ch_err *err)
{
    uint64_t target;
    enum ch_status st;

    pthread_mutex_lock(&s->mu);
    target = s->started + 1; /* the first round that starts after we arrived */
    while (s->done < target) {
        if (s->busy) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        s->busy = true;
        uint64_t round = ++s->started;
        pthread_mutex_unlock(&s->mu);
        struct ch_err e = { 0 };
        uint64_t v = 0;
        enum ch_status rs = fn(c, &v, &e);
        pthread_mutex_lock(&s->mu);
        s->result = v;
        s->status = rs;
        s->err = e;
        s->done = round;
        s->busy = false;
        pthread_cond_broadcast(&s->cv);
    }
    st = s->status;
    *out = s->result;
    if (st != CH_OK && err)
        *err = s->err;
    pthread_mutex_unlock(&s->mu);
    return st;
}

static enum ch_status
last_event(struct chat *c, uint64_t *out, struct ch_err *err)
{
    return store_last_seq(c->store, STORE_S_EVENTS, out, err);
}

static enum ch_status
last_read_rev(struct chat *c, uint64_t *out, struct ch_err *err)
{
    return store_kv_last_rev(c->store, STORE_B_READS, out, err);
}

static enum ch_status
last_user_rev(struct chat *c, uint64_t *out, struct ch_err *err)
{
    return store_kv_last_rev(c->store, STORE_B_USERS, out, err);
}

/* Everything acknowledged before now is in our model afterwards. */
enum ch_status
sync_events(struct chat *c, struct ch_err *err)
{
    uint64_t last = 0;
    enum ch_status st;

    if ((st = syncer_last(c, &c->sync_ev, last_event, &last, err)) != CH_OK)
        return st;
    if (!chat_model_wait(c->m, last, c->timeout_ms))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "this server is catching up with recent changes; retry");
    return CH_OK;
}

enum ch_status
sync_reads(struct chat *c, struct ch_err *err)
{
    uint64_t rev = 0;
    enum ch_status st;

    if ((st = syncer_last(c, &c->sync_reads, last_read_rev, &rev, err)) != CH_OK)
        return st;
    if (!chat_model_wait_reads(c->m, rev, c->timeout_ms))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "this server is catching up with recent changes; retry");
    return CH_OK;
}

enum ch_status
sync_users(struct chat *c, struct ch_err *err)
{
    uint64_t rev = 0;
    enum ch_status st;

    if ((st = syncer_last(c, &c->sync_users, last_user_rev, &rev, err)) != CH_OK)
        return st;
    if (!chat_model_wait_users(c->m, rev, c->timeout_ms))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "this server is catching up with recent changes; retry");
    return CH_OK;
}
