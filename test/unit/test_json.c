/* SPDX-License-Identifier: MIT */
/*
 * lib/json: request decoding. json_parse_object must accept exactly one JSON object in exactly len bytes and
 * refuse everything else with a message a client developer can act on; the getters must name the field, since
 * their error becomes `invalid_argument: <field>: <reason>` verbatim. Table-driven throughout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Parse from a heap copy of exactly len bytes with no NUL after it, so ASan catches any read past len. */
static enum ch_status
parse_exact(const char *body, size_t len, int max_depth, cJSON **out, struct ch_err *err)
{
    char *copy = malloc(len ? len : 1);
    enum ch_status st;

    assert_non_null(copy);
    memcpy(copy, body, len);
    st = json_parse_object(copy, len, max_depth, out, err);
    free(copy);
    return st;
}

struct pcase {
    const char *what;
    const char *body;
    size_t len;
    const char *msg; /* NULL: must parse */
};

#define P(what, lit, msg) { what, lit, sizeof(lit) - 1, msg }

static void
run_pcases(const struct pcase *c, size_t n, int max_depth)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *o = (cJSON *)&o; /* sentinel: must survive a failure */
        struct ch_err err = { 0 };
        enum ch_status st = parse_exact(c[i].body, c[i].len, max_depth, &o, &err);
        if (!c[i].msg) {
            if (st != CH_OK)
                fail_msg("%s: rejected: %s", c[i].what, err.msg);
            assert_true(cJSON_IsObject(o));
            cJSON_Delete(o);
            continue;
        }
        if (st != CH_EINVAL)
            fail_msg("%s: accepted", c[i].what);
        if (o != (cJSON *)&o)
            fail_msg("%s: output written on failure", c[i].what);
        if (!strstr(err.msg, c[i].msg))
            fail_msg("%s: message '%s' lacks '%s'", c[i].what, err.msg, c[i].msg);
    }
}

static void
test_json_parse_object_accepts_one_object_with_surrounding_whitespace(void **state)
{
    static const struct pcase c[] = {
        P("empty object", "{}", NULL),
        P("whitespace around", " \t\r\n{\"a\":[1,{\"b\":2}]}\n\r\t ", NULL),
        P("all value types", "{\"s\":\"x\",\"n\":-1.5e3,\"t\":true,\"f\":false,\"z\":null,\"a\":[],\"o\":{}}", NULL),
        P("escaped backslash before u0000 is not a NUL", "{\"a\":\"\\\\u0000\"}", NULL),
        P("escaped quote does not end the string", "{\"a\":\"\\\"}[[[\"}", NULL),
        P("brackets inside strings do not nest", "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", NULL),
        P("escaped control characters", "{\"a\":\"tab\\there\\nnl\\u0001\"}", NULL),
        P("surrogate pair escape", "{\"a\":\"\\ud83d\\ude00\"}", NULL),
        P("raw UTF-8", "{\"a\":\"h\xc3\xa9llo \xe2\x82\xac\"}", NULL),
    };
    (void)state;
    run_pcases(c, N(c), JSON_MAX_DEPTH);
}

static void
test_json_parse_object_rejects_empty_garbage_and_non_objects(void **state)
{
    static const struct pcase c[] = {
        P("empty body", "", "empty request body; send a JSON object such as {}"),
        P("whitespace only", "   ", "malformed JSON near byte"),
        P("unclosed object", "{", "malformed JSON near byte 0"),
        P("missing value", "{\"a\":}", "malformed JSON near byte 5"),
        P("missing colon", "{\"a\" 1}", "malformed JSON near byte 5"),
        P("trailing comma", "{\"a\":1,}", "malformed JSON near byte 7"),
        P("single quotes", "{'a':1}", "malformed JSON near byte"),
        P("bad literal", "{\"a\":tru}", "malformed JSON near byte 5"),
        P("NaN", "{\"a\":NaN}", "malformed JSON near byte 5"),
        P("unterminated string", "{\"a\":\"x}", "malformed JSON near byte 6"),
        P("lone high surrogate", "{\"a\":\"\\ud800\"}", "malformed JSON"),
        P("lone low surrogate", "{\"a\":\"\\udc00x\"}", "malformed JSON"),
        P("trailing garbage", "{\"a\":1} x", "unexpected data after the JSON value at byte 8"),
        P("two objects", "{\"a\":1}{}", "unexpected data after the JSON value at byte 7"),
        P("trailing comma after object", "{},", "unexpected data after the JSON value at byte 2"),
        P("array", "[]", "request body must be a JSON object"),
        P("array of objects", "[{}]", "must be a JSON object"),
        P("number", "3", "must be a JSON object"),
        P("string", "\"s\"", "must be a JSON object"),
        P("null", "null", "must be a JSON object"),
        P("true", "true", "must be a JSON object"),
    };
    (void)state;
    run_pcases(c, N(c), JSON_MAX_DEPTH);
}

static void
test_json_parse_object_rejects_nul_and_raw_control_characters(void **state)
{
    static const struct pcase c[] = {
        P("\\u0000 in a value", "{\"a\":\"x\\u0000y\"}", "strings must not contain NUL (\\u0000)"),
        P("\\u0000 in a key", "{\"a\\u0000b\":1}", "NUL"),
        P("\\u0000 alone", "{\"a\":\"\\u0000\"}", "NUL"),
        P("raw NUL in a string", "{\"a\":\"x\0y\"}", "control character 0x00 at byte 7 inside a string"),
        P("raw 0x01 in a string", "{\"a\":\"x\x01y\"}", "control character 0x01"),
        P("raw tab in a string", "{\"a\":\"x\ty\"}", "control character 0x09"),
        P("raw newline in a string", "{\"a\":\"x\ny\"}", "inside a string (escape it)"),
        P("raw NUL between tokens", "{\"a\":\0" "1}", "control character 0x00 at byte 5"),
        P("raw NUL after the object", "{}\0", "control character 0x00 at byte 2"),
        P("form feed as whitespace", "{\f}", "control character 0x0c at byte 1"),
        P("vertical tab as whitespace", "\v{}", "control character 0x0b at byte 0"),
    };
    (void)state;
    run_pcases(c, N(c), JSON_MAX_DEPTH);
}

/* "{"a":" + (depth-1) '[' + "1" + (depth-1) ']' + "}" */
static char *
nested(int depth)
{
    size_t n = 16 + 2 * (size_t)depth;
    char *s = malloc(n), *p = s;

    assert_non_null(s);
    p += sprintf(p, "{\"a\":");
    for (int i = 1; i < depth; i++)
        *p++ = '[';
    *p++ = '1';
    for (int i = 1; i < depth; i++)
        *p++ = ']';
    strcpy(p, "}");
    return s;
}

static void
test_json_parse_object_enforces_max_depth(void **state)
{
    static const struct {
        int depth, max;
        bool ok;
    } c[] = {
        { 1, 1, true },   { 2, 1, false },   { 31, 32, true },   { 32, 32, true },
        { 33, 32, false }, { 200, 32, false }, { 5, 4, false },  { 4, 4, true },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char *s = nested(c[i].depth), want[64];
        cJSON *o = NULL;
        struct ch_err err = { 0 };
        enum ch_status st = parse_exact(s, strlen(s), c[i].max, &o, &err);
        if (c[i].ok != (st == CH_OK))
            fail_msg("depth %d with max %d: status %d (%s)", c[i].depth, c[i].max, st, err.msg);
        snprintf(want, sizeof want, "JSON nested deeper than %d levels", c[i].max);
        if (!c[i].ok && strcmp(err.msg, want) != 0)
            fail_msg("depth %d: message '%s'", c[i].depth, err.msg);
        cJSON_Delete(o);
        free(s);
    }
}

static void
test_json_parse_object_reads_only_len_bytes(void **state)
{
    const char *body = "{\"a\":1}TRAILING";
    cJSON *o = NULL;
    struct ch_err err = { 0 };
    (void)state;
    assert_int_equal(json_parse_object(body, 7, JSON_MAX_DEPTH, &o, &err), CH_OK);
    cJSON_Delete(o);
    o = NULL;
    assert_int_equal(json_parse_object(body, 6, JSON_MAX_DEPTH, &o, &err), CH_EINVAL); /* "{"a":1" */
    assert_non_null(strstr(err.msg, "malformed JSON"));
    assert_null(o);
    assert_int_equal(json_parse_object(body, 8, JSON_MAX_DEPTH, &o, NULL), CH_EINVAL); /* err may be NULL */
}

/* ---- getters ---- */

static const char FIELDS[] =
    "{\"s\":\"h\xc3\xa9llo\",\"empty\":\"\",\"n\":5,\"neg\":-7,\"zero\":0,\"five\":5.0,\"f\":1.5,\"big\":1e300,"
    "\"inf\":1e400,\"safe\":9007199254740991,\"unsafe\":9007199254740992,"
    "\"ns\":\"9007199254740993\",\"nsneg\":\"-42\",\"fs\":\"1.5\",\"hex\":\"0x10\",\"sp\":\"12 \",\"es\":\"\","
    "\"e3\":\"1e3\",\"imax\":\"9223372036854775807\",\"imin\":\"-9223372036854775808\","
    "\"over\":\"9223372036854775808\",\"t\":true,\"fa\":false,\"tstr\":\"true\",\"one\":1,"
    "\"bad\":\"\xff\",\"overlong\":\"\xc0\x80\",\"surr\":\"\xed\xa0\x80\",\"emoji\":\"\\ud83d\\ude00\","
    "\"arr\":[\"a\",\"b\"],\"mixed\":[\"a\",1],\"nestarr\":[\"a\",[\"b\"]],\"long\":[\"a\",\"toolong\"],"
    "\"badarr\":[\"\xff\"],\"emptyarr\":[],\"emptyitem\":[\"\"],\"obj\":{\"x\":1},\"nul\":null}";

static cJSON *
fields(void)
{
    cJSON *o = NULL;
    struct ch_err err = { 0 };

    if (json_parse_object(FIELDS, sizeof FIELDS - 1, JSON_MAX_DEPTH, &o, &err) != CH_OK)
        fail_msg("fixture rejected: %s", err.msg);
    return o;
}

static void
expect_field_error(enum ch_status st, const struct ch_err *err, const char *name, const char *msg)
{
    if (st != CH_EINVAL)
        fail_msg("field %s: status %d, want CH_EINVAL", name, st);
    if (strcmp(err->field, name) != 0)
        fail_msg("field %s: err.field is '%s'", name, err->field);
    if (strcmp(err->msg, msg) != 0)
        fail_msg("field %s: message '%s', want '%s'", name, err->msg, msg);
}

static void
test_json_get_str_names_the_field_and_checks_type_utf8_and_length(void **state)
{
    static const struct {
        const char *name;
        bool required;
        size_t min, max;
        const char *want; /* value on success */
        const char *msg;  /* exact message on failure */
    } c[] = {
        { "s", true, 1, 10, "h\xc3\xa9llo", NULL },
        { "s", true, 6, 6, "h\xc3\xa9llo", NULL }, /* bounds are bytes, inclusive */
        { "s", true, 1, 3, NULL, "must be 1 to 3 bytes long, got 6" },
        { "s", true, 7, 64, NULL, "must be 7 to 64 bytes long, got 6" },
        { "s", true, 7, 7, NULL, "must be 7 bytes" },
        { "empty", true, 0, 10, "", NULL },
        { "empty", true, 1, 10, NULL, "must not be empty" },
        { "emoji", true, 4, 4, "\xf0\x9f\x98\x80", NULL },
        { "missing", true, 0, 10, NULL, "required" },
        { "S", true, 0, 10, NULL, "required" }, /* names are case-sensitive */
        { "nul", true, 0, 10, NULL, "required" },
        { "n", true, 0, 10, NULL, "must be a string" },
        { "t", true, 0, 10, NULL, "must be a string" },
        { "arr", true, 0, 10, NULL, "must be a string" },
        { "obj", true, 0, 10, NULL, "must be a string" },
        { "bad", true, 0, 10, NULL, "not valid UTF-8" },
        { "overlong", true, 0, 10, NULL, "not valid UTF-8" },
        { "surr", true, 0, 10, NULL, "not valid UTF-8" },
    };
    cJSON *o = fields();
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct ch_err err = { 0 };
        const char *s = "untouched";
        enum ch_status st = json_get_str(o, c[i].name, c[i].required, c[i].min, c[i].max, &s, &err);
        if (c[i].msg) {
            expect_field_error(st, &err, c[i].name, c[i].msg);
            assert_string_equal(s, "untouched");
        } else {
            if (st != CH_OK)
                fail_msg("field %s: rejected: %s", c[i].name, err.msg);
            assert_string_equal(s, c[i].want);
        }
    }
    cJSON_Delete(o);
}

static void
test_json_scalar_getters_leave_optional_missing_and_null_fields_alone(void **state)
{
    static const char *const absent[] = { "missing", "nul" };
    cJSON *o = fields();
    (void)state;
    for (size_t i = 0; i < N(absent); i++) {
        const char *s = "keep", **arr = (const char **)&s;
        int64_t n = 77;
        bool b = true;
        size_t cnt = 99;
        assert_int_equal(json_get_str(o, absent[i], false, 1, 9, &s, NULL), CH_OK);
        assert_int_equal(json_get_int(o, absent[i], false, 0, 9, &n, NULL), CH_OK);
        assert_int_equal(json_get_bool(o, absent[i], false, &b, NULL), CH_OK);
        /* the array getter always sets its outputs, so an uninitialised caller never frees garbage */
        assert_int_equal(json_get_str_array(o, absent[i], false, 9, 0, 9, &arr, &cnt, NULL), CH_OK);
        assert_string_equal(s, "keep");
        assert_int_equal(n, 77);
        assert_true(b);
        assert_null(arr);
        assert_int_equal(cnt, 0);
    }
    cJSON_Delete(o);
}

static void
test_json_get_int_accepts_numbers_and_decimal_strings_only(void **state)
{
    static const struct {
        const char *name;
        int64_t min, max;
        bool ok;
        int64_t want;
        const char *msg;
    } c[] = {
        { "n", 0, 10, true, 5, NULL },
        { "n", 5, 5, true, 5, NULL },
        { "five", 0, 10, true, 5, NULL }, /* 5.0 is an integer */
        { "zero", 0, 0, true, 0, NULL },
        { "neg", -10, 10, true, -7, NULL },
        { "safe", 0, INT64_MAX, true, 9007199254740991LL, NULL },
        { "ns", 0, INT64_MAX, true, 9007199254740993LL, NULL }, /* a string keeps precision a double loses */
        { "nsneg", -100, 0, true, -42, NULL },
        { "imax", INT64_MIN, INT64_MAX, true, INT64_MAX, NULL },
        { "imin", INT64_MIN, INT64_MAX, true, INT64_MIN, NULL },
        { "n", 6, 10, false, 0, "must be between 6 and 10" },
        { "n", 0, 4, false, 0, "must be between 0 and 4" },
        { "neg", 0, 10, false, 0, "must be between 0 and 10" },
        { "ns", 0, 1000, false, 0, "must be between 0 and 1000" },
        { "f", 0, 10, false, 0, "must be an integer" },
        { "big", INT64_MIN, INT64_MAX, false, 0, "must be an integer" },
        { "inf", INT64_MIN, INT64_MAX, false, 0, "must be an integer" },
        { "unsafe", INT64_MIN, INT64_MAX, false, 0, "must be an integer" }, /* 2^53 may already be rounded */
        { "fs", 0, 10, false, 0, "must be an integer" },
        { "hex", 0, 100, false, 0, "must be an integer" },
        { "sp", 0, 100, false, 0, "must be an integer" },
        { "es", 0, 100, false, 0, "must be an integer" },
        { "e3", 0, 10000, false, 0, "must be an integer" },
        { "over", INT64_MIN, INT64_MAX, false, 0, "must be an integer" },
        { "s", 0, 10, false, 0, "must be an integer" },
        { "t", 0, 10, false, 0, "must be an integer" },
        { "arr", 0, 10, false, 0, "must be an integer" },
        { "obj", 0, 10, false, 0, "must be an integer" },
        { "missing", 0, 10, false, 0, "required" },
        { "nul", 0, 10, false, 0, "required" },
    };
    cJSON *o = fields();
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct ch_err err = { 0 };
        int64_t v = -12345;
        enum ch_status st = json_get_int(o, c[i].name, true, c[i].min, c[i].max, &v, &err);
        if (!c[i].ok) {
            expect_field_error(st, &err, c[i].name, c[i].msg);
            assert_int_equal(v, -12345);
        } else if (st != CH_OK || v != c[i].want) {
            fail_msg("field %s: status %d value %lld (%s)", c[i].name, st, (long long)v, err.msg);
        }
    }
    cJSON_Delete(o);
}

static void
test_json_get_bool_accepts_only_json_booleans(void **state)
{
    static const struct {
        const char *name;
        bool ok, want;
        const char *msg;
    } c[] = {
        { "t", true, true, NULL },          { "fa", true, false, NULL },
        { "tstr", false, false, "must be true or false" }, { "one", false, false, "must be true or false" },
        { "zero", false, false, "must be true or false" }, { "arr", false, false, "must be true or false" },
        { "missing", false, false, "required" },           { "nul", false, false, "required" },
    };
    cJSON *o = fields();
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct ch_err err = { 0 };
        bool b = !c[i].want;
        enum ch_status st = json_get_bool(o, c[i].name, true, &b, &err);
        if (!c[i].ok)
            expect_field_error(st, &err, c[i].name, c[i].msg);
        else if (st != CH_OK || b != c[i].want)
            fail_msg("field %s: status %d value %d", c[i].name, st, b);
    }
    cJSON_Delete(o);
}

static void
test_json_get_str_array_checks_items_count_and_lengths(void **state)
{
    static const struct {
        const char *name;
        size_t max_items, min, max;
        size_t n; /* items on success */
        const char *msg;
    } c[] = {
        { "arr", 5, 1, 5, 2, NULL },
        { "arr", 2, 1, 1, 2, NULL },
        { "emptyarr", 5, 1, 5, 0, NULL },
        { "emptyitem", 5, 0, 5, 1, NULL },
        { "long", 5, 1, 7, 2, NULL },
        { "arr", 1, 1, 5, 0, "at most 1 items allowed, got 2" },
        { "arr", 0, 1, 5, 0, "at most 0 items allowed, got 2" },
        { "mixed", 5, 1, 5, 0, "item 1 must be a string" },
        { "nestarr", 5, 1, 5, 0, "item 1 must be a string" },
        { "long", 5, 1, 3, 0, "item 1 must be 1 to 3 bytes of UTF-8" },
        { "emptyitem", 5, 1, 5, 0, "item 0 must be 1 to 5 bytes of UTF-8" },
        { "badarr", 5, 0, 5, 0, "item 0 must be 0 to 5 bytes of UTF-8" },
        { "s", 5, 1, 5, 0, "must be an array of strings" },
        { "obj", 5, 1, 5, 0, "must be an array of strings" },
        { "missing", 5, 1, 5, 0, "required" },
        { "nul", 5, 1, 5, 0, "required" },
    };
    cJSON *o = fields();
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct ch_err err = { 0 };
        const char **v = NULL;
        size_t cnt = 99;
        enum ch_status st = json_get_str_array(o, c[i].name, true, c[i].max_items, c[i].min, c[i].max, &v, &cnt,
                                               &err);
        if (c[i].msg) {
            expect_field_error(st, &err, c[i].name, c[i].msg);
            assert_null(v);
            assert_int_equal(cnt, 0);
            continue;
        }
        if (st != CH_OK)
            fail_msg("field %s: rejected: %s", c[i].name, err.msg);
        assert_int_equal(cnt, c[i].n);
        assert_non_null(v);
        assert_null(v[cnt]); /* NULL-terminated */
        free(v);
    }
    {
        const char **v = NULL;
        size_t cnt = 0;
        assert_int_equal(json_get_str_array(o, "arr", true, 5, 1, 5, &v, &cnt, NULL), CH_OK);
        assert_string_equal(v[0], "a");
        assert_string_equal(v[1], "b");
        free(v);
    }
    cJSON_Delete(o);
}

/* ---- output helpers ---- */

static void
test_json_fmt_time_is_rfc3339_utc_with_milliseconds(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } c[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { 1, "1970-01-01T00:00:00.001Z" },
        { 999, "1970-01-01T00:00:00.999Z" },
        { 86400000, "1970-01-02T00:00:00.000Z" },
        { 951782400000LL, "2000-02-29T00:00:00.000Z" },
        { 1767225599999LL, "2025-12-31T23:59:59.999Z" },
        { 1767225600000LL, "2026-01-01T00:00:00.000Z" },
        { 1795888097577LL, "2026-11-28T17:48:17.577Z" },
        { 4102444800000LL, "2100-01-01T00:00:00.000Z" },
        { 253402300799999LL, "9999-12-31T23:59:59.999Z" },
        { -1, "1969-12-31T23:59:59.999Z" },
        { -1000, "1969-12-31T23:59:59.000Z" },
        { -1001, "1969-12-31T23:59:58.999Z" },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char buf[40];
        json_fmt_time(c[i].ms, buf, sizeof buf);
        if (strcmp(buf, c[i].want) != 0)
            fail_msg("json_fmt_time(%lld) = '%s', want '%s'", (long long)c[i].ms, buf, c[i].want);
    }
}

static void
test_json_fmt_time_truncates_within_the_buffer(void **state)
{
    char buf[16], big[64];
    (void)state;
    /* the extremes only have to be safe (no overflow, no unset fields read): nobody sends year 292 million */
    json_fmt_time(INT64_MAX, big, sizeof big);
    assert_non_null(strstr(big, ".807Z"));
    json_fmt_time(INT64_MIN, big, sizeof big);
    assert_non_null(strstr(big, ".192Z"));
    memset(buf, '#', sizeof buf);
    json_fmt_time(0, buf, 11);
    assert_string_equal(buf, "1970-01-01");
    for (size_t i = 11; i < sizeof buf; i++)
        assert_int_equal(buf[i], '#');
}

static void
test_json_int64_strings_and_times_round_trip_through_the_getters(void **state)
{
    static const int64_t vals[] = { 0, 1, -1, 9007199254740993LL, INT64_MAX, INT64_MIN };
    cJSON *o = cJSON_CreateObject();
    char *text, name[16];
    size_t len = 0;
    cJSON *back = NULL;
    const char *t = NULL;
    (void)state;
    for (size_t i = 0; i < N(vals); i++) {
        snprintf(name, sizeof name, "v%zu", i);
        assert_non_null(json_add_int64_str(o, name, vals[i]));
    }
    assert_non_null(json_add_time(o, "at", 1795888097577LL));
    text = json_print(o, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_null(strchr(text, '\n')); /* compact */
    assert_non_null(strstr(text, "\"v4\":\"9223372036854775807\""));
    assert_int_equal(json_parse_object(text, len, JSON_MAX_DEPTH, &back, NULL), CH_OK);
    for (size_t i = 0; i < N(vals); i++) {
        int64_t v = 0;
        snprintf(name, sizeof name, "v%zu", i);
        assert_int_equal(json_get_int(back, name, true, INT64_MIN, INT64_MAX, &v, NULL), CH_OK);
        assert_true(v == vals[i]);
    }
    assert_int_equal(json_get_str(back, "at", true, 24, 24, &t, NULL), CH_OK);
    assert_string_equal(t, "2026-11-28T17:48:17.577Z");
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(o);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parse_object_accepts_one_object_with_surrounding_whitespace),
        cmocka_unit_test(test_json_parse_object_rejects_empty_garbage_and_non_objects),
        cmocka_unit_test(test_json_parse_object_rejects_nul_and_raw_control_characters),
        cmocka_unit_test(test_json_parse_object_enforces_max_depth),
        cmocka_unit_test(test_json_parse_object_reads_only_len_bytes),
        cmocka_unit_test(test_json_get_str_names_the_field_and_checks_type_utf8_and_length),
        cmocka_unit_test(test_json_scalar_getters_leave_optional_missing_and_null_fields_alone),
        cmocka_unit_test(test_json_get_int_accepts_numbers_and_decimal_strings_only),
        cmocka_unit_test(test_json_get_bool_accepts_only_json_booleans),
        cmocka_unit_test(test_json_get_str_array_checks_items_count_and_lengths),
        cmocka_unit_test(test_json_fmt_time_is_rfc3339_utc_with_milliseconds),
        cmocka_unit_test(test_json_fmt_time_truncates_within_the_buffer),
        cmocka_unit_test(test_json_int64_strings_and_times_round_trip_through_the_getters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
