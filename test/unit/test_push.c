/* SPDX-License-Identifier: MIT */
/*
 * lib/push: RFC 8291's worked example (Appendix A) byte for byte, a round trip through a browser's side of the
 * decryption written here with nettle, VAPID keys (generate, derive, store and read back, refuse bad ones), the
 * VAPID JWT (its parts, its audience, its ES256 signature checked with nettle), refusals of bad subscription keys,
 * and push_send's refusals that need no push service (schemes, private and loopback addresses, options).
 * test/integration/69_webpush_test.py checks the same code against Node's crypto and a loopback push service.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <gmp.h>
#include <nettle/bignum.h>
#include <nettle/dsa.h>
#include <nettle/ecdsa.h>
#include <nettle/gcm.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "push/push.h"
#include "push/push_int.h"

/* RFC 8291 Appendix A (the same values as its §5 example) */
#define RFC_PLAIN "When I grow up, I want to be a watermelon"
#define RFC_AS_PRIVATE "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
#define RFC_AS_PUBLIC "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
#define RFC_UA_PRIVATE "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
#define RFC_UA_PUBLIC "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define RFC_SALT "DGv6ra1nlYgDCS1FRnbzlw"
#define RFC_AUTH "BTBZMqHH6r4Tts7J_aSIgg"
#define RFC_BODY                                                                                                    \
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBr" \
    "u3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

static size_t
unb64(const char *in, unsigned char *out, size_t max)
{
    size_t n = 0;

    assert_true(crypto_base64_decode_any(in, strlen(in), out, max, &n));
    return n;
}

static char *
b64(const unsigned char *in, size_t len)
{
    char *out = malloc(len * 4 / 3 + 4);

    assert_non_null(out);
    push_b64url(in, len, out, len * 4 / 3 + 4);
    return out;
}

static struct push_enc_fixed
rfc_fixed(void)
{
    struct push_enc_fixed f;

    assert_int_equal(unb64(RFC_AS_PRIVATE, f.as_private, sizeof f.as_private), 32);
    assert_int_equal(unb64(RFC_SALT, f.salt, sizeof f.salt), 16);
    return f;
}

static void
test_encrypt_reproduces_rfc8291_appendix_a_byte_for_byte(void **state)
{
    struct push_enc_fixed f = rfc_fixed();
    unsigned char *body = NULL, want[256];
    size_t len = 0, want_len = unb64(RFC_BODY, want, sizeof want);
    struct ch_err err = { 0 };
    (void)state;

    assert_int_equal(push_encrypt(RFC_UA_PUBLIC, RFC_AUTH, RFC_PLAIN, strlen(RFC_PLAIN), &f, &body, &len, &err),
                     CH_OK);
    assert_int_equal(len, want_len);
    assert_int_equal(len, 86 + strlen(RFC_PLAIN) + 1 + 16);
    assert_memory_equal(body, want, len);
    char *text = b64(body, len);
    assert_string_equal(text, RFC_BODY);
    free(text);
    /* the keyid in the header is the RFC's application server public key */
    text = b64(body + 21, 65);
    assert_string_equal(text, RFC_AS_PUBLIC);
    free(text);
    free(body);
}

/* A browser's side (RFC 8291 §3.4, RFC 8188 §2), written with nettle: the plaintext of body, or NULL. */
static unsigned char *
ua_decrypt(const unsigned char *body, size_t len, const struct ecc_scalar *ua_key, const unsigned char ua_pub[65],
           const unsigned char auth[16], size_t *plain_len)
{
    const struct ecc_curve *p256 = nettle_get_secp_256r1();
    struct ecc_point as, dh;
    struct hmac_sha256_ctx h;
    unsigned char shared[65], prk[32], ikm[32], cek[16], nonce[12], tag[16], info[14 + 130];
    struct gcm_aes128_ctx gcm;

    if (len < 86 + 17 || body[20] != 65 || ((unsigned)body[16] << 24 | body[17] << 16 | body[18] << 8 | body[19]) !=
                                                4096)
        return NULL;
    ecc_point_init(&as, p256);
    ecc_point_init(&dh, p256);
    assert_true(push_point_set(&as, body + 21));
    ecc_point_mul(&dh, ua_key, &as);
    push_point_bytes(&dh, shared);
    memcpy(info, "WebPush: info", 14);
    memcpy(info + 14, ua_pub, 65);
    memcpy(info + 79, body + 21, 65);
    hmac_sha256_set_key(&h, 16, auth);
    hkdf_extract(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                 32, 32, shared + 1, prk);
    hmac_sha256_set_key(&h, 32, prk);
    hkdf_expand(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                32, sizeof info, info, 32, ikm);
    hmac_sha256_set_key(&h, 16, body);
    hkdf_extract(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                 32, 32, ikm, prk);
    hmac_sha256_set_key(&h, 32, prk);
    hkdf_expand(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                32, 28, (const uint8_t *)"Content-Encoding: aes128gcm", 16, cek);
    hkdf_expand(&h, (nettle_hash_update_func *)hmac_sha256_update, (nettle_hash_digest_func *)hmac_sha256_digest,
                32, 24, (const uint8_t *)"Content-Encoding: nonce", 12, nonce);
    ecc_point_clear(&as);
    ecc_point_clear(&dh);

    size_t rec = len - 86 - 16;
    unsigned char *out = malloc(rec);
    assert_non_null(out);
    gcm_aes128_set_key(&gcm, cek);
    gcm_aes128_set_iv(&gcm, 12, nonce);
    gcm_aes128_decrypt(&gcm, rec, out, body + 86);
    gcm_aes128_digest(&gcm, 16, tag);
    /* the last record ends in 0x02 then zero padding */
    size_t end = rec;
    while (end > 0 && out[end - 1] == 0)
        end--;
    if (memcmp(tag, body + len - 16, 16) != 0 || end == 0 || out[end - 1] != 0x02) {
        free(out);
        return NULL;
    }
    *plain_len = end - 1;
    return out;
}

static void
test_rfc_body_decrypts_with_the_ua_private_key(void **state)
{
    struct ecc_scalar ua;
    unsigned char d[32], ua_pub[65], auth[16], body[256], *plain;
    size_t n = unb64(RFC_BODY, body, sizeof body), plen = 0;
    (void)state;

    ecc_scalar_init(&ua, nettle_get_secp_256r1());
    assert_int_equal(unb64(RFC_UA_PRIVATE, d, 32), 32);
    assert_true(push_scalar_set(&ua, d));
    unb64(RFC_UA_PUBLIC, ua_pub, 65);
    unb64(RFC_AUTH, auth, 16);
    plain = ua_decrypt(body, n, &ua, ua_pub, auth, &plen);
    assert_non_null(plain);
    assert_int_equal(plen, strlen(RFC_PLAIN));
    assert_memory_equal(plain, RFC_PLAIN, plen);
    free(plain);
    body[100] ^= 1; /* one flipped bit: the tag no longer matches */
    assert_null(ua_decrypt(body, n, &ua, ua_pub, auth, &plen));
    push_scalar_wipe(&ua);
}

static void
test_encrypt_round_trips_with_fresh_keys_and_the_largest_payload(void **state)
{
    struct ecc_scalar ua;
    struct ecc_point ua_pt;
    unsigned char ua_pub[65], auth[16], *body = NULL, *body2 = NULL, *plain;
    unsigned char payload[PUSH_PAYLOAD_MAX + 1];
    size_t len = 0, len2 = 0, plen = 0;
    struct ch_err err = { 0 };
    (void)state;

    ecc_scalar_init(&ua, nettle_get_secp_256r1());
    ecc_point_init(&ua_pt, nettle_get_secp_256r1());
    ecdsa_generate_keypair(&ua_pt, &ua, NULL, push_random);
    push_point_bytes(&ua_pt, ua_pub);
    randombytes_buf(auth, sizeof auth);
    randombytes_buf(payload, sizeof payload);
    char *p256dh = b64(ua_pub, 65), *auth64 = b64(auth, 16);

    assert_int_equal(push_encrypt(p256dh, auth64, payload, PUSH_PAYLOAD_MAX, NULL, &body, &len, &err), CH_OK);
    assert_int_equal(len, 4096); /* the largest body RFC 8030 push services must take */
    plain = ua_decrypt(body, len, &ua, ua_pub, auth, &plen);
    assert_non_null(plain);
    assert_int_equal(plen, PUSH_PAYLOAD_MAX);
    assert_memory_equal(plain, payload, plen);
    free(plain);
    /* a second message gets another salt and another ephemeral key */
    assert_int_equal(push_encrypt(p256dh, auth64, payload, 10, NULL, &body2, &len2, &err), CH_OK);
    assert_memory_not_equal(body, body2, 16);
    assert_memory_not_equal(body + 21, body2 + 21, 65);
    free(body2);
    body2 = NULL;
    /* one byte more does not fit */
    assert_int_equal(push_encrypt(p256dh, auth64, payload, PUSH_PAYLOAD_MAX + 1, NULL, &body2, &len2, &err),
                     CH_EINVAL);
    assert_null(body2);
    assert_string_equal(err.field, "payload");
    /* an empty payload is a valid message too */
    assert_int_equal(push_encrypt(p256dh, auth64, "", 0, NULL, &body2, &len2, &err), CH_OK);
    assert_int_equal(len2, 86 + 1 + 16);
    plain = ua_decrypt(body2, len2, &ua, ua_pub, auth, &plen);
    assert_non_null(plain);
    assert_int_equal(plen, 0);
    free(plain);
    free(body2);
    free(body);
    free(p256dh);
    free(auth64);
    push_scalar_wipe(&ua);
    ecc_point_clear(&ua_pt);
}

static void
test_encrypt_refuses_bad_subscription_keys_clearly(void **state)
{
    unsigned char pub[65], *body = NULL;
    size_t len = 0;
    struct ch_err err;
    char *s;
    (void)state;

    unb64(RFC_UA_PUBLIC, pub, 65);
    static const struct {
        const char *p256dh, *auth, *field, *needle;
    } cases[] = {
        { "not base64!!", RFC_AUTH, "p256dh", "not base64url" },
        { "", RFC_AUTH, "p256dh", "missing" },
        { NULL, RFC_AUTH, "p256dh", "missing" },
        { RFC_AS_PRIVATE, RFC_AUTH, "p256dh", "32 bytes where a P-256 public key has 65" },
        { RFC_UA_PUBLIC, "BTBZMqHH6r4Tts7J_aSI", "auth", "15 bytes where an auth secret has 16" },
        { RFC_UA_PUBLIC, "BTBZMqHH6r4Tts7J_aSIgg$", "auth", "not base64url" },
        { RFC_UA_PUBLIC, NULL, "auth", "missing" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(push_encrypt(cases[i].p256dh, cases[i].auth, "x", 1, NULL, &body, &len, &err), CH_EINVAL);
        assert_null(body);
        assert_string_equal(err.field, cases[i].field);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: %s", i, err.msg);
    }
    /* a point off the curve (Y changed), a compressed point, the point at "zero", X >= p */
    unsigned char bad[4][65];
    memcpy(bad[0], pub, 65);
    bad[0][64] ^= 1;
    memcpy(bad[1], pub, 65);
    bad[1][0] = 0x02;
    memset(bad[2], 0, 65);
    bad[2][0] = 0x04;
    memset(bad[3], 0xff, 65);
    bad[3][0] = 0x04;
    for (size_t i = 0; i < 4; i++) {
        memset(&err, 0, sizeof err);
        s = b64(bad[i], 65);
        assert_int_equal(push_encrypt(s, RFC_AUTH, "x", 1, NULL, &body, &len, &err), CH_EINVAL);
        assert_null(body);
        assert_string_equal(err.msg, "p256dh: not an uncompressed point on P-256");
        free(s);
    }
}

static void
test_vapid_keys_round_trip_through_their_stored_form(void **state)
{
    struct push_vapid *k = NULL, *k2 = NULL, *k3 = NULL;
    char priv[PUSH_PRIVATE_KEY_B64 + 1], priv2[PUSH_PRIVATE_KEY_B64 + 1];
    unsigned char raw[65];
    struct ch_err err = { 0 };
    (void)state;

    assert_int_equal(push_vapid_generate(&k, &err), CH_OK);
    push_vapid_private(k, priv);
    assert_int_equal(strlen(priv), PUSH_PRIVATE_KEY_B64);
    assert_int_equal(strlen(push_vapid_public(k)), PUSH_PUBLIC_KEY_B64);
    assert_int_equal(unb64(push_vapid_public(k), raw, sizeof raw), 65);
    assert_int_equal(raw[0], 0x04);
    assert_int_equal(push_vapid_parse(priv, push_vapid_public(k), &k2, &err), CH_OK);
    assert_string_equal(push_vapid_public(k2), push_vapid_public(k));
    push_vapid_private(k2, priv2);
    assert_string_equal(priv2, priv);
    assert_int_equal(push_vapid_parse(priv, NULL, &k3, &err), CH_OK);
    assert_string_equal(push_vapid_public(k3), push_vapid_public(k));
    push_vapid_free(k3);
    push_vapid_free(k2);
    /* a second key is another key */
    assert_int_equal(push_vapid_generate(&k2, &err), CH_OK);
    assert_string_not_equal(push_vapid_public(k2), push_vapid_public(k));
    push_vapid_free(k2);
    push_vapid_free(k);
    push_vapid_free(NULL);

    /* the RFC's application server key pair reads back as itself */
    assert_int_equal(push_vapid_parse(RFC_AS_PRIVATE, RFC_AS_PUBLIC, &k, &err), CH_OK);
    assert_string_equal(push_vapid_public(k), RFC_AS_PUBLIC);
    push_vapid_free(k);
}

static void
test_vapid_parse_refuses_bad_keys(void **state)
{
    struct push_vapid *k = NULL;
    struct ch_err err;
    unsigned char d[32];
    char *s;
    (void)state;

    static const struct {
        const char *priv, *pub, *field, *needle;
    } cases[] = {
        { "***", NULL, "vapid_private_key", "not base64url" },
        { RFC_SALT, NULL, "vapid_private_key", "16 bytes where a P-256 private key has 32" },
        { RFC_AS_PRIVATE, RFC_AUTH, "vapid_public_key", "16 bytes where a P-256 public key has 65" },
        { RFC_AS_PRIVATE, RFC_UA_PUBLIC, "vapid_public_key", "does not belong to vapid_private_key" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(push_vapid_parse(cases[i].priv, cases[i].pub, &k, &err), CH_EINVAL);
        assert_null(k);
        assert_string_equal(err.field, cases[i].field);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: %s", i, err.msg);
    }
    /* zero, and the group order's neighbourhood (all ones is above it) */
    memset(d, 0, sizeof d);
    s = b64(d, 32);
    assert_int_equal(push_vapid_parse(s, NULL, &k, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "not a P-256 private key"));
    free(s);
    memset(d, 0xff, sizeof d);
    s = b64(d, 32);
    assert_int_equal(push_vapid_parse(s, NULL, &k, &err), CH_EINVAL);
    free(s);
    assert_null(k);
}

static void
test_vapid_derive_is_deterministic_per_secret(void **state)
{
    unsigned char a[PUSH_SECRET_LEN], b[PUSH_SECRET_LEN];
    struct push_vapid *k1 = NULL, *k2 = NULL, *k3 = NULL;
    struct ch_err err = { 0 };
    (void)state;

    memset(a, 'a', sizeof a);
    memcpy(b, a, sizeof b);
    b[31] ^= 1;
    assert_int_equal(push_vapid_derive(a, &k1, &err), CH_OK);
    assert_int_equal(push_vapid_derive(a, &k2, &err), CH_OK);
    assert_int_equal(push_vapid_derive(b, &k3, &err), CH_OK);
    assert_string_equal(push_vapid_public(k1), push_vapid_public(k2));
    assert_string_not_equal(push_vapid_public(k1), push_vapid_public(k3));
    push_vapid_free(k1);
    push_vapid_free(k2);
    push_vapid_free(k3);
}

/* Split "vapid t=H.C.S, k=K" and check the signature over "H.C" with nettle against K; *claims is C decoded. */
static void
check_header(const char *hdr, const char *want_pub, char *claims, size_t cap)
{
    const char *t = hdr + strlen("vapid t="), *k;
    unsigned char raw[1024], pub[65], digest[32];
    size_t n;

    assert_memory_equal(hdr, "vapid t=", 8);
    k = strstr(hdr, ", k=");
    assert_non_null(k);
    assert_string_equal(k + 4, want_pub);
    const char *dot1 = strchr(t, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    assert_true(dot2 < k);

    char part[1200];
    memcpy(part, t, (size_t)(dot1 - t));
    part[dot1 - t] = '\0';
    n = unb64(part, raw, sizeof raw - 1);
    raw[n] = '\0';
    assert_string_equal((char *)raw, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}");
    memcpy(part, dot1 + 1, (size_t)(dot2 - dot1 - 1));
    part[dot2 - dot1 - 1] = '\0';
    n = unb64(part, raw, sizeof raw - 1);
    assert_true(n < cap);
    memcpy(claims, raw, n);
    claims[n] = '\0';
    memcpy(part, dot2 + 1, (size_t)(k - dot2 - 1));
    part[k - dot2 - 1] = '\0';
    assert_null(strchr(part, '=')); /* base64url without padding, as JWS wants */
    assert_int_equal(unb64(part, raw, sizeof raw), 64);

    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, (size_t)(dot2 - t), (const uint8_t *)t);
    sha256_digest(&h, sizeof digest, digest);
    struct ecc_point p;
    struct dsa_signature sig;
    ecc_point_init(&p, nettle_get_secp_256r1());
    assert_int_equal(unb64(want_pub, pub, sizeof pub), 65);
    assert_true(push_point_set(&p, pub));
    dsa_signature_init(&sig);
    nettle_mpz_set_str_256_u(sig.r, 32, raw);
    nettle_mpz_set_str_256_u(sig.s, 32, raw + 32);
    assert_int_equal(ecdsa_verify(&p, sizeof digest, digest, &sig), 1);
    digest[0] ^= 1;
    assert_int_equal(ecdsa_verify(&p, sizeof digest, digest, &sig), 0);
    dsa_signature_clear(&sig);
    ecc_point_clear(&p);
}

static void
test_vapid_header_is_an_es256_jwt_for_the_endpoint_origin(void **state)
{
    struct push_vapid *k = NULL;
    struct ch_err err = { 0 };
    char *hdr = NULL, claims[800], want[800];
    (void)state;

    assert_int_equal(push_vapid_generate(&k, &err), CH_OK);
    static const struct {
        const char *endpoint, *aud;
    } cases[] = {
        { "https://fcm.googleapis.com/fcm/send/abc:def?x=1", "https://fcm.googleapis.com" },
        { "https://Updates.Push.Services.MOZILLA.com/wpush/v2/gAAA", "https://updates.push.services.mozilla.com" },
        { "https://web.push.apple.com:443/QGuQ", "https://web.push.apple.com" },
        { "https://push.example.net:8443/p/1", "https://push.example.net:8443" },
        { "http://127.0.0.1:4567/push/ok", "http://127.0.0.1:4567" },
        { "https://[2001:DB8:0::1]:9/x", "https://[2001:db8::1]:9" },
        { "https://exa%6Dple.com/x", "https://example.com" }, /* curl (and WHATWG URL) decode the host */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(push_vapid_header(k, cases[i].endpoint, "mailto:ops@example.com", 1700000000, &hdr, &err),
                         CH_OK);
        check_header(hdr, push_vapid_public(k), claims, sizeof claims);
        snprintf(want, sizeof want, "{\"aud\":\"%s\",\"exp\":%d,\"sub\":\"mailto:ops@example.com\"}", cases[i].aud,
                 1700000000 + 12 * 3600);
        assert_string_equal(claims, want);
        free(hdr);
        hdr = NULL;
    }
    /* ECDSA signs with a fresh nonce: the same claims twice give two signatures */
    char *h2 = NULL;
    assert_int_equal(push_vapid_header(k, "https://a.example/x", "https://chat.example", 1, &hdr, &err), CH_OK);
    assert_int_equal(push_vapid_header(k, "https://a.example/x", "https://chat.example", 1, &h2, &err), CH_OK);
    assert_string_not_equal(hdr, h2);
    free(hdr);
    free(h2);
    hdr = NULL;

    static const char *bad_subjects[] = { NULL, "", "ops@example.com", "mailto:", "http://chat.example",
                                          "mailto:a\"b@example.com", "mailto:a b@example.com", "https://x\\y" };
    for (size_t i = 0; i < sizeof bad_subjects / sizeof bad_subjects[0]; i++) {
        assert_int_equal(push_vapid_header(k, "https://a.example/x", bad_subjects[i], 1, &hdr, &err), CH_EINVAL);
        assert_string_equal(err.field, "subject");
    }
    static const char *bad_endpoints[] = { NULL, "", "fcm.googleapis.com/x", "ftp://a.example/x", "https://",
                                           "https://user:pw@a.example/x", "https://a.example/x#frag",
                                           "https://[fe80::1%25eth0]/x", "https://exa mple.com/x" };
    for (size_t i = 0; i < sizeof bad_endpoints / sizeof bad_endpoints[0]; i++) {
        memset(&err, 0, sizeof err);
        if (push_vapid_header(k, bad_endpoints[i], "mailto:a@b.c", 1, &hdr, &err) != CH_EINVAL)
            fail_msg("endpoint %s accepted", bad_endpoints[i] ? bad_endpoints[i] : "(null)");
        assert_string_equal(err.field, "endpoint");
    }
    assert_null(hdr);
    push_vapid_free(k);
}

static void
test_send_refuses_endpoints_that_are_not_public_https(void **state)
{
    struct push_vapid *k = NULL;
    struct ch_err err;
    long status = -1;
    (void)state;

    assert_int_equal(push_vapid_generate(&k, &err), CH_OK);
    struct push_config cfg = { .vapid = k, .subject = "mailto:ops@example.com", .timeout_ms = 3000 };
    struct push_msg m = { .p256dh = RFC_UA_PUBLIC, .auth = RFC_AUTH, .payload = "hi", .len = 2, .ttl_s = 60 };
    static const struct {
        const char *endpoint, *needle;
    } cases[] = {
        { "http://push.example.com/x", "must be an https:// URL" },
        { "http://127.0.0.1:1/x", "must be an https:// URL" },
        { "https://10.1.2.3/x", "10.1.2.3 is not a public address" },
        { "https://192.168.1.1/x", "not a public address" },
        { "https://172.31.255.255/x", "not a public address" },
        { "https://169.254.169.254/latest/meta-data", "not a public address" },
        { "https://100.64.0.1/x", "not a public address" },
        { "https://127.0.0.1:1/x", "not a public address" },
        { "https://0.0.0.0/x", "not a public address" },
        { "https://224.0.0.1/x", "not a public address" },
        { "https://[::1]:1/x", "not a public address" },
        { "https://[::]/x", "not a public address" },
        { "https://[::ffff:10.0.0.1]/x", "not a public address" },
        { "https://[::ffff:127.0.0.1]/x", "not a public address" },
        { "https://[64:ff9b::a00:1]/x", "not a public address" },
        { "https://[fd00::1]/x", "not a public address" },
        { "https://[fe80::1]/x", "not a public address" },
        { "https://[2002:a00:1::1]/x", "not a public address" },
        { "https://[ff02::1]/x", "not a public address" },
        { "https://0x7f.1/x", "not a public address" },     /* 127.0.0.1 spelled otherwise */
        { "https://2130706433/x", "not a public address" }, /* idem, as one number */
        { "https://localhost:1/x", "not a public address" }, /* a name that resolves to loopback */
        { "gopher://a.example/x", "must be an https:// URL" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        m.endpoint = cases[i].endpoint;
        assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
        assert_int_equal(status, 0);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("%s: %s", cases[i].endpoint, err.msg);
    }
    /* even with loopback allowed, private ranges stay refused, and http:// reaches loopback only */
    cfg.allow_loopback = true;
    m.endpoint = "https://10.0.0.1/x";
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    m.endpoint = "http://192.168.0.1/x";
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    /* loopback allowed and nothing listening: unavailable, not refused */
    m.endpoint = "http://127.0.0.1:1/x";
    memset(&err, 0, sizeof err);
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EUNAVAIL);
    assert_int_equal(status, 0);
    push_vapid_free(k);
}

static void
test_send_refuses_bad_options_before_sending(void **state)
{
    struct push_vapid *k = NULL;
    struct ch_err err;
    long status = -1;
    char big[PUSH_PAYLOAD_MAX + 1];
    (void)state;

    memset(big, 'x', sizeof big);
    assert_int_equal(push_vapid_generate(&k, &err), CH_OK);
    struct push_config cfg = { .vapid = k, .subject = "mailto:ops@example.com", .allow_loopback = true };
    struct push_msg ok = { .endpoint = "http://127.0.0.1:1/x", .p256dh = RFC_UA_PUBLIC, .auth = RFC_AUTH,
                           .payload = "hi", .len = 2, .ttl_s = 60 };
    struct push_msg m;

    m = ok, m.ttl_s = -1;
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    assert_string_equal(err.field, "ttl");
    m = ok, m.ttl_s = PUSH_TTL_MAX + 1;
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    m = ok, m.urgency = (enum push_urgency)42;
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    assert_string_equal(err.field, "urgency");
    m = ok, m.topic = "no spaces allowed";
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    assert_string_equal(err.field, "topic");
    m = ok, m.topic = "abcdefghijklmnopqrstuvwxyz0123456"; /* 33 */
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    m = ok, m.payload = big, m.len = sizeof big;
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    assert_string_equal(err.field, "payload");
    m = ok, m.p256dh = "AAAA";
    assert_int_equal(push_send(&cfg, &m, &status, &err), CH_EINVAL);
    assert_string_equal(err.field, "p256dh");
    cfg.subject = "ops@example.com";
    assert_int_equal(push_send(&cfg, &ok, &status, &err), CH_EINVAL);
    assert_string_equal(err.field, "subject");
    cfg.vapid = NULL;
    assert_int_equal(push_send(&cfg, &ok, &status, &err), CH_EINVAL);
    assert_int_equal(status, 0);
    push_vapid_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encrypt_reproduces_rfc8291_appendix_a_byte_for_byte),
        cmocka_unit_test(test_rfc_body_decrypts_with_the_ua_private_key),
        cmocka_unit_test(test_encrypt_round_trips_with_fresh_keys_and_the_largest_payload),
        cmocka_unit_test(test_encrypt_refuses_bad_subscription_keys_clearly),
        cmocka_unit_test(test_vapid_keys_round_trip_through_their_stored_form),
        cmocka_unit_test(test_vapid_parse_refuses_bad_keys),
        cmocka_unit_test(test_vapid_derive_is_deterministic_per_secret),
        cmocka_unit_test(test_vapid_header_is_an_es256_jwt_for_the_endpoint_origin),
        cmocka_unit_test(test_send_refuses_endpoints_that_are_not_public_https),
        cmocka_unit_test(test_send_refuses_bad_options_before_sending),
    };
    if (crypto_init() != CH_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
