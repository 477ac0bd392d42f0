/* SPDX-License-Identifier: MIT */
/*
 * A room's call, as durable facts on the room's call subject (chatto.ev.<room>.call): call.started (with its
 * first participant), call.joined, call.left and call.ended. Each write reads the call from the model, decides
 * the one fact that moves it (or that nothing needs writing: a retried join, a leave of someone not in the call),
 * and appends it with the subject's last sequence as expectation, so two processes racing over the same call
 * serialise: the loser re-reads and decides again. What LiveKit reports (webhooks, reconciliation) goes through
 * the same path, named by call id, so a fact about an older call never touches the current one, and a retried
 * webhook carries its event id as Nats-Msg-Id on top of the model's own check.
 *
 * HTTP worker threads and the reconciler; never with the model lock held across NATS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "log/log.h"
#include "store/store.h"
#include "store/subject.h"

enum op { OP_JOIN, OP_LEAVE, OP_END };

static bool
in_call(const struct chat_call *call, const char *uid)
{
    for (size_t i = 0; uid && i < call->nparts; i++)
        if (!strcmp(call->parts[i].user, uid))
            return true;
    return false;
}

/* One call transition. who: the caller of a user request (must be a member), or NULL for what LiveKit observed
 * (uid, expect_call). *changed: this call wrote a fact (not a duplicate); *started: that fact started the call. */
static enum ch_status
call_write(struct chat *c, const struct user *who, const char *room, const char *uid, enum op op,
           const char *expect_call, const char *msg_id, bool *changed, bool *started, char call_id[65],
           struct ch_err *err)
{
    char subject[STORE_SUBJECT_MAX], cid[ID_MAX + 1];
    enum ch_status st;

    *changed = false;
    if (started)
        *started = false;
    if ((st = id_check("roomId", room, err)) != CH_OK || (uid && (st = id_check("userId", uid, err)) != CH_OK) ||
        (expect_call && (st = id_check("callId", expect_call, err)) != CH_OK))
        return st;
    if (store_subject_event_call(subject, sizeof subject, room) != CH_OK)
        return ch_err_set(err, CH_EINVAL, "roomId", "not a valid id");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        const char *type = NULL;
        struct chat_room *r;
        struct chat_member *cm;
        uint64_t expect;

        if ((st = sync_events(c, err)) != CH_OK)
            return st;
        pthread_rwlock_rdlock(&c->m->lock);
        if (who) {
            if ((st = chat_room_access(c, room, who, true, &r, &cm, err)) != CH_OK) {
                pthread_rwlock_unlock(&c->m->lock);
                return st;
            }
        } else if (!(r = model_room(c->m, room))) {
            pthread_rwlock_unlock(&c->m->lock);
            return CH_OK; /* not a room of ours (any more): nothing to record */
        }
        struct chat_call *call = &r->call;
        bool active = call->id[0] && (!expect_call || !strcmp(expect_call, call->id));
        snprintf(cid, sizeof cid, "%s", call->id);
        switch (op) {
        case OP_JOIN:
            if (!call->id[0] && !expect_call) {
                if (r->archived) {
                    pthread_rwlock_unlock(&c->m->lock);
                    return ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
                }
                id_new(cid);
                type = "call.started";
            } else if (active && !in_call(call, uid) && model_member(r, uid)) {
                if (call->nparts >= CALL_PARTS_MAX) {
                    pthread_rwlock_unlock(&c->m->lock);
                    return ch_err_set(err, CH_ELIMIT, "roomId", "the call is full (%d people)", CALL_PARTS_MAX);
                }
                type = "call.joined";
            }
            break;
        case OP_LEAVE:
            if (active && in_call(call, uid))
                type = call->nparts == 1 ? "call.ended" : "call.left";
            break;
        case OP_END:
            if (active)
                type = "call.ended";
            break;
        }
        expect = r->call_seq;
        pthread_rwlock_unlock(&c->m->lock);
        if (call_id)
            snprintf(call_id, 65, "%s", type || op == OP_JOIN ? cid : "");
        if (!type)
            return CH_OK; /* already so */

        cJSON *ev = chat_event_new(type, who);
        cJSON_AddStringToObject(ev, "callId", cid);
        if (uid)
            cJSON_AddStringToObject(ev, "user", uid);
        cJSON_AddStringToObject(ev, "source", who ? "user" : "livekit");
        struct store_pub_opts po = { .msg_id = msg_id, .expect_subject_seq = expect, .expect_none = expect == 0 };
        bool dup = false;
        st = chat_append(c, subject, ev, &po, NULL, &dup, err);
        if (st == CH_ECONFLICT)
            continue; /* someone else moved the call first: decide again */
        *changed = st == CH_OK && !dup;
        if (started) /* decided by what this request wrote, not by the model later (others may have joined) */
            *started = *changed && !strcmp(type, "call.started");
        return st;
    }
    return ch_err_set(err, CH_EUNAVAIL, "roomId", "the call kept changing under us; retry");
}

enum ch_status
chat_call_join(struct chat *c, const struct user *who, const char *room, bool *started, char call_id[65],
               struct ch_err *err)
{
    char cid[65] = "";
    bool changed = false;
    bool made = false;
    enum ch_status st = call_write(c, who, room, who->id, OP_JOIN, NULL, NULL, &changed, &made, cid, err);

    if (started)
        *started = st == CH_OK && made;
    if (st != CH_OK)
        return st;
    if (call_id)
        snprintf(call_id, 65, "%s", cid);
    return CH_OK;
}

enum ch_status
chat_call_leave(struct chat *c, const struct user *who, const char *room, bool *left, struct ch_err *err)
{
    bool changed = false;
    enum ch_status st = call_write(c, who, room, who->id, OP_LEAVE, NULL, NULL, &changed, NULL, NULL, err);

    if (left)
        *left = st == CH_OK;
    return st;
}

enum ch_status
chat_call_observe(struct chat *c, const char *room, const char *call_id, const char *uid, enum chat_call_obs what,
                  const char *msg_id, bool *recorded, struct ch_err *err)
{
    bool changed = false;
    enum op op = what == CHAT_CALL_JOINED ? OP_JOIN : what == CHAT_CALL_LEFT ? OP_LEAVE : OP_END;
    enum ch_status st;

    if (!call_id || !*call_id)
        return ch_err_set(err, CH_EINVAL, "callId", "required");
    if (op != OP_END && (!uid || !id_valid(uid))) {
        if (recorded)
            *recorded = false;
        return CH_OK; /* not one of our users (a LiveKit-side identity): nothing to record */
    }
    st = call_write(c, NULL, room, op == OP_END ? NULL : uid, op, call_id, msg_id, &changed, NULL, NULL, err);
    if (recorded)
        *recorded = changed;
    return st;
}

void
chat_call_drop(struct chat *c, const char *room, const char *uid)
{
    struct ch_err err = { 0 };
    bool changed = false;

    if (call_write(c, NULL, room, uid, OP_LEAVE, NULL, NULL, &changed, NULL, NULL, &err) != CH_OK)
        log_warn("calls: %s left room %s but is still in its call: %s", uid, room, err.msg);
}

/* ---- reads ---- */

/* The room's model entry for a member (read lock held on CH_OK: the caller unlocks). */
static enum ch_status
member_room(struct chat *c, const struct user *who, const char *room, struct chat_room **r, struct ch_err *err)
{
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room, who, true, r, &cm, err)) != CH_OK)
        pthread_rwlock_unlock(&c->m->lock);
    return st;
}

/* The room's ActiveCall view for a member, NULL in *v when no call is active. */
static enum ch_status
call_view(struct chat *c, const struct user *who, const char *room, cJSON **v, struct ch_err *err)
{
    struct chat_room *r;
    enum ch_status st;

    if ((st = member_room(c, who, room, &r, err)) != CH_OK)
        return st;
    *v = view_call(c->m, r);
    pthread_rwlock_unlock(&c->m->lock);
    return CH_OK;
}

enum ch_status
chat_call_get(struct chat *c, const struct user *who, const char *room, cJSON **out, struct ch_err *err)
{
    cJSON *v = NULL;
    enum ch_status st;

    if ((st = call_view(c, who, room, &v, err)) != CH_OK)
        return st;
    if (!v)
        return ch_err_set(err, CH_ENOTFOUND, "roomId", "no call is active in this room");
    *out = view_wrap("call", v);
    return CH_OK;
}

enum ch_status
chat_call_participants(struct chat *c, const struct user *who, const char *room, cJSON **out, struct ch_err *err)
{
    cJSON *v = NULL;
    enum ch_status st;

    if ((st = call_view(c, who, room, &v, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON *ps = v ? cJSON_DetachItemFromObjectCaseSensitive(v, "participants") : cJSON_CreateArray();
    cJSON_AddItemToObject(*out, "participants", ps);
    cJSON_Delete(v);
    return CH_OK;
}

enum ch_status
chat_call_list(struct chat *c, const struct user *who, const char *const *ids, size_t n, cJSON **out,
               struct ch_err *err)
{
    enum ch_status st;
    cJSON *arr;

    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(*out, "calls");
    pthread_rwlock_rdlock(&c->m->lock);
    if (ids) {
        for (size_t i = 0; i < n; i++) {
            struct chat_room *r = model_room(c->m, ids[i]);
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = !strcmp(ids[j], ids[i]);
            if (!seen && r && model_member(r, who->id) && r->call.id[0])
                cJSON_AddItemToArray(arr, view_call(c->m, r));
        }
    } else {
        size_t it = 0;
        void *v;
        while (map_next(c->m->rooms, &it, NULL, &v)) {
            struct chat_room *r = v;
            if (r->exists && r->call.id[0] && model_member(r, who->id))
                cJSON_AddItemToArray(arr, view_call(c->m, r));
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return CH_OK;
}

enum ch_status
chat_call_access(struct chat *c, const struct user *who, const char *room, struct chat_call_access *out,
                 struct ch_err *err)
{
    struct chat_room *r;
    enum ch_status st;

    memset(out, 0, sizeof *out);
    if ((st = member_room(c, who, room, &r, err)) != CH_OK)
        return st;
    if (!r->call.id[0])
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "no call is active in this room (JoinCall starts one)");
    else if (!in_call(&r->call, who->id))
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "you are not in this room's call (JoinCall first)");
    else {
        const struct user *u = model_user(c->m, who->id);
        snprintf(out->call_id, sizeof out->call_id, "%s", r->call.id);
        out->dm = r->vis == VIS_DM;
        out->user = u ? *u : *who;
        explicit_bzero(out->user.password_hash, sizeof out->user.password_hash);
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

void
chat_call_snapshot_free(struct chat_call_snap *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i].parts);
    free(s);
}

enum ch_status
chat_call_snapshot(struct chat *c, struct chat_call_snap **out, size_t *n, struct ch_err *err)
{
    enum ch_status st;
    size_t it = 0, k = 0, cap = 0;
    void *v;

    *out = NULL;
    *n = 0;
    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    while (map_next(c->m->rooms, &it, NULL, &v))
        cap += ((struct chat_room *)v)->call.id[0] != '\0';
    struct chat_call_snap *s = cap ? calloc(cap, sizeof *s) : NULL;
    it = 0;
    while (s && k < cap && map_next(c->m->rooms, &it, NULL, &v)) {
        struct chat_room *r = v;
        if (!r->call.id[0])
            continue;
        snprintf(s[k].room, sizeof s[k].room, "%s", r->id);
        snprintf(s[k].call_id, sizeof s[k].call_id, "%s", r->call.id);
        s[k].dm = r->vis == VIS_DM;
        s[k].started_at = r->call.started_at;
        if (r->call.nparts && (s[k].parts = calloc(r->call.nparts, sizeof *s[k].parts))) {
            for (size_t i = 0; i < r->call.nparts; i++) {
                snprintf(s[k].parts[i].user, sizeof s[k].parts[i].user, "%s", r->call.parts[i].user);
                s[k].parts[i].joined_at = r->call.parts[i].joined_at;
            }
            s[k].nparts = r->call.nparts;
        }
        k++;
    }
    pthread_rwlock_unlock(&c->m->lock);
    if (cap && !s)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    *out = s;
    *n = k;
    return CH_OK;
}
