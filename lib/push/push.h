/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Web Push, the sending half (issue #16): VAPID keys and their signed Authorization header (RFC 8292), payload
 * encryption with the aes128gcm content coding (RFC 8291 over RFC 8188), and one POST to a subscription's
 * endpoint. Every primitive is nettle/hogweed's (P-256 ECDH and ECDSA, HKDF-SHA-256, AES-128-GCM); randomness is
 * libsodium's. Subscriptions, their storage and when to notify belong to the callers.
 *
 * Threads: after crypto_init(), every function may be called from any thread. A struct push_vapid is read-only
 * once made, so one may be shared by every thread. Nothing here logs; errors travel in struct ch_err.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define PUSH_PRIVATE_KEY_B64 43  /* a P-256 private scalar (32 bytes) as base64url, no padding */
#define PUSH_PUBLIC_KEY_B64 87   /* an uncompressed P-256 point (65 bytes) as base64url, no padding */
#define PUSH_SECRET_LEN 32       /* input of push_vapid_derive() */
#define PUSH_PAYLOAD_MAX 3993    /* RFC 8291 §4: a 4096-byte body less the 86-byte header, tag and delimiter */
#define PUSH_TTL_MAX (24 * 3600) /* longest TTL we ask a push service to hold a message for, in seconds */
#define PUSH_VAPID_VALIDITY (12 * 3600) /* a VAPID token's lifetime (RFC 8292 §2 allows at most 24 h) */

/* ---- VAPID keys (vapid.c) ---- */

/* A P-256 key pair that identifies this server to push services. Every process must use the same pair: browsers
 * bind a subscription to the public key given as applicationServerKey. Opaque, immutable once made. */
struct push_vapid;

/* A fresh random key pair. *out is the caller's (push_vapid_free). CH_EINTERNAL only if the library fails. */
enum ch_status push_vapid_generate(struct push_vapid **out, struct ch_err *err);
/* The key pair derived from a 32-byte secret (HKDF-SHA-256, then the first candidate scalar in range), so that
 * processes configured with the same secret agree without storing anything. *out is the caller's. */
enum ch_status push_vapid_derive(const unsigned char secret[PUSH_SECRET_LEN], struct push_vapid **out,
                                 struct ch_err *err);
/* A stored key pair: the private scalar as base64url (32 bytes) and, if public_b64 is not NULL, the public key
 * (65 bytes), which must be the one the private key gives. CH_EINVAL names which is malformed or that they do
 * not match; a scalar of zero or not below the group order is refused. *out is the caller's. */
enum ch_status push_vapid_parse(const char *private_b64, const char *public_b64, struct push_vapid **out,
                                struct ch_err *err);
void push_vapid_free(struct push_vapid *k);

/* The private scalar as base64url, for storing. out is written in full and NUL-terminated; it is a secret. */
void push_vapid_private(const struct push_vapid *k, char out[PUSH_PRIVATE_KEY_B64 + 1]);
/* The public key as base64url: what browsers take as applicationServerKey. Borrowed; lives as long as k. */
const char *push_vapid_public(const struct push_vapid *k);

/* The Authorization header value for a POST to endpoint (RFC 8292 §3): "vapid t=<JWT>, k=<public key>". The JWT
 * is {"typ":"JWT","alg":"ES256"}.{"aud":<endpoint's origin>,"exp":now+12h,"sub":subject}, signed with ES256 (raw
 * r||s). subject is a "mailto:" or "https:" contact for the push service's operators. CH_EINVAL for an endpoint
 * that is not an http(s) URL or a bad subject. *out is the caller's, freed with free(). */
enum ch_status push_vapid_header(const struct push_vapid *k, const char *endpoint, const char *subject,
                                 int64_t now_unix_s, char **out, struct ch_err *err);

/* ---- payload encryption (encrypt.c) ---- */

/* Fixed inputs that make an encryption reproducible. Only tests pass one (RFC 8291 Appendix A): reusing a salt or
 * an ephemeral key with a real subscription breaks the encryption. */
struct push_enc_fixed {
    unsigned char as_private[32]; /* the application server's ephemeral ECDH private key */
    unsigned char salt[16];
};

/* Encrypt len bytes (at most PUSH_PAYLOAD_MAX) for a subscription with the aes128gcm content coding: one record
 * of size 4096, padding delimiter 0x02 and no further padding, a header of salt || rs || 65 || ephemeral public
 * key. p256dh (the browser's P-256 public key, 65 bytes uncompressed) and auth (its 16-byte secret) are the
 * subscription's keys as base64url. fixed is NULL except in tests. CH_EINVAL names a malformed key (bad base64,
 * wrong length, a point not on the curve) or a payload too long. *body (*body_len bytes) is the caller's, freed
 * with free(). */
enum ch_status push_encrypt(const char *p256dh, const char *auth, const void *plain, size_t len,
                            const struct push_enc_fixed *fixed, unsigned char **body, size_t *body_len,
                            struct ch_err *err);

/* The subscription keys' checks push_encrypt makes: p256dh a P-256 point on the curve (65 bytes uncompressed), auth
 * 16 bytes, both base64 (url-safe or standard, padded or not). CH_EINVAL naming p256dh or auth. */
enum ch_status push_keys_check(const char *p256dh, const char *auth, struct ch_err *err);

/* ---- sending (send.c) ---- */

enum push_urgency { PUSH_URGENCY_HIGH = 0, PUSH_URGENCY_NORMAL, PUSH_URGENCY_LOW, PUSH_URGENCY_VERY_LOW };

/* What every message from this server shares. */
struct push_config {
    const struct push_vapid *vapid;
    const char *subject;   /* "mailto:ops@example.com" or "https://chat.example.com" (VAPID "sub") */
    long timeout_ms;       /* the whole request; 0: 10 s. Connecting is capped at 5 s within it */
    bool allow_loopback;   /* TESTS ONLY: allow 127.0.0.0/8 and ::1, over http:// too */
};

/* One message for one subscription. */
struct push_msg {
    const char *endpoint;  /* the subscription's endpoint URL (https://, on a public address) */
    const char *p256dh;    /* the subscription's keys, base64url */
    const char *auth;
    const void *payload;   /* at most PUSH_PAYLOAD_MAX bytes; encrypted here */
    size_t len;
    int ttl_s;             /* 0..PUSH_TTL_MAX: how long the push service keeps it for an offline browser */
    enum push_urgency urgency;
    const char *topic;     /* NULL, or 1-32 base64url characters: a newer message with it replaces an undelivered one */
};

/* The checks push_send makes before it connects, for a subscription about to be stored: the endpoint an https://
 * URL of at most 4096 bytes without user or password (http:// and loopback only with allow_loopback) whose host,
 * if written as an address, is public; the keys as push_keys_check. CH_EINVAL naming endpoint, p256dh or auth. A
 * name that resolves to a private address is only found out when sending (and refused then). */
enum ch_status push_subscription_check(const struct push_config *cfg, const char *endpoint, const char *p256dh,
                                       const char *auth, struct ch_err *err);

/* Encrypt m and POST it to its endpoint with the VAPID header. Blocks up to cfg->timeout_ms; call it from a worker
 * thread. The endpoint must be https:// and every address it connects to public: loopback, private, link-local,
 * shared, documentation, multicast and reserved ranges are refused, both as literals (before anything is sent)
 * and when a name resolves to one (checked on each address just before its socket opens, so DNS rebinding gains
 * nothing). Proxies from the environment are ignored and redirects are not followed.
 * *http_status is always written: the push service's answer, or 0 when none came. Returns
 *   CH_OK          2xx: accepted;
 *   CH_ENOTFOUND   404 or 410: the subscription is gone, delete it;
 *   CH_EUNAVAIL    no answer (DNS, connect, TLS, timeout), 429 or 5xx: try again later;
 *   CH_EINVAL      a bad endpoint, key or payload, a 3xx, or another 4xx (413: too large; 401/403: the
 *                  subscription was made for another VAPID key).
 * err's text carries the push service's reason (the start of its answer) where there is one. */
enum ch_status push_send(const struct push_config *cfg, const struct push_msg *m, long *http_status,
                         struct ch_err *err);
