/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The HTTP edge: a libmicrohttpd daemon (a few epoll threads that only move bytes, upgrades allowed), a route
 * table given by the caller, per-request state with a capped body, and graceful draining. A route marked `blocks`
 * (it may wait on storage) runs on a worker thread of its own while its connection is suspended, so a stalled
 * NATS holds up only the requests that need it; other routes answer at once on the epoll thread. Handlers
 * answer by filling the request's response through the http_reply_* functions (reply.c).
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct http;
struct http_req;
struct netaddr_set;

typedef void (*http_handler_fn)(struct http_req *r, void *env);

/* One route. path is matched exactly, or as a prefix when prefix is true. method NULL = any (the handler checks).
 * prepare, if set, runs once headers are in and before the body is read, on the epoll thread (it must not
 * block): it may answer early (404, 415) or lower the body cap with http_req_set_max_body(). handler runs once
 * the body is in: on a worker thread when blocks is true (it may wait on storage), else on the epoll thread. */
struct http_route {
    const char *method;
    const char *path;
    bool prefix;
    bool blocks;
    http_handler_fn prepare;
    http_handler_fn handler;
    const char *static_json; /* if set: always 200 with this JSON body, from a response built once (no handler) */
};

struct http_opts {
    int listen_fd; /* from http_listen() */
    int max_connections; /* HTTP and WebSocket connections; a worker thread exists only while a request runs */
    int io_threads;      /* epoll threads (0: one per CPU, at least 2) */
    int max_connections_per_ip;
    int64_t connection_timeout_ms;
    int64_t max_body;
    size_t memory_limit; /* per connection: request line, headers and I/O buffers; bigger headers get 431 */
    bool request_logging;
    const struct netaddr_set *trusted_proxies; /* borrowed; may be NULL */
    bool proxy_forwarded;                      /* they write Forwarded (RFC 7239), not X-Forwarded-For */
    const char *instance;                      /* X-Chatto-Instance value */
};

/* Open the listening socket (so the port is known, and taken, before anything else starts). *fd is the caller's
 * until passed to http_start(); *bound is the actual port (useful when port is 0). */
enum ch_status http_listen(const char *bind_address, int port, int *fd, int *bound, struct ch_err *err);

/* Start serving on o->listen_fd (which it then owns). routes is borrowed (NULL-path terminated); env is passed to handlers. */
enum ch_status http_start(const struct http_opts *o, const struct http_route *routes, void *env, struct http **out,
                          struct ch_err *err);
/* The bound port (useful when configured as 0). */
int http_port(const struct http *h);
/* Stop taking connections (new ones are accepted and closed at once); in-flight requests continue. */
void http_quiesce(struct http *h);
/* Wait up to timeout_ms until no request is being handled; false (logged) if some still are. */
bool http_wait_idle(struct http *h, int64_t timeout_ms);
/* Quiesce, wait up to timeout_ms for in-flight requests, then stop the daemon and the workers and free. A handler
 * still running must be able to return (the app closes NATS first). Accepts NULL. */
void http_stop(struct http *h, int64_t timeout_ms);
/* Requests currently being handled. */
int http_inflight(const struct http *h);
/* Worker threads alive now (each runs one blocking request at a time; idle ones exit after a while). */
int http_workers(const struct http *h);

/* ---- request accessors (valid inside handlers) ---- */
const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);
/* Request header by name (case-insensitive), NULL if absent. */
const char *http_req_header(const struct http_req *r, const char *name);
/* Query argument, NULL if absent. */
const char *http_req_query(const struct http_req *r, const char *name);
/* Cookie value, NULL if absent. */
const char *http_req_cookie(const struct http_req *r, const char *name);
/* The request body (not NUL-terminated) and its length. */
const char *http_req_body(const struct http_req *r, size_t *len);
/* Client IP after trusted-proxy X-Forwarded-For processing. */
const char *http_req_client_ip(const struct http_req *r);
/* Lower the body cap (only in prepare). */
void http_req_set_max_body(struct http_req *r, size_t max);
/* Per-request scratch pointer for the handler chain, freed by the given function when the request ends. */
void http_req_set_data(struct http_req *r, void *data, void (*free_fn)(void *));
void *http_req_data(const struct http_req *r);
/* True once a response has been set. */
bool http_req_answered(const struct http_req *r);

/* ---- responses (reply.c) ---- */
/* Answer with a JSON document (takes ownership of v, which may be NULL for "{}"). */
void http_reply_json(struct http_req *r, int status, cJSON *v);
/* Answer with a Connect error: {"code": ..., "message": ...} and the matching HTTP status. */
void http_reply_error(struct http_req *r, enum ch_status s, const struct ch_err *err);
/* Same with a plain message. */
void http_reply_errorf(struct http_req *r, enum ch_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Answer with an explicit HTTP status and Connect code (for 405, 413, 415). */
void http_reply_status(struct http_req *r, int http_status, const char *code, const char *msg);
/* Answer with bytes (copied). */
void http_reply_bytes(struct http_req *r, int status, const char *content_type, const void *body, size_t len);
/* Add a response header (copied); up to 16 per response. */
void http_reply_header(struct http_req *r, const char *name, const char *value);
/* Answer with a body of total bytes produced piece by piece, never held whole: fill(ctx, &piece, &len) runs on a
 * worker thread each time the client has taken every byte given so far; it may wait on storage, hands over a
 * malloc'd piece, and returns CH_OK with len 0 at the end (after an error, or fewer than total bytes, the
 * connection is cut short: the client sees an incomplete body, never a wrong one). done(ctx) runs once, when the
 * response is finished or abandoned, and never while fill runs. Headers are added as usual. */
typedef enum ch_status (*http_fill_fn)(void *ctx, char **piece, size_t *len);
void http_reply_stream(struct http_req *r, int status, const char *content_type, uint64_t total, http_fill_fn fill,
                       void (*done)(void *ctx), void *ctx);
/* Answer 101 Switching Protocols and hand the socket to fn once MHD has sent it (on an MHD thread; fn must not
 * block and must eventually call MHD_upgrade_action(urh, CLOSE)). If the upgrade never happens (the client went
 * away), abort(cls) runs instead. Response headers (Upgrade, Sec-WebSocket-Accept) are added with
 * http_reply_header(). */
struct MHD_UpgradeResponseHandle;
void http_reply_upgrade(struct http_req *r,
                        void (*fn)(void *cls, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra,
                                   size_t len),
                        void (*abort)(void *cls), void *cls);
/* HTTP status for a status code. */
int http_status_of(enum ch_status s);
