/* SPDX-License-Identifier: MIT */
/*
 * The libmicrohttpd daemon: one thread per connection (so a handler waiting on NATS holds up only its own
 * client), MHD_ALLOW_UPGRADE (for /api/realtime), connection limits and timeouts, routing, body accumulation
 * under a cap, common security headers, access log, and draining. The access handler and the completion callback
 * run on the connection's thread; http_start/quiesce/stop on main.
 */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/netaddr.h"
#include "log/log.h"

/* Each HTTP connection has a thread of its own; its stack only costs what it touches. Our deepest handler frame
 * is under 8 KiB (checked with -Wstack-usage), and a request goes through cJSON, nats.c and libsodium, so 256 KiB
 * leaves a wide margin while 10,000 connections reserve 2.5 GiB of address space instead of 80 GiB at glibc's
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

struct http {
    struct MHD_Daemon *d;
    const struct http_route *routes;
    void *env;
    struct http_opts o;
    char instance[96];
    int port;
    MHD_socket listen_fd;
    atomic_int inflight;
    atomic_bool draining;
};

__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];

    (void)cls;
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_warn("http: %s", buf);
}

/* Client IP: the peer, or, when the peer is a trusted proxy, the right-most X-Forwarded-For entry that is not
 * itself a trusted proxy (entries left of it could be forged by the client). */
static void
find_client_ip(struct http *h, struct http_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char peer[64] = "unknown";

    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer, sizeof peer);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof peer);
        netaddr_normalize(peer, peer, sizeof peer);
    }
    snprintf(r->client_ip, sizeof r->client_ip, "%s", peer);
    if (!h->o.trusted_proxies || !netaddr_set_contains(h->o.trusted_proxies, peer))
        return;
    const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    if (!xff)
        return;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", xff);
    for (;;) {
        char *comma = strrchr(copy, ',');
        char *item = comma ? comma + 1 : copy;
        char norm[64];
        while (*item == ' ' || *item == '\t')
            item++;
        item[strcspn(item, " \t")] = '\0';
        if (!netaddr_normalize(item, norm, sizeof norm))
            return; /* garbage: keep the last trustworthy address */
        snprintf(r->client_ip, sizeof r->client_ip, "%s", norm);
        if (!netaddr_set_contains(h->o.trusted_proxies, norm) || !comma)
            return;
        *comma = '\0';
    }
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
    resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->resp = NULL; /* MHD owns it now */
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

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct http *h = cls;
    struct http_req *r = *con_cls;

    (void)version;
    if (!r) {
        const struct http_route *mismatch;
        const char *cl;

        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&h->inflight, 1);
        r->http = h;
        r->conn = c;
        r->start_ms = clock_mono_ms();
        r->max_body = (size_t)h->o.max_body;
        snprintf(r->method, sizeof r->method, "%s", method);
        if (!(r->path = strdup(url)))
            return MHD_NO;
        find_client_ip(h, r);
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
        if (r->too_large || r->body_len + n > r->max_body) {
            r->too_large = true;
            /* chunked bodies without a Content-Length: stop reading once far past the cap */
            return r->body_len + n > 4 * r->max_body + 65536 ? MHD_NO : MHD_YES;
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
    if (r->too_large && !r->answered) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", r->max_body);
        http_reply_status(r, 413, "resource_exhausted", msg);
    }
    if (!r->answered)
        r->route->handler(r, h->env);
    return send_response(h, r);
}

static void
completed_cb(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    struct http_req *r = *con_cls;

    (void)c;
    if (!r)
        return;
    if (h->o.request_logging)
        log_info("http: %s %s %d %zu %lldms %s%s", r->method, r->path, r->status, r->resp_len,
                 (long long)(clock_mono_ms() - r->start_ms), r->client_ip,
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

enum ch_status
http_start(const struct http_opts *o, const struct http_route *routes, void *env, struct http **out,
           struct ch_err *err)
{
    struct http *h = calloc(1, sizeof *h);
    /* thread per connection, each polling its own socket with poll() (select() stops at fd 1024, and the
     * WebSockets the hub holds take descriptors too); the internal thread only accepts */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_ALLOW_UPGRADE | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;

    if (!h)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    h->o = *o;
    h->routes = routes;
    h->env = env;
    snprintf(h->instance, sizeof h->instance, "%s", o->instance ? o->instance : "chatto");
    if (getsockname(o->listen_fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, access_cb, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)o->listen_fd, MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTP_THREAD_STACK, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((o->connection_timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o->memory_limit, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
        MHD_OPTION_END);
    if (!h->d) {
        int e = errno;
        free(h);
        return ch_err_set(err, CH_EUNAVAIL, "webserver.port", "cannot start the HTTP server: %s",
                          e ? strerror(e) : "libmicrohttpd refused to start");
    }
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    h->listen_fd = MHD_INVALID_SOCKET;
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

void
http_quiesce(struct http *h)
{
    if (!h || h->listen_fd != MHD_INVALID_SOCKET)
        return;
    atomic_store(&h->draining, true);
    h->listen_fd = MHD_quiesce_daemon(h->d);
    /* the kernel keeps queueing connects on a quiesced socket, and they would hang: refuse them now */
    if (h->listen_fd != MHD_INVALID_SOCKET)
        shutdown(h->listen_fd, SHUT_RDWR);
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
    /* joins every connection's thread: a handler still waiting on storage must be released first (the app
     * closes the NATS connection before this) */
    MHD_stop_daemon(h->d);
    if (h->listen_fd != MHD_INVALID_SOCKET)
        close(h->listen_fd);
    free(h);
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
    return r->client_ip;
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
