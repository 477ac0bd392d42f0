/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One status enum for the whole project. It mirrors the Connect error codes so that every edge maps it once
 * (store/ maps natsStatus into it, server/http/reply.c maps it out to HTTP). Human-readable detail travels in
 * struct ch_err, which any function may take as NULL.
 */
#include <stdarg.h>
#include <stddef.h>

enum ch_status {
    CH_OK = 0,
    CH_EINVAL,     /* invalid_argument   400 */
    CH_ENOTFOUND,  /* not_found          404 */
    CH_EEXIST,     /* already_exists     409 */
    CH_ECONFLICT,  /* failed_precondition 412: optimistic-concurrency loss, retry */
    CH_EPERM,      /* permission_denied  403 */
    CH_EAUTH,      /* unauthenticated    401 */
    CH_ELIMIT,     /* resource_exhausted 429 */
    CH_EUNAVAIL,   /* unavailable        503 */
    CH_ENOMEM,     /* internal           500 */
    CH_EINTERNAL,  /* internal           500 */
};

#define CH_ERR_MSG_MAX 320

/* An error for humans: which field (may be empty) and why. Never holds secrets or message bodies. */
struct ch_err {
    enum ch_status status;
    char field[64];
    char msg[CH_ERR_MSG_MAX];
};

/* Short stable name of a status ("invalid_argument", ...); the Connect code for it. */
const char *ch_status_str(enum ch_status s);

/* Fill err (if not NULL) and return s, so callers can write `return ch_err_set(err, CH_EINVAL, "roomId", ...)`.
 * field may be NULL. The message is printf-formatted and truncated to fit. */
enum ch_status ch_err_set(struct ch_err *err, enum ch_status s, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum ch_status ch_err_vset(struct ch_err *err, enum ch_status s, const char *field, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Reset err to CH_OK with empty strings. */
void ch_err_clear(struct ch_err *err);

/* "field: msg" or just "msg" into buf; returns buf. */
const char *ch_err_text(const struct ch_err *err, char *buf, size_t len);

/* Abort with a message when an invariant (never bad input) is broken. */
#define CH_ASSERT(cond)                                                                                             \
    do {                                                                                                            \
        if (!(cond))                                                                                                \
            ch_assert_fail(#cond, __FILE__, __LINE__);                                                              \
    } while (0)
_Noreturn void ch_assert_fail(const char *what, const char *file, int line);

#define FREE_NULL(p)                                                                                                \
    do {                                                                                                            \
        free(p);                                                                                                    \
        (p) = NULL;                                                                                                 \
    } while (0)
