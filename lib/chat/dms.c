/* SPDX-License-Identifier: MIT */
/*
 * Direct messages: one DM room per set of participants. The set's hash is claimed atomically in chatto_dms, so
 * two processes racing agree on one room id; whoever finds the room missing (the claim's winner, or anyone after
 * it crashed) publishes its creation, which only the first can do. HTTP worker threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "store/store.h"
#include "store/subject.h"

#define DM_MAX_PARTICIPANTS 9

static int
cmp_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Publish the DM's creation for room_id (idempotent: the room subject must be empty). */
static enum ch_status
create_dm_room(struct chat *c, const struct user *who, const char *room_id, const char *key,
               const char *const *ids, size_t n, struct ch_err *err)
{
    cJSON *ev, *room, *mem;
    struct store_pub_opts po = { .expect_none = true };
    char subject[STORE_SUBJECT_MAX];
    enum ch_status st;

    if (store_subject_event_room(subject, sizeof subject, room_id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    ev = chat_event_new("room.created", who);
    room = cJSON_AddObjectToObject(ev, "room");
    mem = cJSON_AddArrayToObject(ev, "members");
    cJSON_AddStringToObject(room, "id", room_id);
    cJSON_AddStringToObject(room, "name", "");
    cJSON_AddStringToObject(room, "description", "");
    cJSON_AddStringToObject(room, "visibility", "dm");
    cJSON_AddStringToObject(room, "dmKey", key);
    for (size_t i = 0; i < n; i++) {
        cJSON *one = cJSON_CreateObject();
        cJSON_AddStringToObject(one, "user", ids[i]);
        cJSON_AddStringToObject(one, "role", "member");
        cJSON_AddItemToArray(mem, one);
    }
    st = chat_append(c, subject, ev, &po, NULL, NULL, err);
    return st == CH_ECONFLICT ? CH_OK : st; /* someone created it first */
}

enum ch_status
chat_start_dm(struct chat *c, const struct user *who, const char *const *in, size_t n_in, cJSON **out,
              struct ch_err *err)
{
    const char *ids[DM_MAX_PARTICIPANTS + 1];
    size_t n = 0;
    char joined[(ID_MAX + 1) * (DM_MAX_PARTICIPANTS + 1) + 1] = "", key[65], room_id[ID_MAX + 1];
    enum ch_status st;

    ids[n++] = who->id;
    for (size_t i = 0; i < n_in; i++) {
        bool dup = false;
        if ((st = id_check("participantIds", in[i], err)) != CH_OK)
            return st;
        for (size_t j = 0; j < n && !dup; j++)
            dup = !strcmp(ids[j], in[i]);
        if (dup)
            continue;
        if (n == DM_MAX_PARTICIPANTS)
            return ch_err_set(err, CH_EINVAL, "participantIds", "at most %d other participants",
                              DM_MAX_PARTICIPANTS - 1);
        ids[n++] = in[i];
    }
    if ((st = sync_users(c, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    for (size_t i = 1; i < n && st == CH_OK; i++) {
        const struct user *u = model_user(c->m, ids[i]);
        if (!u || u->disabled || u->deleted)
            st = ch_err_set(err, CH_ENOTFOUND, "participantIds", "no such user: %s", ids[i]);
    }
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK)
        return st;
    qsort(ids, n, sizeof ids[0], cmp_ids);
    for (size_t i = 0; i < n; i++) {
        strcat(joined, ids[i]);
        strcat(joined, ",");
    }
    chat_hash_hex(joined, key);
    /* one atomic claim decides the DM's id, whichever process gets there first */
    id_new(room_id);
    st = store_kv_create(c->store, STORE_B_DMS, key, room_id, strlen(room_id), NULL, err);
    if (st == CH_EEXIST) {
        char *v = NULL;
        if ((st = store_kv_get(c->store, STORE_B_DMS, key, &v, NULL, NULL, err)) != CH_OK)
            return st;
        snprintf(room_id, sizeof room_id, "%s", v);
        free(v);
        if (!id_valid(room_id))
            return ch_err_set(err, CH_EINTERNAL, NULL, "corrupt DM record");
    } else if (st != CH_OK) {
        return st;
    }
    pthread_rwlock_rdlock(&c->m->lock);
    bool exists = model_room(c->m, room_id) != NULL;
    pthread_rwlock_unlock(&c->m->lock);
    /* the claim's winner creates the room; if it crashed before doing so, whoever comes next finishes */
    if (!exists && (st = create_dm_room(c, who, room_id, key, ids, n, err)) != CH_OK)
        return st;
    if (!exists && (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    *out = r ? view_wrap("room", view_room(r)) : NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return *out ? CH_OK : ch_err_set(err, CH_EUNAVAIL, NULL, "the DM is being created; retry");
}
