/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Process log: one line per event on stderr, text or JSON, with a level. Thread-safe; each line is written with
 * a single write(2) so lines from different threads never interleave. Never pass secrets or message bodies.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOGL_DEBUG = 0, LOGL_INFO, LOGL_WARN, LOGL_ERROR };

/* Parse "debug"/"info"/"warn"/"error"; returns -1 if unknown. */
int log_level_parse(const char *s);

/* Set level and format (json = one JSON object per line). Safe to call at any time. */
void log_configure(enum log_level level, bool json);

bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Lines that can come in floods (a client aborting requests by the thousand, a failover making every
 * subscription complain): each kind is written once, then at most once per window, with how many were held
 * back. Kinds are told apart by a short key (e.g. the message without its variable part). Thread-safe. */
struct log_limit;
struct log_limit *log_limit_new(int64_t window_ms);
void log_limit_free(struct log_limit *l);
void log_limited(struct log_limit *l, enum log_level level, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
