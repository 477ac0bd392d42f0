/* SPDX-License-Identifier: MIT */
/*
 * Account flows outside Connect: POST /auth/register, /auth/login, /auth/logout. Bodies are JSON or
 * application/x-www-form-urlencoded (plain HTML forms); answers are JSON. A success sets the session cookie and,
 * with "issueToken": true, also returns a bearer token for scripts. MHD worker threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "base/form.h"
#include "chat/chat.h"
#include "config/config.h"
#include "json/json.h"
#include "log/log.h"

#define ACCOUNT_MAX_BODY (16 * 1024)

/* The fields every account endpoint may receive, from either encoding. Strings are borrowed from the tree/form. */
struct account_in {
    cJSON *json;
    struct form *form;
    const char *login, *password, *display;
    bool issue_token;
};

static bool
is_form(struct http_req *r)
{
    const char *ct = http_req_header(r, "Content-Type");

    return ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
}

void
account_prepare(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    const char *ct = http_req_header(r, "Content-Type");
    const char *origin = http_req_header(r, "Origin");

    /* a browser on another site must not log anyone in or out here (login CSRF); scripts send no Origin */
    if (origin && !api_same_origin(r, env)) {
        http_reply_errorf(r, CH_EPERM, "cross-site request refused: Origin must be %s", env->public_origin);
        return;
    }
    if (strcmp(http_req_path(r), "/auth/logout") == 0 && !api_has_bearer(r) && api_session_cookie(r, env) &&
        !api_same_origin(r, env)) {
        http_reply_errorf(r, CH_EPERM, "cross-site request refused: Origin must be %s", env->public_origin);
        return;
    }
    if (ct && !is_form(r) && strncasecmp(ct, "application/json", 16) != 0) {
        http_reply_status(r, 415, "invalid_argument",
                          "Content-Type must be application/json or application/x-www-form-urlencoded");
        return;
    }
    http_req_set_max_body(r, ACCOUNT_MAX_BODY);
}

static void
in_free(struct account_in *in)
{
    cJSON_Delete(in->json);
    form_free(in->form);
}

static enum ch_status
parse_in(struct http_req *r, struct account_in *in, struct ch_err *err)
{
    size_t len;
    const char *body = http_req_body(r, &len);
    enum ch_status st;

    memset(in, 0, sizeof *in);
    in->login = in->password = in->display = "";
    if (is_form(r)) {
        const char *t;
        if ((st = form_parse(body, len, &in->form, err)) != CH_OK)
            return st;
        in->login = form_get(in->form, "login") ? form_get(in->form, "login") : "";
        in->password = form_get(in->form, "password") ? form_get(in->form, "password") : "";
        in->display = form_get(in->form, "displayName") ? form_get(in->form, "displayName") : "";
        t = form_get(in->form, "issueToken");
        in->issue_token = t && (!strcmp(t, "true") || !strcmp(t, "1") || !strcmp(t, "on"));
        return CH_OK;
    }
    if (len == 0) {
        in->json = cJSON_CreateObject();
        return CH_OK;
    }
    if ((st = json_parse_object(body, len, JSON_MAX_DEPTH, &in->json, err)) != CH_OK)
        return st;
    if ((st = json_get_str(in->json, "login", false, 0, 256, &in->login, err)) != CH_OK ||
        (st = json_get_str(in->json, "password", false, 0, 4096, &in->password, err)) != CH_OK ||
        (st = json_get_str(in->json, "displayName", false, 0, 1024, &in->display, err)) != CH_OK ||
        (st = json_get_bool(in->json, "issueToken", false, &in->issue_token, err)) != CH_OK)
        return st;
    return CH_OK;
}

/* Start a browser session (cookie) and, if asked, a bearer token; answer {user, token?}. */
static void
answer_with_credentials(struct http_req *r, struct api_env *env, const struct user *u, bool issue_token)
{
    struct ch_err err = { 0 };
    char *cookie = NULL, *token = NULL;
    int64_t exp = 0;
    enum ch_status st;
    cJSON *o;

    if ((st = accounts_issue(env->accounts, u, CRED_SESSION, &cookie, &exp, &err)) != CH_OK ||
        (issue_token && (st = accounts_issue(env->accounts, u, CRED_TOKEN, &token, NULL, &err)) != CH_OK)) {
        free(cookie);
        http_reply_error(r, st, &err);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "user", user_to_json(u, true));
    if (token)
        cJSON_AddStringToObject(o, "token", token);
    http_reply_json(r, 200, o);
    api_session_cookie_set(r, env, cookie, cfg_int(env->cfg, CFG_AUTH_TOKEN_TTL) / 1000);
    explicit_bzero(cookie, strlen(cookie));
    free(cookie);
    if (token)
        explicit_bzero(token, strlen(token));
    free(token);
}

void
account_register(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    struct account_in in;
    struct ch_err err = { 0 };
    struct user u;
    int64_t retry = 0;
    enum ch_status st;

    if (!cfg_bool(env->cfg, CFG_AUTH_DIRECT_REGISTRATION)) {
        http_reply_errorf(r, CH_EPERM, "registration is disabled on this server");
        return;
    }
    if ((st = parse_in(r, &in, &err)) == CH_OK) {
        if (!*in.login)
            st = ch_err_set(&err, CH_EINVAL, "login", "required");
        else if (!*in.password)
            st = ch_err_set(&err, CH_EINVAL, "password", "required");
        else
            st = accounts_register(env->accounts, in.login, in.password, in.display, http_req_client_ip(r),
                                   &retry, &u, &err);
    }
    if (st == CH_OK) {
        struct ch_err jerr = { 0 };
        log_info("account: registered user %s%s", u.id, u.role == ROLE_OWNER ? " (owner)" : "");
        /* everyone starts in #general; the account exists either way */
        if (chat_join_general(env->chat, &u, &jerr) != CH_OK)
            log_warn("account: could not add %s to #general: %s", u.id, jerr.msg);
        answer_with_credentials(r, env, &u, in.issue_token);
        explicit_bzero(&u, sizeof u);
    } else {
        http_reply_error(r, st, &err);
        if (st == CH_ELIMIT && retry > 0) {
            char ra[24];
            snprintf(ra, sizeof ra, "%" PRId64, retry);
            http_reply_header(r, "Retry-After", ra);
            log_limited(env->log_limit, LOGL_WARN, "register", "account: registrations limited for %s",
                        http_req_client_ip(r));
        }
    }
    in_free(&in);
}

void
account_login(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    struct account_in in;
    struct ch_err err = { 0 };
    struct user u;
    int64_t retry = 0;
    enum ch_status st;

    if (!cfg_bool(env->cfg, CFG_AUTH_DIRECT_LOGIN)) {
        http_reply_errorf(r, CH_EPERM, "password login is disabled on this server");
        return;
    }
    if ((st = parse_in(r, &in, &err)) == CH_OK) {
        if (!*in.login)
            st = ch_err_set(&err, CH_EINVAL, "login", "required");
        else
            st = accounts_login(env->accounts, in.login, in.password, http_req_client_ip(r), &u, &retry, &err);
    }
    if (st == CH_OK) {
        answer_with_credentials(r, env, &u, in.issue_token);
        explicit_bzero(&u, sizeof u);
    } else {
        http_reply_error(r, st, &err);
        if (st == CH_ELIMIT) {
            char ra[24];
            snprintf(ra, sizeof ra, "%" PRId64, retry > 0 ? retry : 1);
            http_reply_header(r, "Retry-After", ra);
            log_limited(env->log_limit, LOGL_WARN, "login", "account: logins throttled for %s",
                        http_req_client_ip(r));
        }
    }
    in_free(&in);
}

void
account_logout(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    struct principal p;
    struct ch_err err = { 0 };
    enum ch_status st;

    st = api_authenticate(env, r, &p, &err);
    if (st == CH_OK)
        st = accounts_revoke(env->accounts, &p, &err);
    else if (st == CH_EAUTH)
        st = CH_OK; /* nothing valid to revoke: logging out is idempotent */
    explicit_bzero(&p, sizeof p);
    if (st != CH_OK) {
        http_reply_error(r, st, &err);
        return;
    }
    http_reply_json(r, 200, cJSON_CreateObject());
    if (api_session_cookie(r, env))
        api_session_cookie_set(r, env, "", 0);
}
