/* SPDX-License-Identifier: MIT */
/*
 * P-256 keys as bytes and base64url, for the files of lib/push. nettle keeps points and scalars as GMP limbs; the
 * wire formats are fixed-size big-endian (RFC 8291 §3.1, RFC 8292 §3.2), converted here and nowhere else. The
 * curve arithmetic itself (on-curve checks, multiplication) is nettle's. Pure; any thread after crypto_init().
 */
#include <gmp.h>
#include <nettle/bignum.h>
#include <sodium.h>
#include <string.h>

#include "crypto/crypto.h"
#include "push/push_int.h"

void
push_random(void *ctx, size_t len, uint8_t *dst)
{
    (void)ctx;
    randombytes_buf(dst, len);
}

/* mpz_clear after zeroing the limbs: they may have held a private scalar or a shared secret. */
static void
mpz_wipe(mpz_t z)
{
    size_t n = mpz_size(z);

    if (n)
        sodium_memzero(mpz_limbs_modify(z, (mp_size_t)n), n * sizeof(mp_limb_t));
    mpz_clear(z);
}

bool
push_point_set(struct ecc_point *p, const unsigned char in[PUSH_P256_POINT])
{
    mpz_t x, y;
    bool ok;

    if (in[0] != 0x04) /* uncompressed only: that is what browsers send and RFC 8291 requires */
        return false;
    mpz_init(x);
    mpz_init(y);
    nettle_mpz_set_str_256_u(x, 32, in + 1);
    nettle_mpz_set_str_256_u(y, 32, in + 33);
    ok = ecc_point_set(p, x, y) == 1; /* refuses coordinates >= p and points off the curve */
    mpz_clear(x);
    mpz_clear(y);
    return ok;
}

void
push_point_bytes(const struct ecc_point *p, unsigned char out[PUSH_P256_POINT])
{
    mpz_t x, y;

    mpz_init(x);
    mpz_init(y);
    ecc_point_get(p, x, y);
    out[0] = 0x04;
    nettle_mpz_get_str_256(32, out + 1, x);
    nettle_mpz_get_str_256(32, out + 33, y);
    mpz_clear(x);
    mpz_clear(y);
}

bool
push_scalar_set(struct ecc_scalar *s, const unsigned char in[PUSH_P256_SCALAR])
{
    mpz_t z;
    bool ok;

    mpz_init(z);
    nettle_mpz_set_str_256_u(z, PUSH_P256_SCALAR, in);
    ok = ecc_scalar_set(s, z) == 1; /* 0 < z < q */
    mpz_wipe(z);
    return ok;
}

void
push_scalar_bytes(const struct ecc_scalar *s, unsigned char out[PUSH_P256_SCALAR])
{
    mpz_t z;

    mpz_init(z);
    ecc_scalar_get(s, z);
    nettle_mpz_get_str_256(PUSH_P256_SCALAR, out, z);
    mpz_wipe(z);
}

void
push_scalar_wipe(struct ecc_scalar *s)
{
    if (s->p)
        sodium_memzero(s->p, (size_t)ecc_size(s->ecc) * sizeof(mp_limb_t));
    ecc_scalar_clear(s);
}

void
push_b64url(const unsigned char *in, size_t len, char *out, size_t cap)
{
    sodium_bin2base64(out, cap, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

enum ch_status
push_b64_exact(const char *in, unsigned char *out, size_t want, const char *field, const char *what,
               struct ch_err *err)
{
    unsigned char buf[128]; /* room for more than any key we take, so a long one is reported by its length */
    size_t n = 0;

    if (!in || !*in)
        return ch_err_set(err, CH_EINVAL, field, "%s: missing (%s)", field, what);
    if (strlen(in) > 4 * sizeof buf / 3 || !crypto_base64_decode_any(in, strlen(in), buf, sizeof buf, &n))
        return ch_err_set(err, CH_EINVAL, field, "%s: not base64url (%s)", field, what);
    if (n != want) {
        sodium_memzero(buf, sizeof buf);
        return ch_err_set(err, CH_EINVAL, field, "%s: %zu bytes where %s has %zu", field, n, what, want);
    }
    memcpy(out, buf, want);
    sodium_memzero(buf, sizeof buf);
    return CH_OK;
}
