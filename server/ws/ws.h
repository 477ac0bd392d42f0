/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The WebSocket transport: every upgraded socket, served by one event-loop thread ("ws-loop": epoll and wslay).
 * It moves bytes and nothing else: the frames and their audience come from lib/realtime (this is its struct
 * rt_transport), which it tells about sockets (hello, this process's per-user status). It enforces the limits of
 * a socket: message size, send-queue caps for slow readers, hello and idle timeouts, pings.
 *
 * The loop never waits on NATS: work from other threads arrives through a mutex-guarded queue and an eventfd.
 * Public functions: any thread unless noted.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts/accounts.h"
#include "base/status.h"
#include "realtime/realtime.h"

struct ws;
struct MHD_UpgradeResponseHandle;

struct ws_opts {
    struct rt *rt;         /* told about hellos and per-user status; must outlive the transport's loop */
    int max_connections;   /* more → 503 at the upgrade */
    int max_per_user;      /* sockets of one user (0 = no limit) → 429 */
    int max_per_ip;        /* sockets from one client address (0 = no limit) → 429 */
    int max_unauthenticated; /* sockets still to say who they are (hello with a token), together → 429 */
    int64_t ping_ms;       /* server pings this often */
    int64_t idle_ms;       /* nothing received for this long → closed (dead peer) */
    int64_t hello_ms;      /* the hello frame must arrive within this */
    size_t max_message;    /* incoming message cap (close 1009) */
    size_t queue_hard;     /* outgoing bytes queued for one socket → close 1008 at once */
    size_t queue_soft;     /* ... or above this for soft_grace_ms → close 1013 */
    int64_t soft_grace_ms;
};

/* Start the loop. *out is the caller's, freed with ws_stop(). */
enum ch_status ws_start(const struct ws_opts *o, struct ws **out, struct ch_err *err);
/* The callbacks lib/realtime hands frames to (ctx: the struct ws). */
const struct rt_transport *ws_transport(void);
/* Close every socket with 1001 (going away), flush them (at most 2 s), stop the loop. Main thread. */
void ws_quiesce(struct ws *w);
/* ws_quiesce() if not done, then free (once lib/realtime no longer calls in). Accepts NULL. */
void ws_stop(struct ws *w);

/* Reserve a slot for an upgrade from address ip by user uid (NULL: it will authenticate with its hello, and
 * waits in the small pool of unauthenticated sockets). CH_OK, or CH_EUNAVAIL (the process is full: 503) or
 * CH_ELIMIT (a per-user, per-address or unauthenticated limit: 429) with *why naming it. ws_release() if the
 * upgrade does not happen. */
enum ch_status ws_reserve(struct ws *w, const char *ip, const char *uid, const char **why);
void ws_release(struct ws *w, const char *ip, const char *uid);
/* Take over an upgraded socket (from MHD's upgrade callback) reserved with ws_reserve(ip, who's id). who is the
 * principal from the upgrade request's credentials, or NULL when the client authenticates with its hello frame.
 * extra_in are bytes MHD already read. */
void ws_adopt(struct ws *w, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra_in, size_t extra_len,
              const struct principal *who, const char *ip);
/* Open sockets and reserved slots (for tests and metrics). */
size_t ws_connections(struct ws *w);
