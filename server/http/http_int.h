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

/* Work for the worker threads: a blocking handler, or the next piece of a streamed body. */
struct http_job {
    void (*run)(struct http_job *j);
    struct http_job *next; /* in the workers' queue */
};

struct http_stream;

struct http_req {
    struct http *http;
    struct http_job job; /* runs the blocking handler */
    _Atomic int state;         /* enum http_req_state: a blocking handler runs on a worker while RUNNING */
    struct MHD_Connection *conn;
    const struct http_route *route;
    char method[12];
    char *path;
    char client_ip[64]; /* found on first use (http_req_client_ip) */
    int64_t start_ms;
    int64_t start_us;

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
    struct http_stream *stream; /* a body produced piece by piece (http_reply_stream), until MHD takes it */
    uint64_t stream_total;
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

/* Queue a job for a worker thread (making one if every worker is busy). False if no thread could run it. */
bool http_submit_job(struct http *h, struct http_job *j);

/* stream.c: the MHD response of a streamed body (takes the stream; NULL if out of memory), and the release of a
 * stream that never became a response (the request ended first). */
struct MHD_Response *http_stream_response(struct http *h, struct http_req *r);
void http_stream_abandon(struct http_stream *s);
