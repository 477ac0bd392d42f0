/* SPDX-License-Identifier: MIT */
/* Digests and encodings several modules share: SHA-256 as hex, and base64 as other programs write it. Pure; any
 * thread after crypto_init(). */
#include <nettle/sha2.h>
#include <sodium.h>
#include <string.h>

#include "crypto/crypto.h"

_Static_assert(sizeof(struct sha256_ctx) <= sizeof(((struct crypto_sha256 *)0)->opaque), "crypto_sha256 too small");
_Static_assert(_Alignof(struct sha256_ctx) <= 16, "crypto_sha256 under-aligned");

void
crypto_sha256_init(struct crypto_sha256 *s)
{
    sha256_init((struct sha256_ctx *)s->opaque);
}

void
crypto_sha256_update(struct crypto_sha256 *s, const void *data, size_t len)
{
    sha256_update((struct sha256_ctx *)s->opaque, len, data);
}

void
crypto_sha256_final(struct crypto_sha256 *s, unsigned char out[32])
{
    sha256_digest((struct sha256_ctx *)s->opaque, SHA256_DIGEST_SIZE, out);
}

void
crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX])
{
    struct crypto_sha256 s;
    unsigned char sum[SHA256_DIGEST_SIZE];

    crypto_sha256_init(&s);
    crypto_sha256_update(&s, data, len);
    crypto_sha256_final(&s, sum);
    sodium_bin2hex(out, CRYPTO_SHA256_HEX, sum, sizeof sum);
}

bool
crypto_sha256_hex_valid(const char *s)
{
    if (!s || strlen(s) != CRYPTO_SHA256_HEX - 1)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

bool
crypto_base64_decode_any(const char *in, size_t inlen, unsigned char *out, size_t max, size_t *len)
{
    static const int variants[] = { sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                    sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING };

    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if (sodium_base642bin(out, max, in, inlen, NULL, len, NULL, variants[i]) == 0)
            return true;
    *len = 0;
    return false;
}
