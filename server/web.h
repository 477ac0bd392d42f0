/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The web client's static files: loaded into memory at start-up (no file system access per request, so no path
 * tricks), served at / (index.html) and /static/<path> with content types, ETags and cache headers. index.html
 * may name assets as {{asset:app.js}}, which becomes /static/app.js?v=<content hash>: hashed URLs that can be
 * cached forever. Read-only after web_load(); any thread.
 */
#include "base/status.h"
#include "http/http.h"

struct web;

/* Load every file under dir (or, when dir is empty, the first of <exe>/../share/chatto/web, <exe>/../web, ./web,
 * /usr/share/chatto/web that exists). connect_src is added to the page's Content-Security-Policy (the WebSocket
 * origin). *out is the caller's (web_free); CH_ENOTFOUND if no web directory exists. */
enum ch_status web_load(const char *dir, const char *connect_src, struct web **out, struct ch_err *err);
void web_free(struct web *w);
/* Directory the files came from (for the log). */
const char *web_dir(const struct web *w);
/* Route handler for GET / and /static/...; env is the struct web. */
void web_serve(struct http_req *r, struct web *w);
