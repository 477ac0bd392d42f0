/* SPDX-License-Identifier: MIT */
/* A small urlencoded-form decoder for the account endpoints (HTML forms post this). Pure; any thread. */
#include "base/form.h"

#include <stdlib.h>
#include <string.h>

struct form {
    size_t n;
    char **names, **values;
};

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..len) into a fresh string; NULL on a bad escape or an encoded NUL. */
static char *
decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0 || (hi | lo) == 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '\0') {
            free(out);
            return NULL;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

void
form_free(struct form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        if (f->values[i])
            explicit_bzero(f->values[i], strlen(f->values[i])); /* passwords travel in forms */
        free(f->values[i]);
    }
    free(f->names);
    free(f->values);
    free(f);
}

enum ch_status
form_parse(const char *body, size_t len, struct form **out, struct ch_err *err)
{
    struct form *f = calloc(1, sizeof *f);
    size_t cap = 1;

    if (!f)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < len; i++)
        cap += body[i] == '&';
    f->names = calloc(cap, sizeof *f->names);
    f->values = calloc(cap, sizeof *f->values);
    if (!f->names || !f->values) {
        form_free(f);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(body + i, '=', j - i);
            size_t nl = eq ? (size_t)(eq - (body + i)) : j - i;
            char *name = decode(body + i, nl);
            char *value = eq ? decode(eq + 1, (size_t)(body + j - eq - 1)) : strdup("");
            if (!name || !value) {
                free(name);
                free(value);
                form_free(f);
                return ch_err_set(err, CH_EINVAL, NULL, "malformed form body (bad %%-escape)");
            }
            f->names[f->n] = name;
            f->values[f->n] = value;
            f->n++;
        }
        i = j + 1;
    }
    *out = f;
    return CH_OK;
}

const char *
form_get(const struct form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}
