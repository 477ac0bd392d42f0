/* SPDX-License-Identifier: MIT */
/* argon2id password hashes (libsodium crypto_pwhash_str*). Any thread; each hash holds its memory cost. */
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "crypto/crypto.h"

static const struct {
    const char *name;
    unsigned long long ops;
    size_t mem;
} costs[] = {
    [CRYPTO_PW_OWASP] = { "owasp", 2, 19456u * 1024u },
    [CRYPTO_PW_INTERACTIVE] = { "interactive", crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE },
    [CRYPTO_PW_MODERATE] = { "moderate", crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE },
    [CRYPTO_PW_SENSITIVE] = { "sensitive", crypto_pwhash_OPSLIMIT_SENSITIVE, crypto_pwhash_MEMLIMIT_SENSITIVE },
};

int
crypto_pwcost_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof costs / sizeof costs[0]); i++)
        if (strcasecmp(s, costs[i].name) == 0)
            return i;
    return -1;
}

enum ch_status
crypto_pwhash_hash(enum crypto_pwcost cost, const char *pw, size_t len, char out[CRYPTO_PWHASH_LEN])
{
    if (crypto_pwhash_str_alg(out, pw, len, costs[cost].ops, costs[cost].mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return CH_ENOMEM;
    return CH_OK;
}

bool
crypto_pwhash_verify(const char *hash, const char *pw, size_t len)
{
    /* only our own algorithm; anything else in the record is treated as a mismatch */
    if (strncmp(hash, crypto_pwhash_argon2id_STRPREFIX, strlen(crypto_pwhash_argon2id_STRPREFIX)) != 0)
        return false;
    return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

bool
crypto_pwhash_needs_rehash(const char *hash, enum crypto_pwcost cost)
{
    return crypto_pwhash_str_needs_rehash(hash, costs[cost].ops, costs[cost].mem) != 0;
}
