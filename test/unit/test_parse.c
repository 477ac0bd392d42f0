/* SPDX-License-Identifier: MIT */
/* Typed value parsers: every accepted form and every rejection, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/parse.h"

struct icase {
    const char *in;
    int ok;
    int64_t want;
    const char *msg; /* part of the error, when !ok */
};

static void
run_cases(enum ch_status (*fn)(const char *, int64_t *, struct ch_err *), const struct icase *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ch_err err = { 0 };
        int64_t v = -12345;
        enum ch_status st = fn(c[i].in, &v, &err);
        if (c[i].ok) {
            if (st != CH_OK)
                fail_msg("'%s' should parse, got: %s", c[i].in, err.msg);
            if (v != c[i].want)
                fail_msg("'%s': got %lld, want %lld", c[i].in, (long long)v, (long long)c[i].want);
        } else {
            if (st != CH_EINVAL)
                fail_msg("'%s' should be rejected", c[i].in);
            if (v != -12345)
                fail_msg("'%s': output written on failure", c[i].in);
            if (c[i].msg && !strstr(err.msg, c[i].msg))
                fail_msg("'%s': message '%s' lacks '%s'", c[i].in, err.msg, c[i].msg);
        }
    }
}

static void
test_parse_size_units_and_rejections(void **state)
{
    static const struct icase c[] = {
        { "0", 1, 0, NULL },
        { "1024", 1, 1024, NULL },
        { "25MB", 1, 25000000, NULL },
        { "25 MiB", 1, 26214400, NULL },
        { "4 kb", 1, 4000, NULL },
        { "64KiB", 1, 65536, NULL },
        { "1GiB", 1, 1073741824, NULL },
        { "2TB", 1, 2000000000000LL, NULL },
        { "10B", 1, 10, NULL },
        { "  7mib ", 1, 7340032, NULL },
        { "1.5MB", 0, 0, "whole number" },
        { "-1", 0, 0, "negative" },
        { "10XB", 0, 0, "unknown size unit" },
        { "10 M B", 0, 0, NULL },
        { "9999999999TB", 0, 0, "too large" },
        { "MB", 0, 0, "expected a number" },
        { "", 0, 0, NULL },
        { "12abc", 0, 0, "unknown size unit" },
    };
    (void)state;
    run_cases(parse_size, c, sizeof c / sizeof c[0]);
}

static void
test_parse_duration_units_and_rejections(void **state)
{
    static const struct icase c[] = {
        { "0", 1, 0, NULL },
        { "500ms", 1, 500, NULL },
        { "30s", 1, 30000, NULL },
        { "15m", 1, 900000, NULL },
        { "2h", 1, 7200000, NULL },
        { "90d", 1, 7776000000LL, NULL },
        { "1w", 1, 604800000, NULL },
        { "1h30m", 1, 5400000, NULL },
        { "1h 30m", 1, 5400000, NULL },
        { "10", 0, 0, "unit" },
        { "1.5h", 0, 0, "whole numbers" },
        { "-5s", 0, 0, "negative" },
        { "5x", 0, 0, "unknown unit" },
        { "", 0, 0, "empty" },
        { "s", 0, 0, NULL },
        { "99999999999999999w", 0, 0, NULL },
        { "5mss", 0, 0, NULL },
    };
    (void)state;
    run_cases(parse_duration, c, sizeof c / sizeof c[0]);
}

static enum ch_status
int_0_100(const char *s, int64_t *out, struct ch_err *err)
{
    return parse_int(s, 0, 100, out, err);
}

static void
test_parse_int_bounds_garbage_and_overflow(void **state)
{
    static const struct icase c[] = {
        { "0", 1, 0, NULL },       { "100", 1, 100, NULL },   { " 42 ", 1, 42, NULL },
        { "+7", 1, 7, NULL },      { "101", 0, 0, "between 0 and 100" },
        { "-1", 0, 0, "between" }, { "4x", 0, 0, "integer" }, { "", 0, 0, NULL },
        { "99999999999999999999", 0, 0, "out of range" },      { "0x10", 0, 0, NULL },
    };
    (void)state;
    run_cases(int_0_100, c, sizeof c / sizeof c[0]);
}

static void
test_parse_port(void **state)
{
    static const struct icase c[] = { { "0", 1, 0, NULL }, { "65535", 1, 65535, NULL }, { "65536", 0, 0, NULL },
                                      { "http", 0, 0, "number" } };
    (void)state;
    run_cases(parse_port, c, sizeof c / sizeof c[0]);
}

static void
test_parse_bool_spellings(void **state)
{
    const char *yes[] = { "true", "TRUE", "yes", "On", "1" }, *no[] = { "false", "no", "OFF", "0" },
               *bad[] = { "", "maybe", "2", "truee", " true" };
    bool b;
    (void)state;
    for (size_t i = 0; i < 5; i++) {
        b = false;
        assert_int_equal(parse_bool(yes[i], &b, NULL), CH_OK);
        assert_true(b);
    }
    for (size_t i = 0; i < 4; i++) {
        b = true;
        assert_int_equal(parse_bool(no[i], &b, NULL), CH_OK);
        assert_false(b);
    }
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(parse_bool(bad[i], &b, NULL), CH_EINVAL);
}

static void
test_parse_url_schemes_and_hosts(void **state)
{
    struct ch_err err;
    (void)state;
    assert_int_equal(parse_url("http://localhost:4000", "http|https", NULL), CH_OK);
    assert_int_equal(parse_url("HTTPS://chat.example.com/path", "http|https", NULL), CH_OK);
    assert_int_equal(parse_url("nats://n1:4222", "nats|tls", NULL), CH_OK);
    assert_int_equal(parse_url("ftp://x", "http|https", &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "scheme"));
    assert_int_equal(parse_url("http://", "http|https", &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "no host"));
    assert_int_equal(parse_url("localhost:4000", "http|https", &err), CH_EINVAL);
    assert_int_equal(parse_url("http://a b", "http|https", &err), CH_EINVAL);
    assert_int_equal(parse_url("http://a\tb", "http|https", &err), CH_EINVAL);
    assert_int_equal(parse_url("http:///x", "http|https", &err), CH_EINVAL);
}

static void
test_parse_url_origin(void **state)
{
    char buf[128];
    (void)state;
    assert_int_equal(parse_url_origin("HTTPS://Chat.Example.com:8443/x/y?z", buf, sizeof buf), CH_OK);
    assert_string_equal(buf, "https://chat.example.com:8443");
    assert_int_equal(parse_url_origin("http://localhost:4000", buf, sizeof buf), CH_OK);
    assert_string_equal(buf, "http://localhost:4000");
    assert_int_equal(parse_url_origin("http://user@host/", buf, sizeof buf), CH_EINVAL);
    assert_int_equal(parse_url_origin("nonsense", buf, sizeof buf), CH_EINVAL);
}

static void
test_parse_list_trims_and_drops_empty_items(void **state)
{
    char **v = NULL;
    size_t n = 0;
    (void)state;
    assert_int_equal(parse_list(" a, b ,,c ,", &v, &n, NULL), CH_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "b");
    assert_string_equal(v[2], "c");
    assert_null(v[3]);
    parse_list_free(v);
    assert_int_equal(parse_list("", &v, &n, NULL), CH_OK);
    assert_int_equal(n, 0);
    assert_null(v[0]);
    parse_list_free(v);
}

static void
test_fmt_round_trips(void **state)
{
    const int64_t durations[] = { 0, 500, 30000, 900000, 5400000, 7776000000LL, 604800000, 1001 };
    const int64_t sizes[] = { 0, 10, 1024, 65536, 25000000, 26214400, 1000, 1073741824 };
    char buf[64];
    (void)state;
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        int64_t back = -1;
        fmt_duration(durations[i], buf, sizeof buf);
        assert_int_equal(parse_duration(buf, &back, NULL), CH_OK);
        assert_int_equal(back, durations[i]);
    }
    fmt_duration(7776000000LL, buf, sizeof buf);
    assert_string_equal(buf, "90d");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t back = -1;
        fmt_size(sizes[i], buf, sizeof buf);
        assert_int_equal(parse_size(buf, &back, NULL), CH_OK);
        assert_int_equal(back, sizes[i]);
    }
    fmt_size(26214400, buf, sizeof buf);
    assert_string_equal(buf, "25MiB");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size_units_and_rejections),
        cmocka_unit_test(test_parse_duration_units_and_rejections),
        cmocka_unit_test(test_parse_int_bounds_garbage_and_overflow),
        cmocka_unit_test(test_parse_port),
        cmocka_unit_test(test_parse_bool_spellings),
        cmocka_unit_test(test_parse_url_schemes_and_hosts),
        cmocka_unit_test(test_parse_url_origin),
        cmocka_unit_test(test_parse_list_trims_and_drops_empty_items),
        cmocka_unit_test(test_fmt_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
