/* SPDX-License-Identifier: MIT */
/*
 * The process log. Owns the level and format (atomics, so any thread may log while another reconfigures).
 * Control characters in messages are escaped so that one event is always one line, whatever a caller passes in.
 */
#include "log/log.h"

#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

static atomic_int g_level = LOGL_INFO;
static atomic_bool g_json = false;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int
log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOGL_WARN;
    return -1;
}

void
log_configure(enum log_level level, bool json)
{
    atomic_store(&g_level, (int)level);
    atomic_store(&g_json, json);
}

bool
log_enabled(enum log_level level)
{
    return (int)level >= atomic_load(&g_level);
}

/* Append s to out (escaped for JSON when json, else only control characters escaped). */
static size_t
append_escaped(char *out, size_t off, size_t cap, const char *s, bool json)
{
    for (; *s && off + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') {
            out[off++] = '\\';
            out[off++] = 'n';
        } else if (c == '\r') {
            out[off++] = '\\';
            out[off++] = 'r';
        } else if (c == '\t') {
            out[off++] = '\\';
            out[off++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            off += (size_t)snprintf(out + off, cap - off, "\\u%04x", c);
        } else if (json && (c == '"' || c == '\\')) {
            out[off++] = '\\';
            out[off++] = (char)c;
        } else {
            out[off++] = (char)c;
        }
    }
    return off;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    char msg[2048], line[4600], ts[80];
    int64_t now;
    time_t sec;
    struct tm tm;
    size_t off;
    bool json;

    if (!log_enabled(level))
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    now = clock_wall_ms();
    sec = (time_t)(now / 1000);
    gmtime_r(&sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now % 1000));
    json = atomic_load(&g_json);
    if (json)
        off = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                               level_names[level]);
    else
        off = (size_t)snprintf(line, sizeof line, "%s %-5s ", ts, level_names[level]);
    off = append_escaped(line, off, sizeof line - 4, msg, json);
    if (json)
        line[off++] = '"', line[off++] = '}';
    line[off++] = '\n';
    /* one write per line: atomic against other writers for lines under PIPE_BUF */
    for (size_t done = 0; done < off;) {
        ssize_t w = write(STDERR_FILENO, line + done, off - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

/* ---- rate-limited lines ---- */

#define LIMIT_KINDS 16
#define LIMIT_KEY 64

struct log_limit {
    pthread_mutex_t mu;
    int64_t window_ms;
    struct {
        char key[LIMIT_KEY];
        int64_t logged_ms; /* 0: slot unused */
        long held;         /* lines of this kind not written since */
    } kinds[LIMIT_KINDS];
};

struct log_limit *
log_limit_new(int64_t window_ms)
{
    struct log_limit *l = calloc(1, sizeof *l);

    if (l) {
        pthread_mutex_init(&l->mu, NULL);
        l->window_ms = window_ms;
    }
    return l;
}

void
log_limit_free(struct log_limit *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void
log_limited(struct log_limit *l, enum log_level level, const char *kind, const char *fmt, ...)
{
    int64_t now = clock_mono_ms();
    size_t slot = 0;
    long held = 0;
    bool say = false;
    va_list ap;
    char line[1024];

    if (!log_enabled(level))
        return;
    if (!l) {
        va_start(ap, fmt);
        log_vmsg(level, fmt, ap);
        va_end(ap);
        return;
    }
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < LIMIT_KINDS; i++) {
        if (l->kinds[i].logged_ms && !strncmp(l->kinds[i].key, kind, LIMIT_KEY - 1)) {
            slot = i;
            goto found;
        }
        if (l->kinds[i].logged_ms < l->kinds[slot].logged_ms)
            slot = i; /* the kind logged longest ago (or an unused slot) makes room */
    }
    snprintf(l->kinds[slot].key, LIMIT_KEY, "%s", kind);
    l->kinds[slot].logged_ms = 0;
    l->kinds[slot].held = 0;
found:
    if (!l->kinds[slot].logged_ms || now - l->kinds[slot].logged_ms >= l->window_ms) {
        say = true;
        held = l->kinds[slot].held;
        l->kinds[slot].held = 0;
        l->kinds[slot].logged_ms = now ? now : 1;
    } else {
        l->kinds[slot].held++;
    }
    pthread_mutex_unlock(&l->mu);
    if (!say)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (held)
        log_msg(level, "%s (and %ld more like it in the last %lld s)", line, held, (long long)(l->window_ms / 1000));
    else
        log_msg(level, "%s", line);
}
