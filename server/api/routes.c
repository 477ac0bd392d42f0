/* SPDX-License-Identifier: MIT */
/*
 * The route table, health endpoints and Connect dispatch: POST /api/connect/<package>.<Service>/<Method> with a
 * JSON body, answered with the JSON reply or a Connect error. Epoll threads (healthz, readyz) and workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "chat/chat.h"
#include "json/json.h"
#include "store/store.h"
#include "supervisor.h"
#include "web.h"

#define CONNECT_PREFIX "/api/connect/"

static const struct api_method *const tables[] = { discovery_methods, users_methods, admin_methods, rooms_methods,
                                                   messages_methods, assets_methods, notifications_methods,
                                                   calls_methods, NULL };

bool
api_ready(struct api_env *env, char *reason, size_t len)
{
    if (atomic_load(&env->draining)) {
        snprintf(reason, len, "shutting down");
        return false;
    }
    if (env->sup && !sup_ready(env->sup, reason, len))
        return false;
    if (!store_ready(env->store, reason, len))
        return false;
    return env->chat ? chat_ready(env->chat, reason, len) : true;
}

static void
healthz(struct http_req *r, void *envp)
{
    cJSON *o = cJSON_CreateObject();

    (void)envp;
    cJSON_AddStringToObject(o, "status", "ok");
    http_reply_json(r, 200, o);
}

static void
readyz(struct http_req *r, void *envp)
{
    char reason[200];
    bool ok = api_ready(envp, reason, sizeof reason);
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "status", ok ? "ok" : "unavailable");
    if (!ok)
        cJSON_AddStringToObject(o, "reason", reason);
    http_reply_json(r, ok ? 200 : 503, o);
    if (!ok)
        http_reply_header(r, "Retry-After", "1");
}

static const struct api_method *
find_method(const char *path)
{
    const char *full = path + strlen(CONNECT_PREFIX), *slash = strrchr(full, '/');

    if (!slash)
        return NULL;
    for (const struct api_method *const *t = tables; *t; t++)
        for (const struct api_method *m = *t; m->service; m++)
            if (strlen(m->service) == (size_t)(slash - full) && strncmp(m->service, full, (size_t)(slash - full)) == 0 &&
                strcmp(m->method, slash + 1) == 0)
                return m;
    return NULL;
}

/* application/json, optionally with "; charset=utf-8" (any case) and nothing else */
static bool
is_json_ctype(const char *ct)
{
    size_t n = strlen("application/json");

    if (!ct || strncasecmp(ct, "application/json", n) != 0)
        return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    if (!*ct)
        return true;
    if (*ct++ != ';')
        return false;
    while (*ct == ' ')
        ct++;
    return strcasecmp(ct, "charset=utf-8") == 0;
}

enum ch_status
api_page_args(const cJSON *in, int64_t max_limit, int64_t max_offset, int64_t *limit, int64_t *offset,
              struct ch_err *err)
{
    const cJSON *page = cJSON_GetObjectItemCaseSensitive(in, "page");

    *limit = *offset = 0;
    if (page && !cJSON_IsNull(page) && !cJSON_IsObject(page))
        return ch_err_set(err, CH_EINVAL, "page", "must be an object {limit, offset}");
    if (cJSON_IsObject(page) && json_get_int(page, "limit", false, 0, max_limit, limit, NULL) != CH_OK)
        return ch_err_set(err, CH_EINVAL, "page.limit", "must be a number from 0 to %lld", (long long)max_limit);
    if (cJSON_IsObject(page) && json_get_int(page, "offset", false, 0, max_offset, offset, NULL) != CH_OK)
        return ch_err_set(err, CH_EINVAL, "page.offset", "must be a number from 0 to %lld", (long long)max_offset);
    return CH_OK;
}

static void
connect_prepare(struct http_req *r, void *envp)
{
    const struct api_method *m = find_method(http_req_path(r));
    struct api_env *env = envp;

    if (!m) {
        char msg[200];
        snprintf(msg, sizeof msg, "unknown method %.150s", http_req_path(r) + strlen(CONNECT_PREFIX));
        http_reply_status(r, 404, "unimplemented", msg);
        return;
    }
    /* decided from headers alone, before the body is read: no credentials, or a cross-site cookie request */
    if (m->auth != API_AUTH_NONE && !api_precheck_credentials(r, env))
        return;
    if (!is_json_ctype(http_req_header(r, "Content-Type"))) {
        http_reply_status(r, 415, "invalid_argument",
                          "Content-Type must be application/json (this server speaks the Connect JSON encoding)");
        return;
    }
    http_req_set_data(r, (void *)m, NULL);
    if (m->max_body)
        http_req_set_max_body(r, m->max_body);
}

static void
connect_handle(struct http_req *r, void *envp)
{
    const struct api_method *m = http_req_data(r);
    struct api_ctx c = { .env = envp, .req = r };
    struct principal who;
    struct ch_err err = { 0 };
    cJSON *in = NULL, *out = NULL;
    size_t len;
    const char *body = http_req_body(r, &len);
    enum ch_status st;

    if (m->auth != API_AUTH_NONE) {
        if ((st = api_authenticate(envp, r, &who, &err)) != CH_OK) {
            http_reply_error(r, st, &err);
            return;
        }
        /* roles decide here: read the record itself, not the directory's copy */
        if (m->auth == API_AUTH_ADMIN && (st = accounts_get(((struct api_env *)envp)->accounts, who.user.id, &who.user,
                                                             &err)) != CH_OK) {
            http_reply_error(r, st, &err);
            return;
        }
        if (m->auth == API_AUTH_ADMIN && who.user.role != ROLE_ADMIN && who.user.role != ROLE_OWNER) {
            http_reply_errorf(r, CH_EPERM, "this needs the admin or owner role");
            return;
        }
        c.who = &who;
    }
    /* an empty body is the empty message, as curl users expect */
    if (len == 0)
        in = cJSON_CreateObject();
    else if ((st = json_parse_object(body, len, JSON_MAX_DEPTH, &in, &err)) != CH_OK) {
        http_reply_error(r, st, &err);
        return;
    }
    st = m->fn(&c, in, &out, &err);
    cJSON_Delete(in);
    explicit_bzero(&who, sizeof who);
    if (st != CH_OK) {
        cJSON_Delete(out);
        if (c.http_status) {
            char msg[CH_ERR_MSG_MAX + 80];
            http_reply_status(r, c.http_status, ch_status_str(st), ch_err_text(&err, msg, sizeof msg));
        } else {
            http_reply_error(r, st, &err);
        }
        return;
    }
    http_reply_json(r, 200, out);
}

static void
web_route(struct http_req *r, void *envp)
{
    struct api_env *env = envp;

    if (!env->web) {
        http_reply_status(r, 404, "not_found", "the web client is not installed on this server (API only)");
        return;
    }
    web_serve(r, env->web);
}

/* blocks: the handler may wait on storage, so it runs on a worker thread (http.c); the others answer at once
 * from the epoll thread and must never wait on NATS */
static const struct http_route routes[] = {
    /* method path                 prefix blocks prepare          handler */
    { "GET", "/healthz", false, false, NULL, healthz, "{\"status\":\"ok\"}" }, /* liveness: no lock, no NATS */
    { "GET", "/readyz", false, false, NULL, readyz },
    { "GET", "/api/realtime", false, true, NULL, api_realtime_upgrade },
    { "POST", CONNECT_PREFIX, true, true, connect_prepare, connect_handle },
    { "PUT", "/api/assets/uploads/", true, true, assets_chunk_prepare, assets_chunk_put },
    { "GET", "/assets/files/", true, true, NULL, assets_download },
    { "GET", USER_AVATAR_PATH, true, true, NULL, users_avatar_download },
    { "POST", "/auth/register", false, true, account_prepare, account_register },
    { "POST", "/auth/login", false, true, account_prepare, account_login },
    { "POST", "/auth/logout", false, true, account_prepare, account_logout },
    { "POST", "/webhooks/livekit", false, true, calls_webhook_prepare, calls_webhook }, /* signed: no CSRF check */
    { "GET", "/", true, false, NULL, web_route }, /* last: everything else is a static file or 404 */
    { 0 },
};

const struct http_route *
api_routes(void)
{
    return routes;
}
