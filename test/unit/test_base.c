/* SPDX-License-Identifier: MIT */
/* lib/base: UTF-8, CIDR sets, ids, urlencoded forms, the hash map, the clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/form.h"
#include "base/ids.h"
#include "base/map.h"
#include "base/netaddr.h"
#include "base/ratelimit.h"
#include "base/utf8.h"
#include "crypto/crypto.h"

static void
test_utf8_accepts_valid_rejects_invalid(void **state)
{
    static const char *good[] = { "", "plain", "é", "€", "😀", "\xf4\x8f\xbf\xbf", "κόσμε" };
    static const char *bad[] = { "\xff", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                 "\xf8\x88\x80\x80\x80", "\xe2\x82", "a\x80", "\xf0\x9f\x98" };
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(utf8_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (utf8_valid(bad[i], strlen(bad[i])))
            fail_msg("bad UTF-8 #%zu accepted", i);
    assert_int_equal(utf8_count("κόσμε😀", strlen("κόσμε😀")), 6);
}

static void
test_netaddr_sets(void **state)
{
    const char *items[] = { "10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1", NULL };
    const char *bad1[] = { "10.0.0.0/33", NULL }, *bad2[] = { "nonsense", NULL }, *bad3[] = { "::1/129", NULL };
    struct netaddr_set *s = NULL;
    struct ch_err err;
    char buf[64];
    (void)state;
    assert_int_equal(netaddr_set_parse(items, &s, NULL), CH_OK);
    assert_true(netaddr_set_contains(s, "10.1.2.3"));
    assert_true(netaddr_set_contains(s, "::ffff:10.200.0.1"));
    assert_true(netaddr_set_contains(s, "192.168.1.7"));
    assert_false(netaddr_set_contains(s, "192.168.1.8"));
    assert_true(netaddr_set_contains(s, "fd12::34"));
    assert_true(netaddr_set_contains(s, "::1"));
    assert_false(netaddr_set_contains(s, "::2"));
    assert_false(netaddr_set_contains(s, "11.0.0.1"));
    assert_false(netaddr_set_contains(s, "not an ip"));
    netaddr_set_free(s);
    assert_int_equal(netaddr_set_parse(bad1, &s, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "10.0.0.0/33"));
    assert_int_equal(netaddr_set_parse(bad2, &s, &err), CH_EINVAL);
    assert_int_equal(netaddr_set_parse(bad3, &s, &err), CH_EINVAL);
    const char *all[] = { "0.0.0.0/0", NULL };
    assert_int_equal(netaddr_set_parse(all, &s, NULL), CH_OK);
    assert_true(netaddr_set_contains(s, "8.8.8.8"));
    assert_false(netaddr_set_contains(s, "2001:db8::1"));
    netaddr_set_free(s);
    assert_true(netaddr_normalize("::ffff:127.0.0.1", buf, sizeof buf));
    assert_string_equal(buf, "127.0.0.1");
}

static void
test_ids_are_sortable_and_subject_safe(void **state)
{
    char a[ID_LEN + 1], b[ID_LEN + 1];
    (void)state;
    id_new_at(1000, a);
    id_new_at(2000, b);
    assert_int_equal(strlen(a), ID_LEN);
    assert_true(strcmp(a, b) < 0);
    assert_true(id_valid(a));
    for (const char *p = a; *p; p++)
        assert_non_null(strchr("0123456789abcdefghjkmnpqrstvwxyz", *p));
    static const char *bad[] = { "", "a.b", "a*", ">", "a b", "a\tb", "é", "x/y",
                                 "0123456789012345678901234567890123456789012345678901234567890123456789" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(id_valid(bad[i]));
    assert_true(id_valid("general"));
    assert_true(id_valid("A-b_9"));
    struct ch_err err;
    assert_int_equal(id_check("roomId", "a.b", &err), CH_EINVAL);
    assert_string_equal(err.field, "roomId");
}

static void
test_form_decoding(void **state)
{
    struct form *f = NULL;
    struct ch_err err;
    const char *body = "login=al%69ce&password=p%40ss+word%26%3D&empty=&flag&login=second";
    (void)state;
    assert_int_equal(form_parse(body, strlen(body), &f, NULL), CH_OK);
    assert_string_equal(form_get(f, "login"), "alice");
    assert_string_equal(form_get(f, "password"), "p@ss word&=");
    assert_string_equal(form_get(f, "empty"), "");
    assert_string_equal(form_get(f, "flag"), "");
    assert_null(form_get(f, "missing"));
    form_free(f);
    assert_int_equal(form_parse("a=%zz", 5, &f, &err), CH_EINVAL);
    assert_int_equal(form_parse("a=%4", 4, &f, &err), CH_EINVAL);
    assert_int_equal(form_parse("a=%00", 5, &f, &err), CH_EINVAL);
    assert_int_equal(form_parse("", 0, &f, NULL), CH_OK);
    form_free(f);
}

static void
test_map_put_get_delete_grow(void **state)
{
    struct map *m = map_new();
    char key[32];
    size_t it = 0, n = 0;
    void *v;
    (void)state;
    for (intptr_t i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%ld", (long)i);
        assert_null(map_put(m, key, (void *)(i + 1), NULL));
    }
    assert_int_equal(map_len(m), 5000);
    for (intptr_t i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "k%ld", (long)i);
        assert_ptr_equal(map_del(m, key), (void *)(i + 1));
    }
    for (intptr_t i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%ld", (long)i);
        assert_ptr_equal(map_get(m, key), i % 2 ? (void *)(i + 1) : NULL);
    }
    while (map_next(m, &it, NULL, &v))
        n++;
    assert_int_equal(n, 2500);
    assert_ptr_equal(map_put(m, "k1", (void *)7, NULL), (void *)2);
    assert_ptr_equal(map_get(m, "k1"), (void *)7);
    map_free(m, NULL);
}

/* A borrowing map keeps the caller's key pointers: no copies, and removing or freeing leaves the keys alone. */
static void
test_map_borrowing_keeps_the_callers_keys(void **state)
{
    struct map *m = map_new_borrowing();
    static char keys[300][24];
    const char *k = NULL;
    size_t it = 0;
    void *v;
    (void)state;
    for (intptr_t i = 0; i < 300; i++) {
        snprintf(keys[i], sizeof keys[i], "b%ld", (long)i);
        assert_null(map_put(m, keys[i], (void *)(i + 1), NULL));
    }
    assert_ptr_equal(map_get(m, "b299"), (void *)300);
    assert_ptr_equal(map_del(m, "b7"), (void *)8);
    assert_null(map_get(m, "b7"));
    assert_string_equal(keys[7], "b7"); /* not freed */
    while (map_next(m, &it, &k, &v))
        if (v == (void *)43)
            break;
    assert_ptr_equal(k, keys[42]); /* the very pointer given */
    map_free(m, NULL);
}

/* A copy filled in the original's iteration order (hash order), as the snapshot loader does, after map_reserve:
 * every entry is there (the speed of it is bench-scale's: decoding 3M messages went from 36 s to 2 s). */
static void
test_map_reserve_then_fill_in_hash_order(void **state)
{
    struct map *a = map_new(), *b = map_new();
    static char keys[20000][24];
    const char *k;
    void *v;
    size_t it = 0;
    (void)state;
    for (intptr_t i = 0; i < 20000; i++) {
        snprintf(keys[i], sizeof keys[i], "sm%018ld", (long)i);
        map_put(a, keys[i], (void *)(i + 1), NULL);
    }
    assert_true(map_reserve(b, map_len(a)));
    while (map_next(a, &it, &k, &v))
        map_put(b, k, v, NULL);
    assert_int_equal(map_len(b), 20000);
    for (intptr_t i = 0; i < 20000; i++)
        assert_ptr_equal(map_get(b, keys[i]), (void *)(i + 1));
    assert_true(map_reserve(b, 10)); /* smaller than it is: nothing to do */
    assert_null(map_get(b, "absent"));
    map_free(a, NULL);
    map_free(b, NULL);
}

static int64_t
realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
test_clock_deadline_is_now_plus_ms_normalised(void **state)
{
    /* offsets that carry into tv_sec, borrow from it, or stay inside one second */
    static const int64_t offsets[] = { 0, 1, 999, 1000, 1001, 1500, 2999, 86400000, -1, -999, -1000, -1500 };
    (void)state;
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        int64_t before = realtime_ns();
        struct timespec d = clock_deadline(offsets[i]);
        int64_t after = realtime_ns(), at = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
        if (d.tv_nsec < 0 || d.tv_nsec >= 1000000000)
            fail_msg("offset %lld: tv_nsec %ld out of range", (long long)offsets[i], d.tv_nsec);
        if (at < before + offsets[i] * 1000000 || at > after + offsets[i] * 1000000)
            fail_msg("offset %lld: deadline not now + offset", (long long)offsets[i]);
    }
}

static void
test_clock_reads_the_right_clocks(void **state)
{
    int64_t m1 = clock_mono_ms(), w = clock_wall_ms(), m2 = clock_mono_ms(), unix_s = (int64_t)time(NULL);
    (void)state;
    assert_true(m2 >= m1);
    /* wall is Unix ms: within a second of time() (a monotonic reading counts from boot, far from it) */
    assert_true(w / 1000 >= unix_s - 1 && w / 1000 <= unix_s + 1);
}

static void
test_ratelimit_burst_then_rate(void **state)
{
    struct ratelimit *rl = ratelimit_new(5, 3);
    int64_t retry = 0;

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(rl, "u1", 1000, &retry));
    assert_false(ratelimit_take(rl, "u1", 1000, &retry));
    assert_true(retry > 0 && retry <= 201);              /* one token every 200 ms */
    assert_true(ratelimit_take(rl, "u2", 1000, &retry)); /* others have their own bucket */
    assert_false(ratelimit_take(rl, "u1", 1100, &retry)); /* half a token */
    assert_true(ratelimit_take(rl, "u1", 1200, &retry));
    assert_true(ratelimit_take(rl, "u1", 100000, &retry)); /* saved up, but never past the burst: */
    assert_true(ratelimit_take(rl, "u1", 100000, &retry));
    assert_true(ratelimit_take(rl, "u1", 100000, &retry));
    assert_false(ratelimit_take(rl, "u1", 100000, &retry));
    ratelimit_free(rl);
    rl = ratelimit_new(0, 1); /* 0: no limit */
    for (int i = 0; i < 1000; i++)
        assert_true(ratelimit_take(rl, "u1", 0, &retry));
    ratelimit_free(rl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit_burst_then_rate),
        cmocka_unit_test(test_utf8_accepts_valid_rejects_invalid),
        cmocka_unit_test(test_netaddr_sets),
        cmocka_unit_test(test_ids_are_sortable_and_subject_safe),
        cmocka_unit_test(test_form_decoding),
        cmocka_unit_test(test_map_put_get_delete_grow),
        cmocka_unit_test(test_map_borrowing_keeps_the_callers_keys),
        cmocka_unit_test(test_map_reserve_then_fill_in_hash_order),
        cmocka_unit_test(test_clock_deadline_is_now_plus_ms_normalised),
        cmocka_unit_test(test_clock_reads_the_right_clocks),
    };
    crypto_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
