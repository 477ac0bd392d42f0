/* SPDX-License-Identifier: MIT */
/*
 * Notification policies (upstream's NotificationService GetNotificationPolicy and UpdateNotificationPolicy): per
 * person and per signal class a delivery mode — off (no entry), silent (an entry, no sound or push) or alert (an
 * entry that may sound and push) — set server-wide and per room; a room's setting wins over the server-wide one,
 * which wins over the product default (alert for direct messages, mentions and replies; silent for followed threads
 * and reactions; off for followed rooms). One KV entry per person in chatto_notification_policies:
 * <user> -> {"s": {class: mode}, "r": {roomId: {class: mode}}}, changed by compare-and-set so two devices saving
 * at once both count. The notifier reads it when it writes entries (notify.c). No lock held across NATS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"

static const struct {
    const char *camel, *snake;
    enum notif_mode dflt;
} classes[NK_COUNT] = {
    [NK_DM] = { "directMessages", "direct_messages", NM_ALERT },
    [NK_MENTION] = { "directMentions", "direct_mentions", NM_ALERT },
    [NK_REPLY] = { "replies", "replies", NM_ALERT },
    [NK_ROLE] = { "roleMentions", "role_mentions", NM_ALERT },
    [NK_HERE] = { "hereMentions", "here_mentions", NM_ALERT },
    [NK_ALL] = { "allMentions", "all_mentions", NM_ALERT },
    [NK_THREAD] = { "followedThreads", "followed_threads", NM_SILENT },
    [NK_ROOM] = { "followedRooms", "followed_rooms", NM_OFF },
    [NK_REACTION] = { "reactions", "reactions", NM_SILENT },
};

static const char *const stored_mode[] = { [NM_OFF] = "off", [NM_SILENT] = "silent", [NM_ALERT] = "alert" };
static const char *const api_mode[] = {
    [NM_INHERIT] = "NOTIFICATION_DELIVERY_MODE_UNSPECIFIED",
    [NM_OFF] = "NOTIFICATION_DELIVERY_MODE_OFF",
    [NM_SILENT] = "NOTIFICATION_DELIVERY_MODE_SILENT",
    [NM_ALERT] = "NOTIFICATION_DELIVERY_MODE_ALERT",
};

static int
class_of(const char *name)
{
    for (int k = 0; k < NK_COUNT; k++)
        if (name && (!strcmp(classes[k].camel, name) || !strcmp(classes[k].snake, name)))
            return k;
    return -1;
}

/* A stored mode ("off", "silent", "alert"); NM_INHERIT for anything else. */
static enum notif_mode
stored_of(const cJSON *v)
{
    for (int m = NM_OFF; m <= NM_ALERT; m++)
        if (cJSON_IsString(v) && !strcmp(v->valuestring, stored_mode[m]))
            return (enum notif_mode)m;
    return NM_INHERIT;
}

/* The person's stored policy; an empty one if they never set any. */
static enum ch_status
policy_load(struct chat *c, const char *uid, cJSON **doc, uint64_t *rev, struct ch_err *err)
{
    char *v = NULL;
    size_t len = 0;
    enum ch_status st = store_kv_get(c->store, STORE_B_NOTIFPOLICY, uid, &v, &len, rev, err);

    *doc = NULL;
    if (st == CH_ENOTFOUND) {
        *rev = 0;
        *doc = cJSON_CreateObject();
        return *doc ? CH_OK : ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (st != CH_OK)
        return st;
    *doc = cJSON_ParseWithLength(v, len);
    free(v);
    if (!cJSON_IsObject(*doc)) { /* unreadable: start again from the defaults rather than fail every post */
        cJSON_Delete(*doc);
        *doc = cJSON_CreateObject();
    }
    return *doc ? CH_OK : ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
}

/* The scope's overrides in doc (server: room NULL); NULL if none. */
static cJSON *
scope_of(const cJSON *doc, const char *room)
{
    if (!room)
        return cJSON_GetObjectItemCaseSensitive(doc, "s");
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "r"), room);
}

static void
effective_modes(const cJSON *doc, const char *room, enum notif_mode out[NK_COUNT])
{
    const cJSON *s = scope_of(doc, NULL), *r = room ? scope_of(doc, room) : NULL;

    for (int k = 0; k < NK_COUNT; k++) {
        enum notif_mode m = stored_of(cJSON_GetObjectItemCaseSensitive(r, classes[k].camel));
        if (m == NM_INHERIT)
            m = stored_of(cJSON_GetObjectItemCaseSensitive(s, classes[k].camel));
        out[k] = m == NM_INHERIT ? classes[k].dflt : m;
    }
}

void
notif_policy_modes(struct chat *c, const char *uid, const char *room, enum notif_mode out[NK_COUNT])
{
    cJSON *doc = NULL;
    uint64_t rev;

    /* storage trouble: the product defaults (an entry too many beats a lost mention) */
    if (policy_load(c, uid, &doc, &rev, NULL) != CH_OK)
        doc = NULL;
    effective_modes(doc, room, out);
    cJSON_Delete(doc);
}

/* {roomId?, policy: {overrides, effective}} for a scope of doc */
static cJSON *
policy_view(const cJSON *doc, const char *room)
{
    cJSON *o = cJSON_CreateObject(), *p, *ov, *ef;
    const cJSON *scope = scope_of(doc, room);
    enum notif_mode eff[NK_COUNT];

    if (room)
        cJSON_AddStringToObject(o, "roomId", room);
    p = cJSON_AddObjectToObject(o, "policy");
    ov = cJSON_AddObjectToObject(p, "overrides");
    ef = cJSON_AddObjectToObject(p, "effective");
    effective_modes(doc, room, eff);
    for (int k = 0; k < NK_COUNT; k++) {
        enum notif_mode m = stored_of(cJSON_GetObjectItemCaseSensitive(scope, classes[k].camel));
        if (m != NM_INHERIT)
            cJSON_AddStringToObject(ov, classes[k].camel, api_mode[m]);
        cJSON_AddStringToObject(ef, classes[k].camel, api_mode[eff[k]]);
    }
    return o;
}

/* The room scope needs current membership; the server scope (room NULL or "") is always there. */
static enum ch_status
scope_check(struct chat *c, const struct user *who, const char **room, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if (!*room || !**room) {
        *room = NULL;
        return CH_OK;
    }
    if ((st = id_check("roomId", *room, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    st = chat_room_access(c, *room, who, true, &r, &cm, err);
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_get_notification_policy(struct chat *c, const struct user *who, const char *room_id, cJSON **out,
                             struct ch_err *err)
{
    cJSON *doc = NULL;
    uint64_t rev;
    enum ch_status st;

    if ((st = scope_check(c, who, &room_id, err)) != CH_OK || (st = policy_load(c, who->id, &doc, &rev, err)) != CH_OK)
        return st;
    *out = policy_view(doc, room_id);
    cJSON_Delete(doc);
    return CH_OK;
}

/* A mode as the API spells it: the enum's name, its short form ("ALERT", any case) or its number. */
static enum ch_status
mode_parse(const char *field, const cJSON *v, enum notif_mode *m, struct ch_err *err)
{
    if (cJSON_IsNumber(v) && v->valuedouble >= NM_OFF && v->valuedouble <= NM_ALERT &&
        v->valuedouble == (int)v->valuedouble) {
        *m = (enum notif_mode)(int)v->valuedouble;
        return CH_OK;
    }
    if (cJSON_IsString(v))
        for (int k = NM_OFF; k <= NM_ALERT; k++)
            if (!strcmp(v->valuestring, api_mode[k]) || !strcasecmp(v->valuestring, stored_mode[k])) {
                *m = (enum notif_mode)k;
                return CH_OK;
            }
    return ch_err_set(err, CH_EINVAL, field,
                      "%s: expected NOTIFICATION_DELIVERY_MODE_OFF, _SILENT or _ALERT (absent or in updateMask "
                      "only: inherit)",
                      field);
}

/* The changes asked for, per class: -1 untouched, NM_INHERIT cleared, else the mode. */
static enum ch_status
changes_parse(const cJSON *overrides, const char *const *mask, size_t nmask, int want[NK_COUNT], struct ch_err *err)
{
    char field[64];
    const cJSON *it;
    enum ch_status st;
    bool any = false;

    for (int k = 0; k < NK_COUNT; k++)
        want[k] = -1;
    if (overrides && !cJSON_IsNull(overrides) && !cJSON_IsObject(overrides))
        return ch_err_set(err, CH_EINVAL, "overrides", "overrides: expected an object of delivery modes");
    const cJSON *given = cJSON_IsObject(overrides) ? overrides : NULL;
    cJSON_ArrayForEach(it, given) {
        int k = class_of(it->string);
        snprintf(field, sizeof field, "overrides.%.40s", it->string);
        if (k < 0)
            return ch_err_set(err, CH_EINVAL, field, "%s: not a notification signal class", field);
        enum notif_mode m;
        if ((st = mode_parse(field, it, &m, err)) != CH_OK)
            return st;
        if (!nmask) {
            want[k] = (int)m;
            any = true;
        }
    }
    for (size_t i = 0; i < nmask; i++) {
        int k = class_of(mask[i]);
        if (k < 0)
            return ch_err_set(err, CH_EINVAL, "updateMask", "updateMask: \"%.60s\" is not a notification signal class",
                              mask[i]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(overrides, classes[k].camel);
        if (!v)
            v = cJSON_GetObjectItemCaseSensitive(overrides, classes[k].snake);
        enum notif_mode m = NM_INHERIT;
        snprintf(field, sizeof field, "overrides.%s", classes[k].camel);
        if (v && !cJSON_IsNull(v) && (st = mode_parse(field, v, &m, err)) != CH_OK)
            return st;
        want[k] = (int)m;
        any = true;
    }
    if (!any)
        return ch_err_set(err, CH_EINVAL, "updateMask",
                          "updateMask: name at least one signal class to set or clear (or give overrides)");
    return CH_OK;
}

enum ch_status
chat_update_notification_policy(struct chat *c, const struct user *who, const char *room_id,
                                const cJSON *overrides, const char *const *mask, size_t nmask, cJSON **out,
                                struct ch_err *err)
{
    int want[NK_COUNT];
    enum ch_status st;

    if ((st = scope_check(c, who, &room_id, err)) != CH_OK || (st = changes_parse(overrides, mask, nmask, want, err)) != CH_OK)
        return st;
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        cJSON *doc = NULL, *scope, *rooms = NULL;
        uint64_t rev = 0;
        if ((st = policy_load(c, who->id, &doc, &rev, err)) != CH_OK)
            return st;
        if (room_id) {
            if (!cJSON_IsObject(rooms = cJSON_GetObjectItemCaseSensitive(doc, "r"))) {
                cJSON_DeleteItemFromObjectCaseSensitive(doc, "r");
                rooms = cJSON_AddObjectToObject(doc, "r");
            }
        }
        scope = scope_of(doc, room_id);
        if (!cJSON_IsObject(scope)) {
            cJSON_DeleteItemFromObjectCaseSensitive(room_id ? rooms : doc, room_id ? room_id : "s");
            scope = cJSON_AddObjectToObject(room_id ? rooms : doc, room_id ? room_id : "s");
        }
        for (int k = 0; k < NK_COUNT; k++) {
            if (want[k] < 0)
                continue;
            cJSON_DeleteItemFromObjectCaseSensitive(scope, classes[k].camel);
            if (want[k] != NM_INHERIT)
                cJSON_AddStringToObject(scope, classes[k].camel, stored_mode[want[k]]);
        }
        if (!scope->child) /* nothing left at this scope: keep the record small */
            cJSON_DeleteItemFromObjectCaseSensitive(room_id ? rooms : doc, room_id ? room_id : "s");
        if (rooms && !rooms->child)
            cJSON_DeleteItemFromObjectCaseSensitive(doc, "r");
        char *s = json_print(doc, NULL);
        if (!s)
            st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        else if (rev)
            st = store_kv_update(c->store, STORE_B_NOTIFPOLICY, who->id, s, strlen(s), rev, NULL, err);
        else if ((st = store_kv_create(c->store, STORE_B_NOTIFPOLICY, who->id, s, strlen(s), NULL, err)) == CH_EEXIST)
            st = CH_ECONFLICT;
        free(s);
        if (st == CH_OK)
            *out = policy_view(doc, room_id);
        cJSON_Delete(doc);
        if (st != CH_ECONFLICT)
            return st;
    }
    return ch_err_set(err, CH_EUNAVAIL, NULL, "the notification policy kept changing; try again");
}
