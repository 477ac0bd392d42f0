/* SPDX-License-Identifier: MIT */
/*
 * The chat core's lifetime and its feeds: chat_new starts the read model's follower on CHATTO_EVENTS, the two KV
 * watchers (users, read positions) and the eraser; chat_free stops them. The feed callbacks only hand what they
 * get to the model (model.c). Also readiness, the realtime listener and the directory lookup.
 *
 * The commands live beside this file, one concern each: rooms.c dms.c messages.c reactions.c history.c reads.c
 * realtime.c, on top of sync.c (read-your-writes), append.c (the write path) and access.c (who may do what).
 * Subjects: one per room, member and message (store/subject.h builds them).
 *
 * Threads: chat_new/chat_free on the main thread; the callbacks on the store's follower and watcher threads;
 * the rest on HTTP worker threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "log/log.h"
#include "store/store.h"
#include "store/subject.h"

/* ---- feeding the model ---- */

static void
on_event(void *ctx, uint64_t seq, const char *subject, const char *data, size_t len, int64_t ms)
{
    struct chat *c = ctx;

    if (!atomic_load(&c->m->live))
        atomic_store(&c->m->replay_target, store_follower_replay_end(c->follower));
    char need[ID_MAX + 1];
    /* about a message of the cold timeline (a reply: up to two): bring it back, then apply; anyway after that (one
     * that cannot be fetched now lands on a stub, and a command naming the message brings its post back later) */
    int tries = 0;
    while (!chat_model_apply(c->m, seq, subject, data, len, ms, tries < 2 ? need : NULL)) {
        struct store_event_subject s;
        struct ch_err err = { 0 };
        tries++;
        if (store_subject_event_parse(subject, &s) && chat_cold_restore(c, s.room, need, &err) != CH_OK &&
            err.status != CH_ENOTFOUND)
            log_warn("chat: bringing back message %s of room %s: %s", need, s.room, err.msg);
    }
    notifier_feed(c, seq, subject, data, len, ms);
}

static void
on_user(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    chat_model_user(((struct chat *)ctx)->m, key, val, len, rev);
}

static void
on_read(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    chat_model_read(((struct chat *)ctx)->m, key, val, len, rev);
}

enum ch_status
chat_new(const struct chat_opts *o, struct chat **out, struct ch_err *err)
{
    struct chat *c = calloc(1, sizeof *c);
    enum ch_status st;

    if (!c || !(c->m = chat_model_new(o->cache_bytes))) {
        free(c);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    chat_model_set_resident(c->m, o->resident_messages);
    chat_model_set_idle(c->m, o->resident_idle_ms);
    c->store = o->store;
    c->edit_window_ms = o->edit_window_ms;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    sync_init(c);
    pthread_mutex_init(&c->snap.mu, NULL);
    pthread_cond_init(&c->snap.cv, NULL);
    c->snap.enabled = o->snapshots;
    c->snap.every = o->snapshot_events ? o->snapshot_events : 20000;
    c->snap.retention_ms = o->snapshot_retention_ms > 0 ? o->snapshot_retention_ms : 7LL * 86400 * 1000;
    snprintf(c->snap.holder, sizeof c->snap.holder, "%s", o->holder ? o->holder : "chatto");
    for (char *p = c->snap.holder; *p; p++) /* a lease holder is a KV-key-safe id */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '_';
    if ((st = store_kv_watch(c->store, STORE_B_USERS, ">", on_user, c, &c->users_w, err)) != CH_OK ||
        (st = store_kv_watch(c->store, STORE_B_READS, ">", on_read, c, &c->reads_w, err)) != CH_OK ||
        (st = store_follow_prepared(c->store, STORE_S_EVENTS, snapshot_loader(c), on_event, c, &c->follower,
                                    err)) != CH_OK) {
        chat_free(c);
        return st;
    }
    c->notifier.pull = !o->no_notifier;
    if ((st = eraser_start(c, err)) != CH_OK || (st = notifier_start(c, err)) != CH_OK ||
        (st = snapshot_start(c, err)) != CH_OK) {
        chat_free(c);
        return st;
    }
    *out = c;
    return CH_OK;
}

void
chat_free(struct chat *c)
{
    if (!c)
        return;
    notifier_stop(c); /* (writes what was queued while NATS is still there) */
    pusher_stop(c);   /* (after the notifier: nothing queues pushes any more) */
    snapshot_stop(c);
    eraser_stop(c);
    store_follower_stop(c->follower);
    notifier_destroy(c);
    store_kv_watch_stop(c->users_w);
    store_kv_watch_stop(c->reads_w);
    chat_model_free(c->m);
    sync_destroy(c);
    pthread_mutex_destroy(&c->snap.mu);
    pthread_cond_destroy(&c->snap.cv);
    free(c);
}

void
chat_set_listener(struct chat *c, chat_listener_fn fn, void *ctx)
{
    pthread_rwlock_wrlock(&c->m->lock);
    c->m->listener = fn;
    c->m->listener_ctx = ctx;
    pthread_rwlock_unlock(&c->m->lock);
}

bool
chat_ready(struct chat *c, char *reason, size_t len)
{
    if (!store_follower_attached(c->follower)) {
        snprintf(reason, len, "read model not subscribed yet");
        return false;
    }
    uint64_t target = store_follower_target(c->follower), applied = chat_model_applied(c->m);
    if (applied < target) {
        snprintf(reason, len, "replaying history (%" PRIu64 " of %" PRIu64 ")", applied, target);
        return false;
    }
    pthread_mutex_lock(&c->m->mu);
    bool loaded = c->m->users_loaded && c->m->reads_loaded;
    pthread_mutex_unlock(&c->m->mu);
    if (!loaded) {
        snprintf(reason, len, "loading users and read positions");
        return false;
    }
    if (!atomic_load(&c->notifier.consumer)) { /* posts before the position exists would never notify anyone */
        snprintf(reason, len, "setting up notifications");
        return false;
    }
    return true;
}

void
chat_stats(struct chat *c, struct chat_stats *out)
{
    size_t it = 0;
    const char *key;
    void *val;

    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&c->m->lock);
    out->rooms = map_len(c->m->rooms);
    out->users = map_len(c->m->users);
    while (map_next(c->m->rooms, &it, &key, &val)) {
        const struct chat_room *r = val;
        out->messages += map_len(r->msgs) + r->cold.n + r->thread_cold;
        out->cold += r->cold.n + r->thread_cold;
    }
    pthread_rwlock_unlock(&c->m->lock);
    out->lag = store_follower_pending(c->follower);
    struct body_cache_stats bs;
    body_cache_stats(c->m->bodies, &bs);
    out->body_bytes = bs.bytes;
    out->bodies = bs.entries;
}

bool
chat_lookup_user(struct chat *c, const char *uid, struct user *out)
{
    const struct user *u;
    bool found;

    pthread_rwlock_rdlock(&c->m->lock);
    u = model_user(c->m, uid);
    if ((found = u != NULL))
        *out = *u;
    pthread_rwlock_unlock(&c->m->lock);
    return found;
}
