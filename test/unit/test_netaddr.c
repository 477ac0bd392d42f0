/* SPDX-License-Identifier: MIT */
/*
 * lib/base/netaddr: CIDR sets for webserver.trusted_proxies and per-IP limits. Membership is table-driven per
 * set (prefix edges on both sides, byte and non-byte boundaries, IPv4-mapped IPv6), then rejections, which must
 * name the bad item, then normalisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/netaddr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct member {
    const char *ip;
    bool in;
};

static struct netaddr_set *
set_of(const char *const *items)
{
    struct netaddr_set *s = NULL;
    struct ch_err err = { 0 };

    if (netaddr_set_parse(items, &s, &err) != CH_OK)
        fail_msg("set rejected: %s", err.msg);
    assert_non_null(s);
    return s;
}

static void
check_members(const char *const *items, const struct member *m, size_t n)
{
    struct netaddr_set *s = set_of(items);

    for (size_t i = 0; i < n; i++)
        if (netaddr_set_contains(s, m[i].ip) != m[i].in)
            fail_msg("%s should %sbe in the set starting '%s'", m[i].ip, m[i].in ? "" : "not ", items[0]);
    netaddr_set_free(s);
}

static void
test_netaddr_ipv4_cidr_membership_at_prefix_edges(void **state)
{
    static const char *const items[] = { "10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10", "192.168.1.7",
                                         "203.0.113.8/31", NULL };
    static const struct member m[] = {
        { "10.0.0.0", true },         { "10.1.2.3", true },        { "10.255.255.255", true },
        { "9.255.255.255", false },   { "11.0.0.0", false },       { "172.16.0.0", true },
        { "172.31.255.255", true },   { "172.15.255.255", false }, { "172.32.0.0", false },
        { "100.64.0.1", true },       { "100.127.255.255", true }, { "100.63.255.255", false },
        { "100.128.0.0", false },     { "192.168.1.7", true },     { "192.168.1.6", false },
        { "192.168.1.8", false },     { "203.0.113.8", true },     { "203.0.113.9", true },
        { "203.0.113.7", false },     { "203.0.113.10", false },   { "8.8.8.8", false },
        { "0.0.0.0", false },         { "255.255.255.255", false },
    };
    (void)state;
    check_members(items, m, N(m));
}

static void
test_netaddr_ipv6_cidr_membership_at_prefix_edges(void **state)
{
    static const char *const items[] = { "fd00::/8", "::1", "2001:db8:abcd::/48", "fe80::/10", "2001:db8::1/128",
                                         NULL };
    static const struct member m[] = {
        { "fd00::", true },
        { "fd12::34", true },
        { "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
        { "fc00::", false },
        { "fe00::", false },
        { "::1", true },
        { "0:0:0:0:0:0:0:1", true },
        { "::2", false },
        { "::", false },
        { "2001:db8:abcd::", true },
        { "2001:db8:abcd:ffff::5", true },
        { "2001:db8:abce::", false },
        { "2001:db8:abcc:ffff::", false },
        { "FE80::1", true },
        { "febf:ffff::1", true },
        { "fec0::1", false },
        { "2001:db8::1", true },
        { "2001:db8::2", false },
        { "2001:db8::", false },
    };
    (void)state;
    check_members(items, m, N(m));
}

static void
test_netaddr_ipv4_mapped_ipv6_counts_as_ipv4(void **state)
{
    static const char *const items[] = { "10.0.0.0/8", "192.168.1.7", NULL };
    static const struct member m[] = {
        { "::ffff:10.0.0.1", true },      { "::FFFF:10.200.0.1", true },   { "::ffff:a00:1", true },
        { "0:0:0:0:0:ffff:a00:1", true }, { "::ffff:11.0.0.1", false },    { "::ffff:192.168.1.7", true },
        { "::ffff:192.168.1.8", false },  { "::10.0.0.1", false }, /* IPv4-compatible form is plain IPv6 */
        { "10::1", false },               { "::a00:1", false },
    };
    (void)state;
    check_members(items, m, N(m));
}

static void
test_netaddr_mapped_ranges_take_ipv4_or_ipv6_prefix_lengths(void **state)
{
    static const char *const v4len[] = { "::ffff:10.0.0.0/8", NULL };
    static const char *const v6len[] = { "::ffff:10.0.0.0/104", NULL };
    static const char *const all4[] = { "::ffff:0:0/96", NULL };
    static const struct member m[] = {
        { "10.1.1.1", true }, { "::ffff:10.1.1.1", true }, { "11.0.0.0", false }, { "::1", false },
    };
    static const struct member every4[] = {
        { "0.0.0.0", true }, { "10.1.1.1", true }, { "255.255.255.255", true }, { "::1", false }, { "fd00::1", false },
    };
    (void)state;
    check_members(v4len, m, N(m));
    check_members(v6len, m, N(m));
    check_members(all4, every4, N(every4));
}

static void
test_netaddr_slash_0_32_and_128(void **state)
{
    static const char *const all4[] = { "0.0.0.0/0", NULL };
    static const char *const all6[] = { "::/0", NULL };
    static const char *const one4[] = { "203.0.113.9/32", NULL };
    static const char *const one6[] = { "2001:db8::9/128", NULL };
    static const char *const half[] = { "128.0.0.0/1", NULL };
    static const struct member m_all4[] = {
        { "0.0.0.0", true },   { "8.8.8.8", true },     { "255.255.255.255", true },
        { "::ffff:1.2.3.4", true }, { "2001:db8::1", false }, { "::1", false },
    };
    /* IPv4 is kept in its mapped form, so "::/0" is every address, IPv4 included */
    static const struct member m_all6[] = {
        { "::", true }, { "2001:db8::1", true }, { "ffff::1", true }, { "::1", true }, { "8.8.8.8", true },
    };
    static const struct member m_one4[] = {
        { "203.0.113.9", true }, { "203.0.113.8", false }, { "203.0.113.10", false }, { "::ffff:203.0.113.9", true },
    };
    static const struct member m_one6[] = {
        { "2001:db8::9", true }, { "2001:db8::8", false }, { "2001:db8::a", false }, { "2001:db8:0:0:0:0:0:9", true },
    };
    static const struct member m_half[] = {
        { "128.0.0.0", true }, { "200.1.2.3", true }, { "127.255.255.255", false }, { "0.0.0.1", false },
    };
    (void)state;
    check_members(all4, m_all4, N(m_all4));
    check_members(all6, m_all6, N(m_all6));
    check_members(one4, m_one4, N(m_one4));
    check_members(one6, m_one6, N(m_one6));
    check_members(half, m_half, N(m_half));
}

static void
test_netaddr_host_bits_in_a_range_are_ignored(void **state)
{
    static const char *const items[] = { "10.1.2.3/8", "2001:db8::1234/32", NULL };
    static const struct member m[] = {
        { "10.200.0.1", true }, { "11.1.2.3", false }, { "2001:db8:ffff::1", true }, { "2001:db9::1234", false },
    };
    (void)state;
    check_members(items, m, N(m));
}

static void
test_netaddr_contains_is_false_for_non_addresses(void **state)
{
    static const char *const items[] = { "0.0.0.0/0", "::/0", NULL };
    static const char *const bad[] = { "",          "not an ip", "10.0.0.1/32", " 10.0.0.1", "10.0.0.1 ",
                                       "10.0.0",    "256.0.0.1", "1.2.3.4.5",   "fe80::1%eth0", "[::1]",
                                       "::1::2",    "gggg::",    "localhost" };
    struct netaddr_set *s = set_of(items);
    (void)state;
    for (size_t i = 0; i < N(bad); i++)
        if (netaddr_set_contains(s, bad[i]))
            fail_msg("'%s' counted as an address", bad[i]);
    netaddr_set_free(s);
    assert_false(netaddr_set_contains(NULL, "10.0.0.1"));
}

static void
test_netaddr_empty_list_gives_an_empty_set(void **state)
{
    static const char *const none[] = { NULL };
    struct netaddr_set *s = NULL;
    (void)state;
    assert_int_equal(netaddr_set_parse(none, &s, NULL), CH_OK);
    assert_false(netaddr_set_contains(s, "10.0.0.1"));
    assert_false(netaddr_set_contains(s, "::1"));
    netaddr_set_free(s);
    s = NULL;
    assert_int_equal(netaddr_set_parse(NULL, &s, NULL), CH_OK);
    assert_non_null(s);
    assert_false(netaddr_set_contains(s, "::1"));
    netaddr_set_free(s);
    netaddr_set_free(NULL);
}

static void
test_netaddr_rejects_bad_items_naming_them(void **state)
{
    static const char *const bad[] = {
        "10.0.0.0/33",   "::1/129",         "nonsense",      "",                 "10.0.0.0/",
        "10.0.0.0/ 8",   "10.0.0.0/+8",     "10.0.0.0/-1",   "10.0.0.0/8/8",     "10.0.0.0/8x",
        "10.0.0.0/0x8",  "256.0.0.1",       "10.0.0",        " 10.0.0.1",        "10.0.0.1 ",
        "fe80::1%eth0",  "::ffff:10.0.0.0/40", "::ffff:10.0.0.0/95", "10.0.0.0/99999999999999999999",
        "/8",            "localhost",       "1.2.3.4:80",    "[::1]",            "::1/",
    };
    (void)state;
    for (size_t i = 0; i < N(bad); i++) {
        const char *items[] = { "10.0.0.0/8", bad[i], "::1", NULL };
        struct netaddr_set *s = (struct netaddr_set *)&s; /* a sentinel: must survive a failure */
        struct ch_err err = { 0 };
        char want[96];
        if (netaddr_set_parse(items, &s, &err) != CH_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        if (s != (struct netaddr_set *)&s)
            fail_msg("'%s': output written on failure", bad[i]);
        snprintf(want, sizeof want, "'%s' is not an IP address or CIDR range", bad[i]);
        if (strcmp(err.msg, want) != 0)
            fail_msg("'%s': message '%s', want '%s'", bad[i], err.msg, want);
    }
}

static void
test_netaddr_rejects_an_overlong_item_with_a_truncated_name(void **state)
{
    char longitem[200];
    const char *items[] = { longitem, NULL };
    struct netaddr_set *s = NULL;
    struct ch_err err = { 0 };
    (void)state;
    memset(longitem, '1', sizeof longitem - 1);
    longitem[sizeof longitem - 1] = '\0';
    assert_int_equal(netaddr_set_parse(items, &s, &err), CH_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "111111111111"));
    assert_non_null(strstr(err.msg, "is not an IP address"));
    assert_true(strlen(err.msg) < 120); /* the item is cut, the message is not a wall of digits */
}

static void
test_netaddr_normalize_unmaps_ipv4_and_canonicalises_ipv6(void **state)
{
    static const struct {
        const char *in;
        bool ok;
        const char *want;
    } c[] = {
        { "::ffff:127.0.0.1", true, "127.0.0.1" },
        { "::FFFF:7f00:1", true, "127.0.0.1" },
        { "0:0:0:0:0:ffff:a00:1", true, "10.0.0.1" },
        { "127.0.0.1", true, "127.0.0.1" },
        { "255.255.255.255", true, "255.255.255.255" },
        { "2001:DB8::0:1", true, "2001:db8::1" },
        { "2001:0db8:0000:0000:0000:0000:0000:0001", true, "2001:db8::1" },
        { "0:0:0:0:0:0:0:1", true, "::1" },
        { "::", true, "::" },
        { "FE80::1", true, "fe80::1" },
        { "nonsense", false, NULL },
        { "", false, NULL },
        { "10.0.0.1/8", false, NULL },
        { "fe80::1%eth0", false, NULL },
        { " 127.0.0.1", false, NULL },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char buf[64] = "";
        if (netaddr_normalize(c[i].in, buf, sizeof buf) != c[i].ok)
            fail_msg("netaddr_normalize('%s') should %s", c[i].in, c[i].ok ? "succeed" : "fail");
        if (c[i].ok && strcmp(buf, c[i].want) != 0)
            fail_msg("netaddr_normalize('%s') = '%s', want '%s'", c[i].in, buf, c[i].want);
    }
}

static void
test_netaddr_normalize_in_place_and_into_small_buffers(void **state)
{
    char buf[64] = "::ffff:192.168.0.1", small[16];
    (void)state;
    /* server/http/http.c normalises the peer address in place */
    assert_true(netaddr_normalize(buf, buf, sizeof buf));
    assert_string_equal(buf, "192.168.0.1");
    assert_true(netaddr_normalize("127.0.0.1", small, 10)); /* 9 characters + NUL */
    assert_string_equal(small, "127.0.0.1");
    assert_false(netaddr_normalize("127.0.0.1", small, 9));
    assert_false(netaddr_normalize("2001:db8::1", small, 11));
}

struct hop_case {
    const char *peer, *header;
    enum netaddr_via via;
    const char *want;
};

static void
test_netaddr_client_walks_proxies_from_the_right(void **state)
{
    static const char *const trusted[] = { "10.0.0.0/8", "fd00::/8", NULL };
    static const struct hop_case c[] = {
        /* an untrusted peer's headers are never read */
        { "198.51.100.9", "203.0.113.7", NETADDR_VIA_XFF, "198.51.100.9" },
        { "198.51.100.9", "for=203.0.113.7", NETADDR_VIA_FORWARDED, "198.51.100.9" },
        /* a trusted peer without the header is the client */
        { "10.0.0.1", NULL, NETADDR_VIA_XFF, "10.0.0.1" },
        { "10.0.0.1", "", NETADDR_VIA_XFF, "10.0.0.1" },
        /* one proxy; the client's forged entries on the left are never reached */
        { "10.0.0.1", "203.0.113.7", NETADDR_VIA_XFF, "203.0.113.7" },
        { "10.0.0.1", "1.1.1.1, 203.0.113.7", NETADDR_VIA_XFF, "203.0.113.7" },
        { "10.0.0.1", "10.9.9.9, 203.0.113.7", NETADDR_VIA_XFF, "203.0.113.7" },
        /* two proxies: the inner one is trusted, so the walk goes on */
        { "10.0.0.1", "1.1.1.1, 203.0.113.7, 10.0.0.2", NETADDR_VIA_XFF, "203.0.113.7" },
        { "::ffff:10.0.0.1", " 203.0.113.7 ,\t10.0.0.2 ", NETADDR_VIA_XFF, "203.0.113.7" },
        /* ports and brackets are dropped; IPv6 is canonicalised */
        { "10.0.0.1", "203.0.113.7:51234", NETADDR_VIA_XFF, "203.0.113.7" },
        { "10.0.0.1", "[2001:DB8::0:1]:443", NETADDR_VIA_XFF, "2001:db8::1" },
        { "10.0.0.1", "2001:db8::1", NETADDR_VIA_XFF, "2001:db8::1" },
        /* garbage stops the walk at the last address believed */
        { "10.0.0.1", "203.0.113.7, nonsense", NETADDR_VIA_XFF, "10.0.0.1" },
        { "10.0.0.1", "203.0.113.7, unknown, 10.0.0.2", NETADDR_VIA_XFF, "10.0.0.2" },
        { "10.0.0.1", ",", NETADDR_VIA_XFF, "10.0.0.1" },
        { "10.0.0.1", "[2001:db8::1", NETADDR_VIA_XFF, "10.0.0.1" },
        { "10.0.0.1", "[2001:db8::1]x", NETADDR_VIA_XFF, "10.0.0.1" },
        /* Forwarded (RFC 7239 section 4 and 7.4 examples) */
        { "10.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43", NETADDR_VIA_FORWARDED, "192.0.2.60" },
        { "10.0.0.1", "For=\"[2001:db8:cafe::17]:4711\"", NETADDR_VIA_FORWARDED, "2001:db8:cafe::17" },
        { "10.0.0.1", "for=192.0.2.43, for=198.51.100.17", NETADDR_VIA_FORWARDED, "198.51.100.17" },
        { "10.0.0.1", "for=192.0.2.43, for=\"10.0.0.2:80\";by=10.0.0.1", NETADDR_VIA_FORWARDED, "192.0.2.43" },
        { "10.0.0.1", "proto=https;for=\"192.0.2.43\"", NETADDR_VIA_FORWARDED, "192.0.2.43" },
        /* a quoted comma is not a separator; unknown and obfuscated identifiers stop the walk */
        { "10.0.0.1", "for=192.0.2.43;x=\"a,b\"", NETADDR_VIA_FORWARDED, "192.0.2.43" },
        { "10.0.0.1", "for=192.0.2.43, for=unknown", NETADDR_VIA_FORWARDED, "10.0.0.1" },
        { "10.0.0.1", "for=192.0.2.43, for=_hidden", NETADDR_VIA_FORWARDED, "10.0.0.1" },
        { "10.0.0.1", "proto=https", NETADDR_VIA_FORWARDED, "10.0.0.1" },
        { "10.0.0.1", "for=\"192.0.2.43", NETADDR_VIA_FORWARDED, "10.0.0.1" },
        { "10.0.0.1", "for", NETADDR_VIA_FORWARDED, "10.0.0.1" },
        /* an X-Forwarded-For value in Forwarded mode, or the other way round, is not believed */
        { "10.0.0.1", "203.0.113.7", NETADDR_VIA_FORWARDED, "10.0.0.1" },
        { "10.0.0.1", "for=203.0.113.7", NETADDR_VIA_XFF, "10.0.0.1" },
    };
    struct netaddr_set *s = set_of(trusted);
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char out[64];
        netaddr_client(s, c[i].peer, c[i].header, c[i].via, out, sizeof out);
        if (strcmp(out, c[i].want) != 0)
            fail_msg("peer %s, %s '%s': got %s, want %s", c[i].peer, c[i].via == NETADDR_VIA_XFF ? "XFF" : "Forwarded",
                     c[i].header ? c[i].header : "(none)", out, c[i].want);
    }
    netaddr_set_free(s);
}

static void
test_netaddr_client_reads_only_the_nearest_hops_of_a_long_list(void **state)
{
    static const char *const trusted[] = { "10.0.0.0/8", NULL };
    struct netaddr_set *s = set_of(trusted);
    char big[20000], out[64];
    size_t n = 0;
    (void)state;
    /* 1,000 forged entries, then the client, then 70 trusted hops: more than the 64 remembered, so the walk ends
     * at the leftmost hop it still holds, never at a forged entry */
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(big + n, "1.2.3.%d, ", i % 250);
    n += (size_t)sprintf(big + n, "203.0.113.7");
    for (int i = 0; i < 70; i++)
        n += (size_t)sprintf(big + n, ", 10.0.%d.1", i);
    netaddr_client(s, "10.0.0.1", big, NETADDR_VIA_XFF, out, sizeof out);
    assert_string_equal(out, "10.0.6.1");
    /* with 10 hops the client is found */
    n = (size_t)sprintf(big, "1.2.3.4, 203.0.113.7");
    for (int i = 0; i < 10; i++)
        n += (size_t)sprintf(big + n, ", 10.0.%d.1", i);
    netaddr_client(s, "10.0.0.1", big, NETADDR_VIA_XFF, out, sizeof out);
    assert_string_equal(out, "203.0.113.7");
    netaddr_set_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netaddr_ipv4_cidr_membership_at_prefix_edges),
        cmocka_unit_test(test_netaddr_ipv6_cidr_membership_at_prefix_edges),
        cmocka_unit_test(test_netaddr_ipv4_mapped_ipv6_counts_as_ipv4),
        cmocka_unit_test(test_netaddr_mapped_ranges_take_ipv4_or_ipv6_prefix_lengths),
        cmocka_unit_test(test_netaddr_slash_0_32_and_128),
        cmocka_unit_test(test_netaddr_host_bits_in_a_range_are_ignored),
        cmocka_unit_test(test_netaddr_contains_is_false_for_non_addresses),
        cmocka_unit_test(test_netaddr_empty_list_gives_an_empty_set),
        cmocka_unit_test(test_netaddr_rejects_bad_items_naming_them),
        cmocka_unit_test(test_netaddr_rejects_an_overlong_item_with_a_truncated_name),
        cmocka_unit_test(test_netaddr_normalize_unmaps_ipv4_and_canonicalises_ipv6),
        cmocka_unit_test(test_netaddr_normalize_in_place_and_into_small_buffers),
        cmocka_unit_test(test_netaddr_client_walks_proxies_from_the_right),
        cmocka_unit_test(test_netaddr_client_reads_only_the_nearest_hops_of_a_long_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
