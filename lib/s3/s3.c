/* SPDX-License-Identifier: MIT */
/*
 * The S3 client of s3.h: AWS Signature Version 4 (sign.c-sized, kept here: the signer is only ours), a pool of
 * libcurl easy handles, and the five calls attachments make. No S3 SDK: Debian has none for C that signs V4 and
 * streams from a callback (libs3 speaks V2 only), and the protocol subset is small.
 *
 * What it must not do: log (errors travel in struct ch_err), follow redirects (a 301 means a wrong region and is
 * reported as such), wait without a limit (connect, low-speed and total timeouts below), or keep the secret key
 * in ordinary memory (sodium_malloc, wiped on free). Any thread; see s3.h.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <nettle/hmac.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto/crypto.h"
#include "s3/s3.h"

#define POOL_MAX 8                /* idle handles kept; more are made on demand and dropped after use */
#define CONNECT_TIMEOUT_MS 5000L  /* an endpoint that does not accept within this is "unavailable" */
#define LOW_SPEED_BYTES 1024L     /* a transfer slower than this ... */
#define LOW_SPEED_SECS 20L        /* ... for this long is a stalled S3, abandoned */
#define SMALL_TIMEOUT_MS 30000L   /* whole-request cap for HEAD, DELETE, bucket calls and ranged GETs */
#define ERRBODY_MAX 2048          /* of an error answer we keep this much, for <Code> and <Message> */
#define TARGET_MAX 4096
#define AUTH_MAX 1024
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
    char *base_url;  /* "https://bucket.s3.amazonaws.com" or "http://127.0.0.1:9000" */
    char *host;      /* the Host header we sign and send */
    char *bucket_path; /* "/bucket" (path-style) or "" (virtual-host) */
    char *bucket, *region, *akid, *prefix;
    char *secret;    /* sodium memory */
    size_t secret_len;
    char desc[320];
    atomic_bool bucket_ok;
    pthread_mutex_t mu; /* guards idle and nidle */
    CURL *idle[POOL_MAX];
    size_t nidle;
};

/* ---- small growable strings (canonical requests) ---- */

struct sb {
    char *p;
    size_t len, cap;
    bool bad; /* out of memory: every later append is a no-op */
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->bad = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_str(struct sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* ---- Signature Version 4 ---- */

static bool
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

bool
s3_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = strlen(out);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            if (o + 2 > cap)
                return false;
            out[o++] = (char)c;
        } else {
            if (o + 4 > cap)
                return false;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return true;
}

/* Encoded copy of s (heap; NULL on out of memory). */
static char *
encode_dup(const char *s, bool keep_slash)
{
    size_t cap = strlen(s) * 3 + 1;
    char *out = malloc(cap);

    if (out) {
        out[0] = '\0';
        s3_uri_encode(s, strlen(s), keep_slash, out, cap);
    }
    return out;
}

struct kv {
    char *k, *v;
};

static int
kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static void
kv_free(struct kv *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        free(a[i].k);
        free(a[i].v);
    }
    free(a);
}

/* A header value as SigV4 canonicalises it: outer whitespace trimmed, inner runs of whitespace as one space. */
static char *
header_value(const char *v)
{
    size_t n = strlen(v), o = 0;
    char *out = malloc(n + 1);
    bool space = false;

    if (!out)
        return NULL;
    while (*v && isspace((unsigned char)*v))
        v++;
    for (; *v; v++) {
        if (isspace((unsigned char)*v)) {
            space = true;
            continue;
        }
        if (space && o)
            out[o++] = ' ';
        space = false;
        out[o++] = *v;
    }
    out[o] = '\0';
    return out;
}

static char *
lower_dup(const char *s)
{
    char *out = strdup(s);

    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static void
hmac(const unsigned char *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
    struct hmac_sha256_ctx ctx;

    hmac_sha256_set_key(&ctx, klen, key);
    hmac_sha256_update(&ctx, mlen, (const uint8_t *)msg);
    hmac_sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
    sodium_memzero(&ctx, sizeof ctx);
}

static bool
payload_ok(const char *p)
{
    return p && (crypto_sha256_hex_valid(p) || !strcmp(p, "UNSIGNED-PAYLOAD") ||
                 !strcmp(p, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
}

enum ch_status
s3_sign(const struct s3_sig_in *in, char *target, size_t target_len, char *auth, size_t auth_len,
        char amz_date[S3_AMZ_DATE_LEN], struct ch_err *err)
{
    const char *service = in->service ? in->service : "s3";
    struct kv *q = NULL, *h = NULL;
    size_t nh = 0;
    struct sb canon = { 0 }, signed_names = { 0 }, sts = { 0 };
    char date[9], scope[160], creq_hash[CRYPTO_SHA256_HEX], sig[65];
    unsigned char k1[32], k2[32], k3[32], k4[32], mac[32];
    unsigned char *key0 = NULL;
    enum ch_status st = CH_OK;
    struct tm tm;
    time_t t = (time_t)in->unix_s;

    if (!in->method || !*in->method || !in->host || !*in->host || !in->path || in->path[0] != '/' ||
        !payload_ok(in->payload_sha256) || !in->region || !*in->region || !in->access_key_id ||
        !in->secret_access_key)
        return ch_err_set(err, CH_EINVAL, NULL, "s3: incomplete request to sign");
    if (!gmtime_r(&t, &tm) || strftime(amz_date, S3_AMZ_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return ch_err_set(err, CH_EINVAL, NULL, "s3: signing time out of range");
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    if ((size_t)snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, in->region, service) >= sizeof scope)
        return ch_err_set(err, CH_EINVAL, "region", "s3: region too long");

    /* the path: each byte but unreserved ones and '/' percent-encoded, never normalised (S3 keys may hold "//") */
    target[0] = '\0';
    if (!s3_uri_encode(in->path, strlen(in->path), true, target, target_len)) {
        st = ch_err_set(err, CH_EINVAL, NULL, "s3: object key too long");
        goto out;
    }
    sb_str(&canon, in->method);
    sb_str(&canon, "\n");
    sb_str(&canon, target);
    sb_str(&canon, "\n");

    /* the query: names and values encoded ('/' too), sorted by encoded name then value, bare names as "name=" */
    if (in->nquery && !(q = calloc(in->nquery, sizeof *q))) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < in->nquery; i++) {
        q[i].k = encode_dup(in->query[i].name, false);
        q[i].v = encode_dup(in->query[i].value ? in->query[i].value : "", false);
        if (!q[i].k || !q[i].v) {
            st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
            goto out;
        }
    }
    if (in->nquery)
        qsort(q, in->nquery, sizeof *q, kv_cmp);
    size_t qstart = canon.len;
    for (size_t i = 0; i < in->nquery; i++) {
        if (i)
            sb_str(&canon, "&");
        sb_str(&canon, q[i].k);
        sb_str(&canon, "=");
        sb_str(&canon, q[i].v);
    }
    if (in->nquery && !canon.bad) {
        size_t tl = strlen(target), ql = canon.len - qstart;
        if (tl + 1 + ql + 1 > target_len) {
            st = ch_err_set(err, CH_EINVAL, NULL, "s3: query too long");
            goto out;
        }
        target[tl] = '?';
        memcpy(target + tl + 1, canon.p + qstart, ql + 1);
    }
    sb_str(&canon, "\n");

    /* the headers: host, x-amz-content-sha256, x-amz-date and the caller's, lower-cased and sorted */
    if (!(h = calloc(in->nheaders + 3, sizeof *h))) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    h[nh].k = strdup("host");
    h[nh++].v = header_value(in->host);
    h[nh].k = strdup("x-amz-content-sha256");
    h[nh++].v = strdup(in->payload_sha256);
    h[nh].k = strdup("x-amz-date");
    h[nh++].v = strdup(amz_date);
    for (size_t i = 0; i < in->nheaders; i++) {
        char *k = lower_dup(in->headers[i].name);
        if (k && (!strcmp(k, "host") || !strcmp(k, "x-amz-content-sha256") || !strcmp(k, "x-amz-date") ||
                  !strcmp(k, "authorization"))) {
            free(k); /* ours win; the signature cannot sign itself */
            continue;
        }
        h[nh].k = k;
        h[nh++].v = header_value(in->headers[i].value ? in->headers[i].value : "");
    }
    for (size_t i = 0; i < nh; i++)
        if (!h[i].k || !h[i].v) {
            st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
            goto out;
        }
    qsort(h, nh, sizeof *h, kv_cmp);
    for (size_t i = 0; i < nh; i++) {
        bool same = i > 0 && !strcmp(h[i].k, h[i - 1].k); /* a repeated header: values joined by commas */
        if (same) {
            canon.len--; /* the "\n" of the previous line */
            sb_str(&canon, ",");
        } else {
            sb_str(&canon, h[i].k);
            sb_str(&canon, ":");
            if (signed_names.len)
                sb_str(&signed_names, ";");
            sb_str(&signed_names, h[i].k);
        }
        sb_str(&canon, h[i].v);
        sb_str(&canon, "\n");
    }
    sb_str(&canon, "\n");
    sb_str(&canon, signed_names.p ? signed_names.p : "");
    sb_str(&canon, "\n");
    sb_str(&canon, in->payload_sha256);
    if (canon.bad || signed_names.bad) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    crypto_sha256_hex(canon.p, canon.len, creq_hash);

    sb_str(&sts, "AWS4-HMAC-SHA256\n");
    sb_str(&sts, amz_date);
    sb_str(&sts, "\n");
    sb_str(&sts, scope);
    sb_str(&sts, "\n");
    sb_str(&sts, creq_hash);
    if (sts.bad) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    size_t slen = strlen(in->secret_access_key);
    if (!(key0 = sodium_malloc(slen + 4))) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    memcpy(key0, "AWS4", 4);
    memcpy(key0 + 4, in->secret_access_key, slen);
    hmac(key0, slen + 4, date, 8, k1);
    hmac(k1, 32, in->region, strlen(in->region), k2);
    hmac(k2, 32, service, strlen(service), k3);
    hmac(k3, 32, "aws4_request", 12, k4);
    hmac(k4, 32, sts.p, sts.len, mac);
    sodium_bin2hex(sig, sizeof sig, mac, sizeof mac);
    if ((size_t)snprintf(auth, auth_len, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                         in->access_key_id, scope, signed_names.p, sig) >= auth_len)
        st = ch_err_set(err, CH_EINVAL, NULL, "s3: Authorization header too long");
out:
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    sodium_memzero(k3, sizeof k3);
    sodium_memzero(k4, sizeof k4);
    sodium_free(key0);
    kv_free(q, in->nquery);
    kv_free(h, nh);
    free(canon.p);
    free(signed_names.p);
    free(sts.p);
    return st;
}

/* ---- options ---- */

int
s3_path_style_parse(const char *s)
{
    if (!s || !*s || !strcmp(s, "auto"))
        return S3_PATH_AUTO;
    if (!strcmp(s, "true"))
        return S3_PATH_ON;
    if (!strcmp(s, "false"))
        return S3_PATH_OFF;
    return -1;
}

static bool
ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcasecmp(s + n - t, tail);
}

/* A bucket name that may be a DNS label of its own (virtual-host style): lower case, digits, '-', and '.' only
 * without TLS (a dotted name does not match the wildcard certificate). */
static bool
dns_bucket(const char *b, bool tls)
{
    size_t n = strlen(b);

    if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-')
        return false;
    for (; *b; b++)
        if (!((*b >= 'a' && *b <= 'z') || (*b >= '0' && *b <= '9') || *b == '-' || (*b == '.' && !tls)))
            return false;
    return true;
}

static enum ch_status
bad_opt(struct ch_err *err, const char *key, const char *why)
{
    return ch_err_set(err, CH_EINVAL, key, "core.assets.s3.%s: %s", key, why);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *
xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

enum ch_status
s3_new(const struct s3_opts *o, struct s3 **out, struct ch_err *err)
{
    const char *ep = o->endpoint ? o->endpoint : "";
    bool tls = o->use_ssl, vhost;
    char hostport[256], hostonly[256];
    struct s3 *s;

    *out = NULL;
    if (!strncasecmp(ep, "https://", 8)) {
        tls = true;
        ep += 8;
    } else if (!strncasecmp(ep, "http://", 7)) {
        tls = false;
        ep += 7;
    }
    size_t n = strlen(ep);
    if (n && ep[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof hostport)
        return bad_opt(err, "endpoint", "must be host[:port] (or http(s)://host[:port])");
    memcpy(hostport, ep, n);
    hostport[n] = '\0';
    for (const char *p = hostport; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr(".-:[]_", *p)))
            return bad_opt(err, "endpoint", "must be host[:port] (or http(s)://host[:port]), without a path");
    /* the host part, for the AWS test (an IPv6 literal keeps its brackets) */
    snprintf(hostonly, sizeof hostonly, "%s", hostport);
    char *colon = hostport[0] == '[' ? strstr(hostonly, "]:") : strrchr(hostonly, ':');
    if (colon) {
        char *port = colon + (hostport[0] == '[' ? 2 : 1), *end = NULL;
        long pn = strtol(port, &end, 10);
        if (!*port || *end || pn < 1 || pn > 65535)
            return bad_opt(err, "endpoint", "the port must be 1-65535");
        colon[hostport[0] == '[' ? 1 : 0] = '\0';
    }
    const char *b = o->bucket ? o->bucket : "";
    if (!*b || strlen(b) > 255 || strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
                                      strlen(b))
        return bad_opt(err, "bucket", "must be a bucket name (letters, digits, '.', '-', '_')");
    if (o->region && strspn(o->region, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(o->region))
        return bad_opt(err, "region", "must be a region name like eu-west-1");
    if (!o->access_key_id || !*o->access_key_id || strpbrk(o->access_key_id, "/, \t\r\n"))
        return bad_opt(err, "access_key_id", "must be set (and hold no '/', ',' or spaces)");
    if (!o->secret_access_key || !*o->secret_access_key)
        return bad_opt(err, "secret_access_key", "must be set");
    for (const char *p = o->path_prefix ? o->path_prefix : ""; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return bad_opt(err, "path_prefix", "must not hold control characters or '\\'");
    if (o->path_style == S3_PATH_ON)
        vhost = false;
    else if (o->path_style == S3_PATH_OFF)
        vhost = true;
    else
        vhost = (ends_with(hostonly, ".amazonaws.com") || ends_with(hostonly, ".amazonaws.com.cn")) &&
                dns_bucket(b, tls);
    if (vhost && !dns_bucket(b, tls))
        return bad_opt(err, "path_style", "this bucket name cannot be a host name (virtual-host style); set "
                       "path_style = true");

    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "s3: libcurl failed to initialise: %s",
                          curl_easy_strerror(curl_init_rc));
    if (!(s = calloc(1, sizeof *s)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->bucket = xstrdup(b);
    s->region = xstrdup(o->region && *o->region ? o->region : "us-east-1");
    s->akid = xstrdup(o->access_key_id);
    /* the prefix without slashes at either end; keys become prefix/key */
    const char *pp = o->path_prefix ? o->path_prefix : "";
    while (*pp == '/')
        pp++;
    s->prefix = xstrdup(pp);
    for (size_t l = s->prefix ? strlen(s->prefix) : 0; l > 0 && s->prefix[l - 1] == '/'; l--)
        s->prefix[l - 1] = '\0';
    size_t hl = strlen(hostport) + strlen(b) + 2;
    s->host = malloc(hl);
    if (s->host)
        snprintf(s->host, hl, vhost ? "%2$s.%1$s" : "%1$s", hostport, b);
    s->base_url = malloc(hl + 8);
    if (s->base_url && s->host)
        snprintf(s->base_url, hl + 8, "%s://%s", tls ? "https" : "http", s->host);
    s->bucket_path = malloc(strlen(b) + 2);
    if (s->bucket_path)
        snprintf(s->bucket_path, strlen(b) + 2, vhost ? "%s" : "/%s", vhost ? "" : b);
    s->secret_len = strlen(o->secret_access_key);
    if ((s->secret = sodium_malloc(s->secret_len + 1)))
        memcpy(s->secret, o->secret_access_key, s->secret_len + 1);
    if (!s->bucket || !s->region || !s->akid || !s->prefix || !s->host || !s->base_url || !s->bucket_path ||
        !s->secret) {
        s3_free(s);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    snprintf(s->desc, sizeof s->desc, "%s%s (%s, region %s%s%s)", s->base_url, s->bucket_path,
             vhost ? "virtual-host style" : "path style", s->region, *s->prefix ? ", keys under " : "", s->prefix);
    *out = s;
    return CH_OK;
}

void
s3_free(struct s3 *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nidle; i++)
        curl_easy_cleanup(s->idle[i]);
    pthread_mutex_destroy(&s->mu);
    free(s->base_url);
    free(s->host);
    free(s->bucket_path);
    free(s->bucket);
    free(s->region);
    free(s->akid);
    free(s->prefix);
    if (s->secret)
        sodium_free(s->secret); /* wipes it */
    free(s);
}

const char *
s3_describe(const struct s3 *s)
{
    return s->desc;
}

/* ---- requests ---- */

struct xfer {
    CURL *h;
    /* what to send */
    const char *method;   /* GET HEAD PUT DELETE */
    const char *what;     /* for messages: "GET attachments/x" */
    const char *payload;  /* hex SHA-256 */
    const char *range, *content_type;
    const char *body;     /* a small body in memory (bucket creation) */
    size_t body_len;
    bool upload;
    uint64_t upload_size;
    s3_pull_fn pull;
    void *pull_ctx;
    /* pulling */
    char *piece;
    size_t plen, poff;
    uint64_t sent;
    enum ch_status pull_st;
    struct ch_err pull_err;
    /* what came back */
    char *dst;
    size_t cap, got;
    bool overflow;
    char errbody[ERRBODY_MAX + 1];
    size_t errlen;
    char bucket_region[64];
    uint64_t content_length; /* of a 2xx answer, if it said */
    bool content_length_seen;
};

static size_t
on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t want = size * nitems;

    if (x->body) { /* in-memory body */
        size_t n = x->body_len - (size_t)x->sent;
        if (n > want)
            n = want;
        memcpy(buf, x->body + x->sent, n);
        x->sent += n;
        return n;
    }
    while (x->poff == x->plen) {
        free(x->piece);
        x->piece = NULL;
        x->plen = x->poff = 0;
        if (x->sent == x->upload_size)
            return 0;
        x->pull_st = x->pull(x->pull_ctx, &x->piece, &x->plen, &x->pull_err);
        if (x->pull_st != CH_OK)
            return CURL_READFUNC_ABORT;
        if (x->plen == 0) {
            x->pull_st = ch_err_set(&x->pull_err, CH_EINTERNAL, NULL, "s3: the file ended %" PRIu64 " bytes early",
                                    x->upload_size - x->sent);
            return CURL_READFUNC_ABORT;
        }
        if (x->plen > x->upload_size - x->sent) {
            x->pull_st = ch_err_set(&x->pull_err, CH_EINTERNAL, NULL, "s3: the file is longer than its size");
            return CURL_READFUNC_ABORT;
        }
    }
    size_t n = x->plen - x->poff;
    if (n > want)
        n = want;
    memcpy(buf, x->piece + x->poff, n);
    x->poff += n;
    x->sent += n;
    return n;
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nmemb;
    long code = 0;

    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300) { /* an error document: keep its start */
        size_t n = ERRBODY_MAX - x->errlen < len ? ERRBODY_MAX - x->errlen : len;
        memcpy(x->errbody + x->errlen, p, n);
        x->errlen += n;
        x->errbody[x->errlen] = '\0';
        return len;
    }
    if (!x->dst)
        return len; /* a body nobody asked for (a PUT's empty answer) */
    if (len > x->cap - x->got) {
        x->overflow = true;
        return 0;
    }
    memcpy(x->dst + x->got, p, len);
    x->got += len;
    return len;
}

static size_t
on_header(char *p, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * nitems;
    static const char name[] = "x-amz-bucket-region:";

    if (len > sizeof name && !strncasecmp(p, name, sizeof name - 1)) {
        const char *v = p + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof x->bucket_region && strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") >= vl) {
            memcpy(x->bucket_region, v, vl);
            x->bucket_region[vl] = '\0';
        }
    }
    return len;
}

/* The text of <tag>...</tag> in an S3 error document, printable ASCII only, into out. */
static void
xml_text(const char *doc, const char *tag, char *out, size_t cap)
{
    char open[32], close[32];
    const char *a, *b;
    size_t o = 0;

    out[0] = '\0';
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    if (!(a = strstr(doc, open)) || !(b = strstr(a, close)))
        return;
    for (a += strlen(open); a < b && o + 1 < cap; a++)
        out[o++] = (*a >= 0x20 && *a < 0x7f) ? *a : '?';
    out[o] = '\0';
}

static enum ch_status
s3_full_key(const struct s3 *s, const char *key, char *out, size_t cap, struct ch_err *err)
{
    if (!key || !*key)
        return ch_err_set(err, CH_EINVAL, NULL, "s3: empty key");
    if ((size_t)snprintf(out, cap, "%s/%s%s%s", s->bucket_path, s->prefix, *s->prefix ? "/" : "", key) >= cap ||
        strlen(out) - strlen(s->bucket_path) - 1 > 1024)
        return ch_err_set(err, CH_EINVAL, NULL, "s3: key too long (S3 allows 1024 bytes)");
    return CH_OK;
}

/* One signed request. path is unencoded ("/bucket/prefix/attachments/x" or "/prefix/..."). Maps every failure
 * into a status (see s3.h). */
static enum ch_status
perform(struct s3 *s, struct xfer *x, const char *path, long *status, struct ch_err *err)
{
    char target[TARGET_MAX], auth[AUTH_MAX], date[S3_AMZ_DATE_LEN], hdr[AUTH_MAX + 32];
    char url[TARGET_MAX + 512], errbuf[CURL_ERROR_SIZE] = "";
    struct s3_param extra[2];
    size_t nextra = 0;
    struct curl_slist *hl = NULL;
    enum ch_status st = CH_OK;
    CURLcode rc;
    long code = 0;

    if (x->range)
        extra[nextra++] = (struct s3_param){ "range", x->range };
    if (x->content_type)
        extra[nextra++] = (struct s3_param){ "content-type", x->content_type };
    struct s3_sig_in in = { .method = x->method, .host = s->host, .path = path, .headers = extra, .nheaders = nextra,
                            .payload_sha256 = x->payload ? x->payload : EMPTY_SHA256, .region = s->region,
                            .access_key_id = s->akid, .secret_access_key = s->secret,
                            .unix_s = (int64_t)time(NULL) };
    if ((st = s3_sign(&in, target, sizeof target, auth, sizeof auth, date, err)) != CH_OK)
        return st;
    snprintf(url, sizeof url, "%s%s", s->base_url, target);

    /* take a handle (the lock covers the pool only) */
    pthread_mutex_lock(&s->mu);
    x->h = s->nidle ? s->idle[--s->nidle] : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!x->h && !(x->h = curl_easy_init()))
        return ch_err_set(err, CH_ENOMEM, NULL, "s3: cannot make a curl handle");

#define ADDH(...)                                                                                                   \
    do {                                                                                                            \
        snprintf(hdr, sizeof hdr, __VA_ARGS__);                                                                     \
        struct curl_slist *n_ = curl_slist_append(hl, hdr);                                                         \
        if (!n_) {                                                                                                  \
            st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");                                                 \
            goto out;                                                                                               \
        }                                                                                                           \
        hl = n_;                                                                                                    \
    } while (0)
    ADDH("Host: %s", s->host);
    ADDH("x-amz-date: %s", date);
    ADDH("x-amz-content-sha256: %s", in.payload_sha256);
    ADDH("Authorization: %s", auth);
    if (x->range)
        ADDH("Range: %s", x->range);
    if (x->content_type)
        ADDH("Content-Type: %s", x->content_type);
    ADDH("Accept:"); /* drop curl's default Accept, which tells S3 nothing */
#undef ADDH

    CURL *h = x->h;
    curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    if (!x->upload)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, SMALL_TIMEOUT_MS);
    if (!strcmp(x->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(x->method, "DELETE")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else if (!strcmp(x->method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(x->body ? x->body_len : x->upload_size));
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        /* a body pulled once cannot be sent twice: never on a kept-alive connection the server may be closing */
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    }
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    *status = code;
    if (x->pull_st != CH_OK) {
        st = x->pull_st;
        if (err)
            *err = x->pull_err;
        goto out;
    }
    if (rc == CURLE_WRITE_ERROR && x->overflow) {
        st = ch_err_set(err, CH_EINTERNAL, NULL, "s3: %s: S3 sent more bytes than asked for", x->what);
        goto out;
    }
    if (rc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        if (rc == CURLE_OPERATION_TIMEDOUT)
            st = ch_err_set(err, CH_EUNAVAIL, NULL, "S3 at %s did not answer in time (%s)", s->base_url, why);
        else
            st = ch_err_set(err, CH_EUNAVAIL, NULL, "cannot reach S3 at %s: %s", s->base_url, why);
        goto out;
    }
    if (code >= 200 && code < 300) {
        curl_off_t cl = -1;
        if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0) {
            x->content_length = (uint64_t)cl;
            x->content_length_seen = true;
        }
        goto out;
    }

    char scode[96], smsg[200];
    xml_text(x->errbody, "Code", scode, sizeof scode);
    xml_text(x->errbody, "Message", smsg, sizeof smsg);
    if (code == 404)
        st = ch_err_set(err, CH_ENOTFOUND, NULL, "S3: %s: %s", x->what, scode[0] ? scode : "not found");
    else if (code == 416)
        st = ch_err_set(err, CH_EINVAL, NULL, "S3: %s: the range is outside the object", x->what);
    else if (code == 301 || code == 307 || (code == 400 && !strcmp(scode, "AuthorizationHeaderMalformed") &&
                                            x->bucket_region[0]))
        st = ch_err_set(err, CH_EUNAVAIL, "region", "S3: bucket %s is in region %s, not %s: set "
                        "core.assets.s3.region", s->bucket, x->bucket_region[0] ? x->bucket_region : "(unknown)",
                        s->region);
    else if (code >= 500 || code == 429 || code == 408)
        st = ch_err_set(err, CH_EUNAVAIL, NULL, "S3 is unavailable: %s: HTTP %ld%s%s", x->what, code,
                        scode[0] ? " " : "", scode);
    else
        st = ch_err_set(err, CH_EUNAVAIL, NULL, "S3 refused %s: HTTP %ld %s%s%s", x->what, code,
                        scode[0] ? scode : "(no error code)", smsg[0] ? ": " : "", smsg);
out:
    curl_slist_free_all(hl);
    free(x->piece);
    x->piece = NULL;
    /* back to the pool: reset forgets the options, not the connection cache */
    curl_easy_reset(x->h);
    pthread_mutex_lock(&s->mu);
    if (s->nidle < POOL_MAX) {
        s->idle[s->nidle++] = x->h;
        x->h = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (x->h)
        curl_easy_cleanup(x->h);
    x->h = NULL;
    return st;
}

/* ---- the calls ---- */

enum ch_status
s3_bucket_ensure(struct s3 *s, struct ch_err *err)
{
    char path[300], xml[256], sha[CRYPTO_SHA256_HEX];
    long code = 0;
    enum ch_status st;

    if (atomic_load(&s->bucket_ok))
        return CH_OK;
    snprintf(path, sizeof path, "%s/", s->bucket_path);
    if (s->bucket_path[0])
        path[strlen(path) - 1] = '\0'; /* path style: "/bucket" */
    struct xfer x = { .method = "HEAD", .what = "HEAD bucket" };
    st = perform(s, &x, path, &code, err);
    if (st == CH_OK || (code == 403 && st == CH_EUNAVAIL)) {
        /* 403: credentials limited to object calls; the bucket is somebody's to make, and uploads will say */
        ch_err_clear(err);
        atomic_store(&s->bucket_ok, true);
        return CH_OK;
    }
    if (st != CH_ENOTFOUND)
        return st;
    ch_err_clear(err);
    struct xfer c = { .method = "PUT", .what = "create bucket" };
    if (strcmp(s->region, "us-east-1") != 0) {
        snprintf(xml, sizeof xml, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                 "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>", s->region);
        c.body = xml;
        c.body_len = strlen(xml);
        c.content_type = "application/xml";
    } else {
        c.body = "";
    }
    crypto_sha256_hex(c.body, c.body_len, sha);
    c.payload = sha;
    c.upload = false;
    st = perform(s, &c, path, &code, err);
    if (st != CH_OK && code == 409 && strstr(err ? err->msg : "", "BucketAlreadyOwnedByYou")) {
        ch_err_clear(err); /* another process made it first */
        st = CH_OK;
    }
    if (st == CH_OK)
        atomic_store(&s->bucket_ok, true);
    return st;
}

enum ch_status
s3_put(struct s3 *s, const char *key, uint64_t size, const char *sha256_hex, const char *content_type,
       s3_pull_fn pull, void *ctx, struct ch_err *err)
{
    char path[2300], what[96];
    long code = 0;
    enum ch_status st;

    if (!crypto_sha256_hex_valid(sha256_hex))
        return ch_err_set(err, CH_EINVAL, NULL, "s3: put needs the SHA-256 of the bytes");
    if ((st = s3_full_key(s, key, path, sizeof path, err)) != CH_OK)
        return st;
    snprintf(what, sizeof what, "PUT %.80s", key);
    struct xfer x = { .method = "PUT", .what = what, .payload = sha256_hex, .content_type = content_type,
                      .upload = true, .upload_size = size, .pull = pull, .pull_ctx = ctx };
    return perform(s, &x, path, &code, err);
}

enum ch_status
s3_get_range(struct s3 *s, const char *key, uint64_t from, size_t len, char *buf, size_t *got, struct ch_err *err)
{
    char path[2300], what[96], range[64];
    long code = 0;
    enum ch_status st;

    *got = 0;
    if (len == 0)
        return ch_err_set(err, CH_EINVAL, NULL, "s3: empty range");
    if ((st = s3_full_key(s, key, path, sizeof path, err)) != CH_OK)
        return st;
    snprintf(what, sizeof what, "GET %.80s", key);
    snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, from, from + len - 1);
    struct xfer x = { .method = "GET", .what = what, .range = range, .dst = buf, .cap = len };
    if ((st = perform(s, &x, path, &code, err)) != CH_OK)
        return st;
    if (code == 200 && from != 0) /* a server that ignored Range and sent the object from its start */
        return ch_err_set(err, CH_EINTERNAL, NULL, "s3: %s: the server ignored the Range header", what);
    *got = x.got;
    return CH_OK;
}

enum ch_status
s3_head(struct s3 *s, const char *key, uint64_t *size, struct ch_err *err)
{
    char path[2300], what[96];
    long code = 0;
    enum ch_status st;

    if ((st = s3_full_key(s, key, path, sizeof path, err)) != CH_OK)
        return st;
    snprintf(what, sizeof what, "HEAD %.80s", key);
    struct xfer x = { .method = "HEAD", .what = what };
    if ((st = perform(s, &x, path, &code, err)) != CH_OK)
        return st;
    if (size)
        *size = x.content_length_seen ? x.content_length : 0;
    return CH_OK;
}

enum ch_status
s3_delete(struct s3 *s, const char *key, struct ch_err *err)
{
    char path[2300], what[96];
    long code = 0;
    enum ch_status st;

    if ((st = s3_full_key(s, key, path, sizeof path, err)) != CH_OK)
        return st;
    snprintf(what, sizeof what, "DELETE %.80s", key);
    struct xfer x = { .method = "DELETE", .what = what };
    st = perform(s, &x, path, &code, err);
    if (st == CH_ENOTFOUND) {
        ch_err_clear(err); /* gone already (or its whole bucket is) */
        return CH_OK;
    }
    return st;
}
