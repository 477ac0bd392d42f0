/* SPDX-License-Identifier: MIT */
/*
 * The write path every command shares: build an event ({type, id, actor, at}), publish it to CHATTO_EVENTS with
 * the caller's expectations (expected subject sequence, none yet, message id), then wait until our own model has
 * applied it, so the command's answer already reflects it. HTTP worker threads; never with the model lock held.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"

/* Build an event object: {type, id, actor, at}. */
cJSON *
chat_event_new(const char *type, const struct user *who)
{
    cJSON *o = cJSON_CreateObject();
    char id[ID_LEN + 1];

    id_new(id);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "actor", who ? who->id : "");
    cJSON_AddNumberToObject(o, "at", (double)clock_wall_ms());
    return o;
}

/* Append ev (consumed) and wait until our model applied it. */
enum ch_status
chat_append(struct chat *c, const char *subject, cJSON *ev, const struct store_pub_opts *o, uint64_t *seq,
            bool *dup, struct ch_err *err)
{
    char *data = json_print(ev, NULL);
    uint64_t s = 0;
    enum ch_status st;

    cJSON_Delete(ev);
    if (!data)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    st = store_publish(c->store, subject, data, strlen(data), o, &s, dup, err);
    explicit_bzero(data, strlen(data));
    free(data);
    if (st != CH_OK)
        return st;
    if (!chat_model_wait(c->m, s, c->timeout_ms))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "stored, but this server has not caught up yet; retry");
    if (seq)
        *seq = s;
    return CH_OK;
}
