/* SPDX-License-Identifier: MIT */
/* chatto.api.v1.RoomService: rooms, membership, DMs, history and read state. MHD worker threads. */
#include <stdlib.h>

#include "api/api.h"
#include "chat/chat.h"
#include "json/json.h"
#include "realtime/realtime.h"

#define ME (&c->who->user)

static enum ch_status
room_id(const cJSON *in, const char **id, struct ch_err *err)
{
    return json_get_str(in, "roomId", true, 1, 64, id, err);
}

static enum ch_status
create_room(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *name = NULL, *desc = "", *vis = "public";
    enum ch_status st;

    if ((st = json_get_str(in, "name", true, 0, 1024, &name, err)) != CH_OK ||
        (st = json_get_str(in, "description", false, 0, 4096, &desc, err)) != CH_OK ||
        (st = json_get_str(in, "visibility", false, 0, 16, &vis, err)) != CH_OK)
        return st;
    return chat_create_room(c->env->chat, ME, name, desc, vis, out, err);
}

static enum ch_status
update_room(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL, *name = NULL, *desc = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK || (st = json_get_str(in, "name", false, 0, 1024, &name, err)) != CH_OK ||
        (st = json_get_str(in, "description", false, 0, 4096, &desc, err)) != CH_OK)
        return st;
    if (!name && !desc)
        return ch_err_set(err, CH_EINVAL, "name", "give a name, a description or both");
    return chat_update_room(c->env->chat, ME, id, name, desc, out, err);
}

static enum ch_status
archive(struct api_ctx *c, const cJSON *in, cJSON **out, bool archived, struct ch_err *err)
{
    const char *id = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK)
        return st;
    return chat_set_archived(c->env->chat, ME, id, archived, out, err);
}

static enum ch_status
archive_room(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return archive(c, in, out, true, err);
}

static enum ch_status
unarchive_room(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return archive(c, in, out, false, err);
}

static enum ch_status
join_room(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK)
        return st;
    return chat_join(c->env->chat, ME, id, out, err);
}

static enum ch_status
leave_room(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK || (st = chat_leave(c->env->chat, ME, id, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "left", true);
    return CH_OK;
}

static enum ch_status
member_change(struct api_ctx *c, const cJSON *in, cJSON **out, bool add, struct ch_err *err)
{
    const char *id = NULL, *user = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK || (st = json_get_str(in, "userId", true, 1, 64, &user, err)) != CH_OK)
        return st;
    st = add ? chat_add_member(c->env->chat, ME, id, user, err) : chat_remove_member(c->env->chat, ME, id, user, err);
    if (st == CH_OK)
        *out = cJSON_CreateObject();
    return st;
}

static enum ch_status
add_member(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return member_change(c, in, out, true, err);
}

static enum ch_status
remove_member(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return member_change(c, in, out, false, err);
}

static enum ch_status
list_members(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK)
        return st;
    return chat_list_members(c->env->chat, ME, id, out, err);
}

static enum ch_status
list_rooms(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    (void)in;
    return chat_list_rooms(c->env->chat, ME, out, err);
}

static enum ch_status
start_dm(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char **ids = NULL;
    size_t n = 0;
    enum ch_status st;

    if ((st = json_get_str_array(in, "participantIds", true, 16, 1, 64, &ids, &n, err)) != CH_OK)
        return st;
    if (n == 0) {
        free(ids);
        return ch_err_set(err, CH_EINVAL, "participantIds", "name at least one other user");
    }
    st = chat_start_dm(c->env->chat, ME, ids, n, out, err);
    free(ids);
    return st;
}

static enum ch_status
get_limit(const cJSON *in, int *limit, struct ch_err *err)
{
    int64_t v = 0;
    enum ch_status st = json_get_int(in, "limit", false, 0, 100, &v, err);

    *limit = (int)v;
    return st;
}

static enum ch_status
get_room_events(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL, *before = NULL, *after = NULL;
    int limit = 0;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK || (st = get_limit(in, &limit, err)) != CH_OK ||
        (st = json_get_str(in, "before", false, 0, 32, &before, err)) != CH_OK ||
        (st = json_get_str(in, "after", false, 0, 32, &after, err)) != CH_OK)
        return st;
    return chat_room_events(c->env->chat, ME, id, before, after, limit, out, err);
}

static enum ch_status
get_room_events_around(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL, *ev = NULL;
    int limit = 0;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK || (st = get_limit(in, &limit, err)) != CH_OK ||
        (st = json_get_str(in, "eventId", true, 1, 64, &ev, err)) != CH_OK)
        return st;
    return chat_room_events_around(c->env->chat, ME, id, ev, limit, out, err);
}

static enum ch_status
mark_read(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL, *ev = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK || (st = json_get_str(in, "eventId", false, 0, 64, &ev, err)) != CH_OK)
        return st;
    return chat_mark_read(c->env->chat, ME, id, ev, out, err);
}

static enum ch_status
get_thread(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL, *root = NULL, *before = NULL, *after = NULL;
    int limit = 0;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK || (st = get_limit(in, &limit, err)) != CH_OK ||
        (st = json_get_str(in, "threadRootEventId", true, 1, 64, &root, err)) != CH_OK ||
        (st = json_get_str(in, "before", false, 0, 32, &before, err)) != CH_OK ||
        (st = json_get_str(in, "after", false, 0, 32, &after, err)) != CH_OK)
        return st;
    return chat_thread(c->env->chat, ME, id, root, before, after, limit, out, err);
}

static enum ch_status
update_typing(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL, *root = NULL;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK ||
        (st = json_get_str(in, "threadRootEventId", false, 0, 64, &root, err)) != CH_OK ||
        (st = chat_check_typing(c->env->chat, ME, id, root, err)) != CH_OK ||
        (st = rt_typing(c->env->rt, id, ME->id, root, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    return CH_OK;
}

/* {roomId, page: {limit (1-500, default 50), offset}} */
static enum ch_status
list_attachments(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    int64_t limit, offset;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK ||
        (st = api_page_args(in, 500, 1000000, &limit, &offset, err)) != CH_OK)
        return st;
    return chat_list_attachments(c->env->chat, ME, id, (int)limit, (int)offset, out, err);
}

static enum ch_status
pin_args(const cJSON *in, const char **room, const char **msg, struct ch_err *err)
{
    enum ch_status st;

    if ((st = room_id(in, room, err)) != CH_OK)
        return st;
    return json_get_str(in, "messageEventId", true, 1, 64, msg, err);
}

static enum ch_status
create_pin(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *msg = NULL;
    enum ch_status st;

    if ((st = pin_args(in, &room, &msg, err)) != CH_OK)
        return st;
    return chat_pin(c->env->chat, ME, room, msg, true, out, err);
}

static enum ch_status
delete_pin(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *msg = NULL;
    enum ch_status st;

    if ((st = pin_args(in, &room, &msg, err)) != CH_OK)
        return st;
    return chat_pin(c->env->chat, ME, room, msg, false, out, err);
}

static enum ch_status
list_pins(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    int64_t limit, offset;
    enum ch_status st;

    if ((st = room_id(in, &id, err)) != CH_OK ||
        (st = api_page_args(in, 500, 1000000, &limit, &offset, err)) != CH_OK)
        return st;
    return chat_list_pins(c->env->chat, ME, id, (int)limit, (int)offset, out, err);
}

static enum ch_status
thread_args(const cJSON *in, const char **room, const char **root, struct ch_err *err)
{
    enum ch_status st;

    if ((st = room_id(in, room, err)) != CH_OK)
        return st;
    return json_get_str(in, "threadRootEventId", true, 1, 64, root, err);
}

static enum ch_status
follow_thread(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *root = NULL;
    enum ch_status st;

    if ((st = thread_args(in, &room, &root, err)) != CH_OK)
        return st;
    return chat_follow_thread(c->env->chat, ME, room, root, true, out, err);
}

static enum ch_status
unfollow_thread(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *root = NULL;
    enum ch_status st;

    if ((st = thread_args(in, &room, &root, err)) != CH_OK)
        return st;
    return chat_follow_thread(c->env->chat, ME, room, root, false, out, err);
}

static enum ch_status
mark_thread_read(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *root = NULL, *event = "";
    enum ch_status st;

    if ((st = thread_args(in, &room, &root, err)) != CH_OK ||
        (st = json_get_str(in, "eventId", false, 0, 64, &event, err)) != CH_OK)
        return st;
    return chat_mark_thread_read(c->env->chat, ME, room, root, event, out, err);
}

static enum ch_status
list_followed_threads(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    int64_t limit, offset;
    enum ch_status st;

    if ((st = api_page_args(in, 500, 1000000, &limit, &offset, err)) != CH_OK)
        return st;
    return chat_list_followed_threads(c->env->chat, ME, (int)limit, (int)offset, out, err);
}

const struct api_method rooms_methods[] = {
    { "chatto.api.v1.RoomService", "UpdateTypingIndicator", API_AUTH_USER, 4096, update_typing },
    { "chatto.api.v1.RoomService", "CreateRoom", API_AUTH_USER, 16384, create_room },
    { "chatto.api.v1.RoomService", "UpdateRoom", API_AUTH_USER, 16384, update_room },
    { "chatto.api.v1.RoomService", "ArchiveRoom", API_AUTH_USER, 4096, archive_room },
    { "chatto.api.v1.RoomService", "UnarchiveRoom", API_AUTH_USER, 4096, unarchive_room },
    { "chatto.api.v1.RoomService", "JoinRoom", API_AUTH_USER, 4096, join_room },
    { "chatto.api.v1.RoomService", "LeaveRoom", API_AUTH_USER, 4096, leave_room },
    { "chatto.api.v1.RoomService", "AddMember", API_AUTH_USER, 4096, add_member },
    { "chatto.api.v1.RoomService", "RemoveMember", API_AUTH_USER, 4096, remove_member },
    { "chatto.api.v1.RoomService", "ListMembers", API_AUTH_USER, 4096, list_members },
    { "chatto.api.v1.RoomService", "ListRooms", API_AUTH_USER, 4096, list_rooms },
    { "chatto.api.v1.RoomService", "StartDM", API_AUTH_USER, 4096, start_dm },
    { "chatto.api.v1.RoomService", "GetRoomEvents", API_AUTH_USER, 4096, get_room_events },
    { "chatto.api.v1.RoomService", "GetRoomEventsAround", API_AUTH_USER, 4096, get_room_events_around },
    { "chatto.api.v1.RoomService", "MarkRoomAsRead", API_AUTH_USER, 4096, mark_read },
    { "chatto.api.v1.RoomService", "ListRoomAttachments", API_AUTH_USER, 4096, list_attachments },
    { "chatto.api.v1.RoomService", "ListPinnedMessages", API_AUTH_USER, 4096, list_pins },
    { "chatto.api.v1.RoomService", "CreatePinnedMessage", API_AUTH_USER, 4096, create_pin },
    { "chatto.api.v1.RoomService", "DeletePinnedMessage", API_AUTH_USER, 4096, delete_pin },
    { "chatto.api.v1.ThreadService", "GetThreadReplies", API_AUTH_USER, 4096, get_thread },
    { "chatto.api.v1.ThreadService", "FollowThread", API_AUTH_USER, 4096, follow_thread },
    { "chatto.api.v1.ThreadService", "UnfollowThread", API_AUTH_USER, 4096, unfollow_thread },
    { "chatto.api.v1.ThreadService", "MarkThreadAsRead", API_AUTH_USER, 4096, mark_thread_read },
    { "chatto.api.v1.ThreadService", "ListFollowedThreads", API_AUTH_USER, 4096, list_followed_threads },
    { 0 },
};
