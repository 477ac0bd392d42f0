/* SPDX-License-Identifier: MIT */
/*
 * The process log. Owns the level and format (atomics, so any thread may log while another reconfigures).
 * Control characters in messages are escaped so that one event is always one line, whatever a caller passes in.
 */
#include "log/log.h"

#include <stdatomic.h>
#include <stdio.h>
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
