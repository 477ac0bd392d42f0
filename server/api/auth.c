/* SPDX-License-Identifier: MIT */
/*
 * Who is calling: bearer tokens (scripts, bots) and session cookies (browsers), and the same-origin rule that
 * protects cookie-authenticated state changes from cross-site requests. MHD worker threads.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"

bool
api_same_origin(struct http_req *r, const struct api_env *env)
{
    const char *origin = http_req_header(r, "Origin");
    const char *site;

    if (origin) {
        /* exact, lengths included; "null" never matches */
        if (strcasecmp(origin, env->public_origin) == 0)
            return true;
        for (const char *const *a = env->origin_aliases; a && *a; a++)
            if (strcasecmp(origin, *a) == 0)
                return true;
        return false;
    }
    site = http_req_header(r, "Sec-Fetch-Site");
    return site && strcmp(site, "same-origin") == 0;
}

bool
api_has_bearer(struct http_req *r)
{
    return http_req_header(r, "Authorization") != NULL;
}

const char *
api_session_cookie(struct http_req *r, const struct api_env *env)
{
    const char *v = http_req_cookie(r, env->cookie_name);

    return v && *v ? v : NULL;
}

enum ch_status
api_authenticate(struct api_env *env, struct http_req *r, struct principal *p, struct ch_err *err)
{
    const char *auth = http_req_header(r, "Authorization");
    const char *cookie;

    if (auth) {
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return ch_err_set(err, CH_EAUTH, NULL, "Authorization must be \"Bearer <token>\"");
        auth += 7;
        while (*auth == ' ')
            auth++;
        return accounts_auth_bearer(env->accounts, auth, p, err);
    }
    if ((cookie = api_session_cookie(r, env)) != NULL)
        return accounts_auth_cookie(env->accounts, cookie, p, err);
    return ch_err_set(err, CH_EAUTH, NULL, "authentication required: log in, or send Authorization: Bearer <token>");
}

void
api_session_cookie_set(struct http_req *r, const struct api_env *env, const char *value, int64_t max_age_s)
{
    char buf[1024];

    snprintf(buf, sizeof buf, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s", env->cookie_name,
             value ? value : "", (long long)max_age_s, env->cookie_secure ? "; Secure" : "");
    http_reply_header(r, "Set-Cookie", buf);
}

bool
api_precheck_credentials(struct http_req *r, const struct api_env *env)
{
    if (api_has_bearer(r))
        return true; /* bearer credentials are not sent by browsers on their own: no CSRF */
    if (!api_session_cookie(r, env)) {
        http_reply_errorf(r, CH_EAUTH, "authentication required: log in, or send Authorization: Bearer <token>");
        return false;
    }
    if (!api_same_origin(r, env)) {
        http_reply_errorf(r, CH_EPERM, "cross-site request refused: Origin must be %s", env->public_origin);
        return false;
    }
    return true;
}
