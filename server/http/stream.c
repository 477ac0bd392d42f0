/* SPDX-License-Identifier: MIT */
/*
 * Streamed response bodies (downloads) in constant memory. libmicrohttpd asks for bytes on an epoll thread, which
 * must never wait on storage; so when the piece in hand is used up, the reader queues a worker job to fetch the
 * next one and suspends the connection (returning 0, as microhttpd.h prescribes for "no data yet"); the job
 * resumes it once the piece is there. One piece is held at a time.
 *
 * Lifetime: a stream has a reference for libmicrohttpd's response (dropped by its free callback) and one for a
 * fetch in flight; the last one out calls done() and frees. While a fetch is in flight the connection is
 * suspended, so libmicrohttpd cannot finish the request under it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"
#include "log/log.h"

#define STREAM_BLOCK (64u * 1024u) /* how much libmicrohttpd asks for at once */

struct http_stream {
    struct http_job job; /* fetches the next piece */
    struct http *h;
    struct MHD_Connection *conn;
    pthread_mutex_t mu; /* guards everything below */
    char *piece;
    size_t len, off;
    uint64_t sent, total;
    bool eof, failed, fetching, suspended;
    int refs;
    http_fill_fn fill;
    void (*done)(void *ctx);
    void *ctx;
};

static void
stream_unref(struct http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    if (s->done)
        s->done(s->ctx);
    free(s->piece);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void
run_fetch(struct http_job *j)
{
    struct http_stream *s = (struct http_stream *)j;
    char *piece = NULL;
    size_t len = 0;
    enum ch_status st = s->fill(s->ctx, &piece, &len);

    pthread_mutex_lock(&s->mu);
    free(s->piece);
    s->piece = piece;
    s->len = st == CH_OK ? len : 0;
    s->off = 0;
    if (st != CH_OK || (len == 0 && s->sent < s->total) || s->sent + s->len > s->total)
        s->failed = true; /* cut the body short rather than send a wrong one */
    else if (len == 0)
        s->eof = true;
    s->fetching = false;
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
    pthread_mutex_unlock(&s->mu);
    stream_unref(s);
}

static ssize_t
reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_stream *s = cls;
    ssize_t ret;

    (void)pos;
    pthread_mutex_lock(&s->mu);
    if (s->off < s->len) {
        size_t n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(buf, s->piece + s->off, n);
        s->off += n;
        s->sent += n;
        ret = (ssize_t)n;
    } else if (s->failed) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (s->eof || s->sent >= s->total) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        if (!s->fetching) {
            s->fetching = true;
            s->refs++;
            s->job.run = run_fetch;
            if (!http_submit_job(s->h, &s->job)) {
                s->fetching = false;
                s->refs--;
                s->failed = true;
                pthread_mutex_unlock(&s->mu);
                log_error("http: no worker thread for a streamed response");
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return ret;
}

static void
free_cb(void *cls)
{
    stream_unref(cls);
}

void
http_reply_stream(struct http_req *r, int status, const char *content_type, uint64_t total, http_fill_fn fill,
                  void (*done)(void *ctx), void *ctx)
{
    struct http_stream *s = calloc(1, sizeof *s);

    if (!s) {
        if (done)
            done(ctx);
        http_reply_errorf(r, CH_ENOMEM, "out of memory");
        return;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->h = r->http;
    s->conn = r->conn;
    s->total = total;
    s->fill = fill;
    s->done = done;
    s->ctx = ctx;
    s->refs = 1;
    http_stream_abandon(r->stream);
    free(r->resp);
    r->resp = NULL;
    r->resp_len = (size_t)total;
    r->stream = s;
    r->stream_total = total;
    r->status = status;
    snprintf(r->content_type, sizeof r->content_type, "%s", content_type);
    r->answered = true;
}

struct MHD_Response *
http_stream_response(struct http *h, struct http_req *r)
{
    struct http_stream *s = r->stream;
    struct MHD_Response *resp;

    (void)h;
    resp = MHD_create_response_from_callback(r->stream_total, STREAM_BLOCK, reader_cb, s, free_cb);
    if (!resp)
        return NULL; /* r still holds it: req_free abandons it */
    r->stream = NULL; /* the response's now: free_cb drops its reference */
    return resp;
}

void
http_stream_abandon(struct http_stream *s)
{
    if (s)
        stream_unref(s);
}
