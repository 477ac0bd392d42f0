/* SPDX-License-Identifier: MIT */
#pragma once
/* Internals shared by http.c and reply.c only. */
#include <microhttpd.h>
#include <stdatomic.h>

#include "http/http.h"

#define HTTP_MAX_RESP_HEADERS 16

/* A blocking route's request goes READING -> HANDOFF (its body is in; it is handed to a worker on libmicrohttpd's
 * next call, see access_cb) -> RUNNING (suspended, a worker has it) -> DONE (the worker is done: answer it). */
enum http_req_state { REQ_READING = 0, REQ_HANDOFF, REQ_RUNNING, REQ_DONE };

struct http_req {
    struct http *http;
    struct http_req *job_next; /* in the workers' queue */
    _Atomic int state;         /* enum http_req_state: a blocking handler runs on a worker while RUNNING */
    struct MHD_Connection *conn;
    const struct http_route *route;
    char method[12];
    char *path;
    char client_ip[64]; /* found on first use (http_req_client_ip) */
    int64_t start_ms;

    char *body;
    size_t body_len, body_cap, max_body;
    bool too_large;

    void *data;
    void (*data_free)(void *);

    /* an upgrade (WebSocket) instead of a response body */
    void (*upgrade_fn)(void *cls, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra, size_t len);
    void (*upgrade_abort)(void *cls);
    void *upgrade_cls;
    struct http_upgrade *up;

    /* response */
    struct MHD_Response *static_resp; /* a response built once (static_json routes); borrowed */
    bool answered;
    int status;
    char *resp;
    size_t resp_len;
    char content_type[64];
    struct {
        char *name, *value;
    } headers[HTTP_MAX_RESP_HEADERS];
    size_t nheaders;
};
