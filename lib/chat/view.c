/* SPDX-License-Identifier: MIT */
/* JSON views of the read model in the API's shapes (SPEC §5). Callers hold the model lock. */
#include <stdio.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"

static const char *
vis_str(enum room_vis v)
{
    return v == VIS_PRIVATE ? "private" : v == VIS_DM ? "dm" : "public";
}

cJSON *
view_room(const struct chat_room *r)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "description", r->description);
    cJSON_AddBoolToObject(o, "archived", r->archived);
    cJSON_AddStringToObject(o, "visibility", vis_str(r->vis));
    cJSON_AddBoolToObject(o, "isDm", r->vis == VIS_DM);
    json_add_time(o, "createdAt", r->created_at);
    if (r->call.id[0]) {
        /* the live call, compactly (VoiceCallService answers the full ActiveCall) */
        cJSON *c = cJSON_AddObjectToObject(o, "activeCall"), *ps;
        cJSON_AddStringToObject(c, "callId", r->call.id);
        json_add_time(c, "startedAt", r->call.started_at);
        ps = cJSON_AddArrayToObject(c, "participants");
        for (size_t i = 0; i < r->call.nparts; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "userId", r->call.parts[i].user);
            json_add_time(p, "joinedAt", r->call.parts[i].joined_at);
            cJSON_AddItemToArray(ps, p);
        }
    }
    if (r->vis == VIS_DM) {
        cJSON *ids = cJSON_AddArrayToObject(o, "participantIds");
        size_t it = 0;
        const char *k;
        while (map_next(r->members, &it, &k, NULL))
            cJSON_AddItemToArray(ids, cJSON_CreateString(k));
    }
    return o;
}

/* MessageAttachment views (upstream's fields, plus size) of a snapshot's attachments, with URLs for viewer. */
void
view_attachments(const struct chat_model *m, cJSON *arr, const char *json, const char *viewer)
{
    cJSON *src = cJSON_Parse(json), *it;

    cJSON_ArrayForEach(it, src) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        char url[600];
        int64_t exp = 0;
        if (!cJSON_IsString(id))
            continue;
        cJSON *a = cJSON_CreateObject(), *u;
        static const char *const strs[] = { "id", "filename", "contentType" };
        for (size_t i = 0; i < 3; i++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, strs[i]);
            cJSON_AddStringToObject(a, strs[i], cJSON_IsString(f) ? f->valuestring : "");
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "size");
        json_add_int64_str(a, "size", cJSON_IsNumber(f) ? (int64_t)f->valuedouble : 0);
        static const char *const dims[] = { "width", "height" };
        for (size_t i = 0; i < 2; i++)
            if (cJSON_IsNumber(f = cJSON_GetObjectItemCaseSensitive(it, dims[i])))
                cJSON_AddNumberToObject(a, dims[i], f->valuedouble);
        if (m->assets.url)
            m->assets.url(m->assets.ctx, id->valuestring, viewer, url, sizeof url, &exp);
        else
            snprintf(url, sizeof url, "/assets/files/%s", id->valuestring);
        u = cJSON_AddObjectToObject(a, "assetUrl");
        cJSON_AddStringToObject(u, "url", url);
        if (exp)
            json_add_time(u, "expiresAt", exp);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(it, "contentType"),
                    *w = cJSON_GetObjectItemCaseSensitive(it, "width"),
                    *h = cJSON_GetObjectItemCaseSensitive(it, "height");
        exp = 0;
        if (m->assets.thumb_url && cJSON_IsString(ct) && cJSON_IsNumber(w) && cJSON_IsNumber(h) &&
            m->assets.thumb_url(m->assets.ctx, id->valuestring, ct->valuestring, (int)w->valuedouble,
                                (int)h->valuedouble, viewer, url, sizeof url, &exp)) {
            u = cJSON_AddObjectToObject(a, "thumbnailAssetUrl");
            cJSON_AddStringToObject(u, "url", url);
            if (exp)
                json_add_time(u, "expiresAt", exp);
        }
        cJSON_AddItemToArray(arr, a);
    }
    cJSON_Delete(src);
}

cJSON *
view_message(const struct chat_model *m, const struct chat_msg *msg, const char *room_id, const char *viewer,
             struct body_fill *bf)
{
    cJSON *o = cJSON_CreateObject(), *arr;

    cJSON_AddStringToObject(o, "id", msg->id);
    cJSON_AddStringToObject(o, "roomId", room_id);
    json_add_time(o, "createdAt", msg->created_at);
    cJSON_AddStringToObject(o, "actorId", msg->author);
    if (msg->nbody && !msg->deleted_at) {
        uint64_t seq = msg->body_seqs[msg->nbody - 1];
        if (!body_cache_add_to(m->bodies, seq, o, "body") && bf)
            body_fill_want(bf, m->bodies, o, seq);
    }
    arr = cJSON_AddArrayToObject(o, "attachments");
    if (msg->attachments && !msg->deleted_at)
        view_attachments(m, arr, msg->attachments, viewer);
    if (msg->edited_at)
        json_add_time(o, "updatedAt", msg->edited_at);
    cJSON_AddBoolToObject(o, "edited", msg->edited_at != 0);
    if (msg->in_reply_to[0])
        cJSON_AddStringToObject(o, "inReplyTo", msg->in_reply_to);
    if (msg->thread_root[0])
        cJSON_AddStringToObject(o, "threadRootEventId", msg->thread_root);
    arr = cJSON_AddArrayToObject(o, "reactions");
    for (size_t i = 0; i < msg->nreactions; i++) {
        const struct chat_reaction *rx = &msg->reactions[i];
        cJSON *x = cJSON_CreateObject();
        bool mine = false;
        for (size_t j = 0; viewer && j < rx->n; j++)
            mine |= !strcmp(rx->users[j], viewer);
        cJSON_AddStringToObject(x, "emoji", rx->emoji);
        cJSON_AddNumberToObject(x, "count", (double)rx->n);
        cJSON_AddBoolToObject(x, "hasReacted", mine);
        cJSON_AddItemToArray(arr, x);
    }
    arr = cJSON_AddArrayToObject(o, "mentions");
    for (size_t i = 0; i < msg->nmentions; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(msg->mentions[i]));
    if (msg->mention_all)
        cJSON_AddBoolToObject(o, "mentionsAll", true);
    if (msg->mention_here)
        cJSON_AddBoolToObject(o, "mentionsHere", true);
    if (!msg->thread_root[0] && (msg->reply_count || msg->last_reply_at)) {
        cJSON *t = cJSON_AddObjectToObject(o, "thread");
        cJSON_AddStringToObject(t, "threadRootEventId", msg->id);
        cJSON_AddNumberToObject(t, "replyCount", msg->reply_count);
        if (msg->last_reply_at)
            json_add_time(t, "lastReplyAt", msg->last_reply_at);
    }
    if (msg->deleted_at)
        json_add_time(o, "deletedAt", msg->deleted_at);
    cJSON_AddBoolToObject(o, "pinned", msg->pinned);
    json_add_int64_str(o, "cursor", (int64_t)msg->pos);
    return o;
}

cJSON *
view_item(const struct chat_model *m, const struct chat_item *it, const char *room_id, const char *viewer,
          struct body_fill *bf)
{
    cJSON *o = cJSON_CreateObject(), *x;

    cJSON_AddStringToObject(o, "id", it->id);
    json_add_time(o, "createdAt", it->at);
    cJSON_AddStringToObject(o, "actorId", it->actor);
    json_add_int64_str(o, "cursor", (int64_t)it->pos);
    switch (it->kind) {
    case IT_MSG:
        x = cJSON_AddObjectToObject(o, "messagePosted");
        cJSON_AddItemToObject(x, "message", view_message(m, it->msg, room_id, viewer, bf));
        break;
    case IT_ROOM_CREATED:
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "roomCreated"), "roomId", room_id);
        break;
    case IT_ROOM_UPDATED:
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "roomUpdated"), "roomId", room_id);
        break;
    case IT_ROOM_ARCHIVED:
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "roomArchived"), "roomId", room_id);
        break;
    case IT_ROOM_UNARCHIVED:
        x = cJSON_AddObjectToObject(o, "roomUnarchived");
        cJSON_AddStringToObject(x, "roomId", room_id);
        break;
    case IT_JOINED:
        x = cJSON_AddObjectToObject(o, "userJoinedRoom");
        cJSON_AddStringToObject(x, "roomId", room_id);
        cJSON_AddStringToObject(x, "userId", it->subject_user);
        break;
    case IT_LEFT:
        x = cJSON_AddObjectToObject(o, "userLeftRoom");
        cJSON_AddStringToObject(x, "roomId", room_id);
        cJSON_AddStringToObject(x, "userId", it->subject_user);
        break;
    case IT_CALL_STARTED:
    case IT_CALL_ENDED:
        x = cJSON_AddObjectToObject(o, it->kind == IT_CALL_STARTED ? "callStarted" : "callEnded");
        cJSON_AddStringToObject(x, "roomId", room_id);
        cJSON_AddStringToObject(x, "callId", it->subject_user);
        break;
    }
    return o;
}

cJSON *
view_user(const struct chat_model *m, const char *id)
{
    const struct user *u = model_user((struct chat_model *)m, id);

    if (u)
        return user_to_json(u, false);
    /* not (yet) in the directory: a minimal record rather than a hole in includes */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "login", "");
    cJSON_AddStringToObject(o, "displayName", "");
    cJSON_AddBoolToObject(o, "deleted", false);
    cJSON_AddBoolToObject(o, "isBot", false);
    return o;
}

cJSON *
view_call(const struct chat_model *m, const struct chat_room *r)
{
    cJSON *o, *ps;

    if (!r->call.id[0])
        return NULL;
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "room", view_room(r));
    cJSON_AddStringToObject(o, "callId", r->call.id);
    json_add_time(o, "startedAt", r->call.started_at);
    cJSON_AddStringToObject(o, "startedBy", r->call.started_by);
    ps = cJSON_AddArrayToObject(o, "participants");
    for (size_t i = 0; i < r->call.nparts; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "user", view_user(m, r->call.parts[i].user));
        json_add_time(p, "joinedAt", r->call.parts[i].joined_at);
        cJSON_AddStringToObject(p, "callId", r->call.id);
        cJSON_AddItemToArray(ps, p);
    }
    return o;
}

void
view_include_user(const struct chat_model *m, cJSON *users, const char *id)
{
    if (!id || !*id || cJSON_GetObjectItemCaseSensitive(users, id))
        return;
    cJSON_AddItemToObject(users, id, view_user(m, id));
}

cJSON *
view_wrap(const char *name, cJSON *v)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddItemToObject(o, name, v);
    return o;
}

void
view_add_page(cJSON *o, size_t total, size_t offset, size_t shown)
{
    cJSON *page = cJSON_AddObjectToObject(o, "page");

    json_add_int64_str(page, "totalCount", (int64_t)total);
    cJSON_AddBoolToObject(page, "hasMore", offset + shown < total);
}
