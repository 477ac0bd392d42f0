/* SPDX-License-Identifier: MIT */
#pragma once
/* GET /api/realtime: WebSocket handshake and hand-over to the hub. MHD worker threads. */
#include "http/http.h"

/* Route handler; env is struct api_env. */
void ws_upgrade(struct http_req *r, void *env);
