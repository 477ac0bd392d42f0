/* SPDX-License-Identifier: MIT */
/*
 * Resized images with libvips: the thumbnails and sizes /assets/files/<id>/image/<W>x<H>/<fit> serves, and
 * avatars. Upstream's rules: W and H 1-2048; contain fits inside W x H and never enlarges, cover fills W x H
 * exactly (cropping the middle), exact stretches to W x H; an opaque still image becomes a JPEG (quality 75), one
 * with transparency or animation a lossless WebP. Only the JPEG, PNG, WebP and GIF decoders are allowed (libvips'
 * others, ImageMagick's among them, are blocked at start), and an image is measured from its header before a
 * pixel is decoded: more than core.assets.max_image_pixels (per frame, and 2.5 times that over all frames of an
 * animation, at most 256 frames) is refused, so a small file that inflates to gigabytes never gets decoded.
 * At most RESIZE_JOBS images are decoded at a time in this process, which bounds the memory a burst of
 * requests can take (the original is read whole: at most core.assets.max_upload_size each).
 *
 * With core.assets.cache.enabled, results are kept in the object store ASSET_CACHE (upstream's names:
 * attachment-stable-v2.<assetId>.<first 16 hex of SHA-256("<W>x<H>_<fit>")>), which ages them out after
 * core.assets.cache.ttl; the file's record lists the sizes it has there, so erasing the file erases them too.
 *
 * Threads: HTTP worker threads. libvips is thread-safe; the job gate is a mutex and a condition variable, never
 * held across NATS or libvips calls.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "assets/assets_int.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "log/log.h"

#define RESIZE_JOBS 2
#define RESIZE_MAX_FRAMES 256
#define RESIZE_CACHE_MAX 16 /* sizes of one file kept in ASSET_CACHE; more are made on every request */

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static bool vips_ok;
static char vips_why[200]; /* why libvips could not be used */

/* libvips and the hundred libraries it links (GLib, poppler, librsvg, ImageMagick...) are loaded on the first
 * resize, not when chatto starts: a process that never resizes an image does not carry them (linked, they cost
 * about 13 MB of RSS before doing anything, and more once initialised). Each function is looked up once; the
 * table's types are the headers' own, so a call through it is checked as a direct call would be. */
static struct {
    __typeof__(&vips_init) init;
    __typeof__(&vips_version) version;
    __typeof__(&vips_error_buffer) error_buffer;
    __typeof__(&vips_error_clear) error_clear;
    __typeof__(&vips_block_untrusted_set) block_untrusted_set;
    __typeof__(&vips_operation_block_set) operation_block_set;
    __typeof__(&vips_cache_set_max) cache_set_max;
    __typeof__(&vips_concurrency_set) concurrency_set;
    __typeof__(&vips_leak_set) leak_set;
    __typeof__(&vips_foreign_find_load_buffer) foreign_find_load_buffer;
    __typeof__(&vips_image_new_from_buffer) image_new_from_buffer;
    __typeof__(&vips_image_get_width) image_get_width;
    __typeof__(&vips_image_get_height) image_get_height;
    __typeof__(&vips_image_get_n_pages) image_get_n_pages;
    __typeof__(&vips_image_get_page_height) image_get_page_height;
    __typeof__(&vips_image_hasalpha) image_hasalpha;
    __typeof__(&vips_thumbnail_buffer) thumbnail_buffer;
    __typeof__(&vips_webpsave_buffer) webpsave_buffer;
    __typeof__(&vips_jpegsave_buffer) jpegsave_buffer;
    __typeof__(&g_object_unref) object_unref;
    __typeof__(&g_free) free;
    __typeof__(&g_log_set_handler) log_set_handler;
} V;

/* dlopen libvips by the soname of the ABI we were built against (libtool: current - age) and find every function.
 * False with vips_why set. */
static bool
vips_load(void)
{
    char soname[32];
    void *h;
    const char *missing = NULL;

    snprintf(soname, sizeof soname, "libvips.so.%d", VIPS_LIBRARY_CURRENT - VIPS_LIBRARY_AGE);
    if (!(h = dlopen(soname, RTLD_NOW | RTLD_LOCAL))) {
        snprintf(vips_why, sizeof vips_why, "cannot load %s: %s", soname, dlerror());
        return false;
    }
#define VIPS_SYM(field, name)                                                                                         \
    do {                                                                                                              \
        if (!missing && !(*(void **)&V.field = dlsym(h, name)))                                                       \
            missing = name;                                                                                           \
    } while (0)
    VIPS_SYM(init, "vips_init");
    VIPS_SYM(version, "vips_version");
    VIPS_SYM(error_buffer, "vips_error_buffer");
    VIPS_SYM(error_clear, "vips_error_clear");
    VIPS_SYM(block_untrusted_set, "vips_block_untrusted_set");
    VIPS_SYM(operation_block_set, "vips_operation_block_set");
    VIPS_SYM(cache_set_max, "vips_cache_set_max");
    VIPS_SYM(concurrency_set, "vips_concurrency_set");
    VIPS_SYM(leak_set, "vips_leak_set");
    VIPS_SYM(foreign_find_load_buffer, "vips_foreign_find_load_buffer");
    VIPS_SYM(image_new_from_buffer, "vips_image_new_from_buffer");
    VIPS_SYM(image_get_width, "vips_image_get_width");
    VIPS_SYM(image_get_height, "vips_image_get_height");
    VIPS_SYM(image_get_n_pages, "vips_image_get_n_pages");
    VIPS_SYM(image_get_page_height, "vips_image_get_page_height");
    VIPS_SYM(image_hasalpha, "vips_image_hasalpha");
    VIPS_SYM(thumbnail_buffer, "vips_thumbnail_buffer");
    VIPS_SYM(webpsave_buffer, "vips_webpsave_buffer");
    VIPS_SYM(jpegsave_buffer, "vips_jpegsave_buffer");
    VIPS_SYM(object_unref, "g_object_unref"); /* (GObject and GLib: libvips' own dependencies, found through it) */
    VIPS_SYM(free, "g_free");
    VIPS_SYM(log_set_handler, "g_log_set_handler");
#undef VIPS_SYM
    if (missing) {
        snprintf(vips_why, sizeof vips_why, "%s has no %s", soname, missing);
        dlclose(h);
        return false;
    }
    if (V.version(3) - V.version(5) != VIPS_LIBRARY_CURRENT - VIPS_LIBRARY_AGE) {
        snprintf(vips_why, sizeof vips_why, "%s has ABI version %d, chatto was built for %d", soname,
                 V.version(3) - V.version(5), VIPS_LIBRARY_CURRENT - VIPS_LIBRARY_AGE);
        dlclose(h);
        return false;
    }
    return true; /* (never closed: libvips cannot be shut down and started again) */
}

/* libvips' warnings (a damaged tile, a truncated file) are about one request's image: our debug log, not stderr */
static void
chatto_vips_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ctx)
{
    (void)domain;
    (void)level;
    (void)ctx;
    log_debug("assets: libvips: %s", msg);
}

static void
vips_start(void)
{
    static const char *const allowed[] = { "VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp",
                                           "VipsForeignLoadNsgif" };

    if (!vips_load()) {
        log_error("assets: libvips cannot be used, so images are not resized: %s", vips_why);
        return;
    }
    if (V.init("chatto") != 0) {
        snprintf(vips_why, sizeof vips_why, "libvips did not start: %s", V.error_buffer());
        log_error("assets: %s", vips_why);
        V.error_clear();
        return;
    }
    /* decoders for formats people share as pictures only: everything else (PDF, SVG, TIFF, ImageMagick's dozens)
     * is attack surface we do not need */
    V.block_untrusted_set(TRUE);
    V.operation_block_set("VipsForeignLoad", TRUE);
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        V.operation_block_set(allowed[i], FALSE);
    V.cache_set_max(0); /* the operation cache would keep decoded pixels alive between requests */
    V.concurrency_set(1); /* parallelism comes from requests; RESIZE_JOBS bounds them */
    V.leak_set(FALSE);
    V.log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG,
                      chatto_vips_log, NULL);
    vips_ok = true;
}

/* libvips, started on first use; CH_EUNAVAIL (the image stays as it was uploaded) if it cannot be. */
static enum ch_status
vips_ready(struct ch_err *err)
{
    pthread_once(&vips_once, vips_start);
    if (!vips_ok)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "images cannot be resized on this server: %s", vips_why);
    return CH_OK;
}

enum ch_status
resize_init(struct assets *a, struct ch_err *err)
{
    (void)err;
    pthread_mutex_init(&a->resize.mu, NULL);
    pthread_cond_init(&a->resize.cv, NULL);
    return CH_OK;
}

void
resize_fini(struct assets *a)
{
    pthread_mutex_destroy(&a->resize.mu);
    pthread_cond_destroy(&a->resize.cv);
}

static void
gate_enter(struct assets *a)
{
    pthread_mutex_lock(&a->resize.mu);
    while (a->resize.busy >= RESIZE_JOBS)
        pthread_cond_wait(&a->resize.cv, &a->resize.mu);
    a->resize.busy++;
    pthread_mutex_unlock(&a->resize.mu);
}

static void
gate_leave(struct assets *a)
{
    pthread_mutex_lock(&a->resize.mu);
    a->resize.busy--;
    pthread_cond_signal(&a->resize.cv);
    pthread_mutex_unlock(&a->resize.mu);
}

/* libvips' last error as ours (its messages name the decoder and what was wrong with the data). */
static enum ch_status
vips_fail(struct ch_err *err, enum ch_status s, const char *what)
{
    char msg[200];
    size_t n;

    snprintf(msg, sizeof msg, "%s", V.error_buffer());
    V.error_clear();
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return ch_err_set(err, s, "image", "%s%s%s", what, *msg ? ": " : "", msg);
}

/* ---- the transform ---- */

const char *
assets_fit_name(enum assets_fit f)
{
    switch (f) {
    case ASSETS_FIT_CONTAIN: return "contain";
    case ASSETS_FIT_COVER: return "cover";
    case ASSETS_FIT_EXACT: return "exact";
    }
    return "contain";
}

enum ch_status
assets_image_spec_parse(const char *s, struct assets_image_spec *out, struct ch_err *err)
{
    char *end;
    long w, h;

    errno = 0;
    if (!s || !(*s >= '1' && *s <= '9'))
        return ch_err_set(err, CH_EINVAL, "size", "expected <width>x<height>/<fit>, e.g. 720x720/contain");
    w = strtol(s, &end, 10);
    if (*end != 'x' || !(end[1] >= '1' && end[1] <= '9'))
        return ch_err_set(err, CH_EINVAL, "size", "expected <width>x<height>/<fit>, e.g. 720x720/contain");
    h = strtol(end + 1, &end, 10);
    if (errno || w < 1 || h < 1 || w > ASSETS_IMAGE_DIM_MAX || h > ASSETS_IMAGE_DIM_MAX)
        return ch_err_set(err, CH_EINVAL, "size", "width and height must be 1 to %d", ASSETS_IMAGE_DIM_MAX);
    if (*end != '/')
        return ch_err_set(err, CH_EINVAL, "fit", "expected /contain, /cover or /exact after the size");
    end++;
    if (!strcmp(end, "contain"))
        out->fit = ASSETS_FIT_CONTAIN;
    else if (!strcmp(end, "cover"))
        out->fit = ASSETS_FIT_COVER;
    else if (!strcmp(end, "exact"))
        out->fit = ASSETS_FIT_EXACT;
    else
        return ch_err_set(err, CH_EINVAL, "fit", "fit must be contain, cover or exact");
    out->width = (int)w;
    out->height = (int)h;
    return CH_OK;
}

/* Measure an encoded image without decoding it: refuse what we will not decode. */
static enum ch_status
probe(const void *buf, size_t len, int64_t max_pixels, bool *alpha, int *pages, struct ch_err *err)
{
    const char *loader = V.foreign_find_load_buffer(buf, len);
    VipsImage *im;
    int64_t w, h, n;

    if (!loader) {
        V.error_clear();
        return ch_err_set(err, CH_EINVAL, "contentType", "not a JPEG, PNG, WebP or GIF image");
    }
    if (!(im = V.image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL)))
        return vips_fail(err, CH_EINVAL, "the image cannot be read");
    w = V.image_get_width(im);
    h = V.image_get_height(im);
    n = V.image_get_n_pages(im);
    *alpha = V.image_hasalpha(im);
    V.object_unref(im);
    if (n < 1)
        n = 1;
    if (w < 1 || h < 1)
        return ch_err_set(err, CH_EINVAL, "image", "the image has no pixels");
    if (w * h > max_pixels)
        return ch_err_set(err, CH_ELIMIT, "image",
                          "the image is %lldx%lld, more than %lld pixels (core.assets.max_image_pixels)",
                          (long long)w, (long long)h, (long long)max_pixels);
    if (n > 1 && (n > RESIZE_MAX_FRAMES || w * h * n > max_pixels * 5 / 2)) {
        n = 1; /* an animation too long to convert whole: its first frame stands for it */
    }
    *pages = (int)n;
    return CH_OK;
}

enum ch_status
resize_image(struct assets *a, const void *buf, size_t len, int w, int h, enum assets_fit fit, bool webp,
             struct resize_out *out, struct ch_err *err)
{
    VipsImage *t = NULL;
    void *obuf = NULL;
    size_t olen = 0;
    bool alpha = false;
    int pages = 1, rc;
    enum ch_status st;
    char opts[16];

    memset(out, 0, sizeof *out);
    if ((st = vips_ready(err)) != CH_OK || (st = probe(buf, len, a->max_image_pixels, &alpha, &pages, err)) != CH_OK)
        return st;
    /* every frame of an animation (only its loaders know "n") */
    opts[0] = '\0';
    if (pages > 1)
        snprintf(opts, sizeof opts, "n=%d", pages);
    gate_enter(a);
    rc = V.thumbnail_buffer((void *)buf, len, &t, w, "height", h,
                               "size", fit == ASSETS_FIT_CONTAIN ? VIPS_SIZE_DOWN
                                       : fit == ASSETS_FIT_EXACT ? VIPS_SIZE_FORCE : VIPS_SIZE_BOTH,
                               "crop", fit == ASSETS_FIT_COVER ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE,
                               "option_string", opts, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (rc != 0) {
        gate_leave(a);
        return vips_fail(err, CH_EINVAL, "the image cannot be decoded");
    }
    if (webp || alpha || pages > 1) {
        rc = V.webpsave_buffer(t, &obuf, &olen, "lossless", TRUE, "strip", TRUE, NULL);
        snprintf(out->content_type, sizeof out->content_type, "image/webp");
    } else {
        rc = V.jpegsave_buffer(t, &obuf, &olen, "Q", 75, "strip", TRUE, "optimize_coding", TRUE, NULL);
        snprintf(out->content_type, sizeof out->content_type, "image/jpeg");
    }
    out->width = V.image_get_width(t);
    out->height = V.image_get_page_height(t);
    V.object_unref(t);
    gate_leave(a);
    if (rc != 0)
        return vips_fail(err, CH_EINVAL, "the resized image cannot be encoded");
    /* libvips' buffers come from g_malloc: hand back one of ours */
    if (!(out->data = malloc(olen ? olen : 1))) {
        V.free(obuf);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    memcpy(out->data, obuf, olen);
    out->len = olen;
    V.free(obuf);
    return CH_OK;
}

/* ---- reading a whole (small) object ---- */

/* The bytes of an object in one malloc'd buffer (at most max bytes), digest checked by the reader. */
static enum ch_status
obj_read_all(struct store *st, enum store_stream s, const struct store_obj_info *info, uint64_t max, char **out,
             size_t *len, struct ch_err *err)
{
    struct store_obj_reader *rd = NULL;
    size_t used = 0;
    char *buf;
    enum ch_status rc;

    *out = NULL;
    *len = 0;
    if (info->size > max)
        return ch_err_set(err, CH_EINTERNAL, NULL, "object %s is larger than %llu bytes", info->name,
                          (unsigned long long)max);
    if (!(buf = malloc(info->size ? info->size : 1)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if ((rc = store_obj_reader_open(st, s, info, &rd, err)) != CH_OK) {
        free(buf);
        return rc;
    }
    for (;;) {
        char *piece = NULL;
        size_t n = 0;
        if ((rc = store_obj_read(rd, &piece, &n, err)) != CH_OK || n == 0)
            break;
        if (n > info->size - used) {
            free(piece);
            rc = ch_err_set(err, CH_EINTERNAL, NULL, "object %s is longer than its description", info->name);
            break;
        }
        memcpy(buf + used, piece, n);
        used += n;
        free(piece);
    }
    store_obj_reader_close(rd);
    if (rc == CH_OK && used != info->size)
        rc = ch_err_set(err, CH_EINTERNAL, NULL, "object %s is shorter than its description", info->name);
    if (rc != CH_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = used;
    return CH_OK;
}

/* ---- resized attachments ---- */

static void
cache_name(const char *asset_id, const struct assets_image_spec *spec, char out[STORE_OBJ_NAME_MAX + 1])
{
    char params[48], hex[65];

    snprintf(params, sizeof params, "%dx%d_%s", spec->width, spec->height, assets_fit_name(spec->fit));
    crypto_sha256_hex(params, strlen(params), hex);
    snprintf(out, STORE_OBJ_NAME_MAX + 1, "attachment-stable-v2.%s.%.16s", asset_id, hex);
}

/* A size read back from ASSET_CACHE, if it is there. */
static bool
cache_get(struct assets *a, const char *name, struct resize_out *out)
{
    struct store_obj_info info;
    struct ch_err e = { 0 };
    char *buf = NULL;
    size_t used = 0;

    if (store_obj_get_info(a->store, STORE_S_ASSET_CACHE, name, &info, &e) != CH_OK ||
        obj_read_all(a->store, STORE_S_ASSET_CACHE, &info, 64u << 20, &buf, &used, &e) != CH_OK)
        return false;
    memset(out, 0, sizeof *out);
    out->data = buf;
    out->len = used;
    /* we only ever cache our own JPEGs and WebPs */
    snprintf(out->content_type, sizeof out->content_type, "%s",
             used > 12 && !memcmp(buf + 8, "WEBP", 4) ? "image/webp" : "image/jpeg");
    return true;
}

/* Remember in the file's record that this size is cached (so erasing the file erases it), then store it. A file
 * that was erased meanwhile, or has its share of sizes cached already, is not cached. */
static void
cache_put(struct assets *a, const char *asset_id, const char *name, const struct resize_out *img)
{
    struct ch_err e = { 0 };

    for (int attempt = 0; attempt < 3; attempt++) {
        cJSON *rec = NULL, *list;
        uint64_t rev = 0;
        bool known = false;
        enum ch_status st;

        if (rec_load(a, STORE_B_ASSETS, asset_id, &rec, &rev, &e) != CH_OK)
            return;
        if (!cJSON_IsArray(list = cJSON_GetObjectItemCaseSensitive(rec, "cached"))) {
            cJSON_DeleteItemFromObjectCaseSensitive(rec, "cached");
            list = cJSON_AddArrayToObject(rec, "cached");
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, list)
            known = known || (cJSON_IsString(it) && !strcmp(it->valuestring, name));
        if (!known && cJSON_GetArraySize(list) >= RESIZE_CACHE_MAX) {
            cJSON_Delete(rec);
            return;
        }
        if (!known) {
            cJSON_AddItemToArray(list, cJSON_CreateString(name));
            st = rec_save(a, STORE_B_ASSETS, asset_id, rec, rev, NULL, &e);
            cJSON_Delete(rec);
            if (st == CH_ECONFLICT)
                continue;
            if (st != CH_OK)
                return;
        } else {
            cJSON_Delete(rec);
        }
        struct store_obj_info info;
        if (store_obj_put(a->store, STORE_S_ASSET_CACHE, name, img->content_type, img->data, img->len,
                          128 * 1024, &info, &e) != CH_OK)
            log_warn("assets: cannot cache %s: %s", name, e.msg);
        return;
    }
}

void
resize_cache_erase(struct assets *a, const cJSON *rec)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(rec, "cached"), *it;
    struct ch_err e = { 0 };

    cJSON_ArrayForEach(it, list)
        if (cJSON_IsString(it) && store_obj_delete(a->store, STORE_S_ASSET_CACHE, it->valuestring, &e) != CH_OK)
            log_warn("assets: cannot erase the cached size %s: %s", it->valuestring, e.msg);
}

bool
assets_image_offered(const struct assets *a, const char *content_type, int width, int height)
{
    static const char *const types[] = { "image/png", "image/jpeg", "image/gif", "image/webp" };
    bool known = false;

    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        known = known || (content_type && !strcmp(content_type, types[i]));
    return known && width > 0 && height > 0 && (int64_t)width * height <= a->max_image_pixels;
}

static void
image_etag(const char *sha256, const struct assets_image_spec *spec, char *out, size_t len)
{
    snprintf(out, len, "\"%.64s-%dx%d-%s\"", sha256, spec->width, spec->height, assets_fit_name(spec->fit));
}

/* Read a whole file (at most core.assets.max_upload_size) into memory. */
static enum ch_status
read_whole(struct assets *a, const char *uid, const char *asset_id, char **buf, size_t *len, struct ch_err *err)
{
    struct assets_file *f = NULL;
    const struct assets_file_meta *m;
    enum ch_status st;
    size_t used = 0;

    *buf = NULL;
    if ((st = assets_open(a, uid, asset_id, &f, err)) != CH_OK)
        return st;
    m = assets_file_meta(f);
    if (!(*buf = malloc(m->size ? m->size : 1))) {
        assets_file_close(f);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if ((st = assets_file_seek(f, 0, m->size, err)) != CH_OK)
        goto out;
    for (;;) {
        char *piece = NULL;
        size_t n = 0;
        if ((st = assets_file_read(f, &piece, &n, err)) != CH_OK)
            goto out;
        if (n == 0)
            break;
        if (n > m->size - used) {
            free(piece);
            st = ch_err_set(err, CH_EINTERNAL, NULL, "file %s is longer than recorded", asset_id);
            goto out;
        }
        memcpy(*buf + used, piece, n);
        used += n;
        free(piece);
    }
    *len = used;
out:
    assets_file_close(f);
    if (st != CH_OK) {
        free(*buf);
        *buf = NULL;
    }
    return st;
}

enum ch_status
assets_image(struct assets *a, const char *uid, const char *asset_id, const struct assets_image_spec *spec,
             const char *if_none_match, struct assets_image *out, struct ch_err *err)
{
    cJSON *rec = NULL;
    uint64_t rev = 0;
    char name[STORE_OBJ_NAME_MAX + 1], *orig = NULL;
    size_t olen = 0;
    struct resize_out img;
    enum ch_status st;

    memset(out, 0, sizeof *out);
    if ((st = asset_visible(a, uid, asset_id, &rec, &rev, err)) != CH_OK)
        return st;
    if (!assets_image_offered(a, rec_str(rec, "contentType"), (int)rec_int(rec, "width"),
                              (int)rec_int(rec, "height"))) {
        bool big = rec_int(rec, "width") * rec_int(rec, "height") > a->max_image_pixels;
        st = big ? ch_err_set(err, CH_ELIMIT, "image", "the image is %lldx%lld, more than %lld pixels "
                              "(core.assets.max_image_pixels); download the file instead",
                              (long long)rec_int(rec, "width"), (long long)rec_int(rec, "height"),
                              (long long)a->max_image_pixels)
                 : ch_err_set(err, CH_EINVAL, "contentType", "%s is not an image that can be resized (JPEG, PNG, "
                              "WebP or GIF)", *rec_str(rec, "contentType") ? rec_str(rec, "contentType") : "the file");
        cJSON_Delete(rec);
        return st;
    }
    image_etag(rec_str(rec, "sha256"), spec, out->etag, sizeof out->etag);
    snprintf(out->filename, sizeof out->filename, "%s", rec_str(rec, "filename"));
    cJSON_Delete(rec);
    if (if_none_match && (strstr(if_none_match, out->etag) || !strcmp(if_none_match, "*"))) {
        out->not_modified = true;
        return CH_OK;
    }
    cache_name(asset_id, spec, name);
    if (a->cache && cache_get(a, name, &img)) {
        out->data = img.data;
        out->len = img.len;
        snprintf(out->content_type, sizeof out->content_type, "%s", img.content_type);
        return CH_OK;
    }
    if ((st = read_whole(a, uid, asset_id, &orig, &olen, err)) != CH_OK)
        return st;
    st = resize_image(a, orig, olen, spec->width, spec->height, spec->fit, false, &img, err);
    free(orig);
    if (st != CH_OK)
        return st;
    if (a->cache)
        cache_put(a, asset_id, name, &img);
    out->data = img.data;
    out->len = img.len;
    snprintf(out->content_type, sizeof out->content_type, "%s", img.content_type);
    return CH_OK;
}

void
assets_image_release(struct assets_image *img)
{
    if (!img)
        return;
    free(img->data);
    img->data = NULL;
    img->len = 0;
}

/* ---- avatars: object public/<id> in SERVER_ASSETS (upstream's name), a WebP of at most 256 x 256 ---- */

static void
avatar_name(const char *id, char out[STORE_OBJ_NAME_MAX + 1])
{
    snprintf(out, STORE_OBJ_NAME_MAX + 1, "public/%s", id);
}

enum ch_status
assets_avatar_put(struct assets *a, const void *data, size_t len, char id[ID_MAX + 1], struct ch_err *err)
{
    struct resize_out img;
    char name[STORE_OBJ_NAME_MAX + 1];
    enum ch_status st;

    if (len > ASSETS_AVATAR_INPUT_MAX)
        return ch_err_set(err, CH_EINVAL, "image.image", "an avatar image may be at most %d MB",
                          ASSETS_AVATAR_INPUT_MAX >> 20);
    if ((st = resize_image(a, data, len, ASSETS_AVATAR_DIM, ASSETS_AVATAR_DIM, ASSETS_FIT_CONTAIN, true, &img,
                           err)) != CH_OK)
        return st;
    id_new(id);
    avatar_name(id, name);
    struct store_obj_info info;
    st = store_obj_put(a->store, STORE_S_ASSETS, name, img.content_type, img.data, img.len, 128 * 1024, &info, err);
    free(img.data);
    return st;
}

void
assets_avatar_erase(struct assets *a, const char *id)
{
    char name[STORE_OBJ_NAME_MAX + 1];
    struct ch_err e = { 0 };

    if (!id || !id_valid(id))
        return;
    avatar_name(id, name);
    if (store_obj_delete(a->store, STORE_S_ASSETS, name, &e) != CH_OK)
        log_warn("assets: cannot erase avatar %s: %s", id, e.msg);
}

enum ch_status
assets_avatar_get(struct assets *a, const char *id, char **data, size_t *len, char etag[72], struct ch_err *err)
{
    struct store_obj_info info;
    char name[STORE_OBJ_NAME_MAX + 1], hex[65];
    enum ch_status st;

    *data = NULL;
    *len = 0;
    if (!id_valid(id))
        return ch_err_set(err, CH_ENOTFOUND, "avatar", "no such avatar");
    avatar_name(id, name);
    if ((st = store_obj_get_info(a->store, STORE_S_ASSETS, name, &info, err)) != CH_OK)
        return st == CH_ENOTFOUND ? ch_err_set(err, CH_ENOTFOUND, "avatar", "no such avatar") : st;
    if ((st = obj_read_all(a->store, STORE_S_ASSETS, &info, ASSETS_AVATAR_INPUT_MAX, data, len, err)) != CH_OK)
        return st;
    crypto_sha256_hex(*data, *len, hex);
    snprintf(etag, 72, "\"%s\"", hex);
    return CH_OK;
}
