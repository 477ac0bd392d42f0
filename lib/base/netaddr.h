/* SPDX-License-Identifier: MIT */
#pragma once
/* IP addresses and CIDR sets (for trusted proxies and per-IP throttles). Pure; any thread. */
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

struct netaddr_set;

/* Parse "10.0.0.1, 192.168.0.0/16, ::1, fd00::/8". *out is the caller's (netaddr_set_free). An empty list gives
 * an empty set. CH_EINVAL names the bad item. */
enum ch_status netaddr_set_parse(const char *const *items, struct netaddr_set **out, struct ch_err *err);
void netaddr_set_free(struct netaddr_set *s);
/* True if ip (textual IPv4 or IPv6; IPv4-mapped IPv6 counts as IPv4) is in the set. */
bool netaddr_set_contains(const struct netaddr_set *s, const char *ip);
/* Normalise a textual IP into buf (IPv4-mapped IPv6 becomes dotted IPv4). False if not an IP. */
bool netaddr_normalize(const char *ip, char *buf, size_t len);

/* Which header a trusted proxy writes the client's address into. */
enum netaddr_via {
    NETADDR_VIA_XFF,       /* X-Forwarded-For: 203.0.113.7, 10.0.0.2 */
    NETADDR_VIA_FORWARDED, /* Forwarded: for=203.0.113.7;proto=https, for="[2001:db8::1]:4711" (RFC 7239) */
};

/* The client's address behind a chain of proxies, into out (normalised). header holds every line of that header,
 * in order, joined with ", " (NULL: none). Unless the peer is in trusted, the answer is the peer. Otherwise the
 * list is walked from the right: each hop a trusted proxy added is believed, and the first address that is not a
 * trusted proxy is the client. Entries left of it could be forged by the client and are never read. An entry
 * that is not an address ("unknown", an obfuscated name, garbage) ends the walk at the last address believed.
 * Ports (1.2.3.4:80, [::1]:80) are dropped. out is at least 46 bytes. */
void netaddr_client(const struct netaddr_set *trusted, const char *peer, const char *header, enum netaddr_via via,
                    char *out, size_t len);
