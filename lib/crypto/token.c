/* SPDX-License-Identifier: MIT */
/*
 * Credentials. A credential is (kind, uid, 32 random bytes). Only its verifier, a keyed MAC under a key derived
 * from core.secret_key, is ever stored, so a leaked store does not leak usable tokens. Browsers carry theirs in
 * a cookie sealed with the cookie keys; scripts and bots carry a bearer string. Any thread.
 *
 * Cookie layout (then base64url, no padding):
 *   plain:     0x01 | exp(8, big-endian unix seconds) | uidlen(1) | uid | secret(32) | mac(32)
 *   encrypted: 0x02 | nonce(24) | secretbox(exp | uidlen | uid | secret) | mac(32)
 * mac = HMAC-SHA256(signing key, everything before it); verified in constant time before anything is parsed.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "crypto/crypto.h"

struct crypto_keys {
    unsigned char verifier[32];
    unsigned char cookie_mac[32];
    unsigned char cookie_enc[crypto_secretbox_KEYBYTES];
    bool encrypt;
};

/* HMAC-SHA256 with an arbitrary-length key (the configured secrets are text of any length). */
static void
hmac(unsigned char out[32], const char *key, const char *label)
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, strlen(label));
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

enum ch_status
crypto_keys_new(const char *core_secret, const char *cookie_signing, const char *cookie_encryption,
                struct crypto_keys **out, struct ch_err *err)
{
    struct crypto_keys *k;

    if (!core_secret || !*core_secret || !cookie_signing || !*cookie_signing)
        return ch_err_set(err, CH_EINVAL, NULL, "core.secret_key and webserver.cookie_signing_secret are required");
    k = sodium_malloc(sizeof *k);
    if (!k)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    hmac(k->verifier, core_secret, "chatto credential verifier v1");
    hmac(k->cookie_mac, cookie_signing, "chatto cookie mac v1");
    k->encrypt = cookie_encryption && *cookie_encryption;
    if (k->encrypt)
        hmac(k->cookie_enc, cookie_encryption, "chatto cookie encryption v1");
    sodium_mprotect_readonly(k);
    *out = k;
    return CH_OK;
}

void
crypto_keys_free(struct crypto_keys *k)
{
    if (k)
        sodium_free(k); /* zeroes the memory */
}

void
crypto_token_secret(unsigned char secret[CRYPTO_TOKEN_SECRET])
{
    randombytes_buf(secret, CRYPTO_TOKEN_SECRET);
}

void
crypto_token_verifier(const struct crypto_keys *k, char kind, const char *uid,
                      const unsigned char secret[CRYPTO_TOKEN_SECRET], char hex[CRYPTO_VERIFIER_HEX])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[32], ul = (unsigned char)strlen(uid);

    crypto_auth_hmacsha256_init(&st, k->verifier, sizeof k->verifier);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)&kind, 1);
    crypto_auth_hmacsha256_update(&st, &ul, 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)uid, ul);
    crypto_auth_hmacsha256_update(&st, secret, CRYPTO_TOKEN_SECRET);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, CRYPTO_VERIFIER_HEX, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
}

char *
crypto_bearer_format(char kind, const char *uid, const unsigned char secret[CRYPTO_TOKEN_SECRET])
{
    char b64[sodium_base64_ENCODED_LEN(CRYPTO_TOKEN_SECRET, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char *out = NULL;

    sodium_bin2base64(b64, sizeof b64, secret, CRYPTO_TOKEN_SECRET, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (asprintf(&out, "chatto_%c_%s_%s", kind, uid, b64) < 0)
        out = NULL;
    sodium_memzero(b64, sizeof b64);
    return out;
}

enum ch_status
crypto_bearer_parse(const char *s, char *kind, char uid[65], unsigned char secret[CRYPTO_TOKEN_SECRET])
{
    const char *u, *sep;
    size_t ulen, blen;

    if (strncmp(s, "chatto_", 7) != 0 || !s[7] || s[8] != '_')
        return CH_EAUTH;
    u = s + 9;
    sep = strrchr(u, '_');
    if (!sep)
        return CH_EAUTH;
    /* the secret is base64url and may itself contain '_': it is the last 43 characters */
    blen = strlen(u);
    if (blen < 45)
        return CH_EAUTH;
    sep = u + blen - 44;
    if (*sep != '_')
        return CH_EAUTH;
    ulen = (size_t)(sep - u);
    if (ulen == 0 || ulen > 64)
        return CH_EAUTH;
    memcpy(uid, u, ulen);
    uid[ulen] = '\0';
    if (!id_valid(uid))
        return CH_EAUTH;
    size_t bin = 0;
    if (sodium_base642bin(secret, CRYPTO_TOKEN_SECRET, sep + 1, 43, NULL, &bin, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        bin != CRYPTO_TOKEN_SECRET)
        return CH_EAUTH;
    *kind = s[7];
    return CH_OK;
}

static void
cookie_mac(const struct crypto_keys *k, const unsigned char *m, size_t len, unsigned char out[32])
{
    crypto_auth_hmacsha256(out, m, len, k->cookie_mac);
}

char *
crypto_cookie_seal(const struct crypto_keys *k, const char *uid, const unsigned char secret[CRYPTO_TOKEN_SECRET],
                   int64_t exp)
{
    unsigned char body[8 + 1 + 64 + CRYPTO_TOKEN_SECRET], buf[1 + 24 + sizeof body + 16 + 32];
    size_t ul = strlen(uid), blen = 0, n = 0;
    char *out;

    if (ul == 0 || ul > 64)
        return NULL;
    for (int i = 7; i >= 0; i--)
        body[blen++] = (unsigned char)((uint64_t)exp >> (i * 8));
    body[blen++] = (unsigned char)ul;
    memcpy(body + blen, uid, ul);
    blen += ul;
    memcpy(body + blen, secret, CRYPTO_TOKEN_SECRET);
    blen += CRYPTO_TOKEN_SECRET;
    if (k->encrypt) {
        buf[n++] = 0x02;
        randombytes_buf(buf + n, crypto_secretbox_NONCEBYTES);
        crypto_secretbox_easy(buf + n + crypto_secretbox_NONCEBYTES, body, blen, buf + n, k->cookie_enc);
        n += crypto_secretbox_NONCEBYTES + blen + crypto_secretbox_MACBYTES;
    } else {
        buf[n++] = 0x01;
        memcpy(buf + n, body, blen);
        n += blen;
    }
    cookie_mac(k, buf, n, buf + n);
    n += 32;
    out = malloc(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
    if (out)
        sodium_bin2base64(out, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING), buf, n,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(body, sizeof body);
    sodium_memzero(buf, sizeof buf);
    return out;
}

enum ch_status
crypto_cookie_open(const struct crypto_keys *k, const char *value, int64_t now, char uid[65],
                   unsigned char secret[CRYPTO_TOKEN_SECRET], int64_t *expires)
{
    unsigned char buf[512], body[8 + 1 + 64 + CRYPTO_TOKEN_SECRET];
    const unsigned char *p;
    size_t n = 0, blen;
    enum ch_status st = CH_EAUTH;
    int64_t exp = 0;

    if (strlen(value) > 600 ||
        sodium_base642bin(buf, sizeof buf, value, strlen(value), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n < 1 + 32)
        goto out;
    if (crypto_auth_hmacsha256_verify(buf + n - 32, buf, n - 32, k->cookie_mac) != 0)
        goto out;
    n -= 32;
    if (buf[0] == 0x02 && k->encrypt) {
        if (n < 1 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
            goto out;
        blen = n - 1 - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
        if (blen > sizeof body ||
            crypto_secretbox_open_easy(body, buf + 1 + crypto_secretbox_NONCEBYTES,
                                       n - 1 - crypto_secretbox_NONCEBYTES, buf + 1, k->cookie_enc) != 0)
            goto out;
        p = body;
    } else if (buf[0] == 0x01 && !k->encrypt) {
        /* once encryption is configured, plain cookies are no longer accepted */
        blen = n - 1;
        p = buf + 1;
    } else {
        goto out;
    }
    if (blen < 8 + 1 + 1 + CRYPTO_TOKEN_SECRET)
        goto out;
    for (int i = 0; i < 8; i++)
        exp = (int64_t)(((uint64_t)exp << 8) | p[i]);
    size_t ul = p[8];
    if (ul == 0 || ul > 64 || blen != 9 + ul + CRYPTO_TOKEN_SECRET)
        goto out;
    memcpy(uid, p + 9, ul);
    uid[ul] = '\0';
    if (!id_valid(uid) || exp <= now)
        goto out;
    memcpy(secret, p + 9 + ul, CRYPTO_TOKEN_SECRET);
    if (expires)
        *expires = exp;
    st = CH_OK;
out:
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(body, sizeof body);
    return st;
}
