/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Parsers for typed configuration values and other small text formats. Pure functions, any thread.
 * Each returns CH_OK and writes *out, or CH_EINVAL with a reason in err (the caller adds the key name);
 * *out is written only on success.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* true/false, yes/no, on/off, 1/0 (case-insensitive). */
enum ch_status parse_bool(const char *s, bool *out, struct ch_err *err);

/* s without the blanks (spaces, tabs) around it: where it starts, and its length in *len. */
const char *parse_trim(const char *s, size_t *len);

/* A decimal integer in [min, max], no trailing garbage. */
enum ch_status parse_int(const char *s, int64_t min, int64_t max, int64_t *out, struct ch_err *err);

/* A TCP port 0..65535. */
enum ch_status parse_port(const char *s, int64_t *out, struct ch_err *err);

/* A byte size: "1048576", "25MB", "25 MiB", "4 kb". KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB of 1024;
 * units are case-insensitive, whitespace between number and unit allowed. Result in bytes. */
enum ch_status parse_size(const char *s, int64_t *out, struct ch_err *err);

/* A duration: one or more <integer><unit> groups with units ms, s, m, h, d, w ("90d", "15m", "1h30m", "500ms").
 * A bare "0" is allowed. Result in milliseconds. */
enum ch_status parse_duration(const char *s, int64_t *out, struct ch_err *err);

/* An absolute URL whose scheme is one of the '|'-separated schemes (e.g. "http|https"), with a non-empty host.
 * No whitespace or control characters. */
enum ch_status parse_url(const char *s, const char *schemes, struct ch_err *err);

/* The origin of an absolute URL into buf, serialised as browsers send it in an Origin header:
 * "scheme://host[:port]", lower-cased, without the scheme's default port (80 for http/ws, 443 for https/wss).
 * Returns CH_EINVAL if the URL has no "://", no host or userinfo, or buf is too small. */
enum ch_status parse_url_origin(const char *url, char *buf, size_t len);

/* Split a comma-separated list into trimmed, non-empty items. *items is a NULL-terminated array owned by the
 * caller, freed with parse_list_free(). */
enum ch_status parse_list(const char *s, char ***items, size_t *count, struct ch_err *err);
void parse_list_free(char **items);

/* Format ms as the shortest exact duration string ("90d", "1h30m", "0"). */
void fmt_duration(int64_t ms, char *buf, size_t len);
/* Format bytes as the shortest exact size string ("25MB", "64KiB", "100B"). */
void fmt_size(int64_t bytes, char *buf, size_t len);
