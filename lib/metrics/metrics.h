/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Process-wide Prometheus metrics: every metric Chatto exports is named once, in the table in metrics.c (the one
 * list to read for what exists), and rendered in the text exposition format (version 0.0.4). Counters and
 * histograms are kept here, per series of up to two label values; gauges are read when scraped, from a callback
 * their owner registers. Any thread may count; a series is found under its family's mutex (a few hundred series
 * at most: label values come from bounded sets, such as routes and status codes, never from user input).
 */
#include <stddef.h>

enum metric_id {
    MET_BUILD_INFO,          /* gauge 1 {version} */
    MET_READY,               /* gauge: /readyz would answer 200 */
    MET_HTTP_REQUESTS,       /* counter {route, code} */
    MET_HTTP_DURATION,       /* histogram {route} */
    MET_HTTP_INFLIGHT,       /* gauge */
    MET_WS_CONNECTIONS,      /* gauge */
    MET_WS_FRAMES,           /* counter: frames sent */
    MET_WS_HANDOFFS,         /* counter: frames realtime handed to the WebSocket loop */
    MET_WS_SLOW,             /* counter: sockets closed for not reading */
    MET_JS_PUBLISH_DURATION, /* histogram: JetStream publish round trips */
    MET_JS_ERRORS,           /* counter {op} */
    MET_FOLLOWER_LAG,        /* gauge: events in the stream this process's model has not applied */
    MET_FOLLOWER_REPAIRS,    /* counter {kind}: followers' skipped messages fetched, stalls resubscribed */
    MET_MODEL_ROOMS,         /* gauge */
    MET_MODEL_MESSAGES,      /* gauge */
    MET_MODEL_COLD_MESSAGES, /* gauge: of those, on the cold timeline (not in memory) */
    MET_MODEL_USERS,         /* gauge */
    MET_BODY_CACHE_BYTES,    /* gauge: message bodies held in memory */
    MET_BODY_CACHE_HITS,     /* counter: bodies shown from memory */
    MET_BODY_FETCHES,        /* counter: bodies read from NATS because they were not in memory */
    MET_LOGIN_FAILURES,      /* counter */
    MET_RATE_LIMITED,        /* counter {limit} */
    MET_NOTIFICATIONS,       /* counter: entries written */
    MET_PUSHES,              /* counter {result} */
    MET_PROC_CPU,            /* gauge-like counter from /proc: process_cpu_seconds_total */
    MET_PROC_RSS,            /* gauge: process_resident_memory_bytes */
    MET_PROC_FDS,            /* gauge: process_open_fds */
    MET_PROC_MAX_FDS,        /* gauge: process_max_fds */
    MET_PROC_START,          /* gauge: process_start_time_seconds */
    MET_COUNT
};

/* Add by to a counter's series (labels: as many as the metric has, NULL for none). A counter without labels is
 * one atomic (whole numbers only), cheap enough for hot paths. */
void metrics_add(enum metric_id m, const char *l1, const char *l2, double by);
static inline void metrics_inc(enum metric_id m, const char *l1, const char *l2) { metrics_add(m, l1, l2, 1); }
/* Record one observation (seconds for durations) in a histogram. */
void metrics_observe(enum metric_id m, const char *l1, double value);

/* A gauge's value, read at every scrape. The callback may run on any thread; it must not block on NATS. */
typedef double (*metrics_gauge_fn)(void *ctx);
void metrics_set_gauge(enum metric_id m, metrics_gauge_fn fn, void *ctx);
/* The build-info gauge's version label (set once at start). */
void metrics_set_version(const char *version);

/* The whole exposition, NUL-terminated; the caller frees it. NULL when out of memory. */
char *metrics_render(size_t *len);
/* Forget every series and callback (tests). */
void metrics_reset(void);
