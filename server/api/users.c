/* SPDX-License-Identifier: MIT */
/*
 * chatto.api.v1.UserService (the directory) and chatto.api.v1.MyAccountService (the caller's own account).
 * MHD worker threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "assets/assets.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "realtime/realtime.h"

#define PAGE_DEFAULT 50
#define ME_ID(c) ((c)->who->user.id)
#define PAGE_MAX 200

static enum ch_status
get_user(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *uid = NULL;
    struct user u;
    enum ch_status st;

    if ((st = json_get_str(in, "userId", true, 1, 64, &uid, err)) != CH_OK || (st = id_check("userId", uid, err)))
        return st;
    if ((st = accounts_get(c->env->accounts, uid, &u, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON *j = user_to_json(&u, false);
    if (c->env->rt)
        cJSON_AddStringToObject(j, "presenceStatus", rt_presence(c->env->rt, u.id));
    cJSON_AddItemToObject(*out, "user", j);
    return CH_OK;
}

enum ch_status
users_list_page(struct api_ctx *c, const cJSON *in, bool full, cJSON **out, struct ch_err *err)
{
    int64_t size = PAGE_DEFAULT;
    const char *token = "";
    bool include_disabled = false;
    struct user *v = NULL;
    size_t n = 0;
    char next[ID_MAX + 1];
    enum ch_status st;
    cJSON *arr;

    if ((st = json_get_int(in, "pageSize", false, 1, PAGE_MAX, &size, err)) != CH_OK ||
        (st = json_get_str(in, "pageToken", false, 0, 64, &token, err)) != CH_OK)
        return st;
    if (*token && !id_valid(token))
        return ch_err_set(err, CH_EINVAL, "pageToken", "not a token this server issued");
    if (full && (st = json_get_bool(in, "includeDisabled", false, &include_disabled, err)) != CH_OK)
        return st;
    if ((st = accounts_list(c->env->accounts, token, (size_t)size, include_disabled, &v, &n, next, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(*out, "users");
    for (size_t i = 0; i < n; i++) {
        cJSON *j = user_to_json(&v[i], full);
        if (c->env->rt)
            cJSON_AddStringToObject(j, "presenceStatus", rt_presence(c->env->rt, v[i].id));
        cJSON_AddItemToArray(arr, j);
    }
    cJSON_AddStringToObject(*out, "nextPageToken", next);
    free(v);
    return CH_OK;
}

static enum ch_status
list_users(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return users_list_page(c, in, false, out, err);
}

static enum ch_status
get_my_account(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    (void)in;
    (void)err;
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "user", user_to_json(&c->who->user, true));
    return CH_OK;
}

static enum ch_status
update_profile(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *name = NULL;
    struct user u;
    enum ch_status st;

    if ((st = json_get_str(in, "displayName", true, 0, 1024, &name, err)) != CH_OK ||
        (st = accounts_update_profile(c->env->accounts, c->who->user.id, name, &u, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "user", user_to_json(&u, true));
    return CH_OK;
}

static enum ch_status
update_password(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *cur = "", *next = NULL;
    int64_t retry = 0;
    enum ch_status st;

    if ((st = json_get_str(in, "currentPassword", true, 0, 4096, &cur, err)) != CH_OK ||
        (st = json_get_str(in, "newPassword", true, 0, 4096, &next, err)) != CH_OK)
        return st;
    st = accounts_change_password(c->env->accounts, c->who, cur, next, http_req_client_ip(c->req), &retry, err);
    if (st == CH_ELIMIT) {
        char ra[24];
        snprintf(ra, sizeof ra, "%lld", (long long)(retry > 0 ? retry : 1));
        http_reply_header(c->req, "Retry-After", ra);
    }
    if (st != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    return CH_OK;
}

/* The avatar image arrives as proto3 JSON bytes (base64) in image.image, as upstream's UploadAvatarRequest. */
#define AVATAR_JSON_MAX (ASSETS_AVATAR_INPUT_MAX / 3 * 4 + 8192)

static enum ch_status
upload_avatar(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(in, "image");
    const char *b64 = NULL, *filename = "";
    unsigned char *bytes;
    size_t n = 0, cap;
    char id[ID_MAX + 1], old[ID_MAX + 1];
    struct user u;
    enum ch_status st;

    if (!cJSON_IsObject(img))
        return ch_err_set(err, CH_EINVAL, "image.image", "required: the picture's bytes (base64)");
    if ((st = json_get_str(img, "image", false, 0, AVATAR_JSON_MAX, &b64, err)) != CH_OK ||
        (st = json_get_str(img, "filename", false, 0, 4096, &filename, err)) != CH_OK) {
        if (err && !strcmp(err->field, "image"))
            snprintf(err->field, sizeof err->field, "image.image");
        return st;
    }
    if (!b64 || !*b64)
        return ch_err_set(err, CH_EINVAL, "image.image", "required: the picture's bytes (base64)");
    cap = strlen(b64) / 4 * 3 + 3;
    if (!(bytes = malloc(cap)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (!crypto_base64_decode_any(b64, strlen(b64), bytes, cap, &n)) {
        free(bytes);
        return ch_err_set(err, CH_EINVAL, "image.image", "must be base64");
    }
    st = assets_avatar_put(c->env->assets, bytes, n, id, err);
    free(bytes);
    if (st != CH_OK) {
        if (st == CH_ELIMIT) {
            c->http_status = 413;
        } else if (st == CH_EINVAL && err) {
            snprintf(err->field, sizeof err->field, "image.image");
        }
        return st;
    }
    if ((st = accounts_set_avatar(c->env->accounts, c->who->user.id, id, old, &u, err)) != CH_OK) {
        assets_avatar_erase(c->env->assets, id);
        return st;
    }
    assets_avatar_erase(c->env->assets, old);
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "user", user_to_json(&u, true));
    return CH_OK;
}

static enum ch_status
delete_avatar(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    char old[ID_MAX + 1];
    struct user u;
    enum ch_status st;

    (void)in;
    if ((st = accounts_set_avatar(c->env->accounts, c->who->user.id, NULL, old, &u, err)) != CH_OK)
        return st;
    assets_avatar_erase(c->env->assets, old);
    *out = cJSON_CreateObject();
    cJSON_AddItemToObject(*out, "user", user_to_json(&u, true));
    return CH_OK;
}

/* Upstream's UpdateCustomStatus {emoji, text, expiresAt} -> {status}; DeleteCustomStatus {} -> {status: null}. */
static enum ch_status
update_custom_status(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *emoji = NULL, *text = NULL;
    int64_t expires = 0;
    struct user u;
    enum ch_status st;

    if ((st = json_get_str(in, "emoji", true, 1, 1024, &emoji, err)) != CH_OK ||
        (st = json_get_str(in, "text", true, 1, 4096, &text, err)) != CH_OK ||
        (st = json_get_time(in, "expiresAt", false, &expires, err)) != CH_OK ||
        (st = accounts_set_custom_status(c->env->accounts, ME_ID(c), emoji, text, expires, &u, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON *j = user_status_json(&u, 0);
    cJSON_AddItemToObject(*out, "status", j ? j : cJSON_CreateNull());
    return CH_OK;
}

static enum ch_status
delete_custom_status(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    struct user u;
    enum ch_status st;

    (void)in;
    if ((st = accounts_set_custom_status(c->env->accounts, ME_ID(c), NULL, NULL, 0, &u, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddNullToObject(*out, "status");
    return CH_OK;
}

/* Upstream's UpdatePresence {status, userSelected}: a status the user chose (away, do-not-disturb) is kept
 * across devices until they choose online again; without userSelected it is the client's automatic idle state,
 * which goes over the realtime socket instead and is accepted here as a no-op. */
static enum ch_status
update_presence(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *s = NULL, *pref;
    bool chosen = false;
    struct user u;
    enum ch_status st;

    if ((st = json_get_str(in, "status", true, 1, 64, &s, err)) != CH_OK ||
        (st = json_get_bool(in, "userSelected", false, &chosen, err)) != CH_OK)
        return st;
    if (!strcmp(s, "online") || !strcmp(s, "PRESENCE_STATUS_ONLINE"))
        pref = "";
    else if (!strcmp(s, "away") || !strcmp(s, "PRESENCE_STATUS_AWAY"))
        pref = "away";
    else if (!strcmp(s, "dnd") || !strcmp(s, "PRESENCE_STATUS_DO_NOT_DISTURB"))
        pref = "dnd";
    else
        return ch_err_set(err, CH_EINVAL, "status", "must be online, away or dnd (PRESENCE_STATUS_ONLINE, "
                          "PRESENCE_STATUS_AWAY or PRESENCE_STATUS_DO_NOT_DISTURB)");
    if (chosen && (st = accounts_set_presence(c->env->accounts, ME_ID(c), pref, &u, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    if (chosen)
        cJSON_AddItemToObject(*out, "user", user_to_json(&u, true));
    return CH_OK;
}

/* GET /assets/server/public/<id>: an avatar, for signed-in users (upstream serves these to anyone; a team's faces
 * are the team's). The id changes with every new picture, so browsers may keep one for a long time. */
void
users_avatar_download(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    const char *id = http_req_path(r) + strlen(USER_AVATAR_PATH), *inm = http_req_header(r, "If-None-Match");
    struct principal who;
    struct ch_err err = { 0 };
    char *data = NULL, etag[72];
    size_t len = 0;
    enum ch_status st;

    if ((st = api_authenticate(env, r, &who, &err)) != CH_OK) {
        http_reply_error(r, st, &err);
        return;
    }
    explicit_bzero(&who, sizeof who);
    if ((st = assets_avatar_get(env->assets, id, &data, &len, etag, &err)) != CH_OK) {
        http_reply_error(r, st, &err);
        return;
    }
    if (inm && strstr(inm, etag))
        http_reply_bytes(r, 304, "", "", 0);
    else
        http_reply_bytes(r, 200, "image/webp", data, len);
    http_reply_header(r, "ETag", etag);
    http_reply_header(r, "Cache-Control", "private, max-age=86400");
    free(data);
}

const struct api_method users_methods[] = {
    { "chatto.api.v1.UserService", "GetUser", API_AUTH_USER, 4096, get_user },
    { "chatto.api.v1.UserService", "ListUsers", API_AUTH_USER, 4096, list_users },
    { "chatto.api.v1.MyAccountService", "GetMyAccount", API_AUTH_USER, 4096, get_my_account },
    { "chatto.api.v1.MyAccountService", "UpdateProfile", API_AUTH_USER, 4096, update_profile },
    { "chatto.api.v1.MyAccountService", "UpdatePassword", API_AUTH_USER, 16384, update_password },
    { "chatto.api.v1.MyAccountService", "UploadAvatar", API_AUTH_USER, AVATAR_JSON_MAX, upload_avatar },
    { "chatto.api.v1.MyAccountService", "DeleteAvatar", API_AUTH_USER, 4096, delete_avatar },
    { "chatto.api.v1.MyAccountService", "UpdateCustomStatus", API_AUTH_USER, 8192, update_custom_status },
    { "chatto.api.v1.MyAccountService", "DeleteCustomStatus", API_AUTH_USER, 4096, delete_custom_status },
    { "chatto.api.v1.MyAccountService", "UpdatePresence", API_AUTH_USER, 4096, update_presence },
    { 0 },
};
