/* SPDX-License-Identifier: MIT */
/*
 * Work positions kept by consumers of earlier releases. Up to 0.2, notifications were shared out by a durable
 * consumer on CHATTO_EVENTS that every process took messages from; now one process (under a lease) follows its own
 * model and keeps its position in chatto_leases. store_consumer_retire hands over where such a consumer had got to
 * and removes it, so that nats-server stops tracking every event for it. Nothing here holds a lock of the store's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

enum ch_status
store_consumer_retire(struct store *st, enum store_stream s, const char *durable, uint64_t *ack_floor,
                      struct ch_err *err)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus ns;

    *ack_floor = 0;
    if (!st || !atomic_load(&st->bootstrapped) || !store_connected(st))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    ns = js_GetConsumerInfo(&ci, st->js, store_stream_name(s), durable, NULL, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no consumer %s", durable);
    if (ns != NATS_OK)
        return store_map(ns, jerr, durable, err);
    /* everything at or below the ack floor is done; what was handed out above it may not be: done again. Before
     * its first acknowledgement the floor reads 0: then, if nothing was handed out either, the consumer's start
     * (one before it) is where "delivered" stands; if something was, that is as close as the consumer tells */
    *ack_floor = ci->AckFloor.Consumer ? ci->AckFloor.Stream : ci->Delivered.Stream;
    jsConsumerInfo_Destroy(ci);
    jerr = 0;
    ns = js_DeleteConsumer(st->js, store_stream_name(s), durable, NULL, &jerr);
    if (ns != NATS_OK && ns != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr)
        return store_map(ns, jerr, durable, err);
    return CH_OK;
}
