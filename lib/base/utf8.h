/* SPDX-License-Identifier: MIT */
#pragma once
/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), and the one check of
 * user-written text (names, descriptions). Pure; any thread. */
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

bool utf8_valid(const char *s, size_t len);
/* Number of code points in a valid UTF-8 string. */
size_t utf8_count(const char *s, size_t len);

/* Text a person typed: surrounding whitespace trimmed, valid UTF-8, at most max_chars code points and max_bytes
 * bytes, no control characters (multiline also allows newline and tab), non-empty unless allow_empty. The result
 * goes to out (outlen bytes, at least max_bytes + 1); errors name field. */
enum ch_status utf8_clean_text(const char *field, const char *in, size_t max_chars, size_t max_bytes, bool allow_empty,
                               bool multiline, char *out, size_t outlen, struct ch_err *err);
