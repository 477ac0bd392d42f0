/* SPDX-License-Identifier: MIT */
/*
 * The INI reader: Debian's inih (r55) plus the fixes our config format needs (see STYLE.md):
 *   - inih silently truncates lines over 200 bytes, so we reject long lines first, naming the line;
 *   - inih treats an indented line as a continuation of the previous key, so we strip leading whitespace
 *     (TOML users indent keys under sections) and never rely on continuations;
 *   - inih keeps double quotes and '#' comments, and cuts a value at " ;" even inside quotes ("a ; b" arrives
 *     as `"a`), so the handler ignores inih's value and unquotes the value text from our own copy of the line,
 *     stripping '#' and ';' comments outside quotes;
 *   - inih does not tell the handler the line number, so we map the n-th handler call to the n-th key line,
 *     which is exact once no line is a continuation and our idea of a key line is exactly inih's.
 * Called at start-up on one thread.
 */
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"

#define LINE_MAX_BYTES 198 /* inih reads lines into 200 bytes: 198 + '\n' + NUL */
#define FILE_MAX_BYTES (1 << 20)

/* A line inih hands to the handler: its number and the value text after the '=' or ':' (not NUL-terminated;
 * may hold surrounding whitespace, a trailing '\r' and a comment). */
struct key_line {
    int line;
    const char *val;
    size_t len;
};

struct ini_ctx {
    struct cfg *cfg;
    const char *name;
    const struct key_line *key_lines; /* the n-th key line */
    size_t nkeys, calls;
    int set_line[CFG_KEY_COUNT];
    int err_line; /* first handler error, 0 if none */
    struct ch_err err;
};

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Unquote a value as TOML would: "..." with \" \\ \n \t \r escapes, '...' literal, or bare text where a '#' or ';'
 * at the start or after whitespace starts a comment. in is NUL-terminated and already trimmed; out has at least
 * strlen(in)+1 bytes. Returns NULL or the reason the value is malformed. */
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
        for (p++; is_space(*p); p++)
            ;
        if (*p && *p != '#' && *p != ';')
            return "unexpected text after the closing quote";
        out[o] = '\0';
        return NULL;
    }
    for (p = in; *p; p++) {
        if ((*p == '#' || *p == ';') && (p == in || is_space(p[-1])))
            break;
        out[o++] = *p;
    }
    while (o > 0 && is_space(out[o - 1]))
        o--;
    out[o] = '\0';
    return NULL;
}

/* True if sec is empty or some key lives in sec or below it ("core" for "core.assets.*"). */
static bool
section_known(const char *sec)
{
    size_t n = strlen(sec);

    if (n == 0)
        return true;
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const char *d = cfg_keyinfo((enum cfg_key)i)->dotted;
        if (strncmp(d, sec, n) == 0 && d[n] == '.')
            return true;
    }
    return false;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    const struct key_line *kl = x->calls < x->nkeys ? &x->key_lines[x->calls] : NULL;
    int line = kl ? kl->line : 0;
    char sec[128], *val = NULL, origin[96];
    const char *why, *vp = value;
    size_t a, b, vlen = strlen(value), cap;
    int k;

    x->calls++;
    if (x->err_line)
        return 1; /* report only the first error */
    if (kl) {
        vp = kl->val;
        vlen = kl->len;
    }
    while (vlen > 0 && is_space(*vp))
        vp++, vlen--;
    while (vlen > 0 && is_space(vp[vlen - 1]))
        vlen--;
    cap = 2 * (vlen + 1); /* the trimmed text, then the unquoted value */
    /* inih does not trim "[ spaced ]" section names */
    for (a = 0; section[a] == ' ' || section[a] == '\t'; a++)
        ;
    for (b = strlen(section); b > a && (section[b - 1] == ' ' || section[b - 1] == '\t'); b--)
        ;
    snprintf(sec, sizeof sec, "%.*s", (int)(b - a), section + a);
    snprintf(origin, sizeof origin, "%s:%d", x->name, line);
    k = cfg_key_find(sec, name);
    if (k < 0) {
        if (section_known(sec))
            ch_err_set(&x->err, CH_EINVAL, NULL, "%s: %s%s%s: unknown key", origin, sec, *sec ? "." : "", name);
        else
            ch_err_set(&x->err, CH_EINVAL, NULL, "%s: %s.%s: unknown key (there is no section [%s])", origin, sec,
                       name, sec);
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
    memcpy(val, vp, vlen);
    if ((why = unquote(val, val + vlen + 1)) != NULL) {
        ch_err_set(&x->err, CH_EINVAL, NULL, "%s: %s: %s", origin, cfg_keyinfo((enum cfg_key)k)->dotted, why);
        goto fail;
    }
    if (cfg_set(x->cfg, (enum cfg_key)k, val + vlen + 1, CFG_SRC_FILE, origin, &x->err) != CH_OK)
        goto fail;
    x->set_line[k] = line;
    explicit_bzero(val, cap);
    free(val);
    return 1;
fail:
    if (val)
        explicit_bzero(val, cap); /* an unterminated quote leaves the value without a NUL: never strlen it */
    free(val);
    x->err_line = line;
    return 0;
}

/* Where inih splits a key line: the first '=' or ':' that comes before an inline ';' comment (a ';' after
 * whitespace). NULL if there is none, which inih reports as a syntax error. */
static const char *
key_separator(const char *s, const char *e)
{
    bool was_space = false;

    for (; s < e; s++) {
        if (*s == '=' || *s == ':')
            return s;
        if (was_space && *s == ';')
            return NULL;
        was_space = is_space(*s);
    }
    return NULL;
}

enum ch_status
cfg_load_string(struct cfg *c, const char *text, const char *name, struct ch_err *err)
{
    size_t len = strlen(text), nlines = 1, o = 0, nkeys = 0;
    char *norm = NULL;
    struct key_line *key_lines = NULL;
    int line = 0, r;
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
        const char *s = p, *e = p + n, *sep;

        line++;
        if (n > LINE_MAX_BYTES) {
            st = ch_err_set(err, CH_EINVAL, NULL, "%s:%d: line too long (%zu bytes; at most %d)", name, line, n,
                            LINE_MAX_BYTES);
            goto out;
        }
        /* strip what inih's lskip() strips, so inih never sees an indented line as a continuation */
        while (s < e && is_space(*s))
            s++;
        /* a key line is what inih hands to the handler: not blank, not a comment, not a section, and split by
         * an '=' or ':' before any inline comment */
        if (s < e && *s != ';' && *s != '#' && *s != '[' && (sep = key_separator(s, e)) != NULL) {
            key_lines[nkeys].line = line;
            key_lines[nkeys].val = norm + o + (size_t)(sep + 1 - s);
            key_lines[nkeys].len = (size_t)(e - sep - 1);
            nkeys++;
        }
        memcpy(norm + o, s, (size_t)(e - s));
        o += (size_t)(e - s);
        p = e;
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
        st = ch_err_set(err, CH_EINVAL, NULL, "%s: cannot read config file: %m", path); /* e.g. a directory */
    } else if (n > FILE_MAX_BYTES) {
        st = ch_err_set(err, CH_EINVAL, NULL, "%s: config file larger than 1 MiB", path);
    } else if (memchr(buf, '\0', n)) {
        st = ch_err_set(err, CH_EINVAL, NULL, "%s: config file contains a NUL byte (binary file?)", path);
    } else {
        buf[n] = '\0';
        st = cfg_load_string(c, buf, path, err);
    }
    explicit_bzero(buf, n);
    free(buf);
    fclose(f);
    return st;
}
