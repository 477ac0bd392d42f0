/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The LiveKit reconciler: LiveKit's webhooks can be lost (a restart, a network cut), so one process at a time
 * (the holder of the "livekit_reconciler" lease in NATS) asks LiveKit's RoomService every interval which rooms and
 * participants exist and corrects the call facts: a call whose LiveKit room is gone ends, a participant LiveKit
 * has but the call lacks is recorded as joined, one the call has but LiveKit lacks as left. A call or participant
 * younger than two intervals is left alone (joining happens in Chatto before the browser reaches LiveKit). When
 * LiveKit cannot be listed three times in a row, active calls older than that grace are ended, as upstream does.
 *
 * Threads: start/stop on the main thread; the work on a thread of its own ("calls-reconcile").
 */
#include <stdint.h>

#include "base/status.h"

struct store;
struct chat;
struct calls_reconciler;

struct calls_reconcile_opts {
    struct store *store;
    struct chat *chat;
    const char *url, *api_key, *api_secret, *server_id; /* livekit.*; borrowed for the reconciler's lifetime */
    int64_t interval_ms;
    const char *holder; /* this process's name in the lease (copied) */
};

enum ch_status calls_reconciler_start(const struct calls_reconcile_opts *o, struct calls_reconciler **out,
                                      struct ch_err *err);
/* Stop the thread, give the lease up (while NATS still answers) and free. Accepts NULL. */
void calls_reconciler_stop(struct calls_reconciler *r);
