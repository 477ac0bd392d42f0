/* SPDX-License-Identifier: MIT */
/*
 * Shared work over a stream: one durable pull consumer that every process pulls from. JetStream hands each message
 * to one puller and hands it out again (to any of them) when it is not acknowledged within the ack wait, so work
 * that a process took survives that process's crash. The consumer is made on first use with "deliver new": work
 * starts with what is appended after it exists, never with the stream's history. Round trips only in the calls
 * that say so; nothing here holds a lock of the store's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "store/store_int.h"

struct store_work {
    struct store *st;
    natsSubscription *sub;
    char durable[64];
};

struct store_work_batch {
    natsMsgList list;
    struct store_work_msg *msgs;
};

enum ch_status
store_work_open(struct store *st, const struct store_work_opts *o, struct store_work **out, struct ch_err *err)
{
    struct store_work *w;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;

    *out = NULL;
    if (!st || !atomic_load(&st->bootstrapped) || !store_connected(st))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    if (!(w = calloc(1, sizeof *w)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    w->st = st;
    snprintf(w->durable, sizeof w->durable, "%s", o->durable);
    /* made explicitly, then bound to: a consumer js_PullSubscribe makes itself is deleted when that subscription
     * unsubscribes, which would take the work position from every other process */
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsConsumerConfig_Init(&cc);
    cc.Durable = w->durable;
    cc.Description = o->description;
    cc.DeliverPolicy = js_DeliverNew;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = o->ack_wait_ms * 1000000LL;
    cc.MaxAckPending = o->max_pending > 0 ? o->max_pending : 1000;
    cc.FilterSubject = o->filter;
    s = js_AddConsumer(&ci, st->js, store_stream_name(o->stream), &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK && jerr != JSConsumerNameExistErr && jerr != JSConsumerExistingActiveErr) {
        free(w);
        return store_map(s, jerr, "work consumer", err);
    }
    jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = store_stream_name(o->stream);
    so.Consumer = w->durable;
    s = js_PullSubscribe(&w->sub, st->js, o->filter, w->durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        free(w);
        return store_map(s, jerr, "work consumer", err);
    }
    *out = w;
    return CH_OK;
}

enum ch_status
store_work_fetch(struct store_work *w, int max, int64_t timeout_ms, struct store_work_batch **out, size_t *n,
                 struct ch_err *err)
{
    struct store_work_batch *b = calloc(1, sizeof *b);
    jsErrCode jerr = 0;
    natsStatus s;

    *out = NULL;
    *n = 0;
    if (!b)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    s = natsSubscription_Fetch(&b->list, w->sub, max, timeout_ms, &jerr);
    if (s == NATS_TIMEOUT || (s == NATS_OK && b->list.Count == 0)) {
        natsMsgList_Destroy(&b->list);
        free(b);
        return CH_OK; /* nothing to do */
    }
    if (s != NATS_OK) {
        natsMsgList_Destroy(&b->list);
        free(b);
        return store_map(s, jerr, "work fetch", err);
    }
    if (!(b->msgs = calloc((size_t)b->list.Count, sizeof *b->msgs))) {
        natsMsgList_Destroy(&b->list); /* (not acknowledged: handed out again after the ack wait) */
        free(b);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    for (int i = 0; i < b->list.Count; i++) {
        natsMsg *m = b->list.Msgs[i];
        jsMsgMetaData *meta = NULL;
        struct store_work_msg *x = &b->msgs[i];
        x->subject = natsMsg_GetSubject(m);
        x->data = natsMsg_GetData(m);
        x->len = (size_t)natsMsg_GetDataLength(m);
        x->impl = m;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            x->seq = meta->Sequence.Stream;
            x->delivered = meta->NumDelivered;
            x->unix_ms = meta->Timestamp / 1000000LL;
            jsMsgMetaData_Destroy(meta);
        }
    }
    *out = b;
    *n = (size_t)b->list.Count;
    return CH_OK;
}

struct store_work_msg *
store_work_msg(struct store_work_batch *b, size_t i)
{
    return &b->msgs[i];
}

void
store_work_ack(struct store_work_msg *m)
{
    natsMsg_Ack(m->impl, NULL); /* (lost acks: the message comes again after the ack wait; work is idempotent) */
}

void
store_work_nak(struct store_work_msg *m, int64_t delay_ms)
{
    natsMsg_NakWithDelay(m->impl, delay_ms, NULL);
}

void
store_work_batch_free(struct store_work_batch *b)
{
    if (!b)
        return;
    natsMsgList_Destroy(&b->list);
    free(b->msgs);
    free(b);
}

void
store_work_close(struct store_work *w)
{
    if (!w)
        return;
    /* Destroy, not Unsubscribe: the durable stays for the other processes and this one's next start (nats.c
     * >= 3.4 deletes nothing on destroy; our consumer was not made by the subscribe call anyway) */
    natsSubscription_Destroy(w->sub);
    free(w);
}
