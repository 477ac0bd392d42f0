/* SPDX-License-Identifier: MIT */
/*
 * The reconciler's thread (calls.h): every third of an interval (at most 5 s) it takes or renews the lease; while it holds it, every
 * interval it compares LiveKit's rooms and participants with the active calls and appends the facts that differ,
 * through the same compare-and-set path as the webhooks (lib/chat calls.c), so a fact that arrives twice is
 * recorded once. No lock is held across a NATS or HTTP round trip: the thread owns its state alone.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "calls/calls.h"
#include "chat/chat.h"
#include "livekit/livekit.h"
#include "log/log.h"
#include "store/store.h"

#define LEASE_NAME "livekit_reconciler"
#define LIST_FAILURES_MAX 3
#define HTTP_TIMEOUT_MS 5000

struct calls_reconciler {
    struct calls_reconcile_opts o;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop */
    pthread_cond_t cv;
    bool stop;
    char holder[160]; /* (a copy: the caller's may go) */
    /* the thread's own */
    bool held;
    int failures;
};

static bool
in_parts(const struct chat_call_snap *s, const char *uid)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (!strcmp(s->parts[i].user, uid))
            return true;
    return false;
}

static bool
in_lk(const struct lk_list *l, const char *uid)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->participants[i].identity, uid))
            return true;
    return false;
}

static void
observe(struct calls_reconciler *r, const struct chat_call_snap *s, const char *uid, enum chat_call_obs what,
        const char *why)
{
    struct ch_err err = { 0 };
    bool rec = false;

    if (chat_call_observe(r->o.chat, s->room, s->call_id, uid, what, NULL, &rec, &err) != CH_OK)
        log_warn("calls: reconciling call %s of room %s: %s", s->call_id, s->room, err.msg);
    else if (rec)
        log_info("calls: call %s of room %s: %s%s%s (reconciled with LiveKit)", s->call_id, s->room,
                 what == CHAT_CALL_JOINED ? "joined by " : what == CHAT_CALL_LEFT ? "left by " : "ended: ",
                 uid ? uid : "", why);
}

static void
reconcile_once(struct calls_reconciler *r)
{
    const struct calls_reconcile_opts *o = &r->o;
    struct lk_list rooms = { 0 };
    struct chat_call_snap *snap = NULL;
    size_t n = 0;
    struct ch_err err = { 0 };
    int64_t now = clock_wall_ms(), grace = 2 * o->interval_ms;

    if (lk_rooms_list(o->url, o->api_key, o->api_secret, HTTP_TIMEOUT_MS, &rooms, &err) != CH_OK) {
        if (++r->failures == 1 || r->failures == LIST_FAILURES_MAX)
            log_warn("calls: cannot list LiveKit's rooms (%d in a row): %s", r->failures, err.msg);
        if (r->failures >= LIST_FAILURES_MAX && chat_call_snapshot(o->chat, &snap, &n, &err) == CH_OK) {
            for (size_t i = 0; i < n; i++)
                if (now - snap[i].started_at > grace)
                    observe(r, &snap[i], NULL, CHAT_CALL_FINISHED, "LiveKit cannot be reached");
            chat_call_snapshot_free(snap, n);
        }
        return;
    }
    if (r->failures >= LIST_FAILURES_MAX)
        log_info("calls: LiveKit answers again");
    r->failures = 0;
    if (chat_call_snapshot(o->chat, &snap, &n, &err) != CH_OK) {
        log_warn("calls: reconciling: %s", err.msg);
        lk_list_free(&rooms);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct chat_call_snap *s = &snap[i];
        char name[LK_ROOM_NAME_MAX + 1];
        bool exists = false;
        if (lk_room_name(o->server_id, s->dm, s->room, s->call_id, name, sizeof name, NULL) != CH_OK)
            continue;
        for (size_t k = 0; k < rooms.n && !exists; k++)
            exists = !strcmp(rooms.rooms[k], name);
        struct lk_list ps = { 0 };
        enum ch_status st = exists ? lk_participants_list(o->url, o->api_key, o->api_secret, name, HTTP_TIMEOUT_MS,
                                                          &ps, &err)
                                   : CH_ENOTFOUND;
        if (st == CH_ENOTFOUND) {
            if (now - s->started_at > grace)
                observe(r, s, NULL, CHAT_CALL_FINISHED, "its LiveKit room is gone");
            continue;
        }
        if (st != CH_OK) {
            log_warn("calls: cannot list the participants of %s: %s", name, err.msg);
            continue;
        }
        for (size_t k = 0; k < ps.n; k++)
            if (!strstr(ps.participants[k].metadata, "\"publisherKind\"") &&
                !in_parts(s, ps.participants[k].identity))
                observe(r, s, ps.participants[k].identity, CHAT_CALL_JOINED, "");
        for (size_t k = 0; k < s->nparts; k++)
            if (!in_lk(&ps, s->parts[k].user) && now - s->parts[k].joined_at > grace)
                observe(r, s, s->parts[k].user, CHAT_CALL_LEFT, "");
        lk_list_free(&ps);
    }
    chat_call_snapshot_free(snap, n);
    lk_list_free(&rooms);
}

static void *
run(void *arg)
{
    struct calls_reconciler *r = arg;
    int64_t last = 0;

    for (;;) {
        struct ch_err err = { 0 };
        bool held = false;
        /* a third of the interval (at most 5 s) between lease rounds: the holder renews well before its lease
         * (1.5 intervals) lapses, and a waiting process notices a lapsed one soon after */
        int64_t tick = r->o.interval_ms / 3 < 5000 ? r->o.interval_ms / 3 : 5000;
        if (store_lease_acquire(r->o.store, LEASE_NAME, r->o.holder, r->o.interval_ms * 3 / 2, &held, &err) != CH_OK) {
            held = false; /* NATS not there (yet): do nothing this round (the lease lapses if it lasts) */
            tick = 500;
        }
        if (held != r->held)
            log_info("calls: %s reconciling calls with LiveKit (lease %s)", held ? "now" : "no longer", LEASE_NAME);
        r->held = held;
        if (held && clock_mono_ms() - last >= r->o.interval_ms) {
            last = clock_mono_ms();
            reconcile_once(r);
        }
        pthread_mutex_lock(&r->mu);
        struct timespec ts = clock_deadline(tick);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
            ;
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
    }
    if (r->held)
        store_lease_release(r->o.store, LEASE_NAME, r->o.holder);
    store_thread_exit();
    return NULL;
}

enum ch_status
calls_reconciler_start(const struct calls_reconcile_opts *o, struct calls_reconciler **out, struct ch_err *err)
{
    struct calls_reconciler *r = calloc(1, sizeof *r);

    if (!r)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    r->o = *o;
    snprintf(r->holder, sizeof r->holder, "%s", o->holder);
    r->o.holder = r->holder;
    if (r->o.interval_ms < 1000)
        r->o.interval_ms = 1000;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the calls reconciler thread");
    }
    pthread_setname_np(r->thread, "calls-reconcile");
    *out = r;
    return CH_OK;
}

void
calls_reconciler_stop(struct calls_reconciler *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
