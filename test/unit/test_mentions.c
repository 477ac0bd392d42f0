/* SPDX-License-Identifier: MIT */
/*
 * chat_scan_mentions: which @names in a Markdown body can ping. Code (fenced blocks, inline spans of any
 * backtick count) and quotes never do; the rest does, with sentence punctuation trimmed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "chat/chat.h"

struct found {
    char names[512];
};

static void
collect(void *ctx, const char *name, size_t len)
{
    struct found *f = ctx;
    size_t n = strlen(f->names);

    snprintf(f->names + n, sizeof f->names - n, "%s%.*s", n ? "," : "", (int)len, name);
}

static const char *
scan(const char *body)
{
    static struct found f;

    memset(&f, 0, sizeof f);
    chat_scan_mentions(body, collect, &f);
    return f.names;
}

static void
test_plain_mentions_are_found_with_punctuation_trimmed(void **state)
{
    (void)state;
    assert_string_equal(scan("hi @bob and @carol."), "bob,carol");
    assert_string_equal(scan("@all please, @here too"), "all,here");
    assert_string_equal(scan("@dots.in.name-, @x_y"), "dots.in.name,x_y");
    assert_string_equal(scan("mail me at bob@example.com or @@double"), "");
    assert_string_equal(scan("line one\n@bob on line two"), "bob");
    assert_string_equal(scan("@"), "");
    assert_string_equal(scan(""), "");
}

static void
test_code_never_pings(void **state)
{
    (void)state;
    assert_string_equal(scan("`@bob` but @carol"), "carol");
    assert_string_equal(scan("``code with ` and @bob`` then @carol"), "carol");
    assert_string_equal(scan("```\n@bob\n@all\n```\n@carol"), "carol");
    assert_string_equal(scan("~~~js\n@bob\n~~~\n@carol"), "carol");
    assert_string_equal(scan("````\n```\n@bob\n````\n@carol"), "carol"); /* a shorter fence does not close */
    assert_string_equal(scan("```\nnever closed @bob"), "");
    assert_string_equal(scan("an `unclosed span @bob"), "bob"); /* a lone backtick is just a character */
}

static void
test_quotes_never_ping(void **state)
{
    (void)state;
    assert_string_equal(scan("> @bob said\n@carol replies"), "carol");
    assert_string_equal(scan("   > @all quoted\nok @here"), "here");
    assert_string_equal(scan("a > b @bob"), "bob"); /* not a quote: '>' mid-line */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_mentions_are_found_with_punctuation_trimmed),
        cmocka_unit_test(test_code_never_pings),
        cmocka_unit_test(test_quotes_never_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
