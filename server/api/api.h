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

struct cfg;
struct store;
struct sup;

/* Everything a handler may use; owned by app.c, alive while the HTTP daemon runs. */
struct api_env {
    const struct cfg *cfg;
    struct store *store;
    struct sup *sup; /* NULL unless nats.embedded.enabled */
    const char *public_url;
    const char *public_origin;
    const char *version;
    atomic_bool draining;
};

struct api_ctx {
    struct api_env *env;
    struct http_req *req;
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

/* The full route table for http_start(). */
const struct http_route *api_routes(void);

/* Readiness as /readyz reports it: not draining, the embedded child (if any) ready, storage ready. */
bool api_ready(struct api_env *env, char *reason, size_t len);
