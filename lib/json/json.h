/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * cJSON helpers for request decoding. Every getter names the field in its error, so a handler's
 * `return json_get_str(...)` turns straight into `invalid_argument: roomId: must be 1-64 bytes`.
 * Pure functions; any thread.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define JSON_MAX_DEPTH 32

/* Parse exactly len bytes (no trailing garbage) as a JSON object, nesting at most max_depth. Rejects \u0000
 * (cJSON would silently truncate the string). On success *out is the caller's (cJSON_Delete). */
enum ch_status json_parse_object(const char *buf, size_t len, int max_depth, cJSON **out, struct ch_err *err);

/* Field getters. A missing or null field: CH_EINVAL "required" if required, else CH_OK with *out untouched.
 * Strings must be valid UTF-8 and between min and max bytes long; *out is borrowed from the tree. */
enum ch_status json_get_str(const cJSON *obj, const char *name, bool required, size_t min, size_t max,
                            const char **out, struct ch_err *err);
enum ch_status json_get_bool(const cJSON *obj, const char *name, bool required, bool *out, struct ch_err *err);
/* An integer given as a JSON number or a decimal string (proto3 JSON sends int64 as strings). */
enum ch_status json_get_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max,
                            int64_t *out, struct ch_err *err);
/* An array of strings, each valid UTF-8 of min..max bytes, at most max_items. Unlike the scalar getters it
 * always sets *out and *count: NULL and 0 when the field is missing, null or refused, so the caller frees
 * *out (the array; the strings point into the tree) without tracking which case it got. */
enum ch_status json_get_str_array(const cJSON *obj, const char *name, bool required, size_t max_items, size_t min,
                                  size_t max, const char ***out, size_t *count, struct ch_err *err);

/* Add an int64 as a decimal string (proto3 JSON for 64-bit integers; cJSON's numbers lose precision). */
cJSON *json_add_int64_str(cJSON *obj, const char *name, int64_t v);
/* Add an RFC 3339 UTC timestamp with millisecond precision from Unix milliseconds. */
cJSON *json_add_time(cJSON *obj, const char *name, int64_t unix_ms);
/* Format Unix milliseconds as RFC 3339 ("2026-11-28T17:48:17.577Z"); buf needs 32 bytes. */
void json_fmt_time(int64_t unix_ms, char *buf, size_t len);
/* Reading our own stored records: obj.name as a string (dflt if absent or not a string), and as an int64 written
 * either as a decimal string (how we store int64s: JSON numbers lose precision past 2^53) or a number. */
const char *json_str_or(const cJSON *obj, const char *name, const char *dflt);
int64_t json_int64_or(const cJSON *obj, const char *name, int64_t dflt);
/* Parse an RFC 3339 timestamp ("2026-12-01T20:00:00Z", optional fraction, "Z" or a +hh:mm / -hh:mm offset) into
 * Unix milliseconds. False if it is not one (or outside years 1970-9999). */
bool json_parse_time(const char *s, int64_t *unix_ms);
/* obj.name as an RFC 3339 timestamp (proto3 JSON's google.protobuf.Timestamp); CH_EINVAL naming the field. */
enum ch_status json_get_time(const cJSON *obj, const char *name, bool required, int64_t *unix_ms,
                             struct ch_err *err);

/* Serialize compactly; the result is the caller's, freed with free(). NULL on out-of-memory. */
char *json_print(const cJSON *v, size_t *len);
