/* SPDX-License-Identifier: MIT */
/* lib/realtime: the WebSocket handshake's accept value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_accept_matches_rfc_6455_example),
        cmocka_unit_test(test_ws_accept_refuses_keys_that_are_not_16_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
