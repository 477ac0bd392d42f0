/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Token buckets by key (a user id): `rate` tokens a second, at most `burst` saved up. Used for per-user write
 * rates. Buckets live in this process only. Thread-safe.
 */
#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* NULL when out of memory. rate <= 0 means no limit (every take succeeds). */
struct ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(struct ratelimit *rl);
/* Take a token for key at now_ms (monotonic). False when none is left: *retry_ms says when one will be. */
bool ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, int64_t *retry_ms);
