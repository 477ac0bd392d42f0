/* SPDX-License-Identifier: MIT */
/*
 * Files: chatto.api.v1.AssetUploadService and AssetService (Connect JSON, upstream's names and shapes), the raw
 * chunk route browsers use (PUT /api/assets/uploads/<uploadId>?offset=N: the bytes as they are, no base64), and
 * downloads (GET /assets/files/<assetId>[?access=<ticket>]: streamed in constant memory, Range, ETag, and a
 * Content-Disposition that never lets an uploaded page run as ours) and resized images
 * (GET /assets/files/<assetId>/image/<W>x<H>/<fit>[?access=<ticket>]). HTTP worker threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "assets/assets.h"
#include "base/ids.h"
#include "crypto/crypto.h"
#include "json/json.h"

#define ME (&c->who->user)
#define UPLOADS_PREFIX "/api/assets/uploads/"
#define FILES_PREFIX "/assets/files/"
/* a 512 KiB chunk in base64 plus the JSON around it */
#define CHUNK_JSON_MAX (ASSETS_CHUNK_MAX / 3 * 4 + 8192)

static cJSON *
wrap(const char *name, cJSON *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, name, v);
    return o;
}

static enum ch_status
create_upload(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *filename = NULL, *type = "", *sha = NULL;
    int64_t size = -1;
    bool too_large = false;
    cJSON *up = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", true, 1, 64, &room, err)) != CH_OK ||
        (st = json_get_str(in, "filename", true, 1, 4096, &filename, err)) != CH_OK ||
        (st = json_get_str(in, "contentType", false, 0, 255, &type, err)) != CH_OK ||
        (st = json_get_int(in, "size", true, 0, INT64_MAX, &size, err)) != CH_OK ||
        (st = json_get_str(in, "sha256", true, 64, 64, &sha, err)) != CH_OK)
        return st;
    st = assets_create_upload(c->env->assets, ME->id, room, filename, type, size, sha, &too_large, &up, err);
    if (too_large)
        c->http_status = 413; /* refused before a byte is stored */
    if (st == CH_OK)
        *out = wrap("upload", up);
    return st;
}

/* bytes in proto3 JSON: base64, standard or URL-safe, padded or not */
static enum ch_status
decode_content(const char *b64, unsigned char **out, size_t *len, struct ch_err *err)
{
    size_t n = strlen(b64);
    unsigned char *buf = malloc(n / 4 * 3 + 3);

    if (!buf)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (!crypto_base64_decode_any(b64, n, buf, n / 4 * 3 + 3, len)) {
        free(buf);
        return ch_err_set(err, CH_EINVAL, "content", "must be base64");
    }
    *out = buf;
    return CH_OK;
}

static enum ch_status
upload_chunk(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL, *content = NULL, *sha = NULL;
    int64_t offset = -1;
    unsigned char *data = NULL;
    size_t len = 0;
    cJSON *up = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "uploadId", true, 1, 64, &id, err)) != CH_OK ||
        (st = json_get_int(in, "offset", true, 0, INT64_MAX, &offset, err)) != CH_OK ||
        (st = json_get_str(in, "content", true, 1, CHUNK_JSON_MAX, &content, err)) != CH_OK ||
        (st = json_get_str(in, "chunkSha256", true, 64, 64, &sha, err)) != CH_OK ||
        (st = decode_content(content, &data, &len, err)) != CH_OK)
        return st;
    st = assets_upload_chunk(c->env->assets, ME->id, id, offset, data, len, sha, &up, err);
    free(data);
    if (st == CH_OK)
        *out = wrap("upload", up);
    return st;
}

static enum ch_status
get_upload(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    cJSON *up = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "uploadId", true, 1, 64, &id, err)) != CH_OK ||
        (st = assets_get_upload(c->env->assets, ME->id, id, &up, err)) != CH_OK)
        return st;
    *out = wrap("upload", up);
    return CH_OK;
}

static enum ch_status
complete_upload(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    cJSON *up = NULL, *asset = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "uploadId", true, 1, 64, &id, err)) != CH_OK ||
        (st = assets_complete_upload(c->env->assets, ME->id, id, &up, &asset, err)) != CH_OK)
        return st;
    *out = wrap("upload", up);
    cJSON_AddItemToObject(*out, "asset", asset);
    return CH_OK;
}

static enum ch_status
cancel_upload(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *id = NULL;
    cJSON *up = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "uploadId", true, 1, 64, &id, err)) != CH_OK ||
        (st = assets_cancel_upload(c->env->assets, ME->id, id, &up, err)) != CH_OK)
        return st;
    *out = wrap("upload", up);
    return CH_OK;
}

static enum ch_status
get_asset(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, *id = NULL;
    cJSON *asset = NULL;
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", true, 1, 64, &room, err)) != CH_OK ||
        (st = json_get_str(in, "assetId", true, 1, 64, &id, err)) != CH_OK ||
        (st = assets_get(c->env->assets, ME->id, room, id, &asset, err)) != CH_OK)
        return st;
    *out = wrap("asset", asset);
    return CH_OK;
}

/* Files the caller may not see are left out (as upstream), not an error. */
static enum ch_status
batch_get_assets(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *room = NULL, **ids = NULL;
    size_t n = 0;
    cJSON *arr;
    enum ch_status st;

    if ((st = json_get_str(in, "roomId", true, 1, 64, &room, err)) != CH_OK ||
        (st = json_get_str_array(in, "assetIds", true, 100, 1, 64, &ids, &n, err)) != CH_OK)
        return st;
    if (n == 0) {
        free(ids);
        return ch_err_set(err, CH_EINVAL, "assetIds", "at least one id is required");
    }
    arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *asset = NULL;
        struct ch_err e = { 0 };
        st = assets_get(c->env->assets, ME->id, room, ids[i], &asset, &e);
        if (st == CH_OK) {
            cJSON_AddItemToArray(arr, asset);
        } else if (st != CH_ENOTFOUND && st != CH_EINVAL && st != CH_EPERM) {
            *err = e;
            free(ids);
            cJSON_Delete(arr);
            return st;
        }
    }
    free(ids);
    *out = wrap("assets", arr);
    return CH_OK;
}

const struct api_method assets_methods[] = {
    { "chatto.api.v1.AssetUploadService", "CreateUpload", API_AUTH_USER, 0, create_upload },
    { "chatto.api.v1.AssetUploadService", "UploadChunk", API_AUTH_USER, CHUNK_JSON_MAX, upload_chunk },
    { "chatto.api.v1.AssetUploadService", "GetUpload", API_AUTH_USER, 0, get_upload },
    { "chatto.api.v1.AssetUploadService", "CompleteUpload", API_AUTH_USER, 0, complete_upload },
    { "chatto.api.v1.AssetUploadService", "CancelUpload", API_AUTH_USER, 0, cancel_upload },
    { "chatto.api.v1.AssetService", "GetAsset", API_AUTH_USER, 0, get_asset },
    { "chatto.api.v1.AssetService", "BatchGetAssets", API_AUTH_USER, 0, batch_get_assets },
    { 0 },
};

/* ---- PUT /api/assets/uploads/<uploadId>?offset=N ---- */

void
assets_chunk_prepare(struct http_req *r, void *envp)
{
    struct api_env *env = envp;

    if (api_precheck_credentials(r, env))
        http_req_set_max_body(r, ASSETS_CHUNK_MAX);
}

void
assets_chunk_put(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    const char *id = http_req_path(r) + strlen(UPLOADS_PREFIX), *off = http_req_query(r, "offset");
    /* optional here: the whole file is checked against its SHA-256 at the end anyway */
    const char *sha = http_req_header(r, "X-Chunk-SHA256");
    struct principal who;
    struct ch_err err = { 0 };
    int64_t offset = -1;
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    cJSON *up = NULL;
    enum ch_status st;

    if (!id_valid(id)) {
        http_reply_status(r, 404, "not_found", "no such upload (PUT /api/assets/uploads/<uploadId>?offset=N)");
        return;
    }
    if (!off || !*off || strspn(off, "0123456789") != strlen(off) || strlen(off) > 18) {
        http_reply_errorf(r, CH_EINVAL, "offset: the query parameter offset=N (the chunk's first byte) is required");
        return;
    }
    offset = (int64_t)strtoll(off, NULL, 10);
    if ((st = api_authenticate(env, r, &who, &err)) != CH_OK) {
        http_reply_error(r, st, &err);
        return;
    }
    st = assets_upload_chunk(env->assets, who.user.id, id, offset, body, len, sha, &up, &err);
    explicit_bzero(&who, sizeof who);
    if (st != CH_OK) {
        if (st == CH_EINVAL && !strcmp(err.field, "chunkSha256"))
            snprintf(err.field, sizeof err.field, "X-Chunk-SHA256");
        http_reply_error(r, st, &err);
        return;
    }
    http_reply_json(r, 200, wrap("upload", up));
}

/* ---- GET /assets/files/<assetId> ---- */

/* Content-Disposition with an ASCII fallback name and the real one in RFC 5987 form. */
static void
disposition(const char *kind, const char *name, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char ascii[256], enc[ASSETS_FILENAME_MAX * 3 + 1];
    size_t a = 0, e = 0;

    for (const unsigned char *p = (const unsigned char *)name; *p && a < sizeof ascii - 1; p++)
        ascii[a++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("._- ()", *p)) ? (char)*p : '_';
    ascii[a] = '\0';
    for (const unsigned char *p = (const unsigned char *)name; *p && e + 3 < sizeof enc; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._-", *p)) {
            enc[e++] = (char)*p;
        } else {
            enc[e++] = '%';
            enc[e++] = hex[*p >> 4];
            enc[e++] = hex[*p & 15];
        }
    }
    enc[e] = '\0';
    snprintf(out, len, "%s; filename=\"%s\"; filename*=UTF-8''%s", kind, ascii, enc);
}

/* One "bytes=first-last", "bytes=first-" or "bytes=-suffix" range. 1: a range in [*from, *from + *n); 0: no
 * usable Range header (serve it all); -1: not satisfiable. Several ranges are served as the whole file. */
static int
parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *n)
{
    unsigned long long a = 0, b = 0;
    char *end;

    if (!h || strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    h += 6;
    while (*h == ' ')
        h++;
    if (*h == '-') {
        if (!(h[1] >= '0' && h[1] <= '9'))
            return 0;
        b = strtoull(h + 1, &end, 10);
        if (*end)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *n = b < size ? b : size;
        *from = size - *n;
        return 1;
    }
    if (!(*h >= '0' && *h <= '9'))
        return 0;
    a = strtoull(h, &end, 10);
    if (*end != '-')
        return 0;
    h = end + 1;
    if (!*h) {
        b = size ? size - 1 : 0;
    } else {
        if (!(*h >= '0' && *h <= '9'))
            return 0;
        b = strtoull(h, &end, 10);
        if (*end || b < a)
            return 0;
        if (b >= size)
            b = size ? size - 1 : 0;
    }
    if (a >= size)
        return -1;
    *from = a;
    *n = b - a + 1;
    return 1;
}

static enum ch_status
fill_file(void *ctx, char **piece, size_t *len)
{
    return assets_file_read(ctx, piece, len, NULL);
}

static void
done_file(void *ctx)
{
    assets_file_close(ctx);
}

/* A size of an image: small enough to answer from memory. */
static void
serve_image(struct http_req *r, struct api_env *env, const char *uid, const char *id,
            const struct assets_image_spec *spec)
{
    struct assets_image img;
    struct ch_err err = { 0 };
    char name[ASSETS_FILENAME_MAX + 8], disp[1200];
    enum ch_status st;

    st = assets_image(env->assets, uid, id, spec, http_req_header(r, "If-None-Match"), &img, &err);
    if (st != CH_OK) {
        if (st == CH_EINVAL && !strcmp(err.field, "contentType"))
            http_reply_status(r, 415, "invalid_argument", err.msg);
        else if (st == CH_EINVAL && !strcmp(err.field, "image"))
            http_reply_status(r, 422, "invalid_argument", err.msg);
        else if (st == CH_ELIMIT)
            http_reply_status(r, 413, "resource_exhausted", err.msg);
        else
            http_reply_error(r, st, &err);
        return;
    }
    if (img.not_modified) {
        http_reply_bytes(r, 304, "", "", 0);
    } else {
        /* the original's name with the extension of what it became */
        char *dot = strrchr(img.filename, '.');
        if (dot && dot != img.filename)
            *dot = '\0';
        snprintf(name, sizeof name, "%s.%s", img.filename, strcmp(img.content_type, "image/webp") ? "jpg" : "webp");
        disposition("inline", name, disp, sizeof disp);
        http_reply_bytes(r, 200, img.content_type, img.data, img.len);
        http_reply_header(r, "Content-Disposition", disp);
    }
    http_reply_header(r, "ETag", img.etag);
    http_reply_header(r, "Cache-Control", "private, no-cache");
    assets_image_release(&img);
}

void
assets_download(struct http_req *r, void *envp)
{
    struct api_env *env = envp;
    const char *path = http_req_path(r) + strlen(FILES_PREFIX), *ticket = http_req_query(r, "access");
    const char *slash = strchr(path, '/');
    char uid[ID_MAX + 1] = "", id[ID_MAX + 1] = "", disp[1200], cr[96];
    struct ch_err err = { 0 };
    struct assets_file *f = NULL;
    const struct assets_file_meta *m;
    struct assets_image_spec spec;
    uint64_t from = 0, n = 0;
    enum ch_status st;
    int range;

    snprintf(id, sizeof id, "%.*s", slash ? (int)(slash - path) : (int)strlen(path), path);
    if (!id_valid(id) || (slash && (size_t)(slash - path) != strlen(id))) {
        http_reply_status(r, 404, "not_found", "no such file");
        return;
    }
    if (slash) { /* /assets/files/<id>/image/<W>x<H>/<fit> */
        if (strncmp(slash, "/image/", 7) != 0) {
            http_reply_status(r, 404, "not_found", "no such file");
            return;
        }
        if ((st = assets_image_spec_parse(slash + 7, &spec, &err)) != CH_OK) {
            http_reply_status(r, 400, "invalid_argument", err.msg);
            return;
        }
    }
    if (ticket) {
        if ((st = assets_ticket_check(env->assets, ticket, id, slash ? &spec : NULL, uid, &err)) != CH_OK) {
            http_reply_error(r, st, &err);
            return;
        }
    } else {
        struct principal who;
        if ((st = api_authenticate(env, r, &who, &err)) != CH_OK) {
            http_reply_error(r, st, &err);
            return;
        }
        snprintf(uid, sizeof uid, "%s", who.user.id);
        explicit_bzero(&who, sizeof who);
    }
    if (slash) {
        serve_image(r, env, uid, id, &spec);
        return;
    }
    if ((st = assets_open(env->assets, uid, id, &f, &err)) != CH_OK) {
        http_reply_error(r, st, &err);
        return;
    }
    m = assets_file_meta(f);
    const char *inm = http_req_header(r, "If-None-Match");
    if (inm && (strstr(inm, m->etag) || !strcmp(inm, "*"))) {
        http_reply_bytes(r, 304, "", "", 0);
        http_reply_header(r, "ETag", m->etag);
        http_reply_header(r, "Cache-Control", "private, no-cache");
        assets_file_close(f);
        return;
    }
    range = parse_range(http_req_header(r, "Range"), m->size, &from, &n);
    const char *ifr = http_req_header(r, "If-Range");
    if (range != 0 && ifr && strcmp(ifr, m->etag) != 0)
        range = 0; /* the client's copy is of another version: send the whole file */
    if (range < 0) {
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, m->size);
        http_reply_status(r, 416, "out_of_range", "the requested range is outside the file");
        http_reply_header(r, "Content-Range", cr);
        assets_file_close(f);
        return;
    }
    if (range == 0) {
        from = 0;
        n = m->size;
    }
    if ((st = assets_file_seek(f, from, n, &err)) != CH_OK) {
        assets_file_close(f);
        http_reply_error(r, st, &err);
        return;
    }
    disposition(m->inline_ok ? "inline" : "attachment", m->filename, disp, sizeof disp);
    /* (for HEAD libmicrohttpd sends the headers only and never asks for the body) */
    http_reply_stream(r, range > 0 ? 206 : 200, m->content_type, n, fill_file, done_file, f);
    http_reply_header(r, "Content-Disposition", disp);
    http_reply_header(r, "ETag", m->etag);
    http_reply_header(r, "Accept-Ranges", "bytes");
    /* private: never in a shared cache; no-cache: every use asks again, so membership is checked each time */
    http_reply_header(r, "Cache-Control", "private, no-cache");
    if (m->active) /* an uploaded page or drawing must never run as us, even if opened directly */
        http_reply_header(r, "Content-Security-Policy", "sandbox; default-src 'none'");
    if (range > 0) {
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from, from + n - 1, m->size);
        http_reply_header(r, "Content-Range", cr);
    }
}
