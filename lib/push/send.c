/* SPDX-License-Identifier: MIT */
/*
 * One Web Push message to one subscription endpoint (RFC 8030 §5): encrypt, sign, POST with libcurl, and turn the
 * answer into a status the caller can act on (prune on 404/410, retry later on 5xx).
 *
 * Endpoints come from browsers, which is to say from users, so a POST to one must not become a way to reach our
 * own network (server-side request forgery). We only speak https, ignore proxy settings from the environment,
 * follow no redirect, and check every address just before its socket opens (CURLOPT_OPENSOCKETFUNCTION): the
 * check sees exactly the address curl is about to connect to, after its own DNS lookup, so a name that resolves
 * to a public address once and to 127.0.0.1 the next time gains nothing. IP literals are checked up front too,
 * for a clear error without any lookup.
 *
 * What it must not do: log (errors travel in struct ch_err), wait without a limit, or keep state between calls:
 * each call makes its own curl handle, so any number of worker threads may send at once.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "push/push_int.h"

#define ENDPOINT_MAX 4096
#define CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_TIMEOUT_MS 10000L
#define ANSWER_KEEP 160        /* of the push service's answer, this much goes into the error text */
#define ANSWER_MAX (64 * 1024) /* a longer answer is cut off: we only want its status */

/* ---- libcurl set-up ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

enum ch_status
push_curl_init(struct ch_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "push: libcurl failed to initialise: %s",
                          curl_easy_strerror(curl_init_rc));
    return CH_OK;
}

/* ---- the endpoint URL ---- */

static enum ch_status
bad_endpoint(struct ch_err *err, const char *why)
{
    return ch_err_set(err, CH_EINVAL, "endpoint", "push: endpoint: %s", why);
}

enum ch_status
push_url_parse(const char *endpoint, struct push_url *u, struct ch_err *err)
{
    CURLU *h = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *part = NULL;
    enum ch_status s;
    size_t n;

    memset(u, 0, sizeof *u);
    if (!endpoint || !*endpoint)
        return bad_endpoint(err, "missing");
    if (strlen(endpoint) > ENDPOINT_MAX)
        return bad_endpoint(err, "longer than 4096 bytes");
    if ((s = push_curl_init(err)) != CH_OK)
        return s;
    if (!(h = curl_url()))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (curl_url_set(h, CURLUPART_URL, endpoint, 0) != CURLUE_OK) {
        s = bad_endpoint(err, "not a URL");
        goto out;
    }
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "https") != 0 && strcasecmp(scheme, "http") != 0)) {
        s = bad_endpoint(err, "must be an https:// URL");
        goto out;
    }
    u->https = !strcasecmp(scheme, "https");
    /* a user name or password has no business in an endpoint, and a fragment is never sent */
    static const CURLUPart unwanted[] = { CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS, CURLUPART_ZONEID,
                                          CURLUPART_FRAGMENT };
    for (size_t i = 0; i < sizeof unwanted / sizeof unwanted[0]; i++) {
        if (curl_url_get(h, unwanted[i], &part, 0) == CURLUE_OK) {
            s = bad_endpoint(err, "must not hold a user, password, zone id or fragment");
            goto out;
        }
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        s = bad_endpoint(err, "has no host");
        goto out;
    }
    n = strlen(host);
    if (host[0] == '[') { /* an IPv6 literal; curl has checked its syntax */
        if (n < 3 || host[n - 1] != ']' || n - 2 >= sizeof u->host) {
            s = bad_endpoint(err, "bad IPv6 address");
            goto out;
        }
        struct in6_addr a6;
        memcpy(u->host, host + 1, n - 2);
        u->host[n - 2] = '\0';
        u->ipv6 = true;
        /* the canonical spelling (lowercase, zeros compressed), as the origin is written */
        if (inet_pton(AF_INET6, u->host, &a6) == 1)
            inet_ntop(AF_INET6, &a6, u->host, sizeof u->host);
    } else {
        if (n >= sizeof u->host) {
            s = bad_endpoint(err, "host name too long");
            goto out;
        }
        for (size_t i = 0; i <= n; i++)
            u->host[i] = (char)tolower((unsigned char)host[i]);
        /* push services have plain ASCII names; anything else (percent-escapes, IDN) is refused, not guessed at */
        if (strspn(u->host, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n) {
            s = bad_endpoint(err, "the host must be a plain DNS name or an IP address");
            goto out;
        }
    }
    if (curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        s = bad_endpoint(err, "bad port");
        goto out;
    }
    u->port = strtol(port, NULL, 10);
    curl_free(port);
    port = NULL;
    /* the origin as browsers write it: the port only when it is not the scheme's default */
    bool explicit_port = curl_url_get(h, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT) == CURLUE_OK;
    snprintf(u->origin, sizeof u->origin, "%s://%s%s%s%s", u->https ? "https" : "http", u->ipv6 ? "[" : "", u->host,
             u->ipv6 ? "]" : "", explicit_port ? ":" : "");
    if (explicit_port) {
        n = strlen(u->origin);
        snprintf(u->origin + n, sizeof u->origin - n, "%ld", u->port);
    }
    s = CH_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(part);
    curl_url_cleanup(h);
    return s;
}

/* ---- which addresses we connect to ---- */

/* IPv4 ranges that are not the public Internet (IANA special-purpose registry, RFC 6890 and successors). */
static bool
v4_public(uint32_t a)
{
    static const struct {
        uint32_t net;
        unsigned bits;
    } special[] = {
        { 0x00000000, 8 },  /* 0.0.0.0/8 "this network" */
        { 0x0a000000, 8 },  /* 10.0.0.0/8 private */
        { 0x64400000, 10 }, /* 100.64.0.0/10 shared (carrier-grade NAT) */
        { 0x7f000000, 8 },  /* 127.0.0.0/8 loopback */
        { 0xa9fe0000, 16 }, /* 169.254.0.0/16 link-local, where cloud metadata services answer */
        { 0xac100000, 12 }, /* 172.16.0.0/12 private */
        { 0xc0000000, 24 }, /* 192.0.0.0/24 IETF protocol assignments */
        { 0xc0000200, 24 }, /* 192.0.2.0/24 documentation */
        { 0xc0586300, 24 }, /* 192.88.99.0/24 6to4 relays (deprecated) */
        { 0xc0a80000, 16 }, /* 192.168.0.0/16 private */
        { 0xc6120000, 15 }, /* 198.18.0.0/15 benchmarking */
        { 0xc6336400, 24 }, /* 198.51.100.0/24 documentation */
        { 0xcb007100, 24 }, /* 203.0.113.0/24 documentation */
        { 0xe0000000, 4 },  /* 224.0.0.0/4 multicast */
        { 0xf0000000, 4 },  /* 240.0.0.0/4 reserved, and the broadcast address */
    };

    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if ((a >> (32 - special[i].bits)) == (special[i].net >> (32 - special[i].bits)))
            return false;
    return true;
}

static bool
v4_allowed(uint32_t a, bool https, bool allow_loopback)
{
    bool loopback = (a >> 24) == 127;

    if (allow_loopback && loopback)
        return true; /* over http:// too: the test push service has no certificate */
    return https && v4_public(a);
}

static uint32_t
v4_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* IPv6: only global unicast (2000::/3) less its special blocks; v4-mapped and NAT64 addresses by their v4 part. */
static bool
v6_allowed(const unsigned char b[16], bool https, bool allow_loopback)
{
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const unsigned char nat64[12] = { 0x00, 0x64, 0xff, 0x9b }; /* 64:ff9b::/96, RFC 6052 */
    static const unsigned char loop[16] = { [15] = 1 };

    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
        return v4_allowed(v4_at(b + 12), https, allow_loopback);
    if (!memcmp(b, loop, 16))
        return allow_loopback;
    if (!https || (b[0] & 0xe0) != 0x20)
        return false; /* not 2000::/3: unspecified, link-local, unique-local, multicast, reserved */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02)
        return false; /* 2001::/23 IETF protocol assignments (Teredo among them) */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return false; /* 2001:db8::/32 documentation */
    if (b[0] == 0x20 && b[1] == 0x02)
        return false; /* 2002::/16 6to4, which can carry any IPv4 address */
    if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0)
        return false; /* 3fff::/20 documentation */
    return true;
}

static bool
sockaddr_allowed(const struct sockaddr_storage *ss, bool https, bool allow_loopback)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return v4_allowed(ntohl(in->sin_addr.s_addr), https, allow_loopback);
    }
    if (ss->ss_family == AF_INET6)
        return v6_allowed(((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr, https, allow_loopback);
    return false;
}

static void
sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
    const void *a = ss->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

    if (!inet_ntop(ss->ss_family, a, out, (socklen_t)len))
        snprintf(out, len, "(address family %d)", ss->ss_family);
}

/* ---- the request ---- */

struct xfer {
    bool https, allow_loopback;
    bool refused;          /* a socket was refused by the address check */
    char refused_addr[64];
    char answer[ANSWER_KEEP + 1];
    size_t answer_len, seen;
};

static curl_socket_t
on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = clientp;
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof ss);
    if (purpose == CURLSOCKTYPE_IPCXN && a->addrlen <= sizeof ss)
        memcpy(&ss, &a->addr, a->addrlen); /* curl's storage is big enough for any family it uses */
    else
        ss.ss_family = AF_UNSPEC;
    if (!sockaddr_allowed(&ss, x->https, x->allow_loopback)) {
        x->refused = true;
        sockaddr_text(&ss, x->refused_addr, sizeof x->refused_addr);
        return CURL_SOCKET_BAD; /* curl tries the name's next address, if it has one */
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol); /* never inherited by nats-server */
}

static size_t
on_write(char *data, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    size_t len = size * n;

    for (size_t i = 0; i < len && x->answer_len < ANSWER_KEEP; i++) {
        unsigned char c = (unsigned char)data[i];
        x->answer[x->answer_len++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    x->answer[x->answer_len] = '\0';
    x->seen += len;
    return x->seen > ANSWER_MAX ? 0 : len; /* 0 ends the transfer; the status line has arrived by now */
}

static const char *
urgency_name(enum push_urgency u)
{
    switch (u) {
    case PUSH_URGENCY_HIGH: return "high";
    case PUSH_URGENCY_NORMAL: return "normal";
    case PUSH_URGENCY_LOW: return "low";
    case PUSH_URGENCY_VERY_LOW: return "very-low";
    }
    return NULL;
}

static bool
topic_ok(const char *t)
{
    size_t n = strlen(t);

    return n >= 1 && n <= 32 &&
           strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* The status for the push service's answer (RFC 8030 §5, §8.3; the push services' documented codes). */
static enum ch_status
answer_status(long code, const struct xfer *x, struct ch_err *err)
{
    const char *sep = x->answer_len ? ": " : "";

    if (code >= 200 && code < 300)
        return CH_OK;
    if (code == 404 || code == 410)
        return ch_err_set(err, CH_ENOTFOUND, "endpoint", "push: the subscription is gone (%ld)%s%s", code, sep,
                          x->answer);
    if (code >= 300 && code < 400)
        return ch_err_set(err, CH_EINVAL, "endpoint", "push: the endpoint redirects (%ld); redirects are not followed",
                          code);
    if (code == 429 || code >= 500)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "push: the push service is %s (%ld)%s%s",
                          code == 429 ? "throttling us" : "failing", code, sep, x->answer);
    return ch_err_set(err, CH_EINVAL, NULL, "push: the push service refused the message (%ld)%s%s", code, sep,
                      x->answer);
}

/* What can be judged of an endpoint without the network: an http(s) URL, https unless loopback is allowed, and an
 * address written in it public. u is filled in. */
static enum ch_status
endpoint_check(const struct push_config *cfg, const char *endpoint, struct push_url *u, struct ch_err *err)
{
    enum ch_status s;

    if ((s = push_url_parse(endpoint, u, err)) != CH_OK)
        return s;
    if (!u->https && !cfg->allow_loopback)
        return bad_endpoint(err, "must be an https:// URL");
    struct sockaddr_storage lit = { 0 };
    struct sockaddr_in *v4 = (struct sockaddr_in *)&lit;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&lit;
    if (inet_pton(AF_INET, u->host, &v4->sin_addr) == 1)
        lit.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, u->host, &v6->sin6_addr) == 1)
        lit.ss_family = AF_INET6;
    if (lit.ss_family != AF_UNSPEC && !sockaddr_allowed(&lit, u->https, cfg->allow_loopback))
        return ch_err_set(err, CH_EINVAL, "endpoint", "push: endpoint: %s is not a public address", u->host);
    return CH_OK;
}

enum ch_status
push_subscription_check(const struct push_config *cfg, const char *endpoint, const char *p256dh, const char *auth,
                        struct ch_err *err)
{
    struct push_url u;
    enum ch_status s;

    if ((s = endpoint_check(cfg, endpoint, &u, err)) != CH_OK)
        return s;
    return push_keys_check(p256dh, auth, err);
}

enum ch_status
push_send(const struct push_config *cfg, const struct push_msg *m, long *http_status, struct ch_err *err)
{
    struct push_url u;
    struct xfer x = { 0 };
    struct curl_slist *hl = NULL;
    char *auth = NULL, line[128], errbuf[CURL_ERROR_SIZE] = "";
    unsigned char *body = NULL;
    size_t body_len = 0;
    const char *urgency = urgency_name(m->urgency);
    long timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS, code = 0;
    CURL *h = NULL;
    CURLcode rc;
    enum ch_status s;

    *http_status = 0;
    if (!cfg->vapid)
        return ch_err_set(err, CH_EINVAL, "vapid", "push: no VAPID key");
    if ((s = endpoint_check(cfg, m->endpoint, &u, err)) != CH_OK)
        return s;
    if (m->ttl_s < 0 || m->ttl_s > PUSH_TTL_MAX)
        return ch_err_set(err, CH_EINVAL, "ttl", "push: TTL must be 0-%d seconds", PUSH_TTL_MAX);
    if (!urgency)
        return ch_err_set(err, CH_EINVAL, "urgency", "push: unknown urgency");
    if (m->topic && !topic_ok(m->topic))
        return ch_err_set(err, CH_EINVAL, "topic", "push: a topic is 1-32 base64url characters");

    if ((s = push_encrypt(m->p256dh, m->auth, m->payload, m->len, NULL, &body, &body_len, err)) != CH_OK ||
        (s = push_vapid_header(cfg->vapid, m->endpoint, cfg->subject, (int64_t)time(NULL), &auth, err)) != CH_OK)
        goto out;

#define ADDH(...)                                                                                                   \
    do {                                                                                                            \
        snprintf(line, sizeof line, __VA_ARGS__);                                                                   \
        struct curl_slist *n_ = curl_slist_append(hl, line);                                                        \
        if (!n_) {                                                                                                  \
            s = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");                                                  \
            goto out;                                                                                               \
        }                                                                                                           \
        hl = n_;                                                                                                    \
    } while (0)
    ADDH("Content-Encoding: aes128gcm");
    ADDH("Content-Type: application/octet-stream");
    ADDH("TTL: %d", m->ttl_s);
    ADDH("Urgency: %s", urgency);
    if (m->topic)
        ADDH("Topic: %s", m->topic);
    ADDH("Expect:"); /* no 100-continue round trip for 4 KB */
#undef ADDH
    {
        /* the Authorization line is longer than line[]; built on its own */
        size_t alen = strlen("Authorization: ") + strlen(auth) + 1;
        char *a = malloc(alen);
        struct curl_slist *n_ = NULL;
        if (a) {
            snprintf(a, alen, "Authorization: %s", auth);
            n_ = curl_slist_append(hl, a);
            free(a);
        }
        if (!n_) {
            s = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
            goto out;
        }
        hl = n_;
    }

    if (!(h = curl_easy_init())) {
        s = ch_err_set(err, CH_ENOMEM, NULL, "push: cannot make a curl handle");
        goto out;
    }
    x.https = u.https;
    x.allow_loopback = cfg->allow_loopback;
    curl_easy_setopt(h, CURLOPT_URL, m->endpoint);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, u.https ? "https" : "http");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(u.https ? CURLPROTO_HTTPS : CURLPROTO_HTTP));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* ignore http(s)_proxy: the address check must see the real peer */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &x);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS < timeout ? CONNECT_TIMEOUT_MS : timeout);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);

    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    *http_status = code;
    if (code > 0 && (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x.seen > ANSWER_MAX))) {
        s = answer_status(code, &x, err);
    } else if (x.refused) {
        s = ch_err_set(err, CH_EINVAL, "endpoint", "push: endpoint: %s resolves to %s, which is not a public address",
                       u.host, x.refused_addr);
    } else {
        s = ch_err_set(err, CH_EUNAVAIL, NULL, "push: %s: %s", u.origin, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    free(auth);
    free(body);
    return s;
}
