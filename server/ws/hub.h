/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The realtime hub: WebSocket connections (framing by wslay) served by one event-loop thread (epoll), fed by the
 * process's single subscription to each source: the chat read model's change stream (durable events, in stream
 * order), a core NATS subscription for typing indicators, and KV watchers for presence and revoked credentials.
 * So an event produced on any process reaches the matching sockets on every process.
 *
 * Threads: "ws-loop" owns every connection and wslay context; "ws-auth" checks hello tokens (a NATS round trip);
 * everyone else talks to the loop through a mutex-guarded queue and an eventfd. Public functions: any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts/accounts.h"
#include "base/status.h"

struct hub;
struct chat;
struct store;
struct MHD_UpgradeResponseHandle;

struct hub_opts {
    struct accounts *accounts;
    struct chat *chat;
    struct store *store;
    const char *instance;  /* this process, for presence keys */
    int max_connections;   /* more → 503 at the upgrade */
    int64_t ping_ms;       /* server pings this often */
    int64_t idle_ms;       /* nothing received for this long → closed (dead peer) */
    int64_t hello_ms;      /* the hello frame must arrive within this */
    size_t max_message;    /* incoming message cap (close 1009) */
    size_t queue_hard;     /* outgoing bytes queued for one socket → close 1008 at once */
    size_t queue_soft;     /* ... or above this for soft_grace_ms → close 1013 */
    int64_t soft_grace_ms;
    size_t replay_events;  /* recent events kept for resume */
    int64_t typing_ms;     /* a typing indicator lasts this long unless refreshed */
    int64_t presence_ms;   /* presence heartbeat period; entries older than 3 periods are offline */
};

enum ch_status hub_start(const struct hub_opts *o, struct hub **out, struct ch_err *err);
/* Close every socket with 1001 (going away), flush briefly, stop the threads, free. Accepts NULL. */
void hub_stop(struct hub *h);

/* Reserve a connection slot for an upgrade; false when full (answer 503). hub_release() if the upgrade fails. */
bool hub_reserve(struct hub *h);
void hub_release(struct hub *h);
/* Take over an upgraded socket (MHD upgrade callback). who is the principal from the upgrade request's
 * credentials, or NULL when the client authenticates with its hello frame. extra_in are bytes MHD already read. */
void hub_adopt(struct hub *h, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra_in, size_t extra_len,
               const struct principal *who);

/* Announce that uid is typing in room (optionally in a thread); reaches every process's sockets. */
enum ch_status hub_typing(struct hub *h, const char *room, const char *uid, const char *thread_root,
                          struct ch_err *err);
/* "online", "away" or "offline" as this process last heard. */
const char *hub_presence(struct hub *h, const char *uid);
/* Open sockets (for tests and metrics). */
size_t hub_connections(struct hub *h);
