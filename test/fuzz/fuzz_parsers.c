/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the small parsers that read what a client sends before any handler logic: bearer credentials,
 * session cookies (signed, and signed + encrypted), form-encoded bodies, JSON request bodies and the typed field
 * getters every Connect method decodes with, proxy address headers (X-Forwarded-For, Forwarded) and trusted
 * proxy lists, UTF-8 checks, the value parsers (sizes, durations, URLs, lists) behind flags and settings, and the
 * message-search query language with the FTS5 expression built from it.
 *
 * Input: the first byte picks the parser, the rest is its input.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/form.h"
#include "base/netaddr.h"
#include "base/parse.h"
#include "base/utf8.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "search/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct crypto_keys *signing, *sealing;

static void
keys(void)
{
    struct ch_err err = { 0 };

    if (signing)
        return;
    if (crypto_init() != CH_OK ||
        crypto_keys_new("fuzz-core-secret-0123456789abcdef", "fuzz-cookie-signing-0123456789ab", "", &signing,
                        &err) != CH_OK ||
        crypto_keys_new("fuzz-core-secret-0123456789abcdef", "fuzz-cookie-signing-0123456789ab",
                        "fuzz-cookie-encryption-0123456789", &sealing, &err) != CH_OK)
        abort();
}

static void
fuzz_json(const char *s, size_t n)
{
    cJSON *o = NULL;
    struct ch_err err = { 0 };
    const char *str, **arr;
    size_t cnt;
    bool b;
    int64_t i;

    if (json_parse_object(s, n, JSON_MAX_DEPTH, &o, &err) != CH_OK)
        return;
    /* the field names and limits Connect methods use */
    static const char *const names[] = { "roomId", "body", "eventId", "name", "after", "pageToken", "userIds",
                                         "limit", "emoji", "description", "visibility", "issueToken", "eventIds" };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        json_get_str(o, names[k], k & 1, 0, 64, &str, &err);
        json_get_str(o, names[k], false, 1, 65536, &str, &err);
        json_get_bool(o, names[k], k & 1, &b, &err);
        json_get_int(o, names[k], false, 1, 100, &i, &err);
        json_get_int(o, names[k], true, INT64_MIN, INT64_MAX, &i, &err);
        if (json_get_str_array(o, names[k], k & 1, 100, 1, 64, &arr, &cnt, &err) == CH_OK)
            free(arr);
    }
    char *out = cJSON_PrintUnformatted(o);
    free(out);
    cJSON_Delete(o);
}

static void
fuzz_proxies(const char *s)
{
    /* "trusted list|peer|header" */
    char *copy = strdup(s), *peer, *header;
    char **items = NULL, out[64];
    size_t n;
    struct netaddr_set *set = NULL;

    if (!copy)
        return;
    peer = strchr(copy, '|');
    header = peer ? strchr(peer + 1, '|') : NULL;
    if (peer)
        *peer++ = '\0';
    if (header)
        *header++ = '\0';
    if (parse_list(copy, &items, &n, NULL) == CH_OK) {
        if (netaddr_set_parse((const char *const *)items, &set, NULL) == CH_OK) {
            netaddr_client(set, peer ? peer : "10.0.0.1", header, NETADDR_VIA_XFF, out, sizeof out);
            netaddr_client(set, peer ? peer : "10.0.0.1", header, NETADDR_VIA_FORWARDED, out, sizeof out);
            netaddr_set_free(set);
        }
        parse_list_free(items);
    }
    netaddr_normalize(copy, out, sizeof out);
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    keys();
    unsigned which = data[0] % 9;
    size_t n = size - 1;
    char *s = malloc(n + 1); /* NUL-terminated copy: most of these take C strings, as they get them from MHD */
    if (!s)
        return 0;
    memcpy(s, data + 1, n);
    s[n] = '\0';
    char uid[65], kind, buf[128];
    unsigned char secret[CRYPTO_TOKEN_SECRET];
    int64_t expires, v;
    struct form *f = NULL;

    switch (which) {
    case 0:
        crypto_bearer_parse(s, &kind, uid, secret);
        break;
    case 1:
        crypto_cookie_open(signing, s, 1700000000, uid, secret, &expires);
        break;
    case 2:
        crypto_cookie_open(sealing, s, 1700000000, uid, secret, &expires);
        break;
    case 3:
        if (form_parse(s, n, &f, NULL) == CH_OK) {
            form_get(f, "login");
            form_get(f, "password");
            form_free(f);
        }
        break;
    case 4:
        fuzz_json(s, n);
        break;
    case 5:
        fuzz_proxies(s);
        break;
    case 6:
        utf8_valid(s, n);
        utf8_count(s, n);
        break;
    case 8: {
        struct search_query *q = NULL;
        if (search_query_parse(s, &q, NULL) == CH_OK) {
            free(search_match_expr((const char *const *)q->words, q->nwords, (const char *const *)q->prefixes,
                                   q->nprefixes, (const char *const *)q->phrases, q->nphrases));
            search_query_free(q);
        }
        break;
    }
    default:
        parse_size(s, &v, NULL);
        parse_duration(s, &v, NULL);
        parse_int(s, INT64_MIN, INT64_MAX, &v, NULL);
        parse_url(s, "http|https", NULL);
        parse_url_origin(s, buf, sizeof buf);
        if (parse_duration(s, &v, NULL) == CH_OK)
            fmt_duration(v, buf, sizeof buf);
        if (parse_size(s, &v, NULL) == CH_OK)
            fmt_size(v, buf, sizeof buf);
        break;
    }
    sodium_memzero(secret, sizeof secret);
    free(s);
    return 0;
}
