/* SPDX-License-Identifier: MIT */
/*
 * Who may do what, as every command asks it: server staff, a room's visibility and membership, a room's admins;
 * and the optional-id check. Callers hold the model's read lock for the room lookups. HTTP worker threads.
 */
#include "chat/chat_int.h"

bool
chat_is_staff(const struct user *u)
{
    return u->role == ROLE_ADMIN || u->role == ROLE_OWNER;
}

enum ch_status
chat_room_access(struct chat *c, const char *room_id, const struct user *who, bool must_be_member,
                 struct chat_room **r, struct chat_member **cm, struct ch_err *err)
{
    *r = model_room(c->m, room_id);
    *cm = *r ? model_member(*r, who->id) : NULL;
    if (!*r || (!*cm && (*r)->vis != VIS_PUBLIC))
        return ch_err_set(err, CH_ENOTFOUND, "roomId", "no such room");
    if (must_be_member && !*cm)
        return ch_err_set(err, CH_EPERM, "roomId", "join the room first");
    return CH_OK;
}

enum ch_status
chat_room_check(struct chat *c, const char *room_id, const struct user *who, bool to_post, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK && to_post && r->archived)
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

bool
chat_room_admin(const struct chat_member *cm, const struct user *who)
{
    return chat_is_staff(who) || (cm && cm->role >= RROLE_ADMIN);
}

enum ch_status
chat_id_or_empty(const char *field, const char *v, struct ch_err *err)
{
    return v && *v ? id_check(field, v, err) : CH_OK;
}
