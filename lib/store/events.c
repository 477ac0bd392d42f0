/* SPDX-License-Identifier: MIT */
/*
 * Streams: publishing with expectations and message ids, the last sequence, secure erase, followers (ordered
 * consumers replaying a stream from the start and then live) and KV watchers. Any thread; follower callbacks
 * run on nats.c's subscription threads, watcher callbacks on a thread per watcher.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log/log.h"
#include "base/clock.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "metrics/metrics.h"
#include "store/store_int.h"
#include "store/subject.h"

/* Subjects we publish to: dot-separated tokens of [A-Za-z0-9_=-], none empty, no wildcards or spaces. */
static bool
subject_valid(const char *s)
{
    size_t tok = 0;

    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (c == '.') {
            if (tok == 0)
                return false;
            tok = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '='))
            return false;
        tok++;
    }
    return tok > 0;
}

/* Requests that are safe to repeat are resent every second until the request deadline instead of waiting once
 * for all of it: while a stream elects a new leader requests go unanswered (or are lost with the old leader),
 * and the first one sent after the election is answered at once. */
static int64_t
attempt_wait(int64_t deadline)
{
    int64_t left = deadline - clock_mono_ms();

    return left < 1000 ? (left > 50 ? left : 50) : 1000;
}

/* Whether an attempt that ended with s should be repeated (pausing briefly when nobody answered at all). */
static bool
resend(natsStatus s, int64_t deadline)
{
    if ((s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS) || clock_mono_ms() + 100 >= deadline)
        return false;
    if (s == NATS_NO_RESPONDERS)
        nats_Sleep(100);
    return true;
}

enum ch_status
store_publish(struct store *st, const char *subject, const void *data, size_t len, const struct store_pub_opts *o,
              uint64_t *seq, bool *dup, struct ch_err *err)
{
    jsPubOptions po;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs;

    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    if (!subject_valid(subject))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid subject");
    jsPubOptions_Init(&po);
    po.MaxWait = st->timeout_ms;
    if (o) {
        po.MsgId = o->msg_id;
        po.ExpectNoMessage = o->expect_none;
        po.ExpectLastSubjectSeq = o->expect_subject_seq;
    }
    int64_t t0 = clock_mono_us();
    if (o && o->msg_id) {
        /* with a message id a resend is safe: the stream drops the duplicate */
        int64_t deadline = clock_mono_ms() + st->timeout_ms;
        do {
            po.MaxWait = attempt_wait(deadline);
            jerr = 0;
            s = js_Publish(&ack, st->js, subject, data, (int)len, &po, &jerr);
        } while (resend(s, deadline));
    } else {
        s = js_Publish(&ack, st->js, subject, data, (int)len, &po, &jerr);
    }
    cs = store_map(s, jerr, "publish", err);
    metrics_observe(MET_JS_PUBLISH_DURATION, NULL, (double)(clock_mono_us() - t0) / 1e6);
    if (cs != CH_OK && cs != CH_ECONFLICT) /* (a failed expectation is an answer, not an error) */
        metrics_inc(MET_JS_ERRORS, "publish", NULL);
    if (cs == CH_OK) {
        if (seq)
            *seq = ack->Sequence;
        if (dup)
            *dup = ack->Duplicate;
    }
    jsPubAck_Destroy(ack);
    return cs;
}

/* Stream info, resent until the request deadline (see attempt_wait). */
static natsStatus
stream_info(struct store *st, const char *name, jsStreamInfo **si, jsErrCode *jerr)
{
    int64_t deadline = clock_mono_ms() + st->timeout_ms;
    jsOptions jo;
    natsStatus s;

    jsOptions_Init(&jo);
    do {
        jo.Wait = attempt_wait(deadline);
        *jerr = 0;
        s = js_GetStreamInfo(si, st->js, name, &jo, jerr);
    } while (resend(s, deadline));
    return s;
}

/* Remember leader as the one stream named last; true if it named another before (not the first answer). */
static bool
leader_changed(struct store *st, const char *stream, const char *leader)
{
    size_t n = sizeof st->leaders / sizeof *st->leaders, i;
    bool changed = false;

    pthread_mutex_lock(&st->lmu);
    for (i = 0; i < n && st->leaders[i].stream[0] && strcmp(st->leaders[i].stream, stream); i++)
        ;
    if (i < n) {
        if (!st->leaders[i].stream[0])
            snprintf(st->leaders[i].stream, sizeof st->leaders[i].stream, "%s", stream);
        else
            changed = strcmp(st->leaders[i].leader, leader) != 0;
        snprintf(st->leaders[i].leader, sizeof st->leaders[i].leader, "%s", leader);
    }
    pthread_mutex_unlock(&st->lmu);
    return changed;
}

/* The last sequence of a stream, including every message acknowledged before the call (read-your-writes across
 * processes). STREAM.INFO of a clustered stream is not always the leader's word (nats-server 2.9.10): a member that
 * believes the stream has no leader answers with its own, possibly lagging state and names no leader
 * (jetstream_api.go, jsStreamInfoRequest), and a leader elected a moment ago answers before it has applied what it
 * had committed (raft.go, switchToLeader). So an answer that names no leader is asked again, and after a change of
 * leader the question is asked once more a moment later and the larger answer taken. */
static natsStatus
leader_last_seq(struct store *st, const char *name, uint64_t *seq, jsErrCode *jerr)
{
    int64_t deadline = clock_mono_ms() + st->timeout_ms;
    uint64_t best = 0;
    bool again = false;

    for (;;) {
        jsStreamInfo *si = NULL;
        natsStatus s = stream_info(st, name, &si, jerr);
        if (s != NATS_OK)
            return s;
        const jsClusterInfo *ci = si->Cluster;
        bool clustered = ci && ci->ReplicasLen > 0, leaderless = clustered && (!ci->Leader || !ci->Leader[0]);
        bool changed = clustered && !leaderless && leader_changed(st, name, ci->Leader);
        uint64_t last = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
        if (!leaderless) {
            best = last > best ? last : best;
            if (!changed || again) {
                *seq = best;
                return NATS_OK;
            }
            again = true;
        }
        if (clock_mono_ms() + 100 >= deadline)
            return leaderless ? NATS_TIMEOUT : (*seq = best, NATS_OK);
        nats_Sleep(100);
    }
}

enum ch_status
store_last_seq(struct store *st, enum store_stream s, uint64_t *seq, struct ch_err *err)
{
    jsErrCode jerr = 0;
    natsStatus ns;

    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    ns = leader_last_seq(st, store_stream_name(s), seq, &jerr);
    return store_map(ns, jerr, store_stream_name(s), err);
}

enum ch_status
store_kv_last_rev(struct store *st, enum store_bucket b, uint64_t *rev, struct ch_err *err)
{
    jsErrCode jerr = 0;
    natsStatus ns;
    char name[64];

    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    snprintf(name, sizeof name, "KV_%s", store_bucket_name(b));
    ns = leader_last_seq(st, name, rev, &jerr);
    return store_map(ns, jerr, name, err);
}

enum ch_status
store_erase(struct store *st, enum store_stream s, uint64_t seq, struct ch_err *err)
{
    jsErrCode jerr = 0;
    natsStatus ns;

    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    ns = js_EraseMsg(st->js, store_stream_name(s), seq, NULL, &jerr);
    if (ns != NATS_OK && (jerr == JSSequenceNotFoundErr || jerr == JSNoMessageFoundErr))
        return CH_OK; /* already gone */
    return store_map(ns, jerr, "erase", err);
}

static enum ch_status
copy_msg(natsMsg *m, char **subject, char **data, size_t *len, struct ch_err *err)
{
    int n = natsMsg_GetDataLength(m);
    const char *subj = NULL;

    /* a direct get's reply names the message's subject in a header */
    if (natsMsgHeader_Get(m, "Nats-Subject", &subj) != NATS_OK || !subj)
        subj = natsMsg_GetSubject(m);
    *subject = strdup(subj ? subj : "");
    *data = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!*subject || !*data) {
        free(*subject);
        free(*data);
        *subject = *data = NULL;
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (n > 0)
        memcpy(*data, natsMsg_GetData(m), (size_t)n);
    (*data)[n > 0 ? n : 0] = '\0';
    *len = (size_t)(n > 0 ? n : 0);
    return CH_OK;
}

enum ch_status
store_get(struct store *st, enum store_stream s, uint64_t seq, char **subject, char **data, size_t *len,
          struct ch_err *err)
{
    jsDirectGetMsgOptions dg;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsMsg *m = NULL;
    natsStatus ns;
    enum ch_status cs;

    *subject = *data = NULL;
    *len = 0;
    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    jsDirectGetMsgOptions_Init(&dg);
    dg.Sequence = seq;
    jsOptions_Init(&jo);
    jo.Wait = st->timeout_ms;
    ns = js_DirectGetMsg(&m, st->js, store_stream_name(s), &jo, &dg);
    if (ns == NATS_NOT_FOUND) /* a replica a moment behind, or really gone: the leader knows */
        ns = js_GetMsg(&m, st->js, store_stream_name(s), seq, &jo, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr || jerr == JSSequenceNotFoundErr)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "message %llu is gone", (unsigned long long)seq);
    if (ns != NATS_OK)
        return store_map(ns, jerr, "get", err);
    cs = copy_msg(m, subject, data, len, err);
    natsMsg_Destroy(m);
    return cs;
}

void
store_fetched_free(struct store_fetched *m)
{
    free(m->subject);
    free(m->data);
    memset(m, 0, sizeof *m);
}

natsStatus
store_leader_next(struct store *st, enum store_stream s, const char *filter, uint64_t from, struct store_fetched *out)
{
    char subj[128], req[STORE_SUBJECT_MAX + 64];
    natsMsg *reply = NULL;
    natsStatus ns;
    cJSON *doc = NULL;
    const cJSON *msg, *e;

    memset(out, 0, sizeof *out);
    snprintf(subj, sizeof subj, "$JS.API.STREAM.MSG.GET.%s", store_stream_name(s));
    if (snprintf(req, sizeof req, "{\"seq\":%llu,\"next_by_subj\":\"%s\"}", (unsigned long long)from, filter) >=
        (int)sizeof req)
        return NATS_INVALID_ARG;
    ns = natsConnection_Request(&reply, st->nc, subj, req, (int)strlen(req), st->timeout_ms < 2000 ? st->timeout_ms : 2000);
    if (ns != NATS_OK)
        return ns;
    doc = cJSON_ParseWithLength(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
    natsMsg_Destroy(reply);
    if ((e = cJSON_GetObjectItemCaseSensitive(doc, "error"))) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        ns = cJSON_IsNumber(code) && code->valuedouble == 404 ? NATS_NOT_FOUND : NATS_ERR;
    } else if (!(msg = cJSON_GetObjectItemCaseSensitive(doc, "message")) ||
               !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(msg, "seq")) ||
               !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "subject"))) {
        ns = NATS_ERR;
    } else {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(msg, "data");
        const char *b64 = cJSON_IsString(data) ? data->valuestring : "";
        size_t max = strlen(b64) / 4 * 3 + 3;
        out->seq = (uint64_t)cJSON_GetObjectItemCaseSensitive(msg, "seq")->valuedouble;
        out->subject = strdup(cJSON_GetObjectItemCaseSensitive(msg, "subject")->valuestring);
        out->data = malloc(max + 1);
        if (!json_parse_time(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "time")), &out->unix_ms))
            out->unix_ms = 0;
        if (!out->subject || !out->data || !crypto_base64_decode_any(b64, strlen(b64), out->data, max, &out->len)) {
            store_fetched_free(out);
            ns = NATS_ERR;
        } else {
            out->data[out->len] = '\0';
        }
    }
    cJSON_Delete(doc);
    return ns;
}

enum ch_status
store_get_next(struct store *st, enum store_stream s, const char *subject, uint64_t from, uint64_t *seq, char **data,
               size_t *len, struct ch_err *err)
{
    jsDirectGetMsgOptions dg;
    jsOptions jo;
    natsMsg *m = NULL;
    natsStatus ns;
    char *subj = NULL;
    enum ch_status cs;
    const char *seqh = NULL;

    *seq = 0;
    *data = NULL;
    *len = 0;
    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    jsDirectGetMsgOptions_Init(&dg);
    dg.Sequence = from ? from : 1;
    dg.NextBySubject = subject;
    jsOptions_Init(&jo);
    jo.Wait = st->timeout_ms;
    ns = js_DirectGetMsg(&m, st->js, store_stream_name(s), &jo, &dg);
    if (ns == NATS_OK) {
        if (natsMsgHeader_Get(m, "Nats-Sequence", &seqh) != NATS_OK || !seqh) {
            natsMsg_Destroy(m);
            return ch_err_set(err, CH_EUNAVAIL, NULL, "a direct get answered without a sequence");
        }
        *seq = strtoull(seqh, NULL, 10);
        cs = copy_msg(m, &subj, data, len, err);
        free(subj);
        natsMsg_Destroy(m);
        return cs;
    }
    if (ns != NATS_NOT_FOUND)
        return store_map(ns, 0, "get", err);
    /* a replica a moment behind, or really none: the leader knows */
    struct store_fetched f;
    ns = store_leader_next(st, s, subject, from ? from : 1, &f);
    if (ns == NATS_NOT_FOUND)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "nothing on %s", subject);
    if (ns != NATS_OK)
        return store_map(ns, 0, "get", err);
    *seq = f.seq;
    *data = (char *)f.data;
    *len = f.len;
    f.data = NULL;
    store_fetched_free(&f);
    return CH_OK;
}

enum ch_status
store_get_many(struct store *st, enum store_stream s, const uint64_t *seqs, size_t n, store_got_fn fn, void *ctx,
               struct ch_err *err)
{
    natsSubscription *sub = NULL;
    natsInbox *inbox = NULL;
    natsStatus ns;
    char subj[96];
    bool *got = NULL;
    size_t ngot = 0;
    int64_t deadline;
    enum ch_status cs = CH_OK;

    if (!n)
        return CH_OK;
    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    if (n == 1) { /* nothing to overlap */
        char *subject = NULL, *data = NULL;
        size_t len = 0;
        if ((cs = store_get(st, s, seqs[0], &subject, &data, &len, err)) == CH_OK)
            fn(ctx, 0, subject, data, len);
        free(subject);
        free(data);
        return cs == CH_ENOTFOUND ? CH_OK : cs;
    }
    if (!(got = calloc(n, sizeof *got)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    snprintf(subj, sizeof subj, "$JS.API.DIRECT.GET.%s", store_stream_name(s));
    ns = natsInbox_Create(&inbox);
    if (ns == NATS_OK)
        ns = natsConnection_SubscribeSync(&sub, st->nc, inbox);
    if (ns == NATS_OK)
        natsSubscription_SetPendingLimits(sub, -1, -1);
    for (size_t i = 0; i < n && ns == NATS_OK; i++) {
        char req[48];
        int k = snprintf(req, sizeof req, "{\"seq\":%llu}", (unsigned long long)seqs[i]);
        ns = natsConnection_PublishRequest(st->nc, subj, inbox, req, k);
    }
    if (ns == NATS_OK)
        natsConnection_Flush(st->nc);
    deadline = clock_mono_ms() + st->timeout_ms;
    while (ns == NATS_OK && ngot < n) {
        natsMsg *m = NULL;
        const char *seqh = NULL, *sh = NULL;
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0 || natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
            break; /* the rest go to the leader below */
        ngot++;
        /* an answer without a sequence is "not here" (404): the leader is asked below */
        if (natsMsgHeader_Get(m, "Nats-Sequence", &seqh) == NATS_OK && seqh &&
            natsMsgHeader_Get(m, "Nats-Subject", &sh) == NATS_OK && sh) {
            uint64_t q = strtoull(seqh, NULL, 10);
            for (size_t i = 0; i < n; i++)
                if (seqs[i] == q && !got[i]) {
                    int len = natsMsg_GetDataLength(m);
                    char *copy = malloc((size_t)(len > 0 ? len : 0) + 1);
                    if (copy) {
                        if (len > 0)
                            memcpy(copy, natsMsg_GetData(m), (size_t)len);
                        copy[len > 0 ? len : 0] = '\0';
                        got[i] = true;
                        fn(ctx, i, sh, copy, (size_t)(len > 0 ? len : 0));
                        explicit_bzero(copy, (size_t)(len > 0 ? len : 0));
                        free(copy);
                    }
                    break;
                }
        }
        natsMsg_Destroy(m);
    }
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    natsInbox_Destroy(inbox);
    for (size_t i = 0; i < n && cs == CH_OK; i++) {
        char *subject = NULL, *data = NULL;
        size_t len = 0;
        enum ch_status gs;
        if (got[i])
            continue;
        if ((gs = store_get(st, s, seqs[i], &subject, &data, &len, err)) == CH_OK)
            fn(ctx, i, subject, data, len);
        else if (gs != CH_ENOTFOUND)
            cs = gs;
        free(subject);
        free(data);
    }
    free(got);
    return cs;
}

/* ---- subscription completion ---- */

void
store_sub_done_init(struct store_sub_done *d)
{
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->done = false;
}

void
store_sub_done_destroy(struct store_sub_done *d)
{
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

void
store_sub_done_cb(void *closure)
{
    struct store_sub_done *d = closure;

    pthread_mutex_lock(&d->mu);
    d->done = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void
store_sub_done_wait(struct store_sub_done *d, int64_t timeout_ms)
{
    struct timespec ts = clock_deadline(timeout_ms);

    pthread_mutex_lock(&d->mu);
    while (!d->done)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&d->mu);
}

/* ---- KV watchers ---- */

struct store_watch {
    struct store *st;
    enum store_bucket bucket;
    char *filter;
    store_watch_fn fn;
    void *ctx;
    pthread_t thread;
    atomic_bool stop;
};

static void *
watch_main(void *arg)
{
    struct store_watch *w = arg;
    kvWatcher *kw = NULL;

    while (!atomic_load(&w->stop)) {
        if (!kw) {
            kvWatchOptions o;
            if (!atomic_load(&w->st->bootstrapped)) {
                nanosleep(&(struct timespec){ 0, 50 * 1000000L }, NULL);
                continue;
            }
            kvWatchOptions_Init(&o);
            if (store_closing(w->st))
                break; /* the connection is going away: nothing more will come */
            if (kvStore_Watch(&kw, w->st->kv[w->bucket], w->filter, &o) != NATS_OK) {
                kw = NULL;
                nanosleep(&(struct timespec){ 0, 200 * 1000000L }, NULL);
                continue;
            }
        }
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, kw, 500);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            /* the watcher broke (it normally survives reconnects): start over, replaying current values */
            kvWatcher_Destroy(kw);
            kw = NULL;
            continue;
        }
        if (!e) {
            w->fn(w->ctx, NULL, NULL, 0, 0);
            continue;
        }
        if (kvEntry_Operation(e) == kvOp_Put)
            w->fn(w->ctx, kvEntry_Key(e), kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), kvEntry_Revision(e));
        else
            w->fn(w->ctx, kvEntry_Key(e), NULL, 0, kvEntry_Revision(e));
        kvEntry_Destroy(e);
    }
    if (kw) {
        kvWatcher_Stop(kw);
        kvWatcher_Destroy(kw);
    }
    nats_ReleaseThreadMemory();
    return NULL;
}

enum ch_status
store_kv_watch(struct store *st, enum store_bucket b, const char *filter, store_watch_fn fn, void *ctx,
               struct store_watch **out, struct ch_err *err)
{
    struct store_watch *w = calloc(1, sizeof *w);

    if (!w || !(w->filter = strdup(filter))) {
        free(w);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    w->st = st;
    w->bucket = b;
    w->fn = fn;
    w->ctx = ctx;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        free(w->filter);
        free(w);
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start a watcher thread");
    }
    *out = w;
    return CH_OK;
}

void
store_kv_watch_stop(struct store_watch *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    free(w->filter);
    free(w);
}

/* ---- core NATS ---- */

struct store_sub {
    struct store *st;
    char *subject;
    char *queue; /* queue group, or NULL */
    natsSubscription *sub; /* under st->mu: set once subscribed (the connection was up) */
    bool attaching;        /* under st->mu: being subscribed, without the lock */
    struct store_sub_done done;
    store_sub_fn fn;
    void *ctx;
    struct store_sub *next;
};

enum ch_status
store_core_publish(struct store *st, const char *subject, const void *data, size_t len, struct ch_err *err)
{
    if (!store_connected(st))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "NATS is not connected");
    if (!subject_valid(subject))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid subject");
    return store_map(natsConnection_Publish(st->nc, subject, data, (int)len), 0, "publish", err);
}

static void
on_core_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct store_sub *s = closure;

    (void)nc;
    (void)sub;
    s->fn(s->ctx, natsMsg_GetSubject(msg), natsMsg_GetReply(msg), natsMsg_GetData(msg),
          (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

void
store_subs_attach(struct store *st)
{
    while (store_connected(st)) {
        struct store_sub *s;
        natsSubscription *sub = NULL;
        natsStatus ns;

        pthread_mutex_lock(&st->mu);
        for (s = st->subs; s && (s->sub || s->attaching); s = s->next)
            ;
        if (s)
            s->attaching = true;
        pthread_mutex_unlock(&st->mu);
        if (!s)
            return;
        ns = s->queue ? natsConnection_QueueSubscribe(&sub, st->nc, s->subject, s->queue, on_core_msg, s)
                      : natsConnection_Subscribe(&sub, st->nc, s->subject, on_core_msg, s);
        if (ns == NATS_OK)
            natsSubscription_SetOnCompleteCB(sub, store_sub_done_cb, &s->done);
        pthread_mutex_lock(&st->mu);
        s->attaching = false;
        if (ns == NATS_OK)
            s->sub = sub;
        pthread_cond_broadcast(&st->attach_cv);
        pthread_mutex_unlock(&st->mu);
        if (ns != NATS_OK) {
            log_warn("store: cannot subscribe to %s yet: %s", s->subject, store_last_error());
            return;
        }
    }
}

enum ch_status
store_core_subscribe(struct store *st, const char *subject, store_sub_fn fn, void *ctx, struct store_sub **out,
                     struct ch_err *err)
{
    return store_core_queue_subscribe(st, subject, NULL, fn, ctx, out, err);
}

enum ch_status
store_core_queue_subscribe(struct store *st, const char *subject, const char *queue, store_sub_fn fn, void *ctx,
                           struct store_sub **out, struct ch_err *err)
{
    struct store_sub *s = calloc(1, sizeof *s);

    if (!s || !(s->subject = strdup(subject)) || (queue && !(s->queue = strdup(queue)))) {
        if (s)
            free(s->subject);
        free(s);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    s->st = st;
    s->fn = fn;
    s->ctx = ctx;
    store_sub_done_init(&s->done);
    pthread_mutex_lock(&st->mu);
    s->next = st->subs;
    st->subs = s;
    pthread_cond_signal(&st->cv); /* the keeper subscribes it once connected */
    pthread_mutex_unlock(&st->mu);
    store_subs_attach(st);
    *out = s;
    return CH_OK;
}

void
store_core_unsubscribe(struct store_sub *s)
{
    struct store *st;
    natsSubscription *sub;

    if (!s)
        return;
    st = s->st;
    pthread_mutex_lock(&st->mu);
    while (s->attaching)
        pthread_cond_wait(&st->attach_cv, &st->mu);
    for (struct store_sub **p = &st->subs; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    sub = s->sub;
    s->sub = NULL;
    pthread_mutex_unlock(&st->mu);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        store_sub_done_wait(&s->done, 5000);
        natsSubscription_Destroy(sub);
    }
    store_sub_done_destroy(&s->done);
    free(s->subject);
    free(s->queue);
    free(s);
}

enum ch_status
store_core_reply(struct store *st, const char *reply, const void *data, size_t len, struct ch_err *err)
{
    if (!reply || !*reply)
        return ch_err_set(err, CH_EINVAL, NULL, "no reply subject");
    return store_core_publish(st, reply, data, len, err);
}

enum ch_status
store_core_request(struct store *st, const char *subject, const void *data, size_t len, int64_t timeout_ms,
                   char **reply, size_t *rlen, struct ch_err *err)
{
    natsMsg *m = NULL;
    natsStatus s;
    char *copy;
    int n;

    if (!store_connected(st))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "NATS is not connected");
    if (!subject_valid(subject))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid subject");
    s = natsConnection_Request(&m, st->nc, subject, data, (int)len, timeout_ms);
    if (s == NATS_NO_RESPONDERS)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "nobody answers %s", subject);
    if (s == NATS_TIMEOUT)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "no answer on %s in time", subject);
    if (s != NATS_OK)
        return store_map(s, 0, "request", err);
    n = natsMsg_GetDataLength(m);
    if (!(copy = malloc((size_t)n + 1))) {
        natsMsg_Destroy(m);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    memcpy(copy, natsMsg_GetData(m), (size_t)n);
    copy[n] = '\0';
    natsMsg_Destroy(m);
    *reply = copy;
    *rlen = (size_t)n;
    return CH_OK;
}

enum ch_status
store_core_gather(struct store *st, const char *subject, const void *data, size_t len, int want, int64_t timeout_ms,
                  int *got, struct ch_err *err)
{
    natsSubscription *sub = NULL;
    natsInbox *inbox = NULL;
    natsStatus s;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    int n = 0;

    *got = 0;
    if (!store_connected(st))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "NATS is not connected");
    if (!subject_valid(subject))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid subject");
    if ((s = natsInbox_Create(&inbox)) != NATS_OK ||
        (s = natsConnection_SubscribeSync(&sub, st->nc, inbox)) != NATS_OK ||
        (s = natsConnection_PublishRequest(st->nc, subject, inbox, data, (int)len)) != NATS_OK) {
        natsSubscription_Destroy(sub);
        natsInbox_Destroy(inbox);
        return store_map(s, 0, "gather", err);
    }
    while (n < want) {
        natsMsg *m = NULL;
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0 || natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
            break;
        natsMsg_Destroy(m);
        n++;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    *got = n;
    return CH_OK;
}
