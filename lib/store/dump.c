/* SPDX-License-Identifier: MIT */
/*
 * Backup and restore at the stream level: which streams Chatto owns, reading one up to a cut (dump), and writing
 * messages back so that the event log and the object stores keep their sequence numbers (replay). What goes into
 * which archive, and in which order the cuts are taken, is server/backupcmd.c's; this file only knows NATS.
 * Main thread of the `chatto backup|restore` commands; never used by a serving process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "base/map.h"
#include "store/store_int.h"
#include "store/subject.h"

/* Every stream Chatto owns, in backup order: the event log first (its cut comes first: see backupcmd.c), then the
 * KV buckets, then the object stores (captured last, so that what a bucket entry names is there). */
size_t
store_resources(struct store_res *out, size_t max)
{
    size_t n = 0;
    static char names[STORE_B_COUNT][64], prefixes[STORE_B_COUNT][72];

    /* (the events prefix is STORE_SUBJECT_EVENTS_ALL without its ">") */
    if (n < max)
        out[n++] = (struct store_res){ store_stream_name(STORE_S_EVENTS), STORE_RES_EVENTS, false,
                                       "chatto.ev._restore.gap", -1, "chatto.ev." };
    for (int b = 0; b < STORE_B_COUNT && n < max; b++) {
        snprintf(names[b], sizeof names[b], "KV_%s", store_bucket_name((enum store_bucket)b));
        snprintf(prefixes[b], sizeof prefixes[b], "$KV.%s.", store_bucket_name((enum store_bucket)b));
        /* failed-login counters, the process registry and worker leases describe the running processes of the
         * moment, not the installation: a restore must not resurrect them */
        bool vol = b == STORE_B_THROTTLE || b == STORE_B_PROCS || b == STORE_B_LEASES;
        out[n++] = (struct store_res){ names[b], STORE_RES_KV, vol, NULL, b, prefixes[b] };
    }
    if (n < max)
        out[n++] = (struct store_res){ store_stream_name(STORE_S_ASSETS), STORE_RES_OBJECTS, false,
                                       "$O." STORE_OBJ_ASSETS ".C._restore_gap", -1, "$O." STORE_OBJ_ASSETS "." };
    /* resized images: a cache, made again on demand */
    if (n < max)
        out[n++] = (struct store_res){ store_stream_name(STORE_S_ASSET_CACHE), STORE_RES_OBJECTS, true, NULL, -1,
                                       "$O." STORE_OBJ_ASSET_CACHE "." };
    /* read-model snapshots: derived from CHATTO_EVENTS, made again after a restore */
    if (n < max)
        out[n++] = (struct store_res){ store_stream_name(STORE_S_SNAPSHOTS), STORE_RES_OBJECTS, true, NULL, -1,
                                       "$O." STORE_OBJ_SNAPSHOTS "." };
    return n;
}

enum ch_status
store_stream_state(struct store *st, const char *stream, struct store_stream_state *out, struct ch_err *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;

    memset(out, 0, sizeof *out);
    s = js_GetStreamInfo(&si, st->js, stream, NULL, &jerr);
    if (s != NATS_OK && (jerr == JSStreamNotFoundErr || s == NATS_NOT_FOUND))
        return CH_OK;
    if (s != NATS_OK)
        return store_map(s, jerr, stream, err);
    out->exists = true;
    out->first_seq = si->State.FirstSeq;
    out->last_seq = si->State.LastSeq;
    out->msgs = si->State.Msgs;
    out->bytes = si->State.Bytes;
    out->replicas = si->Config->Replicas;
    out->max_age_ns = si->Config->MaxAge;
    out->max_msgs_per_subject = si->Config->MaxMsgsPerSubject;
    out->duplicates_ns = si->Config->Duplicates;
    size_t off = 0;
    for (int i = 0; i < si->Config->SubjectsLen; i++)
        off += (size_t)snprintf(out->subjects + off, off < sizeof out->subjects ? sizeof out->subjects - off : 0,
                                "%s%s", i ? " " : "", si->Config->Subjects[i]);
    jsStreamInfo_Destroy(si);
    return CH_OK;
}

/* A message's headers as "Name: value\r\n" lines (caller frees; NULL and 0 when it has none). */
static char *
headers_text(natsMsg *m, size_t *len)
{
    const char **keys = NULL;
    int nkeys = 0;
    char *out = NULL;
    size_t n = 0, cap = 0;

    *len = 0;
    if (natsMsgHeader_Keys(m, &keys, &nkeys) != NATS_OK || nkeys <= 0) {
        free((void *)keys);
        return NULL;
    }
    for (int i = 0; i < nkeys; i++) {
        const char **vals = NULL;
        int nvals = 0;
        if (natsMsgHeader_Values(m, keys[i], &vals, &nvals) != NATS_OK)
            continue;
        for (int j = 0; j < nvals; j++) {
            size_t need = strlen(keys[i]) + strlen(vals[j]) + 5;
            if (n + need > cap) {
                size_t c = (cap ? cap * 2 : 256) + need;
                char *p = realloc(out, c);
                if (!p)
                    break;
                out = p;
                cap = c;
            }
            n += (size_t)snprintf(out + n, cap - n, "%s: %s\r\n", keys[i], vals[j]);
        }
        free((void *)vals);
    }
    free((void *)keys);
    *len = n;
    return out;
}

/* The consumer went quiet: ask its leader whether anything is left for it. Nothing pending and nothing sent that
 * we have not received means the rest up to the cut was erased while we read (deleted messages are not
 * counted); otherwise the server is merely slow. Nothing pending and the consumer past the cut is done too: a
 * stream whose messages all expired or were purged delivers nothing, yet its consumer starts past them. */
static enum ch_status
drained(struct store *st, natsSubscription *sub, const char *stream, uint64_t last, uint64_t cut, bool *done,
        struct ch_err *err)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr);

    (void)st;
    *done = false;
    if (s != NATS_OK)
        return store_map(s, jerr, stream, err);
    *done = ci->NumPending == 0 && (ci->Delivered.Stream <= last || ci->Delivered.Stream >= cut);
    jsConsumerInfo_Destroy(ci);
    return CH_OK;
}

enum ch_status
store_dump(struct store *st, const struct store_res *r, uint64_t cut, store_dump_fn fn, void *ctx,
           struct ch_err *err)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs = CH_OK;
    struct map *seen = NULL;
    char filter[128], prefix[96] = "";
    uint64_t last = 0;
    int64_t quiet_since = clock_mono_ms();

    if (cut == 0)
        return CH_OK;
    jsSubOptions_Init(&so);
    so.Stream = r->stream;
    so.Ordered = true;
    so.Config.Heartbeat = 1000LL * 1000000LL;
    if (r->kind == STORE_RES_KV) {
        /* one message per key: its latest value (history is 1 anyway) */
        snprintf(prefix, sizeof prefix, "$KV.%s.", r->stream + 3);
        snprintf(filter, sizeof filter, "%s>", prefix);
        so.Config.DeliverPolicy = js_DeliverLastPerSubject;
        if (!(seen = map_new()))
            return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    } else {
        snprintf(filter, sizeof filter, "%s", r->kind == STORE_RES_EVENTS ? STORE_SUBJECT_EVENTS_ALL : ">");
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    if ((s = js_SubscribeSync(&sub, st->js, filter, NULL, &so, &jerr)) != NATS_OK) {
        cs = store_map(s, jerr, r->stream, err);
        goto out;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);
    for (;;) {
        natsMsg *m = NULL;
        jsMsgMetaData *meta = NULL;

        s = natsSubscription_NextMsg(&m, sub, 1000);
        if (s == NATS_TIMEOUT) {
            /* nothing came: either what was left up to the cut was erased meanwhile, or the server is slow */
            bool done = false;
            if ((cs = drained(st, sub, r->stream, last, cut, &done, err)) != CH_OK)
                goto out;
            if (done)
                break;
            if (clock_mono_ms() - quiet_since > 60000) {
                cs = ch_err_set(err, CH_EUNAVAIL, NULL, "%s: no message for 60 s while reading up to %llu",
                                r->stream, (unsigned long long)cut);
                goto out;
            }
            continue;
        }
        if (s != NATS_OK) {
            cs = store_map(s, 0, r->stream, err);
            goto out;
        }
        quiet_since = clock_mono_ms();
        if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
            natsMsg_Destroy(m);
            continue; /* not a stream message (a heartbeat nats.c did not swallow) */
        }
        uint64_t seq = meta->Sequence.Stream, pending = meta->NumPending;
        struct store_raw_msg rm = { .seq = seq, .time_ns = meta->Timestamp, .subject = natsMsg_GetSubject(m),
                                    .data = natsMsg_GetData(m), .len = (size_t)natsMsg_GetDataLength(m),
                                    .after_cut = seq > cut };
        jsMsgMetaData_Destroy(meta);
        bool done = false, want = true;
        last = seq;
        if (r->kind == STORE_RES_KV) {
            const char *key = strncmp(rm.subject, prefix, strlen(prefix)) ? rm.subject : rm.subject + strlen(prefix);
            const char *op = NULL;
            natsMsgHeader_Get(m, "KV-Operation", &op);
            /* a key's first sighting is what we keep: its value at the cut, or (changed since, so that value is
             * gone) its first later one; a delete or purge marker means no value */
            want = !map_get(seen, key);
            if (want) {
                bool oom = false;
                map_put(seen, key, (void *)1, &oom);
                if (oom) {
                    natsMsg_Destroy(m);
                    cs = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
                    goto out;
                }
            }
            if (op && (!strcmp(op, "DEL") || !strcmp(op, "PURGE")))
                want = false;
            done = pending == 0;
        } else {
            want = seq <= cut;
            done = seq >= cut || pending == 0;
        }
        if (want) {
            size_t hl = 0;
            char *h = headers_text(m, &hl);
            rm.hdr = h ? h : "";
            rm.hdr_len = hl;
            cs = fn(ctx, &rm, err);
            free(h);
        }
        natsMsg_Destroy(m);
        if (cs != CH_OK || done)
            break;
    }
out:
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    map_free(seen, NULL);
    return cs;
}

/* Writing back. Messages are published asynchronously (a window of MAX_INFLIGHT unacknowledged ones), each of an
 * event log or object store with the stream's expected last sequence, so JetStream itself refuses any that would
 * be numbered otherwise; the first refusal is kept and ends the restore. A placeholder that fills a gap is
 * deleted once every publish was acknowledged. */
#define MAX_INFLIGHT 4096

struct gap {
    const char *stream; /* borrowed: a store_resources() constant */
    uint64_t seq;
};

struct store_replayer {
    struct store *st;
    jsCtx *js;
    pthread_mutex_t mu; /* guards failed and error (nats.c's thread writes them) */
    bool failed;
    char error[200];
    struct gap *gaps;
    size_t ngaps, cap;
};

/* nats.c's thread, once per published message: keep the first refusal. A duplicate cannot happen (no message
 * carries a Nats-Msg-Id) but would mean a message silently not stored, so it counts as one. */
static void
on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct store_replayer *rp = closure;

    (void)js;
    pthread_mutex_lock(&rp->mu);
    if (!rp->failed && (pae || (pa && pa->Duplicate))) {
        rp->failed = true;
        if (pae)
            snprintf(rp->error, sizeof rp->error, "%s: %s%s", msg ? natsMsg_GetSubject(msg) : "?",
                     pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err),
                     pae->ErrCode == JSStreamWrongLastSequenceErr ? " (is something else writing?)" : "");
        else
            snprintf(rp->error, sizeof rp->error, "%s: taken for a duplicate of sequence %llu",
                     msg ? natsMsg_GetSubject(msg) : "?", (unsigned long long)pa->Sequence);
    }
    pthread_mutex_unlock(&rp->mu);
    natsMsg_Destroy(msg);
}

static enum ch_status
failed(struct store_replayer *rp, struct ch_err *err)
{
    enum ch_status cs = CH_OK;
    pthread_mutex_lock(&rp->mu);
    if (rp->failed)
        cs = ch_err_set(err, CH_ECONFLICT, NULL, "restore: %s", rp->error);
    pthread_mutex_unlock(&rp->mu);
    return cs;
}

enum ch_status
store_replayer_new(struct store *st, struct store_replayer **out, struct ch_err *err)
{
    struct store_replayer *rp = calloc(1, sizeof *rp);
    jsOptions jo;
    natsStatus s;

    if (!rp)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    rp->st = st;
    pthread_mutex_init(&rp->mu, NULL);
    jsOptions_Init(&jo);
    jo.Wait = st->timeout_ms > 0 ? st->timeout_ms : 5000;
    jo.PublishAsync.MaxPending = MAX_INFLIGHT;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = rp;
    jo.PublishAsync.StallWait = 60000; /* a full window waits for acknowledgements rather than failing */
    if ((s = natsConnection_JetStream(&rp->js, st->nc, &jo)) != NATS_OK) {
        store_replayer_free(rp);
        return store_map(s, 0, "restore", err);
    }
    *out = rp;
    return CH_OK;
}

void
store_replayer_free(struct store_replayer *rp)
{
    if (!rp)
        return;
    jsCtx_Destroy(rp->js);
    pthread_mutex_destroy(&rp->mu);
    free(rp->gaps);
    free(rp);
}

/* Publish one message with the headers of hdr ("Nats-" ones dropped: a stored Nats-Msg-Id would make JetStream's
 * duplicate window swallow a different message that happened to reuse it days later, and stored expectations no
 * longer hold). expect_last > 0: JetStream refuses it unless the stream's last sequence is that. */
static enum ch_status
publish_raw(struct store_replayer *rp, const char *stream, const char *subject, const char *hdr, size_t hdr_len,
            const void *data, size_t len, uint64_t expect_last, struct ch_err *err)
{
    natsMsg *m = NULL;
    jsPubOptions po;
    natsStatus s;

    if ((s = natsMsg_Create(&m, subject, NULL, data, (int)len)) != NATS_OK)
        return store_map(s, 0, stream, err);
    for (size_t i = 0; i < hdr_len;) {
        const char *eol = memchr(hdr + i, '\n', hdr_len - i);
        size_t end = eol ? (size_t)(eol - hdr) : hdr_len;
        char line[1024];
        size_t ll = end - i;
        if (ll && hdr[i + ll - 1] == '\r')
            ll--;
        /* (restore's verify() already refused such lines: never drop one silently) */
        if (ll >= sizeof line || !memchr(hdr + i, ':', ll) || memchr(hdr + i, '\0', ll)) {
            natsMsg_Destroy(m);
            return ch_err_set(err, CH_EINVAL, NULL, "%s: a malformed header line", stream);
        }
        memcpy(line, hdr + i, ll);
        line[ll] = '\0';
        char *colon = strchr(line, ':');
        if (strncasecmp(line, "Nats-", 5) != 0) {
            *colon = '\0';
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            natsMsgHeader_Add(m, line, v);
        }
        i = end + 1;
    }
    jsPubOptions_Init(&po);
    po.ExpectStream = stream;
    po.ExpectLastSeq = expect_last;
    s = js_PublishMsgAsync(rp->js, &m, &po);
    natsMsg_Destroy(m); /* NULL once nats.c took it */
    if (s != NATS_OK) {
        enum ch_status cs = store_map(s, 0, stream, err);
        if (*store_last_error() && err)
            snprintf(err->msg, sizeof err->msg, "%s: %s", stream, store_last_error());
        return cs;
    }
    return failed(rp, err);
}

enum ch_status
store_replay_fill(struct store_replayer *rp, const struct store_res *r, uint64_t *next, uint64_t upto,
                  struct ch_err *err)
{
    while (*next <= upto) {
        if (rp->ngaps == rp->cap) {
            size_t cap = rp->cap ? rp->cap * 2 : 256;
            struct gap *g = realloc(rp->gaps, cap * sizeof *g);
            if (!g)
                return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
            rp->gaps = g;
            rp->cap = cap;
        }
        enum ch_status cs = publish_raw(rp, r->stream, r->gap_subject, NULL, 0, "", 0, *next - 1, err);
        if (cs != CH_OK)
            return cs;
        rp->gaps[rp->ngaps++] = (struct gap){ r->stream, *next };
        (*next)++;
    }
    return CH_OK;
}

enum ch_status
store_replay(struct store_replayer *rp, const struct store_res *r, uint64_t *next, const struct store_raw_msg *m,
             struct ch_err *err)
{
    enum ch_status cs;

    if (r->kind == STORE_RES_KV)
        return publish_raw(rp, r->stream, m->subject, m->hdr, m->hdr_len, m->data, m->len, 0, err);
    if (m->seq < *next)
        return ch_err_set(err, CH_EINVAL, NULL, "%s: sequence %llu out of order in the archive", r->stream,
                          (unsigned long long)m->seq);
    if ((cs = store_replay_fill(rp, r, next, m->seq - 1, err)) != CH_OK)
        return cs;
    if ((cs = publish_raw(rp, r->stream, m->subject, m->hdr, m->hdr_len, m->data, m->len, *next - 1, err)) != CH_OK)
        return cs;
    (*next)++;
    return CH_OK;
}

enum ch_status
store_replayer_finish(struct store_replayer *rp, struct ch_err *err)
{
    jsPubOptions po;
    natsStatus s;
    enum ch_status cs;

    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if ((s = js_PublishAsyncComplete(rp->js, &po)) != NATS_OK)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "restore: not every message was acknowledged (%s)",
                          natsStatus_GetText(s));
    if ((cs = failed(rp, err)) != CH_OK)
        return cs;
    for (size_t i = 0; i < rp->ngaps; i++) {
        jsErrCode jerr = 0;
        if ((s = js_DeleteMsg(rp->st->js, rp->gaps[i].stream, rp->gaps[i].seq, NULL, &jerr)) != NATS_OK)
            return store_map(s, jerr, rp->gaps[i].stream, err);
    }
    return CH_OK;
}

enum ch_status
store_stream_reset(struct store *st, const struct store_res *r, struct ch_err *err)
{
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(st->js, r->stream, NULL, &jerr);

    if (s != NATS_OK && jerr != JSStreamNotFoundErr && s != NATS_NOT_FOUND)
        return store_map(s, jerr, r->stream, err);
    return store_stream_create(st, r->stream, err);
}
