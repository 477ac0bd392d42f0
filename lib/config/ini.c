/* SPDX-License-Identifier: MIT */
/*
 * The INI reader: Debian's inih (r55) plus the fixes our config format needs (see STYLE.md):
 *   - inih silently truncates lines over 200 bytes, so we reject long lines first, naming the line;
 *   - inih treats an indented line as a continuation of the previous key, so we strip leading whitespace
 *     (TOML users indent keys under sections) and never rely on continuations;
 *   - inih keeps double quotes and '#' comments, so the handler unquotes values and strips '#' comments;
 *   - inih does not tell the handler the line number, so we map the n-th handler call to the n-th key line,
 *     which is exact once no line is a continuation.
 * Called at start-up on one thread.
 */
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"

#define LINE_MAX_BYTES 198 /* inih reads lines into 200 bytes: 198 + '\n' + NUL */
#define FILE_MAX_BYTES (1 << 20)

struct ini_ctx {
    struct cfg *cfg;
    const char *name;
    const int *key_lines; /* line number of the n-th key line */
    size_t nkeys, calls;
    int set_line[CFG_KEY_COUNT];
    int err_line; /* first handler error, 0 if none */
    struct ch_err err;
};

/* Unquote a value as TOML would: "..." with \" \\ \n \t \r escapes, '...' literal, or bare text where a '#'
 * after whitespace starts a comment. Writes into out (at least strlen(in)+1 bytes). */
static const char *
unquote(const char *in, char *out)
{
    size_t o = 0;
    const char *p;

    if (*in == '"' || *in == '\'') {
        char q = *in;
        for (p = in + 1; *p && *p != q; p++) {
            if (q == '"' && *p == '\\') {
                p++;
                switch (*p) {
                case '"': out[o++] = '"'; break;
                case '\\': out[o++] = '\\'; break;
                case 'n': out[o++] = '\n'; break;
                case 't': out[o++] = '\t'; break;
                case 'r': out[o++] = '\r'; break;
                default: return "unknown escape in quoted value (use \\\" \\\\ \\n \\t or \\r)";
                }
                continue;
            }
            out[o++] = *p;
        }
        if (*p != q)
            return "unterminated quoted value";
        for (p++; *p == ' ' || *p == '\t'; p++)
            ;
        if (*p && *p != '#')
            return "unexpected text after the closing quote";
        out[o] = '\0';
        return NULL;
    }
    for (p = in; *p; p++) {
        if (*p == '#' && (p == in || p[-1] == ' ' || p[-1] == '\t'))
            break;
        out[o++] = *p;
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o] = '\0';
    return NULL;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    int line = x->calls < x->nkeys ? x->key_lines[x->calls] : 0;
    char sec[128], *val = NULL, origin[96];
    const char *why;
    size_t a, b, cap = strlen(value) + 1;
    int k;

    x->calls++;
    if (x->err_line)
        return 1; /* report only the first error */
    /* inih does not trim "[ spaced ]" section names */
    for (a = 0; section[a] == ' ' || section[a] == '\t'; a++)
        ;
    for (b = strlen(section); b > a && (section[b - 1] == ' ' || section[b - 1] == '\t'); b--)
        ;
    snprintf(sec, sizeof sec, "%.*s", (int)(b - a), section + a);
    snprintf(origin, sizeof origin, "%s:%d", x->name, line);
    k = cfg_key_find(sec, name);
    if (k < 0) {
        ch_err_set(&x->err, CH_EINVAL, NULL, "%s: %s%s%s: unknown key", origin, sec, *sec ? "." : "", name);
        goto fail;
    }
    if (x->set_line[k]) {
        ch_err_set(&x->err, CH_EINVAL, NULL, "%s: %s: set twice (first on line %d)", origin,
                   cfg_keyinfo((enum cfg_key)k)->dotted, x->set_line[k]);
        goto fail;
    }
    if (!(val = calloc(1, cap))) {
        ch_err_set(&x->err, CH_ENOMEM, NULL, "out of memory");
        goto fail;
    }
    if ((why = unquote(value, val)) != NULL) {
        ch_err_set(&x->err, CH_EINVAL, NULL, "%s: %s: %s", origin, cfg_keyinfo((enum cfg_key)k)->dotted, why);
        goto fail;
    }
    if (cfg_set(x->cfg, (enum cfg_key)k, val, CFG_SRC_FILE, origin, &x->err) != CH_OK)
        goto fail;
    x->set_line[k] = line;
    explicit_bzero(val, cap);
    free(val);
    return 1;
fail:
    if (val)
        explicit_bzero(val, cap); /* an unterminated quote leaves val without a NUL: never strlen it */
    free(val);
    x->err_line = line;
    return 0;
}

enum ch_status
cfg_load_string(struct cfg *c, const char *text, const char *name, struct ch_err *err)
{
    size_t len = strlen(text), nlines = 1, o = 0, nkeys = 0;
    char *norm = NULL;
    int *key_lines = NULL, line = 0, r;
    struct ini_ctx *x = NULL;
    enum ch_status st = CH_OK;
    const char *p = text;

    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* UTF-8 BOM */
    for (const char *q = p; *q; q++)
        nlines += *q == '\n';
    norm = malloc(len + 1);
    key_lines = calloc(nlines, sizeof *key_lines);
    x = calloc(1, sizeof *x);
    if (!norm || !key_lines || !x) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    while (*p) {
        size_t n = strcspn(p, "\n");
        const char *s = p;

        line++;
        if (n > LINE_MAX_BYTES) {
            st = ch_err_set(err, CH_EINVAL, NULL, "%s:%d: line too long (%zu bytes; at most %d)", name, line, n,
                            LINE_MAX_BYTES);
            goto out;
        }
        while (s < p + n && (*s == ' ' || *s == '\t'))
            s++;
        /* a key line is what inih hands to the handler: not blank, not a comment, not a section */
        if (s < p + n && *s != ';' && *s != '#' && *s != '[' && *s != '\r' &&
            (memchr(s, '=', (size_t)(p + n - s)) || memchr(s, ':', (size_t)(p + n - s))))
            key_lines[nkeys++] = line;
        memcpy(norm + o, s, (size_t)(p + n - s));
        o += (size_t)(p + n - s);
        p += n;
        if (*p == '\n') {
            norm[o++] = '\n';
            p++;
        }
    }
    norm[o] = '\0';
    x->cfg = c;
    x->name = name;
    x->key_lines = key_lines;
    x->nkeys = nkeys;
    r = ini_parse_string(norm, handler, x);
    if (r == -2) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    } else if (r != 0) {
        if (x->err_line && x->err_line <= r) {
            if (err)
                *err = x->err;
            st = x->err.status ? x->err.status : CH_EINVAL;
        } else {
            st = ch_err_set(err, CH_EINVAL, NULL, "%s:%d: syntax error (expected `key = value` or `[section]`)",
                            name, r);
        }
    }
out:
    if (norm)
        explicit_bzero(norm, o);
    free(norm);
    free(key_lines);
    free(x);
    return st;
}

enum ch_status
cfg_load_file(struct cfg *c, const char *path, struct ch_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    enum ch_status st;

    if (!f)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "%s: cannot open config file: %m", path);
    buf = malloc(FILE_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    n = fread(buf, 1, FILE_MAX_BYTES + 1, f);
    if (ferror(f)) {
        st = ch_err_set(err, CH_EINVAL, NULL, "%s: read error", path);
    } else if (n > FILE_MAX_BYTES) {
        st = ch_err_set(err, CH_EINVAL, NULL, "%s: config file larger than 1 MiB", path);
    } else if (memchr(buf, '\0', n)) {
        st = ch_err_set(err, CH_EINVAL, NULL, "%s: config file contains a NUL byte (binary file?)", path);
    } else {
        buf[n] = '\0';
        st = cfg_load_string(c, buf, path, err);
    }
    explicit_bzero(buf, n < FILE_MAX_BYTES ? n : FILE_MAX_BYTES);
    free(buf);
    fclose(f);
    return st;
}
