/* SPDX-License-Identifier: MIT */
/*
 * The libmicrohttpd daemon: a few epoll threads ("MHD-worker" in libmicrohttpd's naming; we call them the epoll
 * threads) move bytes for every connection, MHD_ALLOW_UPGRADE (for /api/realtime), connection limits and
 * timeouts, routing, body accumulation under a cap, common security headers, access log, and draining.
 *
 * A route that may wait on storage (`blocks`) does not run on an epoll thread: once its body is in, the
 * connection is suspended and the request goes to a worker thread, which runs the handler and resumes the
 * connection; the epoll thread then sends the answer. Workers are made on demand (one per request running at
 * once, up to webserver.max_connections) and leave after WORKER_IDLE_MS without work, so a stalled NATS holds up
 * only the requests that need it, while /healthz, /readyz and the web page keep answering from the epoll
 * threads, and an idle keep-alive connection costs no thread at all. (libmicrohttpd's thread-per-connection mode
 * gave the same isolation at twice the cost per request: a thread wake-up per request, no batching, and a
 * thread held by every idle keep-alive connection.)
 *
 * Threads: access_cb and completed_cb on the epoll threads; handlers of blocking routes on workers;
 * http_start/quiesce/stop on main.
 */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/map.h"
#include "base/netaddr.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "store/store.h"

/* A worker's stack only costs what it touches. Our deepest handler frame is under 8 KiB (checked with
 * -Wstack-usage), and a request goes through cJSON, nats.c and libsodium, so 256 KiB leaves a wide margin while
 * 10,000 workers (a storm of blocked requests) reserve 2.5 GiB of address space instead of 80 GiB at glibc's
 * default 8 MiB. Sanitizers grow every frame several times over. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HTTP_THREAD_STACK (2u * 1024 * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HTTP_THREAD_STACK (2u * 1024 * 1024)
#endif
#endif
#ifndef HTTP_THREAD_STACK
#define HTTP_THREAD_STACK (256u * 1024)
#endif
#define WORKER_IDLE_MS 30000 /* an idle worker leaves after this */
#define WORKER_KEEP 2        /* ... unless it is one of the last few */

struct http {
    struct MHD_Daemon *d;
    const struct http_route *routes;
    void *env;
    struct http_opts o;
    char instance[96];
    int port;
    atomic_int inflight;
    atomic_bool draining;
    struct MHD_Response **statics; /* per route: the response of a static_json route, built once */
    pthread_mutex_t ipmu; /* guards perip */
    struct map *perip;    /* client address -> (uintptr_t) open connections (not for trusted proxies) */
    struct log_limit *mhd_log_limit;

    pthread_mutex_t wmu; /* guards the workers' queue and counts */
    pthread_cond_t wcv;  /* work arrived, or stop */
    pthread_cond_t wgone; /* a worker left */
    struct http_job *jq, *jqtail;
    int nq;              /* jobs in jq */
    int workers, idle;   /* alive, and waiting for work (an idle worker may already be signalled for a job) */
    int running;         /* requests being handled by workers now */
    bool wstop;
    pthread_attr_t wattr;
};

/* libmicrohttpd's own complaints: one per aborted or malformed connection, so a client can make thousands a
 * second; each kind is logged once, then at most every 30 s with a count (its format string tells the kinds). */
__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http *h = cls;
    char buf[512];

    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_limited(h ? h->mhd_log_limit : NULL, LOGL_WARN, fmt, "http: %s", buf);
}

/* The peer's address, normalised (IPv4-mapped IPv6 as dotted IPv4). */
static bool
peer_address(const struct sockaddr *sa, char *out, size_t len)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
    else
        return false;
    return netaddr_normalize(out, out, len);
}

struct header_lines {
    const char *name;
    char *buf; /* the lines joined; as long as they are (they all fit in the connection's memory already) */
    size_t len;
    bool oom;
};

static enum MHD_Result
join_header_lines(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct header_lines *hl = cls;
    (void)kind;
    if (!key || !value || strcasecmp(key, hl->name) != 0 || hl->oom)
        return MHD_YES;
    size_t add = strlen(value) + 2;
    char *grown = realloc(hl->buf, hl->len + add + 1);
    if (!grown) {
        hl->oom = true;
        return MHD_YES;
    }
    hl->buf = grown;
    hl->len += (size_t)sprintf(hl->buf + hl->len, "%s%s", hl->len ? ", " : "", value);
    return MHD_YES;
}

/* Client IP: the peer, or, when the peer is a trusted proxy, what the proxies say (netaddr_client). Every line of
 * the header counts, in order (a proxy may add a line rather than extend one). */
static void
find_client_ip(struct http *h, struct http_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char peer[64] = "unknown";

    if (!ci || !ci->client_addr || !peer_address(ci->client_addr, peer, sizeof peer))
        snprintf(peer, sizeof peer, "unknown");
    snprintf(r->client_ip, sizeof r->client_ip, "%s", peer);
    if (!h->o.trusted_proxies || !netaddr_set_contains(h->o.trusted_proxies, peer))
        return;
    struct header_lines hl = { .name = h->o.proxy_forwarded ? "Forwarded" : "X-Forwarded-For" };
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, join_header_lines, &hl);
    if (!hl.oom) /* out of memory: the proxy it is */
        netaddr_client(h->o.trusted_proxies, peer, hl.buf,
                       h->o.proxy_forwarded ? NETADDR_VIA_FORWARDED : NETADDR_VIA_XFF, r->client_ip,
                       sizeof r->client_ip);
    free(hl.buf);
}

/* The route for path and method; when only the method differs, NULL with *mismatch set to that route. */
static const struct http_route *
find_route(struct http *h, const char *path, const char *method, const struct http_route **mismatch)
{
    *mismatch = NULL;
    for (const struct http_route *rt = h->routes; rt->path; rt++) {
        bool match = rt->prefix ? strncmp(path, rt->path, strlen(rt->path)) == 0 : strcmp(path, rt->path) == 0;
        if (!match)
            continue;
        /* the catch-all "/" (static files) must not hide "wrong method" on a real endpoint */
        if (rt->prefix && !strcmp(rt->path, "/") && *mismatch)
            continue;
        if (rt->method && strcmp(rt->method, method) != 0 &&
            !(strcmp(rt->method, "GET") == 0 && strcmp(method, "HEAD") == 0)) {
            *mismatch = rt;
            continue;
        }
        return rt;
    }
    return NULL;
}

static void
add_common_headers(struct http *h, struct http_req *r, struct MHD_Response *resp)
{
    bool has_csp = false, has_cache = false;

    for (size_t i = 0; i < r->nheaders; i++) {
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
        has_csp |= strcasecmp(r->headers[i].name, "Content-Security-Policy") == 0;
        has_cache |= strcasecmp(r->headers[i].name, "Cache-Control") == 0;
    }
    if (r->content_type[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    if (!has_csp)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
    if (!has_cache)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Chatto-Instance", h->instance);
    if (atomic_load(&h->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* True if the request announces a body we have not read (so an early answer must close the connection). */
static bool
has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return (cl && strtoull(cl, NULL, 10) > 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* What framing_error() learns from the request's headers. */
struct framing {
    int content_length, transfer_encoding;
    bool cl_digits;         /* every Content-Length is plain digits */
    bool te_chunked;        /* the Transfer-Encoding is exactly "chunked" */
    bool space_in_name;     /* "Name : value": libmicrohttpd keeps the space in the name */
    bool host;
};

static enum MHD_Result
framing_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct framing *f = cls;
    size_t n = strlen(key);

    (void)kind;
    if (n && (key[n - 1] == ' ' || key[n - 1] == '\t' || key[0] == ' ' || key[0] == '\t'))
        f->space_in_name = true;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        f->content_length++;
        f->cl_digits = value && *value && strspn(value, "0123456789") == strlen(value);
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->transfer_encoding++;
        f->te_chunked = value && !strcasecmp(value, "chunked");
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_HOST)) {
        f->host = true;
    }
    return MHD_YES;
}

/* Framing that a proxy and we might read differently is refused outright (RFC 9112 6.3, 3.2): it is how one
 * request is smuggled inside another. libmicrohttpd 0.9.75 takes the first of two Content-Lengths, accepts one
 * beside Transfer-Encoding, keeps "Name : value" as a header named "Name " (so the body is not read and becomes
 * the next request), waits forever on an unknown transfer coding and serves HTTP/1.1 without Host. NULL if the
 * framing is sound. */
static const char *
framing_error(struct MHD_Connection *c, const char *version)
{
    struct framing f = { .cl_digits = true };

    MHD_get_connection_values(c, MHD_HEADER_KIND, framing_header, &f);
    if (f.space_in_name)
        return "whitespace between a header name and its colon";
    if (f.content_length > 1)
        return "more than one Content-Length";
    if (f.content_length && !f.cl_digits)
        return "Content-Length must be a decimal number";
    if (f.transfer_encoding && f.content_length)
        return "both Content-Length and Transfer-Encoding";
    if (f.transfer_encoding > 1 || (f.transfer_encoding && !f.te_chunked))
        return "the only transfer coding accepted is chunked";
    if (!f.host && version && !strcmp(version, MHD_HTTP_VERSION_1_1))
        return "an HTTP/1.1 request needs a Host header";
    return NULL;
}

/* Shared by the request (until it completes) and MHD's upgrade callback: whichever comes last frees it. */
struct http_upgrade {
    void (*fn)(void *cls, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra, size_t len);
    void (*abort)(void *cls);
    void *cls;
    atomic_bool done; /* the upgrade callback ran */
    atomic_int refs;
};

static void
upgrade_unref(struct http_upgrade *u)
{
    if (atomic_fetch_sub(&u->refs, 1) == 1) {
        if (!atomic_load(&u->done) && u->abort)
            u->abort(u->cls);
        free(u);
    }
}

static void
upgrade_trampoline(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in, size_t extra_len,
                   MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct http_upgrade *u = cls;

    (void)c;
    (void)con_cls;
    atomic_store(&u->done, true);
    u->fn(u->cls, sock, urh, extra_in, extra_len);
    upgrade_unref(u);
}

static enum MHD_Result
send_upgrade(struct http *h, struct http_req *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    struct http_upgrade *u = calloc(1, sizeof *u);

    if (!u)
        return MHD_NO;
    u->fn = r->upgrade_fn;
    u->abort = r->upgrade_abort;
    u->cls = r->upgrade_cls;
    atomic_store(&u->refs, 2); /* the request and the upgrade callback */
    r->up = u;
    resp = MHD_create_response_for_upgrade(upgrade_trampoline, u);
    if (!resp) {
        r->up = NULL;
        free(u);
        return MHD_NO;
    }
    for (size_t i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    MHD_add_response_header(resp, "X-Chatto-Instance", h->instance);
    ret = MHD_queue_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
send_response(struct http *h, struct http_req *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (r->upgrade_fn)
        return send_upgrade(h, r);
    if (!r->answered)
        http_reply_errorf(r, CH_EINTERNAL, "no response");
    if (r->stream) {
        if (!(resp = http_stream_response(h, r)))
            return MHD_NO;
    } else {
        resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            return MHD_NO;
        r->resp = NULL; /* MHD owns it now */
    }
    add_common_headers(h, r, resp);
    ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void
req_free(struct http_req *r, bool completed)
{
    if (!r)
        return;
    if (r->up) {
        struct http_upgrade *u = r->up;
        /* a request that did not complete will not be upgraded: drop the callback's reference too, so the last
         * unref runs abort() */
        if (!completed && !atomic_load(&u->done))
            atomic_fetch_sub(&u->refs, 1);
        upgrade_unref(u);
    } else if (r->upgrade_fn && r->upgrade_abort) {
        r->upgrade_abort(r->upgrade_cls); /* never queued */
    }
    http_stream_abandon(r->stream); /* answered with a stream that never became a response */
    if (r->data_free)
        r->data_free(r->data);
    free(r->path);
    free(r->body);
    free(r->resp);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r);
}

/* The 413 for a body that went past its cap while it was still arriving. libmicrohttpd 0.9.75 cannot queue an
 * answer in the middle of a request body (it just closes the connection), so we write this one answer on the
 * socket ourselves (libmicrohttpd writes nothing while it reads a body), say we are done writing, and let it
 * close the connection when we return MHD_NO. */
static void
send_too_large_now(struct http *h, struct http_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char body[160], buf[1024];
    int bl, n;

    r->status = 413;
    if (!ci)
        return;
    bl = snprintf(body, sizeof body, "{\"code\":\"resource_exhausted\",\"message\":\"request body larger than %zu bytes\"}",
                  r->max_body);
    n = snprintf(buf, sizeof buf,
                 "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
                 "Content-Type: application/json; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
                 "Cache-Control: no-store\r\nX-Chatto-Instance: %s\r\nContent-Length: %d\r\n\r\n%s",
                 h->instance, bl, body);
    if (n > 0 && (size_t)n < sizeof buf && send(ci->connect_fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n)
        shutdown(ci->connect_fd, SHUT_WR);
}

/* ---- connections per client address ----
 * libmicrohttpd's own per-IP limit counts a load balancer as one client, so we count ourselves: addresses in
 * webserver.trusted_proxies are not counted (the clients behind them are limited by the proxy, and by the
 * per-address limits on logins, registrations and WebSockets, which see through them). Over the limit a new
 * connection gets a 429 and is closed at once (one IP opening 10,000 half-sent requests used to take every
 * slot). */


static bool
counted(struct http *h, const char *ip)
{
    return h->o.max_connections_per_ip > 0 && !(h->o.trusted_proxies && netaddr_set_contains(h->o.trusted_proxies, ip));
}

/* socket context of a connection over the limit: answered at once, never read, not counted */
static char over_limit;

/* Past twice the limit an address gets no answer at all: a flood costs us an accept and a close. */
static enum MHD_Result
accept_cb(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct http *h = cls;
    char ip[64];
    uintptr_t n;

    (void)len;
    if (atomic_load(&h->draining))
        return MHD_NO; /* (http_quiesce) */
    if (!peer_address(addr, ip, sizeof ip) || !counted(h, ip))
        return MHD_YES;
    pthread_mutex_lock(&h->ipmu);
    n = (uintptr_t)map_get(h->perip, ip);
    pthread_mutex_unlock(&h->ipmu);
    return n < 2 * (uintptr_t)h->o.max_connections_per_ip ? MHD_YES : MHD_NO;
}

/* A connection over the limit gets a 429 that names it before we read anything, then both directions are shut
 * (which also wakes libmicrohttpd to close it); access_cb never serves it. */
static void
refuse_over_limit(struct http *h, struct MHD_Connection *c, const char *ip)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    char body[200], buf[512];
    int bl, n;

    log_limited(h->mhd_log_limit, LOGL_WARN, "per-ip", "http: refused a connection from %s: %d open already "
                "(webserver.max_connections_per_ip)", ip, h->o.max_connections_per_ip);
    if (!ci)
        return;
    bl = snprintf(body, sizeof body, "{\"code\":\"resource_exhausted\",\"message\":\"too many connections from "
                  "your address: at most %d (webserver.max_connections_per_ip)\"}", h->o.max_connections_per_ip);
    n = snprintf(buf, sizeof buf, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                 "Retry-After: 10\r\nConnection: close\r\nX-Chatto-Instance: %s\r\nContent-Length: %d\r\n\r\n%s",
                 h->instance, bl, body);
    if (n > 0 && (size_t)n < sizeof buf)
        send(ci->connect_fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(ci->connect_fd, SHUT_RDWR);
}

static void
notify_conn_cb(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
    struct http *h = cls;
    const union MHD_ConnectionInfo *ci;
    char ip[64];

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr || !peer_address(ci->client_addr, ip, sizeof ip) || !counted(h, ip))
            return;
        pthread_mutex_lock(&h->ipmu);
        uintptr_t open = (uintptr_t)map_get(h->perip, ip);
        bool oom = false, over = open >= (uintptr_t)h->o.max_connections_per_ip;
        if (!over)
            map_put(h->perip, ip, (void *)(open + 1), &oom);
        pthread_mutex_unlock(&h->ipmu);
        if (over) {
            *socket_context = &over_limit;
            refuse_over_limit(h, c, ip);
        } else if (!oom) {
            *socket_context = strdup(ip); /* what to count down when it closes (NULL: not counted) */
        }
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context == &over_limit) {
        *socket_context = NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        pthread_mutex_lock(&h->ipmu);
        uintptr_t n = (uintptr_t)map_get(h->perip, *socket_context);
        if (n > 1)
            map_put(h->perip, *socket_context, (void *)(n - 1), NULL);
        else
            map_del(h->perip, *socket_context);
        pthread_mutex_unlock(&h->ipmu);
        free(*socket_context);
        *socket_context = NULL;
    }
}

/* ---- workers: blocking handlers run here while their connection is suspended ---- */

static void *
worker_main(void *arg)
{
    struct http *h = arg;

    pthread_setname_np(pthread_self(), "http-worker"); /* else it inherits its creator's name ("MHD-worker") */
    pthread_mutex_lock(&h->wmu);
    for (;;) {
        struct http_job *j;
        bool timed_out = false;

        while (!h->jq && !h->wstop && !timed_out) {
            struct timespec ts = clock_deadline(WORKER_IDLE_MS);
            h->idle++;
            timed_out = pthread_cond_timedwait(&h->wcv, &h->wmu, &ts) != 0;
            h->idle--;
        }
        if (!h->jq && (h->wstop || h->workers > WORKER_KEEP))
            break;
        if (!h->jq)
            continue; /* one of the last few: stay */
        j = h->jq;
        h->jq = j->next;
        if (!h->jq)
            h->jqtail = NULL;
        h->nq--;
        h->running++;
        pthread_mutex_unlock(&h->wmu);

        j->run(j); /* from here on j may be gone */

        pthread_mutex_lock(&h->wmu);
        h->running--;
    }
    h->workers--;
    pthread_cond_broadcast(&h->wgone);
    pthread_mutex_unlock(&h->wmu);
    store_thread_exit();
    return NULL;
}

/* A blocking handler's job: run it, then give the request back to the epoll thread to answer. */
static void
run_request(struct http_job *j)
{
    struct http_req *r = (struct http_req *)((char *)j - offsetof(struct http_req, job));
    struct http *h = r->http;

    r->route->handler(r, h->env);
    struct MHD_Connection *conn = r->conn;
    atomic_store(&r->state, REQ_DONE);
    /* from here the epoll thread may answer and free r: do not touch it again */
    MHD_resume_connection(conn);
}

bool
http_submit_job(struct http *h, struct http_job *j)
{
    bool ok = true;

    pthread_mutex_lock(&h->wmu);
    /* a new worker only when every idle one already has a queued job waiting for it: a request must never
     * wait behind another that may be stuck on storage, and a busy server must not make a thread per request */
    if (h->idle <= h->nq) {
        pthread_t t;
        if (pthread_create(&t, &h->wattr, worker_main, h) == 0) {
            h->workers++;
            pthread_detach(t);
        } else if (h->workers == 0) {
            ok = false; /* nobody to run it, ever */
        }
        /* else it waits for one of the busy workers */
    }
    if (ok) {
        j->next = NULL;
        if (h->jqtail)
            h->jqtail->next = j;
        else
            h->jq = j;
        h->jqtail = j;
        h->nq++;
        pthread_cond_signal(&h->wcv);
    }
    pthread_mutex_unlock(&h->wmu);
    return ok;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct http *h = cls;
    struct http_req *r = *con_cls;

    if (!r) {
        const struct http_route *mismatch;
        const char *cl;
        const union MHD_ConnectionInfo *sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        if (sc && sc->socket_context == &over_limit)
            return MHD_NO; /* answered 429 already (refuse_over_limit) */
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&h->inflight, 1);
        r->http = h;
        r->conn = c;
        r->start_ms = clock_mono_ms();
        r->start_us = clock_mono_us();
        r->max_body = (size_t)h->o.max_body;
        snprintf(r->method, sizeof r->method, "%s", method);
        if (!(r->path = strdup(url)))
            return MHD_NO;
        const char *bad = framing_error(c, version);
        if (bad) {
            /* answered before any body is read, and the connection closed: nothing after it is a request */
            http_reply_status(r, 400, "invalid_argument", bad);
            http_reply_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
            return send_response(h, r);
        }
        if (atomic_load(&h->draining)) {
            http_reply_errorf(r, CH_EUNAVAIL, "server is shutting down");
            return send_response(h, r);
        }
        r->route = find_route(h, url, method, &mismatch);
        if (!r->route) {
            r->route = mismatch; /* for the Allow header */
            if (mismatch)
                http_reply_status(r, 405, "invalid_argument", "method not allowed for this path");
            else
                http_reply_status(r, 404, "not_found", "no such endpoint");
            if (has_body(c))
                http_reply_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
            return send_response(h, r);
        }
        if (r->route->static_json && h->statics && h->statics[r->route - h->routes] && !has_body(c)) {
            /* the same bytes every time: a response built once (libmicrohttpd may queue one response on many
             * connections at once), queued on the final call like any other (an answer queued before the
             * request is complete makes libmicrohttpd close the connection) */
            r->answered = true;
            r->status = 200;
            r->resp_len = strlen(r->route->static_json);
            r->static_resp = h->statics[r->route - h->routes];
            return MHD_YES;
        }
        if (r->route->prepare)
            r->route->prepare(r, h->env);
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!r->answered && cl && strtoull(cl, NULL, 10) > r->max_body) {
            char msg[96];
            snprintf(msg, sizeof msg, "request body larger than %zu bytes", r->max_body);
            http_reply_status(r, 413, "resource_exhausted", msg);
        }
        /* an answer decided from the headers alone goes out now, before any body is read (MHD then closes the
         * connection instead of reading an upload nobody wants) */
        if (r->answered) {
            if (has_body(c))
                http_reply_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
            return send_response(h, r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->answered)
            return MHD_YES; /* answer is decided; discard the rest */
        if (r->body_len + n > r->max_body) {
            /* a chunked body (no Content-Length, else the headers had said so) went past its cap: answer now and
             * close, rather than read the rest of what may be an endless stream */
            send_too_large_now(h, r);
            return MHD_NO;
        }
        if (r->body_len + n > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 4096;
            while (cap < r->body_len + n)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        return MHD_YES;
    }
    if (r->static_resp)
        return MHD_queue_response(c, MHD_HTTP_OK, r->static_resp);
    switch (atomic_load(&r->state)) {
    case REQ_RUNNING:
        return MHD_YES; /* a worker has it (we are not called while it is suspended; be safe) */
    case REQ_DONE:
        return send_response(h, r);
    default:
        break;
    }
    if (r->too_large && !r->answered) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", r->max_body);
        http_reply_status(r, 413, "resource_exhausted", msg);
    }
    if (!r->answered && r->route->blocks) {
        /* it may wait on storage: off the epoll thread, which goes on serving everyone else.
         * Not on this call, though: we return without an answer once, and libmicrohttpd calls again on its next
         * turn (it does so while a complete request has no answer and is not suspended). libmicrohttpd 0.9.75
         * does not update what it waits for on a suspended connection, and on resume it may read before it
         * answers if that was "read" -- which it still is on this first call, as the request was just read. If
         * the client has half-closed by then (its request, then FIN), that read gets end-of-file, which
         * libmicrohttpd takes for an abort: it closes the connection and the worker's answer is lost. By the
         * second call it has noted that a complete request waits on us and waits for nothing, so on resume it
         * answers first and reads after (then meets the end-of-file and closes). */
        if (atomic_load(&r->state) == REQ_READING) {
            atomic_store(&r->state, REQ_HANDOFF);
            return MHD_YES;
        }
        atomic_store(&r->state, REQ_RUNNING);
        MHD_suspend_connection(c);
        r->job.run = run_request;
        if (http_submit_job(h, &r->job))
            return MHD_YES;
        MHD_resume_connection(c);
        atomic_store(&r->state, REQ_READING);
        log_error("http: cannot start a worker thread: %s", strerror(errno));
        http_reply_errorf(r, CH_EUNAVAIL, "the server is out of threads; retry");
        return send_response(h, r);
    }
    if (!r->answered)
        r->route->handler(r, h->env);
    return send_response(h, r);
}

/* After an answer: if the client has already half-closed its side (sent its requests, then FIN), make sure
 * libmicrohttpd notices, so it closes the connection now instead of after webserver.connection_timeout.
 *
 * libmicrohttpd 0.9.75 polls with edge-triggered epoll and, as a shortcut, takes a read that returns less than it
 * asked for to mean "nothing more to read" and waits for the next edge. When the client's FIN is already queued
 * behind its request, that one read takes the request, the FIN leaves no later edge, and the end-of-file is
 * never read: an idle keep-alive connection the client can no longer use, held until the timeout. So we peek:
 * 0 means the client sent FIN and we have read everything before it. Then shutdown(SHUT_RD) changes nothing
 * (no more data can come, and nothing is discarded), but it wakes the socket's pollers, which gives
 * libmicrohttpd the edge it missed. It then reads the end-of-file in its own time: after answering the requests
 * it may still hold in its buffer (a pipelined batch sent before the FIN), and it closes the connection as it
 * would have had the FIN come later. One recv() per answer; nothing at all when the client keeps the
 * connection open (the peek says EAGAIN). */
static void
wake_on_peer_eof(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    char b;

    if (ci && recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
        shutdown(ci->connect_fd, SHUT_RD);
}

static void
completed_cb(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    struct http_req *r = *con_cls;

    if (!r)
        return;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->up)
        wake_on_peer_eof(c); /* (an upgraded socket is not libmicrohttpd's to read any more) */
    if (r->status) {
        /* route: the route's own path; a Connect method's full path when it was found (a bounded set: 404s,
         * whatever they asked for, count as the prefix) */
        const char *route = !r->route ? "unmatched"
                            : r->route->prefix && !strncmp(r->path, "/api/connect/", 13) && r->status != 404 &&
                                      strlen(r->path) < 96
                                ? r->path
                                : r->route->path;
        char code[8];
        snprintf(code, sizeof code, "%d", r->status);
        metrics_inc(MET_HTTP_REQUESTS, route, code);
        if (r->status == 429)
            metrics_inc(MET_RATE_LIMITED, route, NULL);
        if (!r->up)
            metrics_observe(MET_HTTP_DURATION, route, (double)(clock_mono_us() - r->start_us) / 1e6);
    }
    if (h->o.request_logging)
        log_info("http: %s %s %d %zu %lldms %s%s", r->method, r->path, r->status, r->resp_len,
                 (long long)(clock_mono_ms() - r->start_ms), http_req_client_ip(r),
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    req_free(r, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    *con_cls = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

enum ch_status
http_listen(const char *bind_address, int port, int *fd, int *bound, struct ch_err *err)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ps[16];
    int s, one = 1, gai;

    snprintf(ps, sizeof ps, "%d", port);
    if ((gai = getaddrinfo(bind_address, ps, &hints, &ai)) != 0)
        return ch_err_set(err, CH_EINVAL, "webserver.bind_address",
                          "webserver.bind_address: '%s' is not an IP address (%s)", bind_address, gai_strerror(gai));
    s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, 1024) != 0 ||
        getsockname(s, (struct sockaddr *)&ss, &sl) != 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        freeaddrinfo(ai);
        return ch_err_set(err, CH_EUNAVAIL, "webserver.port", "cannot listen on %s:%d: %s", bind_address, port,
                          strerror(e));
    }
    freeaddrinfo(ai);
    *bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd = s;
    return CH_OK;
}

/* What http_start made besides the daemon (the start's failure path and http_stop). */
static void
http_free(struct http *h)
{
    free(h->statics);
    map_free(h->perip, NULL);
    pthread_mutex_destroy(&h->ipmu);
    log_limit_free(h->mhd_log_limit);
    pthread_attr_destroy(&h->wattr);
    pthread_mutex_destroy(&h->wmu);
    pthread_cond_destroy(&h->wcv);
    pthread_cond_destroy(&h->wgone);
    free(h);
}

enum ch_status
http_start(const struct http_opts *o, const struct http_route *routes, void *env, struct http **out,
           struct ch_err *err)
{
    struct http *h = calloc(1, sizeof *h);
    /* a pool of epoll threads; suspend/resume hands blocking requests to workers (see the top of this file) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    cpu_set_t cpus;
    /* the CPUs we may run on (taskset, a container's cpuset), not the machine's */
    int ncpu = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    unsigned io = o->io_threads > 0 ? (unsigned)o->io_threads : (unsigned)(ncpu > 1 ? ncpu : 1);

    if (!h)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    pthread_mutex_init(&h->wmu, NULL);
    pthread_cond_init(&h->wcv, NULL);
    pthread_cond_init(&h->wgone, NULL);
    pthread_attr_init(&h->wattr);
    h->mhd_log_limit = log_limit_new(30000);
    pthread_mutex_init(&h->ipmu, NULL);
    h->perip = map_new();
    pthread_attr_setstacksize(&h->wattr, HTTP_THREAD_STACK);
    h->o = *o;
    h->routes = routes;
    h->env = env;
    snprintf(h->instance, sizeof h->instance, "%s", o->instance ? o->instance : "chatto");
    /* the shared responses exist before the first request can arrive (the listening socket is open already: a
     * request could reach a worker while they were being made, as ThreadSanitizer saw) */
    size_t nroutes = 0;
    while (routes[nroutes].path)
        nroutes++;
    h->statics = calloc(nroutes + 1, sizeof *h->statics);
    for (size_t i = 0; h->statics && i < nroutes; i++) {
        struct http_req tmp = { .http = h };
        if (!routes[i].static_json)
            continue;
        snprintf(tmp.content_type, sizeof tmp.content_type, "application/json; charset=utf-8");
        h->statics[i] = MHD_create_response_from_buffer(strlen(routes[i].static_json), (void *)routes[i].static_json,
                                                        MHD_RESPMEM_PERSISTENT);
        if (h->statics[i])
            add_common_headers(h, &tmp, h->statics[i]);
    }
    if (getsockname(o->listen_fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, accept_cb, h, access_cb, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)o->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, io, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_connections, MHD_OPTION_NOTIFY_CONNECTION, notify_conn_cb, h,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((o->connection_timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->memory_limit, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
        MHD_OPTION_END);
    if (!h->d) {
        int e = errno;
        for (size_t i = 0; h->statics && i < nroutes; i++)
            if (h->statics[i])
                MHD_destroy_response(h->statics[i]);
        http_free(h);
        return ch_err_set(err, CH_EUNAVAIL, "webserver.port", "cannot start the HTTP server: %s",
                          e ? strerror(e) : "libmicrohttpd refused to start");
    }
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    *out = h;
    return CH_OK;
}

int
http_port(const struct http *h)
{
    return h->port;
}

int
http_inflight(const struct http *h)
{
    return atomic_load(&((struct http *)h)->inflight);
}

int
http_workers(const struct http *h)
{
    struct http *m = (struct http *)h;
    int n;

    pthread_mutex_lock(&m->wmu);
    n = m->workers;
    pthread_mutex_unlock(&m->wmu);
    return n;
}

/* Draining: new connections are accepted and closed at once (accept_cb), so a balancer's connect fails fast and it
 * retries elsewhere. Not MHD_quiesce_daemon: in libmicrohttpd 0.9.75 it races with the pool threads taking the
 * listen socket out of their own epoll sets, and the loser aborts the process ("Failed to remove listen FD from
 * epoll set", seen in CI when SIGTERM came right after start-up). libmicrohttpd closes the socket at stop. */
void
http_quiesce(struct http *h)
{
    if (!h)
        return;
    atomic_store(&h->draining, true);
}

bool
http_wait_idle(struct http *h, int64_t timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    if (!h)
        return true;
    while (atomic_load(&h->inflight) > 0 && clock_mono_ms() < deadline)
        usleep(10000);
    if (atomic_load(&h->inflight) > 0) {
        log_warn("http: %d request(s) still running after %lld ms; ending them", atomic_load(&h->inflight),
                 (long long)timeout_ms);
        return false;
    }
    return true;
}

void
http_stop(struct http *h, int64_t timeout_ms)
{
    if (!h)
        return;
    http_quiesce(h);
    http_wait_idle(h, timeout_ms);
    /* Workers first: a request a worker still runs keeps its connection suspended, and libmicrohttpd must not be
     * stopped with suspended connections. The app closes NATS before this, so a handler that was waiting on it
     * returns at once; one that never returns is left running (we are exiting) rather than risk the daemon. */
    pthread_mutex_lock(&h->wmu);
    h->wstop = true;
    pthread_cond_broadcast(&h->wcv);
    struct timespec ts = clock_deadline(10000);
    while (h->workers > 0)
        if (pthread_cond_timedwait(&h->wgone, &h->wmu, &ts) != 0)
            break;
    int stuck = h->running + (h->jq ? 1 : 0);
    pthread_mutex_unlock(&h->wmu);
    if (stuck) {
        log_error("http: %d request(s) never finished; leaving the HTTP server to the exit", stuck);
        return;
    }
    MHD_stop_daemon(h->d); /* (closes the listening socket) */
    for (size_t i = 0; h->statics && h->routes[i].path; i++)
        if (h->statics[i])
            MHD_destroy_response(h->statics[i]);
    http_free(h);
}

const char *
http_req_method(const struct http_req *r)
{
    return r->method;
}

const char *
http_req_path(const struct http_req *r)
{
    return r->path;
}

const char *
http_req_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
http_req_query(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
http_req_cookie(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

const char *
http_req_body(const struct http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

const char *
http_req_client_ip(const struct http_req *r)
{
    struct http_req *m = (struct http_req *)r; /* found once, on first use (one thread has the request) */

    if (!m->client_ip[0])
        find_client_ip(m->http, m);
    return m->client_ip;
}

void
http_req_set_max_body(struct http_req *r, size_t max)
{
    r->max_body = max;
}

void
http_req_set_data(struct http_req *r, void *data, void (*free_fn)(void *))
{
    if (r->data_free)
        r->data_free(r->data);
    r->data = data;
    r->data_free = free_fn;
}

void *
http_req_data(const struct http_req *r)
{
    return r->data;
}

void
http_reply_upgrade(struct http_req *r,
                   void (*fn)(void *cls, int fd, struct MHD_UpgradeResponseHandle *urh, const char *extra, size_t len),
                   void (*abort)(void *cls), void *cls)
{
    r->upgrade_fn = fn;
    r->upgrade_abort = abort;
    r->upgrade_cls = cls;
    r->answered = true;
    r->status = 101;
}

bool
http_req_answered(const struct http_req *r)
{
    return r->answered;
}
