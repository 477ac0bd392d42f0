/* SPDX-License-Identifier: MIT */
/*
 * lib/base/parse: every accepted spelling and every rejection of the typed value parsers, table-driven. A row
 * that should fail also names a fragment of the message, because the message is what an operator reads; and
 * every failing row checks that the output was left alone (parse.h: *out is written only on success).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/parse.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define UNTOUCHED (-12345)

/* One row for the int64-valued parsers: input, expected outcome, value or message fragment. */
struct icase {
    const char *in;
    int ok;
    int64_t want;
    const char *msg; /* a fragment of err.msg when !ok; NULL to skip the check */
};

static void
check_icase(const char *what, const struct icase *c, enum ch_status st, int64_t v, const struct ch_err *err)
{
    if (c->ok) {
        if (st != CH_OK)
            fail_msg("%s('%s') should parse, got %d: %s", what, c->in, st, err->msg);
        if (v != c->want)
            fail_msg("%s('%s'): got %lld, want %lld", what, c->in, (long long)v, (long long)c->want);
        return;
    }
    if (st != CH_EINVAL)
        fail_msg("%s('%s') should be rejected, got %d (value %lld)", what, c->in, st, (long long)v);
    if (v != UNTOUCHED)
        fail_msg("%s('%s'): output written on failure", what, c->in);
    if (err->msg[0] == '\0')
        fail_msg("%s('%s'): rejected without a message", what, c->in);
    if (c->msg && !strstr(err->msg, c->msg))
        fail_msg("%s('%s'): message '%s' lacks '%s'", what, c->in, err->msg, c->msg);
}

static void
run_icases(const char *what, enum ch_status (*fn)(const char *, int64_t *, struct ch_err *), const struct icase *c,
           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ch_err err = { 0 };
        int64_t v = UNTOUCHED;
        enum ch_status st = fn(c[i].in, &v, &err);
        check_icase(what, &c[i], st, v, &err);
        /* NULL err is allowed everywhere and must not change the outcome */
        v = UNTOUCHED;
        if (fn(c[i].in, &v, NULL) != st)
            fail_msg("%s('%s'): different outcome with err == NULL", what, c[i].in);
    }
}

/* ---- parse_bool ---- */

static void
test_parse_bool_accepts_every_spelling_in_any_case(void **state)
{
    static const struct {
        const char *in;
        bool want;
    } c[] = {
        { "true", true },   { "TRUE", true },   { "True", true },  { "yes", true },   { "YES", true },
        { "On", true },     { "on", true },     { "1", true },     { "false", false }, { "FALSE", false },
        { "False", false }, { "no", false },    { "No", false },   { "off", false },   { "OFF", false },
        { "0", false },     { " true", true },  { "true ", true }, { "\toff\t", false },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        bool b = !c[i].want;
        if (parse_bool(c[i].in, &b, NULL) != CH_OK)
            fail_msg("parse_bool('%s') rejected", c[i].in);
        if (b != c[i].want)
            fail_msg("parse_bool('%s') gave %d", c[i].in, b);
    }
}

static void
test_parse_bool_rejects_garbage_and_leaves_output_alone(void **state)
{
    static const char *const bad[] = { "",    "maybe", "2",   "truee", "  ",      "t rue", "y",
                                       "n",   "t",     "f",   "-1",    "01",      "yes!",  "enabled",
                                       "on\n", "10",   "nope" };
    (void)state;
    for (size_t i = 0; i < N(bad); i++) {
        struct ch_err err = { 0 };
        bool b = true;
        if (parse_bool(bad[i], &b, &err) != CH_EINVAL)
            fail_msg("parse_bool('%s') accepted", bad[i]);
        assert_true(b);
        assert_non_null(strstr(err.msg, "expected true or false"));
    }
}

/* ---- parse_int / parse_port ---- */

static void
test_parse_int_bounds_garbage_overflow_and_spaces(void **state)
{
    static const struct {
        const char *in;
        int64_t min, max;
        int ok;
        int64_t want;
        const char *msg;
    } c[] = {
        { "0", 0, 100, 1, 0, NULL },
        { "100", 0, 100, 1, 100, NULL },
        { "42", 0, 100, 1, 42, NULL },
        { "  42", 0, 100, 1, 42, NULL },  /* leading spaces */
        { "\t42\t", 0, 100, 1, 42, NULL }, /* tabs both sides */
        { "42  ", 0, 100, 1, 42, NULL },
        { "+7", 0, 100, 1, 7, NULL },
        { "007", 0, 100, 1, 7, NULL }, /* decimal, not octal */
        { "-5", -10, 10, 1, -5, NULL },
        { "101", 0, 100, 0, 0, "must be between 0 and 100, got 101" },
        { "-1", 0, 100, 0, 0, "must be between 0 and 100, got -1" },
        { "4x", 0, 100, 0, 0, "expected an integer" },
        { "4 2", 0, 100, 0, 0, "expected an integer" },
        { "1.0", 0, 100, 0, 0, "expected an integer" },
        { "1e2", 0, 100, 0, 0, "expected an integer" },
        { "0x10", 0, 100, 0, 0, "expected an integer" },
        { "", 0, 100, 0, 0, "expected a number" },
        { "   ", 0, 100, 0, 0, "expected a number" },
        { "abc", 0, 100, 0, 0, "expected a number" },
        { "- 5", -10, 10, 0, 0, "expected a number" },
        { "+-5", -10, 10, 0, 0, "expected a number" },
        { "9223372036854775807", INT64_MIN, INT64_MAX, 1, INT64_MAX, NULL },
        { "-9223372036854775808", INT64_MIN, INT64_MAX, 1, INT64_MIN, NULL },
        { "9223372036854775808", INT64_MIN, INT64_MAX, 0, 0, "out of range" },
        { "-9223372036854775809", INT64_MIN, INT64_MAX, 0, 0, "out of range" },
        { "99999999999999999999", 0, 100, 0, 0, "out of range" },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        const struct icase ic = { c[i].in, c[i].ok, c[i].want, c[i].msg };
        struct ch_err err = { 0 };
        int64_t v = UNTOUCHED;
        enum ch_status st = parse_int(c[i].in, c[i].min, c[i].max, &v, &err);
        check_icase("parse_int", &ic, st, v, &err);
    }
}

static void
test_parse_port_accepts_0_to_65535_only(void **state)
{
    static const struct icase c[] = {
        { "0", 1, 0, NULL },         { "1", 1, 1, NULL },
        { "4000", 1, 4000, NULL },   { "65535", 1, 65535, NULL },
        { " 80 ", 1, 80, NULL },     { "65536", 0, 0, "between 0 and 65535" },
        { "-1", 0, 0, "between" },   { "http", 0, 0, "expected a number" },
        { "8o", 0, 0, "integer" },   { "", 0, 0, NULL },
        { "80:81", 0, 0, "integer" }, { "99999999999999999999", 0, 0, "out of range" },
    };
    (void)state;
    run_icases("parse_port", parse_port, c, N(c));
}

/* ---- parse_size ---- */

static void
test_parse_size_accepts_decimal_and_binary_units(void **state)
{
    static const struct icase c[] = {
        { "0", 1, 0, NULL },
        { "1024", 1, 1024, NULL },
        { "25MB", 1, 25000000, NULL },
        { "25 MiB", 1, 26214400, NULL },
        { "4 kb", 1, 4000, NULL },
        { "4KB", 1, 4000, NULL },
        { "4Kb", 1, 4000, NULL },
        { "64KiB", 1, 65536, NULL },
        { "64kib", 1, 65536, NULL },
        { "1MiB", 1, 1048576, NULL },
        { "1GB", 1, 1000000000, NULL },
        { "1GiB", 1, 1073741824, NULL },
        { "2TB", 1, 2000000000000LL, NULL },
        { "1TiB", 1, 1099511627776LL, NULL },
        { "10B", 1, 10, NULL },
        { "10 b", 1, 10, NULL },
        { "0MB", 1, 0, NULL },
        { "+5MB", 1, 5000000, NULL },
        { "  7mib ", 1, 7340032, NULL },
        { "\t5\tKB\t", 1, 5000, NULL },
        { "9223372036854775807", 1, INT64_MAX, NULL },
        { "9223372036854775807B", 1, INT64_MAX, NULL },
        { "8388607TiB", 1, 8388607LL << 40, NULL }, /* the largest whole TiB count that fits */
        { "9223372TB", 1, 9223372000000000000LL, NULL },
    };
    (void)state;
    run_icases("parse_size", parse_size, c, N(c));
}

static void
test_parse_size_rejects_fractions_negatives_bad_units_and_overflow(void **state)
{
    static const struct icase c[] = {
        { "1.5MB", 0, 0, "size must be a whole number" },
        { "1.5MB", 0, 0, "1536KiB instead of 1.5MiB" }, /* the message says what to write instead */
        { "0.5", 0, 0, "whole number" },
        { "-1", 0, 0, "must not be negative" },
        { "-0", 0, 0, "negative" },
        { " -5MB", 0, 0, "negative" },
        { "10XB", 0, 0, "unknown size unit 'xb'" },
        { "10XB", 0, 0, "KiB" }, /* ...and lists the units */
        { "12abc", 0, 0, "unknown size unit" },
        { "5M", 0, 0, "unknown size unit 'm'" },
        { "5K", 0, 0, "unknown size unit" },
        { "5 bytes", 0, 0, "unknown size unit" },
        { "5EiB", 0, 0, "unknown size unit" },
        { "1e3", 0, 0, "unknown size unit" },
        { "10 M B", 0, 0, "unexpected text after size" },
        { "10 MB extra", 0, 0, "unexpected text after size" },
        { "10MB\n", 0, 0, NULL },
        { "9999999999TB", 0, 0, "size too large" },
        { "8388608TiB", 0, 0, "size too large" },
        { "9223373TB", 0, 0, "size too large" },
        { "9223372036854775808", 0, 0, "out of range" },
        { "99999999999999999999MB", 0, 0, "out of range" },
        { "MB", 0, 0, "expected a number" },
        { "", 0, 0, "expected a number" },
        { " ", 0, 0, "expected a number" },
        { "0x10", 0, 0, "unknown size unit" },
    };
    (void)state;
    run_icases("parse_size", parse_size, c, N(c));
}

/* ---- parse_duration ---- */

static void
test_parse_duration_accepts_units_and_groups(void **state)
{
    static const struct icase c[] = {
        { "0", 1, 0, NULL },
        { " 0 ", 1, 0, NULL },
        { "0s", 1, 0, NULL },
        { "0ms", 1, 0, NULL },
        { "500ms", 1, 500, NULL },
        { "1ms", 1, 1, NULL },
        { "30s", 1, 30000, NULL },
        { "15m", 1, 900000, NULL },
        { "2h", 1, 7200000, NULL },
        { "90d", 1, 7776000000LL, NULL },
        { "1w", 1, 604800000, NULL },
        { "2w", 1, 1209600000, NULL },
        { "1h30m", 1, 5400000, NULL },
        { "1h 30m", 1, 5400000, NULL },
        { "1d2h3m4s5ms", 1, 93784005, NULL },
        { "90m", 1, 5400000, NULL },
        { "  30s  ", 1, 30000, NULL },
        { "+5s", 1, 5000, NULL },
        { "1s1ms", 1, 1001, NULL },
        /* INT64_MAX ms is 15250284452w3d7h12m55s807ms: the largest duration that fits */
        { "15250284452w3d7h12m55s807ms", 1, INT64_MAX, NULL },
    };
    (void)state;
    run_icases("parse_duration", parse_duration, c, N(c));
}

static void
test_parse_duration_rejects_missing_units_fractions_negatives_and_overflow(void **state)
{
    static const struct icase c[] = {
        { "10", 0, 0, "missing or unknown unit" },
        { "10", 0, 0, "e.g. 30s" },
        { "00", 0, 0, "unit" },
        { "1.5h", 0, 0, "whole numbers" },
        { "1.5h", 0, 0, "90m instead of 1.5h" },
        { "-5s", 0, 0, "must not be negative" },
        { "1h-5m", 0, 0, "negative" },
        { "5x", 0, 0, "unknown unit" },
        { "5S", 0, 0, "unknown unit" }, /* units are lower case */
        { "5 s", 0, 0, "unknown unit" },
        { "5mss", 0, 0, "unknown unit" },
        { "5sec", 0, 0, "unknown unit" },
        { "5min", 0, 0, "unknown unit" },
        { "1y", 0, 0, "unknown unit" },
        { "1h30", 0, 0, "unknown unit" },
        { "", 0, 0, "empty duration" },
        { "   ", 0, 0, "empty duration" },
        { "s", 0, 0, "expected a duration like 30s" },
        { "h1", 0, 0, "expected a duration" },
        { "1h,30m", 0, 0, "expected a duration" },
        { "99999999999999999999s", 0, 0, "duration too large" },
        { "15250284453w", 0, 0, "duration too large" },
        { "9223372036854775807ms1ms", 0, 0, "duration too large" },
        { "15250284452w3d7h12m55s808ms", 0, 0, "duration too large" },
    };
    (void)state;
    run_icases("parse_duration", parse_duration, c, N(c));
}

/* ---- parse_url ---- */

static void
test_parse_url_checks_scheme_host_and_characters(void **state)
{
    static const struct {
        const char *in, *schemes;
        int ok;
        const char *msg;
    } c[] = {
        { "http://localhost:4000", "http|https", 1, NULL },
        { "https://chat.example.com/path?q=1#f", "http|https", 1, NULL },
        { "HTTPS://chat.example.com", "http|https", 1, NULL }, /* schemes are case-insensitive */
        { "http://[::1]:4000/", "http|https", 1, NULL },
        { "http://10.0.0.1", "http|https", 1, NULL },
        { "nats://n1:4222", "nats|tls", 1, NULL },
        { "tls://n1:4222", "nats|tls", 1, NULL },
        { "wss://lk.example.com", "ws|wss|http|https", 1, NULL },
        { "http://user:pw@host/", "http|https", 1, NULL },
        { "ftp://x", "http|https", 0, "URL scheme must be one of http|https" },
        { "httpx://x", "http|https", 0, "scheme must be one of" },
        { "htt://x", "http|https", 0, "scheme must be one of" },
        { "nats://x", "http|https", 0, "scheme" },
        { "http://x", "nats|tls", 0, "scheme must be one of nats|tls" },
        { "http://", "http|https", 0, "URL has no host" },
        { "http:///x", "http|https", 0, "no host" },
        { "http://:4000", "http|https", 0, "no host" },
        { "http://?q", "http|https", 0, "no host" },
        { "http://#f", "http|https", 0, "no host" },
        { "localhost:4000", "http|https", 0, "expected an absolute URL like http://host:port" },
        { "nats:4222", "nats|tls", 0, "like nats://host:port" },
        { "://host", "http|https", 0, "absolute URL" },
        { "", "http|https", 0, "absolute URL" },
        { "http://a b", "http|https", 0, "must not contain spaces or control characters" },
        { " http://ab", "http|https", 0, "spaces" },
        { "http://ab ", "http|https", 0, "spaces" },
        { "http://a\tb", "http|https", 0, "control characters" },
        { "http://a\nb", "http|https", 0, "control characters" },
        { "http://a\rb", "http|https", 0, "control characters" },
        { "http://a\x01" "b", "http|https", 0, "control characters" },
        { "http://a\x7f" "b", "http|https", 0, "control characters" },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct ch_err err = { 0 };
        enum ch_status st = parse_url(c[i].in, c[i].schemes, &err);
        if (c[i].ok && st != CH_OK)
            fail_msg("parse_url('%s', %s) rejected: %s", c[i].in, c[i].schemes, err.msg);
        if (!c[i].ok && st != CH_EINVAL)
            fail_msg("parse_url('%s', %s) accepted", c[i].in, c[i].schemes);
        if (!c[i].ok && !strstr(err.msg, c[i].msg))
            fail_msg("parse_url('%s'): message '%s' lacks '%s'", c[i].in, err.msg, c[i].msg);
        if (parse_url(c[i].in, c[i].schemes, NULL) != st)
            fail_msg("parse_url('%s'): different outcome with err == NULL", c[i].in);
    }
}

/* ---- parse_url_origin ---- */

static void
test_parse_url_origin_lowercases_strips_path_and_default_port(void **state)
{
    static const struct {
        const char *in;
        int ok;
        const char *want;
    } c[] = {
        { "HTTPS://Chat.Example.com:8443/x/y?z", 1, "https://chat.example.com:8443" },
        { "http://localhost:4000", 1, "http://localhost:4000" },
        { "http://localhost:4000/", 1, "http://localhost:4000" },
        { "https://chat.example.com", 1, "https://chat.example.com" },
        { "https://chat.example.com?x=1", 1, "https://chat.example.com" },
        { "https://chat.example.com#frag", 1, "https://chat.example.com" },
        { "http://[::1]:4000/x", 1, "http://[::1]:4000" },
        { "http://[::1]/x", 1, "http://[::1]" },
        { "http://[::1]:80", 1, "http://[::1]" },
        /* the default port is what a browser leaves out of its Origin header */
        { "https://chat.example.com:443/", 1, "https://chat.example.com" },
        { "HTTPS://Chat.Example.com:443", 1, "https://chat.example.com" },
        { "http://chat.example.com:80/app", 1, "http://chat.example.com" },
        { "wss://x:443", 1, "wss://x" },
        { "http://x:443", 1, "http://x:443" }, /* not http's default */
        { "https://x:80", 1, "https://x:80" },
        { "https://x:4430", 1, "https://x:4430" },
        { "http://x:", 1, "http://x" }, /* an empty port is no port */
        { "http://user@host/", 0, NULL },
        { "http://user:pw@host:4000", 0, NULL },
        { "nonsense", 0, NULL },
        { "", 0, NULL },
        { "://host", 0, NULL },
        { "http://", 0, NULL },
        { "http:///path", 0, NULL },
        { "http://:80", 0, NULL },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char buf[128];
        strcpy(buf, "untouched");
        enum ch_status st = parse_url_origin(c[i].in, buf, sizeof buf);
        if (c[i].ok && st != CH_OK)
            fail_msg("parse_url_origin('%s') rejected", c[i].in);
        if (!c[i].ok && st != CH_EINVAL)
            fail_msg("parse_url_origin('%s') accepted: '%s'", c[i].in, buf);
        if (c[i].ok && strcmp(buf, c[i].want) != 0)
            fail_msg("parse_url_origin('%s') = '%s', want '%s'", c[i].in, buf, c[i].want);
    }
}

static void
test_parse_url_origin_refuses_a_buffer_that_is_too_small(void **state)
{
    char buf[32];
    (void)state;
    /* "http://localhost:4000" is 21 bytes + NUL */
    assert_int_equal(parse_url_origin("http://localhost:4000/x", buf, 22), CH_OK);
    assert_string_equal(buf, "http://localhost:4000");
    memset(buf, 'Z', sizeof buf);
    assert_int_equal(parse_url_origin("http://localhost:4000/x", buf, 21), CH_EINVAL);
    assert_int_equal(buf[0], 'Z');
}

/* ---- parse_list ---- */

static void
test_parse_list_trims_and_drops_empty_items(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want[4];
    } c[] = {
        { "", 0, { NULL } },
        { "   ", 0, { NULL } },
        { ",", 0, { NULL } },
        { " , ,, ", 0, { NULL } },
        { "a", 1, { "a" } },
        { "  a  ", 1, { "a" } },
        { " a, b ,,c ,", 3, { "a", "b", "c" } },
        { ",a,", 1, { "a" } },
        { "a b, c\td", 2, { "a b", "c\td" } }, /* inner whitespace stays */
        { "\ta\t,\nb\n", 2, { "a", "b" } },
        { "10.0.0.0/8, ::1", 2, { "10.0.0.0/8", "::1" } },
        { "nats://a:1,tls://b:2, nats://c:3", 3, { "nats://a:1", "tls://b:2", "nats://c:3" } },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char **v = NULL;
        size_t n = 99;
        assert_int_equal(parse_list(c[i].in, &v, &n, NULL), CH_OK);
        if (n != c[i].n)
            fail_msg("parse_list('%s'): %zu items, want %zu", c[i].in, n, c[i].n);
        for (size_t j = 0; j < n; j++)
            if (strcmp(v[j], c[i].want[j]) != 0)
                fail_msg("parse_list('%s')[%zu] = '%s', want '%s'", c[i].in, j, v[j], c[i].want[j]);
        assert_null(v[n]); /* NULL-terminated */
        parse_list_free(v);
    }
    parse_list_free(NULL);
}

/* ---- fmt_duration / fmt_size ---- */

static void
test_fmt_duration_is_shortest_exact_and_round_trips(void **state)
{
    static const struct {
        int64_t ms;
        const char *want; /* NULL: only the round trip is checked */
    } c[] = {
        { 0, "0" },
        { 1, "1ms" },
        { 500, "500ms" },
        { 1000, "1s" },
        { 1001, "1s1ms" },
        { 30000, "30s" },
        { 900000, "15m" },
        { 5400000, "1h30m" },
        { 86400000, "1d" },
        { 604800000, "1w" },
        { 1209600000, "2w" },
        { 7776000000LL, "90d" }, /* weeks only when exact: not 12w6d */
        { 691200000, "8d" },
        { 93784005, "1d2h3m4s5ms" },
        { 3600000 * 25LL, "1d1h" },
        { INT64_MAX, NULL },
        { INT64_MAX - 1, NULL },
        { 604800000LL * 1000, "1000w" },
    };
    char buf[64];
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        int64_t back = -1;
        fmt_duration(c[i].ms, buf, sizeof buf);
        if (c[i].want && strcmp(buf, c[i].want) != 0)
            fail_msg("fmt_duration(%lld) = '%s', want '%s'", (long long)c[i].ms, buf, c[i].want);
        if (parse_duration(buf, &back, NULL) != CH_OK || back != c[i].ms)
            fail_msg("fmt_duration(%lld) = '%s' parses back as %lld", (long long)c[i].ms, buf, (long long)back);
    }
    fmt_duration(-5, buf, sizeof buf);
    assert_string_equal(buf, "0");
}

static void
test_fmt_size_is_shortest_exact_and_round_trips(void **state)
{
    static const struct {
        int64_t b;
        const char *want;
    } c[] = {
        { 0, "0B" },
        { 10, "10B" },
        { 100, "100B" },
        { 1000, "1KB" },
        { 1024, "1KiB" },
        { 65536, "64KiB" },
        { 25000000, "25MB" },
        { 26214400, "25MiB" },
        { 1073741824, "1GiB" },
        { 1000000000, "1GB" },
        { 1099511627776LL, "1TiB" },
        { 2000000000000LL, "2TB" },
        { 1536, "1536B" }, /* 1.5KiB is not whole: bytes */
        { 1001, "1001B" },
        { INT64_MAX, "9223372036854775807B" },
        { 8388607LL << 40, "8388607TiB" },
    };
    char buf[64];
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        int64_t back = -1;
        fmt_size(c[i].b, buf, sizeof buf);
        if (c[i].want && strcmp(buf, c[i].want) != 0)
            fail_msg("fmt_size(%lld) = '%s', want '%s'", (long long)c[i].b, buf, c[i].want);
        if (parse_size(buf, &back, NULL) != CH_OK || back != c[i].b)
            fail_msg("fmt_size(%lld) = '%s' parses back as %lld", (long long)c[i].b, buf, (long long)back);
    }
}

static void
test_fmt_functions_never_write_past_the_buffer(void **state)
{
    char buf[16];
    (void)state;
    for (size_t len = 0; len <= 8; len++) {
        memset(buf, '#', sizeof buf);
        fmt_duration(93784005, buf, len); /* "1d2h3m4s5ms": 11 characters */
        for (size_t i = len; i < sizeof buf; i++)
            if (buf[i] != '#')
                fail_msg("fmt_duration wrote byte %zu with len %zu", i, len);
        if (len > 0)
            assert_int_equal(strlen(buf), len - 1);
        memset(buf, '#', sizeof buf);
        fmt_size(26214400, buf, len); /* "25MiB" */
        for (size_t i = len; i < sizeof buf; i++)
            if (buf[i] != '#')
                fail_msg("fmt_size wrote byte %zu with len %zu", i, len);
    }
    fmt_duration(93784005, buf, 4);
    assert_string_equal(buf, "1d2");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_bool_accepts_every_spelling_in_any_case),
        cmocka_unit_test(test_parse_bool_rejects_garbage_and_leaves_output_alone),
        cmocka_unit_test(test_parse_int_bounds_garbage_overflow_and_spaces),
        cmocka_unit_test(test_parse_port_accepts_0_to_65535_only),
        cmocka_unit_test(test_parse_size_accepts_decimal_and_binary_units),
        cmocka_unit_test(test_parse_size_rejects_fractions_negatives_bad_units_and_overflow),
        cmocka_unit_test(test_parse_duration_accepts_units_and_groups),
        cmocka_unit_test(test_parse_duration_rejects_missing_units_fractions_negatives_and_overflow),
        cmocka_unit_test(test_parse_url_checks_scheme_host_and_characters),
        cmocka_unit_test(test_parse_url_origin_lowercases_strips_path_and_default_port),
        cmocka_unit_test(test_parse_url_origin_refuses_a_buffer_that_is_too_small),
        cmocka_unit_test(test_parse_list_trims_and_drops_empty_items),
        cmocka_unit_test(test_fmt_duration_is_shortest_exact_and_round_trips),
        cmocka_unit_test(test_fmt_size_is_shortest_exact_and_round_trips),
        cmocka_unit_test(test_fmt_functions_never_write_past_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
