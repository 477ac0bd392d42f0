/* SPDX-License-Identifier: MIT */
/* Credentials, cookies, password hashes and NKeys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

static struct crypto_keys *
keys(const char *enc)
{
    struct crypto_keys *k = NULL;

    assert_int_equal(crypto_keys_new("core-secret-0123456789", "cookie-secret-0123456789", enc, &k, NULL), CH_OK);
    return k;
}

static void
test_secrets_are_random_base64url(void **state)
{
    char a[CRYPTO_SECRET_LEN + 1], b[CRYPTO_SECRET_LEN + 1];
    (void)state;
    crypto_secret_new(a);
    crypto_secret_new(b);
    assert_int_equal(strlen(a), 43);
    assert_string_not_equal(a, b);
    for (const char *p = a; *p; p++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
}

static void
test_bearer_round_trip_and_malformed(void **state)
{
    unsigned char s[CRYPTO_TOKEN_SECRET], s2[CRYPTO_TOKEN_SECRET];
    char kind, uid[65], *b;
    (void)state;
    crypto_token_secret(s);
    b = crypto_bearer_format('t', "user_1-x", s);
    assert_int_equal(crypto_bearer_parse(b, &kind, uid, s2), CH_OK);
    assert_int_equal(kind, 't');
    assert_string_equal(uid, "user_1-x");
    assert_memory_equal(s, s2, sizeof s);
    free(b);
    static const char *bad[] = { "", "chatto_", "chatto_t_", "chatto_t_u_short", "bearer_t_u_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                 "chatto_t_a.b_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                 "chatto_t_u_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(crypto_bearer_parse(bad[i], &kind, uid, s2), CH_EAUTH);
}

static void
test_verifier_depends_on_key_kind_uid_secret(void **state)
{
    struct crypto_keys *k1 = keys(""), *k2 = NULL;
    unsigned char s[CRYPTO_TOKEN_SECRET];
    char v1[CRYPTO_VERIFIER_HEX], v2[CRYPTO_VERIFIER_HEX];
    (void)state;
    crypto_token_secret(s);
    crypto_token_verifier(k1, 's', "u1", s, v1);
    crypto_token_verifier(k1, 's', "u1", s, v2);
    assert_string_equal(v1, v2);
    assert_int_equal(strlen(v1), 64);
    crypto_token_verifier(k1, 't', "u1", s, v2);
    assert_string_not_equal(v1, v2);
    crypto_token_verifier(k1, 's', "u2", s, v2);
    assert_string_not_equal(v1, v2);
    assert_int_equal(crypto_keys_new("another-core-secret-012", "cookie-secret-0123456789", "", &k2, NULL), CH_OK);
    crypto_token_verifier(k2, 's', "u1", s, v2);
    assert_string_not_equal(v1, v2);
    crypto_keys_free(k1);
    crypto_keys_free(k2);
}

static void
cookie_cases(const char *enc)
{
    struct crypto_keys *k = keys(enc);
    unsigned char s[CRYPTO_TOKEN_SECRET], s2[CRYPTO_TOKEN_SECRET];
    char uid[65], *c;
    int64_t exp = 0;

    crypto_token_secret(s);
    c = crypto_cookie_seal(k, "someuser", s, 2000);
    assert_non_null(c);
    assert_int_equal(crypto_cookie_open(k, c, 1000, uid, s2, &exp), CH_OK);
    assert_string_equal(uid, "someuser");
    assert_memory_equal(s, s2, sizeof s);
    assert_int_equal(exp, 2000);
    assert_int_equal(crypto_cookie_open(k, c, 2000, uid, s2, NULL), CH_EAUTH); /* expired */
    if (*enc)
        assert_null(strstr(c, "someuser")); /* not readable */
    /* every single flipped character is refused */
    for (size_t i = 0; c[i]; i++) {
        char *t = strdup(c);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        if (crypto_cookie_open(k, t, 1000, uid, s2, NULL) != CH_EAUTH)
            fail_msg("tampered cookie accepted (position %zu)", i);
        free(t);
    }
    assert_int_equal(crypto_cookie_open(k, "", 1000, uid, s2, NULL), CH_EAUTH);
    assert_int_equal(crypto_cookie_open(k, "!!!", 1000, uid, s2, NULL), CH_EAUTH);
    free(c);
    crypto_keys_free(k);
}

static void
test_cookie_signed(void **state)
{
    (void)state;
    cookie_cases("");
}

static void
test_cookie_encrypted(void **state)
{
    (void)state;
    cookie_cases("encryption-secret-0123456789");
}

static void
test_cookie_keys_must_match(void **state)
{
    struct crypto_keys *a = keys(""), *b = keys("enc-secret-0123456789"), *c = NULL;
    unsigned char s[CRYPTO_TOKEN_SECRET], s2[CRYPTO_TOKEN_SECRET];
    char uid[65], *plain, *sealed;
    (void)state;
    crypto_token_secret(s);
    plain = crypto_cookie_seal(a, "u", s, 2000);
    sealed = crypto_cookie_seal(b, "u", s, 2000);
    assert_int_equal(crypto_cookie_open(b, plain, 1000, uid, s2, NULL), CH_EAUTH); /* encryption now required */
    assert_int_equal(crypto_cookie_open(a, sealed, 1000, uid, s2, NULL), CH_EAUTH);
    assert_int_equal(crypto_keys_new("core-secret-0123456789", "other-cookie-secret-01", "", &c, NULL), CH_OK);
    assert_int_equal(crypto_cookie_open(c, plain, 1000, uid, s2, NULL), CH_EAUTH);
    free(plain);
    free(sealed);
    crypto_keys_free(a);
    crypto_keys_free(b);
    crypto_keys_free(c);
}

static void
test_password_hash_verify_rehash(void **state)
{
    char h[CRYPTO_PWHASH_LEN];
    (void)state;
    assert_int_equal(crypto_pwhash_hash(CRYPTO_PW_OWASP, "hunter22", 8, h), CH_OK);
    assert_memory_equal(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31);
    assert_true(crypto_pwhash_verify(h, "hunter22", 8));
    assert_false(crypto_pwhash_verify(h, "hunter23", 8));
    assert_false(crypto_pwhash_verify("$2b$10$notourformat", "hunter22", 8));
    assert_false(crypto_pwhash_needs_rehash(h, CRYPTO_PW_OWASP));
    assert_true(crypto_pwhash_needs_rehash(h, CRYPTO_PW_INTERACTIVE));
    assert_int_equal(crypto_pwcost_parse("interactive"), CRYPTO_PW_INTERACTIVE);
    assert_int_equal(crypto_pwcost_parse("bogus"), -1);
}

/* base32 and CRC-16/XMODEM written here independently of lib/crypto/nkey.c */
static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static void
b32(const unsigned char *in, size_t n, char *out)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | in[i];
        for (bits += 8; bits >= 5; bits -= 5)
            out[o++] = B32[(buf >> (bits - 5)) & 31];
    }
    if (bits)
        out[o++] = B32[(buf << (5 - bits)) & 31];
    out[o] = 0;
}

static unsigned
crc16(const unsigned char *p, size_t n)
{
    unsigned crc = 0;
    while (n--)
        for (int i = (crc ^= (unsigned)*p++ << 8, 0); i < 8; i++)
            crc = ((crc << 1) ^ ((crc & 0x8000) ? 0x1021 : 0)) & 0xFFFF;
    return crc;
}

static void
test_nkey_public_key_verifies_nats_signatures(void **state)
{
    unsigned char raw[36], pk[32];
    char seed[80], pub[57], bad[80];
    unsigned char *sig = NULL;

    unsigned c;
    (void)state;
    raw[0] = 0x90 | (160 >> 5); /* 'S' seed prefix, then the 'U' user type */
    raw[1] = (unsigned char)((160 & 31) << 3);
    randombytes_buf(raw + 2, 32);
    c = crc16(raw, 34);
    raw[34] = (unsigned char)(c & 0xFF);
    raw[35] = (unsigned char)(c >> 8);
    b32(raw, 36, seed);
    assert_memory_equal(seed, "SU", 2);
    assert_int_equal(crypto_nkey_public(seed, pub, NULL), CH_OK);
    assert_int_equal(pub[0], 'U');
    assert_int_equal(strlen(pub), 56);
    /* our signature of a nonce must verify with the public key we derived, and with libsodium's own key */
    assert_int_equal(crypto_nkey_sign(seed, (const unsigned char *)"nonce-123", 9, &sig, NULL), CH_OK);

    {
        unsigned char epk[32], esk[64];
        crypto_sign_seed_keypair(epk, esk, raw + 2);
        assert_int_equal(crypto_sign_verify_detached(sig, (const unsigned char *)"nonce-123", 9, epk), 0);
    }
    {
        unsigned char dec[35];
        unsigned buf = 0;
        int bits = 0;
        size_t n = 0;
        for (const char *p = pub; *p; p++) {
            buf = (buf << 5) | (unsigned)(strchr(B32, *p) - B32);
            if ((bits += 5) >= 8)
                dec[n++] = (unsigned char)(buf >> (bits -= 8));
        }
        assert_int_equal(n, 35);
        memcpy(pk, dec + 1, 32);
    }
    assert_int_equal(crypto_sign_verify_detached(sig, (const unsigned char *)"nonce-123", 9,
                                                 pk), 0);
    free(sig);
    strcpy(bad, seed);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    assert_int_equal(crypto_nkey_public(bad, pub, NULL), CH_EINVAL);
    assert_int_equal(crypto_nkey_public("SUgarbage", pub, NULL), CH_EINVAL);
    raw[1] = (unsigned char)((176 & 31) << 3); /* 'W'... not a user seed */
    c = crc16(raw, 34);
    raw[34] = (unsigned char)(c & 0xFF);
    raw[35] = (unsigned char)(c >> 8);
    b32(raw, 36, bad);
    assert_int_equal(crypto_nkey_public(bad, pub, NULL), CH_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secrets_are_random_base64url),
        cmocka_unit_test(test_bearer_round_trip_and_malformed),
        cmocka_unit_test(test_verifier_depends_on_key_kind_uid_secret),
        cmocka_unit_test(test_cookie_signed),
        cmocka_unit_test(test_cookie_encrypted),
        cmocka_unit_test(test_cookie_keys_must_match),
        cmocka_unit_test(test_password_hash_verify_rehash),
        cmocka_unit_test(test_nkey_public_key_verifies_nats_signatures),
    };
    assert_int_equal(crypto_init(), CH_OK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
