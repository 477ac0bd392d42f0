/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Crypto wrappers named for what they do: libsodium, except SHA-256 over file bytes, which is nettle's (it uses the
 * CPU's SHA instructions: 1,228 MB/s against libsodium's 188 MB/s on this machine's 25 MB test; uploads hash every
 * byte twice). crypto_init() must run once before any other call (app start-up, or a test's main). Everything
 * else is thread-safe.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* base64url without padding of 32 random bytes: 43 characters + NUL. */
#define CRYPTO_SECRET_LEN 43

/* Initialise libsodium. CH_EINTERNAL if the library cannot initialise (no entropy source). */
enum ch_status crypto_init(void);

/* A fresh random secret (32 bytes from the OS CSPRNG) as base64url text into out[CRYPTO_SECRET_LEN + 1]. */
void crypto_secret_new(char out[CRYPTO_SECRET_LEN + 1]);

/* ---- digests and encodings (encoding.c) ---- */

#define CRYPTO_SHA256_HEX 65 /* 64 lowercase hex digits + NUL */

/* SHA-256 over bytes that arrive in pieces. Opaque; on the stack is fine. */
struct crypto_sha256 {
    _Alignas(16) unsigned char opaque[160];
};
void crypto_sha256_init(struct crypto_sha256 *s);
void crypto_sha256_update(struct crypto_sha256 *s, const void *data, size_t len);
void crypto_sha256_final(struct crypto_sha256 *s, unsigned char out[32]);
/* SHA-256 of data as lowercase hex. */
void crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX]);
/* True if s is exactly 64 lowercase hex digits (how clients send a SHA-256). */
bool crypto_sha256_hex_valid(const char *s);
/* Decode base64 in any of the spellings programs use (standard or URL-safe alphabet, padded or not) into out (at
 * most max bytes); false if it is none of them. */
bool crypto_base64_decode_any(const char *in, size_t inlen, unsigned char *out, size_t max, size_t *len);

/* The NATS NKey public key ("U...", 56 characters) for a user seed ("SU..."), into pub[57].
 * CH_EINVAL if the seed is malformed (bad base32, checksum or prefix). */
enum ch_status crypto_nkey_public(const char *seed, char pub[57], struct ch_err *err);
/* Ed25519 signature of msg with a user seed (the NATS nonce challenge). *sig (64 bytes) is the caller's, freed
 * with free(). We sign ourselves: Debian's libnats 3.4.1 nats_Sign() rejects every seed on signed-char
 * platforms (it compares a char with an int prefix constant). */
enum ch_status crypto_nkey_sign(const char *seed, const unsigned char *msg, size_t len, unsigned char **sig,
                                struct ch_err *err);

/* ---- password hashing (pwhash.c): argon2id through libsodium ---- */

/* Cost presets: OWASP's minimum (19 MiB, t=2), libsodium INTERACTIVE (64 MiB, t=2), MODERATE (256 MiB, t=3),
 * SENSITIVE (1 GiB, t=4). */
enum crypto_pwcost { CRYPTO_PW_OWASP, CRYPTO_PW_INTERACTIVE, CRYPTO_PW_MODERATE, CRYPTO_PW_SENSITIVE };

#define CRYPTO_PWHASH_LEN 128 /* crypto_pwhash_STRBYTES */

/* Parse a preset name ("owasp", "interactive", ...); -1 if unknown. */
int crypto_pwcost_parse(const char *s);
/* Hash password into out ("$argon2id$v=19$m=..."). CH_ENOMEM when the memory for the hash is not available. */
enum ch_status crypto_pwhash_hash(enum crypto_pwcost cost, const char *pw, size_t len,
                                  char out[CRYPTO_PWHASH_LEN]);
/* True if password matches hash (constant time in libsodium). */
bool crypto_pwhash_verify(const char *hash, const char *pw, size_t len);
/* True if hash was made with other parameters than cost (rehash on next successful login). */
bool crypto_pwhash_needs_rehash(const char *hash, enum crypto_pwcost cost);

/* ---- tokens, verifiers and cookies (token.c) ---- */

#define CRYPTO_TOKEN_SECRET 32
#define CRYPTO_VERIFIER_HEX 65 /* 64 hex digits + NUL */

/* Keys derived from the configured secrets. Held in guarded libsodium memory. */
struct crypto_keys;

/* Derive the keys: verifier MACs from core_secret, cookie MACs from cookie_signing, and (when cookie_encryption
 * is non-empty) cookie encryption. *out is the caller's (crypto_keys_free). */
enum ch_status crypto_keys_new(const char *core_secret, const char *cookie_signing, const char *cookie_encryption,
                               struct crypto_keys **out, struct ch_err *err);
void crypto_keys_free(struct crypto_keys *k);

/* A fresh random credential secret. */
void crypto_token_secret(unsigned char secret[CRYPTO_TOKEN_SECRET]);

/* The verifier stored in place of a credential: hex(HMAC-SHA256(key, kind || uid || secret)). */
void crypto_token_verifier(const struct crypto_keys *k, char kind, const char *uid,
                           const unsigned char secret[CRYPTO_TOKEN_SECRET], char hex[CRYPTO_VERIFIER_HEX]);

/* A bearer credential "chatto_<kind>_<uid>_<base64url secret>"; the caller frees the string. */
char *crypto_bearer_format(char kind, const char *uid, const unsigned char secret[CRYPTO_TOKEN_SECRET]);
/* Split a bearer credential; CH_EAUTH if malformed. uid must hold 65 bytes. */
enum ch_status crypto_bearer_parse(const char *s, char *kind, char uid[65], unsigned char secret[CRYPTO_TOKEN_SECRET]);

/* The session cookie value: version, expiry, uid and secret, MACed with the signing key and (if configured)
 * encrypted. The caller frees the string. */
char *crypto_cookie_seal(const struct crypto_keys *k, const char *uid, const unsigned char secret[CRYPTO_TOKEN_SECRET],
                         int64_t expires_unix_s);
/* Check and open a cookie value: CH_EAUTH when it was altered, is malformed or has expired at now_unix_s. */
enum ch_status crypto_cookie_open(const struct crypto_keys *k, const char *value, int64_t now_unix_s, char uid[65],
                                  unsigned char secret[CRYPTO_TOKEN_SECRET], int64_t *expires_unix_s);
