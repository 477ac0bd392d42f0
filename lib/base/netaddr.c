/* SPDX-License-Identifier: MIT */
/* CIDR sets over inet_pton. Built once at start-up, read-only afterwards; any thread. */
#include "base/netaddr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cidr {
    unsigned char addr[16]; /* IPv4 stored as IPv4-mapped IPv6 */
    int bits;               /* prefix length over the 128-bit form */
};

struct netaddr_set {
    size_t n;
    struct cidr v[];
};

/* Textual IP → 16 bytes (IPv4 mapped into ::ffff:0:0/96). */
static bool
to16(const char *ip, unsigned char out[16], bool *v4)
{
    struct in_addr a4;

    if (inet_pton(AF_INET, ip, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *v4 = true;
        return true;
    }
    if (inet_pton(AF_INET6, ip, out) == 1) {
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        *v4 = memcmp(out, mapped, 12) == 0;
        return true;
    }
    return false;
}

enum ch_status
netaddr_set_parse(const char *const *items, struct netaddr_set **out, struct ch_err *err)
{
    size_t n = 0;
    struct netaddr_set *s;

    while (items && items[n])
        n++;
    s = calloc(1, sizeof *s + n * sizeof s->v[0]);
    if (!s)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char ip[64];
        const char *slash = strchr(items[i], '/');
        size_t iplen = slash ? (size_t)(slash - items[i]) : strlen(items[i]);
        bool v4;
        long bits;
        char *end;

        if (iplen >= sizeof ip)
            goto bad;
        memcpy(ip, items[i], iplen);
        ip[iplen] = '\0';
        if (!to16(ip, s->v[i].addr, &v4))
            goto bad;
        bits = v4 ? 32 : 128;
        if (slash) {
            /* digits only: strtol alone would also take " 8" and "+8" */
            if (slash[1] < '0' || slash[1] > '9')
                goto bad;
            bits = strtol(slash + 1, &end, 10);
            if (*end || bits < 0 || bits > 128)
                goto bad;
        }
        /* an IPv4 prefix counts over the last 32 bits. An IPv4-mapped address spelt as IPv6 takes either an IPv4
         * prefix (::ffff:10.0.0.0/8) or the IPv6 one (::ffff:10.0.0.0/104); 33..95 would reach past the mapped
         * range into real IPv6 space, which nobody means */
        if (v4 && bits <= 32)
            bits += 96;
        else if (v4 && (!strchr(ip, ':') || bits < 96))
            goto bad;
        s->v[i].bits = (int)bits;
        continue;
    bad:
        free(s);
        return ch_err_set(err, CH_EINVAL, NULL, "'%.60s' is not an IP address or CIDR range", items[i]);
    }
    s->n = n;
    *out = s;
    return CH_OK;
}

void
netaddr_set_free(struct netaddr_set *s)
{
    free(s);
}

bool
netaddr_set_contains(const struct netaddr_set *s, const char *ip)
{
    unsigned char a[16];
    bool v4;

    if (!s || !to16(ip, a, &v4))
        return false;
    for (size_t i = 0; i < s->n; i++) {
        int bits = s->v[i].bits, full = bits / 8, rem = bits % 8;
        if (memcmp(a, s->v[i].addr, (size_t)full) != 0)
            continue;
        if (rem && ((a[full] ^ s->v[i].addr[full]) & (0xff << (8 - rem)) & 0xff))
            continue;
        return true;
    }
    return false;
}

bool
netaddr_normalize(const char *ip, char *buf, size_t len)
{
    unsigned char a[16];
    bool v4;

    if (!to16(ip, a, &v4))
        return false;
    if (v4)
        return inet_ntop(AF_INET, a + 12, buf, (socklen_t)len) != NULL;
    return inet_ntop(AF_INET6, a, buf, (socklen_t)len) != NULL;
}
