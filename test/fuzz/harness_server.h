/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A whole Chatto server inside the fuzzer's process (test/fuzz/harness_server.c): app_run() on a thread, with its
 * embedded nats-server child, real JetStream, accounts, chat model, realtime and HTTP, so the fuzzer sees the
 * coverage of everything a request touches. Started once, on first use; the child dies with the process.
 *
 * Inputs may name the fixtures it made: "@T" becomes the fuzz user's bearer token, "@R" a room it owns, "@U" its
 * user id, "@E" a message in that room, "@D" a DM room. Limits on rates and connections are off (they would make
 * an input's outcome depend on the ones before).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_server {
    int port;
    char token[256];
    char room[64], dm[64], user[64], event[64];
};

/* The running server (started on the first call; aborts if it cannot start). */
const struct fuzz_server *fuzz_server(void);

/* in with the fixtures' names replaced (see above); the caller frees it. */
char *fuzz_expand(const uint8_t *in, size_t len, size_t *out_len);

/* One connection: send req, half-close (unless keep_open), read the answer into resp (up to cap bytes;
 * NUL-terminated) until the server closes, done(resp, n) says it is complete, it has been quiet for idle_ms
 * after answering, or answer_ms passed without a byte (an incomplete request: the server waits for the rest).
 * The number of bytes read, or -1 if the server could not be reached. */
long fuzz_exchange(const void *req, size_t len, char *resp, size_t cap, int idle_ms, int answer_ms, bool keep_open,
                   bool (*done)(const char *resp, size_t n));

/* done() for a WebSocket: the server's close frame has arrived (or it answered the upgrade with an error). */
bool fuzz_ws_closed(const char *resp, size_t n);

/* A Connect call with the fuzz user's token: status code, body into resp. */
int fuzz_connect_call(const char *service_method, const char *body, size_t len, char *resp, size_t cap);
