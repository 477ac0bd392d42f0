/* SPDX-License-Identifier: MIT */
#pragma once
/* Shared by the files of lib/push only: P-256 conversions, base64url, and the endpoint URL as we read it. */
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "push/push.h"

#define PUSH_P256_POINT 65  /* 0x04 || X || Y */
#define PUSH_P256_SCALAR 32

/* nettle_random_func over libsodium's CSPRNG (thread-safe, no state of ours). */
void push_random(void *ctx, size_t len, uint8_t *dst);

/* in (65 bytes) into p (initialised for P-256); false unless it is 0x04 || X || Y with X, Y < p on the curve. */
bool push_point_set(struct ecc_point *p, const unsigned char in[PUSH_P256_POINT]);
void push_point_bytes(const struct ecc_point *p, unsigned char out[PUSH_P256_POINT]);
/* in (32 bytes, big-endian) into s; false if it is 0 or not below the group order. */
bool push_scalar_set(struct ecc_scalar *s, const unsigned char in[PUSH_P256_SCALAR]);
void push_scalar_bytes(const struct ecc_scalar *s, unsigned char out[PUSH_P256_SCALAR]);
/* Zero a scalar's limbs, then free them. */
void push_scalar_wipe(struct ecc_scalar *s);

/* base64url without padding into out (cap >= 4 * ceil(len / 3) + 1). */
void push_b64url(const unsigned char *in, size_t len, char *out, size_t cap);
/* Decode base64 (url-safe or standard, padded or not) that must hold exactly want bytes; CH_EINVAL naming field
 * and what otherwise. */
enum ch_status push_b64_exact(const char *in, unsigned char *out, size_t want, const char *field, const char *what,
                              struct ch_err *err);

/* An endpoint URL, read with libcurl's URL parser. */
struct push_url {
    bool https;
    char host[256];   /* lowercase; an IPv6 literal without brackets */
    bool ipv6;        /* host is an IPv6 literal */
    long port;        /* explicit or the scheme's default */
    char origin[300]; /* scheme://host[:port], the port only when not the default: VAPID's "aud" */
};

/* Parse endpoint: http(s) only, a host, no user or password, at most 4096 bytes. CH_EINVAL otherwise. */
enum ch_status push_url_parse(const char *endpoint, struct push_url *u, struct ch_err *err);
/* curl_global_init, once per process (idempotent, thread-safe). CH_EINTERNAL if it failed. */
enum ch_status push_curl_init(struct ch_err *err);
