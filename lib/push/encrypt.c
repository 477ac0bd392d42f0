/* SPDX-License-Identifier: MIT */
/*
 * Web Push message encryption (RFC 8291) in the aes128gcm content coding (RFC 8188): an ephemeral P-256 key pair
 * per message, ECDH with the browser's key, two HKDF-SHA-256 steps (the auth secret, then the salt), and one
 * AES-128-GCM record. All primitives are nettle's; this file only arranges them as the RFCs say. Secrets on the
 * stack are wiped before returning. Pure; any thread after crypto_init().
 */
#include <nettle/ecdsa.h>
#include <nettle/gcm.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "push/push_int.h"

#define AUTH_LEN 16
#define SALT_LEN 16
#define RECORD_SIZE 4096u /* rs: we send one record, so any value above the record's length works; 4096 is usual */
#define TAG_LEN 16
#define HEADER_LEN (SALT_LEN + 4 + 1 + PUSH_P256_POINT) /* salt || rs || idlen || keyid = 86 */

_Static_assert(HEADER_LEN + PUSH_PAYLOAD_MAX + 1 + TAG_LEN == 4096, "PUSH_PAYLOAD_MAX fills a 4096-byte body");

static void
hkdf_sha256_extract(const unsigned char *salt, size_t salt_len, const unsigned char *ikm, size_t ikm_len,
                    unsigned char prk[SHA256_DIGEST_SIZE])
{
    struct hmac_sha256_ctx h;

    hmac_sha256_set_key(&h, salt_len, salt);
    hkdf_extract(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                 SHA256_DIGEST_SIZE, ikm_len, ikm, prk);
    sodium_memzero(&h, sizeof h);
}

static void
hkdf_sha256_expand(const unsigned char prk[SHA256_DIGEST_SIZE], const unsigned char *info, size_t info_len,
                   unsigned char *out, size_t len)
{
    struct hmac_sha256_ctx h;

    hmac_sha256_set_key(&h, SHA256_DIGEST_SIZE, prk);
    hkdf_expand(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                SHA256_DIGEST_SIZE, info_len, info, len, out);
    sodium_memzero(&h, sizeof h);
}

enum ch_status
push_keys_check(const char *p256dh, const char *auth, struct ch_err *err)
{
    unsigned char ua_pub[PUSH_P256_POINT], auth_secret[AUTH_LEN];
    struct ecc_point ua;
    enum ch_status s;

    if ((s = push_b64_exact(p256dh, ua_pub, sizeof ua_pub, "p256dh", "a P-256 public key", err)) != CH_OK ||
        (s = push_b64_exact(auth, auth_secret, sizeof auth_secret, "auth", "an auth secret", err)) != CH_OK)
        return s;
    ecc_point_init(&ua, nettle_get_secp_256r1());
    if (!push_point_set(&ua, ua_pub))
        s = ch_err_set(err, CH_EINVAL, "p256dh", "p256dh: not an uncompressed point on P-256");
    ecc_point_clear(&ua);
    return s;
}

enum ch_status
push_encrypt(const char *p256dh, const char *auth, const void *plain, size_t len, const struct push_enc_fixed *fixed,
             unsigned char **body, size_t *body_len, struct ch_err *err)
{
    static const char key_label[] = "WebPush: info";           /* RFC 8291 §3.4, followed by a zero byte */
    static const char cek_label[] = "Content-Encoding: aes128gcm"; /* RFC 8188 §2.2, idem */
    static const char nonce_label[] = "Content-Encoding: nonce";   /* RFC 8188 §2.3, idem */
    const struct ecc_curve *p256 = nettle_get_secp_256r1();
    unsigned char ua_pub[PUSH_P256_POINT], as_pub[PUSH_P256_POINT], auth_secret[AUTH_LEN], salt[SALT_LEN];
    unsigned char shared[PUSH_P256_POINT], prk[SHA256_DIGEST_SIZE], ikm[32], cek[16], nonce[GCM_IV_SIZE];
    unsigned char key_info[sizeof key_label + 2 * PUSH_P256_POINT];
    struct ecc_point ua, as, dh;
    struct ecc_scalar as_key;
    struct gcm_aes128_ctx gcm;
    unsigned char *out = NULL;
    enum ch_status s;

    ecc_point_init(&ua, p256);
    ecc_point_init(&as, p256);
    ecc_point_init(&dh, p256);
    ecc_scalar_init(&as_key, p256);

    if ((s = push_b64_exact(p256dh, ua_pub, sizeof ua_pub, "p256dh", "a P-256 public key", err)) != CH_OK ||
        (s = push_b64_exact(auth, auth_secret, sizeof auth_secret, "auth", "an auth secret", err)) != CH_OK)
        goto out;
    /* the one check that stands between a hostile subscription and an invalid-curve attack on our ephemeral key */
    if (!push_point_set(&ua, ua_pub)) {
        s = ch_err_set(err, CH_EINVAL, "p256dh", "p256dh: not an uncompressed point on P-256");
        goto out;
    }
    if (len > PUSH_PAYLOAD_MAX) {
        s = ch_err_set(err, CH_EINVAL, "payload", "push: payload of %zu bytes; at most %d fit a push message", len,
                       PUSH_PAYLOAD_MAX);
        goto out;
    }

    /* the ephemeral key pair and the salt: fresh for every message unless a test fixes them */
    if (fixed) {
        if (!push_scalar_set(&as_key, fixed->as_private)) {
            s = ch_err_set(err, CH_EINVAL, "as_private", "push: the fixed private key is not a P-256 scalar");
            goto out;
        }
        ecc_point_mul_g(&as, &as_key);
        memcpy(salt, fixed->salt, SALT_LEN);
    } else {
        ecdsa_generate_keypair(&as, &as_key, NULL, push_random);
        randombytes_buf(salt, SALT_LEN);
    }
    push_point_bytes(&as, as_pub);

    /* ecdh_secret = the X coordinate of as_private * ua_public (RFC 8291 §3.1) */
    ecc_point_mul(&dh, &as_key, &ua);
    push_point_bytes(&dh, shared);

    /* IKM = HKDF(salt = auth_secret, ikm = ecdh_secret, info = "WebPush: info" 0 || ua_public || as_public, 32) */
    memcpy(key_info, key_label, sizeof key_label); /* with its NUL: the zero byte the RFC puts after the label */
    memcpy(key_info + sizeof key_label, ua_pub, PUSH_P256_POINT);
    memcpy(key_info + sizeof key_label + PUSH_P256_POINT, as_pub, PUSH_P256_POINT);
    hkdf_sha256_extract(auth_secret, sizeof auth_secret, shared + 1, 32, prk);
    hkdf_sha256_expand(prk, key_info, sizeof key_info, ikm, sizeof ikm);
    /* PRK = HKDF-Extract(salt, IKM); CEK and NONCE from it (RFC 8188 §2.2, §2.3; one record, so SEQ = 0) */
    hkdf_sha256_extract(salt, sizeof salt, ikm, sizeof ikm, prk);
    hkdf_sha256_expand(prk, (const unsigned char *)cek_label, sizeof cek_label, cek, sizeof cek);
    hkdf_sha256_expand(prk, (const unsigned char *)nonce_label, sizeof nonce_label, nonce, sizeof nonce);

    *body_len = HEADER_LEN + len + 1 + TAG_LEN;
    if (!(out = malloc(*body_len))) {
        s = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    /* header: salt(16) || rs(4, big-endian) || idlen(1) = 65 || keyid = as_public (RFC 8291 §4) */
    memcpy(out, salt, SALT_LEN);
    out[16] = (unsigned char)(RECORD_SIZE >> 24);
    out[17] = (unsigned char)(RECORD_SIZE >> 16);
    out[18] = (unsigned char)(RECORD_SIZE >> 8);
    out[19] = (unsigned char)RECORD_SIZE;
    out[20] = PUSH_P256_POINT;
    memcpy(out + 21, as_pub, PUSH_P256_POINT);
    /* the record: plaintext || 0x02 (the last record's delimiter, no padding), encrypted in place, then the tag */
    unsigned char *rec = out + HEADER_LEN;
    if (len)
        memcpy(rec, plain, len);
    rec[len] = 0x02;
    gcm_aes128_set_key(&gcm, cek);
    gcm_aes128_set_iv(&gcm, sizeof nonce, nonce);
    gcm_aes128_encrypt(&gcm, len + 1, rec, rec);
    gcm_aes128_digest(&gcm, TAG_LEN, rec + len + 1);
    *body = out;
    s = CH_OK;
out:
    sodium_memzero(&gcm, sizeof gcm);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(ikm, sizeof ikm);
    sodium_memzero(cek, sizeof cek);
    sodium_memzero(nonce, sizeof nonce);
    sodium_memzero(auth_secret, sizeof auth_secret);
    push_scalar_wipe(&as_key);
    sodium_memzero(dh.p, 2 * (size_t)ecc_size(p256) * sizeof(mp_limb_t)); /* the shared point */
    ecc_point_clear(&dh);
    ecc_point_clear(&as);
    ecc_point_clear(&ua);
    return s;
}
