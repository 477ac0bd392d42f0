/* SPDX-License-Identifier: MIT */
/*
 * Reactions: add or remove one emoji of the caller's on a message, at most MAX_REACTIONS_PER_USER different ones
 * per message. Published on the message's subject with its last sequence as expectation, so a reaction never
 * lands on a message deleted meanwhile. HTTP worker threads.
 */
#include <string.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "chat/chat_int.h"
#include "store/store.h"
#include "store/subject.h"

#define MAX_REACTIONS_PER_USER 20

static enum ch_status
check_emoji(const char *e, struct ch_err *err)
{
    size_t n = strlen(e);

    if (n == 0)
        return ch_err_set(err, CH_EINVAL, "emoji", "required");
    if (n > EMOJI_MAX_BYTES)
        return ch_err_set(err, CH_EINVAL, "emoji", "must be at most %d bytes", EMOJI_MAX_BYTES);
    if (!utf8_valid(e, n))
        return ch_err_set(err, CH_EINVAL, "emoji", "not valid UTF-8");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)e[i] <= 0x20 || e[i] == 0x7f)
            return ch_err_set(err, CH_EINVAL, "emoji", "must not contain spaces or control characters");
    return CH_OK;
}

enum ch_status
chat_react(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, const char *emoji,
           bool add, cJSON **out, struct ch_err *err)
{
    enum ch_status st;
    char subject[STORE_SUBJECT_MAX];

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", msg_id, err)) != CH_OK ||
        (st = check_emoji(emoji, err)) != CH_OK)
        return st;
    if (store_subject_event_message(subject, sizeof subject, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        struct chat_room *r;
        struct chat_member *cm;
        uint64_t expect = 0;
        bool noop = false;

        if ((st = sync_events(c, err)) != CH_OK || (st = chat_msg_ensure(c, room_id, msg_id, err)) != CH_OK)
            return st;
        pthread_rwlock_rdlock(&c->m->lock);
        if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
            struct chat_msg *msg = model_msg(r, msg_id);
            size_t mine = 0;
            bool have = false;
            if (!msg || msg->deleted_at)
                st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such message");
            else if (r->archived)
                st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
            else {
                for (size_t i = 0; i < msg->nreactions; i++)
                    for (size_t j = 0; j < msg->reactions[i].n; j++)
                        if (!strcmp(msg->reactions[i].users[j], who->id)) {
                            mine++;
                            have |= !strcmp(msg->reactions[i].emoji, emoji);
                        }
                noop = add == have;
                if (add && !have && mine >= MAX_REACTIONS_PER_USER)
                    st = ch_err_set(err, CH_ELIMIT, "emoji", "at most %d different reactions per message",
                                    MAX_REACTIONS_PER_USER);
                expect = msg->last_seq;
            }
        }
        pthread_rwlock_unlock(&c->m->lock);
        if (st != CH_OK)
            return st;
        if (noop)
            break;
        cJSON *ev = chat_event_new(add ? "reaction.added" : "reaction.removed", who);
        cJSON_AddStringToObject(ev, "msgId", msg_id);
        cJSON_AddStringToObject(ev, "emoji", emoji);
        struct store_pub_opts po = { .expect_subject_seq = expect };
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st != CH_ECONFLICT)
            break;
    }
    if (st != CH_OK)
        return st;
    return chat_message_out(c, who, room_id, msg_id, out, err);
}
