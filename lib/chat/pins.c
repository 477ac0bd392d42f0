/* SPDX-License-Identifier: MIT */
/*
 * Pinned messages (upstream's RoomService/CreatePinnedMessage, DeletePinnedMessage, ListPinnedMessages): room
 * admins and owners (and server staff) pin and unpin messages of a room, thread replies included; not in direct
 * messages, not in archived rooms. A pin is an event on the message's subject, published with the message's last
 * sequence as expectation, so a pin never lands on a message deleted meanwhile; deleting a message drops its pin.
 * At most PINS_MAX per room. HTTP worker threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"
#include "store/subject.h"

static cJSON *
pin_view(const struct chat_model *m, const struct chat_room *r, const struct chat_pin *p, const char *viewer,
         struct body_fill *bf)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddItemToObject(o, "message", view_message(m, p->msg, r->id, viewer, bf));
    cJSON_AddStringToObject(o, "pinnedBy", p->by);
    json_add_time(o, "pinnedAt", p->at);
    return o;
}

enum ch_status
chat_pin(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, bool pin, cJSON **out,
         struct ch_err *err)
{
    enum ch_status st;
    char subject[STORE_SUBJECT_MAX];

    *out = NULL;
    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("messageEventId", msg_id, err)) != CH_OK)
        return st;
    if (store_subject_event_message(subject, sizeof subject, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        struct chat_room *r;
        struct chat_member *cm;
        uint64_t expect = 0, body_seq = 0, gen = 0;
        bool noop = false;

        if ((st = sync_events(c, err)) != CH_OK || (st = chat_msg_ensure(c, room_id, msg_id, err)) != CH_OK)
            return st;
        pthread_rwlock_rdlock(&c->m->lock);
        if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
            struct chat_msg *msg = model_msg(r, msg_id);
            if (r->vis == VIS_DM)
                st = ch_err_set(err, CH_ECONFLICT, "roomId", "direct messages have no pins");
            else if (!msg || msg->deleted_at || !msg->known || msg->refused)
                st = ch_err_set(err, CH_ENOTFOUND, "messageEventId", "no such message in this room");
            else if (r->archived)
                st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
            else if (!chat_room_admin(cm, who))
                st = ch_err_set(err, CH_EPERM, "roomId", "only the room's admins and owners may pin or unpin");
            else if (pin && !msg->pinned && r->npins >= PINS_MAX)
                st = ch_err_set(err, CH_ELIMIT, "roomId", "a room has at most %d pinned messages; unpin one first",
                                PINS_MAX);
            else {
                noop = msg->pinned == pin;
                expect = msg->last_seq;
                body_seq = msg->nbody ? msg->body_seqs[msg->nbody - 1] : 0;
                gen = body_cache_gen(c->m->bodies);
            }
        }
        pthread_rwlock_unlock(&c->m->lock);
        if (st != CH_OK)
            return st;
        if (noop)
            break; /* pinning a pinned message answers with the pin, as upstream */
        /* the pin's realtime frame carries the message, rendered by the follower, which cannot fetch: an old
         * message's body is brought into the cache first */
        chat_body_warm(c, gen, body_seq, room_id, msg_id);
        cJSON *ev = chat_event_new(pin ? "msg.pinned" : "msg.unpinned", who);
        cJSON_AddStringToObject(ev, "msgId", msg_id);
        struct store_pub_opts po = { .expect_subject_seq = expect };
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st != CH_ECONFLICT)
            break;
    }
    if (st != CH_OK)
        return st;
    if (!pin) {
        *out = cJSON_CreateObject();
        cJSON_AddBoolToObject(*out, "deleted", true);
        return CH_OK;
    }
    struct body_fill bf = { 0 };
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    for (size_t i = 0; r && i < r->npins && !*out; i++)
        if (!strcmp(r->pins[i].msg->id, msg_id))
            *out = view_wrap("pinnedMessage", pin_view(c->m, r, &r->pins[i], who->id, &bf));
    pthread_rwlock_unlock(&c->m->lock);
    /* (deleted between our pin and this read: the delete won, as it always does) */
    return chat_bodies_finish(
        c, &bf, *out ? CH_OK : ch_err_set(err, CH_ENOTFOUND, "messageEventId", "no such message in this room"), out,
        err);
}

enum ch_status
chat_list_pins(struct chat *c, const struct user *who, const char *room_id, int limit, int offset, cJSON **out,
               struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    struct body_fill bf = { 0 };

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    if (limit <= 0)
        limit = 50;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "pinnedMessages");
        size_t emitted = 0;
        /* newest pin first: the array is in pin order */
        for (size_t k = (size_t)offset; k < r->npins && emitted < (size_t)limit; k++, emitted++)
            cJSON_AddItemToArray(arr, pin_view(c->m, r, &r->pins[r->npins - 1 - k], who->id, &bf));
        view_add_page(o, r->npins, (size_t)offset, emitted);
        char marker[24];
        snprintf(marker, sizeof marker, "%llu", (unsigned long long)r->pin_seq);
        cJSON_AddStringToObject(o, "latestPinMarker", marker);
        *out = o;
    }
    pthread_rwlock_unlock(&c->m->lock);
    return chat_bodies_finish(c, &bf, st, out, err);
}
