/* SPDX-License-Identifier: MIT */
#pragma once
/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). Pure; any thread. */
#include <stdbool.h>
#include <stddef.h>

bool utf8_valid(const char *s, size_t len);
/* Number of code points in a valid UTF-8 string. */
size_t utf8_count(const char *s, size_t len);
