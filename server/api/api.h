/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The API layer: route table, Connect dispatch and the method tables of each resource (one file per resource).
 * Handlers parse and validate their JSON input, call lib/ (model, store), and return a status plus a reply
 * object; they never touch NATS directly. They run on MHD worker threads.
 */
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "http/http.h"

#include "accounts/accounts.h"

struct cfg;
struct chat;
struct assets;
struct rt;
struct ws;
struct web;
struct store;
struct sup;

/* Everything a handler may use; owned by app.c, alive while the HTTP daemon runs. */
struct api_env {
    const struct cfg *cfg;
    struct store *store;
    struct sup *sup; /* NULL unless nats.embedded.enabled */
    struct accounts *accounts;
    struct chat *chat;
    struct assets *assets; /* uploads, files, download tickets (lib/assets) */
    struct rt *rt; /* realtime: presence, typing (lib/realtime) */
    struct ws *ws; /* the WebSocket transport the upgrade hands sockets to */
    struct web *web; /* NULL when no web client files were found */
    const char *public_url;
    const char *public_origin;
    const char *const *origin_aliases; /* NULL-terminated; loopback spellings while webserver.url is unset */
    const char *cookie_name;   /* "__Host-chatto_session" over https, else "chatto_session" */
    bool cookie_secure;
    const char *version;
    struct log_limit *log_limit; /* for lines a client can cause at will (throttled logins and registrations) */
    struct ratelimit *writes, *bot_writes; /* message writes per user (limits.*messages*), this process */
    atomic_bool draining;
};

struct api_ctx {
    struct api_env *env;
    struct http_req *req;
    struct principal *who; /* the caller, for methods that require authentication; NULL otherwise */
    int http_status;       /* if set, an error is answered with this HTTP status instead of the code's (413) */
};

typedef enum ch_status (*api_fn)(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err);

enum api_auth { API_AUTH_NONE, API_AUTH_USER, API_AUTH_ADMIN };

struct api_method {
    const char *service; /* "chatto.discovery.v1.ServerDiscoveryService" */
    const char *method;  /* "GetServer" */
    enum api_auth auth;
    size_t max_body;
    api_fn fn;
};

/* Method tables, { 0 }-terminated; one per resource file. */
extern const struct api_method discovery_methods[];
extern const struct api_method users_methods[];
extern const struct api_method admin_methods[];
extern const struct api_method rooms_methods[];
extern const struct api_method messages_methods[];
extern const struct api_method assets_methods[];
extern const struct api_method notifications_methods[];
extern const struct api_method calls_methods[];

/* POST /webhooks/livekit (calls.c): 404 unless livekit.enabled; LiveKit's signed events become call facts. */
void calls_webhook_prepare(struct http_req *r, void *env);
void calls_webhook(struct http_req *r, void *env);

/* Files outside Connect (assets.c): PUT /api/assets/uploads/<uploadId>?offset=N with the chunk's raw bytes (the
 * browser's path: no base64), and GET /assets/files/<assetId> (downloads, streamed, with Range and ETag) and
 * /assets/files/<assetId>/image/<W>x<H>/<fit> (resized images). */
void assets_chunk_prepare(struct http_req *r, void *env);
void assets_chunk_put(struct http_req *r, void *env);
void assets_download(struct http_req *r, void *env);
/* GET /assets/server/public/<id>: an avatar (users.c). */
void users_avatar_download(struct http_req *r, void *env);

/* upstream's PageRequest {limit, offset} from in.page (absent: 0, 0, meaning the method's defaults); errors name
 * page, page.limit or page.offset. */
enum ch_status api_page_args(const cJSON *in, int64_t max_limit, int64_t max_offset, int64_t *limit, int64_t *offset,
                             struct ch_err *err);

/* One page of users ({users, nextPageToken}); full adds role, disabled, createdAt (admin view). users.c. */
enum ch_status users_list_page(struct api_ctx *c, const cJSON *in, bool full, cJSON **out, struct ch_err *err);

/* Account flows outside Connect (account.c): POST /auth/register, /auth/login, /auth/logout with a JSON or
 * form-encoded body. account_prepare checks the content type and the origin before the body is read. */
void account_prepare(struct http_req *r, void *env);
void account_register(struct http_req *r, void *env);
void account_login(struct http_req *r, void *env);
void account_logout(struct http_req *r, void *env);

/* ---- authentication helpers (auth.c) ---- */

/* True if the request comes from our own origin: Origin equals webserver.url's origin, or, without Origin,
 * Sec-Fetch-Site is same-origin. Cookie-authenticated state changes require it (CSRF). */
bool api_same_origin(struct http_req *r, const struct api_env *env);
/* True if the request carries an Authorization header (bearer credentials are exempt from CSRF checks). */
bool api_has_bearer(struct http_req *r);
/* The session cookie value, or NULL. */
const char *api_session_cookie(struct http_req *r, const struct api_env *env);
/* Decided from the headers, before a body is read: false (and answered 401 or 403) when the request carries no
 * credentials at all, or a session cookie from another site (CSRF). The credentials themselves are checked later
 * (api_authenticate). */
bool api_precheck_credentials(struct http_req *r, const struct api_env *env);
/* Authenticate by bearer token or session cookie. CH_EAUTH with a message when missing or invalid. */
enum ch_status api_authenticate(struct api_env *env, struct http_req *r, struct principal *p, struct ch_err *err);
/* Set-Cookie for a new session (max_age_s > 0) or to clear it (max_age_s = 0). */
void api_session_cookie_set(struct http_req *r, const struct api_env *env, const char *value, int64_t max_age_s);

/* GET /api/realtime: the WebSocket handshake, then the socket goes to env->ws (realtime.c). */
void api_realtime_upgrade(struct http_req *r, void *env);

/* The full route table for http_start(). */
const struct http_route *api_routes(void);

/* Readiness as /readyz reports it: not draining, the embedded child (if any) ready, storage ready. */
bool api_ready(struct api_env *env, char *reason, size_t len);
