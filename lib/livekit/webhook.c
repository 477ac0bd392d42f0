/* SPDX-License-Identifier: MIT */
/*
 * LiveKit's webhooks: the Authorization header is a JWT signed with the webhook key's secret (iss = key) whose
 * "sha256" claim is the standard base64 SHA-256 of the body, as LiveKit's WebhookReceiver checks it. The body is
 * LiveKit's WebhookEvent in protobuf JSON (lowerCamelCase; the original snake_case names are accepted too).
 * Pure; any thread.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "livekit/livekit.h"

static const cJSON *
field(const cJSON *o, const char *camel, const char *snake)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, camel);

    return f ? f : snake ? cJSON_GetObjectItemCaseSensitive(o, snake) : NULL;
}

/* A string field into dst (""); false if present but not a string or too long. */
static bool
copy_str(char *dst, size_t len, const cJSON *f)
{
    dst[0] = '\0';
    if (!f || cJSON_IsNull(f))
        return true;
    if (!cJSON_IsString(f) || strlen(f->valuestring) >= len)
        return false;
    memcpy(dst, f->valuestring, strlen(f->valuestring) + 1);
    return true;
}

static const char *const reasons[] = { "UNKNOWN_REASON", "CLIENT_INITIATED", "DUPLICATE_IDENTITY" };

enum ch_status
lk_webhook_receive(const char *auth, const char *body, size_t len, const char *key, const char *secret,
                   int64_t now_s, struct lk_event *ev, struct ch_err *err)
{
    cJSON *claims = NULL, *o;
    const cJSON *f, *room, *p;
    unsigned char h[32];
    char want[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    enum ch_status st;

    memset(ev, 0, sizeof *ev);
    if (!auth || !*auth)
        return ch_err_set(err, CH_EAUTH, NULL, "the Authorization header is missing");
    if (!strncmp(auth, "Bearer ", 7))
        auth += 7;
    if ((st = lk_token_verify(auth, key, secret, now_s, &claims, err)) != CH_OK)
        return st;
    crypto_hash_sha256(h, (const unsigned char *)body, len);
    sodium_bin2base64(want, sizeof want, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
    f = cJSON_GetObjectItemCaseSensitive(claims, "sha256");
    bool match = cJSON_IsString(f) && strlen(f->valuestring) == strlen(want) &&
                 sodium_memcmp(f->valuestring, want, strlen(want)) == 0;
    cJSON_Delete(claims);
    if (!match)
        return ch_err_set(err, CH_EAUTH, NULL, "the body does not match the signed sha256");

    if (!(o = cJSON_ParseWithLength(body, len)) || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ch_err_set(err, CH_EINVAL, "body", "not a JSON object");
    }
    room = field(o, "room", NULL);
    p = field(o, "participant", NULL);
    if (!copy_str(ev->event, sizeof ev->event, field(o, "event", NULL)) || !ev->event[0])
        st = ch_err_set(err, CH_EINVAL, "event", "missing or not a string");
    else if (!copy_str(ev->id, sizeof ev->id, field(o, "id", NULL)))
        st = ch_err_set(err, CH_EINVAL, "id", "not a string of at most %zu bytes", sizeof ev->id - 1);
    else if ((room && !cJSON_IsObject(room)) || !copy_str(ev->room, sizeof ev->room, field(room, "name", NULL)))
        st = ch_err_set(err, CH_EINVAL, "room.name", "not a string of at most %d bytes", LK_ROOM_NAME_MAX);
    else if ((p && !cJSON_IsObject(p)) ||
             !copy_str(ev->identity, sizeof ev->identity, field(p, "identity", NULL)))
        st = ch_err_set(err, CH_EINVAL, "participant.identity", "not a string");
    else
        st = CH_OK;
    if (st == CH_OK && !copy_str(ev->metadata, sizeof ev->metadata, field(p, "metadata", NULL)))
        ev->metadata[0] = '\0'; /* only a hint; too long is as good as none */
    f = field(p, "disconnectReason", "disconnect_reason");
    if (cJSON_IsNumber(f))
        ev->disconnect_reason = (int)f->valuedouble;
    for (int i = 0; cJSON_IsString(f) && i < 3; i++)
        if (!strcmp(f->valuestring, reasons[i]))
            ev->disconnect_reason = i;
    cJSON_Delete(o);
    return st;
}
