/* SPDX-License-Identifier: MIT */
/*
 * Followers: ordered consumers replaying a stream from a sequence on and then live, handing every message to a
 * callback in stream order, exactly once, on nats.c's subscription threads.
 *
 * nats.c's ordered consumer recreates itself after a gap in its own sequence or two missed heartbeats, but it
 * cannot see a message the server never sent: after a stream-leader failover under load a new consumer was seen to
 * start one past a message that was acknowledged, and once to stay silent behind the stream while heartbeating.
 * So a follower checks continuity itself:
 * - every message carries its stream sequence; one at or below the last delivered is dropped (a recreated
 *   consumer may repeat), one beyond the next expected first has the messages in between fetched (direct gets of
 *   the next message on the follower's subjects) and delivered in order; erased messages are legitimate holes;
 * - the keeper asks each follower's stream for its last sequence every few seconds: a follower that has not moved
 *   while the stream held messages it had not delivered is resubscribed from where it stopped.
 * Delivery takes the follower's own mutex, so an old subscription's last callback and a new one's first never run
 * at the same time.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "base/clock.h"
#include "metrics/metrics.h"
#include "store/store_int.h"
#include "store/subject.h"

#define FOLLOW_CHECK_MS 2000 /* how often the keeper looks for a stalled follower */
#define FILL_TRIES 3         /* attempts to fetch the messages of a gap before delivering past it */

/* Test hook (CHATTO_TEST_FOLLOWER_FAULT): "drop:N" loses every N-th message a subscription receives, as if the
 * server had skipped it; "stall:N" makes a subscription deaf after its N-th message. Never set in production. */
static void
fault_parse(struct store_follower *f)
{
    const char *v = getenv("CHATTO_TEST_FOLLOWER_FAULT");

    if (!v)
        return;
    if (!strncmp(v, "drop:", 5))
        f->fault_drop = strtoul(v + 5, NULL, 10);
    else if (!strncmp(v, "stall:", 6))
        f->fault_stall = strtoul(v + 6, NULL, 10);
}

/* True if the test hook says this subscription loses this message. */
static bool
fault_hit(struct store_follower *f)
{
    f->fault_count++;
    if (f->fault_drop && f->fault_count % f->fault_drop == 0)
        return true;
    if (f->fault_stall && f->fault_count > f->fault_stall) {
        if (f->fault_count == f->fault_stall + 1)
            log_warn("store: test hook: this %s follower's subscription goes deaf", store_stream_name(f->stream));
        return true;
    }
    return false;
}

static const char *
follow_filter(const struct store_follower *f)
{
    return f->stream == STORE_S_EVENTS ? STORE_SUBJECT_EVENTS_ALL : ">";
}

/* Hand one message on (deliver_mu held). */
static void
deliver(struct store_follower *f, uint64_t seq, const char *subject, const char *data, size_t len, int64_t unix_ms)
{
    f->fn(f->ctx, seq, subject, data, len, unix_ms);
    atomic_store(&f->last, seq);
}

/* Deliver what the stream holds between the last delivered message and upto (exclusive), in order, at most max
 * messages (deliver_mu held). A direct get of the next message on our subjects from last + 1 answers with the
 * first one the stream holds there: before upto it was skipped; upto itself (or nothing) means the hole is erased
 * messages. */
static void
fill_gap(struct store_follower *f, uint64_t upto, int max)
{
    struct store *st = f->st;
    uint64_t start = atomic_load(&f->last) + 1;
    int tries = 0, n = 0;

    while (atomic_load(&f->last) + 1 < upto && n < max) {
        jsDirectGetMsgOptions dg;
        jsOptions jo;
        natsMsg *m = NULL;
        natsStatus ns;
        uint64_t from = atomic_load(&f->last) + 1;

        jsDirectGetMsgOptions_Init(&dg);
        dg.Sequence = from;
        dg.NextBySubject = follow_filter(f);
        jsOptions_Init(&jo);
        jo.Wait = st->timeout_ms < 2000 ? st->timeout_ms : 2000;
        ns = js_DirectGetMsg(&m, st->js, store_stream_name(f->stream), &jo, &dg);
        if (ns == NATS_NOT_FOUND)
            break;
        if (ns != NATS_OK) {
            if (++tries < FILL_TRIES && !store_closing(st))
                continue;
            log_error("store: %s follower: cannot fetch messages %llu to %llu, which the server did not deliver "
                      "(%s); going on without them",
                      store_stream_name(f->stream), (unsigned long long)from, (unsigned long long)upto - 1,
                      natsStatus_GetText(ns));
            break;
        }
        uint64_t seq = natsMsg_GetSequence(m);
        if (seq >= upto || seq < from) {
            natsMsg_Destroy(m);
            break;
        }
        n++;
        deliver(f, seq, natsMsg_GetSubject(m), natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                natsMsg_GetTime(m) / 1000000);
        natsMsg_Destroy(m);
    }
    if (n) {
        log_warn("store: %s follower: the server did not deliver %d message%s between %llu and %llu; fetched %s",
                 store_stream_name(f->stream), n, n == 1 ? "" : "s", (unsigned long long)start,
                 (unsigned long long)upto - 1, n == 1 ? "it" : "them");
        metrics_add(MET_FOLLOWER_REPAIRS, "fetched", NULL, n);
    }
}

/* Destroy the messages held back (deliver_mu held). */
static void
release_spent(struct store_follower *f)
{
    for (int i = 0; i < f->nspent; i++)
        natsMsg_Destroy(f->spent[i]);
    f->nspent = 0;
}

static void
on_follow_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct store_follower *f = closure;
    jsMsgMetaData *meta = NULL;
    bool more = false;

    (void)nc;
    (void)sub;
    pthread_mutex_lock(&f->deliver_mu);
    if ((f->fault_drop || f->fault_stall) && fault_hit(f)) {
        pthread_mutex_unlock(&f->deliver_mu);
        natsMsg_Destroy(msg);
        return;
    }
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        uint64_t seq = meta->Sequence.Stream;
        if (seq > atomic_load(&f->last)) {
            if (seq > atomic_load(&f->last) + 1)
                fill_gap(f, seq, INT_MAX);
            deliver(f, seq, natsMsg_GetSubject(msg), natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
                    meta->Timestamp / 1000000);
        }
        atomic_store(&f->pending, meta->NumPending);
        more = meta->NumPending > 0;
        jsMsgMetaData_Destroy(meta);
    }
    /* nats.c hands every destroyed message to its collector thread and wakes that thread whenever it sleeps: a
     * wake-up per event was a quarter of a replay's CPU. While more events are on their way (a replay, a burst),
     * destroy them a batch at a time (one wake-up each); once caught up, at once, holding nothing back. */
    f->spent[f->nspent++] = msg;
    if (!more || f->nspent == (int)(sizeof f->spent / sizeof *f->spent))
        release_spent(f);
    pthread_mutex_unlock(&f->deliver_mu);
}

/* Subscribe f from the message after the last one delivered (NATS round trips: stream info, consumer creation).
 * Called without any lock held. */
static enum ch_status
follower_subscribe(struct store_follower *f, natsSubscription **sub, uint64_t *last, struct ch_err *err)
{
    struct store *st = f->st;
    uint64_t from = atomic_load(&f->last) + 1;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs;

    if ((cs = store_last_seq(st, f->stream, last, err)) != CH_OK)
        return cs;
    jsSubOptions_Init(&so);
    so.Stream = store_stream_name(f->stream);
    so.Ordered = true;
    so.Config.DeliverPolicy = from > 1 ? js_DeliverByStartSequence : js_DeliverAll;
    if (from > 1)
        so.Config.OptStartSeq = from;
    /* the consumer lives on the stream leader; if that node dies, missed heartbeats make nats.c recreate it
     * elsewhere. nats.c's default (5 s, reset after two misses) would leave this process blind for ~10 s */
    so.Config.Heartbeat = 1000LL * 1000000LL;
    f->fault_count = 0;
    s = js_Subscribe(sub, st->js, follow_filter(f), on_follow_msg, f, NULL, &so, &jerr);
    if (s != NATS_OK)
        return store_map(s, jerr, "follow", err);
    natsSubscription_SetPendingLimits(*sub, -1, -1); /* a replay must never be dropped as a slow consumer */
    natsSubscription_SetOnCompleteCB(*sub, store_sub_done_cb, &f->done);
    return CH_OK;
}

/* Unsubscribe and wait until its callback has returned for good (f->sub already taken out). */
static void
follower_unsubscribe(struct store_follower *f, natsSubscription *sub)
{
    natsSubscription_Unsubscribe(sub);
    /* the handler may be running on nats.c's thread right now: f (and its ctx) live until it returned */
    store_sub_done_wait(&f->done, 5000);
    natsSubscription_Destroy(sub);
}

void
store_followers_attach(struct store *st)
{
    for (;;) {
        struct store_follower *f;
        natsSubscription *sub = NULL;
        uint64_t last = 0;
        struct ch_err err = { 0 };
        enum ch_status cs;

        /* claim one unsubscribed follower, then subscribe it with the lock released: /readyz, the connection
         * callbacks and store_follower_stop must never wait behind a NATS round trip */
        pthread_mutex_lock(&st->mu);
        for (f = st->followers; f && (f->sub || f->attaching); f = f->next)
            ;
        if (f)
            f->attaching = true;
        pthread_mutex_unlock(&st->mu);
        if (!f)
            return;
        cs = follower_subscribe(f, &sub, &last, &err);
        pthread_mutex_lock(&st->mu);
        f->attaching = false;
        if (cs == CH_OK) {
            atomic_store(&f->target, last);
            f->sub = sub;
            f->check_ms = clock_mono_ms();
            f->check_last = atomic_load(&f->last);
            f->check_stream_last = 0;
        }
        pthread_cond_broadcast(&st->attach_cv);
        pthread_mutex_unlock(&st->mu);
        if (cs != CH_OK) {
            log_warn("store: cannot follow %s yet: %s", store_stream_name(f->stream), err.msg);
            return; /* the keeper tries again in a second */
        }
    }
}

/* One follower due for a check: claim it (as attaching, so that store_follower_stop waits), or NULL. */
static struct store_follower *
claim_due(struct store *st, int64_t now)
{
    struct store_follower *f;

    pthread_mutex_lock(&st->mu);
    for (f = st->followers; f && (!f->sub || f->attaching || now - f->check_ms < FOLLOW_CHECK_MS); f = f->next)
        ;
    if (f)
        f->attaching = true;
    pthread_mutex_unlock(&st->mu);
    return f;
}

void
store_followers_check(struct store *st)
{
    struct store_follower *f;
    int64_t now = clock_mono_ms();

    while ((f = claim_due(st, now))) {
        uint64_t stream_last = 0, last = atomic_load(&f->last);
        struct ch_err err = { 0 };
        natsSubscription *old = NULL;
        bool ok = store_last_seq(st, f->stream, &stream_last, &err) == CH_OK;

        /* stalled: no progress over a whole period although the stream already held more at its start */
        bool stalled = ok && last == f->check_last && f->check_stream_last > last;
        pthread_mutex_lock(&st->mu);
        if (stalled) {
            old = f->sub;
            f->sub = NULL; /* store_followers_attach subscribes it again, from last + 1 */
        }
        f->check_ms = now;
        f->check_last = last;
        f->check_stream_last = ok ? stream_last : 0;
        pthread_mutex_unlock(&st->mu);
        if (old) {
            log_warn("store: %s follower has not moved past %llu for %d s while the stream holds %llu: "
                     "subscribing again",
                     store_stream_name(f->stream), (unsigned long long)last, FOLLOW_CHECK_MS / 1000,
                     (unsigned long long)stream_last);
            metrics_inc(MET_FOLLOWER_REPAIRS, "resubscribed", NULL);
            follower_unsubscribe(f, old);
            store_sub_done_reset(&f->done);
            /* what the stream already held is fetched now rather than after a new consumer's set-up */
            pthread_mutex_lock(&f->deliver_mu);
            fill_gap(f, stream_last + 1, 1000); /* (further on, the new consumer catches up) */
            f->fault_stall = 0; /* (the test hook stalls a follower once) */
            release_spent(f);
            pthread_mutex_unlock(&f->deliver_mu);
        }
        pthread_mutex_lock(&st->mu);
        f->attaching = false; /* (held until here: store_follower_stop must not free f under us) */
        pthread_cond_broadcast(&st->attach_cv);
        pthread_mutex_unlock(&st->mu);
    }
    store_followers_attach(st);
}

enum ch_status
store_follow(struct store *st, enum store_stream s, store_follow_fn fn, void *ctx, struct store_follower **out,
             struct ch_err *err)
{
    return store_follow_from(st, s, 1, fn, ctx, out, err);
}

enum ch_status
store_follow_from(struct store *st, enum store_stream s, uint64_t start_seq, store_follow_fn fn, void *ctx,
                  struct store_follower **out, struct ch_err *err)
{
    struct store_follower *f = calloc(1, sizeof *f);

    if (!f)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    atomic_store(&f->last, start_seq > 0 ? start_seq - 1 : 0);
    f->st = st;
    f->stream = s;
    f->fn = fn;
    f->ctx = ctx;
    fault_parse(f);
    pthread_mutex_init(&f->deliver_mu, NULL);
    store_sub_done_init(&f->done);
    pthread_mutex_lock(&st->mu);
    f->next = st->followers;
    st->followers = f;
    pthread_cond_signal(&st->cv); /* the keeper subscribes it */
    pthread_mutex_unlock(&st->mu);
    *out = f;
    return CH_OK;
}

uint64_t
store_follower_pending(struct store_follower *f)
{
    return f ? atomic_load(&f->pending) : 0;
}

bool
store_follower_attached(struct store_follower *f)
{
    bool v;

    if (!f)
        return false;
    pthread_mutex_lock(&f->st->mu);
    v = f->sub != NULL;
    pthread_mutex_unlock(&f->st->mu);
    return v;
}

uint64_t
store_follower_target(struct store_follower *f)
{
    return store_follower_attached(f) ? atomic_load(&f->target) : 0;
}

void
store_follower_stop(struct store_follower *f)
{
    struct store *st;
    natsSubscription *sub;

    if (!f)
        return;
    st = f->st;
    pthread_mutex_lock(&st->mu);
    while (f->attaching) /* the keeper is subscribing or checking it right now: let it finish */
        pthread_cond_wait(&st->attach_cv, &st->mu);
    for (struct store_follower **p = &st->followers; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    sub = f->sub;
    f->sub = NULL;
    pthread_mutex_unlock(&st->mu);
    if (sub)
        follower_unsubscribe(f, sub);
    release_spent(f);
    store_sub_done_destroy(&f->done);
    pthread_mutex_destroy(&f->deliver_mu);
    free(f);
}
