/* SPDX-License-Identifier: MIT */
/*
 * Typed value parsers (config, request fields). strtoll with end pointer and ERANGE checks everywhere;
 * nothing here allocates except parse_list. Any thread.
 */
#include "base/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *
skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

const char *
parse_trim(const char *s, size_t *len)
{
    size_t n;

    s = skip_ws(s);
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return s;
}

enum ch_status
parse_bool(const char *s, bool *out, struct ch_err *err)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    size_t n;
    const char *t = parse_trim(s, &n); /* blanks around are ignored, as for numbers, sizes and durations */

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == n && strncasecmp(t, yes[i], n) == 0) {
            *out = true;
            return CH_OK;
        }
        if (strlen(no[i]) == n && strncasecmp(t, no[i], n) == 0) {
            *out = false;
            return CH_OK;
        }
    }
    return ch_err_set(err, CH_EINVAL, NULL, "expected true or false, got '%.40s'", s);
}

/* Parse a non-negative or signed decimal prefix; *end points after the digits. */
static enum ch_status
parse_num_prefix(const char *s, int64_t *out, const char **end, struct ch_err *err)
{
    char *e = NULL;
    long long v;

    if (!isdigit((unsigned char)*s) && !((*s == '-' || *s == '+') && isdigit((unsigned char)s[1])))
        return ch_err_set(err, CH_EINVAL, NULL, "expected a number, got '%.40s'", s);
    errno = 0;
    v = strtoll(s, &e, 10);
    if (errno == ERANGE)
        return ch_err_set(err, CH_EINVAL, NULL, "number out of range: '%.40s'", s);
    *out = v;
    *end = e;
    return CH_OK;
}

enum ch_status
parse_int(const char *s, int64_t min, int64_t max, int64_t *out, struct ch_err *err)
{
    int64_t v;
    const char *end;
    enum ch_status st;

    s = skip_ws(s);
    if ((st = parse_num_prefix(s, &v, &end, err)) != CH_OK)
        return st;
    if (*skip_ws(end) != '\0')
        return ch_err_set(err, CH_EINVAL, NULL, "expected an integer, got '%.40s'", s);
    if (v < min || v > max)
        return ch_err_set(err, CH_EINVAL, NULL, "must be between %lld and %lld, got %lld", (long long)min,
                          (long long)max, (long long)v);
    *out = v;
    return CH_OK;
}

enum ch_status
parse_port(const char *s, int64_t *out, struct ch_err *err)
{
    return parse_int(s, 0, 65535, out, err);
}

enum ch_status
parse_size(const char *s, int64_t *out, struct ch_err *err)
{
    static const struct {
        const char *unit;
        int64_t mul;
    } units[] = {
        { "", 1 },
        { "b", 1 },
        { "kb", 1000LL },
        { "mb", 1000LL * 1000 },
        { "gb", 1000LL * 1000 * 1000 },
        { "tb", 1000LL * 1000 * 1000 * 1000 },
        { "kib", 1LL << 10 },
        { "mib", 1LL << 20 },
        { "gib", 1LL << 30 },
        { "tib", 1LL << 40 },
    };
    int64_t v;
    const char *end;
    char unit[8];
    size_t n = 0;
    enum ch_status st;

    s = skip_ws(s);
    if (*s == '-')
        return ch_err_set(err, CH_EINVAL, NULL, "size must not be negative");
    if ((st = parse_num_prefix(s, &v, &end, err)) != CH_OK)
        return st;
    if (*end == '.')
        return ch_err_set(err, CH_EINVAL, NULL, "size must be a whole number, e.g. 1536KiB instead of 1.5MiB");
    end = skip_ws(end);
    while (end[n] && !isspace((unsigned char)end[n]) && n < sizeof unit - 1) {
        unit[n] = (char)tolower((unsigned char)end[n]);
        n++;
    }
    unit[n] = '\0';
    if (*skip_ws(end + n) != '\0')
        return ch_err_set(err, CH_EINVAL, NULL, "unexpected text after size: '%.40s'", s);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].unit) != 0)
            continue;
        if (v > INT64_MAX / units[i].mul)
            return ch_err_set(err, CH_EINVAL, NULL, "size too large: '%.40s'", s);
        *out = v * units[i].mul;
        return CH_OK;
    }
    return ch_err_set(err, CH_EINVAL, NULL, "unknown size unit '%s' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)",
                      unit);
}

enum ch_status
parse_duration(const char *s, int64_t *out, struct ch_err *err)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        /* "ms" must come before "m" so the longest unit wins */
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 }, { "w", 604800000 },
    };
    int64_t total = 0;
    const char *p;
    enum ch_status st;

    p = skip_ws(s);
    if (*p == '0' && *skip_ws(p + 1) == '\0') { /* a bare 0 needs no unit; spaces around it as for "30s " */
        *out = 0;
        return CH_OK;
    }
    if (*p == '\0')
        return ch_err_set(err, CH_EINVAL, NULL, "empty duration");
    while (*p) {
        int64_t v;
        const char *end;
        size_t i;

        if (*p == '-')
            return ch_err_set(err, CH_EINVAL, NULL, "duration must not be negative");
        if ((st = parse_num_prefix(p, &v, &end, NULL)) != CH_OK) {
            if (isdigit((unsigned char)*p))
                return ch_err_set(err, CH_EINVAL, NULL, "duration too large: '%.40s'", s);
            return ch_err_set(err, CH_EINVAL, NULL, "expected a duration like 30s, 15m, 2h or 90d, got '%.40s'", s);
        }
        if (*end == '.')
            return ch_err_set(err, CH_EINVAL, NULL, "duration must use whole numbers, e.g. 90m instead of 1.5h");
        for (i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(end, units[i].unit, ul) == 0 && !isalpha((unsigned char)end[ul]))
                break;
        }
        if (i == sizeof units / sizeof units[0])
            return ch_err_set(err, CH_EINVAL, NULL,
                              "missing or unknown unit in '%.40s' (use ms, s, m, h, d or w, e.g. 30s)", s);
        if (v > (INT64_MAX - total) / units[i].ms)
            return ch_err_set(err, CH_EINVAL, NULL, "duration too large: '%.40s'", s);
        total += v * units[i].ms;
        p = skip_ws(end + strlen(units[i].unit));
    }
    *out = total;
    return CH_OK;
}

enum ch_status
parse_url(const char *s, const char *schemes, struct ch_err *err)
{
    const char *colon = strstr(s, "://");
    const char *host, *p;
    size_t slen;
    bool ok = false;

    for (p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return ch_err_set(err, CH_EINVAL, NULL, "URL must not contain spaces or control characters");
    if (!colon || colon == s)
        return ch_err_set(err, CH_EINVAL, NULL, "expected an absolute URL like %.*s://host:port, got '%.60s'",
                          (int)strcspn(schemes, "|"), schemes, s);
    slen = (size_t)(colon - s);
    for (p = schemes; *p;) {
        size_t n = strcspn(p, "|");
        if (n == slen && strncasecmp(p, s, n) == 0)
            ok = true;
        p += n;
        if (*p == '|')
            p++;
    }
    if (!ok)
        return ch_err_set(err, CH_EINVAL, NULL, "URL scheme must be one of %s, got '%.60s'", schemes, s);
    host = colon + 3;
    if (*host == '\0' || *host == '/' || *host == ':' || *host == '?' || *host == '#')
        return ch_err_set(err, CH_EINVAL, NULL, "URL has no host: '%.60s'", s);
    return CH_OK;
}

enum ch_status
parse_url_origin(const char *url, char *buf, size_t len)
{
    static const struct {
        const char *scheme, *port;
    } defaults[] = { { "http", "80" }, { "https", "443" }, { "ws", "80" }, { "wss", "443" } };
    const char *colon = strstr(url, "://");
    const char *host, *port = NULL;
    size_t slen, hlen, n, i;

    if (!colon || colon == url)
        return CH_EINVAL;
    slen = (size_t)(colon - url);
    host = colon + 3;
    hlen = strcspn(host, "/?#");
    /* userinfo is not part of an origin; we reject it rather than strip it */
    if (memchr(host, '@', hlen))
        return CH_EINVAL;
    /* the port is after the last ':' that follows any "[v6]" literal */
    for (i = hlen; i > 0 && host[i - 1] != ']'; i--)
        if (host[i - 1] == ':') {
            port = host + i;
            break;
        }
    /* browsers send Origin without the scheme's default port (RFC 6454 section 6.2) and without an empty one,
     * so https://x:443 must become the https://x they send */
    if (port) {
        size_t plen = (size_t)(host + hlen - port);
        bool drop = plen == 0;
        for (i = 0; i < sizeof defaults / sizeof defaults[0] && !drop; i++)
            drop = slen == strlen(defaults[i].scheme) && strncasecmp(url, defaults[i].scheme, slen) == 0 &&
                   plen == strlen(defaults[i].port) && memcmp(port, defaults[i].port, plen) == 0;
        if (drop)
            hlen = (size_t)(port - 1 - host);
    }
    if (hlen == 0)
        return CH_EINVAL; /* no host */
    n = (size_t)(host - url) + hlen;
    if (n + 1 > len)
        return CH_EINVAL;
    for (i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)url[i]);
    buf[n] = '\0';
    return CH_OK;
}

void
parse_list_free(char **items)
{
    if (!items)
        return;
    for (char **p = items; *p; p++)
        free(*p);
    free(items);
}

enum ch_status
parse_list(const char *s, char ***items, size_t *count, struct ch_err *err)
{
    size_t n = 0, cap = 1;
    char **v;
    const char *p;

    for (p = s; *p; p++)
        if (*p == ',')
            cap++;
    v = calloc(cap + 1, sizeof *v);
    if (!v)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    for (p = s;;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;

        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            v[n] = strndup(a, (size_t)(b - a));
            if (!v[n]) {
                parse_list_free(v);
                return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
            }
            n++;
        }
        p += len;
        if (*p != ',')
            break;
        p++;
    }
    *items = v;
    *count = n;
    return CH_OK;
}

void
fmt_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = { { "w", 604800000 }, { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
                  { "ms", 1 } };
    size_t off = 0;

    if (len == 0)
        return;
    if (ms <= 0) {
        snprintf(buf, len, "0");
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0] && ms > 0; i++) {
        /* weeks only when exact, so 90d stays 90d rather than 12w6d */
        if (units[i].ms == 604800000 && ms % units[i].ms != 0)
            continue;
        if (ms >= units[i].ms) {
            /* on truncation stop at the end of buf rather than pointing past it */
            int w = snprintf(buf + off, len - off, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            if (w > 0)
                off = off + (size_t)w < len ? off + (size_t)w : len - 1;
            ms %= units[i].ms;
        }
    }
}

void
fmt_size(int64_t b, char *buf, size_t len)
{
    static const struct {
        const char *unit;
        int64_t mul;
    } units[] = { { "TiB", 1LL << 40 }, { "TB", 1000000000000LL }, { "GiB", 1LL << 30 }, { "GB", 1000000000LL },
                  { "MiB", 1LL << 20 }, { "MB", 1000000LL },      { "KiB", 1LL << 10 }, { "KB", 1000LL } };

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (b > 0 && b % units[i].mul == 0) {
            snprintf(buf, len, "%lld%s", (long long)(b / units[i].mul), units[i].unit);
            return;
        }
    }
    snprintf(buf, len, "%lldB", (long long)b);
}
