/* SPDX-License-Identifier: MIT */
/*
 * Typing indicators (rt-worker only). Every process hears every "typing" announcement on core NATS
 * (chatto.rt.typing.<room>); we keep who types where until it expires, and send each room's members the room's
 * current list whenever it changes.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "json/json.h"
#include "base/clock.h"
#include "realtime/rt_int.h"

static void
broadcast(struct rt *rt, const char *room)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    char(*ids)[65] = NULL;
    size_t n = 0, len;
    char *s;

    cJSON_AddStringToObject(o, "type", "typing");
    cJSON_AddStringToObject(o, "roomId", room);
    arr = cJSON_AddArrayToObject(o, "users");
    for (size_t i = 0; i < rt->ntypers; i++) {
        if (strcmp(rt->typers[i].room, room))
            continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "userId", rt->typers[i].user);
        if (rt->typers[i].thread[0])
            cJSON_AddStringToObject(x, "threadRootEventId", rt->typers[i].thread);
        cJSON_AddItemToArray(arr, x);
    }
    s = json_print(o, &len);
    cJSON_Delete(o);
    if (s && chat_room_member_ids(rt->o.chat, room, &ids, &n) && (n = rt_presence_local_only(rt, ids, n)))
        rt->tx->deliver(rt->tx_ctx, s, len, (const char(*)[ID_MAX + 1])ids, n, false);
    free(ids);
    free(s);
}

void
rt_typing_update(struct rt *rt, const struct rt_item *it)
{
    int64_t until = clock_mono_ms() + rt->o.typing_ms;

    for (size_t i = 0; i < rt->ntypers; i++) {
        struct typer *t = &rt->typers[i];
        if (!strcmp(t->room, it->room) && !strcmp(t->user, it->user)) {
            bool changed = strcmp(t->thread, it->thread) != 0;
            t->expires = until;
            memcpy(t->thread, it->thread, sizeof t->thread);
            if (changed)
                broadcast(rt, it->room);
            return;
        }
    }
    if (rt->ntypers == rt->captypers) {
        size_t cap = rt->captypers ? rt->captypers * 2 : 16;
        struct typer *nv = realloc(rt->typers, cap * sizeof *nv);
        if (!nv)
            return;
        rt->typers = nv;
        rt->captypers = cap;
    }
    struct typer *t = &rt->typers[rt->ntypers++];
    memcpy(t->room, it->room, sizeof t->room);
    memcpy(t->user, it->user, sizeof t->user);
    memcpy(t->thread, it->thread, sizeof t->thread);
    t->expires = until;
    broadcast(rt, it->room);
}

void
rt_typing_tick(struct rt *rt, int64_t now)
{
    for (size_t i = 0; i < rt->ntypers;) {
        if (rt->typers[i].expires > now) {
            i++;
            continue;
        }
        char room[ID_MAX + 1];
        memcpy(room, rt->typers[i].room, sizeof room);
        rt->typers[i] = rt->typers[--rt->ntypers];
        broadcast(rt, room);
    }
}

void
rt_typing_free(struct rt *rt)
{
    free(rt->typers);
    rt->typers = NULL;
    rt->ntypers = rt->captypers = 0;
}
