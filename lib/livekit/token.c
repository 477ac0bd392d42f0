/* SPDX-License-Identifier: MIT */
/*
 * LiveKit access tokens: JSON Web Tokens with HS256 (RFC 7519 / 7518), the MAC being libsodium's HMAC-SHA-256
 * under the API secret (any length) and compared in constant time. Minting writes the claims LiveKit's own SDKs
 * write; verifying accepts exactly what LiveKit's TokenVerifier accepts (alg HS256, issuer = key, time window).
 * Pure; any thread.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "livekit/livekit.h"

#define JWT_MAX 16384

static char *
b64url(const void *data, size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(n);

    if (out)
        sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static void
hs256(const char *secret, const char *data, size_t len, unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

char *
lk_token_mint(const char *key, const char *secret, const char *identity, const char *name, const char *metadata,
              cJSON *video, int64_t now_s, int64_t ttl_s)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    cJSON *c = cJSON_CreateObject();
    char *payload = NULL, *h64 = NULL, *p64 = NULL, *s64 = NULL, *out = NULL;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    if (!c) {
        cJSON_Delete(video);
        return NULL;
    }
    cJSON_AddStringToObject(c, "iss", key);
    if (identity && *identity) {
        cJSON_AddStringToObject(c, "sub", identity);
        cJSON_AddStringToObject(c, "jti", identity);
    }
    if (name && *name)
        cJSON_AddStringToObject(c, "name", name);
    if (metadata && *metadata)
        cJSON_AddStringToObject(c, "metadata", metadata);
    if (video)
        cJSON_AddItemToObject(c, "video", video);
    cJSON_AddNumberToObject(c, "nbf", (double)now_s);
    cJSON_AddNumberToObject(c, "iat", (double)now_s);
    cJSON_AddNumberToObject(c, "exp", (double)(now_s + ttl_s));
    payload = json_print(c, NULL);
    cJSON_Delete(c);
    if (!payload || !(h64 = b64url(header, strlen(header))) || !(p64 = b64url(payload, strlen(payload))))
        goto done;
    size_t hl = strlen(h64), pl = strlen(p64);
    char *signing = malloc(hl + 1 + pl + 1);
    if (!signing)
        goto done;
    memcpy(signing, h64, hl);
    signing[hl] = '.';
    memcpy(signing + hl + 1, p64, pl + 1);
    hs256(secret, signing, hl + 1 + pl, mac);
    if ((s64 = b64url(mac, sizeof mac)) && (out = malloc(hl + pl + strlen(s64) + 3))) {
        memcpy(out, signing, hl + 1 + pl);
        out[hl + 1 + pl] = '.';
        strcpy(out + hl + 2 + pl, s64);
    }
    free(signing);
done:
    free(payload);
    free(h64);
    free(p64);
    free(s64);
    return out;
}

/* base64url (no padding) of at most max bytes into out; false if malformed. */
static bool
unb64(const char *in, size_t inlen, unsigned char *out, size_t max, size_t *len)
{
    const char *end = NULL;

    return sodium_base642bin(out, max, in, inlen, NULL, len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
           end == in + inlen;
}

static cJSON *
json_part(const char *in, size_t inlen)
{
    unsigned char *buf = malloc(inlen + 1);
    size_t n = 0;
    cJSON *o = NULL;

    if (buf && unb64(in, inlen, buf, inlen, &n))
        o = cJSON_ParseWithLength((const char *)buf, n);
    free(buf);
    if (o && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

enum ch_status
lk_token_verify(const char *jwt, const char *key, const char *secret, int64_t now_s, cJSON **claims,
                struct ch_err *err)
{
    const char *d1, *d2;
    cJSON *h = NULL, *c = NULL;
    unsigned char mac[crypto_auth_hmacsha256_BYTES], want[crypto_auth_hmacsha256_BYTES];
    size_t n = 0, len;
    const cJSON *f;

    *claims = NULL;
    if (!jwt || (len = strlen(jwt)) == 0 || len > JWT_MAX || !(d1 = strchr(jwt, '.')) || !(d2 = strchr(d1 + 1, '.')) ||
        strchr(d2 + 1, '.'))
        return ch_err_set(err, CH_EAUTH, NULL, "not a JSON Web Token");
    if (!(h = json_part(jwt, (size_t)(d1 - jwt))))
        return ch_err_set(err, CH_EAUTH, NULL, "the token's header is malformed");
    f = cJSON_GetObjectItemCaseSensitive(h, "alg");
    bool hs = cJSON_IsString(f) && !strcmp(f->valuestring, "HS256");
    cJSON_Delete(h);
    if (!hs)
        return ch_err_set(err, CH_EAUTH, NULL, "the token is not signed with HS256");
    if (!unb64(d2 + 1, strlen(d2 + 1), mac, sizeof mac, &n) || n != sizeof mac)
        return ch_err_set(err, CH_EAUTH, NULL, "the token's signature is malformed");
    hs256(secret, jwt, (size_t)(d2 - jwt), want);
    if (sodium_memcmp(mac, want, sizeof mac) != 0)
        return ch_err_set(err, CH_EAUTH, NULL, "the token's signature does not match");
    if (!(c = json_part(d1 + 1, (size_t)(d2 - d1 - 1))))
        return ch_err_set(err, CH_EAUTH, NULL, "the token's claims are malformed");
    f = cJSON_GetObjectItemCaseSensitive(c, "iss");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, key)) {
        cJSON_Delete(c);
        return ch_err_set(err, CH_EAUTH, NULL, "the token was issued for another API key");
    }
    f = cJSON_GetObjectItemCaseSensitive(c, "exp"); /* required, as LiveKit's verifier requires it */
    if (!cJSON_IsNumber(f) || f->valuedouble <= (double)now_s) {
        cJSON_Delete(c);
        return ch_err_set(err, CH_EAUTH, NULL, "the token has expired");
    }
    f = cJSON_GetObjectItemCaseSensitive(c, "nbf");
    if (f && (!cJSON_IsNumber(f) || f->valuedouble > (double)now_s + 60)) { /* a minute of clock skew */
        cJSON_Delete(c);
        return ch_err_set(err, CH_EAUTH, NULL, "the token is not valid yet");
    }
    *claims = c;
    return CH_OK;
}
