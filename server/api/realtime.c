/* SPDX-License-Identifier: MIT */
/*
 * GET /api/realtime: the WebSocket opening handshake (RFC 6455 4.2), which wslay leaves to us, and the hand-over
 * of the socket to the transport. Checks, in order: a GET with Upgrade: websocket and Connection: upgrade (else
 * 400), version 13 (else 426 naming 13), a key that is 16 bytes of base64 (else 400); credentials: a bearer
 * header, or a session cookie whose request comes from our own Origin (cross-site → 403 before upgrading), or
 * none (the client then sends a hello with a token); room for another socket (else 503). Connection threads.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "realtime/realtime.h"
#include "ws/ws.h"

struct pending {
    struct ws *ws;
    bool authed;
    struct principal who;
    char ip[64];
};

static void
adopt(void *cls, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra, size_t len)
{
    struct pending *p = cls;

    ws_adopt(p->ws, fd, urh, extra, len, p->authed ? &p->who : NULL, p->ip);
    sodium_memzero(p, sizeof *p);
    free(p);
}

static void
abandon(void *cls)
{
    struct pending *p = cls;

    ws_release(p->ws, p->ip, p->authed ? p->who.user.id : NULL);
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
api_realtime_upgrade(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    const char *version = http_req_header(r, "Sec-WebSocket-Version");
    char accept[29];
    struct pending *p;
    struct ch_err err = { 0 };
    enum ch_status st;

    if (!env->ws || atomic_load(&env->draining)) {
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
    if (!rt_ws_accept(http_req_header(r, "Sec-WebSocket-Key"), accept)) {
        http_reply_status(r, 400, "invalid_argument", "Sec-WebSocket-Key must be 16 bytes in base64");
        return;
    }
    if (!(p = calloc(1, sizeof *p))) {
        http_reply_errorf(r, CH_ENOMEM, "out of memory");
        return;
    }
    p->ws = env->ws;
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
    snprintf(p->ip, sizeof p->ip, "%s", http_req_client_ip(r));
    const char *why = NULL;
    if ((st = ws_reserve(env->ws, p->ip, p->authed ? p->who.user.id : NULL, &why)) != CH_OK) {
        sodium_memzero(p, sizeof *p);
        free(p);
        http_reply_errorf(r, st, "%s", why);
        if (st == CH_ELIMIT)
            http_reply_header(r, "Retry-After", "10");
        return;
    }
    http_reply_header(r, "Upgrade", "websocket");
    http_reply_header(r, "Sec-WebSocket-Accept", accept);
    http_reply_upgrade(r, adopt, abandon, p);
}
