/* SPDX-License-Identifier: MIT */
/*
 * Responses. The ONE table from our status to the Connect code and HTTP status lives here. Any MHD worker thread,
 * always on the request's own thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"
#include "json/json.h"

static const struct {
    enum ch_status st;
    int http;
} status_map[] = {
    { CH_OK, 200 },         { CH_EINVAL, 400 }, { CH_ENOTFOUND, 404 }, { CH_EEXIST, 409 },
    { CH_ECONFLICT, 400 },  { CH_EPERM, 403 },  { CH_EAUTH, 401 },     { CH_ELIMIT, 429 },
    { CH_EUNAVAIL, 503 },   { CH_ENOMEM, 500 }, { CH_EINTERNAL, 500 },
};

int
http_status_of(enum ch_status s)
{
    for (size_t i = 0; i < sizeof status_map / sizeof status_map[0]; i++)
        if (status_map[i].st == s)
            return status_map[i].http;
    return 500;
}

static void
set_body(struct http_req *r, int status, const char *ctype, char *body, size_t len)
{
    http_stream_abandon(r->stream); /* an answer replaces a stream set up before it */
    r->stream = NULL;
    free(r->resp);
    r->resp = body;
    r->resp_len = len;
    r->status = status;
    snprintf(r->content_type, sizeof r->content_type, "%s", ctype);
    r->answered = true;
}

void
http_reply_bytes(struct http_req *r, int status, const char *ctype, const void *body, size_t len)
{
    char *copy = malloc(len ? len : 1);

    if (!copy) {
        set_body(r, 500, "text/plain; charset=utf-8", NULL, 0);
        return;
    }
    memcpy(copy, body, len);
    set_body(r, status, ctype, copy, len);
}

void
http_reply_json(struct http_req *r, int status, cJSON *v)
{
    size_t len = 0;
    char *s;

    if (!v)
        v = cJSON_CreateObject();
    s = v ? json_print(v, &len) : NULL;
    cJSON_Delete(v);
    if (!s) {
        http_reply_bytes(r, 500, "application/json; charset=utf-8",
                         "{\"code\":\"internal\",\"message\":\"out of memory\"}", 44);
        return;
    }
    set_body(r, status, "application/json; charset=utf-8", s, len);
}

void
http_reply_status(struct http_req *r, int http_status, const char *code, const char *msg)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", msg);
    http_reply_json(r, http_status, o);
    if (http_status == 405)
        http_reply_header(r, "Allow", r->route && r->route->method ? r->route->method : "GET, POST");
    if (http_status == 503)
        http_reply_header(r, "Retry-After", "1");
}

void
http_reply_error(struct http_req *r, enum ch_status s, const struct ch_err *err)
{
    char msg[CH_ERR_MSG_MAX + 80];

    if (s == CH_OK)
        s = CH_EINTERNAL;
    ch_err_text(err, msg, sizeof msg);
    http_reply_status(r, http_status_of(s), ch_status_str(s), msg);
}

void
http_reply_errorf(struct http_req *r, enum ch_status s, const char *fmt, ...)
{
    struct ch_err err = { 0 };
    va_list ap;

    va_start(ap, fmt);
    ch_err_vset(&err, s, NULL, fmt, ap);
    va_end(ap);
    http_reply_error(r, s, &err);
}

void
http_reply_header(struct http_req *r, const char *name, const char *value)
{
    if (r->nheaders >= HTTP_MAX_RESP_HEADERS)
        return;
    r->headers[r->nheaders].name = strdup(name);
    r->headers[r->nheaders].value = strdup(value);
    if (r->headers[r->nheaders].name && r->headers[r->nheaders].value)
        r->nheaders++;
}
