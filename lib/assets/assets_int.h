/* SPDX-License-Identifier: MIT */
#pragma once
/* Internals shared by the files of lib/assets only. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "assets/assets.h"
#include "store/store.h"

struct assets {
    struct store *store;
    struct chat *chat;
    char *secret; /* core.assets.signing_secret (sodium memory) */
    size_t secret_len;
    int64_t max_upload;
    int64_t max_image_pixels; /* core.assets.max_image_pixels */
    bool cache;               /* core.assets.cache.enabled: resized images kept in ASSET_CACHE */
    struct {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int busy; /* images being decoded now */
    } resize;
    struct s3 *s3;   /* NULL: no S3 configured */
    bool s3_backend; /* new files go to S3 */
    struct {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        bool stop, running;
    } janitor;
};

/* records (assets.c): JSON objects in KV */
const char *rec_str(const cJSON *o, const char *name); /* "" if absent */
int64_t rec_int(const cJSON *o, const char *name);     /* 0 if absent */
void rec_set_str(cJSON *o, const char *name, const char *v);
void rec_set_int(cJSON *o, const char *name, int64_t v);
enum ch_status rec_load(struct assets *a, enum store_bucket b, const char *key, cJSON **rec, uint64_t *rev,
                        struct ch_err *err);
enum ch_status rec_save(struct assets *a, enum store_bucket b, const char *key, const cJSON *rec, uint64_t rev,
                        uint64_t *newrev, struct ch_err *err);
/* The Asset view of a file record, with URLs for viewer. */
cJSON *asset_view(const struct assets *a, const cJSON *rec, const char *viewer);
/* A file record uid may see (see assets.c); CH_ENOTFOUND otherwise. */
enum ch_status asset_visible(struct assets *a, const char *uid, const char *asset_id, cJSON **rec, uint64_t *rev,
                             struct ch_err *err);
/* The S3 key of a file (under core.assets.s3.path_prefix, which lib/s3 adds): "attachments/<assetId>". */
#define ASSET_S3_KEY_MAX (ID_MAX + 16)
void asset_s3_key(const char *asset_id, char out[ASSET_S3_KEY_MAX]);
/* The S3 client for a file recorded as being in S3, or CH_EUNAVAIL naming core.assets.s3 when none is set. */
enum ch_status asset_s3(struct assets *a, const char *asset_id, struct s3 **out, struct ch_err *err);
/* Erase a file's bytes and forget its record. */
enum ch_status asset_destroy(struct assets *a, const char *asset_id, struct ch_err *err);

/* image.c: the pixel size of a PNG, GIF, JPEG or WebP from its first bytes (0 x 0 if unknown). */
struct image_size {
    int width, height;
};
void image_sniff(const char *data, size_t len, struct image_size *out);

/* resize.c: libvips. resize_init once per struct assets (starts libvips the first time). */
enum ch_status resize_init(struct assets *a, struct ch_err *err);
void resize_fini(struct assets *a);
struct resize_out {
    char *data; /* malloc'd */
    size_t len;
    char content_type[16];
    int width, height;
};
/* Resize an encoded image held in memory (see resize.c for the rules); webp forces WebP output (avatars). */
enum ch_status resize_image(struct assets *a, const void *buf, size_t len, int w, int h, enum assets_fit fit,
                            bool webp, struct resize_out *out, struct ch_err *err);
/* Erase the sizes of a file kept in ASSET_CACHE (its record lists them). */
void resize_cache_erase(struct assets *a, const cJSON *rec);

/* janitor.c */
enum ch_status janitor_start(struct assets *a, struct ch_err *err);
void janitor_stop(struct assets *a);
