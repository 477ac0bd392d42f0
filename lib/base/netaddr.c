/* SPDX-License-Identifier: MIT */
/* CIDR sets over inet_pton. Built once at start-up, read-only afterwards; any thread. */
#include "base/netaddr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- the client behind proxies ---- */

/* The address in one list entry (surrounding blanks, quotes, brackets and a port dropped), normalised into out. */
static bool
entry_address(const char *s, size_t n, char *out, size_t len)
{
    char buf[64];

    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
        s++, n -= 2;
    if (n && s[0] == '[') { /* [v6] or [v6]:port */
        const char *close = memchr(s, ']', n);
        if (!close)
            return false;
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest && close[1] != ':')
            return false;
        n = (size_t)(close - s - 1);
        s++;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) /* one colon: v4:port */
            n = (size_t)(colon - s);
    }
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return netaddr_normalize(buf, out, len);
}

/* The value of the for= parameter of one Forwarded element (s, n), quotes kept for entry_address. */
static bool
forwarded_for(const char *s, size_t n, const char **v, size_t *vn)
{
    size_t i = 0;

    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ';'))
            i++;
        size_t name = i;
        while (i < n && s[i] != '=' && s[i] != ';')
            i++;
        if (i >= n || s[i] != '=')
            return false;
        size_t namelen = i - name, start = ++i;
        if (i < n && s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\' && i + 1 < n)
                    i++;
            if (i >= n)
                return false;
            i++;
        } else {
            while (i < n && s[i] != ';')
                i++;
        }
        if (namelen == 3 && strncasecmp(s + name, "for", 3) == 0) {
            *v = s + start;
            *vn = i - start;
            return true;
        }
    }
    return false;
}

void
netaddr_client(const struct netaddr_set *trusted, const char *peer, const char *header, enum netaddr_via via,
               char *out, size_t len)
{
    enum { MAX_HOPS = 64 };
    const char *start[MAX_HOPS]; /* a ring: only the last MAX_HOPS entries can matter */
    size_t size[MAX_HOPS], n = 0;

    snprintf(out, len, "%s", peer);
    if (!header || !trusted || !netaddr_set_contains(trusted, peer))
        return;
    /* split at commas outside quotes */
    const char *p = header, *e = header;
    bool quoted = false;
    for (;; e++) {
        if (*e == '"')
            quoted = !quoted;
        else if (*e == '\\' && quoted && e[1])
            e++;
        else if ((*e == ',' && !quoted) || !*e) {
            start[n % MAX_HOPS] = p;
            size[n % MAX_HOPS] = (size_t)(e - p);
            n++;
            if (!*e)
                break;
            p = e + 1;
        }
    }
    for (size_t left = n < MAX_HOPS ? n : MAX_HOPS; left--;) {
        size_t i = --n % MAX_HOPS;
        const char *v = start[i];
        size_t vn = size[i];
        char addr[64];

        if (via == NETADDR_VIA_FORWARDED && !forwarded_for(start[i], size[i], &v, &vn))
            return;
        if (!entry_address(v, vn, addr, sizeof addr))
            return;
        snprintf(out, len, "%s", addr);
        if (!netaddr_set_contains(trusted, addr))
            return;
    }
}
