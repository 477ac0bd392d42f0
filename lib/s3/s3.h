/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A small S3 client: the few calls attachments need (ensure the bucket, put an object streamed from a callback,
 * read a byte range, head, delete), signed with AWS Signature Version 4 (our own signer, s3_sign(), with an
 * explicit clock so tests can replay AWS's documented examples) and sent with libcurl. Works with AWS and with
 * S3-protocol servers (MinIO, Ceph RGW, Garage, s3rver), path-style or virtual-host style.
 *
 * Keys given to the calls are relative ("attachments/<id>"); the client puts core.assets.s3.path_prefix in front.
 * Errors: unreachable, timed out, throttled or 5xx -> CH_EUNAVAIL; 404 -> CH_ENOTFOUND; any other refusal ->
 * CH_EUNAVAIL with S3's <Code> and <Message> in the text (a refusal is the operator's to fix, not the caller's).
 *
 * Threads: every call may be made from any thread at once. A handful of curl handles are pooled under a mutex that
 * is held only to take or return a handle, never across a request.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct s3;

enum s3_path_style { S3_PATH_AUTO = 0, S3_PATH_ON, S3_PATH_OFF };

struct s3_opts {
    const char *endpoint;      /* host[:port], or http(s)://host[:port] (a scheme overrides use_ssl) */
    const char *bucket;
    const char *region;        /* empty: us-east-1 */
    const char *access_key_id;
    const char *secret_access_key;
    const char *path_prefix;   /* prepended to every key, "/" between; may be empty */
    bool use_ssl;
    enum s3_path_style path_style; /* auto: virtual-host for *.amazonaws.com, path-style elsewhere */
};

/* Parse a path_style value: "auto", "true" (path-style), "false" (virtual-host); -1 if none of them. */
int s3_path_style_parse(const char *s);

/* A client for one bucket. Checks the options (CH_EINVAL naming core.assets.s3.<key>) but sends nothing.
 * *out is the caller's, freed with s3_free(). */
enum ch_status s3_new(const struct s3_opts *o, struct s3 **out, struct ch_err *err);
void s3_free(struct s3 *s);

/* Where requests go, for log lines: "https://bucket.s3.amazonaws.com (virtual-host)". Borrowed. */
const char *s3_describe(const struct s3 *s);

/* Make sure the bucket exists: HEAD it and create it (PUT, with a location constraint outside us-east-1) if S3
 * answers 404. Cheap once it has succeeded (remembered). A 403 on HEAD (credentials allowed only object calls) is
 * taken as "exists". */
enum ch_status s3_bucket_ensure(struct s3 *s, struct ch_err *err);

/* The body of a put, pulled piece by piece: *piece is malloc'ed by the callback and freed by s3; *n = 0 at the
 * end. Pieces may have any size. */
typedef enum ch_status (*s3_pull_fn)(void *ctx, char **piece, size_t *n, struct ch_err *err);

/* PUT key with exactly size bytes pulled from pull, whose SHA-256 (64 lowercase hex digits) is sha256_hex: it is
 * signed as x-amz-content-sha256, so S3 itself refuses bytes that do not match. content_type may be NULL. */
enum ch_status s3_put(struct s3 *s, const char *key, uint64_t size, const char *sha256_hex, const char *content_type,
                      s3_pull_fn pull, void *ctx, struct ch_err *err);

/* GET bytes [from, from + len) of key into buf (len bytes, len > 0); *got is how many came (fewer only at the end
 * of the object). CH_ENOTFOUND if there is no such object, CH_EINVAL if from is past its end. */
enum ch_status s3_get_range(struct s3 *s, const char *key, uint64_t from, size_t len, char *buf, size_t *got,
                            struct ch_err *err);

/* HEAD key: its size (either out-param may be NULL). */
enum ch_status s3_head(struct s3 *s, const char *key, uint64_t *size, struct ch_err *err);

/* DELETE key. Deleting an absent key succeeds (S3 says 204 either way). */
enum ch_status s3_delete(struct s3 *s, const char *key, struct ch_err *err);

/* ---- Signature Version 4 (exposed for tests and test/tools/s3sign) ---- */

struct s3_param {
    const char *name, *value; /* value NULL: a bare name, as in "?location" */
};

struct s3_sig_in {
    const char *method;             /* "GET" */
    const char *host;               /* the Host header: "examplebucket.s3.amazonaws.com" or "127.0.0.1:9000" */
    const char *path;               /* NOT encoded, starting with '/': "/test file.txt"; s3_sign encodes it */
    const struct s3_param *query;   /* NOT encoded */
    size_t nquery;
    const struct s3_param *headers; /* signed besides host, x-amz-date and x-amz-content-sha256 (any case) */
    size_t nheaders;
    const char *payload_sha256;     /* lowercase hex, or "UNSIGNED-PAYLOAD" */
    const char *region;             /* "us-east-1" */
    const char *service;            /* "s3" (NULL: "s3") */
    const char *access_key_id, *secret_access_key;
    int64_t unix_s;                 /* the signing time */
};

#define S3_AMZ_DATE_LEN 17 /* "20130524T000000Z" + NUL */

/* Sign a request. target receives the request-target to send (encoded path, then "?" and the encoded, sorted
 * query); auth the Authorization header value; amz_date the x-amz-date value. CH_EINVAL if an output does not fit
 * or the input is malformed. Pure function, any thread. */
enum ch_status s3_sign(const struct s3_sig_in *in, char *target, size_t target_len, char *auth, size_t auth_len,
                       char amz_date[S3_AMZ_DATE_LEN], struct ch_err *err);

/* SigV4 URI encoding of len bytes of s (everything but A-Z a-z 0-9 - _ . ~ as %XX, and '/' too unless keep_slash)
 * appended to out (cap bytes, NUL-terminated). False if it does not fit. */
bool s3_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t cap);
