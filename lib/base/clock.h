/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The clocks, in milliseconds, named for which clock they read: monotonic for intervals, deadlines and timeouts
 * (never jumps when the wall clock is set); wall for timestamps that are stored or shown (Unix ms). Any thread.
 */
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ms: only differences between two readings mean anything. */
int64_t clock_mono_ms(void);
/* CLOCK_MONOTONIC in microseconds (latency measurements). */
int64_t clock_mono_us(void);
/* CLOCK_REALTIME in ms since the Unix epoch. */
int64_t clock_wall_ms(void);
/* The CLOCK_REALTIME instant ms_from_now ms ahead (negative means behind), as the absolute timespec that
 * pthread_cond_timedwait (default condattr) and sem_timedwait expect; tv_nsec is always in [0, 1e9). */
struct timespec clock_deadline(int64_t ms_from_now);
