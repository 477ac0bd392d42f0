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
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log/log.h"
#include "base/clock.h"
#include "base/proc.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "metrics/metrics.h"
#include "store/store_int.h"
#include "store/subject.h"

#define FOLLOW_CHECK_MS 2000 /* how often the keeper looks for a stalled follower */
#define FOLLOW_HOLD_LIVE 32          /* spent messages a caught-up follower destroys together ... */
#define FOLLOW_HOLD_BYTES (256 << 10) /* ... unless they hold this much */
#define FOLLOW_TRIM_BACKLOG 20000 /* a backlog this long, once worked off, makes the keeper give memory back */
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
 * messages (deliver_mu held), asking the leader for the next message on our subjects from last + 1: before upto it
 * was skipped; upto itself (or nothing) means the hole is erased messages. False if the leader could not be asked
 * (then nothing past the hole may be delivered: the watchdog resubscribes from the last delivered one). */
static bool
fill_gap(struct store_follower *f, uint64_t upto, int max)
{
    uint64_t start = atomic_load(&f->last) + 1;
    int tries = 0, n = 0;
    bool ok = true;

    while (atomic_load(&f->last) + 1 < upto && n < max) {
        struct store_fetched m;
        uint64_t from = atomic_load(&f->last) + 1;
        natsStatus ns = store_leader_next(f->st, f->stream, follow_filter(f), from, &m);

        if (ns == NATS_NOT_FOUND)
            break;
        if (ns != NATS_OK) {
            if (++tries < FILL_TRIES && !store_closing(f->st)) {
                nats_Sleep(100);
                continue;
            }
            log_error("store: %s follower: cannot fetch messages %llu to %llu, which the server did not deliver "
                      "(%s); waiting for the stream",
                      store_stream_name(f->stream), (unsigned long long)from, (unsigned long long)upto - 1,
                      natsStatus_GetText(ns));
            ok = false;
            break;
        }
        tries = 0;
        if (m.seq >= upto || m.seq < from) {
            store_fetched_free(&m);
            break;
        }
        n++;
        deliver(f, m.seq, m.subject, (const char *)m.data, m.len, m.unix_ms);
        store_fetched_free(&m);
    }
    if (n) {
        log_warn("store: %s follower: the server did not deliver %d message%s between %llu and %llu; fetched %s",
                 store_stream_name(f->stream), n, n == 1 ? "" : "s", (unsigned long long)start,
                 (unsigned long long)upto - 1, n == 1 ? "it" : "them");
        metrics_add(MET_FOLLOWER_REPAIRS, "fetched", NULL, n);
    }
    return ok && (n < max || atomic_load(&f->last) + 1 >= upto);
}

/* nats.c: a subscription of f delivers nothing more. Each subscription counts once, so a late one of an old
 * subscription cannot be taken for its successor's. */
static void
on_sub_complete(void *closure)
{
    struct store_follower *f = closure;

    pthread_mutex_lock(&f->done_mu);
    f->subs_completed++;
    pthread_cond_broadcast(&f->done_cv);
    pthread_mutex_unlock(&f->done_mu);
}

/* Destroy the messages held back (deliver_mu held). */
static void
release_spent(struct store_follower *f)
{
    for (int i = 0; i < f->nspent; i++)
        natsMsg_Destroy(f->spent[i]);
    f->nspent = 0;
    f->spent_bytes = 0;
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
            if (seq == atomic_load(&f->last) + 1 || fill_gap(f, seq, INT_MAX))
                deliver(f, seq, natsMsg_GetSubject(msg), natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
                        meta->Timestamp / 1000000);
        }
        atomic_store(&f->pending, meta->NumPending);
        if (meta->NumPending > f->backlog)
            f->backlog = meta->NumPending;
        more = meta->NumPending > 0;
        jsMsgMetaData_Destroy(meta);
    }
    /* nats.c hands every destroyed message to its collector thread and wakes that thread whenever it sleeps: a
     * wake-up per event was a quarter of a replay's CPU, and one of a dozen per post. While more events are on
     * their way (a replay, a burst), destroy them a batch at a time (one wake-up each); live, a few at a time, at
     * most FOLLOW_HOLD_BYTES, and the keeper's check lets go of what a quiet stream left held. */
    f->spent[f->nspent++] = msg;
    f->spent_bytes += (size_t)natsMsg_GetDataLength(msg) + 256;
    if (f->nspent == (int)(sizeof f->spent / sizeof *f->spent) || f->spent_bytes >= FOLLOW_HOLD_BYTES ||
        (!more && f->nspent >= FOLLOW_HOLD_LIVE))
        release_spent(f);
    pthread_mutex_unlock(&f->deliver_mu);
}

/* Subscribe f from the message after the last one delivered (NATS round trips: stream info, consumer creation).
 * Called without any lock held. */
static enum ch_status
follower_subscribe(struct store_follower *f, natsSubscription **sub, uint64_t *last, struct ch_err *err)
{
    struct store *st = f->st;
    uint64_t from;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs;

    if (f->prepare && !f->prepared) {
        uint64_t start = f->prepare(f->ctx);
        f->prepared = true;
        if (start > atomic_load(&f->last) + 1)
            atomic_store(&f->last, start - 1);
    }
    from = atomic_load(&f->last) + 1;
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
    pthread_mutex_lock(&f->deliver_mu);
    f->fault_count = 0;
    pthread_mutex_unlock(&f->deliver_mu);
    /* what "caught up" means, known before the first message arrives (the chat model tells the replay of history
     * from news by it) */
    atomic_store(&f->target, *last);
    s = js_Subscribe(sub, st->js, follow_filter(f), on_follow_msg, f, NULL, &so, &jerr);
    if (s != NATS_OK)
        return store_map(s, jerr, "follow", err);
    natsSubscription_SetPendingLimits(*sub, -1, -1); /* a replay must never be dropped as a slow consumer */
    pthread_mutex_lock(&f->done_mu);
    f->subs_made++;
    pthread_mutex_unlock(&f->done_mu);
    natsSubscription_SetOnCompleteCB(*sub, on_sub_complete, f);
    return CH_OK;
}

/* Wait until every subscription f ever had has completed (its callback returned for good); false after
 * timeout_ms. */
static bool
wait_completed(struct store_follower *f, int64_t timeout_ms)
{
    struct timespec ts = clock_deadline(timeout_ms);
    bool done;

    pthread_mutex_lock(&f->done_mu);
    while (f->subs_completed < f->subs_made)
        if (pthread_cond_timedwait(&f->done_cv, &f->done_mu, &ts) != 0)
            break;
    done = f->subs_completed >= f->subs_made;
    pthread_mutex_unlock(&f->done_mu);
    return done;
}

/* Unsubscribe (f->sub already taken out) and wait a while for its callback to return for good. */
static bool
follower_unsubscribe(struct store_follower *f, natsSubscription *sub)
{
    bool done;

    natsSubscription_Unsubscribe(sub);
    done = wait_completed(f, 5000);
    natsSubscription_Destroy(sub);
    return done;
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

static uint64_t
trim_backlog(void)
{
    /* test hook: a shorter backlog, so that a test need not append tens of thousands of events */
    const char *t = getenv("CHATTO_TEST_FOLLOWER_TRIM_BACKLOG");

    return t && atoll(t) > 0 ? (uint64_t)atoll(t) : FOLLOW_TRIM_BACKLOG;
}

/* A follower worked off a long backlog (a replay, a burst of appends faster than it applies them). nats.c buffered
 * what the server sent ahead of it, tens of megabytes at millions of events, and the allocator keeps the freed
 * space: at 3M appended events, 175 MB of RSS with 63 MB in use. Those buffers are inherent to catching up with a
 * push consumer, so once it is done, hand the free pages back. */
static void
give_back(struct store_follower *f, uint64_t backlog)
{
    long before = proc_rss_kib();

    malloc_trim(0);
    log_info("store: the %s follower worked off a backlog of %llu events; freed memory given back (RSS %ld -> "
             "%ld KiB)",
             store_stream_name(f->stream), (unsigned long long)backlog, before, proc_rss_kib());
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

        /* stalled: no progress over a whole period although the stream already held more at its start, and it
         * still holds a message after the last one delivered (the newest may have been erased since) */
        bool stalled = ok && last == f->check_last && f->check_stream_last > last;
        if (stalled) {
            struct store_fetched next;
            natsStatus ns = store_leader_next(f->st, f->stream, follow_filter(f), last + 1, &next);
            stalled = ns == NATS_OK || ns == NATS_TIMEOUT;
            if (ns == NATS_OK)
                store_fetched_free(&next);
        }
        pthread_mutex_lock(&st->mu);
        if (stalled) {
            old = f->sub;
            f->sub = NULL; /* store_followers_attach subscribes it again, from last + 1 */
        }
        f->check_ms = now;
        f->check_last = last;
        f->check_stream_last = ok ? stream_last : 0;
        pthread_mutex_unlock(&st->mu);
        bool trim = false;
        if (!old && pthread_mutex_trylock(&f->deliver_mu) == 0) { /* (busy delivering: it lets go itself) */
            release_spent(f);
            trim = f->backlog >= trim_backlog() && atomic_load(&f->pending) == 0;
            uint64_t backlog = f->backlog;
            if (trim)
                f->backlog = 0;
            pthread_mutex_unlock(&f->deliver_mu);
            if (trim)
                give_back(f, backlog);
        }
        if (old) {
            log_warn("store: %s follower has not moved past %llu for %d s while the stream holds %llu: "
                     "subscribing again",
                     store_stream_name(f->stream), (unsigned long long)last, FOLLOW_CHECK_MS / 1000,
                     (unsigned long long)stream_last);
            metrics_inc(MET_FOLLOWER_REPAIRS, "resubscribed", NULL);
            follower_unsubscribe(f, old); /* (if its callback is still busy, deliver_mu keeps the order) */
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

static enum ch_status
follow_new(struct store *st, enum store_stream s, uint64_t start_seq, store_follow_prepare_fn prepare,
           store_follow_fn fn, void *ctx, struct store_follower **out, struct ch_err *err)
{
    struct store_follower *f = calloc(1, sizeof *f);

    if (!f)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    atomic_store(&f->last, start_seq > 0 ? start_seq - 1 : 0);
    f->st = st;
    f->stream = s;
    f->fn = fn;
    f->prepare = prepare;
    f->ctx = ctx;
    fault_parse(f);
    pthread_mutex_init(&f->deliver_mu, NULL);
    pthread_mutex_init(&f->done_mu, NULL);
    pthread_cond_init(&f->done_cv, NULL);
    pthread_mutex_lock(&st->mu);
    f->next = st->followers;
    st->followers = f;
    pthread_cond_signal(&st->cv); /* the keeper subscribes it */
    pthread_mutex_unlock(&st->mu);
    *out = f;
    return CH_OK;
}

enum ch_status
store_follow_from(struct store *st, enum store_stream s, uint64_t start_seq, store_follow_fn fn, void *ctx,
                  struct store_follower **out, struct ch_err *err)
{
    return follow_new(st, s, start_seq, NULL, fn, ctx, out, err);
}

enum ch_status
store_follow_prepared(struct store *st, enum store_stream s, store_follow_prepare_fn prepare, store_follow_fn fn,
                      void *ctx, struct store_follower **out, struct ch_err *err)
{
    return follow_new(st, s, 1, prepare, fn, ctx, out, err);
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
store_follower_replay_end(struct store_follower *f)
{
    return f ? atomic_load(&f->target) : 0;
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
    if (!wait_completed(f, sub ? 0 : 5000)) {
        /* a callback still runs (or may): freeing f under it would be worse than keeping it */
        log_error("store: a %s follower's callback has not returned after 5 s; keeping its memory",
                  store_stream_name(f->stream));
        return;
    }
    pthread_mutex_lock(&f->deliver_mu);
    release_spent(f);
    pthread_mutex_unlock(&f->deliver_mu);
    pthread_mutex_destroy(&f->deliver_mu);
    pthread_mutex_destroy(&f->done_mu);
    pthread_cond_destroy(&f->done_cv);
    free(f);
}
