/* SPDX-License-Identifier: MIT */
/*
 * The search query language: user text → words, prefixes, phrases and filters, and the FTS5 MATCH expression built
 * from them. Pure functions (any thread). Nothing the user typed reaches the engine except inside a double-quoted
 * string, so FTS5 syntax (OR, NOT, NEAR(...), column:, ^, *) can never be injected; what looks like such syntax is
 * refused with a message that names it rather than silently read another way.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/utf8.h"
#include "search/search.h"

#define FILTERS_HELP "in:#room, from:@user, before:YYYY-MM-DD, after:YYYY-MM-DD, has:attachment, is:thread"

static bool
is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* a byte that can be part of a word: ASCII letters and digits, and anything non-ASCII (the tokenizer decides) */
static bool
is_wordy(unsigned char ch)
{
    return isalnum(ch) || ch >= 0x80;
}

static bool
has_wordy(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_wordy((unsigned char)s[i]))
            return true;
    return false;
}

static enum ch_status
push(char ***v, size_t *n, const char *s, size_t len, struct ch_err *err)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    char *copy = strndup(s, len);

    if (!nv || !copy) {
        if (nv)
            *v = nv;
        free(copy);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    *v = nv;
    (*v)[(*n)++] = copy;
    return CH_OK;
}

static void
free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
search_query_free(struct search_query *q)
{
    if (!q)
        return;
    free_list(q->words, q->nwords);
    free_list(q->prefixes, q->nprefixes);
    free_list(q->phrases, q->nphrases);
    free_list(q->in_rooms, q->nin);
    free_list(q->from_users, q->nfrom);
    free(q);
}

bool
search_query_has_text(const struct search_query *q)
{
    return q->nwords + q->nprefixes + q->nphrases > 0;
}

/* YYYY-MM-DD (UTC) → ms at 00:00 of that day */
static bool
parse_day(const char *s, size_t n, int64_t *out)
{
    int y, m, d;
    struct tm tm = { 0 };

    if (n != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    y = atoi(s);
    m = atoi(s + 5);
    d = atoi(s + 8);
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) /* 2026-02-30 normalises to March: refuse */
        return false;
    *out = (int64_t)t * 1000;
    return true;
}

static enum ch_status
filter(struct search_query *q, const char *name, size_t nlen, const char *v, size_t vlen, struct ch_err *err)
{
    char nm[16];

    snprintf(nm, sizeof nm, "%.*s", (int)(nlen < 15 ? nlen : 15), name);
    for (char *p = nm; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!strcmp(nm, "in") || !strcmp(nm, "from")) {
        bool in = nm[0] == 'i';
        if (vlen && v[0] == (in ? '#' : '@')) {
            v++;
            vlen--;
        }
        if (!vlen)
            return ch_err_set(err, CH_EINVAL, "query", "%s: needs a %s, as in %s", nm, in ? "room" : "user",
                              in ? "in:#general" : "from:@alice");
        if ((in ? q->nin : q->nfrom) >= SEARCH_MAX_FILTER_VALUES)
            return ch_err_set(err, CH_EINVAL, "query", "at most %d %s: filters", SEARCH_MAX_FILTER_VALUES, nm);
        if (vlen > 320)
            return ch_err_set(err, CH_EINVAL, "query", "%s: value too long", nm);
        return in ? push(&q->in_rooms, &q->nin, v, vlen, err) : push(&q->from_users, &q->nfrom, v, vlen, err);
    }
    if (!strcmp(nm, "before") || !strcmp(nm, "after")) {
        int64_t day;
        if (!parse_day(v, vlen, &day))
            return ch_err_set(err, CH_EINVAL, "query", "%s: needs a date as YYYY-MM-DD, not \"%.*s\"", nm,
                              (int)(vlen > 40 ? 40 : vlen), v);
        if (nm[0] == 'b') {
            if (!q->before_ms || day < q->before_ms)
                q->before_ms = day;
        } else {
            int64_t next = day + 86400000LL - 1; /* after the whole day */
            if (next > q->after_ms)
                q->after_ms = next;
        }
        return CH_OK;
    }
    if (!strcmp(nm, "has")) {
        if ((vlen == 10 && !strncasecmp(v, "attachment", 10)) || (vlen == 11 && !strncasecmp(v, "attachments", 11)) ||
            (vlen == 4 && !strncasecmp(v, "file", 4)) || (vlen == 5 && !strncasecmp(v, "files", 5))) {
            q->has_attachment = true;
            return CH_OK;
        }
        return ch_err_set(err, CH_EINVAL, "query", "has: knows only has:attachment, not has:%.*s",
                          (int)(vlen > 40 ? 40 : vlen), v);
    }
    if (!strcmp(nm, "is")) {
        if (vlen == 6 && !strncasecmp(v, "thread", 6)) {
            q->is_thread = true;
            return CH_OK;
        }
        return ch_err_set(err, CH_EINVAL, "query", "is: knows only is:thread, not is:%.*s",
                          (int)(vlen > 40 ? 40 : vlen), v);
    }
    return ch_err_set(err, CH_EINVAL, "query", "unknown filter \"%.*s:\" (filters are " FILTERS_HELP ")",
                      (int)(nlen > 40 ? 40 : nlen), name);
}

static bool
word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && !memcmp(s, w, n);
}

/* one unquoted token s[0..n) */
static enum ch_status
token(struct search_query *q, const char *s, size_t n, struct ch_err *err)
{
    const char *star = memchr(s, '*', n);

    if (word_is(s, n, "OR") || word_is(s, n, "NOT") || word_is(s, n, "NEAR") || (n >= 5 && !memcmp(s, "NEAR(", 5)) ||
        (n >= 5 && !memcmp(s, "NEAR/", 5)))
        return ch_err_set(err, CH_EINVAL, "query",
                          "%s is not supported: every word must match (put text in quotes to search for it as is)",
                          n >= 4 && !memcmp(s, "NEAR", 4) ? "NEAR" : word_is(s, n, "OR") ? "OR" : "NOT");
    if (star) {
        if (star != s + n - 1 || !has_wordy(s, n - 1))
            return ch_err_set(err, CH_EINVAL, "query",
                              "* is allowed only at the end of a word, for prefix search (as in deplo*)");
        size_t w = 0;
        for (size_t i = 0; i + 1 < n; i++)
            w += is_wordy((unsigned char)s[i]);
        if (w < 2)
            return ch_err_set(err, CH_EINVAL, "query", "a prefix needs at least 2 letters before the *");
        return push(&q->prefixes, &q->nprefixes, s, n - 1, err);
    }
    if (!has_wordy(s, n))
        return CH_OK; /* punctuation alone: nothing to match */
    return push(&q->words, &q->nwords, s, n, err);
}

enum ch_status
search_query_parse(const char *text, struct search_query **out, struct ch_err *err)
{
    struct search_query *q = NULL;
    enum ch_status st = CH_OK;
    size_t len, i = 0, nand = 0;
    bool last_was_and = false, any_text_before = false;

    if (!text || !*text)
        return ch_err_set(err, CH_EINVAL, "query", "required");
    len = strlen(text);
    if (len > SEARCH_QUERY_MAX_BYTES)
        return ch_err_set(err, CH_EINVAL, "query", "too long (at most %d bytes)", SEARCH_QUERY_MAX_BYTES);
    if (!utf8_valid(text, len))
        return ch_err_set(err, CH_EINVAL, "query", "not valid UTF-8");
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)text[k] < 0x20 && !is_space(text[k]))
            return ch_err_set(err, CH_EINVAL, "query", "control characters are not allowed");
    if (!(q = calloc(1, sizeof *q)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");

    while (st == CH_OK) {
        while (i < len && is_space(text[i]))
            i++;
        if (i >= len)
            break;
        size_t before = q->nwords + q->nprefixes + q->nphrases;
        if (text[i] == '"') {
            const char *end = memchr(text + i + 1, '"', len - i - 1);
            if (!end) {
                st = ch_err_set(err, CH_EINVAL, "query", "unbalanced quote: the \" at character %zu is never closed",
                                i + 1);
                break;
            }
            size_t plen = (size_t)(end - (text + i + 1));
            if (!has_wordy(text + i + 1, plen)) {
                st = ch_err_set(err, CH_EINVAL, "query", "empty phrase: put words between the quotes");
                break;
            }
            st = push(&q->phrases, &q->nphrases, text + i + 1, plen, err);
            i = (size_t)(end - text) + 1;
            if (i < len && text[i] == '*') {
                st = ch_err_set(err, CH_EINVAL, "query", "* after a phrase is not supported (use it after a word)");
                break;
            }
        } else {
            size_t start = i;
            while (i < len && !is_space(text[i]) && text[i] != '"')
                i++;
            const char *s = text + start, *colon = memchr(s, ':', i - start);
            size_t n = i - start;
            bool is_filter = colon && colon > s;
            for (const char *p = s; is_filter && p < colon; p++)
                is_filter = isalpha((unsigned char)*p) != 0;
            if (is_filter && colon + 2 < s + n && colon[1] == '/' && colon[2] == '/')
                is_filter = false; /* a URL (https://...) is text */
            if (is_filter) {
                const char *v = colon + 1;
                size_t vlen = (size_t)(s + n - v);
                if (vlen == 0 && i < len && text[i] == '"') { /* in:"Room Name" */
                    const char *end = memchr(text + i + 1, '"', len - i - 1);
                    if (!end) {
                        st = ch_err_set(err, CH_EINVAL, "query",
                                        "unbalanced quote: the \" at character %zu is never closed", i + 1);
                        break;
                    }
                    v = text + i + 1;
                    vlen = (size_t)(end - v);
                    i = (size_t)(end - text) + 1;
                }
                st = filter(q, s, (size_t)(colon - s), v, vlen, err);
                last_was_and = false;
                continue;
            }
            if (word_is(s, n, "AND")) {
                if (!any_text_before || last_was_and) {
                    st = ch_err_set(err, CH_EINVAL, "query", "AND must stand between two words");
                    break;
                }
                last_was_and = true;
                nand++;
                continue;
            }
            st = token(q, s, n, err);
        }
        if (q->nwords + q->nprefixes + q->nphrases > before) {
            any_text_before = true;
            last_was_and = false;
        }
        if (q->nwords + q->nprefixes + q->nphrases > SEARCH_MAX_TERMS)
            st = ch_err_set(err, CH_EINVAL, "query", "too many words (at most %d)", SEARCH_MAX_TERMS);
    }
    if (st == CH_OK && last_was_and)
        st = ch_err_set(err, CH_EINVAL, "query", "AND must stand between two words");
    if (st == CH_OK && !search_query_has_text(q) && !q->nin && !q->nfrom && !q->after_ms && !q->before_ms &&
        !q->has_attachment && !q->is_thread)
        st = ch_err_set(err, CH_EINVAL, "query", "nothing to search for: give a word, a \"phrase\" or a filter");
    if (st == CH_OK && q->after_ms && q->before_ms && q->after_ms >= q->before_ms)
        st = ch_err_set(err, CH_EINVAL, "query", "after: must be earlier than before:");
    (void)nand;
    if (st != CH_OK) {
        search_query_free(q);
        return st;
    }
    *out = q;
    return CH_OK;
}

/* append "s" with inner quotes doubled */
static bool
quoted(char **buf, size_t *len, size_t *cap, const char *s, const char *suffix)
{
    size_t need = *len + 2 * strlen(s) + strlen(suffix) + 4;

    if (need > *cap) {
        size_t nc = need * 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return false;
        *buf = nb;
        *cap = nc;
    }
    if (*len)
        (*buf)[(*len)++] = ' ';
    (*buf)[(*len)++] = '"';
    for (; *s; s++) {
        if (*s == '"')
            (*buf)[(*len)++] = '"';
        (*buf)[(*len)++] = *s;
    }
    (*buf)[(*len)++] = '"';
    for (; *suffix; suffix++)
        (*buf)[(*len)++] = *suffix;
    (*buf)[*len] = '\0';
    return true;
}

char *
search_match_expr(const char *const *words, size_t nwords, const char *const *prefixes, size_t nprefixes,
                  const char *const *phrases, size_t nphrases)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;

    if (nwords + nprefixes + nphrases == 0)
        return NULL;
    for (size_t i = 0; ok && i < nphrases; i++)
        ok = quoted(&buf, &len, &cap, phrases[i], "");
    for (size_t i = 0; ok && i < nwords; i++)
        ok = quoted(&buf, &len, &cap, words[i], "");
    for (size_t i = 0; ok && i < nprefixes; i++)
        ok = quoted(&buf, &len, &cap, prefixes[i], " *");
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}
