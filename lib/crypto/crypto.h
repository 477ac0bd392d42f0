/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Crypto wrappers named for what they do; libsodium only. crypto_init() must run once before any other call
 * (app start-up, or a test's main). Everything else is thread-safe.
 */
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

/* base64url without padding of 32 random bytes: 43 characters + NUL. */
#define CRYPTO_SECRET_LEN 43

/* Initialise libsodium. CH_EINTERNAL if the library cannot initialise (no entropy source). */
enum ch_status crypto_init(void);

/* A fresh random secret (32 bytes from the OS CSPRNG) as base64url text into out[CRYPTO_SECRET_LEN + 1]. */
void crypto_secret_new(char out[CRYPTO_SECRET_LEN + 1]);

/* The NATS NKey public key ("U...", 56 characters) for a user seed ("SU..."), into pub[57].
 * CH_EINVAL if the seed is malformed (bad base32, checksum or prefix). */
enum ch_status crypto_nkey_public(const char *seed, char pub[57], struct ch_err *err);
