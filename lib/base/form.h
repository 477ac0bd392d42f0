/* SPDX-License-Identifier: MIT */
#pragma once
/* application/x-www-form-urlencoded bodies. Pure; any thread. */
#include <stddef.h>

#include "base/status.h"

struct form;

/* Parse body (not NUL-terminated). CH_EINVAL on bad %-escapes or a NUL byte. *out is the caller's (form_free). */
enum ch_status form_parse(const char *body, size_t len, struct form **out, struct ch_err *err);
void form_free(struct form *f);
/* The first value for name, or NULL. Borrowed. */
const char *form_get(const struct form *f, const char *name);
