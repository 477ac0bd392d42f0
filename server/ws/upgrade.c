/* SPDX-License-Identifier: MIT */
/*
 * GET /api/realtime: the WebSocket handshake (RFC 6455 §4.2), which wslay leaves to us. Checks, in order:
 * a GET with Upgrade: websocket and Connection: upgrade (else 400), version 13 (else 426 naming 13), a key that
 * is 16 bytes of base64 (else 400); credentials: a bearer header, or a session cookie whose request comes from our
 * own Origin (cross-site → 403 before upgrading), or none (the client then sends a hello with a token); room for
 * another socket (else 503). MHD worker threads.
 */
#include "ws/upgrade.h"

#include <nettle/sha1.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "ws/hub.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct pending {
    struct hub *hub;
    bool authed;
    struct principal who;
};

static void
adopt(void *cls, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra, size_t len)
{
    struct pending *p = cls;

    hub_adopt(p->hub, fd, urh, extra, len, p->authed ? &p->who : NULL);
    sodium_memzero(p, sizeof *p);
    free(p);
}

static void
abandon(void *cls)
{
    struct pending *p = cls;

    hub_release(p->hub);
    sodium_memzero(p, sizeof *p);
    free(p);
}

/* Does a comma-separated header value contain token (case-insensitive)? */
static bool
has_token(const char *v, const char *token)
{
    size_t n = strlen(token);

    while (v && *v) {
        while (*v == ' ' || *v == ',')
            v++;
        size_t len = strcspn(v, ",");
        while (len > 0 && v[len - 1] == ' ')
            len--;
        if (len == n && strncasecmp(v, token, n) == 0)
            return true;
        v += strcspn(v, ",");
    }
    return false;
}

void
ws_upgrade(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    const char *key = http_req_header(r, "Sec-WebSocket-Key");
    const char *version = http_req_header(r, "Sec-WebSocket-Version");
    unsigned char raw[32], digest[SHA1_DIGEST_SIZE];
    char accept[64];
    size_t rawlen = 0;
    struct sha1_ctx sha;
    struct pending *p;
    struct ch_err err = { 0 };
    enum ch_status st;

    if (!env->hub || atomic_load(&env->draining)) {
        http_reply_errorf(r, CH_EUNAVAIL, "realtime is not available right now");
        return;
    }
    if (!has_token(http_req_header(r, "Upgrade"), "websocket") ||
        !has_token(http_req_header(r, "Connection"), "upgrade")) {
        http_reply_status(r, 400, "invalid_argument", "this endpoint speaks WebSocket: send Upgrade: websocket");
        return;
    }
    if (!version || strcmp(version, "13") != 0) {
        http_reply_status(r, 426, "invalid_argument", "unsupported WebSocket version; use 13");
        http_reply_header(r, "Sec-WebSocket-Version", "13");
        return;
    }
    if (!key || sodium_base642bin(raw, sizeof raw, key, strlen(key), NULL, &rawlen, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 ||
        rawlen != 16) {
        http_reply_status(r, 400, "invalid_argument", "Sec-WebSocket-Key must be 16 bytes in base64");
        return;
    }
    if (!(p = calloc(1, sizeof *p))) {
        http_reply_errorf(r, CH_ENOMEM, "out of memory");
        return;
    }
    p->hub = env->hub;
    if (api_has_bearer(r) || api_session_cookie(r, env)) {
        /* a cookie rides along with any page's request: only our own pages may use it here */
        if (!api_has_bearer(r) && !api_same_origin(r, env)) {
            free(p);
            http_reply_errorf(r, CH_EPERM, "cross-site WebSocket refused: Origin must be %s", env->public_origin);
            return;
        }
        if ((st = api_authenticate(env, r, &p->who, &err)) != CH_OK) {
            sodium_memzero(p, sizeof *p);
            free(p);
            http_reply_error(r, st, &err);
            return;
        }
        p->authed = true;
    }
    if (!hub_reserve(env->hub)) {
        sodium_memzero(p, sizeof *p);
        free(p);
        http_reply_errorf(r, CH_EUNAVAIL, "too many realtime connections on this server; retry later");
        return;
    }
    sha1_init(&sha);
    sha1_update(&sha, strlen(key), (const uint8_t *)key);
    sha1_update(&sha, strlen(WS_GUID), (const uint8_t *)WS_GUID);
    sha1_digest(&sha, sizeof digest, digest);
    sodium_bin2base64(accept, sizeof accept, digest, sizeof digest, sodium_base64_VARIANT_ORIGINAL);
    http_reply_header(r, "Upgrade", "websocket");
    http_reply_header(r, "Sec-WebSocket-Accept", accept);
    http_reply_upgrade(r, adopt, abandon, p);
}
