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
