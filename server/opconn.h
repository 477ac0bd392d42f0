/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The NATS an operator command (`chatto user`, `chatto backup`, `chatto restore`) works on: the same as the
 * server's. In external mode the configured cluster; in embedded mode the running server's child (found through
 * <data_dir>/run/client.url) or, when no server runs on the data directory, a temporary child of our own that
 * lives until opconn_close(). Main thread only.
 */
#include <stdbool.h>

#include "config/config.h"

struct opconn;
struct store;

/* Connect and wait (bounded) until storage answers. With need_stopped, an embedded data directory a server is
 * running on is refused (restore must own it). Errors are printed on stderr ("chatto: ..."); returns 0 on
 * success, else 1 with *out NULL. The caller owns *out (opconn_close). */
int opconn_open(struct cfg *cfg, bool need_stopped, struct opconn **out);
/* The connection's store (borrowed). */
struct store *opconn_store(struct opconn *c);
/* True if we started a temporary nats-server child (no server was running on the data directory). */
bool opconn_own_child(const struct opconn *c);
/* Disconnect, stop the temporary child if any, release the data directory. Accepts NULL. */
void opconn_close(struct opconn *c);
