/* SPDX-License-Identifier: MIT */
/*
 * Download tickets, in upstream Chatto's format so its clients read our URLs the same way: the ticket is
 * base64url (no padding) of the JSON {"a": assetId, "u": userId, "e": expiry in unix seconds} (plus "w", "h" and
 * "f" for one size of an image: a ticket for a thumbnail opens neither the original nor another size), a dot, and the
 * first 16 bytes (32 hex digits) of HMAC-SHA-256 over that base64 text, keyed with core.assets.signing_secret.
 * Every process shares the secret, so any of them checks a ticket another made. Expiry is the current hour plus
 * 24 hours: a ticket lives 23 to 24 hours and is the same all hour (so browsers cache the URL). Pure; any thread.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "assets/assets_int.h"
#include "base/clock.h"
#include "json/json.h"

#define TICKET_PAYLOAD_MAX 512

static void
mac_hex(const struct assets *a, const char *payload, size_t len, char out[33])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)a->secret, a->secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)payload, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, 33, mac, 16);
    sodium_memzero(&st, sizeof st);
}

static void
make_url(const struct assets *a, const char *asset_id, const struct assets_image_spec *spec, const char *viewer,
         char *buf, size_t len, int64_t *expires_ms)
{
    char json[320], b64[sodium_base64_ENCODED_LEN(320, sodium_base64_VARIANT_URLSAFE_NO_PADDING)], mac[33];
    char path[160] = "";
    int64_t exp = (clock_wall_ms() / 1000 / 3600) * 3600 + 24 * 3600;
    int n;

    *expires_ms = 0;
    if (!id_valid(asset_id))
        asset_id = "";
    if (spec)
        snprintf(path, sizeof path, "/image/%dx%d/%s", spec->width, spec->height, assets_fit_name(spec->fit));
    if (!viewer || !*viewer || !id_valid(viewer) || !*asset_id) {
        snprintf(buf, len, "/assets/files/%s%s", asset_id, path);
        return;
    }
    if (spec)
        n = snprintf(json, sizeof json, "{\"a\":\"%s\",\"u\":\"%s\",\"e\":%lld,\"w\":%d,\"h\":%d,\"f\":\"%s\"}",
                     asset_id, viewer, (long long)exp, spec->width, spec->height, assets_fit_name(spec->fit));
    else
        n = snprintf(json, sizeof json, "{\"a\":\"%s\",\"u\":\"%s\",\"e\":%lld}", asset_id, viewer, (long long)exp);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)json, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    mac_hex(a, b64, strlen(b64), mac);
    snprintf(buf, len, "/assets/files/%s%s?access=%s.%s", asset_id, path, b64, mac);
    *expires_ms = exp * 1000;
}

void
assets_url(const struct assets *a, const char *asset_id, const char *viewer, char *buf, size_t len,
           int64_t *expires_ms)
{
    make_url(a, asset_id, NULL, viewer, buf, len, expires_ms);
}

void
assets_image_url(const struct assets *a, const char *asset_id, const struct assets_image_spec *spec,
                 const char *viewer, char *buf, size_t len, int64_t *expires_ms)
{
    make_url(a, asset_id, spec, viewer, buf, len, expires_ms);
}

enum ch_status
assets_ticket_check(const struct assets *a, const char *ticket, const char *asset_id,
                    const struct assets_image_spec *spec, char uid[ID_MAX + 1], struct ch_err *err)
{
    const char *dot = ticket ? strchr(ticket, '.') : NULL;
    char mac[33], json[TICKET_PAYLOAD_MAX + 1];
    size_t plen, jlen = 0;
    cJSON *o = NULL;
    const cJSON *f;
    enum ch_status st = CH_OK;

    if (!dot || (plen = (size_t)(dot - ticket)) == 0 || plen > sodium_base64_ENCODED_LEN(TICKET_PAYLOAD_MAX,
        sodium_base64_VARIANT_URLSAFE_NO_PADDING) || strlen(dot + 1) != 32)
        return ch_err_set(err, CH_EPERM, "access", "not a valid download ticket");
    mac_hex(a, ticket, plen, mac);
    if (sodium_memcmp(mac, dot + 1, 32) != 0)
        return ch_err_set(err, CH_EPERM, "access", "not a valid download ticket");
    if (sodium_base642bin((unsigned char *)json, TICKET_PAYLOAD_MAX, ticket, plen, NULL, &jlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        json_parse_object(json, jlen, 2, &o, NULL) != CH_OK)
        return ch_err_set(err, CH_EPERM, "access", "not a valid download ticket");
    f = cJSON_GetObjectItemCaseSensitive(o, "e");
    if (!cJSON_IsNumber(f) || f->valuedouble * 1000 <= (double)clock_wall_ms())
        st = ch_err_set(err, CH_EPERM, "access", "the download link expired; reload the message for a new one");
    f = cJSON_GetObjectItemCaseSensitive(o, "a");
    if (st == CH_OK && (!cJSON_IsString(f) || strcmp(f->valuestring, asset_id) != 0))
        st = ch_err_set(err, CH_EPERM, "access", "the ticket is for another file");
    if (st == CH_OK && !spec && (cJSON_GetObjectItemCaseSensitive(o, "w") ||
                                 cJSON_GetObjectItemCaseSensitive(o, "h") || cJSON_GetObjectItemCaseSensitive(o, "f")))
        st = ch_err_set(err, CH_EPERM, "access", "the ticket is for a resized image, not the file");
    if (st == CH_OK && spec) {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "w"), *h = cJSON_GetObjectItemCaseSensitive(o, "h"),
                    *fit = cJSON_GetObjectItemCaseSensitive(o, "f");
        if (!cJSON_IsNumber(w) || !cJSON_IsNumber(h) || !cJSON_IsString(fit) || w->valuedouble != spec->width ||
            h->valuedouble != spec->height || strcmp(fit->valuestring, assets_fit_name(spec->fit)) != 0)
            st = ch_err_set(err, CH_EPERM, "access", "the ticket is for another size of this image");
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "u");
    if (st == CH_OK && (!cJSON_IsString(f) || !id_valid(f->valuestring)))
        st = ch_err_set(err, CH_EPERM, "access", "not a valid download ticket");
    if (st == CH_OK)
        snprintf(uid, ID_MAX + 1, "%s", f->valuestring);
    cJSON_Delete(o);
    return st;
}
