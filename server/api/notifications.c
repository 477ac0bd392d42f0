/* SPDX-License-Identifier: MIT */
/*
 * chatto.api.v1.NotificationService (Connect JSON, upstream's names and shapes): the caller's own notifications,
 * newest first; mark one read; dismiss one or all; the caller's notification policy, server-wide or per room.
 * chatto.api.v1.PushNotificationService: the caller's browsers' Web Push subscriptions and a test push. The entries
 * themselves are made by lib/chat (notify.c) when messages and reactions reach people, and pushed from there
 * (webpush.c). HTTP worker threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "chat/chat.h"
#include "json/json.h"

#define ME (&c->who->user)

static enum ch_status
list_occurrences(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    int64_t limit, offset;
    enum ch_status st;

    if ((st = api_page_args(in, 200, 500, &limit, &offset, err)) != CH_OK)
        return st;
    return chat_list_notifications(c->env->chat, ME, (int)limit, (int)offset, out, err);
}

static enum ch_status
mark_read(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "notificationId", true, 1, 64, &id, err)) != CH_OK)
        return st;
    return chat_mark_notification_read(c->env->chat, ME, id, out, err);
}

static enum ch_status
delete_one(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "notificationId", true, 1, 64, &id, err)) != CH_OK ||
        (st = chat_delete_notification(c->env->chat, ME, id, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    return CH_OK;
}

static enum ch_status
delete_all(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    size_t n = 0;
    enum ch_status st;

    (void)in;
    if ((st = chat_delete_all_notifications(c->env->chat, ME, &n, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(*out, "deletedCount", (double)n);
    return CH_OK;
}

static enum ch_status
get_policy(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", false, 1, 64, &room, err)) != CH_OK)
        return st;
    return chat_get_notification_policy(c->env->chat, ME, room, out, err);
}

#define MASK_MAX 16

/* A FieldMask as proto3 JSON writes it ("directMessages,replies"), or as a list of paths, bare or in {paths}. */
static enum ch_status
mask_parse(const cJSON *m, char *buf, size_t len, const char **paths, size_t *n, struct ch_err *err)
{
    *n = 0;
    if (!m || cJSON_IsNull(m))
        return CH_OK;
    if (cJSON_IsObject(m))
        m = cJSON_GetObjectItemCaseSensitive(m, "paths");
    if (cJSON_IsArray(m)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, m) {
            if (!cJSON_IsString(it) || *n == MASK_MAX)
                return ch_err_set(err, CH_EINVAL, "updateMask", "updateMask: at most %d field names", MASK_MAX);
            paths[(*n)++] = it->valuestring;
        }
        return CH_OK;
    }
    if (!cJSON_IsString(m) || strlen(m->valuestring) >= len)
        return ch_err_set(err, CH_EINVAL, "updateMask", "updateMask: expected field names separated by commas");
    snprintf(buf, len, "%s", m->valuestring);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (*n == MASK_MAX)
            return ch_err_set(err, CH_EINVAL, "updateMask", "updateMask: at most %d field names", MASK_MAX);
        paths[(*n)++] = tok;
    }
    return CH_OK;
}

static enum ch_status
update_policy(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *paths[MASK_MAX];
    char buf[512];
    size_t n = 0;
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", false, 1, 64, &room, err)) != CH_OK ||
        (st = mask_parse(cJSON_GetObjectItemCaseSensitive(in, "updateMask"), buf, sizeof buf, paths, &n, err)) !=
            CH_OK)
        return st;
    return chat_update_notification_policy(c->env->chat, ME, room, cJSON_GetObjectItemCaseSensitive(in, "overrides"),
                                           paths, n, out, err);
}

/* ---- PushNotificationService ---- */

static enum ch_status
push_subscribe(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    struct chat_push_sub s = { 0 };
    const char *cleanup = NULL;
    enum ch_status st;

    /* upstream's limits; clientHost and cleanupToken are optional here (a bot or curl has no installed app) */
    if ((st = json_get_str(in, "endpoint", true, 1, 4096, &s.endpoint, err)) != CH_OK ||
        (st = json_get_str(in, "p256dh", true, 1, 256, &s.p256dh, err)) != CH_OK ||
        (st = json_get_str(in, "auth", true, 1, 128, &s.auth, err)) != CH_OK ||
        (st = json_get_str(in, "userAgent", false, 0, 512, &s.user_agent, err)) != CH_OK ||
        (st = json_get_str(in, "clientHost", false, 1, 255, &s.client_host, err)) != CH_OK ||
        (st = json_get_str(in, "cleanupToken", false, 32, 128, &cleanup, err)) != CH_OK ||
        (st = chat_push_subscribe(c->env->chat, ME, &s, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "subscribed", true);
    return CH_OK;
}

static enum ch_status
push_unsubscribe(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *endpoint = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "endpoint", true, 1, 4096, &endpoint, err)) != CH_OK ||
        (st = chat_push_unsubscribe(c->env->chat, ME, endpoint, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "unsubscribed", true);
    return CH_OK;
}

static enum ch_status
push_test(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    bool sent = false;
    enum ch_status st;

    (void)in;
    if ((st = chat_push_test(c->env->chat, ME, &sent, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "sent", sent);
    return CH_OK;
}

const struct api_method notifications_methods[] = {
    { "chatto.api.v1.NotificationService", "ListNotificationOccurrences", API_AUTH_USER, 4096, list_occurrences },
    { "chatto.api.v1.NotificationService", "MarkNotificationRead", API_AUTH_USER, 4096, mark_read },
    { "chatto.api.v1.NotificationService", "DeleteNotificationOccurrence", API_AUTH_USER, 4096, delete_one },
    { "chatto.api.v1.NotificationService", "DeleteAllNotificationOccurrences", API_AUTH_USER, 4096, delete_all },
    { "chatto.api.v1.NotificationService", "GetNotificationPolicy", API_AUTH_USER, 4096, get_policy },
    { "chatto.api.v1.NotificationService", "UpdateNotificationPolicy", API_AUTH_USER, 8192, update_policy },
    { "chatto.api.v1.PushNotificationService", "Subscribe", API_AUTH_USER, 16384, push_subscribe },
    { "chatto.api.v1.PushNotificationService", "Unsubscribe", API_AUTH_USER, 8192, push_unsubscribe },
    { "chatto.api.v1.PushNotificationService", "SendTestNotification", API_AUTH_USER, 4096, push_test },
    { 0 },
};
