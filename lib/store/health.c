/* SPDX-License-Identifier: MIT */
/*
 * Readiness, refreshed in the background. The "store-health" thread pings the NATS server four times a second
 * (a PING/PONG, no JetStream work) and asks JetStream for the info of every stream and bucket every two seconds
 * (their leaders and quorums), and records what it learned; store_ready() (any thread: /readyz, the main
 * loop) only reads that record under a mutex that is never held across a NATS call, so it answers at once even
 * while NATS does not. A request that stays unanswered longer than HEALTH_STALL_MS makes the process unready
 * ("JetStream not answering for 1.2 s") before nats.c's pings would notice (they take up to 15 s).
 */
#include <stdio.h>
#include <string.h>

#include "log/log.h"
#include "base/clock.h"
#include "store/store_int.h"

#define HEALTH_INTERVAL_MS 250
#define HEALTH_FULL_MS 2000
/* A stream-info answer takes well under a millisecond on an idle server and rarely 100 ms on a busy one;
 * 700 ms without one means a stalled or lost server (and with the interval, unready within a second). */
#define HEALTH_STALL_MS 700
#define HEALTH_WAIT_MS 2000

static bool stop_requested(struct store *st, int64_t wait_ms);

/* A replicated stream can take writes only with a leader and a majority of its replicas current. A leader cut
 * off from the others still answers stream-info for a while, so the answer's cluster part is what tells. */
static bool
has_quorum(const jsStreamInfo *si, const char *name, char *reason, size_t len)
{
    const jsClusterInfo *ci = si->Cluster;
    int want, current = 1;

    if (!si->Config || si->Config->Replicas <= 1 || !ci)
        return true;
    if (!ci->Leader || !*ci->Leader) {
        snprintf(reason, len, "JetStream stream %s has no leader", name);
        return false;
    }
    for (int i = 0; i < ci->ReplicasLen; i++)
        if (ci->Replicas[i] && ci->Replicas[i]->Current && !ci->Replicas[i]->Offline)
            current++;
    want = (int)si->Config->Replicas / 2 + 1;
    if (current < want) {
        snprintf(reason, len, "JetStream stream %s has lost quorum (%d of %d replicas current)", name, current,
                 (int)si->Config->Replicas);
        return false;
    }
    return true;
}

/* Before a health request (answered = false), and after it. asking_since_ms is when the first request that got
 * no answer was sent: a timeout leaves it, so the stall is measured from its start, across retries. */
static void
mark_asking(struct store *st, bool after, bool answered)
{
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&st->hmu);
    if (!after && !st->asking_since_ms)
        st->asking_since_ms = now;
    if (after && answered) {
        st->asking_since_ms = 0;
        st->last_answer_ms = now;
    }
    pthread_mutex_unlock(&st->hmu);
}

/* One full check: every bucket's stream and the event stream answer a stream-info request, with a quorum. */
static bool
live_check(struct store *st, char *reason, size_t len)
{
    jsOptions jo;

    jsOptions_Init(&jo);
    jo.Wait = st->timeout_ms < HEALTH_WAIT_MS ? st->timeout_ms : HEALTH_WAIT_MS;
    for (int i = 0; i < STORE_S_COUNT + STORE_B_COUNT; i++) {
        char name[64];
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s;

        if (i < STORE_S_COUNT && !store_stream_used(st, (enum store_stream)i))
            continue;
        if (i < STORE_S_COUNT)
            snprintf(name, sizeof name, "%s", store_stream_name((enum store_stream)i));
        else
            snprintf(name, sizeof name, "KV_%s", store_bucket_name((enum store_bucket)(i - STORE_S_COUNT)));
        mark_asking(st, false, false);
        s = js_GetStreamInfo(&si, st->js, name, &jo, &jerr);
        /* an error from JetStream itself is still an answer: the server is there */
        mark_asking(st, true, s == NATS_OK || jerr != 0);
        if (s != NATS_OK) {
            jsStreamInfo_Destroy(si);
            snprintf(reason, len, "JetStream not answering for %s: %s", name,
                     *store_last_error() ? store_last_error() : natsStatus_GetText(s));
            return false;
        }
        bool quorum = has_quorum(si, name, reason, len);
        jsStreamInfo_Destroy(si);
        if (!quorum)
            return false;
        if (stop_requested(st, 0))
            return false;
    }
    snprintf(reason, len, "ok");
    return true;
}

/* Wait up to wait_ms (0: just look); true once store_health_stop() was called. */
static bool
stop_requested(struct store *st, int64_t wait_ms)
{
    bool stop;

    pthread_mutex_lock(&st->hmu);
    if (wait_ms > 0 && !st->hstop) {
        struct timespec ts = clock_deadline(wait_ms);
        pthread_cond_timedwait(&st->hcv, &st->hmu, &ts);
    }
    stop = st->hstop;
    pthread_mutex_unlock(&st->hmu);
    return stop;
}

static void *
health_main(void *arg)
{
    struct store *st = arg;
    int64_t next_full = 0;

    while (!stop_requested(st, HEALTH_INTERVAL_MS)) {
        char reason[160];
        bool ok;

        if (!atomic_load(&st->up) || !atomic_load(&st->bootstrapped)) {
            pthread_mutex_lock(&st->hmu);
            st->checked = false; /* what we knew is stale; a reconnect starts afresh */
            st->asking_since_ms = 0;
            pthread_mutex_unlock(&st->hmu);
            next_full = 0;
            continue;
        }
        if (clock_mono_ms() < next_full) {
            /* between full checks: does the server answer at all? */
            mark_asking(st, false, false);
            mark_asking(st, true, natsConnection_FlushTimeout(st->nc, HEALTH_WAIT_MS) == NATS_OK);
            continue;
        }
        next_full = clock_mono_ms() + HEALTH_FULL_MS;
        ok = live_check(st, reason, sizeof reason);
        pthread_mutex_lock(&st->hmu);
        st->checked = true;
        st->check_ok = ok;
        snprintf(st->check_reason, sizeof st->check_reason, "%s", reason);
        pthread_mutex_unlock(&st->hmu);
    }
    nats_ReleaseThreadMemory();
    return NULL;
}

enum ch_status
store_health_start(struct store *st, struct ch_err *err)
{
    if (pthread_create(&st->health, NULL, health_main, st) != 0)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the store-health thread");
    pthread_setname_np(st->health, "store-health");
    return CH_OK;
}

void
store_health_stop(struct store *st)
{
    pthread_mutex_lock(&st->hmu);
    st->hstop = true;
    pthread_cond_broadcast(&st->hcv);
    pthread_mutex_unlock(&st->hmu);
    pthread_join(st->health, NULL);
}

bool
store_answering(struct store *st)
{
    int64_t asking;

    if (!store_connected(st))
        return false;
    pthread_mutex_lock(&st->hmu);
    asking = st->asking_since_ms;
    pthread_mutex_unlock(&st->hmu);
    return !asking || clock_mono_ms() - asking <= HEALTH_STALL_MS;
}

bool
store_ready(struct store *st, char *reason, size_t len)
{
    int64_t asking, now;
    bool checked, ok;

    if (!st) {
        snprintf(reason, len, "storage not started");
        return false;
    }
    if (!atomic_load(&st->up)) {
        pthread_mutex_lock(&st->mu);
        if (st->connect_error[0])
            snprintf(reason, len, "NATS not connected (%s)", st->connect_error);
        else
            snprintf(reason, len, "NATS not connected");
        pthread_mutex_unlock(&st->mu);
        return false;
    }
    if (store_fatal(st, reason, len))
        return false;
    if (!atomic_load(&st->bootstrapped)) {
        snprintf(reason, len, "creating JetStream streams and buckets");
        return false;
    }
    now = clock_mono_ms();
    pthread_mutex_lock(&st->hmu);
    asking = st->asking_since_ms;
    checked = st->checked;
    ok = st->check_ok;
    snprintf(reason, len, "%s", checked ? st->check_reason : "checking JetStream");
    pthread_mutex_unlock(&st->hmu);
    if (asking && now - asking > HEALTH_STALL_MS) {
        snprintf(reason, len, "JetStream not answering for %.1f s", (double)(now - asking) / 1000.0);
        return false;
    }
    return checked && ok;
}
