/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Files people share. Resumable uploads (AssetUploadService: any process takes the next chunk, because the upload
 * session lives in KV and JetStream orders the chunks), the records of uploaded files, the signed tickets that
 * let a browser fetch a file, downloads in constant memory, attaching files to messages, and a janitor that
 * forgets abandoned uploads and files nobody attached. Bytes live in the object store SERVER_ASSETS (store.h),
 * records in the KV buckets chatto_uploads and chatto_assets. Names, shapes and limits follow upstream Chatto.
 *
 * Threads: HTTP worker threads call everything here; the janitor has a thread of its own. No lock of ours is
 * held across a NATS call (there is no lock but the janitor's stop flag).
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/ids.h"
#include "base/status.h"

struct assets;
struct store;
struct chat;
struct s3;

#define ASSETS_CHUNK_MAX (512 * 1024)   /* per UploadChunk, as upstream */
#define ASSETS_UPLOAD_TTL_MS (15 * 60 * 1000LL)         /* an upload nobody adds to for this long is dropped */
#define ASSETS_PENDING_TTL_MS (24 * 60 * 60 * 1000LL)   /* an uploaded file nobody attached for this long too */
#define ASSETS_MAX_PER_MESSAGE 10
#define ASSETS_FILENAME_MAX 255

struct assets_opts {
    struct store *store;
    struct chat *chat;
    const char *signing_secret; /* core.assets.signing_secret: signs download tickets (same on every process) */
    int64_t max_upload;         /* core.assets.max_upload_size */
    int64_t max_image_pixels;   /* core.assets.max_image_pixels: larger images are never decoded */
    bool cache;                 /* core.assets.cache.enabled: keep resized images in ASSET_CACHE (store_opts) */
    bool janitor;               /* run the janitor thread (off for CLI commands and fuzzing) */
    /* S3 (lib/s3): the client when core.assets.s3.endpoint is set, else NULL (borrowed; outlives assets). Files
     * record where their bytes are, so an S3 file is served whenever a client is given, whatever the backend. */
    struct s3 *s3;
    bool s3_backend;            /* core.assets.storage_backend = s3: completed uploads move to S3 */
};

enum ch_status assets_new(const struct assets_opts *o, struct assets **out, struct ch_err *err);
/* Stop the janitor and free. Accepts NULL. */
void assets_free(struct assets *a);

/* ---- uploads (the AssetUpload view is upstream's: uploadId, roomId, status, committedOffset, size,
 * maxChunkSize, sha256, expiresAt, assetId) ---- */

/* A new upload of size bytes with SHA-256 sha256 (64 lowercase hex) into room, for user uid, who must be a member
 * allowed to post. CH_ELIMIT (with *too_large set) over core.assets.max_upload_size. */
enum ch_status assets_create_upload(struct assets *a, const char *uid, const char *room, const char *filename,
                                    const char *content_type, int64_t size, const char *sha256, bool *too_large,
                                    cJSON **upload, struct ch_err *err);
/* Append len bytes at offset (which must be the committed offset; a repeat of the last chunk is answered as a
 * success). chunk_sha256 (hex), if not NULL, must match the bytes. */
enum ch_status assets_upload_chunk(struct assets *a, const char *uid, const char *upload_id, int64_t offset,
                                   const void *data, size_t len, const char *chunk_sha256, cJSON **upload,
                                   struct ch_err *err);
enum ch_status assets_get_upload(struct assets *a, const char *uid, const char *upload_id, cJSON **upload,
                                 struct ch_err *err);
/* Check every byte against the declared SHA-256 and make the file: *asset is its Asset view (for uid). */
enum ch_status assets_complete_upload(struct assets *a, const char *uid, const char *upload_id, cJSON **upload,
                                      cJSON **asset, struct ch_err *err);
enum ch_status assets_cancel_upload(struct assets *a, const char *uid, const char *upload_id, cJSON **upload,
                                    struct ch_err *err);

/* ---- files ---- */

/* The Asset view of a file in room (uid must be a member; an unattached file only for its uploader). */
enum ch_status assets_get(struct assets *a, const char *uid, const char *room, const char *asset_id, cJSON **asset,
                          struct ch_err *err);

/* Attach files to a new message: each must be uid's, uploaded into room, complete and not attached yet; they
 * become msg_id's, exclusively (two messages racing for one file: one wins). *attachments is the array the
 * message event records ({id, filename, contentType, size, width, height}). On any failure nothing is claimed. */
enum ch_status assets_claim(struct assets *a, const char *uid, const char *room, const char *msg_id,
                            const char *const *ids, size_t n, cJSON **attachments, struct ch_err *err);
/* Undo assets_claim (the message was not written after all). */
void assets_unclaim(struct assets *a, const char *msg_id, const char *const *ids, size_t n);
/* The message holding these files was deleted: erase their bytes and forget them. */
void assets_erase(struct assets *a, const char *const *ids, size_t n);

/* A URL for viewer to fetch a file: /assets/files/<id>?access=<ticket> with a ticket valid 23 to 24 hours
 * (identical within an hour, so browsers cache it); *expires_ms is when it stops working. No viewer: the bare
 * path, which works with the session cookie or a bearer token. */
void assets_url(const struct assets *a, const char *asset_id, const char *viewer, char *buf, size_t len,
                int64_t *expires_ms);
/* The user a ticket was made for, if it is ours, unexpired and for this file and, with spec, for this size of it
 * (spec NULL: the file itself). */
struct assets_image_spec;
enum ch_status assets_ticket_check(const struct assets *a, const char *ticket, const char *asset_id,
                                   const struct assets_image_spec *spec, char uid[ID_MAX + 1], struct ch_err *err);

/* ---- resized images: /assets/files/<id>/image/<W>x<H>/<fit> (resize.c) ---- */

enum assets_fit {
    ASSETS_FIT_CONTAIN, /* inside W x H, aspect kept, never enlarged */
    ASSETS_FIT_COVER,   /* exactly W x H, aspect kept, the middle cropped */
    ASSETS_FIT_EXACT,   /* exactly W x H, stretched */
};
#define ASSETS_IMAGE_DIM_MAX 2048
#define ASSETS_THUMB_DIM 720  /* the thumbnail message and file views offer: W x H contain */
#define ASSETS_AVATAR_DIM 256 /* avatars are stored at most this wide and high */

struct assets_image_spec {
    int width, height;
    enum assets_fit fit;
};
/* Parse the path tail "<W>x<H>/<fit>". */
enum ch_status assets_image_spec_parse(const char *s, struct assets_image_spec *out, struct ch_err *err);
const char *assets_fit_name(enum assets_fit f);
/* True if a file of this type and size (from its record) can be resized. */
bool assets_image_offered(const struct assets *a, const char *content_type, int width, int height);
/* The URL of a size of a file for viewer (a ticket naming the size; without viewer the bare path). */
void assets_image_url(const struct assets *a, const char *asset_id, const struct assets_image_spec *spec,
                      const char *viewer, char *buf, size_t len, int64_t *expires_ms);

struct assets_image {
    char *data; /* the encoded image (NULL when not_modified) */
    size_t len;
    char content_type[16]; /* image/jpeg or image/webp */
    char etag[96];
    char filename[ASSETS_FILENAME_MAX + 1]; /* the original's */
    bool not_modified;                      /* if_none_match named this very size */
};
/* A size of asset_id for uid (membership checked now): from ASSET_CACHE or made now. CH_EINVAL (field
 * contentType) for a file that is no image we resize, CH_EINVAL (field image) for a corrupt one, CH_ELIMIT for
 * one with more pixels than core.assets.max_image_pixels. */
enum ch_status assets_image(struct assets *a, const char *uid, const char *asset_id,
                            const struct assets_image_spec *spec, const char *if_none_match,
                            struct assets_image *out, struct ch_err *err);
void assets_image_release(struct assets_image *img);

/* ---- avatars (resize.c): a WebP of at most ASSETS_AVATAR_DIM square, object public/<id> ---- */

#define ASSETS_AVATAR_INPUT_MAX (10 << 20) /* the image a person uploads as their avatar */
/* Resize and store an avatar; *id names it. Errors as assets_image's, with field image.image. */
enum ch_status assets_avatar_put(struct assets *a, const void *data, size_t len, char id[ID_MAX + 1],
                                 struct ch_err *err);
/* Erase an avatar's bytes (a replaced or removed one). Failures are logged. */
void assets_avatar_erase(struct assets *a, const char *id);
/* An avatar's bytes (malloc'd) and ETag; CH_ENOTFOUND if there is none by that id. */
enum ch_status assets_avatar_get(struct assets *a, const char *id, char **data, size_t *len, char etag[72],
                                 struct ch_err *err);

/* ---- downloads ---- */

struct assets_file;
struct assets_file_meta {
    const char *filename, *content_type; /* as uploaded */
    uint64_t size;
    char etag[72];   /* "\"<sha256 hex>\"" */
    bool inline_ok;  /* a raster image browsers may show inline; anything else is a download */
    bool active;     /* HTML, SVG, XML: never rendered as a page of ours */
};
/* Open asset_id for uid: membership is checked now (an unattached file only for its uploader). */
enum ch_status assets_open(struct assets *a, const char *uid, const char *asset_id, struct assets_file **out,
                           struct ch_err *err);
const struct assets_file_meta *assets_file_meta(const struct assets_file *f);
/* Read bytes [from, from + len) piece by piece: call assets_file_read until *n is 0. The digest is checked when
 * the whole file is read. */
enum ch_status assets_file_seek(struct assets_file *f, uint64_t from, uint64_t len, struct ch_err *err);
enum ch_status assets_file_read(struct assets_file *f, char **piece, size_t *n, struct ch_err *err);
void assets_file_close(struct assets_file *f);

/* Run the janitor's pass once now (tests; the thread does it every few minutes). */
void assets_janitor_pass(struct assets *a, int64_t now_ms);
