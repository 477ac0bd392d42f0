/* SPDX-License-Identifier: MIT */
/*
 * NATS NKeys: derive a user's public key from its seed, so an operator only has to configure the seed.
 * Layout (public facts of the NKeys format): base32 (RFC 4648, no padding) of
 *   seed:   [0x90 | prefix>>5] [prefix<<3] raw-ed25519-seed[32] crc16[2]   ("SU..." for users)
 *   public: [prefix]           raw-ed25519-public[32]           crc16[2]   ("U..." for users)
 * where prefix 'U' is 20<<3 and crc16 is CRC-16/XMODEM (poly 0x1021, init 0), little-endian.
 * A seed is exactly 58 characters; the 2 bits left over after 36 bytes must be zero, so each seed has one
 * spelling. We sign the server nonce ourselves (see crypto.h for why not nats_Sign()). Pure; any thread.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define PREFIX_SEED (18u << 3)
#define PREFIX_USER (20u << 3)

static unsigned
crc16(const unsigned char *p, size_t n)
{
    unsigned crc = 0;

    while (n--) {
        crc ^= (unsigned)*p++ << 8;
        for (int i = 0; i < 8; i++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xFFFF : (crc << 1) & 0xFFFF;
    }
    return crc;
}

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* Decode unpadded base32; 0 on a bad character, overflow of out, or non-zero leftover bits (a string that is
 * not the canonical encoding of any byte string, such as a seed with a character appended). */
static size_t
b32_decode(const char *s, unsigned char *out, size_t cap)
{
    unsigned buf = 0;
    int bits = 0;
    size_t n = 0;

    for (; *s; s++) {
        const char *p = strchr(B32, *s);
        if (!p || !*s)
            return 0;
        buf = ((buf << 5) | (unsigned)(p - B32)) & 0xFFF;
        bits += 5;
        if (bits >= 8) {
            if (n == cap)
                return 0;
            out[n++] = (unsigned char)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    if (bits >= 5 || (buf & ((1u << bits) - 1)) != 0)
        return 0;
    return n;
}

static void
b32_encode(const unsigned char *in, size_t n, char *out)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = B32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = B32[(buf << (5 - bits)) & 31];
    out[o] = '\0';
}

/* Decode and check a user seed into the 32 raw seed bytes. */
static enum ch_status
decode_seed(const char *seed, unsigned char out[32], struct ch_err *err)
{
    unsigned char raw[64];
    size_t n = b32_decode(seed, raw, sizeof raw);
    enum ch_status st = CH_OK;
    unsigned c;

    if (n != 36) {
        st = ch_err_set(err, CH_EINVAL, NULL, "not an NKey seed (expected 58 base32 characters starting SU)");
        goto out;
    }
    c = crc16(raw, 34);
    if (raw[34] != (c & 0xFF) || raw[35] != (c >> 8)) {
        st = ch_err_set(err, CH_EINVAL, NULL, "NKey seed checksum mismatch (mistyped?)");
        goto out;
    }
    if ((raw[0] & 0xF8) != PREFIX_SEED || (((raw[0] & 7u) << 5) | (raw[1] >> 3)) != PREFIX_USER) {
        st = ch_err_set(err, CH_EINVAL, NULL, "not a user NKey seed (must start with SU)");
        goto out;
    }
    memcpy(out, raw + 2, 32);
out:
    sodium_memzero(raw, sizeof raw);
    return st;
}

enum ch_status
crypto_nkey_sign(const char *seed, const unsigned char *msg, size_t len, unsigned char **sig, struct ch_err *err)
{
    unsigned char s[32], pk[32], sk[64], *out;
    enum ch_status st;

    if ((st = decode_seed(seed, s, err)) != CH_OK)
        return st;
    crypto_sign_seed_keypair(pk, sk, s);
    out = malloc(crypto_sign_BYTES);
    if (out)
        crypto_sign_detached(out, NULL, msg, len, sk);
    sodium_memzero(s, sizeof s);
    sodium_memzero(sk, sizeof sk);
    if (!out)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    *sig = out;
    return CH_OK;
}

enum ch_status
crypto_nkey_public(const char *seed, char pub[57], struct ch_err *err)
{
    unsigned char s[32], pk[32], sk[64], enc[35];
    enum ch_status st;
    unsigned c;

    if ((st = decode_seed(seed, s, err)) != CH_OK)
        return st;
    crypto_sign_seed_keypair(pk, sk, s);
    sodium_memzero(s, sizeof s);
    sodium_memzero(sk, sizeof sk);
    enc[0] = PREFIX_USER;
    memcpy(enc + 1, pk, 32);
    c = crc16(enc, 33);
    enc[33] = (unsigned char)(c & 0xFF);
    enc[34] = (unsigned char)(c >> 8);
    b32_encode(enc, sizeof enc, pub);
    return CH_OK;
}
