/* SPDX-License-Identifier: MIT */
/*
 * lib/crypto: random secrets, bearer credentials, verifiers, session cookies, password hashes and NATS NKeys.
 * NKey seeds are built inside the test with our own base32 and CRC-16, and the public keys are checked against
 * ones derived here from libsodium and against a known answer computed outside C.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
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

static bool
is_b64url(const char *s)
{
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *s))
            return false;
    return true;
}

static void
test_secret_new_gives_43_base64url_chars_that_differ_between_calls(void **state)
{
    char prev[CRYPTO_SECRET_LEN + 1] = "";
    (void)state;
    for (int i = 0; i < 64; i++) {
        char a[CRYPTO_SECRET_LEN + 2];
        unsigned char raw[33];
        size_t n = 0;
        memset(a, '#', sizeof a);
        crypto_secret_new(a);
        assert_int_equal(a[CRYPTO_SECRET_LEN + 1], '#'); /* nothing past the documented size */
        assert_int_equal(strlen(a), 43);
        if (!is_b64url(a))
            fail_msg("not base64url: %s", a);
        /* it decodes to 32 bytes, not fewer: no padding and no trailing bits */
        assert_int_equal(sodium_base642bin(raw, sizeof raw, a, strlen(a), NULL, &n, NULL,
                                           sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                         0);
        assert_int_equal(n, 32);
        assert_string_not_equal(a, prev);
        memcpy(prev, a, sizeof prev);
    }
}

static void
test_bearer_round_trips_and_malformed_ones_are_refused(void **state)
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
    static const char *bad[] = { "",
                                 "chatto_",
                                 "chatto_t_",
                                 "chatto_t_u_short",
                                 "bearer_t_u_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
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
test_cookie_signed_opens_until_expiry_and_refuses_any_change(void **state)
{
    (void)state;
    cookie_cases("");
}

static void
test_cookie_encrypted_hides_uid_and_refuses_any_change(void **state)
{
    (void)state;
    cookie_cases("encryption-secret-0123456789");
}

static void
test_cookie_opens_only_with_the_keys_that_sealed_it(void **state)
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
test_password_hash_verifies_and_reports_rehash(void **state)
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

/* ---- NKeys: base32 and CRC-16/XMODEM written here independently of lib/crypto/nkey.c ---- */

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#define TYPE_USER (20 << 3)    /* 'U' */
#define TYPE_ACCOUNT (0 << 3)  /* 'A' */
#define TYPE_OPERATOR (14 << 3) /* 'O' */
#define TYPE_SERVER (13 << 3)  /* 'N' */
#define TYPE_SEED (18 << 3)    /* 'S' */

/* RFC 4648 base32, no padding; bits gathered MSB first */
static void
b32(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;

    for (size_t bit = 0; bit < n * 8; bit += 5) {
        unsigned v = 0;
        for (size_t k = 0; k < 5; k++) {
            size_t b = bit + k;
            v = (v << 1) | (b < n * 8 ? (in[b / 8] >> (7 - b % 8)) & 1u : 0u);
        }
        out[o++] = B32[v];
    }
    out[o] = '\0';
}

/* CRC-16/XMODEM bit by bit: poly 0x1021, init 0, no reflection */
static unsigned
crc16(const unsigned char *p, size_t n)
{
    unsigned crc = 0;

    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xFFFF : (crc << 1) & 0xFFFF;
    }
    return crc;
}

/* A seed string of the given key type: [0x90 | type>>5] [type<<3 & 0xff] raw[32] crc16 LE. */
static void
make_seed(unsigned type, const unsigned char raw[32], char out[59])
{
    unsigned char b[36];
    unsigned c;

    b[0] = (unsigned char)(TYPE_SEED | (type >> 5));
    b[1] = (unsigned char)((type & 31) << 3);
    memcpy(b + 2, raw, 32);
    c = crc16(b, 34);
    b[34] = (unsigned char)(c & 0xFF);
    b[35] = (unsigned char)(c >> 8);
    b32(b, 36, out);
}

/* The public key string the NKeys format gives for a raw seed, derived with libsodium directly. */
static void
expected_public(const unsigned char raw[32], char out[57])
{
    unsigned char pk[32], sk[64], b[35];
    unsigned c;

    crypto_sign_seed_keypair(pk, sk, raw);
    b[0] = TYPE_USER;
    memcpy(b + 1, pk, 32);
    c = crc16(b, 33);
    b[33] = (unsigned char)(c & 0xFF);
    b[34] = (unsigned char)(c >> 8);
    b32(b, 35, out);
}

/* A known answer computed outside C (Python's `cryptography` Ed25519 and base64.b32encode): the raw seed is the
 * bytes 0, 1, ..., 31. Ed25519 is deterministic, so the signature of "nonce-123" is fixed too. */
static const char KAT_SEED[] = "SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y";
static const char KAT_PUB[] = "UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK";
static const char KAT_SIG[] = "29bd9747ccc84a3ece1b9ba5fb15b44cf53d7e31496a8310b02838eb64ae771a"
                              "ffc485bffb576920e11bf06b91aa2ca111ec3d2f34008db45af00ab5e6364300";

static void
test_nkey_seed_builder_matches_the_known_answer(void **state)
{
    unsigned char raw[32];
    char seed[59], pub[57];
    (void)state;
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)i;
    make_seed(TYPE_USER, raw, seed);
    assert_string_equal(seed, KAT_SEED); /* our test helpers agree with an outside implementation */
    expected_public(raw, pub);
    assert_string_equal(pub, KAT_PUB);
}

static void
test_nkey_public_matches_independent_derivation(void **state)
{
    unsigned char raw[32];
    char seed[59], pub[57], want[57];
    (void)state;
    memset(pub, '#', sizeof pub);
    assert_int_equal(crypto_nkey_public(KAT_SEED, pub, NULL), CH_OK);
    assert_string_equal(pub, KAT_PUB);
    for (int i = 0; i < 64; i++) {
        if (i == 0)
            memset(raw, 0, sizeof raw);
        else if (i == 1)
            memset(raw, 0xFF, sizeof raw);
        else
            randombytes_buf(raw, sizeof raw);
        make_seed(TYPE_USER, raw, seed);
        assert_int_equal(strlen(seed), 58);
        assert_memory_equal(seed, "SU", 2);
        expected_public(raw, want);
        memset(pub, '#', sizeof pub);
        assert_int_equal(crypto_nkey_public(seed, pub, NULL), CH_OK);
        assert_int_equal(pub[0], 'U');
        assert_int_equal(strlen(pub), 56);
        if (strcmp(pub, want) != 0)
            fail_msg("seed %s: public %s, want %s", seed, pub, want);
    }
}

static void
test_nkey_sign_verifies_with_the_derived_public_key(void **state)
{
    unsigned char raw[32], pk[32], sk[64], *sig = NULL, kat[64];
    char seed[59];
    const unsigned char msg[] = "nonce-123";
    (void)state;
    assert_int_equal(crypto_nkey_sign(KAT_SEED, msg, 9, &sig, NULL), CH_OK);
    assert_int_equal(sodium_hex2bin(kat, sizeof kat, KAT_SIG, strlen(KAT_SIG), NULL, NULL, NULL), 0);
    assert_memory_equal(sig, kat, 64);
    free(sig);
    sig = NULL;
    randombytes_buf(raw, sizeof raw);
    make_seed(TYPE_USER, raw, seed);
    crypto_sign_seed_keypair(pk, sk, raw);
    assert_int_equal(crypto_nkey_sign(seed, msg, 9, &sig, NULL), CH_OK);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, 9, pk), 0);
    assert_int_not_equal(crypto_sign_verify_detached(sig, (const unsigned char *)"nonce-124", 9, pk), 0);
    free(sig);
    sig = NULL;
    assert_int_equal(crypto_nkey_sign(seed, msg, 0, &sig, NULL), CH_OK); /* empty nonce still signs */
    assert_int_equal(crypto_sign_verify_detached(sig, msg, 0, pk), 0);
    free(sig);
}

static void
test_nkey_rejects_wrong_types_bad_checksums_and_garbage(void **state)
{
    unsigned char raw[32];
    char account[59], oper[59], server[59], badcrc[59], lower[59], extra[61], cut[59], padbits[59], spaced[61];
    (void)state;
    randombytes_buf(raw, sizeof raw);
    make_seed(TYPE_ACCOUNT, raw, account);
    make_seed(TYPE_OPERATOR, raw, oper);
    make_seed(TYPE_SERVER, raw, server);
    strcpy(badcrc, KAT_SEED);
    badcrc[30] = badcrc[30] == 'A' ? 'B' : 'A';
    for (size_t i = 0; i < sizeof lower; i++)
        lower[i] = (char)tolower((unsigned char)KAT_SEED[i]);
    snprintf(extra, sizeof extra, "%sA", KAT_SEED);
    snprintf(cut, sizeof cut, "%.57s", KAT_SEED);
    strcpy(padbits, KAT_SEED);
    padbits[57] = 'Z'; /* 'Y' = 11000: the last 3 bits are padding, so this only sets a padding bit */
    snprintf(spaced, sizeof spaced, "%s\n", KAT_SEED);
    const struct {
        const char *what, *seed, *msg;
    } c[] = {
        { "account seed SA...", account, "not a user NKey seed (must start with SU)" },
        { "operator seed SO...", oper, "must start with SU" },
        { "server seed SN...", server, "must start with SU" },
        { "one character changed", badcrc, "NKey seed checksum mismatch" },
        { "lower case", lower, "not an NKey seed (expected 58 base32 characters starting SU)" },
        { "a character appended", extra, "not an NKey seed" },
        { "truncated", cut, "not an NKey seed" },
        { "non-zero padding bits", padbits, "not an NKey seed" },
        { "trailing newline", spaced, "not an NKey seed" },
        { "the public key", KAT_PUB, "not an NKey seed" },
        { "empty", "", "not an NKey seed" },
        { "garbage", "SUgarbage", "not an NKey seed" },
        { "base32 has no 0, 1, 8 or 9", "SU01890189018901890189018901890189018901890189018901890189",
          "not an NKey seed" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char pub[57] = "untouched";
        unsigned char *sig = (unsigned char *)"untouched";
        struct ch_err err = { 0 };
        if (crypto_nkey_public(c[i].seed, pub, &err) != CH_EINVAL)
            fail_msg("%s: accepted by crypto_nkey_public", c[i].what);
        if (!strstr(err.msg, c[i].msg))
            fail_msg("%s: message '%s' lacks '%s'", c[i].what, err.msg, c[i].msg);
        assert_string_equal(pub, "untouched");
        if (crypto_nkey_sign(c[i].seed, (const unsigned char *)"n", 1, &sig, NULL) != CH_EINVAL)
            fail_msg("%s: accepted by crypto_nkey_sign", c[i].what);
        assert_string_equal((const char *)sig, "untouched");
    }
}

static void
test_nkey_rejects_every_single_character_change(void **state)
{
    char seed[59], pub[57];
    (void)state;
    /* CRC-16 catches every error burst of up to 16 bits, so every one-character substitution must fail */
    for (size_t i = 0; i < 58; i++)
        for (const char *a = B32; *a; a++) {
            if (*a == KAT_SEED[i])
                continue;
            strcpy(seed, KAT_SEED);
            seed[i] = *a;
            if (crypto_nkey_public(seed, pub, NULL) == CH_OK)
                fail_msg("changed position %zu to %c and it was accepted", i, *a);
        }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_new_gives_43_base64url_chars_that_differ_between_calls),
        cmocka_unit_test(test_bearer_round_trips_and_malformed_ones_are_refused),
        cmocka_unit_test(test_verifier_depends_on_key_kind_uid_secret),
        cmocka_unit_test(test_cookie_signed_opens_until_expiry_and_refuses_any_change),
        cmocka_unit_test(test_cookie_encrypted_hides_uid_and_refuses_any_change),
        cmocka_unit_test(test_cookie_opens_only_with_the_keys_that_sealed_it),
        cmocka_unit_test(test_password_hash_verifies_and_reports_rehash),
        cmocka_unit_test(test_nkey_seed_builder_matches_the_known_answer),
        cmocka_unit_test(test_nkey_public_matches_independent_derivation),
        cmocka_unit_test(test_nkey_sign_verifies_with_the_derived_public_key),
        cmocka_unit_test(test_nkey_rejects_wrong_types_bad_checksums_and_garbage),
        cmocka_unit_test(test_nkey_rejects_every_single_character_change),
    };
    assert_int_equal(crypto_init(), CH_OK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
