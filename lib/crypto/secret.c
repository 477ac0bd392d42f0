/* SPDX-License-Identifier: MIT */
/* Random secrets and libsodium start-up. Any thread after crypto_init(). */
#include <sodium.h>

#include "crypto/crypto.h"

enum ch_status
crypto_init(void)
{
    return sodium_init() < 0 ? CH_EINTERNAL : CH_OK;
}

void
crypto_secret_new(char out[CRYPTO_SECRET_LEN + 1])
{
    unsigned char raw[32];

    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, CRYPTO_SECRET_LEN + 1, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}
