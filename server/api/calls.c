/* SPDX-License-Identifier: MIT */
/*
 * chatto.api.v1.VoiceCallService (upstream's methods and shapes) and POST /webhooks/livekit. Room membership is the
 * only gate; with livekit.enabled false every method still checks it, then answers as upstream does: nothing
 * active, joined/left false, and a failed precondition for a token. A call token is a LiveKit access token for the
 * call's deterministic room, minted by any process alike. The webhook turns what LiveKit saw into call facts
 * (lib/chat calls.c). MHD worker threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "chat/chat.h"
#include "config/config.h"
#include "json/json.h"
#include "livekit/livekit.h"
#include "log/log.h"

#define ME (&c->who->user)
#define WEBHOOK_MAX_BODY (64 * 1024)

static bool
enabled(const struct api_env *env)
{
    return cfg_bool(env->cfg, CFG_LIVEKIT_ENABLED);
}

/* roomId, and the caller's membership of it (also when calls are off: upstream checks it first). */
static enum ch_status
member_room(struct api_ctx *c, const cJSON *in, const char **room, struct ch_err *err)
{
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", true, 1, 64, room, err)) != CH_OK)
        return st;
    return chat_check_member(c->env->chat, ME->id, *room, false, err);
}

static enum ch_status
list_active_calls(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    (void)in;
    if (!enabled(c->env)) {
        *out = cJSON_CreateObject();
        cJSON_AddArrayToObject(*out, "calls");
        return CH_OK;
    }
    return chat_call_list(c->env->chat, ME, NULL, 0, out, err);
}

static enum ch_status
get_active_call(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL;
    enum ch_status st;

    if ((st = member_room(c, in, &room, err)) != CH_OK)
        return st;
    if (!enabled(c->env))
        return ch_err_set(err, CH_ENOTFOUND, "roomId", "no call is active in this room (calls are not enabled)");
    return chat_call_get(c->env->chat, ME, room, out, err);
}

static enum ch_status
batch_get_active_calls(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char **ids = NULL;
    size_t n = 0;
    enum ch_status st;

    st = json_get_str_array(in, "roomIds", true, 100, 1, 64, &ids, &n, err);
    if (st == CH_OK && n == 0)
        st = ch_err_set(err, CH_EINVAL, "roomIds", "give 1 to 100 room ids");
    if (st == CH_OK && !enabled(c->env)) {
        *out = cJSON_CreateObject();
        cJSON_AddArrayToObject(*out, "calls");
    } else if (st == CH_OK) {
        st = chat_call_list(c->env->chat, ME, ids, n, out, err);
    }
    free(ids);
    return st;
}

static enum ch_status
list_call_participants(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL;
    enum ch_status st;

    if ((st = member_room(c, in, &room, err)) != CH_OK)
        return st;
    if (!enabled(c->env)) {
        *out = cJSON_CreateObject();
        cJSON_AddArrayToObject(*out, "participants");
        return CH_OK;
    }
    return chat_call_participants(c->env->chat, ME, room, out, err);
}

static enum ch_status
join_call(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL;
    char call_id[65] = "";
    bool started = false;
    enum ch_status st;

    if ((st = member_room(c, in, &room, err)) != CH_OK)
        return st;
    if (enabled(c->env) && (st = chat_call_join(c->env->chat, ME, room, &started, call_id, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "joined", enabled(c->env));
    if (call_id[0])
        cJSON_AddStringToObject(*out, "callId", call_id);
    if (started)
        cJSON_AddBoolToObject(*out, "started", true);
    return CH_OK;
}

static enum ch_status
leave_call(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL;
    bool left = false;
    enum ch_status st;

    if ((st = member_room(c, in, &room, err)) != CH_OK)
        return st;
    if (enabled(c->env) && (st = chat_call_leave(c->env->chat, ME, room, &left, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "left", left);
    return CH_OK;
}

static enum ch_status
get_call_token(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const struct cfg *cfg = c->env->cfg;
    struct chat_call_access a;
    const char *room = NULL;
    char name[LK_ROOM_NAME_MAX + 1];
    enum ch_status st;

    if ((st = member_room(c, in, &room, err)) != CH_OK)
        return st;
    if (!enabled(c->env))
        return ch_err_set(err, CH_ECONFLICT, "roomId", "voice calls are not configured on this server");
    if ((st = chat_call_access(c->env->chat, ME, room, &a, err)) != CH_OK ||
        (st = lk_room_name(cfg_str(cfg, CFG_LIVEKIT_SERVER_ID), a.dm, room, a.call_id, name, sizeof name, err)) !=
            CH_OK)
        return st;
    /* upstream's participant metadata, so clients show who is who without asking */
    cJSON *md = cJSON_CreateObject(), *video = cJSON_CreateObject();
    char avatar[sizeof USER_AVATAR_PATH + ID_MAX + 600] = "";
    if (a.user.avatar[0])
        snprintf(avatar, sizeof avatar, "%s" USER_AVATAR_PATH "%s", c->env->public_origin, a.user.avatar);
    cJSON_AddStringToObject(md, "login", a.user.login);
    if (avatar[0])
        cJSON_AddStringToObject(md, "avatarUrl", avatar);
    if (a.user.is_bot)
        cJSON_AddBoolToObject(md, "isBot", true);
    cJSON_AddStringToObject(md, "callId", a.call_id);
    char *mds = json_print(md, NULL);
    cJSON_Delete(md);
    cJSON_AddBoolToObject(video, "roomJoin", true);
    cJSON_AddStringToObject(video, "room", name);
    char *tok = mds ? lk_token_mint(cfg_str(cfg, CFG_LIVEKIT_API_KEY), cfg_str(cfg, CFG_LIVEKIT_API_SECRET), ME->id,
                                    a.user.display_name[0] ? a.user.display_name : a.user.login, mds, video,
                                    (int64_t)time(NULL), LK_TOKEN_TTL_S)
                    : (cJSON_Delete(video), NULL);
    free(mds);
    explicit_bzero(&a, sizeof a);
    if (!tok)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    *out = cJSON_CreateObject();
    cJSON_AddStringToObject(*out, "token", tok);
    cJSON_AddStringToObject(*out, "e2eeKey", "");
    cJSON_AddStringToObject(*out, "callId", strrchr(name, '@') + 1);
    cJSON_AddStringToObject(*out, "url", cfg_str(cfg, CFG_LIVEKIT_URL));
    cJSON_AddStringToObject(*out, "roomName", name);
    free(tok);
    return CH_OK;
}

const struct api_method calls_methods[] = {
    { "chatto.api.v1.VoiceCallService", "ListActiveCalls", API_AUTH_USER, 4096, list_active_calls },
    { "chatto.api.v1.VoiceCallService", "GetActiveCall", API_AUTH_USER, 4096, get_active_call },
    { "chatto.api.v1.VoiceCallService", "BatchGetActiveCalls", API_AUTH_USER, 16384, batch_get_active_calls },
    { "chatto.api.v1.VoiceCallService", "ListCallParticipants", API_AUTH_USER, 4096, list_call_participants },
    { "chatto.api.v1.VoiceCallService", "JoinCall", API_AUTH_USER, 4096, join_call },
    { "chatto.api.v1.VoiceCallService", "GetCallToken", API_AUTH_USER, 4096, get_call_token },
    { "chatto.api.v1.VoiceCallService", "LeaveCall", API_AUTH_USER, 4096, leave_call },
    { 0 },
};

/* ---- POST /webhooks/livekit ---- */

void
calls_webhook_prepare(struct http_req *r, void *envp)
{
    struct api_env *env = envp;

    if (!enabled(env)) {
        http_reply_status(r, 404, "not_found", "voice calls are not enabled on this server");
        return;
    }
    http_req_set_max_body(r, WEBHOOK_MAX_BODY);
}

void
calls_webhook(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    const struct cfg *cfg = env->cfg;
    const char *key = cfg_str(cfg, CFG_LIVEKIT_WEBHOOK_API_KEY), *secret = cfg_str(cfg, CFG_LIVEKIT_WEBHOOK_API_SECRET);
    struct lk_event ev;
    struct ch_err err = { 0 };
    char room[65], call[65], msg_id[160];
    size_t len;
    const char *body = http_req_body(r, &len);
    enum ch_status st;
    bool recorded = false;

    if (!*key) { /* no webhook key of its own: LiveKit signs with the API key */
        key = cfg_str(cfg, CFG_LIVEKIT_API_KEY);
        secret = cfg_str(cfg, CFG_LIVEKIT_API_SECRET);
    }
    if ((st = lk_webhook_receive(http_req_header(r, "Authorization"), body ? body : "", body ? len : 0, key, secret,
                                 (int64_t)time(NULL), &ev, &err)) != CH_OK) {
        http_reply_error(r, st, &err);
        return;
    }
    enum chat_call_obs what;
    if (!strcmp(ev.event, "participant_joined"))
        what = CHAT_CALL_JOINED;
    else if (!strcmp(ev.event, "participant_left"))
        what = CHAT_CALL_LEFT;
    else if (!strcmp(ev.event, "room_finished"))
        what = CHAT_CALL_FINISHED;
    else {
        http_reply_json(r, 200, NULL); /* every other event: acknowledged, nothing to do */
        return;
    }
    /* another Chatto server's room on a shared LiveKit, an old name without a call, or a handoff to a new
     * connection of the same person (LiveKit's DUPLICATE_IDENTITY): acknowledged and ignored */
    if (!lk_room_parse(ev.room, cfg_str(cfg, CFG_LIVEKIT_SERVER_ID), room, call) || !call[0] ||
        (what == CHAT_CALL_LEFT && ev.disconnect_reason == 2)) {
        http_reply_json(r, 200, NULL);
        return;
    }
    if (ev.id[0]) {
        /* Nats-Msg-Id: printable, no spaces; a webhook id is LiveKit's "EV_..." */
        snprintf(msg_id, sizeof msg_id, "lk-");
        size_t k = 3;
        for (const char *p = ev.id; *p && k + 1 < sizeof msg_id; p++)
            msg_id[k++] = (*p > ' ' && *p < 127) ? *p : '_';
        msg_id[k] = '\0';
    }
    st = chat_call_observe(env->chat, room, call, what == CHAT_CALL_FINISHED ? NULL : ev.identity, what,
                           ev.id[0] ? msg_id : NULL, &recorded, &err);
    if (st != CH_OK) {
        if (st == CH_EUNAVAIL || st == CH_ENOMEM || st == CH_EINTERNAL)
            log_warn("calls: webhook %s for %s not recorded: %s", ev.event, ev.room, err.msg);
        http_reply_error(r, st, &err); /* LiveKit retries what failed */
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "recorded", recorded);
    http_reply_json(r, 200, o);
}
