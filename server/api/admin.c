/* SPDX-License-Identifier: MIT */
/*
 * chatto.admin.v1.AdminUserService: roles, disabling accounts and bots. The router admits only admins and owners;
 * finer rules (only owners touch admins, nobody changes themselves, the last owner stays) live in
 * lib/accounts. MHD worker threads.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "json/json.h"
#include "log/log.h"

static enum ch_status
admin_list_users(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return users_list_page(c, in, true, out, err);
}

static enum ch_status
target(const cJSON *in, const char **uid, struct ch_err *err)
{
    enum ch_status st;

    if ((st = json_get_str(in, "userId", true, 1, 64, uid, err)) != CH_OK)
        return st;
    return id_check("userId", *uid, err);
}

static cJSON *
wrap_user(const struct user *u)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddItemToObject(o, "user", user_to_json(u, true));
    return o;
}

static enum ch_status
set_role(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *uid = NULL, *role = NULL;
    struct user u;
    enum ch_status st;
    int r;

    if ((st = target(in, &uid, err)) != CH_OK || (st = json_get_str(in, "role", true, 1, 16, &role, err)) != CH_OK)
        return st;
    if ((r = user_role_parse(role)) < 0)
        return ch_err_set(err, CH_EINVAL, "role", "must be member, admin or owner");
    if ((st = accounts_set_role(c->env->accounts, &c->who->user, uid, (enum user_role)r, &u, err)) != CH_OK)
        return st;
    log_info("admin: %s set the role of %s to %s", c->who->user.id, uid, role);
    *out = wrap_user(&u);
    return CH_OK;
}

static enum ch_status
set_disabled(struct api_ctx *c, const cJSON *in, cJSON **out, bool disabled, struct ch_err *err)
{
    const char *uid = NULL;
    struct user u;
    enum ch_status st;

    if ((st = target(in, &uid, err)) != CH_OK ||
        (st = accounts_set_disabled(c->env->accounts, &c->who->user, uid, disabled, &u, err)) != CH_OK)
        return st;
    log_info("admin: %s %s user %s", c->who->user.id, disabled ? "disabled" : "enabled", uid);
    *out = wrap_user(&u);
    return CH_OK;
}

static enum ch_status
disable_user(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return set_disabled(c, in, out, true, err);
}

static enum ch_status
enable_user(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    return set_disabled(c, in, out, false, err);
}

static enum ch_status
create_bot(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *login = NULL, *name = "";
    struct user u;
    char *key = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "login", true, 1, 256, &login, err)) != CH_OK ||
        (st = json_get_str(in, "displayName", false, 0, 1024, &name, err)) != CH_OK ||
        (st = accounts_create_bot(c->env->accounts, c->who->user.id, login, name, &u, &key, err)) != CH_OK)
        return st;
    log_info("admin: %s created bot %s", c->who->user.id, u.id);
    *out = wrap_user(&u);
    cJSON_AddStringToObject(*out, "apiKey", key);
    explicit_bzero(key, strlen(key));
    free(key);
    return CH_OK;
}

static enum ch_status
rotate_bot_key(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *uid = NULL;
    char *key = NULL;
    enum ch_status st;

    if ((st = target(in, &uid, err)) != CH_OK ||
        (st = accounts_rotate_bot_key(c->env->accounts, uid, &key, err)) != CH_OK)
        return st;
    log_info("admin: %s rotated the API key of bot %s", c->who->user.id, uid);
    *out = cJSON_CreateObject();
    cJSON_AddStringToObject(*out, "apiKey", key);
    explicit_bzero(key, strlen(key));
    free(key);
    return CH_OK;
}

const struct api_method admin_methods[] = {
    { "chatto.admin.v1.AdminUserService", "ListUsers", API_AUTH_ADMIN, 4096, admin_list_users },
    { "chatto.admin.v1.AdminUserService", "SetRole", API_AUTH_ADMIN, 4096, set_role },
    { "chatto.admin.v1.AdminUserService", "DisableUser", API_AUTH_ADMIN, 4096, disable_user },
    { "chatto.admin.v1.AdminUserService", "EnableUser", API_AUTH_ADMIN, 4096, enable_user },
    { "chatto.admin.v1.AdminUserService", "CreateBot", API_AUTH_ADMIN, 4096, create_bot },
    { "chatto.admin.v1.AdminUserService", "RotateBotApiKey", API_AUTH_ADMIN, 4096, rotate_bot_key },
    { 0 },
};
