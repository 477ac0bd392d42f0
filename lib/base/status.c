/* SPDX-License-Identifier: MIT */
/* Status names and the ch_err helpers. Pure functions; any thread. */
#include "base/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
ch_status_str(enum ch_status s)
{
    switch (s) {
    case CH_OK: return "ok";
    case CH_EINVAL: return "invalid_argument";
    case CH_ENOTFOUND: return "not_found";
    case CH_EEXIST: return "already_exists";
    case CH_ECONFLICT: return "failed_precondition";
    case CH_EPERM: return "permission_denied";
    case CH_EAUTH: return "unauthenticated";
    case CH_ELIMIT: return "resource_exhausted";
    case CH_EUNAVAIL: return "unavailable";
    case CH_ENOMEM: return "internal";
    case CH_EINTERNAL: return "internal";
    }
    return "internal";
}

enum ch_status
ch_err_vset(struct ch_err *err, enum ch_status s, const char *field, const char *fmt, va_list ap)
{
    if (!err)
        return s;
    err->status = s;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return s;
}

enum ch_status
ch_err_set(struct ch_err *err, enum ch_status s, const char *field, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ch_err_vset(err, s, field, fmt, ap);
    va_end(ap);
    return s;
}

void
ch_err_clear(struct ch_err *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

const char *
ch_err_text(const struct ch_err *err, char *buf, size_t len)
{
    if (!err)
        snprintf(buf, len, "unknown error");
    else if (err->field[0])
        snprintf(buf, len, "%s: %s", err->field, err->msg);
    else
        snprintf(buf, len, "%s", err->msg[0] ? err->msg : ch_status_str(err->status));
    return buf;
}

void
ch_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "chatto: assertion failed: %s (%s:%d)\n", what, file, line);
    abort();
}
