/* SPDX-License-Identifier: MIT */
/*
 * The metrics listener (metrics.enabled): a libmicrohttpd daemon of its own on metrics.bind_address:port, apart
 * from the public port, answering GET <metrics.path> with lib/metrics' exposition and 404 otherwise. One internal
 * thread: a scrape renders from memory and never waits on NATS.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "metricsd.h"

struct metricsd {
    struct MHD_Daemon *d;
    char path[256];
};

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
       const char *upload, size_t *upload_len, void **con_cls)
{
    struct metricsd *m = cls;
    struct MHD_Response *r;
    enum MHD_Result ret;
    size_t len = 0;
    char *body = NULL;
    unsigned status = MHD_HTTP_OK;
    static const char notfound[] = "not found\n", badmethod[] = "only GET\n";

    (void)version;
    (void)upload;
    (void)con_cls;
    if (*upload_len) {
        *upload_len = 0; /* a body is ignored */
        return MHD_YES;
    }
    if (strcmp(url, m->path) != 0) {
        status = MHD_HTTP_NOT_FOUND;
        r = MHD_create_response_from_buffer(sizeof notfound - 1, (void *)notfound, MHD_RESPMEM_PERSISTENT);
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        r = MHD_create_response_from_buffer(sizeof badmethod - 1, (void *)badmethod, MHD_RESPMEM_PERSISTENT);
    } else if (!(body = metrics_render(&len))) {
        return MHD_NO;
    } else {
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    }
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", status == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
                                                                   : "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum ch_status
metricsd_start(const char *bind_address, int port, const char *path, struct metricsd **out, int *bound,
               struct ch_err *err)
{
    struct metricsd *m = calloc(1, sizeof *m);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
    struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;

    *out = NULL;
    if (!m)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    if (inet_pton(AF_INET, bind_address, &a4.sin_addr) == 1) {
        sa = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, bind_address, &a6.sin6_addr) == 1) {
        sa = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        free(m);
        return ch_err_set(err, CH_EINVAL, "metrics.bind_address", "metrics.bind_address: not an IP address: %s",
                          bind_address);
    }
    m->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_END);
    if (!m->d) {
        free(m);
        return ch_err_set(err, CH_EINVAL, "metrics.port", "metrics: cannot listen on %s:%d (in use?)", bind_address,
                          port);
    }
    if (bound) {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
        *bound = di ? di->port : port;
    }
    *out = m;
    return CH_OK;
}

void
metricsd_stop(struct metricsd *m)
{
    if (!m)
        return;
    MHD_stop_daemon(m->d);
    free(m);
}
