/* SPDX-License-Identifier: MIT */
/*
 * Rooms and their members: create (the name is claimed in chatto_roomnames first, so names are unique), update,
 * archive, join, leave, add and remove members, list members and rooms, and #general (created once by whoever
 * gets there first). Room events go on the room's subject with its last sequence as expectation, membership
 * events on the member's subject (store/subject.h). HTTP worker threads.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/utf8.h"
#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"
#include "store/subject.h"

#define GENERAL_ID "general"

/* ---- validation ---- */

void
chat_hash_hex(const char *s, char out[65])
{
    unsigned char h[32];

    crypto_generichash(h, sizeof h, (const unsigned char *)s, strlen(s), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* KV key for a room name: case-folded (ASCII), hashed so any Unicode name is a valid key. */
static void
name_key(const char *name, char out[65])
{
    char folded[ROOM_NAME_MAX_BYTES + 1];
    size_t i = 0;

    for (; name[i] && i < ROOM_NAME_MAX_BYTES; i++)
        folded[i] = (char)tolower((unsigned char)name[i]);
    folded[i] = '\0';
    chat_hash_hex(folded, out);
}

/* ---- rooms ---- */

enum ch_status
chat_create_room(struct chat *c, const struct user *who, const char *name_in, const char *desc_in,
                 const char *visibility, cJSON **out, struct ch_err *err)
{
    char name[ROOM_NAME_MAX_BYTES + 1], desc[ROOM_DESC_MAX_BYTES + 1], key[65], id[ID_LEN + 1],
         subject[STORE_SUBJECT_MAX];
    enum ch_status st;
    cJSON *ev, *room, *mem, *one;
    struct store_pub_opts po = { .expect_none = true };

    if (name_in[0] == '#')
        name_in++; /* "#general" and "general" are the same name */
    if ((st = utf8_clean_text("name", name_in, ROOM_NAME_MAX_CHARS, ROOM_NAME_MAX_BYTES, false, false, name,
                              sizeof name, err)) != CH_OK ||
        (st = utf8_clean_text("description", desc_in ? desc_in : "", ROOM_DESC_MAX_CHARS, ROOM_DESC_MAX_BYTES,
                              true, true, desc, sizeof desc, err)) != CH_OK)
        return st;
    if (visibility && *visibility && strcmp(visibility, "public") && strcmp(visibility, "private"))
        return ch_err_set(err, CH_EINVAL, "visibility", "must be public or private");
    id_new(id);
    if (store_subject_event_room(subject, sizeof subject, id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    name_key(name, key);
    st = store_kv_create(c->store, STORE_B_ROOMNAMES, key, id, strlen(id), NULL, err);
    if (st == CH_EEXIST)
        return ch_err_set(err, CH_EEXIST, "name", "a room with this name already exists");
    if (st != CH_OK)
        return st;
    ev = chat_event_new("room.created", who);
    room = cJSON_AddObjectToObject(ev, "room");
    cJSON_AddStringToObject(room, "id", id);
    cJSON_AddStringToObject(room, "name", name);
    cJSON_AddStringToObject(room, "description", desc);
    cJSON_AddStringToObject(room, "visibility", visibility && !strcmp(visibility, "private") ? "private" : "public");
    mem = cJSON_AddArrayToObject(ev, "members");
    one = cJSON_CreateObject();
    cJSON_AddStringToObject(one, "user", who->id);
    cJSON_AddStringToObject(one, "role", "owner");
    cJSON_AddItemToArray(mem, one);
    if ((st = chat_append(c, subject, ev, &po, NULL, NULL, err)) != CH_OK) {
        store_kv_purge(c->store, STORE_B_ROOMNAMES, key, NULL);
        return st;
    }
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, id);
    *out = r ? view_wrap("room", view_room(r)) : NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return *out ? CH_OK : ch_err_set(err, CH_EINTERNAL, NULL, "room vanished");
}

/* Common prologue of room-admin operations: sync, then find the room and check the caller may manage it. */
static enum ch_status
managed_room(struct chat *c, const struct user *who, const char *room_id, struct chat_room **r,
             struct chat_member **cm, struct ch_err *err)
{
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, false, r, cm, err)) == CH_OK && !chat_room_admin(*cm, who))
        st = ch_err_set(err, CH_EPERM, "roomId", "only the room's admins may do this");
    if (st == CH_OK && (*r)->vis == VIS_DM)
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "direct message rooms cannot be changed this way");
    if (st != CH_OK)
        pthread_rwlock_unlock(&c->m->lock);
    return st; /* on success the caller holds the read lock */
}

enum ch_status
chat_update_room(struct chat *c, const struct user *who, const char *room_id, const char *name_in,
                 const char *desc_in, cJSON **out, struct ch_err *err)
{
    char name[ROOM_NAME_MAX_BYTES + 1] = "", desc[ROOM_DESC_MAX_BYTES + 1] = "", newkey[65] = "", oldkey[65],
         subject[STORE_SUBJECT_MAX];
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    uint64_t expect;
    bool rename = false;

    if (name_in && name_in[0] == '#')
        name_in++;
    if ((name_in && (st = utf8_clean_text("name", name_in, ROOM_NAME_MAX_CHARS, ROOM_NAME_MAX_BYTES, false, false,
                                          name, sizeof name, err)) != CH_OK) ||
        (desc_in && (st = utf8_clean_text("description", desc_in, ROOM_DESC_MAX_CHARS, ROOM_DESC_MAX_BYTES, true,
                                          true, desc, sizeof desc, err)) != CH_OK))
        return st;
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        if ((st = managed_room(c, who, room_id, &r, &cm, err)) != CH_OK)
            return st;
        if (r->archived) {
            pthread_rwlock_unlock(&c->m->lock);
            return ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived; unarchive it first");
        }
        expect = r->room_seq;
        name_key(r->name, oldkey);
        rename = name_in && strcasecmp(name, r->name) != 0;
        pthread_rwlock_unlock(&c->m->lock);
        /* before the new name is claimed: nothing to undo */
        if (store_subject_event_room(subject, sizeof subject, room_id) != CH_OK)
            return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
        if (rename && !newkey[0]) {
            name_key(name, newkey);
            st = store_kv_create(c->store, STORE_B_ROOMNAMES, newkey, room_id, strlen(room_id), NULL, err);
            if (st == CH_EEXIST)
                return ch_err_set(err, CH_EEXIST, "name", "a room with this name already exists");
            if (st != CH_OK)
                return st;
        }
        cJSON *ev = chat_event_new("room.updated", who);
        if (name_in)
            cJSON_AddStringToObject(ev, "name", name);
        if (desc_in)
            cJSON_AddStringToObject(ev, "description", desc);
        struct store_pub_opts po = { .expect_subject_seq = expect };
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st == CH_ECONFLICT)
            continue;
        break;
    }
    if (st != CH_OK) {
        if (newkey[0])
            store_kv_purge(c->store, STORE_B_ROOMNAMES, newkey, NULL);
        return st;
    }
    if (rename && strcmp(oldkey, newkey) != 0)
        store_kv_purge(c->store, STORE_B_ROOMNAMES, oldkey, NULL);
    pthread_rwlock_rdlock(&c->m->lock);
    r = model_room(c->m, room_id);
    *out = r ? view_wrap("room", view_room(r)) : NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return *out ? CH_OK : ch_err_set(err, CH_ENOTFOUND, "roomId", "no such room");
}

enum ch_status
chat_set_archived(struct chat *c, const struct user *who, const char *room_id, bool archived, cJSON **out,
                  struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st = CH_OK;
    char subject[STORE_SUBJECT_MAX];

    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        if ((st = managed_room(c, who, room_id, &r, &cm, err)) != CH_OK)
            return st;
        bool same = r->archived == archived;
        uint64_t expect = r->room_seq;
        pthread_rwlock_unlock(&c->m->lock);
        if (same)
            break;
        struct store_pub_opts po = { .expect_subject_seq = expect };
        if (store_subject_event_room(subject, sizeof subject, room_id) != CH_OK)
            return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
        st = chat_append(c, subject, chat_event_new(archived ? "room.archived" : "room.unarchived", who), &po, NULL,
                         NULL, err);
        if (st != CH_ECONFLICT)
            break;
    }
    if (st != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    r = model_room(c->m, room_id);
    *out = r ? view_wrap("room", view_room(r)) : NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return *out ? CH_OK : ch_err_set(err, CH_ENOTFOUND, "roomId", "no such room");
}

/* ---- members ---- */

static enum ch_status
member_event(struct chat *c, const struct user *who, const char *room_id, const char *type, const char *user,
             const char *role, struct ch_err *err)
{
    char subject[STORE_SUBJECT_MAX];
    cJSON *ev;

    if (store_subject_event_member(subject, sizeof subject, room_id, user) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    ev = chat_event_new(type, who);
    cJSON_AddStringToObject(ev, "user", user);
    if (role)
        cJSON_AddStringToObject(ev, "role", role);
    return chat_append(c, subject, ev, NULL, NULL, NULL, err);
}

enum ch_status
chat_join(struct chat *c, const struct user *who, const char *room_id, cJSON **out, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    st = chat_room_access(c, room_id, who, false, &r, &cm, err);
    if (st == CH_OK && !cm && r->archived)
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived");
    bool member = st == CH_OK && cm;
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK)
        return st;
    if (!member && (st = member_event(c, who, room_id, "member.joined", who->id, "member", err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    r = model_room(c->m, room_id);
    *out = r ? view_wrap("room", view_room(r)) : NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return *out ? CH_OK : ch_err_set(err, CH_ENOTFOUND, "roomId", "no such room");
}

enum ch_status
chat_leave(struct chat *c, const struct user *who, const char *room_id, struct ch_err *err)
{
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK ||
        (st = chat_room_check(c, room_id, who, false, err)) != CH_OK)
        return st;
    if ((st = member_event(c, who, room_id, "member.left", who->id, NULL, err)) == CH_OK)
        chat_call_drop(c, room_id, who->id);
    return st;
}

enum ch_status
chat_add_member(struct chat *c, const struct user *who, const char *room_id, const char *user, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("userId", user, err)) != CH_OK || (st = sync_users(c, err)) != CH_OK)
        return st;
    if ((st = managed_room(c, who, room_id, &r, &cm, err)) != CH_OK)
        return st;
    const struct user *u = model_user(c->m, user);
    if (!u || u->disabled || u->deleted)
        st = ch_err_set(err, CH_ENOTFOUND, "userId", "no such user");
    else if (r->archived)
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived");
    bool already = st == CH_OK && model_member(r, user);
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK || already)
        return st;
    return member_event(c, who, room_id, "member.added", user, "member", err);
}

enum ch_status
chat_remove_member(struct chat *c, const struct user *who, const char *room_id, const char *user, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("userId", user, err)) != CH_OK)
        return st;
    if ((st = managed_room(c, who, room_id, &r, &cm, err)) != CH_OK)
        return st;
    struct chat_member *target = model_member(r, user);
    if (!target)
        st = ch_err_set(err, CH_ENOTFOUND, "userId", "not a member of this room");
    else if (target->role >= RROLE_ADMIN && !chat_is_staff(who) && (!cm || cm->role != RROLE_OWNER))
        st = ch_err_set(err, CH_EPERM, "userId", "only the room owner may remove an admin");
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK)
        return st;
    if ((st = member_event(c, who, room_id, "member.removed", user, NULL, err)) == CH_OK)
        chat_call_drop(c, room_id, user);
    return st;
}

enum ch_status
chat_list_members(struct chat *c, const struct user *who, const char *room_id, cJSON **out, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, false, &r, &cm, err)) == CH_OK) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "members");
        cJSON *users = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "includes"), "users");
        size_t it = 0;
        void *v;
        while (map_next(r->members, &it, NULL, &v)) {
            struct chat_member *mm = v;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "userId", mm->user);
            cJSON_AddStringToObject(x, "role", room_role_str(mm->role));
            json_add_time(x, "joinedAt", mm->joined_at);
            cJSON_AddItemToArray(arr, x);
            view_include_user(c->m, users, mm->user);
        }
        *out = o;
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

/* ---- the room list ---- */

enum ch_status
chat_list_rooms(struct chat *c, const struct user *who, cJSON **out, struct ch_err *err)
{
    enum ch_status st;
    cJSON *o, *arr;
    size_t it = 0;
    void *v;

    if ((st = sync_events(c, err)) != CH_OK || (st = sync_reads(c, err)) != CH_OK)
        return st;
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "rooms");
    pthread_rwlock_rdlock(&c->m->lock);
    while (map_next(c->m->rooms, &it, NULL, &v)) {
        struct chat_room *r = v;
        struct chat_member *cm = r->exists ? model_member(r, who->id) : NULL;
        size_t unread = 0, mentions = 0;
        if (!r->exists || (!cm && r->vis != VIS_PUBLIC))
            continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToObject(x, "room", view_room(r));
        cJSON_AddBoolToObject(x, "joined", cm != NULL);
        if (cm) {
            chat_unread_counts(c->m, r, cm, &unread, &mentions);
            cJSON_AddStringToObject(x, "role", room_role_str(cm->role));
        }
        cJSON_AddNumberToObject(x, "unreadCount", (double)unread);
        cJSON_AddNumberToObject(x, "mentionCount", (double)mentions);
        cJSON_AddNumberToObject(x, "memberCount", (double)map_len(r->members));
        if (r->last_activity)
            json_add_time(x, "lastActivityAt", r->last_activity);
        cJSON_AddItemToArray(arr, x);
    }
    pthread_rwlock_unlock(&c->m->lock);
    *out = o;
    return CH_OK;
}

/* ---- #general ---- */

enum ch_status
chat_join_general(struct chat *c, const struct user *who, struct ch_err *err)
{
    enum ch_status st;
    cJSON *room = NULL;

    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    bool exists = model_room(c->m, GENERAL_ID) != NULL;
    pthread_rwlock_unlock(&c->m->lock);
    if (!exists) {
        char key[65], subject[STORE_SUBJECT_MAX];
        struct store_pub_opts po = { .expect_none = true };
        if (store_subject_event_room(subject, sizeof subject, GENERAL_ID) != CH_OK)
            return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
        cJSON *ev = chat_event_new("room.created", who), *r = cJSON_AddObjectToObject(ev, "room");
        name_key("general", key);
        store_kv_create(c->store, STORE_B_ROOMNAMES, key, GENERAL_ID, strlen(GENERAL_ID), NULL, NULL);
        cJSON_AddStringToObject(r, "id", GENERAL_ID);
        cJSON_AddStringToObject(r, "name", "general");
        cJSON_AddStringToObject(r, "description", "Everyone on this server");
        cJSON_AddStringToObject(r, "visibility", "public");
        cJSON_AddArrayToObject(ev, "members");
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st != CH_OK && st != CH_ECONFLICT) /* conflict: another process created it first */
            return st;
    }
    st = chat_join(c, who, GENERAL_ID, &room, err);
    cJSON_Delete(room);
    return st;
}
