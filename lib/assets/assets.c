/* SPDX-License-Identifier: MIT */
/*
 * Uploads, file records and attaching (assets.h). An upload session is a KV record; its bytes go straight to the
 * object store as the chunks of the object it will become ($O.SERVER_ASSETS.C.<nuid>), each appended with the
 * previous chunk's sequence as an expectation, so JetStream itself orders the chunks and refuses a second writer:
 * the record is only a summary and is rolled forward from the stream when a process died between the two writes.
 * Completing checks every byte against the declared SHA-256 and then writes the object's description, which is
 * what makes it visible (to us and to any NATS object-store client).
 *
 * With core.assets.storage_backend = s3, uploads are staged in the object store just the same (resumable, any
 * process takes the next chunk); completing then streams the checked chunks to S3 as attachments/<assetId>,
 * records "backend":"s3" in the file's record and erases the staged chunks. Every file record names its backend
 * (absent means nats), and reads, downloads and erases follow the record, not the configuration.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assets/assets.h"
#include "assets/assets_int.h"
#include "base/clock.h"
#include "base/parse.h"
#include "base/utf8.h"
#include "chat/chat.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "log/log.h"
#include "s3/s3.h"
#include "store/store.h"

#define KV_RETRIES 8

/* ---- records ---- */

const char *
rec_str(const cJSON *o, const char *name)
{
    return json_str_or(o, name, "");
}

int64_t
rec_int(const cJSON *o, const char *name)
{
    return json_int64_or(o, name, 0);
}

void
rec_set_str(cJSON *o, const char *name, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, name);
    cJSON_AddStringToObject(o, name, v ? v : "");
}

void
rec_set_int(cJSON *o, const char *name, int64_t v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, name);
    cJSON_AddNumberToObject(o, name, (double)v);
}

enum ch_status
rec_load(struct assets *a, enum store_bucket b, const char *key, cJSON **rec, uint64_t *rev, struct ch_err *err)
{
    char *val = NULL;
    size_t len = 0;
    enum ch_status st;

    *rec = NULL;
    if (!id_valid(key))
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such record");
    if ((st = store_kv_get(a->store, b, key, &val, &len, rev, err)) != CH_OK)
        return st;
    st = json_parse_object(val, len, 8, rec, err);
    free(val);
    if (st != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "a stored record is malformed");
    return CH_OK;
}

/* Write rec: create it (rev 0) or replace revision rev (CH_ECONFLICT if it moved on). */
enum ch_status
rec_save(struct assets *a, enum store_bucket b, const char *key, const cJSON *rec, uint64_t rev, uint64_t *newrev,
         struct ch_err *err)
{
    size_t len = 0;
    char *s = json_print(rec, &len);
    enum ch_status st;

    if (!s)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    st = rev ? store_kv_update(a->store, b, key, s, len, rev, newrev, err)
             : store_kv_create(a->store, b, key, s, len, newrev, err);
    free(s);
    return st;
}

/* ---- validation ---- */

/* The last path component, checked like any text a person typed (1-255 bytes), and not "." or "..". */
static enum ch_status
clean_filename(const char *in, char out[ASSETS_FILENAME_MAX + 1], struct ch_err *err)
{
    const char *base = in;
    enum ch_status st;

    for (const char *p = in; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    if ((st = utf8_clean_text("filename", base, ASSETS_FILENAME_MAX, ASSETS_FILENAME_MAX, false, false, out,
                              ASSETS_FILENAME_MAX + 1, err)) != CH_OK)
        return st;
    if (!strcmp(out, ".") || !strcmp(out, ".."))
        return ch_err_set(err, CH_EINVAL, "filename", "must be a file name, not %s", out);
    return CH_OK;
}

/* "type/subtype" in lower case, parameters dropped; empty means application/octet-stream. */
static enum ch_status
clean_type(const char *in, char out[128], struct ch_err *err)
{
    size_t n = strcspn(in ? in : "", ";"), slash = 0;

    while (n > 0 && in[n - 1] == ' ')
        n--;
    if (n == 0) {
        snprintf(out, 128, "application/octet-stream");
        return CH_OK;
    }
    if (n > 127)
        return ch_err_set(err, CH_EINVAL, "contentType", "must be a MIME type like image/png (at most 127 bytes)");
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '/' && !slash && i > 0) {
            slash = i;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr("!#$&^_.+-", c))) {
            return ch_err_set(err, CH_EINVAL, "contentType", "must be a MIME type like image/png");
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[n] = '\0';
    if (!slash || slash == n - 1)
        return ch_err_set(err, CH_EINVAL, "contentType", "must be a MIME type like image/png");
    return CH_OK;
}

/* ---- views ---- */

static const char *
status_name(const char *s)
{
    if (!strcmp(s, "open"))
        return "ASSET_UPLOAD_STATUS_OPEN";
    if (!strcmp(s, "completed"))
        return "ASSET_UPLOAD_STATUS_COMPLETED";
    if (!strcmp(s, "cancelled"))
        return "ASSET_UPLOAD_STATUS_CANCELLED";
    return "ASSET_UPLOAD_STATUS_OPEN"; /* completing: still open to the client until it is done */
}

static cJSON *
upload_view(const cJSON *rec)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "uploadId", rec_str(rec, "id"));
    cJSON_AddStringToObject(o, "roomId", rec_str(rec, "room"));
    cJSON_AddStringToObject(o, "status", status_name(rec_str(rec, "status")));
    json_add_int64_str(o, "committedOffset", rec_int(rec, "committed"));
    json_add_int64_str(o, "size", rec_int(rec, "size"));
    cJSON_AddNumberToObject(o, "maxChunkSize", ASSETS_CHUNK_MAX);
    cJSON_AddStringToObject(o, "sha256", rec_str(rec, "sha256"));
    json_add_time(o, "expiresAt", rec_int(rec, "expiresAt"));
    if (!strcmp(rec_str(rec, "status"), "completed"))
        cJSON_AddStringToObject(o, "assetId", rec_str(rec, "assetId"));
    return o;
}

static void
add_url(const struct assets *a, cJSON *o, const char *name, const char *asset_id, const char *viewer)
{
    char url[512];
    int64_t exp = 0;
    cJSON *u;

    assets_url(a, asset_id, viewer, url, sizeof url, &exp);
    u = cJSON_AddObjectToObject(o, name);
    cJSON_AddStringToObject(u, "url", url);
    if (exp)
        json_add_time(u, "expiresAt", exp);
}

cJSON *
asset_view(const struct assets *a, const cJSON *rec, const char *viewer)
{
    cJSON *o = cJSON_CreateObject();
    const char *id = rec_str(rec, "id");

    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "filename", rec_str(rec, "filename"));
    cJSON_AddStringToObject(o, "contentType", rec_str(rec, "contentType"));
    json_add_int64_str(o, "size", rec_int(rec, "size"));
    if (rec_int(rec, "width") > 0) {
        cJSON_AddNumberToObject(o, "width", (double)rec_int(rec, "width"));
        cJSON_AddNumberToObject(o, "height", (double)rec_int(rec, "height"));
    }
    add_url(a, o, "assetUrl", id, viewer);
    if (assets_image_offered(a, rec_str(rec, "contentType"), (int)rec_int(rec, "width"), (int)rec_int(rec, "height"))) {
        const struct assets_image_spec thumb = { ASSETS_THUMB_DIM, ASSETS_THUMB_DIM, ASSETS_FIT_CONTAIN };
        char url[512];
        int64_t exp = 0;
        cJSON *u = cJSON_AddObjectToObject(o, "thumbnailAssetUrl");
        assets_image_url(a, id, &thumb, viewer, url, sizeof url, &exp);
        cJSON_AddStringToObject(u, "url", url);
        if (exp)
            json_add_time(u, "expiresAt", exp);
    }
    return o;
}

/* ---- uploads ---- */

enum ch_status
assets_create_upload(struct assets *a, const char *uid, const char *room, const char *filename,
                     const char *content_type, int64_t size, const char *sha256, bool *too_large, cJSON **upload,
                     struct ch_err *err)
{
    char name[ASSETS_FILENAME_MAX + 1], type[128], id[ID_LEN + 1], nuid[STORE_OBJ_NUID_LEN + 1], lim[32];
    enum ch_status st;
    cJSON *rec;

    *upload = NULL;
    *too_large = false;
    if ((st = id_check("roomId", room, err)) != CH_OK || (st = clean_filename(filename, name, err)) != CH_OK ||
        (st = clean_type(content_type, type, err)) != CH_OK)
        return st;
    if (size < 0)
        return ch_err_set(err, CH_EINVAL, "size", "must be 0 or more");
    if (!crypto_sha256_hex_valid(sha256))
        return ch_err_set(err, CH_EINVAL, "sha256", "must be the file's SHA-256 as 64 lowercase hex digits");
    if (size > a->max_upload) {
        *too_large = true;
        fmt_size(a->max_upload, lim, sizeof lim);
        return ch_err_set(err, CH_ELIMIT, "size", "the file is larger than this server accepts (%s, "
                          "core.assets.max_upload_size)", lim);
    }
    if ((st = chat_check_member(a->chat, uid, room, true, err)) != CH_OK)
        return st;
    id_new(id);
    store_obj_nuid(nuid);
    rec = cJSON_CreateObject();
    rec_set_str(rec, "id", id);
    rec_set_str(rec, "room", room);
    rec_set_str(rec, "user", uid);
    rec_set_str(rec, "filename", name);
    rec_set_str(rec, "contentType", type);
    rec_set_int(rec, "size", size);
    rec_set_str(rec, "sha256", sha256);
    rec_set_str(rec, "status", "open");
    rec_set_int(rec, "committed", 0);
    rec_set_int(rec, "lastSeq", 0);
    rec_set_str(rec, "nuid", nuid);
    rec_set_int(rec, "expiresAt", clock_wall_ms() + ASSETS_UPLOAD_TTL_MS);
    rec_set_int(rec, "createdAt", clock_wall_ms());
    st = rec_save(a, STORE_B_UPLOADS, id, rec, 0, NULL, err);
    if (st == CH_OK)
        *upload = upload_view(rec);
    cJSON_Delete(rec);
    return st;
}

/* Load uid's upload (someone else's is "not found": ids are not secrets, but uploads are private). */
static enum ch_status
load_upload(struct assets *a, const char *uid, const char *upload_id, cJSON **rec, uint64_t *rev,
            struct ch_err *err)
{
    enum ch_status st;

    if (!upload_id || !id_valid(upload_id))
        return ch_err_set(err, CH_EINVAL, "uploadId", "not a valid id");
    st = rec_load(a, STORE_B_UPLOADS, upload_id, rec, rev, err);
    if (st == CH_ENOTFOUND || (st == CH_OK && strcmp(rec_str(*rec, "user"), uid) != 0)) {
        cJSON_Delete(*rec);
        *rec = NULL;
        return ch_err_set(err, CH_ENOTFOUND, "uploadId", "no such upload");
    }
    return st;
}

static enum ch_status
check_open(const cJSON *rec, struct ch_err *err)
{
    const char *s = rec_str(rec, "status");

    if (!strcmp(s, "completed"))
        return ch_err_set(err, CH_ECONFLICT, "uploadId", "the upload is completed already");
    if (!strcmp(s, "cancelled"))
        return ch_err_set(err, CH_ECONFLICT, "uploadId", "the upload was cancelled");
    if (rec_int(rec, "expiresAt") <= clock_wall_ms())
        return ch_err_set(err, CH_ECONFLICT, "uploadId", "the upload expired (uploads idle for 15 minutes are "
                          "dropped); start a new one");
    return CH_OK;
}

/* Bring the record up to the chunks in the stream (a process may have died between appending a chunk and
 * updating the record). */
static enum ch_status
roll_forward(struct assets *a, cJSON *rec, struct ch_err *err)
{
    uint64_t seq = 0, off = 0;
    size_t len = 0;
    enum ch_status st = store_obj_last_chunk(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), &seq, &len, &off, err);

    if (st == CH_ENOTFOUND) {
        ch_err_clear(err);
        return CH_OK;
    }
    if (st != CH_OK)
        return st;
    if (seq <= (uint64_t)rec_int(rec, "lastSeq"))
        return CH_OK;
    if (off == UINT64_MAX)
        return ch_err_set(err, CH_EINTERNAL, NULL, "an upload chunk has no offset");
    rec_set_int(rec, "committed", (int64_t)(off + len));
    rec_set_int(rec, "lastSeq", (int64_t)seq);
    rec_set_int(rec, "lastOffset", (int64_t)off);
    rec_set_str(rec, "lastSha", "");
    return CH_OK;
}

enum ch_status
assets_upload_chunk(struct assets *a, const char *uid, const char *upload_id, int64_t offset, const void *data,
                    size_t len, const char *chunk_sha256, cJSON **upload, struct ch_err *err)
{
    cJSON *rec = NULL;
    uint64_t rev = 0, seq = 0;
    char sha[CRYPTO_SHA256_HEX];
    enum ch_status st;

    *upload = NULL;
    if (len == 0 || len > ASSETS_CHUNK_MAX)
        return ch_err_set(err, CH_EINVAL, "content", "a chunk is 1 to %d bytes", ASSETS_CHUNK_MAX);
    if (offset < 0)
        return ch_err_set(err, CH_EINVAL, "offset", "must be 0 or more");
    if (chunk_sha256 && !crypto_sha256_hex_valid(chunk_sha256))
        return ch_err_set(err, CH_EINVAL, "chunkSha256", "must be the chunk's SHA-256 as 64 lowercase hex digits");
    crypto_sha256_hex(data, len, sha);
    if (chunk_sha256 && strcmp(sha, chunk_sha256) != 0)
        return ch_err_set(err, CH_EINVAL, "chunkSha256", "does not match the chunk's bytes (corrupted in transit?)");
    if ((st = load_upload(a, uid, upload_id, &rec, &rev, err)) != CH_OK)
        goto out;
    if ((st = check_open(rec, err)) != CH_OK)
        goto out;
    /* The record is trusted first; only when it disagrees with the request or with the stream (a process died
     * between appending a chunk and updating the record) is it rolled forward from the stream, which costs a
     * read of the last chunk. */
    for (int pass = 0;; pass++) {
        int64_t committed = rec_int(rec, "committed");
        if (offset == rec_int(rec, "lastOffset") && offset + (int64_t)len == committed &&
            rec_int(rec, "lastSeq") > 0 && !strcmp(rec_str(rec, "lastSha"), sha)) {
            *upload = upload_view(rec); /* a retry of the chunk we have: done already */
            goto out;
        }
        if (offset != committed && pass == 0) {
            if ((st = roll_forward(a, rec, err)) != CH_OK)
                goto out;
            continue;
        }
        if (offset != committed) {
            st = ch_err_set(err, CH_ECONFLICT, "offset", "expected %" PRId64 " (the upload's committedOffset; "
                            "GetUpload says where to resume)", committed);
            goto out;
        }
        if (offset + (int64_t)len > rec_int(rec, "size")) {
            st = ch_err_set(err, CH_EINVAL, "content", "goes past the upload's declared size of %" PRId64 " bytes",
                            rec_int(rec, "size"));
            goto out;
        }
        st = store_obj_put_chunk(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), data, len,
                                 (uint64_t)rec_int(rec, "lastSeq"), (uint64_t)offset, &seq, err);
        if (st == CH_ECONFLICT && pass == 0) {
            ch_err_clear(err);
            if ((st = roll_forward(a, rec, err)) != CH_OK)
                goto out;
            continue; /* the record was behind the stream: look again */
        }
        if (st == CH_ECONFLICT)
            st = ch_err_set(err, CH_ECONFLICT, "offset", "another chunk of this upload was written at the same time; "
                            "GetUpload says where to resume");
        if (st != CH_OK)
            goto out;
        break;
    }
    /* the chunk is in; the record follows (if it moved on meanwhile, only ever forwards) */
    for (int i = 0; i < KV_RETRIES; i++) {
        rec_set_int(rec, "committed", offset + (int64_t)len);
        rec_set_int(rec, "lastSeq", (int64_t)seq);
        rec_set_int(rec, "lastOffset", offset);
        rec_set_str(rec, "lastSha", sha);
        rec_set_int(rec, "expiresAt", clock_wall_ms() + ASSETS_UPLOAD_TTL_MS);
        st = rec_save(a, STORE_B_UPLOADS, upload_id, rec, rev, NULL, err);
        if (st != CH_ECONFLICT)
            break;
        cJSON_Delete(rec);
        if ((st = load_upload(a, uid, upload_id, &rec, &rev, err)) != CH_OK)
            goto out;
        if (rec_int(rec, "lastSeq") >= (int64_t)seq) {
            st = CH_OK;
            break;
        }
    }
    if (st == CH_OK)
        *upload = upload_view(rec);
out:
    cJSON_Delete(rec);
    return st;
}

enum ch_status
assets_get_upload(struct assets *a, const char *uid, const char *upload_id, cJSON **upload, struct ch_err *err)
{
    cJSON *rec = NULL;
    uint64_t rev = 0;
    enum ch_status st;

    *upload = NULL;
    if ((st = load_upload(a, uid, upload_id, &rec, &rev, err)) != CH_OK)
        return st;
    if (!strcmp(rec_str(rec, "status"), "open") && (st = roll_forward(a, rec, err)) != CH_OK) {
        cJSON_Delete(rec);
        return st;
    }
    *upload = upload_view(rec);
    cJSON_Delete(rec);
    return CH_OK;
}

enum ch_status
assets_cancel_upload(struct assets *a, const char *uid, const char *upload_id, cJSON **upload, struct ch_err *err)
{
    cJSON *rec = NULL;
    uint64_t rev = 0;
    enum ch_status st;

    *upload = NULL;
    for (int i = 0; i < KV_RETRIES; i++) {
        cJSON_Delete(rec);
        rec = NULL;
        if ((st = load_upload(a, uid, upload_id, &rec, &rev, err)) != CH_OK)
            return st;
        const char *s = rec_str(rec, "status");
        if (!strcmp(s, "cancelled"))
            break;
        if (!strcmp(s, "completed") || !strcmp(s, "completing")) {
            cJSON_Delete(rec);
            return ch_err_set(err, CH_ECONFLICT, "uploadId", "the upload is completed already");
        }
        rec_set_str(rec, "status", "cancelled");
        rec_set_int(rec, "expiresAt", clock_wall_ms() + ASSETS_UPLOAD_TTL_MS);
        st = rec_save(a, STORE_B_UPLOADS, upload_id, rec, rev, NULL, err);
        if (st == CH_OK)
            break;
        if (st != CH_ECONFLICT) {
            cJSON_Delete(rec);
            return st;
        }
    }
    /* the bytes go now; if this fails the janitor tries again later */
    store_obj_erase_chunks(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), NULL);
    *upload = upload_view(rec);
    cJSON_Delete(rec);
    return CH_OK;
}

/* Read every chunk of the upload back: its size, chunk count and SHA-256 (and the first bytes, for images). */
static enum ch_status
digest_chunks(struct assets *a, const char *nuid, uint64_t *size, uint64_t *chunks, unsigned char sum[32],
              struct image_size *img, struct ch_err *err)
{
    struct crypto_sha256 sha;
    uint64_t seq = 0;
    enum ch_status st;

    *size = *chunks = 0;
    crypto_sha256_init(&sha);
    for (;;) {
        char *data = NULL;
        size_t len = 0;
        st = store_obj_next_chunk(a->store, STORE_S_ASSETS, nuid, seq, &data, &len, &seq, err);
        if (st == CH_ENOTFOUND) {
            ch_err_clear(err);
            break;
        }
        if (st != CH_OK)
            return st;
        if (*chunks == 0)
            image_sniff(data, len, img);
        crypto_sha256_update(&sha, (const unsigned char *)data, len);
        *size += len;
        (*chunks)++;
        free(data);
    }
    crypto_sha256_final(&sha, sum);
    return CH_OK;
}

/* ---- S3 ---- */

void
asset_s3_key(const char *asset_id, char out[ASSET_S3_KEY_MAX])
{
    snprintf(out, ASSET_S3_KEY_MAX, "attachments/%s", asset_id);
}

enum ch_status
asset_s3(struct assets *a, const char *asset_id, struct s3 **out, struct ch_err *err)
{
    if (!a->s3)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "file %s is stored in S3, but this server has no S3 settings "
                          "(core.assets.s3.endpoint and the rest of core.assets.s3)", asset_id);
    *out = a->s3;
    return CH_OK;
}

/* The staged chunks of an upload, one by one, as the body of the S3 put. */
struct chunk_pull {
    struct assets *a;
    const char *nuid;
    uint64_t seq;
};

static enum ch_status
pull_chunk(void *ctx, char **piece, size_t *n, struct ch_err *err)
{
    struct chunk_pull *p = ctx;
    enum ch_status st = store_obj_next_chunk(p->a->store, STORE_S_ASSETS, p->nuid, p->seq, piece, n, &p->seq, err);

    if (st == CH_ENOTFOUND) {
        ch_err_clear(err);
        *piece = NULL;
        *n = 0;
        return CH_OK;
    }
    return st;
}

/* Copy an upload's checked chunks to S3. S3 checks them once more against the SHA-256 we sign. */
static enum ch_status
move_to_s3(struct assets *a, const cJSON *rec, const char *asset_id, uint64_t size, struct ch_err *err)
{
    struct chunk_pull p = { .a = a, .nuid = rec_str(rec, "nuid") };
    char key[ASSET_S3_KEY_MAX];
    struct ch_err e = { 0 };
    struct s3 *s3 = NULL;
    enum ch_status st;

    if ((st = asset_s3(a, asset_id, &s3, err)) != CH_OK)
        return st;
    asset_s3_key(asset_id, key);
    if ((st = s3_bucket_ensure(s3, &e)) == CH_OK)
        st = s3_put(s3, key, size, rec_str(rec, "sha256"), rec_str(rec, "contentType"), pull_chunk, &p, &e);
    if (st == CH_OK)
        return CH_OK;
    log_warn("assets: cannot store file %s in S3: %s", asset_id, e.msg);
    if (st == CH_EUNAVAIL || st == CH_ENOTFOUND || st == CH_EINVAL)
        return ch_err_set(err, CH_EUNAVAIL, "uploadId", "the file storage (S3) is not available right now; the "
                          "upload is kept, call CompleteUpload again later");
    if (err)
        *err = e;
    return st;
}

enum ch_status
assets_complete_upload(struct assets *a, const char *uid, const char *upload_id, cJSON **upload, cJSON **asset,
                       struct ch_err *err)
{
    cJSON *rec = NULL, *arec = NULL;
    uint64_t rev = 0, size = 0, chunks = 0, arev = 0;
    unsigned char sum[32], want[32];
    char asset_id[ID_LEN + 1];
    struct image_size img = { 0 };
    enum ch_status st;

    *upload = *asset = NULL;
    /* claim the completion (status completing, with the file's id), so two racing calls make one file */
    for (int i = 0;; i++) {
        cJSON_Delete(rec);
        rec = NULL;
        if ((st = load_upload(a, uid, upload_id, &rec, &rev, err)) != CH_OK)
            return st;
        const char *s = rec_str(rec, "status");
        if (!strcmp(s, "completed")) {
            st = rec_load(a, STORE_B_ASSETS, rec_str(rec, "assetId"), &arec, &arev, err);
            if (st == CH_OK) {
                *upload = upload_view(rec);
                *asset = asset_view(a, arec, uid);
            } else if (st == CH_ENOTFOUND) {
                st = ch_err_set(err, CH_ENOTFOUND, "uploadId", "the file of this upload is gone");
            }
            goto out;
        }
        if (!strcmp(s, "completing")) {
            snprintf(asset_id, sizeof asset_id, "%s", rec_str(rec, "assetId"));
            break; /* someone started it and may have died: finish it (every step below is idempotent) */
        }
        if ((st = check_open(rec, err)) != CH_OK || (st = roll_forward(a, rec, err)) != CH_OK)
            goto out;
        if (rec_int(rec, "committed") != rec_int(rec, "size")) {
            st = ch_err_set(err, CH_ECONFLICT, "uploadId", "the upload is incomplete: %" PRId64 " of %" PRId64
                            " bytes", rec_int(rec, "committed"), rec_int(rec, "size"));
            goto out;
        }
        if ((st = chat_check_member(a->chat, uid, rec_str(rec, "room"), true, err)) != CH_OK)
            goto out;
        id_new(asset_id);
        rec_set_str(rec, "status", "completing");
        rec_set_str(rec, "assetId", asset_id);
        rec_set_str(rec, "backend", a->s3_backend ? "s3" : "nats"); /* one decision, whoever finishes it */
        st = rec_save(a, STORE_B_UPLOADS, upload_id, rec, rev, &rev, err);
        if (st == CH_OK)
            break;
        if (st != CH_ECONFLICT || i >= KV_RETRIES)
            goto out;
    }
    if ((st = digest_chunks(a, rec_str(rec, "nuid"), &size, &chunks, sum, &img, err)) != CH_OK)
        goto out;
    sodium_hex2bin(want, sizeof want, rec_str(rec, "sha256"), 64, NULL, NULL, NULL);
    if (size != (uint64_t)rec_int(rec, "size") || sodium_memcmp(sum, want, 32) != 0) {
        rec_set_str(rec, "status", "cancelled");
        rec_save(a, STORE_B_UPLOADS, upload_id, rec, rev, NULL, NULL);
        store_obj_erase_chunks(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), NULL);
        st = ch_err_set(err, CH_EINVAL, "sha256", "the uploaded bytes do not match the upload's SHA-256; the upload "
                        "is cancelled, start a new one");
        goto out;
    }
    bool to_s3 = !strcmp(rec_str(rec, "backend"), "s3");
    if (to_s3 && (st = move_to_s3(a, rec, asset_id, size, err)) != CH_OK)
        goto out; /* the upload stays "completing": CompleteUpload again finishes it */
    /* the file's record first, then its description (which makes the bytes visible), then the upload is done */
    arec = cJSON_CreateObject();
    rec_set_str(arec, "id", asset_id);
    rec_set_str(arec, "room", rec_str(rec, "room"));
    rec_set_str(arec, "owner", uid);
    rec_set_str(arec, "filename", rec_str(rec, "filename"));
    rec_set_str(arec, "contentType", rec_str(rec, "contentType"));
    rec_set_int(arec, "size", (int64_t)size);
    rec_set_str(arec, "sha256", rec_str(rec, "sha256"));
    rec_set_str(arec, "backend", to_s3 ? "s3" : "nats");
    rec_set_str(arec, "nuid", rec_str(rec, "nuid")); /* for s3: the staged chunks, erased with the file if left */
    rec_set_str(arec, "status", "pending");
    rec_set_int(arec, "createdAt", clock_wall_ms());
    rec_set_int(arec, "expiresAt", clock_wall_ms() + ASSETS_PENDING_TTL_MS);
    if (img.width > 0 && strncmp(rec_str(rec, "contentType"), "image/", 6) == 0) {
        rec_set_int(arec, "width", img.width);
        rec_set_int(arec, "height", img.height);
    }
    st = rec_save(a, STORE_B_ASSETS, asset_id, arec, 0, &arev, err);
    if (st == CH_EEXIST) {
        cJSON_Delete(arec);
        arec = NULL;
        st = rec_load(a, STORE_B_ASSETS, asset_id, &arec, &arev, err);
    }
    if (st != CH_OK)
        goto out;
    struct store_obj_info info = { .size = size, .chunks = chunks, .max_chunk_size = ASSETS_CHUNK_MAX };
    snprintf(info.name, sizeof info.name, "%s", asset_id);
    snprintf(info.nuid, sizeof info.nuid, "%s", rec_str(rec, "nuid"));
    memcpy(info.sha256, sum, 32);
    info.mtime_ms = clock_wall_ms();
    if (!to_s3 && (st = store_obj_put_info(a->store, STORE_S_ASSETS, &info, rec_str(rec, "contentType"), err)) != CH_OK)
        goto out;
    for (int i = 0; i < KV_RETRIES; i++) {
        rec_set_str(rec, "status", "completed");
        rec_set_int(rec, "expiresAt", clock_wall_ms() + ASSETS_PENDING_TTL_MS);
        st = rec_save(a, STORE_B_UPLOADS, upload_id, rec, rev, NULL, err);
        if (st != CH_ECONFLICT)
            break;
        cJSON_Delete(rec);
        rec = NULL;
        if ((st = load_upload(a, uid, upload_id, &rec, &rev, err)) != CH_OK)
            goto out;
    }
    if (st != CH_OK)
        goto out;
    /* the staged copy is S3's now; if this fails the janitor erases it when it drops the upload record */
    if (to_s3 && store_obj_erase_chunks(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), NULL) != CH_OK)
        log_warn("assets: the staged chunks of file %s stay until the janitor's next pass", asset_id);
    *upload = upload_view(rec);
    *asset = asset_view(a, arec, uid);
out:
    cJSON_Delete(rec);
    cJSON_Delete(arec);
    return st;
}

/* ---- files ---- */

/* Load a file uid may see: an attached one if uid is a member of its room now, an unattached one only for its
 * uploader. Anything else is "not found" (nobody learns which files exist). */
enum ch_status
asset_visible(struct assets *a, const char *uid, const char *asset_id, cJSON **rec, uint64_t *rev,
              struct ch_err *err)
{
    enum ch_status st;
    const char *s;

    if (!asset_id || !id_valid(asset_id))
        return ch_err_set(err, CH_EINVAL, "assetId", "not a valid id");
    if ((st = rec_load(a, STORE_B_ASSETS, asset_id, rec, rev, err)) != CH_OK) {
        if (st == CH_ENOTFOUND)
            ch_err_set(err, CH_ENOTFOUND, "assetId", "no such file");
        return st;
    }
    s = rec_str(*rec, "status");
    if (!strcmp(s, "attached") || !strcmp(s, "pending")) {
        bool mine = !strcmp(rec_str(*rec, "owner"), uid);
        if (!strcmp(s, "pending") && mine)
            return CH_OK;
        if (!strcmp(s, "attached")) {
            st = chat_check_member(a->chat, uid, rec_str(*rec, "room"), false, err);
            if (st == CH_OK || st == CH_EUNAVAIL)
                return st == CH_OK ? CH_OK : (cJSON_Delete(*rec), *rec = NULL, st);
        }
    }
    cJSON_Delete(*rec);
    *rec = NULL;
    return ch_err_set(err, CH_ENOTFOUND, "assetId", "no such file");
}

enum ch_status
assets_get(struct assets *a, const char *uid, const char *room, const char *asset_id, cJSON **asset,
           struct ch_err *err)
{
    cJSON *rec = NULL;
    uint64_t rev = 0;
    enum ch_status st;

    *asset = NULL;
    if ((st = id_check("roomId", room, err)) != CH_OK ||
        (st = asset_visible(a, uid, asset_id, &rec, &rev, err)) != CH_OK)
        return st;
    if (strcmp(rec_str(rec, "room"), room) != 0) {
        cJSON_Delete(rec);
        return ch_err_set(err, CH_ENOTFOUND, "assetId", "no such file in this room");
    }
    *asset = asset_view(a, rec, uid);
    cJSON_Delete(rec);
    return CH_OK;
}

void
assets_unclaim(struct assets *a, const char *msg_id, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (int t = 0; t < KV_RETRIES; t++) {
            cJSON *rec = NULL;
            uint64_t rev = 0;
            if (rec_load(a, STORE_B_ASSETS, ids[i], &rec, &rev, NULL) != CH_OK)
                break;
            bool ours = !strcmp(rec_str(rec, "status"), "attached") && !strcmp(rec_str(rec, "message"), msg_id);
            enum ch_status st = CH_OK;
            if (ours) {
                rec_set_str(rec, "status", "pending");
                rec_set_str(rec, "message", "");
                st = rec_save(a, STORE_B_ASSETS, ids[i], rec, rev, NULL, NULL);
            }
            cJSON_Delete(rec);
            if (!ours || st != CH_ECONFLICT)
                break;
        }
    }
}

/* What a message event records of a file. */
static cJSON *
attachment_json(const cJSON *rec, const char *id)
{
    cJSON *att = cJSON_CreateObject();

    cJSON_AddStringToObject(att, "id", id);
    cJSON_AddStringToObject(att, "filename", rec_str(rec, "filename"));
    cJSON_AddStringToObject(att, "contentType", rec_str(rec, "contentType"));
    cJSON_AddNumberToObject(att, "size", (double)rec_int(rec, "size"));
    if (rec_int(rec, "width") > 0) {
        cJSON_AddNumberToObject(att, "width", (double)rec_int(rec, "width"));
        cJSON_AddNumberToObject(att, "height", (double)rec_int(rec, "height"));
    }
    return att;
}

enum ch_status
assets_claim(struct assets *a, const char *uid, const char *room, const char *msg_id, const char *const *ids,
             size_t n, cJSON **attachments, struct ch_err *err)
{
    cJSON *arr = cJSON_CreateArray();
    enum ch_status st = CH_OK;
    size_t claimed = 0;

    *attachments = NULL;
    if (n > ASSETS_MAX_PER_MESSAGE) {
        cJSON_Delete(arr);
        return ch_err_set(err, CH_EINVAL, "attachmentAssetIds", "at most %d files per message",
                          ASSETS_MAX_PER_MESSAGE);
    }
    for (size_t i = 0; i < n && st == CH_OK; i++) {
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ids[i], ids[j])) {
                st = ch_err_set(err, CH_EINVAL, "attachmentAssetIds", "file %s is listed twice", ids[i]);
                break;
            }
        for (int t = 0; st == CH_OK; t++) {
            cJSON *rec = NULL;
            uint64_t rev = 0;
            if (!id_valid(ids[i])) {
                st = ch_err_set(err, CH_EINVAL, "attachmentAssetIds", "item %zu is not a valid id", i);
                break;
            }
            st = rec_load(a, STORE_B_ASSETS, ids[i], &rec, &rev, err);
            if (st == CH_ENOTFOUND || (st == CH_OK && (strcmp(rec_str(rec, "owner"), uid) != 0 ||
                                                       strcmp(rec_str(rec, "room"), room) != 0))) {
                st = ch_err_set(err, CH_EINVAL, "attachmentAssetIds", "file %s is not one you uploaded to this room",
                                ids[i]);
            } else if (st == CH_OK && !strcmp(rec_str(rec, "status"), "attached") &&
                       !strcmp(rec_str(rec, "message"), msg_id)) {
                st = CH_OK; /* a retry of the same post (same idempotency key): it is this message's already */
                cJSON_AddItemToArray(arr, attachment_json(rec, ids[i]));
                claimed++;
            } else if (st == CH_OK && strcmp(rec_str(rec, "status"), "pending") != 0) {
                st = ch_err_set(err, CH_EINVAL, "attachmentAssetIds", "file %s is attached to a message already",
                                ids[i]);
            } else if (st == CH_OK && rec_int(rec, "expiresAt") <= clock_wall_ms()) {
                st = ch_err_set(err, CH_EINVAL, "attachmentAssetIds", "file %s expired (files not sent within a day "
                                "are dropped); upload it again", ids[i]);
            } else if (st == CH_OK) {
                rec_set_str(rec, "status", "attached");
                rec_set_str(rec, "message", msg_id);
                st = rec_save(a, STORE_B_ASSETS, ids[i], rec, rev, NULL, err);
                if (st == CH_OK) {
                    cJSON_AddItemToArray(arr, attachment_json(rec, ids[i]));
                    claimed++;
                } else if (st == CH_ECONFLICT && t < KV_RETRIES) {
                    st = CH_OK;
                    ch_err_clear(err);
                    cJSON_Delete(rec);
                    continue; /* changed under us: look again */
                }
            }
            cJSON_Delete(rec);
            break;
        }
    }
    if (st != CH_OK) {
        assets_unclaim(a, msg_id, ids, claimed);
        cJSON_Delete(arr);
        return st;
    }
    *attachments = arr;
    return CH_OK;
}

void
assets_erase(struct assets *a, const char *const *ids, size_t n)
{
    struct ch_err err = { 0 };

    for (size_t i = 0; i < n; i++) {
        cJSON *rec = NULL;
        uint64_t rev = 0;
        if (!id_valid(ids[i]) || rec_load(a, STORE_B_ASSETS, ids[i], &rec, &rev, NULL) != CH_OK)
            continue;
        /* marked first: if the erase fails (NATS away), the janitor finds it and tries again */
        rec_set_str(rec, "status", "deleting");
        rec_save(a, STORE_B_ASSETS, ids[i], rec, rev, NULL, NULL);
        cJSON_Delete(rec);
        if (asset_destroy(a, ids[i], &err) != CH_OK)
            log_warn("assets: cannot erase file %s yet: %s (the janitor retries)", ids[i], err.msg);
    }
}

enum ch_status
asset_destroy(struct assets *a, const char *asset_id, struct ch_err *err)
{
    cJSON *rec = NULL;
    uint64_t rev = 0;
    enum ch_status st;

    /* in S3: the object first (its record is what tells us it is there, so the record goes last) */
    if (rec_load(a, STORE_B_ASSETS, asset_id, &rec, &rev, NULL) == CH_OK && !strcmp(rec_str(rec, "backend"), "s3")) {
        struct s3 *s3 = NULL;
        char key[ASSET_S3_KEY_MAX];
        asset_s3_key(asset_id, key);
        if ((st = asset_s3(a, asset_id, &s3, err)) != CH_OK || (st = s3_delete(s3, key, err)) != CH_OK) {
            cJSON_Delete(rec);
            return st;
        }
    }
    cJSON_Delete(rec);
    rec = NULL;
    /* the bytes: through the description if there is one, else (a file completed half-way, or staged for S3)
     * through the record */
    if ((st = store_obj_delete(a->store, STORE_S_ASSETS, asset_id, err)) != CH_OK)
        return st;
    if (rec_load(a, STORE_B_ASSETS, asset_id, &rec, &rev, NULL) == CH_OK) {
        resize_cache_erase(a, rec);
        st = store_obj_erase_chunks(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), err);
        cJSON_Delete(rec);
        if (st != CH_OK)
            return st;
    }
    return store_kv_purge(a->store, STORE_B_ASSETS, asset_id, err);
}

/* ---- lifetime ---- */

enum ch_status
assets_new(const struct assets_opts *o, struct assets **out, struct ch_err *err)
{
    struct assets *a = calloc(1, sizeof *a);
    enum ch_status st;

    *out = NULL;
    if (!a)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    a->store = o->store;
    a->chat = o->chat;
    a->max_upload = o->max_upload;
    a->max_image_pixels = o->max_image_pixels > 0 ? o->max_image_pixels : 40000000;
    a->cache = o->cache;
    a->s3 = o->s3;
    a->s3_backend = o->s3_backend;
    a->secret_len = o->signing_secret ? strlen(o->signing_secret) : 0;
    if (!(a->secret = sodium_malloc(a->secret_len + 1))) {
        free(a);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    memcpy(a->secret, o->signing_secret ? o->signing_secret : "", a->secret_len + 1);
    pthread_mutex_init(&a->janitor.mu, NULL);
    pthread_cond_init(&a->janitor.cv, NULL);
    if ((st = resize_init(a, err)) != CH_OK) {
        pthread_mutex_destroy(&a->janitor.mu);
        pthread_cond_destroy(&a->janitor.cv);
        sodium_free(a->secret);
        free(a);
        return st;
    }
    if (o->janitor && (st = janitor_start(a, err)) != CH_OK) {
        assets_free(a);
        return st;
    }
    *out = a;
    return CH_OK;
}

void
assets_free(struct assets *a)
{
    if (!a)
        return;
    janitor_stop(a);
    pthread_mutex_destroy(&a->janitor.mu);
    pthread_cond_destroy(&a->janitor.cv);
    resize_fini(a);
    sodium_free(a->secret);
    free(a);
}
