/* SPDX-License-Identifier: MIT */
/*
 * Object stores in the standard NATS layout (store.h has the shape). nats.c 3.4.1 has no object-store API, so this
 * file speaks the layout itself: chunks are plain JetStream messages, the description is JSON rolled up on its
 * subject. What other clients rely on, and we keep: stream OBJ_<bucket> with subjects $O.<bucket>.C.> and
 * $O.<bucket>.M.>, meta subject token = URL-safe base64 of the name *with* padding, digest "SHA-256=" + URL-safe
 * base64 of the SHA-256, mtime as RFC 3339, headers as a map of lists. Any thread.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "store/store_int.h"

#define OFFSET_HDR "Chatto-Offset"
#define DIGEST_PREFIX "SHA-256="
#define DEFAULT_CHUNK (128u * 1024u) /* what NATS clients use when the description names none */

struct store_obj_reader {
    struct store *st;
    enum store_stream s;
    struct store_obj_info info;
    uint64_t last_seq, got, nchunks;
    struct crypto_sha256 sha;
    bool done;
};

static const char *
bucket_of(enum store_stream s)
{
    return store_stream_name(s) + 4; /* "OBJ_" */
}

static bool
nuid_valid(const char *nuid)
{
    size_t n = nuid ? strlen(nuid) : 0;

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = nuid[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static enum ch_status
ready(struct store *st, enum store_stream s, struct ch_err *err)
{
    if (!st || !atomic_load(&st->bootstrapped))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    if (strncmp(store_stream_name(s), "OBJ_", 4) != 0)
        return ch_err_set(err, CH_EINTERNAL, NULL, "%s is not an object store", store_stream_name(s));
    return CH_OK;
}

static void
chunk_subject(char *buf, size_t len, enum store_stream s, const char *nuid)
{
    snprintf(buf, len, "$O.%s.C.%s", bucket_of(s), nuid);
}

static enum ch_status
meta_subject(char *buf, size_t len, enum store_stream s, const char *name, struct ch_err *err)
{
    size_t n = name ? strlen(name) : 0;
    char enc[sodium_base64_ENCODED_LEN(STORE_OBJ_NAME_MAX, sodium_base64_VARIANT_URLSAFE)];

    if (n == 0 || n > STORE_OBJ_NAME_MAX)
        return ch_err_set(err, CH_EINVAL, "name", "object names are 1 to %d bytes", STORE_OBJ_NAME_MAX);
    sodium_bin2base64(enc, sizeof enc, (const unsigned char *)name, n, sodium_base64_VARIANT_URLSAFE);
    snprintf(buf, len, "$O.%s.M.%s", bucket_of(s), enc);
    return CH_OK;
}

void
store_obj_nuid(char out[STORE_OBJ_NUID_LEN + 1])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    for (int i = 0; i < STORE_OBJ_NUID_LEN; i++)
        out[i] = digits[randombytes_uniform(62)];
    out[STORE_OBJ_NUID_LEN] = '\0';
}

/* Publish data on subj with one header; after_seq: 0 for none, UINT64_MAX for "the subject must be empty", else
 * the subject's expected last sequence (CH_ECONFLICT if it moved on). *seq (may be NULL) is the message's. */
static enum ch_status
publish_with_header(struct store *st, const char *subj, const void *data, size_t len, const char *hname,
                    const char *hval, uint64_t after_seq, uint64_t *seq, const char *what, struct ch_err *err)
{
    natsMsg *m = NULL;
    jsPubOptions po;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus ns;
    enum ch_status cs;

    if ((ns = natsMsg_Create(&m, subj, NULL, data, (int)len)) != NATS_OK ||
        (ns = natsMsgHeader_Set(m, hname, hval)) != NATS_OK) {
        natsMsg_Destroy(m);
        return store_map(ns, 0, what, err);
    }
    jsPubOptions_Init(&po);
    po.MaxWait = st->timeout_ms;
    if (after_seq == UINT64_MAX)
        po.ExpectNoMessage = true;
    else if (after_seq)
        po.ExpectLastSubjectSeq = after_seq;
    ns = js_PublishMsg(&ack, st->js, m, &po, &jerr);
    natsMsg_Destroy(m);
    if (ns != NATS_OK && jerr == JSStreamWrongLastSequenceErr) {
        jsPubAck_Destroy(ack);
        return ch_err_set(err, CH_ECONFLICT, NULL, "%s: another writer got there first", what);
    }
    cs = store_map(ns, jerr, what, err);
    if (cs == CH_OK && seq)
        *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    return cs;
}

enum ch_status
store_obj_put_chunk(struct store *st, enum store_stream s, const char *nuid, const void *data, size_t len,
                    uint64_t after_seq, uint64_t offset, uint64_t *seq, struct ch_err *err)
{
    char subj[128], off[24];
    enum ch_status cs;

    if ((cs = ready(st, s, err)) != CH_OK)
        return cs;
    if (!nuid_valid(nuid))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid object id");
    if (len > STORE_OBJ_CHUNK_MAX)
        return ch_err_set(err, CH_EINVAL, NULL, "a chunk holds at most %u bytes", STORE_OBJ_CHUNK_MAX);
    chunk_subject(subj, sizeof subj, s, nuid);
    snprintf(off, sizeof off, "%" PRIu64, offset);
    /* the first chunk expects an empty subject, every later one its predecessor: writers cannot interleave */
    return publish_with_header(st, subj, data, len, OFFSET_HDR, off, after_seq ? after_seq : UINT64_MAX, seq,
                               "object chunk", err);
}

/* The sequence of a message from a direct get (nats.c fills it from the Nats-Sequence header). */
static uint64_t
msg_seq(natsMsg *m)
{
    const char *v = NULL;
    uint64_t seq = natsMsg_GetSequence(m);

    if (seq == 0 && natsMsgHeader_Get(m, "Nats-Sequence", &v) == NATS_OK && v)
        seq = strtoull(v, NULL, 10);
    return seq;
}

enum ch_status
store_obj_next_chunk(struct store *st, enum store_stream s, const char *nuid, uint64_t after_seq, char **data,
                     size_t *len, uint64_t *seq, struct ch_err *err)
{
    char subj[128];
    jsDirectGetMsgOptions dg;
    jsOptions jo;
    natsMsg *m = NULL;
    natsStatus ns;
    enum ch_status cs;
    int n;

    *data = NULL;
    *len = 0;
    if ((cs = ready(st, s, err)) != CH_OK)
        return cs;
    if (!nuid_valid(nuid))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid object id");
    chunk_subject(subj, sizeof subj, s, nuid);
    jsDirectGetMsgOptions_Init(&dg);
    dg.Sequence = after_seq + 1;
    dg.NextBySubject = subj;
    jsOptions_Init(&jo);
    jo.Wait = st->timeout_ms;
    ns = js_DirectGetMsg(&m, st->js, store_stream_name(s), &jo, &dg);
    if (ns == NATS_NOT_FOUND)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no more chunks");
    if (ns != NATS_OK)
        return store_map(ns, 0, "object chunk", err);
    n = natsMsg_GetDataLength(m);
    if (!(*data = malloc((size_t)(n > 0 ? n : 0) + 1))) {
        natsMsg_Destroy(m);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (n > 0)
        memcpy(*data, natsMsg_GetData(m), (size_t)n);
    *len = (size_t)(n > 0 ? n : 0);
    *seq = msg_seq(m);
    natsMsg_Destroy(m);
    return CH_OK;
}

enum ch_status
store_obj_last_chunk(struct store *st, enum store_stream s, const char *nuid, uint64_t *seq, size_t *len,
                     uint64_t *offset, struct ch_err *err)
{
    char subj[128];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus ns;
    enum ch_status cs;
    const char *v = NULL;

    if ((cs = ready(st, s, err)) != CH_OK)
        return cs;
    if (!nuid_valid(nuid))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid object id");
    chunk_subject(subj, sizeof subj, s, nuid);
    ns = js_GetLastMsg(&m, st->js, store_stream_name(s), subj, NULL, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no chunk yet");
    if (ns != NATS_OK)
        return store_map(ns, jerr, "object chunk", err);
    *seq = msg_seq(m);
    *len = (size_t)natsMsg_GetDataLength(m);
    *offset = natsMsgHeader_Get(m, OFFSET_HDR, &v) == NATS_OK && v ? strtoull(v, NULL, 10) : UINT64_MAX;
    natsMsg_Destroy(m);
    return CH_OK;
}

static char *
info_json(const struct store_obj_info *info, enum store_stream s, const char *content_type)
{
    cJSON *o = cJSON_CreateObject(), *opts, *h;
    char digest[sizeof DIGEST_PREFIX + sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE)];
    char mtime[40];
    char *out;

    cJSON_AddStringToObject(o, "name", info->name);
    if (content_type && *content_type) {
        h = cJSON_AddObjectToObject(o, "headers");
        cJSON *l = cJSON_AddArrayToObject(h, "Content-Type");
        cJSON_AddItemToArray(l, cJSON_CreateString(content_type));
    }
    opts = cJSON_AddObjectToObject(o, "options");
    cJSON_AddNumberToObject(opts, "max_chunk_size", (double)(info->max_chunk_size ? info->max_chunk_size
                                                                                   : DEFAULT_CHUNK));
    cJSON_AddStringToObject(o, "bucket", bucket_of(s));
    cJSON_AddStringToObject(o, "nuid", info->nuid);
    cJSON_AddNumberToObject(o, "size", (double)info->size);
    json_fmt_time(info->mtime_ms ? info->mtime_ms : clock_wall_ms(), mtime, sizeof mtime);
    cJSON_AddStringToObject(o, "mtime", mtime);
    cJSON_AddNumberToObject(o, "chunks", (double)info->chunks);
    if (info->deleted) {
        cJSON_AddStringToObject(o, "digest", "");
        cJSON_AddTrueToObject(o, "deleted");
    } else {
        memcpy(digest, DIGEST_PREFIX, strlen(DIGEST_PREFIX));
        sodium_bin2base64(digest + strlen(DIGEST_PREFIX), sizeof digest - strlen(DIGEST_PREFIX), info->sha256, 32,
                          sodium_base64_VARIANT_URLSAFE);
        cJSON_AddStringToObject(o, "digest", digest);
    }
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

enum ch_status
store_obj_put_info(struct store *st, enum store_stream s, struct store_obj_info *info, const char *content_type,
                   struct ch_err *err)
{
    char subj[512];
    char *body;
    enum ch_status cs;

    if ((cs = ready(st, s, err)) != CH_OK || (cs = meta_subject(subj, sizeof subj, s, info->name, err)) != CH_OK)
        return cs;
    if (!nuid_valid(info->nuid))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid object id");
    if (!(body = info_json(info, s, content_type)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    /* rolled up: the description replaces every earlier one */
    cs = publish_with_header(st, subj, body, strlen(body), "Nats-Rollup", "sub", 0, &info->revision,
                             "object description", err);
    free(body);
    return cs;
}

/* "SHA-256=" followed by base64 of 32 bytes, URL-safe or not, padded or not (clients differ). */
static bool
parse_digest(const char *d, unsigned char out[32])
{
    size_t n = 0;

    if (!d || strncmp(d, DIGEST_PREFIX, strlen(DIGEST_PREFIX)) != 0)
        return false;
    d += strlen(DIGEST_PREFIX);
    return crypto_base64_decode_any(d, strlen(d), out, 32, &n) && n == 32;
}

static int64_t
parse_mtime(const char *s)
{
    struct tm tm = { 0 };
    const char *p;

    if (!s || !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
        return 0;
    int64_t ms = (int64_t)timegm(&tm) * 1000;
    if (*p == '.') {
        int64_t frac = 0, scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += scale > 0 ? (*p - '0') * scale : 0;
        ms += frac;
    }
    return ms; /* (an offset other than Z is rare and only shifts a display time) */
}

static enum ch_status
parse_info(const char *data, size_t len, struct store_obj_info *info, struct ch_err *err)
{
    cJSON *o = NULL;
    const cJSON *f, *opts;
    enum ch_status cs;

    memset(info, 0, sizeof *info);
    if ((cs = json_parse_object(data, len, 8, &o, err)) != CH_OK)
        return cs;
    f = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (cJSON_IsString(f) && strlen(f->valuestring) <= STORE_OBJ_NAME_MAX)
        snprintf(info->name, sizeof info->name, "%s", f->valuestring);
    f = cJSON_GetObjectItemCaseSensitive(o, "nuid");
    if (cJSON_IsString(f) && nuid_valid(f->valuestring))
        snprintf(info->nuid, sizeof info->nuid, "%.*s", STORE_OBJ_NUID_LEN, f->valuestring);
    if (cJSON_IsNumber(f = cJSON_GetObjectItemCaseSensitive(o, "size")) && f->valuedouble >= 0)
        info->size = (uint64_t)f->valuedouble;
    if (cJSON_IsNumber(f = cJSON_GetObjectItemCaseSensitive(o, "chunks")) && f->valuedouble >= 0)
        info->chunks = (uint64_t)f->valuedouble;
    opts = cJSON_GetObjectItemCaseSensitive(o, "options");
    if (cJSON_IsNumber(f = cJSON_GetObjectItemCaseSensitive(opts, "max_chunk_size")) && f->valuedouble > 0)
        info->max_chunk_size = (uint64_t)f->valuedouble;
    info->deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deleted"));
    f = cJSON_GetObjectItemCaseSensitive(o, "mtime");
    info->mtime_ms = cJSON_IsString(f) ? parse_mtime(f->valuestring) : 0;
    f = cJSON_GetObjectItemCaseSensitive(o, "digest");
    bool digest_ok = cJSON_IsString(f) && parse_digest(f->valuestring, info->sha256);
    cJSON_Delete(o);
    if (info->deleted)
        return CH_OK;
    if (!info->nuid[0] || !digest_ok)
        return ch_err_set(err, CH_EINTERNAL, NULL, "object description is malformed (nuid or digest)");
    return CH_OK;
}

enum ch_status
store_obj_get_info(struct store *st, enum store_stream s, const char *name, struct store_obj_info *info,
                   struct ch_err *err)
{
    char subj[512];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus ns;
    enum ch_status cs;

    if ((cs = ready(st, s, err)) != CH_OK || (cs = meta_subject(subj, sizeof subj, s, name, err)) != CH_OK)
        return cs;
    /* through the stream leader: a replica a moment behind must not make a new object look absent */
    ns = js_GetLastMsg(&m, st->js, store_stream_name(s), subj, NULL, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such object");
    if (ns != NATS_OK)
        return store_map(ns, jerr, "object description", err);
    cs = parse_info(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), info, err);
    if (cs == CH_OK)
        info->revision = msg_seq(m);
    natsMsg_Destroy(m);
    if (cs == CH_OK && info->deleted)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such object");
    return cs;
}

enum ch_status
store_obj_erase_chunks(struct store *st, enum store_stream s, const char *nuid, struct ch_err *err)
{
    char subj[128];
    uint64_t seq = 0, next;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus ns;
    enum ch_status cs;

    if ((cs = ready(st, s, err)) != CH_OK)
        return cs;
    for (;;) {
        char *data = NULL;
        size_t len = 0;
        cs = store_obj_next_chunk(st, s, nuid, seq, &data, &len, &next, err);
        if (data)
            sodium_memzero(data, len);
        free(data);
        if (cs == CH_ENOTFOUND)
            break;
        if (cs != CH_OK)
            return cs;
        if ((cs = store_erase(st, s, next, err)) != CH_OK)
            return cs;
        seq = next;
    }
    /* anything a concurrent writer added meanwhile */
    chunk_subject(subj, sizeof subj, s, nuid);
    jsOptions_Init(&jo);
    jo.Stream.Purge.Subject = subj;
    ns = js_PurgeStream(st->js, store_stream_name(s), &jo, &jerr);
    ch_err_clear(err);
    return store_map(ns, jerr, "object purge", err);
}

enum ch_status
store_obj_delete(struct store *st, enum store_stream s, const char *name, struct ch_err *err)
{
    struct store_obj_info info;
    enum ch_status cs = store_obj_get_info(st, s, name, &info, err);

    if (cs == CH_ENOTFOUND) {
        ch_err_clear(err);
        return CH_OK;
    }
    if (cs != CH_OK)
        return cs;
    char nuid[sizeof info.nuid];
    memcpy(nuid, info.nuid, sizeof nuid);
    info.deleted = true;
    info.size = info.chunks = 0;
    info.mtime_ms = clock_wall_ms();
    if ((cs = store_obj_put_info(st, s, &info, NULL, err)) != CH_OK)
        return cs;
    return store_obj_erase_chunks(st, s, nuid, err);
}

enum ch_status
store_obj_put(struct store *st, enum store_stream s, const char *name, const char *content_type, const void *data,
              size_t len, size_t chunk_size, struct store_obj_info *info, struct ch_err *err)
{
    struct crypto_sha256 sha;
    uint64_t seq = 0;
    enum ch_status cs;

    if (chunk_size == 0 || chunk_size > STORE_OBJ_CHUNK_MAX)
        chunk_size = DEFAULT_CHUNK;
    memset(info, 0, sizeof *info);
    if (!name || strlen(name) == 0 || strlen(name) > STORE_OBJ_NAME_MAX)
        return ch_err_set(err, CH_EINVAL, "name", "object names are 1 to %d bytes", STORE_OBJ_NAME_MAX);
    snprintf(info->name, sizeof info->name, "%s", name);
    store_obj_nuid(info->nuid);
    info->max_chunk_size = chunk_size;
    crypto_sha256_init(&sha);
    for (size_t off = 0; off < len; off += chunk_size) {
        size_t n = len - off < chunk_size ? len - off : chunk_size;
        if ((cs = store_obj_put_chunk(st, s, info->nuid, (const char *)data + off, n, seq, off, &seq, err)) != CH_OK) {
            store_obj_erase_chunks(st, s, info->nuid, NULL);
            return cs;
        }
        crypto_sha256_update(&sha, (const char *)data + off, n);
        info->chunks++;
    }
    crypto_sha256_final(&sha, info->sha256);
    info->size = len;
    info->mtime_ms = clock_wall_ms();
    if ((cs = store_obj_put_info(st, s, info, content_type, err)) != CH_OK)
        store_obj_erase_chunks(st, s, info->nuid, NULL);
    return cs;
}

/* ---- reading ---- */

enum ch_status
store_obj_reader_open(struct store *st, enum store_stream s, const struct store_obj_info *info,
                      struct store_obj_reader **out, struct ch_err *err)
{
    struct store_obj_reader *r;
    enum ch_status cs;

    *out = NULL;
    if ((cs = ready(st, s, err)) != CH_OK)
        return cs;
    if (!(r = calloc(1, sizeof *r)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    r->st = st;
    r->s = s;
    r->info = *info;
    crypto_sha256_init(&r->sha);
    *out = r;
    return CH_OK;
}

/* A chunk a replica does not have yet (direct gets may be answered by any replica) is asked for again for a
 * little while before the object is called short. */
#define LAG_RETRY_MS 2000

enum ch_status
store_obj_read(struct store_obj_reader *r, char **data, size_t *len, struct ch_err *err)
{
    unsigned char sum[32];
    uint64_t seq = 0;
    enum ch_status cs;
    int64_t give_up = 0;

    *data = NULL;
    *len = 0;
    if (r->done)
        return CH_OK;
    if (r->got >= r->info.size && r->nchunks >= r->info.chunks) {
        r->done = true;
        crypto_sha256_final(&r->sha, sum);
        if (sodium_memcmp(sum, r->info.sha256, 32) != 0)
            return ch_err_set(err, CH_EINTERNAL, NULL, "object %s is corrupt: its bytes do not match its digest",
                              r->info.name);
        return CH_OK;
    }
    for (;;) {
        cs = store_obj_next_chunk(r->st, r->s, r->info.nuid, r->last_seq, data, len, &seq, err);
        if (cs != CH_ENOTFOUND)
            break;
        if (!give_up)
            give_up = clock_mono_ms() + LAG_RETRY_MS;
        if (clock_mono_ms() >= give_up)
            return ch_err_set(err, CH_EINTERNAL, NULL, "object %s is short: %" PRIu64 " of %" PRIu64 " bytes",
                              r->info.name, r->got, r->info.size);
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (cs != CH_OK)
        return cs;
    if (r->got + *len > r->info.size) {
        FREE_NULL(*data);
        *len = 0;
        return ch_err_set(err, CH_EINTERNAL, NULL, "object %s is longer than its description says", r->info.name);
    }
    r->last_seq = seq;
    r->got += *len;
    r->nchunks++;
    crypto_sha256_update(&r->sha, (const unsigned char *)*data, *len);
    if (*len == 0) /* an empty chunk: go on to the next (0 means the end to our caller) */
        return store_obj_read(r, data, len, err);
    return CH_OK;
}

void
store_obj_reader_close(struct store_obj_reader *r)
{
    free(r);
}
