/* SPDX-License-Identifier: MIT */
/*
 * Downloads: who may fetch a file is decided when it is opened (membership now, not when the link was made);
 * then its bytes come from the object store one chunk at a time, so a download costs one chunk of memory
 * whatever the file's size. A whole-file read checks the digest before handing out the last piece, so a
 * corrupt file is cut short rather than delivered. HTTP worker threads.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assets/assets_int.h"

struct assets_file {
    struct assets *a;
    struct assets_file_meta meta;
    char filename[ASSETS_FILENAME_MAX + 1], content_type[128];
    struct store_obj_info info;
    struct store_obj_reader *rd;
    uint64_t skip, remaining;
    bool whole;
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
    cJSON_Delete(rec);
    if ((st = store_obj_get_info(a->store, STORE_S_ASSETS, asset_id, &f->info, err)) != CH_OK) {
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

enum ch_status
assets_file_seek(struct assets_file *f, uint64_t from, uint64_t len, struct ch_err *err)
{
    if (from > f->info.size || len > f->info.size - from)
        return ch_err_set(err, CH_EINVAL, "Range", "outside the file");
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
    free(f);
}
