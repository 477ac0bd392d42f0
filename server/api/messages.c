/* SPDX-License-Identifier: MIT */
/* chatto.api.v1.MessageService: post, edit, delete, read and react. HTTP worker threads. */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "assets/assets.h"
#include "base/clock.h"
#include "base/ratelimit.h"
#include "chat/chat.h"
#include "json/json.h"

#define ME (&c->who->user)

/* Every message write takes a token from its user's bucket (limits.messages_per_second, bots their own). Buckets
 * are per process: a client whose requests a balancer spreads over N processes gets up to N times the rate. */
static enum ch_status
write_allowed(struct api_ctx *c, struct ch_err *err)
{
    int64_t retry_ms = 0;
    char ra[24];

    if (ratelimit_take(ME->is_bot ? c->env->bot_writes : c->env->writes, ME->id, clock_mono_ms(), &retry_ms))
        return CH_OK;
    snprintf(ra, sizeof ra, "%lld", (long long)((retry_ms + 999) / 1000));
    http_reply_header(c->req, "Retry-After", ra);
    return ch_err_set(err, CH_ELIMIT, NULL, "too many messages too fast; try again in %lld ms", (long long)retry_ms);
}

/* {roomId, eventId} */
static enum ch_status
target(const cJSON *in, const char **room, const char **ev, struct ch_err *err)
{
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", true, 1, 64, room, err)) != CH_OK)
        return st;
    return json_get_str(in, "eventId", true, 1, 64, ev, err);
}

static enum ch_status
create_message(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *body = NULL, *root = NULL, *reply = NULL, **assets = NULL;
    size_t nassets = 0;
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", true, 1, 64, &room, err)) != CH_OK ||
        (st = json_get_str(in, "body", false, 0, 65536, &body, err)) != CH_OK ||
        (st = json_get_str(in, "threadRootEventId", false, 0, 64, &root, err)) != CH_OK ||
        (st = json_get_str(in, "inReplyTo", false, 0, 64, &reply, err)) != CH_OK ||
        (st = json_get_str_array(in, "attachmentAssetIds", false, ASSETS_MAX_PER_MESSAGE, 1, 64, &assets, &nassets,
                                 err)) != CH_OK ||
        (st = write_allowed(c, err)) != CH_OK) {
        free(assets);
        return st;
    }
    if (!body)
        body = "";
    if (!*body && !nassets) {
        free(assets);
        return ch_err_set(err, CH_EINVAL, "body", "required (unless files are attached)");
    }
    st = chat_post(c->env->chat, ME, room, body, assets, nassets, root, reply,
                   http_req_header(c->req, "Idempotency-Key"), out, err);
    free(assets);
    return st;
}

static enum ch_status
update_message(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *ev = NULL, *body = NULL;
    enum ch_status st;

    if ((st = target(in, &room, &ev, err)) != CH_OK || (st = json_get_str(in, "body", true, 0, 65536, &body, err)) ||
        (st = write_allowed(c, err)) != CH_OK)
        return st;
    return chat_edit(c->env->chat, ME, room, ev, body, out, err);
}

static enum ch_status
delete_message(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *ev = NULL;
    enum ch_status st;

    if ((st = target(in, &room, &ev, err)) != CH_OK || (st = write_allowed(c, err)) != CH_OK ||
        (st = chat_delete(c->env->chat, ME, room, ev, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "deleted", true);
    return CH_OK;
}

static enum ch_status
get_message(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *ev = NULL;
    enum ch_status st;

    if ((st = target(in, &room, &ev, err)) != CH_OK)
        return st;
    return chat_get_message(c->env->chat, ME, room, ev, out, err);
}

static enum ch_status
batch_get_messages(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, **ids = NULL;
    size_t n = 0;
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", true, 1, 64, &room, err)) != CH_OK ||
        (st = json_get_str_array(in, "eventIds", true, 100, 1, 64, &ids, &n, err)) != CH_OK)
        return st;
    st = chat_get_messages(c->env->chat, ME, room, ids, n, out, err);
    free(ids);
    return st;
}

static enum ch_status
react(struct api_ctx *c, const cJSON *in, cJSON **out, bool add, struct ch_err *err)
{
    const char *room = NULL, *ev = NULL, *emoji = NULL;
    enum ch_status st;

    if ((st = target(in, &room, &ev, err)) != CH_OK || (st = json_get_str(in, "emoji", true, 0, 256, &emoji, err)) ||
        (st = write_allowed(c, err)) != CH_OK)
        return st;
    return chat_react(c->env->chat, ME, room, ev, emoji, add, out, err);
}

static enum ch_status
add_reaction(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return react(c, in, out, true, err);
}

static enum ch_status
remove_reaction(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return react(c, in, out, false, err);
}

const struct api_method messages_methods[] = {
    { "chatto.api.v1.MessageService", "CreateMessage", API_AUTH_USER, 128 * 1024, create_message },
    { "chatto.api.v1.MessageService", "UpdateMessage", API_AUTH_USER, 128 * 1024, update_message },
    { "chatto.api.v1.MessageService", "DeleteMessage", API_AUTH_USER, 4096, delete_message },
    { "chatto.api.v1.MessageService", "GetMessage", API_AUTH_USER, 4096, get_message },
    { "chatto.api.v1.MessageService", "BatchGetMessages", API_AUTH_USER, 16384, batch_get_messages },
    { "chatto.api.v1.MessageService", "AddReaction", API_AUTH_USER, 4096, add_reaction },
    { "chatto.api.v1.MessageService", "RemoveReaction", API_AUTH_USER, 4096, remove_reaction },
    { 0 },
};
