/* SPDX-License-Identifier: MIT */
/*
 * What the realtime hub (server/ws) asks the chat core: a room's members for fan-out and membership checks, read
 * from the model as it is (no sync: fan-out follows the stream's own order), whether a user may type in a room,
 * and the stream positions a realtime client starts from. Hub and HTTP worker threads.
 */
#include <stdio.h>
#include <stdlib.h>

#include "chat/chat_int.h"
#include "store/store.h"

bool
chat_room_member_ids(struct chat *c, const char *room_id, char (**ids)[65], size_t *n)
{
    bool ok = false;

    *ids = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    if (r) {
        size_t it = 0, k = 0;
        const char *key;
        *ids = calloc(map_len(r->members) + 1, sizeof **ids);
        if (*ids) {
            while (map_next(r->members, &it, &key, NULL))
                snprintf((*ids)[k++], 65, "%s", key);
            *n = k;
            ok = true;
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return ok;
}

bool
chat_is_member(struct chat *c, const char *room_id, const char *uid)
{
    pthread_rwlock_rdlock(&c->m->lock);
    bool v = model_member(model_room(c->m, room_id), uid) != NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return v;
}

enum ch_status
chat_check_typing(struct chat *c, const struct user *who, const char *room_id, const char *thread_root,
                  struct ch_err *err)
{
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = chat_id_or_empty("threadRootEventId", thread_root, err)) != CH_OK)
        return st;
    return chat_room_check(c, room_id, who, true, err); /* (no catch-up: typing is best effort) */
}

enum ch_status
chat_check_member(struct chat *c, const char *uid, const char *room_id, bool to_post, struct ch_err *err)
{
    struct user who = { 0 };
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("userId", uid, err)) != CH_OK ||
        (st = sync_events(c, err)) != CH_OK)
        return st;
    snprintf(who.id, sizeof who.id, "%s", uid);
    return chat_room_check(c, room_id, &who, to_post, err);
}

uint64_t
chat_applied(struct chat *c)
{
    return chat_model_applied(c->m);
}

uint64_t
chat_replay_target(struct chat *c)
{
    return store_follower_target(c->follower);
}
