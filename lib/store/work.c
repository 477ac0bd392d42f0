/* SPDX-License-Identifier: MIT */
/*
 * Shared work over a stream: one durable consumer that every process takes messages from. JetStream hands each
 * message to one of them and hands it out again (to any of them) when it is not acknowledged within the ack wait,
 * so work that a process took survives that process's crash. The consumer pushes to a queue group (deliver
 * subject chatto.work.<durable>, group <durable>) rather than being pulled from: each pull is a request the
 * server parses, and at a chat's pace a pull brings one or two messages. The consumer is made on first use with
 * "deliver new": work starts with what is appended after it exists, never with the stream's history. Nothing
 * here holds a lock of the store's.
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
    natsMsg **raw;
    struct store_work_msg *msgs;
    size_t n;
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
    /* made explicitly, then bound to: a consumer a subscribe call makes is deleted when that subscription
     * unsubscribes, which would take the work position from every other process */
    char deliver[96];
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    snprintf(deliver, sizeof deliver, "chatto.work.%s", w->durable);
    jsConsumerConfig_Init(&cc);
    cc.Durable = w->durable;
    cc.Description = o->description;
    cc.DeliverSubject = deliver;
    cc.DeliverGroup = w->durable;
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
    so.Queue = w->durable;
    so.ManualAck = true;
    s = js_SubscribeSync(&w->sub, st->js, o->filter, NULL, &so, &jerr);
    if (s != NATS_OK) {
        free(w);
        return store_map(s, jerr, "work consumer", err);
    }
    natsSubscription_SetPendingLimits(w->sub, -1, -1); /* bounded by the consumer's max_pending instead */
    *out = w;
    return CH_OK;
}

enum ch_status
store_work_fetch(struct store_work *w, int max, int64_t timeout_ms, struct store_work_batch **out, size_t *n,
                 struct ch_err *err)
{
    struct store_work_batch *b;
    natsMsg *m = NULL;
    natsStatus s;

    *out = NULL;
    *n = 0;
    s = natsSubscription_NextMsg(&m, w->sub, timeout_ms);
    if (s == NATS_TIMEOUT)
        return CH_OK; /* nothing to do */
    if (s != NATS_OK)
        return store_map(s, 0, "work", err);
    if (!(b = calloc(1, sizeof *b)) || !(b->raw = calloc((size_t)max, sizeof *b->raw)) ||
        !(b->msgs = calloc((size_t)max, sizeof *b->msgs))) {
        natsMsg_Destroy(m); /* (not acknowledged: handed out again after the ack wait) */
        if (b)
            free(b->raw);
        free(b);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    /* the first one, then whatever else is here already, without waiting */
    do {
        jsMsgMetaData *meta = NULL;
        struct store_work_msg *x = &b->msgs[b->n];
        b->raw[b->n] = m;
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
        b->n++;
        m = NULL;
    } while ((int)b->n < max && natsSubscription_NextMsg(&m, w->sub, 0) == NATS_OK);
    *out = b;
    *n = b->n;
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
    for (size_t i = 0; i < b->n; i++)
        natsMsg_Destroy(b->raw[i]);
    free(b->raw);
    free(b->msgs);
    free(b);
}

void
store_work_close(struct store_work *w)
{
    if (!w)
        return;
    /* Destroy, not Unsubscribe: the durable stays for the other processes and this one's next start (nats.c
     * >= 3.4 deletes nothing on destroy; our consumer was not made by the subscribe call anyway). What it held
     * unacknowledged goes to another process after the ack wait. */
    natsSubscription_Destroy(w->sub);
    free(w);
}
