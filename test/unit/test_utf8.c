/* SPDX-License-Identifier: MIT */
/*
 * lib/base/utf8: RFC 3629 validation and code point counting. Named cases first (overlongs, surrogates, beyond
 * U+10FFFF, truncation), then an exhaustive comparison with a reference decoder written here from the bit
 * patterns rather than from the RFC's byte-range table that utf8.c uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct ucase {
    const char *what;
    const char *s;
    size_t len; /* explicit, so cases can hold NUL and be cut short */
    int valid;
};

#define U(what, lit, valid) { what, lit, sizeof(lit) - 1, valid }

static void
test_utf8_valid_accepts_well_formed_text(void **state)
{
    static const struct ucase c[] = {
        U("empty", "", 1),
        U("ASCII", "plain text, 123 !~", 1),
        U("NUL is U+0000", "a\0b", 1),
        U("DEL", "\x7f", 1),
        U("U+0080, smallest 2-byte", "\xc2\x80", 1),
        U("e acute", "\xc3\xa9", 1),
        U("U+07FF, largest 2-byte", "\xdf\xbf", 1),
        U("U+0800, smallest 3-byte", "\xe0\xa0\x80", 1),
        U("euro sign", "\xe2\x82\xac", 1),
        U("U+D7FF, just below the surrogates", "\xed\x9f\xbf", 1),
        U("U+E000, just above the surrogates", "\xee\x80\x80", 1),
        U("U+FEFF byte order mark", "\xef\xbb\xbf", 1),
        U("U+FFFD replacement character", "\xef\xbf\xbd", 1),
        U("U+FFFF, largest 3-byte", "\xef\xbf\xbf", 1),
        U("U+10000, smallest 4-byte", "\xf0\x90\x80\x80", 1),
        U("grinning face emoji", "\xf0\x9f\x98\x80", 1),
        U("U+10FFFF, largest code point", "\xf4\x8f\xbf\xbf", 1),
        U("U+100000, lead F4", "\xf4\x80\x80\x80", 1),
        U("lead F1", "\xf1\x80\x80\x80", 1),
        U("Greek", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1),
        U("mixed widths", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 1),
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++)
        if (!utf8_valid(c[i].s, c[i].len))
            fail_msg("rejected valid UTF-8: %s", c[i].what);
}

static void
test_utf8_valid_rejects_overlongs_surrogates_and_out_of_range(void **state)
{
    static const struct ucase c[] = {
        U("overlong NUL C0 80", "\xc0\x80", 0),
        U("overlong C0 AF ('/')", "\xc0\xaf", 0),
        U("overlong C1 BF", "\xc1\xbf", 0),
        U("overlong 3-byte NUL E0 80 80", "\xe0\x80\x80", 0),
        U("overlong 3-byte U+07FF E0 9F BF", "\xe0\x9f\xbf", 0),
        U("overlong 4-byte NUL F0 80 80 80", "\xf0\x80\x80\x80", 0),
        U("overlong 4-byte U+FFFF F0 8F BF BF", "\xf0\x8f\xbf\xbf", 0),
        U("high surrogate U+D800 ED A0 80", "\xed\xa0\x80", 0),
        U("high surrogate U+DBFF", "\xed\xaf\xbf", 0),
        U("low surrogate U+DC00", "\xed\xb0\x80", 0),
        U("low surrogate U+DFFF", "\xed\xbf\xbf", 0),
        U("surrogate pair in CESU-8", "\xed\xa0\xbd\xed\xb8\x80", 0),
        U("U+110000 F4 90 80 80", "\xf4\x90\x80\x80", 0),
        U("F4 BF BF BF", "\xf4\xbf\xbf\xbf", 0),
        U("lead F5", "\xf5\x80\x80\x80", 0),
        U("lead F7", "\xf7\xbf\xbf\xbf", 0),
        U("5-byte form F8", "\xf8\x88\x80\x80\x80", 0),
        U("6-byte form FC", "\xfc\x84\x80\x80\x80\x80", 0),
        U("FE", "\xfe", 0),
        U("FF", "\xff", 0),
        U("FF in ASCII", "ab\xff" "cd", 0),
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++)
        if (utf8_valid(c[i].s, c[i].len))
            fail_msg("accepted invalid UTF-8: %s", c[i].what);
}

static void
test_utf8_valid_rejects_truncated_and_broken_sequences(void **state)
{
    static const struct ucase c[] = {
        U("lone continuation 80", "\x80", 0),
        U("lone continuation BF", "\xbf", 0),
        U("continuation after ASCII", "a\x80", 0),
        U("two continuations after a 2-byte char", "\xc3\xa9\x80", 0),
        U("2-byte lead alone", "\xc3", 0),
        U("2-byte lead at the end", "abc\xc3", 0),
        U("3-byte lead with one continuation", "\xe2\x82", 0),
        U("3-byte lead alone", "\xe2", 0),
        U("4-byte lead with two continuations", "\xf0\x9f\x98", 0),
        U("4-byte lead with one continuation", "\xf0\x9f", 0),
        U("4-byte lead alone", "\xf0", 0),
        U("ASCII where a continuation belongs", "\xc3\x41", 0),
        U("3-byte, bad second byte", "\xe2\x28\xa1", 0),
        U("3-byte, bad third byte", "\xe2\x82\x28", 0),
        U("4-byte, bad last byte", "\xf0\x9f\x98\x28", 0),
        U("lead where a continuation belongs", "\xc3\xc3\xa9", 0),
        U("continuation above BF", "\xc3\xc0", 0),
        U("truncated char followed by a valid one", "\xe2\x82\xc3\xa9", 0),
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++)
        if (utf8_valid(c[i].s, c[i].len))
            fail_msg("accepted invalid UTF-8: %s", c[i].what);
}

static void
test_utf8_valid_reads_exactly_len_bytes(void **state)
{
    const char *euro = "x\xe2\x82\xac"; /* x + 3-byte euro sign */
    (void)state;
    assert_true(utf8_valid(euro, 4));
    assert_true(utf8_valid(euro, 1)); /* cut before the sequence */
    assert_false(utf8_valid(euro, 2)); /* cut inside it: the rest of the buffer must not be read */
    assert_false(utf8_valid(euro, 3));
    assert_true(utf8_valid("\xff", 0));
}

static void
test_utf8_count_counts_code_points(void **state)
{
    static const struct {
        const char *s;
        size_t len, want;
    } c[] = {
        { "", 0, 0 },
        { "abc", 3, 3 },
        { "a\0b", 3, 3 },
        { "\xc3\xa9", 2, 1 },
        { "\xe2\x82\xac", 3, 1 },
        { "\xf0\x9f\x98\x80", 4, 1 },
        { "\xf4\x8f\xbf\xbf", 4, 1 },
        { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11, 5 },                    /* κόσμε */
        { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf0\x9f\x98\x80", 15, 6 },   /* κόσμε😀 */
        { "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 11, 5 },
        { "abc\xc3\xa9", 3, 3 }, /* only len bytes */
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++)
        if (utf8_count(c[i].s, c[i].len) != c[i].want)
            fail_msg("utf8_count case %zu: got %zu, want %zu", i, utf8_count(c[i].s, c[i].len), c[i].want);
}

/* Reference validator from the bit patterns: 0xxxxxxx, 110xxxxx 10xxxxxx, 1110xxxx 10.. 10.., 11110xxx 10.. x3;
 * then shortest form, no surrogates, nothing above U+10FFFF. */
static int
ref_valid(const unsigned char *s, size_t len)
{
    static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t i = 0;

    while (i < len) {
        unsigned char b = s[i];
        size_t n;
        uint32_t cp;

        if ((b & 0x80) == 0)
            n = 1, cp = b;
        else if ((b & 0xE0) == 0xC0)
            n = 2, cp = b & 0x1F;
        else if ((b & 0xF0) == 0xE0)
            n = 3, cp = b & 0x0F;
        else if ((b & 0xF8) == 0xF0)
            n = 4, cp = b & 0x07;
        else
            return 0;
        if (len - i < n)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (n > 1 && cp < min_cp[n])
            return 0;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

static void
test_utf8_valid_agrees_with_reference_on_every_short_sequence(void **state)
{
    unsigned char b[4];
    static const unsigned char tails[] = { 0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xF4, 0xFF };
    size_t checked = 0;
    (void)state;
    /* every 1-, 2- and 3-byte string */
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        if (utf8_valid((const char *)b, 1) != ref_valid(b, 1))
            fail_msg("disagree on %02x", x);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            if (utf8_valid((const char *)b, 2) != ref_valid(b, 2))
                fail_msg("disagree on %02x %02x", x, y);
            if (x < 0xE0 || x > 0xF4)
                continue; /* a third byte only matters after a 3- or 4-byte lead... */
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (unsigned char)z;
                if (utf8_valid((const char *)b, 3) != ref_valid(b, 3))
                    fail_msg("disagree on %02x %02x %02x", x, y, z);
                checked++;
            }
        }
    }
    /* ...and 3-byte strings with other leads: ASCII/2-byte pairs followed by a sampled byte */
    for (unsigned x = 0; x < 0xE0; x++)
        for (unsigned y = 0; y < 256; y++)
            for (size_t t = 0; t < N(tails); t++) {
                b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = tails[t];
                if (utf8_valid((const char *)b, 3) != ref_valid(b, 3))
                    fail_msg("disagree on %02x %02x %02x", x, y, b[2]);
            }
    /* 4-byte strings: every lead from F0 and every second byte, sampled third and fourth bytes */
    for (unsigned x = 0xF0; x < 256; x++)
        for (unsigned y = 0; y < 256; y++)
            for (size_t t = 0; t < N(tails); t++)
                for (size_t u = 0; u < N(tails); u++) {
                    b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = tails[t], b[3] = tails[u];
                    if (utf8_valid((const char *)b, 4) != ref_valid(b, 4))
                        fail_msg("disagree on %02x %02x %02x %02x", x, y, b[2], b[3]);
                }
    assert_true(checked > 1000000);
}

static void
test_utf8_count_matches_code_points_of_every_scalar_value(void **state)
{
    /* encode every Unicode scalar value; each must validate and count as one */
    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char b[4];
        size_t n;
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        if (cp < 0x80)
            b[0] = (unsigned char)cp, n = 1;
        else if (cp < 0x800)
            b[0] = (unsigned char)(0xC0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
        else if (cp < 0x10000)
            b[0] = (unsigned char)(0xE0 | cp >> 12), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)),
            b[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
        else
            b[0] = (unsigned char)(0xF0 | cp >> 18), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F)),
            b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
        if (!utf8_valid((const char *)b, n))
            fail_msg("U+%04X rejected", (unsigned)cp);
        if (utf8_count((const char *)b, n) != 1)
            fail_msg("U+%04X counted as %zu", (unsigned)cp, utf8_count((const char *)b, n));
    }
}

static void
test_utf8_clean_text_trims_and_names_the_field(void **state)
{
    char out[16];
    struct ch_err err = { 0 };
    (void)state;
    assert_int_equal(utf8_clean_text("name", "  caf\xc3\xa9 \n", 5, 10, false, false, out, sizeof out, &err), CH_OK);
    assert_string_equal(out, "caf\xc3\xa9");
    assert_int_equal(utf8_clean_text("name", "  ", 5, 10, true, false, out, sizeof out, &err), CH_OK);
    assert_string_equal(out, "");
    assert_int_equal(utf8_clean_text("name", "  ", 5, 10, false, false, out, sizeof out, &err), CH_EINVAL);
    assert_string_equal(err.field, "name");
    assert_int_equal(utf8_clean_text("d", "a\nb\tc", 9, 9, false, true, out, sizeof out, &err), CH_OK);
    assert_int_equal(utf8_clean_text("d", "a\nb", 9, 9, false, false, out, sizeof out, &err), CH_EINVAL);
    assert_int_equal(utf8_clean_text("d", "a\x7f", 9, 9, false, true, out, sizeof out, &err), CH_EINVAL);
    assert_int_equal(utf8_clean_text("d", "abcdef", 5, 10, false, false, out, sizeof out, &err), CH_EINVAL);
    assert_int_equal(utf8_clean_text("d", "\xc3\xa9\xc3\xa9\xc3\xa9", 5, 5, false, false, out, sizeof out, &err),
                     CH_EINVAL); /* 3 characters but 6 bytes */
    assert_int_equal(utf8_clean_text("d", "\xff", 5, 5, false, false, out, sizeof out, &err), CH_EINVAL);
    assert_int_equal(utf8_clean_text("d", "0123456789abcdefXYZ", 99, 99, false, false, out, sizeof out, &err),
                     CH_EINVAL); /* never past out */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_accepts_well_formed_text),
        cmocka_unit_test(test_utf8_valid_rejects_overlongs_surrogates_and_out_of_range),
        cmocka_unit_test(test_utf8_valid_rejects_truncated_and_broken_sequences),
        cmocka_unit_test(test_utf8_valid_reads_exactly_len_bytes),
        cmocka_unit_test(test_utf8_count_counts_code_points),
        cmocka_unit_test(test_utf8_clean_text_trims_and_names_the_field),
        cmocka_unit_test(test_utf8_valid_agrees_with_reference_on_every_short_sequence),
        cmocka_unit_test(test_utf8_count_matches_code_points_of_every_scalar_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
