/* SPDX-License-Identifier: MIT */
/* lib/realtime: the WebSocket handshake's accept value; a socket's outgoing frames (rt_wsout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "realtime/realtime.h"

static void
test_ws_accept_matches_rfc_6455_example(void **state)
{
    char accept[29];

    (void)state;
    /* RFC 6455 section 1.3 */
    assert_true(rt_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", accept));
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void
test_ws_accept_refuses_keys_that_are_not_16_bytes(void **state)
{
    static const char *bad[] = {
        NULL,
        "",
        "dGhlIHNhbXBsZSBub25jZQ",     /* no padding */
        "dGhlIHNhbXBsZSBub25jZXg=",   /* 17 bytes */
        "dGhlIHNhbXBsZSBub25j",       /* 15 bytes */
        "dGhl IHNhbXBsZSBub25jZQ==",  /* a space inside */
        "!!!!!!!!!!!!!!!!!!!!!!==",   /* not base64 */
        "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
    };
    char accept[29];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rt_ws_accept(bad[i], accept))
            fail_msg("key #%zu accepted", i);
}

/* The length field takes 7, 7+16 and 7+64 bits (RFC 6455 5.2); server frames are final and unmasked. */
static void
test_wsout_frames_have_the_three_header_sizes(void **state)
{
    struct rt_wsout o = { 0 };
    size_t sizes[] = { 0, 125, 126, 65535, 65536 };
    size_t hl[] = { 2, 2, 4, 4, 10 }, at = 0;
    char *payload = calloc(1, 65536);

    (void)state;
    assert_non_null(payload);
    for (size_t i = 0; i < 5; i++) {
        memset(payload, 'a' + (int)i, sizes[i]);
        assert_true(rt_wsout_frame(&o, 0x1, payload, sizes[i]));
    }
    for (size_t i = 0; i < 5; i++) {
        const unsigned char *p = (const unsigned char *)o.buf + at;
        size_t len = p[1] & 0x7f;
        assert_int_equal(p[0], 0x81);
        assert_int_equal(p[1] & 0x80, 0); /* unmasked */
        if (len == 126)
            len = (size_t)p[2] << 8 | p[3];
        else if (len == 127)
            len = (size_t)p[6] << 24 | (size_t)p[7] << 16 | (size_t)p[8] << 8 | p[9];
        assert_int_equal(len, sizes[i]);
        for (size_t k = 0; k < len; k++)
            if (p[hl[i] + k] != 'a' + i)
                fail_msg("frame %zu byte %zu", i, k);
        at += hl[i] + len;
    }
    assert_int_equal(at, o.len);
    rt_wsout_free(&o);
    assert_null(o.buf);
    free(payload);
}

/* Frames leave in order, whatever pieces the socket takes; the buffer is gone once empty. */
static void
test_wsout_consumed_in_pieces_keeps_order_and_frees(void **state)
{
    struct rt_wsout o = { 0 };
    char want[64], got[64];
    size_t n = 0, w = 0;

    (void)state;
    assert_true(rt_wsout_frame(&o, 0x1, "one", 3));
    assert_true(rt_wsout_frame(&o, 0x9, "", 0));
    assert_true(rt_wsout_frame(&o, 0x1, "three", 5));
    memcpy(want, o.buf, o.len);
    w = o.len;
    while (o.len) {
        size_t k = o.len < 3 ? o.len : 3;
        memcpy(got + n, o.buf, k);
        n += k;
        rt_wsout_consumed(&o, k);
    }
    assert_int_equal(n, w);
    assert_memory_equal(got, want, w);
    assert_null(o.buf);
    assert_int_equal(o.cap, 0);
}

/* A close that goes ahead drops the frames not begun, and keeps the rest of one partly sent. */
static void
test_wsout_drop_unsent_keeps_a_partly_sent_frame(void **state)
{
    struct rt_wsout o = { 0 };

    (void)state;
    assert_true(rt_wsout_frame(&o, 0x1, "first", 5));  /* 7 bytes */
    assert_true(rt_wsout_frame(&o, 0x1, "second", 6)); /* 8 bytes */
    assert_true(rt_wsout_frame(&o, 0x1, "third", 5));  /* 7 bytes */
    rt_wsout_consumed(&o, 9);                          /* all of the first, 2 bytes (the header) of the second */
    assert_int_equal(o.head, 6);
    rt_wsout_drop_unsent(&o);
    assert_int_equal(o.len, 6);
    assert_memory_equal(o.buf, "second", 6);
    assert_true(rt_wsout_append(&o, "\x88\x00", 2)); /* the close goes right after */
    rt_wsout_consumed(&o, 6);
    assert_int_equal(o.head, 0);
    assert_int_equal(o.len, 2);
    rt_wsout_consumed(&o, 2);
    assert_null(o.buf);

    /* at a frame boundary nothing is kept */
    assert_true(rt_wsout_frame(&o, 0x1, "a", 1));
    assert_true(rt_wsout_frame(&o, 0x1, "b", 1));
    rt_wsout_consumed(&o, 3);
    assert_int_equal(o.head, 0);
    rt_wsout_drop_unsent(&o);
    assert_null(o.buf);
    assert_int_equal(o.len, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_accept_matches_rfc_6455_example),
        cmocka_unit_test(test_ws_accept_refuses_keys_that_are_not_16_bytes),
        cmocka_unit_test(test_wsout_frames_have_the_three_header_sizes),
        cmocka_unit_test(test_wsout_consumed_in_pieces_keeps_order_and_frees),
        cmocka_unit_test(test_wsout_drop_unsent_keeps_a_partly_sent_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
