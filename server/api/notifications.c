/* SPDX-License-Identifier: MIT */
/*
 * chatto.api.v1.NotificationService (Connect JSON, upstream's names and shapes): the caller's own notifications,
 * newest first; mark one read; dismiss one or all. The entries themselves are made by lib/chat (notify.c) when
 * messages and reactions reach people. HTTP worker threads.
 */
#include <stdio.h>

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

const struct api_method notifications_methods[] = {
    { "chatto.api.v1.NotificationService", "ListNotificationOccurrences", API_AUTH_USER, 4096, list_occurrences },
    { "chatto.api.v1.NotificationService", "MarkNotificationRead", API_AUTH_USER, 4096, mark_read },
    { "chatto.api.v1.NotificationService", "DeleteNotificationOccurrence", API_AUTH_USER, 4096, delete_one },
    { "chatto.api.v1.NotificationService", "DeleteAllNotificationOccurrences", API_AUTH_USER, 4096, delete_all },
    { 0 },
};
