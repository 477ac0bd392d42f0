/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The user account: validation of logins, display names and passwords, the stored record and its JSON shapes.
 * Pure functions; any thread.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/ids.h"
#include "base/status.h"

#define USER_LOGIN_MAX 32
#define USER_NAME_MAX_CHARS 64
#define USER_NAME_MAX_BYTES 256
#define USER_PASSWORD_MIN 8
#define USER_PASSWORD_MAX 1024
#define USER_HASH_MAX 128
#define USER_STATUS_EMOJI_MAX_CHARS 16
#define USER_STATUS_EMOJI_MAX_BYTES 64
#define USER_STATUS_TEXT_MAX_CHARS 100
#define USER_STATUS_TEXT_MAX_BYTES 400

enum user_role { ROLE_MEMBER = 0, ROLE_ADMIN, ROLE_OWNER };

struct user {
    char id[ID_MAX + 1];
    char login[USER_LOGIN_MAX + 1];
    char display_name[USER_NAME_MAX_BYTES + 1];
    enum user_role role;
    bool is_bot;
    bool disabled;
    bool deleted;
    int64_t created_at; /* unix ms */
    int64_t updated_at;
    char password_hash[USER_HASH_MAX]; /* "" for bots */
    char created_by[ID_MAX + 1];       /* who created a bot; "" otherwise */
    char avatar[ID_MAX + 1];           /* the avatar's id in the object store (public/<id>); "" for none */
    /* custom status (upstream's CustomUserStatus): an emoji, a short text, an optional expiry; "" for none */
    char status_emoji[USER_STATUS_EMOJI_MAX_BYTES + 1];
    char status_text[USER_STATUS_TEXT_MAX_BYTES + 1];
    int64_t status_expires; /* unix ms; 0: until cleared */
    char presence[8];       /* chosen by the user and kept across devices: "away", "dnd" or "" (automatic) */
};
/* Where an avatar is fetched (signed-in users only). */
#define USER_AVATAR_PATH "/assets/server/public/"

const char *user_role_str(enum user_role r);
/* "member", "admin", "owner"; -1 if unknown. */
int user_role_parse(const char *s);

/* Case-fold and check a login (1-32 of [a-z0-9_.-]); field names the request field in errors. */
enum ch_status user_login_normalize(const char *field, const char *in, char out[USER_LOGIN_MAX + 1],
                                    struct ch_err *err);
/* The KV key of a normalized login ('.' becomes '=' so keys never contain NATS token separators). */
void user_login_key(const char *login, char out[USER_LOGIN_MAX + 1]);
/* Trim and check a display name (1-64 characters, no control characters). */
enum ch_status user_display_name_check(const char *field, const char *in, char out[USER_NAME_MAX_BYTES + 1],
                                       struct ch_err *err);
/* Check a password's length (8-1024 bytes). */
enum ch_status user_password_check(const char *field, const char *pw, struct ch_err *err);

/* The stored record (JSON text). Caller frees. */
char *user_serialize(const struct user *u);
/* Parse a stored record; CH_EINTERNAL if it is not one. */
enum ch_status user_parse(const char *json, size_t len, struct user *out);

/* API shapes. Public: {id, login, displayName, deleted, isBot}. Full adds role, disabled, createdAt. */
cJSON *user_to_json(const struct user *u, bool full);
/* The custom status as upstream's CustomUserStatus {emoji, text, expiresAt}, or NULL if none is set or it has
 * expired by now_ms. */
cJSON *user_status_json(const struct user *u, int64_t now_ms);
