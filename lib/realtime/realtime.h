/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The realtime domain: what each connected user should receive, and when. It turns the chat model's changes,
 * typing indicators (core NATS), presence (a KV bucket every process shares) and revoked sessions into frames
 * with an audience (user ids); it keeps the replay ring that lets a client resume without gaps or duplicates,
 * decides each new socket's resume, and checks hello tokens. It knows nothing of sockets: a transport (server/ws)
 * moves the bytes, is handed frames through struct rt_transport, and tells us about sockets with rt_hello and
 * rt_local_status.
 *
 * Threads: "rt-worker" owns the ring, the typing and the presence state and never waits on NATS; "rt-io" makes
 * the NATS calls (hello token checks, this process's presence entries), so a stalled NATS delays those and
 * nothing else. Public functions may be called from any thread and never wait on NATS (rt_typing makes one
 * buffered core publish).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/ids.h"
#include "base/status.h"

struct rt;
struct chat;
struct store;
struct accounts;

/* One frame (a complete JSON text message). */
struct rt_frame {
    char *data;
    size_t len;
};

/* Where frames go. Called on the rt-worker thread, in the order the transport must act on them: each function
 * queues the work and returns at once (it must not call back into rt). Strings and arrays are borrowed for the
 * call unless noted. */
struct rt_transport {
    /* Send frame to every admitted socket of the users listed (all: of every user). */
    void (*deliver)(void *ctx, const char *frame, size_t len, const char (*users)[ID_MAX + 1], size_t n, bool all);
    /* The socket conn (see rt_hello) is authenticated as uid (session verifier): send frames in order (the
     * transport takes them: free each data, then the array), then admit it to uid's later deliveries. */
    void (*admit)(void *ctx, uint64_t conn, const char *uid, const char *verifier, struct rt_frame *frames,
                  size_t n);
    /* The socket conn may not stay: close it with code and reason. */
    void (*refuse)(void *ctx, uint64_t conn, uint16_t code, const char *reason);
    /* The session (uid, verifier) ended: tell its sockets why, and close them. */
    void (*terminate)(void *ctx, const char *uid, const char *verifier);
    /* Send frame to the one socket conn (if it is still there). */
    void (*unicast)(void *ctx, uint64_t conn, const char *frame, size_t len);
};

struct rt_opts {
    struct store *store;
    struct chat *chat;
    struct accounts *accounts;
    const char *instance; /* this process, for its presence keys */
    size_t replay_events; /* recent events kept for resume */
    int64_t typing_ms;    /* a typing indicator lasts this long unless refreshed */
    int64_t presence_ms;  /* how often each process sends its full presence summary; 3 silent periods = gone */
};

/* Create the domain; nothing runs until rt_start(). *out is the caller's, freed with rt_stop(). */
enum ch_status rt_new(const struct rt_opts *o, struct rt **out, struct ch_err *err);
/* Start the threads and the feeds (chat changes, typing, presence and token watches); frames go to tx. */
enum ch_status rt_start(struct rt *rt, const struct rt_transport *tx, void *tx_ctx, struct ch_err *err);
/* Shutdown, first step (main thread): finish writing this process's presence while NATS answers, at most
 * budget_ms, then remove its entries. */
void rt_quiesce(struct rt *rt, int64_t budget_ms);
/* Stop the feeds and threads and free (after the transport stopped calling in). Accepts NULL. */
void rt_stop(struct rt *rt);

/* A socket (conn: the transport's id for it) said hello. uid and verifier are its credentials when the upgrade
 * request carried them (then token is NULL); otherwise token is the hello's bearer token, checked on rt-io.
 * resume is the hello's "resumeFrom" (NULL or empty: none). The answer comes as admit() or refuse(). */
void rt_hello(struct rt *rt, uint64_t conn, const char *uid, const char *verifier, const char *token,
              const char *resume);
/* uid's status on this process changed: "online", "away", or NULL when its last socket left. */
void rt_local_status(struct rt *rt, const char *uid, const char *status);
/* The admitted socket conn shows these users (a presence.watch frame): it gets their statuses now and their
 * changes from then on, at most one frame a second. Replaces the previous list; its own user is always in it. */
void rt_watch(struct rt *rt, uint64_t conn, const char (*uids)[ID_MAX + 1], size_t n);
/* The socket conn, which said hello, is gone. */
void rt_conn_gone(struct rt *rt, uint64_t conn);

/* A credential was revoked (key "<uid>.<kind>.<verifier>"): its sockets are told and closed. Any thread; the
 * shape of accounts_revoked_fn (ctx: the struct rt). */
void rt_revoked(void *ctx, const char *cred_key);

/* Announce that uid is typing in room (optionally in a thread); reaches every process's sockets. */
enum ch_status rt_typing(struct rt *rt, const char *room, const char *uid, const char *thread_root,
                         struct ch_err *err);
/* "online", "away" or "offline", as this process last heard. */
const char *rt_presence(struct rt *rt, const char *uid);

/* A socket's outgoing WebSocket bytes: whole server frames, gathered until the socket takes them (wsout.c; pure,
 * one thread per buffer). Zero-initialised is empty; buf is NULL while nothing waits. */
struct rt_wsout {
    char *buf;
    size_t len, cap;
    size_t head; /* bytes at the start of buf that belong to a frame already partly sent */
};
/* Append one whole unmasked frame (opcode: 0x1 text, 0x9 ping, ...); false when out of memory (nothing added). */
bool rt_wsout_frame(struct rt_wsout *o, unsigned opcode, const void *data, size_t len);
/* Append bytes that are whole frames by the time anyone looks (a library's frame, header and payload apart). */
bool rt_wsout_append(struct rt_wsout *o, const void *data, size_t len);
/* The socket took the first n bytes; the buffer is freed once empty. */
void rt_wsout_consumed(struct rt_wsout *o, size_t n);
/* Drop every frame not yet begun (a close that must go ahead of them); a partly sent frame stays to finish. */
void rt_wsout_drop_unsent(struct rt_wsout *o);
void rt_wsout_free(struct rt_wsout *o);

/* The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2): false unless key is 16 bytes in
 * base64. accept must hold 29 bytes. (handshake.c; pure) */
bool rt_ws_accept(const char *key, char accept[29]);
