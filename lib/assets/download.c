/* SPDX-License-Identifier: MIT */
/*
 * Downloads: who may fetch a file is decided when it is opened (membership now, not when the link was made);
 * then its bytes come from the object store one chunk at a time, so a download costs one chunk of memory
 * whatever the file's size. A whole-file read checks the digest before handing out the last piece, so a
 * corrupt file is cut short rather than delivered. Files in S3 (their record says "backend":"s3") come the same
 * way, as ranged GETs of at most S3_PIECE bytes; the first is fetched when the read is positioned, so an S3 that
 * is away is a clean 503 before any header goes out. HTTP worker threads.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assets/assets_int.h"
#include "crypto/crypto.h"
#include "log/log.h"
#include "s3/s3.h"

#define S3_PIECE (1024u * 1024u) /* bytes per ranged GET: one piece in memory per download */

struct assets_file {
    struct assets *a;
    struct assets_file_meta meta;
    char filename[ASSETS_FILENAME_MAX + 1], content_type[128];
    struct store_obj_info info;
    struct store_obj_reader *rd;
    uint64_t skip, remaining;
    bool whole;
    /* S3 only */
    struct s3 *s3;
    char key[ASSET_S3_KEY_MAX];
    uint64_t pos;
    struct crypto_sha256 sha;
    char *next; /* the piece fetched ahead by seek */
    size_t next_len;
};

static bool
type_in(const char *t, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(t, *list))
            return true;
    return false;
}

enum ch_status
assets_open(struct assets *a, const char *uid, const char *asset_id, struct assets_file **out, struct ch_err *err)
{
    static const char *const inline_types[] = { "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
                                                NULL };
    static const char *const active_types[] = { "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml",
                                                "application/xml", "text/xsl", NULL };
    struct assets_file *f;
    cJSON *rec = NULL;
    uint64_t rev = 0;
    enum ch_status st;

    *out = NULL;
    if ((st = asset_visible(a, uid, asset_id, &rec, &rev, err)) != CH_OK)
        return st;
    if (!(f = calloc(1, sizeof *f))) {
        cJSON_Delete(rec);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    f->a = a;
    snprintf(f->filename, sizeof f->filename, "%s", rec_str(rec, "filename"));
    snprintf(f->content_type, sizeof f->content_type, "%s", rec_str(rec, "contentType"));
    if (!strcmp(rec_str(rec, "backend"), "s3")) {
        /* the record is the description: size and digest were checked when the file was completed */
        if ((st = asset_s3(a, asset_id, &f->s3, err)) != CH_OK) {
            cJSON_Delete(rec);
            free(f);
            return st;
        }
        asset_s3_key(asset_id, f->key);
        snprintf(f->info.name, sizeof f->info.name, "%s", asset_id);
        f->info.size = (uint64_t)rec_int(rec, "size");
        sodium_hex2bin(f->info.sha256, sizeof f->info.sha256, rec_str(rec, "sha256"), 64, NULL, NULL, NULL);
    }
    cJSON_Delete(rec);
    if (!f->s3 && (st = store_obj_get_info(a->store, STORE_S_ASSETS, asset_id, &f->info, err)) != CH_OK) {
        if (st == CH_ENOTFOUND)
            ch_err_set(err, CH_ENOTFOUND, "assetId", "no such file");
        free(f);
        return st;
    }
    f->meta.filename = f->filename;
    f->meta.content_type = f->content_type;
    f->meta.size = f->info.size;
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, f->info.sha256, 32);
    snprintf(f->meta.etag, sizeof f->meta.etag, "\"%s\"", hex);
    f->meta.inline_ok = type_in(f->content_type, inline_types);
    size_t tl = strlen(f->content_type);
    f->meta.active = type_in(f->content_type, active_types) || (tl > 4 && !strcmp(f->content_type + tl - 4, "+xml"));
    *out = f;
    return CH_OK;
}

const struct assets_file_meta *
assets_file_meta(const struct assets_file *f)
{
    return &f->meta;
}

/* The next piece of an S3 file: a ranged GET of at most S3_PIECE bytes; the last piece of a whole-file read is
 * held back unless the digest matches. */
static enum ch_status
s3_piece(struct assets_file *f, char **piece, size_t *n, struct ch_err *err)
{
    size_t want = f->remaining < S3_PIECE ? (size_t)f->remaining : S3_PIECE, got = 0;
    struct ch_err e = { 0 };
    enum ch_status st;
    char *buf;

    if (!(buf = malloc(want)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if ((st = s3_get_range(f->s3, f->key, f->pos, want, buf, &got, &e)) != CH_OK) {
        free(buf);
        if (st == CH_ENOTFOUND || st == CH_EINVAL) {
            log_warn("assets: file %s is missing from S3: %s", f->info.name, e.msg);
            return ch_err_set(err, CH_ENOTFOUND, "assetId", "the bytes of this file are gone from the storage");
        }
        log_warn("assets: cannot read file %s from S3: %s", f->info.name, e.msg);
        return ch_err_set(err, st == CH_EUNAVAIL ? CH_EUNAVAIL : CH_EINTERNAL, NULL,
                          "the file storage (S3) is not available right now; try again later");
    }
    if (got != want) {
        free(buf);
        return ch_err_set(err, CH_EINTERNAL, NULL, "file %s in S3 is shorter than its record", f->info.name);
    }
    f->pos += got;
    f->remaining -= got;
    if (f->whole) {
        crypto_sha256_update(&f->sha, buf, got);
        if (f->remaining == 0) {
            unsigned char sum[32];
            crypto_sha256_final(&f->sha, sum);
            if (sodium_memcmp(sum, f->info.sha256, 32) != 0) {
                free(buf);
                return ch_err_set(err, CH_EINTERNAL, NULL, "file %s in S3 does not match its SHA-256",
                                  f->info.name);
            }
        }
    }
    *piece = buf;
    *n = got;
    return CH_OK;
}

enum ch_status
assets_file_seek(struct assets_file *f, uint64_t from, uint64_t len, struct ch_err *err)
{
    if (from > f->info.size || len > f->info.size - from)
        return ch_err_set(err, CH_EINVAL, "Range", "outside the file");
    if (f->s3) {
        FREE_NULL(f->next);
        f->next_len = 0;
        f->pos = from;
        f->remaining = len;
        f->whole = from == 0 && len == f->info.size;
        crypto_sha256_init(&f->sha);
        f->rd = NULL;
        if (len == 0) {
            if (f->whole) { /* an empty file: nothing to fetch, but the digest still has to be the empty one */
                unsigned char sum[32];
                crypto_sha256_final(&f->sha, sum);
                if (sodium_memcmp(sum, f->info.sha256, 32) != 0)
                    return ch_err_set(err, CH_EINTERNAL, NULL, "file %s does not match its SHA-256", f->info.name);
            }
            return CH_OK;
        }
        return s3_piece(f, &f->next, &f->next_len, err);
    }
    store_obj_reader_close(f->rd);
    f->rd = NULL;
    f->skip = from;
    f->remaining = len;
    f->whole = from == 0 && len == f->info.size;
    return store_obj_reader_open(f->a->store, STORE_S_ASSETS, &f->info, &f->rd, err);
}

enum ch_status
assets_file_read(struct assets_file *f, char **piece, size_t *n, struct ch_err *err)
{
    enum ch_status st;

    *piece = NULL;
    *n = 0;
    if (f->s3) {
        if (f->next) {
            *piece = f->next;
            *n = f->next_len;
            f->next = NULL;
            return CH_OK;
        }
        return f->remaining ? s3_piece(f, piece, n, err) : CH_OK;
    }
    if (!f->rd)
        return ch_err_set(err, CH_EINTERNAL, NULL, "not opened for reading");
    while (f->remaining > 0) {
        char *data = NULL;
        size_t len = 0;
        if ((st = store_obj_read(f->rd, &data, &len, err)) != CH_OK)
            return st;
        if (len == 0)
            return ch_err_set(err, CH_EINTERNAL, NULL, "file %s is shorter than its description", f->info.name);
        if (f->skip >= len) {
            f->skip -= len;
            free(data);
            continue;
        }
        size_t start = (size_t)f->skip, take = len - start;
        if (take > f->remaining)
            take = (size_t)f->remaining;
        if (start)
            memmove(data, data + start, take);
        f->skip = 0;
        f->remaining -= take;
        if (f->remaining == 0 && f->whole) {
            /* the last piece of the whole file: the digest must match before it goes out */
            char *end = NULL;
            size_t elen = 0;
            st = store_obj_read(f->rd, &end, &elen, err);
            free(end);
            if (st != CH_OK || elen != 0) {
                free(data);
                return st != CH_OK ? st : ch_err_set(err, CH_EINTERNAL, NULL, "file %s is longer than its "
                                                     "description", f->info.name);
            }
        }
        *piece = data;
        *n = take;
        return CH_OK;
    }
    return CH_OK;
}

void
assets_file_close(struct assets_file *f)
{
    if (!f)
        return;
    store_obj_reader_close(f->rd);
    free(f->next);
    free(f);
}
