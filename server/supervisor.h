/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The embedded nats-server child: spawn, learn its ports, wait until JetStream answers, restart it with backoff
 * when it dies or stops answering, stop it on shutdown (SIGINT, then SIGKILL), never leave an orphan.
 * One "nats-supervisor" thread owns the child; the functions below may be called from any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/status.h"

struct sup;

/* Probe: CH_OK if JetStream at url (with token) answered within timeout_ms. */
typedef enum ch_status (*sup_probe_fn)(const char *url, const char *token, int64_t timeout_ms, struct ch_err *err);

struct sup_opts {
    const char *binary;       /* resolved path (sup_resolve_binary) */
    const char *bind_address; /* child listens here; we connect to it (127.0.0.1 if it is a wildcard) */
    int port;                 /* 0 = pick a free port */
    int http_port;            /* monitoring listener: 0 = none (the default: it is unauthenticated) */
    const char *data_dir;     /* JetStream in <data_dir>/jetstream; config and ports files beside it */
    const char *token;
    int64_t max_file_store;
    int64_t start_timeout_ms;
    int64_t stop_timeout_ms;
    int64_t probe_interval_ms; /* liveness probe while running (0 = 5000) */
    int64_t probe_timeout_ms;  /* 0 = 3000 */
    int probe_failures;        /* consecutive failures before the child is killed (0 = 3) */
    sup_probe_fn probe;
};

/* Find an executable: name as given if it contains '/', else in PATH, /usr/sbin, /usr/local/sbin. */
enum ch_status sup_resolve_binary(const char *name, char *out, size_t len, struct ch_err *err);

/* Start the child and wait until JetStream answers (bounded by start_timeout_ms). On failure, the message names
 * the cause (missing binary, the child's last error line such as a port in use, or the timeout) and nothing is
 * left running. *out is the caller's, freed by sup_stop(). */
enum ch_status sup_start(const struct sup_opts *o, struct sup **out, struct ch_err *err);

/* The client URL of the child run by another chatto process on data_dir (from <data_dir>/run/client.url). */
enum ch_status sup_running_url(const char *data_dir, char *url, size_t len, struct ch_err *err);

/* nats://host:port of the child; stable for the lifetime of the sup (restarts reuse the port). */
const char *sup_client_url(const struct sup *s);

/* True while the child runs and its last JetStream probe answered; otherwise a short reason. */
bool sup_ready(struct sup *s, char *reason, size_t len);

/* PID of the current child, or 0 while none is running. */
pid_t sup_child_pid(struct sup *s);

/* Stop the child (SIGINT, SIGKILL after stop_timeout_ms), join the thread, free. Accepts NULL. */
void sup_stop(struct sup *s);
