/* SPDX-License-Identifier: MIT */
/*
 * VAPID (RFC 8292): the server's P-256 key pair, made fresh, derived from a shared secret or read back from
 * storage, and the "vapid t=<JWT>, k=<key>" Authorization header signed with it (ES256, nettle's ECDSA with
 * libsodium's randomness for the nonce). Keys are immutable once made, so any thread may sign with a shared one.
 */
#include <gmp.h>
#include <inttypes.h>
#include <nettle/bignum.h>
#include <nettle/dsa.h>
#include <nettle/ecdsa.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/push_int.h"

struct push_vapid {
    /* nettle keeps the scalar in GMP-allocated limbs, not in sodium_malloc memory as crypto/ keeps its secrets;
     * we wipe them on free, and the stored form (push_vapid_private) is the caller's to guard */
    struct ecc_scalar key;
    struct ecc_point pub;
    char pub_b64[PUSH_PUBLIC_KEY_B64 + 1];
};

static struct push_vapid *
vapid_alloc(void)
{
    struct push_vapid *k = calloc(1, sizeof *k);

    if (k) {
        ecc_scalar_init(&k->key, nettle_get_secp_256r1());
        ecc_point_init(&k->pub, nettle_get_secp_256r1());
    }
    return k;
}

void
push_vapid_free(struct push_vapid *k)
{
    if (!k)
        return;
    push_scalar_wipe(&k->key);
    ecc_point_clear(&k->pub);
    free(k);
}

/* The public half from the private one, and its base64url form. */
static void
vapid_finish(struct push_vapid *k)
{
    unsigned char raw[PUSH_P256_POINT];

    ecc_point_mul_g(&k->pub, &k->key);
    push_point_bytes(&k->pub, raw);
    push_b64url(raw, sizeof raw, k->pub_b64, sizeof k->pub_b64);
}

enum ch_status
push_vapid_generate(struct push_vapid **out, struct ch_err *err)
{
    struct push_vapid *k = vapid_alloc();

    if (!k)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    ecdsa_generate_keypair(&k->pub, &k->key, NULL, push_random);
    vapid_finish(k);
    *out = k;
    return CH_OK;
}

enum ch_status
push_vapid_derive(const unsigned char secret[PUSH_SECRET_LEN], struct push_vapid **out, struct ch_err *err)
{
    static const char salt[] = "chatto web push vapid key v1";
    struct push_vapid *k = vapid_alloc();
    struct hmac_sha256_ctx h;
    unsigned char prk[SHA256_DIGEST_SIZE], cand[PUSH_P256_SCALAR];
    enum ch_status s = CH_OK;
    bool ok = false;

    if (!k)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    hmac_sha256_set_key(&h, sizeof salt - 1, (const uint8_t *)salt);
    hkdf_extract(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                 SHA256_DIGEST_SIZE, PUSH_SECRET_LEN, secret, prk);
    /* A candidate is out of range (0 or >= the group order) with probability about 2^-32; the next counter then
     * gives another. Rejecting rather than reducing keeps the scalar uniform. */
    for (unsigned i = 0; i < 256 && !ok; i++) {
        char info[32];
        int n = snprintf(info, sizeof info, "P-256 private key %u", i);
        hmac_sha256_set_key(&h, sizeof prk, prk);
        hkdf_expand(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                    SHA256_DIGEST_SIZE, (size_t)n, (const uint8_t *)info, sizeof cand, cand);
        ok = push_scalar_set(&k->key, cand);
    }
    if (!ok) { /* 256 misses in a row cannot happen with a working HMAC */
        s = ch_err_set(err, CH_EINTERNAL, NULL, "push: no P-256 key from the secret");
        goto out;
    }
    vapid_finish(k);
    *out = k;
    k = NULL;
out:
    sodium_memzero(&h, sizeof h);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(cand, sizeof cand);
    push_vapid_free(k);
    return s;
}

enum ch_status
push_vapid_parse(const char *private_b64, const char *public_b64, struct push_vapid **out, struct ch_err *err)
{
    unsigned char d[PUSH_P256_SCALAR], pub[PUSH_P256_POINT];
    struct push_vapid *k = NULL;
    enum ch_status s;

    if ((s = push_b64_exact(private_b64, d, sizeof d, "vapid_private_key", "a P-256 private key", err)) != CH_OK)
        goto out;
    if (public_b64 &&
        (s = push_b64_exact(public_b64, pub, sizeof pub, "vapid_public_key", "a P-256 public key", err)) != CH_OK)
        goto out;
    if (!(k = vapid_alloc())) {
        s = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    if (!push_scalar_set(&k->key, d)) {
        s = ch_err_set(err, CH_EINVAL, "vapid_private_key",
                       "vapid_private_key: not a P-256 private key (zero or not below the group order)");
        goto out;
    }
    vapid_finish(k);
    if (public_b64) {
        unsigned char mine[PUSH_P256_POINT];
        push_point_bytes(&k->pub, mine);
        if (memcmp(mine, pub, sizeof mine) != 0) {
            s = ch_err_set(err, CH_EINVAL, "vapid_public_key",
                           "vapid_public_key: does not belong to vapid_private_key");
            goto out;
        }
    }
    *out = k;
    k = NULL;
out:
    sodium_memzero(d, sizeof d);
    push_vapid_free(k);
    return s;
}

void
push_vapid_private(const struct push_vapid *k, char out[PUSH_PRIVATE_KEY_B64 + 1])
{
    unsigned char d[PUSH_P256_SCALAR];

    push_scalar_bytes(&k->key, d);
    push_b64url(d, sizeof d, out, PUSH_PRIVATE_KEY_B64 + 1);
    sodium_memzero(d, sizeof d);
}

const char *
push_vapid_public(const struct push_vapid *k)
{
    return k->pub_b64;
}

/* RFC 8292 §2.1 asks for a contact the push service's operators can reach: a mailto: or https: URI. It goes into
 * the JSON of the claims unescaped, so characters that would need escaping are refused instead. */
static bool
subject_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n < 8 || n > 256 || (strncmp(s, "mailto:", 7) != 0 && strncmp(s, "https://", 8) != 0))
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\')
            return false;
    return true;
}

enum ch_status
push_vapid_header(const struct push_vapid *k, const char *endpoint, const char *subject, int64_t now_unix_s,
                  char **out, struct ch_err *err)
{
    static const char jwt_header[] = "{\"typ\":\"JWT\",\"alg\":\"ES256\"}";
    struct push_url u;
    char claims[700], signing[1200], sig_b64[90];
    unsigned char digest[SHA256_DIGEST_SIZE], sig[64];
    struct sha256_ctx h;
    struct dsa_signature ds;
    enum ch_status s;
    size_t n;

    if ((s = push_url_parse(endpoint, &u, err)) != CH_OK)
        return s;
    if (!subject_ok(subject))
        return ch_err_set(err, CH_EINVAL, "subject",
                          "push: the VAPID subject must be a mailto: or https:// contact of printable characters");
    snprintf(claims, sizeof claims, "{\"aud\":\"%s\",\"exp\":%" PRId64 ",\"sub\":\"%s\"}", u.origin,
             now_unix_s + PUSH_VAPID_VALIDITY, subject);

    /* base64url(header) "." base64url(claims) is what is signed */
    push_b64url((const unsigned char *)jwt_header, sizeof jwt_header - 1, signing, sizeof signing);
    n = strlen(signing);
    signing[n++] = '.';
    push_b64url((const unsigned char *)claims, strlen(claims), signing + n, sizeof signing - n);

    sha256_init(&h);
    sha256_update(&h, strlen(signing), (const uint8_t *)signing);
    sha256_digest(&h, sizeof digest, digest);
    dsa_signature_init(&ds);
    ecdsa_sign(&k->key, NULL, push_random, sizeof digest, digest, &ds);
    /* JWS (RFC 7518 §3.4) wants r and s as two 32-byte big-endian integers, not DER */
    nettle_mpz_get_str_256(32, sig, ds.r);
    nettle_mpz_get_str_256(32, sig + 32, ds.s);
    dsa_signature_clear(&ds);
    push_b64url(sig, sizeof sig, sig_b64, sizeof sig_b64);

    size_t cap = strlen("vapid t=..., k=") + strlen(signing) + strlen(sig_b64) + PUSH_PUBLIC_KEY_B64 + 1;
    char *hdr = malloc(cap);
    if (!hdr)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    snprintf(hdr, cap, "vapid t=%s.%s, k=%s", signing, sig_b64, k->pub_b64);
    *out = hdr;
    return CH_OK;
}
