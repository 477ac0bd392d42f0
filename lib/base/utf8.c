/* SPDX-License-Identifier: MIT */
/* UTF-8 validation by the table in RFC 3629 section 4. Pure; any thread. */
#include "base/utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

bool
utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *e = s + len;

    while (s < e) {
        unsigned char c = *s;
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 1;
        else if (c == 0xE0)
            n = 2, lo = 0xA0;
        else if (c == 0xED)
            n = 2, hi = 0x9F; /* no UTF-16 surrogates */
        else if (c >= 0xE1 && c <= 0xEF)
            n = 2;
        else if (c == 0xF0)
            n = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3)
            n = 3;
        else if (c == 0xF4)
            n = 3, hi = 0x8F;
        else
            return false;
        if ((size_t)(e - s) <= n)
            return false;
        if (s[1] < lo || s[1] > hi)
            return false;
        for (size_t i = 2; i <= n; i++)
            if (s[i] < 0x80 || s[i] > 0xBF)
                return false;
        s += n + 1;
    }
    return true;
}

size_t
utf8_count(const char *str, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)str[i] & 0xC0) != 0x80;
    return n;
}

enum ch_status
utf8_clean_text(const char *field, const char *in, size_t max_chars, size_t max_bytes, bool allow_empty,
                bool multiline, char *out, size_t outlen, struct ch_err *err)
{
    const char *a = in, *b = in + strlen(in);
    size_t n;

    while (a < b && isspace((unsigned char)*a))
        a++;
    while (b > a && isspace((unsigned char)b[-1]))
        b--;
    n = (size_t)(b - a);
    if (!n && !allow_empty)
        return ch_err_set(err, CH_EINVAL, field, "must not be empty");
    if (!utf8_valid(a, n))
        return ch_err_set(err, CH_EINVAL, field, "not valid UTF-8");
    if (n > max_bytes || n >= outlen || utf8_count(a, n) > max_chars)
        return ch_err_set(err, CH_EINVAL, field, "must be at most %zu characters", max_chars);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)a[i];
        if ((ch < 0x20 && !(multiline && (ch == '\n' || ch == '\t'))) || ch == 0x7f)
            return ch_err_set(err, CH_EINVAL, field, "must not contain control characters");
    }
    memcpy(out, a, n);
    out[n] = '\0';
    return CH_OK;
}
