/* SPDX-License-Identifier: MIT */
/* Request-decoding helpers over cJSON; see json.h. Pure; any thread (cJSON hooks are set once at start-up). */
#include "json/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/utf8.h"

/* Depth of nesting, \u0000 inside strings, and raw control characters anywhere. cJSON would copy a raw NUL into
 * a string (which then ends early, like \u0000) and skip any byte below 0x20 as if it were whitespace; RFC 8259
 * allows neither, so we refuse them rather than guess what the client meant. */
static enum ch_status
prescan(const char *buf, size_t len, int max_depth, struct ch_err *err)
{
    int depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if ((unsigned char)c < 0x20 && (in_str || (c != ' ' && c != '\t' && c != '\n' && c != '\r')))
            return ch_err_set(err, CH_EINVAL, NULL, "control character 0x%02x at byte %zu%s", (unsigned char)c, i,
                              in_str ? " inside a string (escape it)" : "");
        if (in_str) {
            if (c == '\\' && i + 1 < len) {
                if (buf[i + 1] == 'u' && i + 5 < len && memcmp(buf + i + 2, "0000", 4) == 0)
                    return ch_err_set(err, CH_EINVAL, NULL, "strings must not contain NUL (\\u0000)");
                i++;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return ch_err_set(err, CH_EINVAL, NULL, "JSON nested deeper than %d levels", max_depth);
        } else if (c == '}' || c == ']')
            depth--;
    }
    return CH_OK;
}

enum ch_status
json_parse_object(const char *buf, size_t len, int max_depth, cJSON **out, struct ch_err *err)
{
    const char *end = NULL;
    cJSON *v;
    enum ch_status st;

    if (len == 0)
        return ch_err_set(err, CH_EINVAL, NULL, "empty request body; send a JSON object such as {}");
    if ((st = prescan(buf, len, max_depth, err)) != CH_OK)
        return st;
    v = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!v) {
        size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        return ch_err_set(err, CH_EINVAL, NULL, "malformed JSON near byte %zu", off);
    }
    while (end < buf + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != buf + len) {
        cJSON_Delete(v);
        return ch_err_set(err, CH_EINVAL, NULL, "unexpected data after the JSON value at byte %zu",
                          (size_t)(end - buf));
    }
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return ch_err_set(err, CH_EINVAL, NULL, "request body must be a JSON object");
    }
    *out = v;
    return CH_OK;
}

static const cJSON *
field(const cJSON *obj, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(f) ? NULL : f;
}

enum ch_status
json_get_str(const cJSON *obj, const char *name, bool required, size_t min, size_t max, const char **out,
             struct ch_err *err)
{
    const cJSON *f = field(obj, name);
    size_t n;

    if (!f)
        return required ? ch_err_set(err, CH_EINVAL, name, "required") : CH_OK;
    if (!cJSON_IsString(f) || !f->valuestring)
        return ch_err_set(err, CH_EINVAL, name, "must be a string");
    n = strlen(f->valuestring);
    if (!utf8_valid(f->valuestring, n))
        return ch_err_set(err, CH_EINVAL, name, "not valid UTF-8");
    if (n < min || n > max) {
        if (min == max)
            return ch_err_set(err, CH_EINVAL, name, "must be %zu bytes", min);
        if (min > 0 && n == 0)
            return ch_err_set(err, CH_EINVAL, name, "must not be empty");
        return ch_err_set(err, CH_EINVAL, name, "must be %zu to %zu bytes long, got %zu", min, max, n);
    }
    *out = f->valuestring;
    return CH_OK;
}

enum ch_status
json_get_bool(const cJSON *obj, const char *name, bool required, bool *out, struct ch_err *err)
{
    const cJSON *f = field(obj, name);

    if (!f)
        return required ? ch_err_set(err, CH_EINVAL, name, "required") : CH_OK;
    if (!cJSON_IsBool(f))
        return ch_err_set(err, CH_EINVAL, name, "must be true or false");
    *out = cJSON_IsTrue(f);
    return CH_OK;
}

enum ch_status
json_get_int(const cJSON *obj, const char *name, bool required, int64_t min, int64_t max, int64_t *out,
             struct ch_err *err)
{
    const cJSON *f = field(obj, name);
    int64_t v;

    if (!f)
        return required ? ch_err_set(err, CH_EINVAL, name, "required") : CH_OK;
    if (cJSON_IsNumber(f)) {
        double d = f->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < -9007199254740991.0 || d > 9007199254740991.0)
            return ch_err_set(err, CH_EINVAL, name, "must be an integer");
        v = (int64_t)d;
    } else if (cJSON_IsString(f) && f->valuestring) {
        char *e = NULL;
        errno = 0;
        long long ll = strtoll(f->valuestring, &e, 10);
        if (errno || e == f->valuestring || *e)
            return ch_err_set(err, CH_EINVAL, name, "must be an integer");
        v = ll;
    } else {
        return ch_err_set(err, CH_EINVAL, name, "must be an integer");
    }
    if (v < min || v > max)
        return ch_err_set(err, CH_EINVAL, name, "must be between %" PRId64 " and %" PRId64, min, max);
    *out = v;
    return CH_OK;
}

enum ch_status
json_get_str_array(const cJSON *obj, const char *name, bool required, size_t max_items, size_t min, size_t max,
                   const char ***out, size_t *count, struct ch_err *err)
{
    const cJSON *f = field(obj, name), *it;
    const char **v;
    size_t n = 0, i = 0;

    *out = NULL; /* absent, or refused: nothing to free */
    *count = 0;
    if (!f)
        return required ? ch_err_set(err, CH_EINVAL, name, "required") : CH_OK;
    if (!cJSON_IsArray(f))
        return ch_err_set(err, CH_EINVAL, name, "must be an array of strings");
    n = (size_t)cJSON_GetArraySize(f);
    if (n > max_items)
        return ch_err_set(err, CH_EINVAL, name, "at most %zu items allowed, got %zu", max_items, n);
    v = calloc(n + 1, sizeof *v);
    if (!v)
        return ch_err_set(err, CH_ENOMEM, name, "out of memory");
    cJSON_ArrayForEach(it, f) {
        size_t len;
        if (!cJSON_IsString(it) || !it->valuestring) {
            free(v);
            return ch_err_set(err, CH_EINVAL, name, "item %zu must be a string", i);
        }
        len = strlen(it->valuestring);
        if (!utf8_valid(it->valuestring, len) || len < min || len > max) {
            free(v);
            return ch_err_set(err, CH_EINVAL, name, "item %zu must be %zu to %zu bytes of UTF-8", i, min, max);
        }
        v[i++] = it->valuestring;
    }
    *out = v;
    *count = n;
    return CH_OK;
}

cJSON *
json_add_int64_str(cJSON *obj, const char *name, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_AddStringToObject(obj, name, buf);
}

void
json_fmt_time(int64_t ms, char *buf, size_t len)
{
    /* floor division, so times before 1970 get a seconds field one lower and a positive millisecond part
     * (written without ms - frac, which would overflow at INT64_MIN) */
    int64_t frac = ms % 1000 < 0 ? ms % 1000 + 1000 : ms % 1000;
    time_t s = (time_t)(ms / 1000 - (ms % 1000 < 0));
    struct tm tm;

    if (!gmtime_r(&s, &tm)) {
        snprintf(buf, len, "1970-01-01T00:00:00.000Z"); /* year beyond int: tm was not filled in */
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

cJSON *
json_add_time(cJSON *obj, const char *name, int64_t unix_ms)
{
    char buf[40];

    json_fmt_time(unix_ms, buf, sizeof buf);
    return cJSON_AddStringToObject(obj, name, buf);
}

char *
json_print(const cJSON *v, size_t *len)
{
    char *s = cJSON_PrintUnformatted(v);

    if (s && len)
        *len = strlen(s);
    return s;
}

static bool
digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool
json_parse_time(const char *s, int64_t *unix_ms)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 0;
    struct tm tm = { 0 };
    const char *p;

    if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                ms = ms * 10 + (*p - '0');
        if (n == 0)
            return false;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        p += 6;
    } else {
        return false;
    }
    if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60 ||
        (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec > 59 ? 59 : sec; /* a leap second is the last second of its minute */
    time_t t = timegm(&tm);
    *unix_ms = ((int64_t)t - (int64_t)sign * (oh * 3600 + om * 60)) * 1000 + ms;
    return true;
}

enum ch_status
json_get_time(const cJSON *obj, const char *name, bool required, int64_t *unix_ms, struct ch_err *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (!f || cJSON_IsNull(f)) {
        if (required)
            return ch_err_set(err, CH_EINVAL, name, "required");
        return CH_OK;
    }
    if (!cJSON_IsString(f) || !json_parse_time(f->valuestring, unix_ms))
        return ch_err_set(err, CH_EINVAL, name, "must be an RFC 3339 timestamp such as 2026-12-01T17:00:00Z");
    return CH_OK;
}

const char *
json_str_or(const cJSON *obj, const char *name, const char *dflt)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(f) && f->valuestring ? f->valuestring : dflt;
}

int64_t
json_int64_or(const cJSON *obj, const char *name, int64_t dflt)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (cJSON_IsString(f) && f->valuestring)
        return strtoll(f->valuestring, NULL, 10);
    return cJSON_IsNumber(f) ? (int64_t)f->valuedouble : dflt;
}
