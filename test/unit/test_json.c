/* SPDX-License-Identifier: MIT */
/* Request decoding: shape, depth, trailing data, NUL, and getters that name the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

static void
expect_reject(const char *body, size_t len, const char *msg)
{
    cJSON *o = NULL;
    struct ch_err err = { 0 };

    if (json_parse_object(body, len, 32, &o, &err) != CH_EINVAL)
        fail_msg("accepted: %.*s", (int)len, body);
    if (!strstr(err.msg, msg))
        fail_msg("message '%s' lacks '%s'", err.msg, msg);
    assert_null(o);
}

static void
test_parse_object_rejections(void **state)
{
    char deep[200];
    (void)state;
    expect_reject("", 0, "empty request body");
    expect_reject("{", 1, "malformed JSON");
    expect_reject("{\"a\":1} x", 9, "unexpected data after");
    expect_reject("[]", 2, "must be a JSON object");
    expect_reject("3", 1, "must be a JSON object");
    expect_reject("{\"a\":\"x\\u0000y\"}", 16, "NUL");
    memset(deep, 0, sizeof deep);
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    expect_reject(deep, strlen(deep), "nested deeper than 32");
    cJSON *o = NULL;
    assert_int_equal(json_parse_object(" {\"a\":[1,{\"b\":2}]}\n", 19, 32, &o, NULL), CH_OK);
    cJSON_Delete(o);
    /* brackets inside strings do not count as nesting */
    assert_int_equal(json_parse_object("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", 44, 32, &o, NULL), CH_OK);
    cJSON_Delete(o);
}

static void
test_getters_name_the_field(void **state)
{
    const char *body = "{\"s\":\"héllo\",\"n\":5,\"ns\":\"9007199254740993\",\"f\":1.5,\"b\":true,\"bad\":\"\xff\","
                       "\"arr\":[\"a\",\"b\"],\"mixed\":[\"a\",1],\"nul\":null}";
    cJSON *o = NULL;
    struct ch_err err;
    const char *s = NULL, **arr = NULL;
    int64_t n = 0;
    bool b = false;
    size_t cnt = 0;
    (void)state;
    assert_int_equal(json_parse_object(body, strlen(body), 32, &o, NULL), CH_OK);
    assert_int_equal(json_get_str(o, "s", true, 1, 10, &s, &err), CH_OK);
    assert_string_equal(s, "héllo");
    assert_int_equal(json_get_str(o, "s", true, 1, 3, &s, &err), CH_EINVAL);
    assert_string_equal(err.field, "s");
    assert_non_null(strstr(err.msg, "1 to 3 bytes"));
    assert_int_equal(json_get_str(o, "missing", true, 0, 9, &s, &err), CH_EINVAL);
    assert_string_equal(err.msg, "required");
    assert_int_equal(json_get_str(o, "nul", true, 0, 9, &s, &err), CH_EINVAL);
    s = "keep";
    assert_int_equal(json_get_str(o, "missing", false, 0, 9, &s, NULL), CH_OK);
    assert_string_equal(s, "keep");
    assert_int_equal(json_get_str(o, "n", true, 0, 9, &s, &err), CH_EINVAL);
    assert_string_equal(err.msg, "must be a string");
    assert_int_equal(json_get_str(o, "bad", true, 0, 9, &s, &err), CH_EINVAL);
    assert_string_equal(err.msg, "not valid UTF-8");
    assert_int_equal(json_get_int(o, "n", true, 0, 10, &n, NULL), CH_OK);
    assert_int_equal(n, 5);
    assert_int_equal(json_get_int(o, "ns", true, 0, INT64_MAX, &n, NULL), CH_OK);
    assert_int_equal(n, 9007199254740993LL);
    assert_int_equal(json_get_int(o, "f", true, 0, 10, &n, &err), CH_EINVAL);
    assert_int_equal(json_get_int(o, "n", true, 6, 10, &n, &err), CH_EINVAL);
    assert_int_equal(json_get_bool(o, "b", true, &b, NULL), CH_OK);
    assert_true(b);
    assert_int_equal(json_get_bool(o, "n", true, &b, &err), CH_EINVAL);
    assert_int_equal(json_get_str_array(o, "arr", true, 5, 1, 5, &arr, &cnt, NULL), CH_OK);
    assert_int_equal(cnt, 2);
    assert_string_equal(arr[1], "b");
    free(arr);
    assert_int_equal(json_get_str_array(o, "arr", true, 1, 1, 5, &arr, &cnt, &err), CH_EINVAL);
    assert_int_equal(json_get_str_array(o, "mixed", true, 5, 1, 5, &arr, &cnt, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "item 1"));
    cJSON_Delete(o);
}

static void
test_time_format(void **state)
{
    char buf[40];
    (void)state;
    json_fmt_time(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    json_fmt_time(1795888097577LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-28T17:48:17.577Z");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_object_rejections),
        cmocka_unit_test(test_getters_name_the_field),
        cmocka_unit_test(test_time_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
