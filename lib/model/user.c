/* SPDX-License-Identifier: MIT */
/* User validation and (de)serialization; see user.h. */
#include "model/user.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "json/json.h"

static const char *const roles[] = { "member", "admin", "owner" };

const char *
user_role_str(enum user_role r)
{
    return (unsigned)r < 3 ? roles[r] : "member";
}

int
user_role_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, roles[i]) == 0)
            return i;
    return -1;
}

enum ch_status
user_login_normalize(const char *field, const char *in, char out[USER_LOGIN_MAX + 1], struct ch_err *err)
{
    size_t n = strlen(in);

    if (n == 0)
        return ch_err_set(err, CH_EINVAL, field, "required");
    if (n > USER_LOGIN_MAX)
        return ch_err_set(err, CH_EINVAL, field, "must be at most %d characters", USER_LOGIN_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)in[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return ch_err_set(err, CH_EINVAL, field,
                              "may contain only letters a-z, digits, '_', '.' and '-' (got '%c' at position %zu)",
                              isprint((unsigned char)in[i]) ? in[i] : '?', i + 1);
        out[i] = c;
    }
    out[n] = '\0';
    return CH_OK;
}

void
user_login_key(const char *login, char out[USER_LOGIN_MAX + 1])
{
    size_t i = 0;

    for (; login[i] && i < USER_LOGIN_MAX; i++)
        out[i] = login[i] == '.' ? '=' : login[i];
    out[i] = '\0';
}

enum ch_status
user_display_name_check(const char *field, const char *in, char out[USER_NAME_MAX_BYTES + 1], struct ch_err *err)
{
    return utf8_clean_text(field, in, USER_NAME_MAX_CHARS, USER_NAME_MAX_BYTES, false, false, out,
                           USER_NAME_MAX_BYTES + 1, err);
}

enum ch_status
user_password_check(const char *field, const char *pw, struct ch_err *err)
{
    size_t n = strlen(pw);

    if (n < USER_PASSWORD_MIN)
        return ch_err_set(err, CH_EINVAL, field, "must be at least %d characters", USER_PASSWORD_MIN);
    if (n > USER_PASSWORD_MAX)
        return ch_err_set(err, CH_EINVAL, field, "must be at most %d bytes", USER_PASSWORD_MAX);
    return CH_OK;
}

char *
user_serialize(const struct user *u)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "id", u->id);
    cJSON_AddStringToObject(o, "login", u->login);
    cJSON_AddStringToObject(o, "displayName", u->display_name);
    cJSON_AddStringToObject(o, "role", user_role_str(u->role));
    cJSON_AddBoolToObject(o, "isBot", u->is_bot);
    cJSON_AddBoolToObject(o, "disabled", u->disabled);
    cJSON_AddBoolToObject(o, "deleted", u->deleted);
    json_add_int64_str(o, "createdAt", u->created_at);
    json_add_int64_str(o, "updatedAt", u->updated_at);
    if (u->password_hash[0])
        cJSON_AddStringToObject(o, "passwordHash", u->password_hash);
    if (u->created_by[0])
        cJSON_AddStringToObject(o, "createdBy", u->created_by);
    if (u->avatar[0])
        cJSON_AddStringToObject(o, "avatar", u->avatar);
    if (u->status_emoji[0]) {
        cJSON_AddStringToObject(o, "statusEmoji", u->status_emoji);
        cJSON_AddStringToObject(o, "statusText", u->status_text);
        if (u->status_expires)
            json_add_int64_str(o, "statusExpires", u->status_expires);
    }
    if (u->presence[0])
        cJSON_AddStringToObject(o, "presence", u->presence);
    s = json_print(o, NULL);
    cJSON_Delete(o);
    return s;
}

static void
copy_str(const cJSON *o, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s", json_str_or(o, name, ""));
}

enum ch_status
user_parse(const char *json, size_t len, struct user *out)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    char role[16];

    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return CH_EINTERNAL;
    }
    memset(out, 0, sizeof *out);
    copy_str(o, "id", out->id, sizeof out->id);
    copy_str(o, "login", out->login, sizeof out->login);
    copy_str(o, "displayName", out->display_name, sizeof out->display_name);
    copy_str(o, "role", role, sizeof role);
    out->role = user_role_parse(role) < 0 ? ROLE_MEMBER : (enum user_role)user_role_parse(role);
    out->is_bot = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "isBot"));
    out->disabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "disabled"));
    out->deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deleted"));
    out->created_at = json_int64_or(o, "createdAt", 0);
    out->updated_at = json_int64_or(o, "updatedAt", 0);
    copy_str(o, "passwordHash", out->password_hash, sizeof out->password_hash);
    copy_str(o, "createdBy", out->created_by, sizeof out->created_by);
    copy_str(o, "avatar", out->avatar, sizeof out->avatar);
    copy_str(o, "statusEmoji", out->status_emoji, sizeof out->status_emoji);
    copy_str(o, "statusText", out->status_text, sizeof out->status_text);
    out->status_expires = json_int64_or(o, "statusExpires", 0);
    copy_str(o, "presence", out->presence, sizeof out->presence);
    if (strcmp(out->presence, "away") != 0 && strcmp(out->presence, "dnd") != 0)
        out->presence[0] = '\0';
    if (out->avatar[0] && !id_valid(out->avatar))
        out->avatar[0] = '\0';
    cJSON_Delete(o);
    return out->id[0] ? CH_OK : CH_EINTERNAL;
}

cJSON *
user_to_json(const struct user *u, bool full)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", u->id);
    cJSON_AddStringToObject(o, "login", u->login);
    cJSON_AddStringToObject(o, "displayName", u->display_name);
    cJSON_AddBoolToObject(o, "deleted", u->deleted);
    cJSON_AddBoolToObject(o, "isBot", u->is_bot);
    if (u->avatar[0]) {
        char url[sizeof USER_AVATAR_PATH + ID_MAX];
        snprintf(url, sizeof url, USER_AVATAR_PATH "%s", u->avatar);
        cJSON_AddStringToObject(o, "avatarUrl", url);
    }
    cJSON *st = user_status_json(u, 0);
    if (st)
        cJSON_AddItemToObject(o, "customStatus", st);
    if (full) {
        cJSON_AddStringToObject(o, "presencePreference", u->presence[0] ? u->presence : "auto");
        cJSON_AddStringToObject(o, "role", user_role_str(u->role));
        cJSON_AddBoolToObject(o, "disabled", u->disabled);
        json_add_time(o, "createdAt", u->created_at);
    }
    return o;
}

cJSON *
user_status_json(const struct user *u, int64_t now_ms)
{
    cJSON *o;

    if (!u->status_emoji[0])
        return NULL;
    if (!now_ms)
        now_ms = clock_wall_ms();
    if (u->status_expires && u->status_expires <= now_ms)
        return NULL;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "emoji", u->status_emoji);
    cJSON_AddStringToObject(o, "text", u->status_text);
    if (u->status_expires)
        json_add_time(o, "expiresAt", u->status_expires);
    return o;
}
