/* SPDX-License-Identifier: MIT */
/*
 * `chatto backup` and `chatto restore`: every stream, bucket and object store Chatto owns, into one archive
 * (lib/backup) and back, over the same NATS connection as the server's (opconn.c). Main thread only.
 *
 * Consistency of an online backup. Writers keep writing while we read; we never stop them. Instead each stream
 * is read only up to a cut, its last sequence when we come to it, and the cuts are taken in an order that keeps
 * references whole:
 *   1. CHATTO_EVENTS first. Its cut fixes which history the archive holds: exactly the events with a sequence up
 *      to it, in order, as one prefix of the log (an ordered consumer; erased messages are simply absent).
 *   2. Then the KV buckets, one after the other, each up to its own cut taken after the event cut. Whatever an
 *      event names that lives in a bucket (a user, a room name, an asset record) was written before that event
 *      was appended, so before the event cut, so before the bucket's cut: it is in the archive. A bucket keeps
 *      one value per key (history 1), so a key changed between the cut and our reading of it no longer has its
 *      cut-time value; we take its first later value instead (whole, never torn; a key added while we read may
 *      come along too: we cannot tell it from a changed one). Bucket state is therefore "at
 *      or a little after" the event cut: a read position or notification may name an event after the cut,
 *      which after a restore reads as "already read" and is harmless.
 *   3. The object stores last (attachments), each up to its cut, taken after every bucket was read: an asset
 *      record or an upload session read in step 2 names chunks that exist by then. An object deleted while we
 *      read it is absent or chunkless (its description is gone), never served half.
 * Every record is a whole stored message; the manifest holds each stream's cut, count and SHA-256.
 *
 * Restore writes the event log and the object stores back with their sequence numbers (read positions,
 * threads, notifications and upload sessions name them): an erased message leaves a gap, filled by a
 * placeholder that is deleted at the end. Publishes are pipelined, each with the expected last sequence, so
 * JetStream refuses any message that would be numbered otherwise; at the end each stream's count and last
 * sequence are compared with the archive. Message times are not the stream's timestamps but the "at"/"createdAt"
 * of the payloads, which the model prefers, so they come back unchanged.
 */
#include "backupcmd.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "backup/backup.h"
#include "base/clock.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "opconn.h"
#include "store/store.h"
#include "version.h"

#define FORMAT_NAME "chatto-backup"
#define FORMAT_VERSION 1
#define MAX_RES 32
#define PASSPHRASE_ENV "CHATTO_BACKUP_PASSPHRASE"

static int
fail(const struct ch_err *err)
{
    char buf[CH_ERR_MSG_MAX + 80];

    fprintf(stderr, "chatto: %s\n", ch_err_text(err, buf, sizeof buf));
    return 1;
}

/* The passphrase: the first line of --passphrase-file, else CHATTO_BACKUP_PASSPHRASE, else none (""). */
static int
read_passphrase(const char *file, char *buf, size_t len)
{
    buf[0] = '\0';
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            fprintf(stderr, "chatto: --passphrase-file %s: %s\n", file, strerror(errno));
            return -1;
        }
        if (!fgets(buf, (int)len, f))
            buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        if (!buf[0]) {
            fprintf(stderr, "chatto: --passphrase-file %s: the first line is empty\n", file);
            return -1;
        }
        return 0;
    }
    const char *e = getenv(PASSPHRASE_ENV);
    if (e)
        snprintf(buf, len, "%s", e);
    return 0;
}

/* A small file (at most 64 KiB) into *buf (caller frees, zeroes first: it holds secrets). -1 with errno. */
static int
read_small(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    size_t n = 0;

    if (!f)
        return -1;
    if (!(b = malloc(65536 + 1))) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    n = fread(b, 1, 65536 + 1, f);
    fclose(f);
    if (n > 65536) {
        free(b);
        errno = EFBIG;
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

static void
secrets_path(const struct cfg *cfg, char *out, size_t len)
{
    snprintf(out, len, "%s/secrets.ini", cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR));
}

/* ---- backup ---- */

struct dump_ctx {
    struct bk_writer *w;
};

static enum ch_status
on_msg(void *ctx, const struct store_raw_msg *m, struct ch_err *err)
{
    struct dump_ctx *d = ctx;
    struct bk_record r = { .seq = m->seq, .time_ns = m->time_ns, .subject = m->subject,
                           .subject_len = strlen(m->subject), .hdr = m->hdr, .hdr_len = m->hdr_len,
                           .data = m->data, .len = m->len };
    return bk_writer_record(d->w, &r, err);
}

static void
excluded(cJSON *arr, const char *name, const char *why)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "why", why);
    cJSON_AddItemToArray(arr, o);
}

static const char *
kind_name(enum store_res_kind k)
{
    return k == STORE_RES_EVENTS ? "events" : k == STORE_RES_KV ? "kv" : "objects";
}

int
backupcmd_backup(const struct cli_args *a, struct cfg *cfg)
{
    struct opconn *oc = NULL;
    struct bk_writer *w = NULL;
    struct ch_err err = { 0 };
    struct store_res res[MAX_RES];
    char pass[1024], path[PATH_MAX], stamp[32];
    cJSON *man = NULL, *arr, *exc;
    char *text = NULL;
    int rc = 1;
    uint64_t total = 0;
    int64_t t0 = clock_mono_ms();
    time_t now = time(NULL);

    if (read_passphrase(a->passphrase_file, pass, sizeof pass) != 0)
        return EXIT_USAGE;
    /* the generated secrets are credentials: they travel only inside an encrypted archive */
    if (a->include_secrets && !pass[0]) {
        fprintf(stderr, "chatto: --include-secrets needs a passphrase (--passphrase-file or %s): the archive "
                        "would hold credentials\n", PASSPHRASE_ENV);
        explicit_bzero(pass, sizeof pass);
        return EXIT_USAGE;
    }
    if (a->include_secrets && !cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED)) {
        fprintf(stderr, "chatto: --include-secrets: only embedded mode generates secrets; with an external NATS they "
                        "are in your configuration\n");
        explicit_bzero(pass, sizeof pass);
        return EXIT_USAGE;
    }
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    if (a->output)
        snprintf(path, sizeof path, "%s", a->output);
    else
        snprintf(path, sizeof path, "chatto-backup-%s.tar%s", stamp, pass[0] ? ".enc" : "");
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "chatto: %s already exists; refusing to overwrite it\n", path);
        goto out;
    }
    if (opconn_open(cfg, false, &oc) != 0)
        goto out;
    if (bk_writer_open(path, pass, &w, &err) != CH_OK) {
        rc = fail(&err);
        goto out;
    }
    man = cJSON_CreateObject();
    cJSON_AddStringToObject(man, "format", FORMAT_NAME);
    cJSON_AddNumberToObject(man, "formatVersion", FORMAT_VERSION);
    cJSON_AddStringToObject(man, "chattoVersion", CHATTO_VERSION);
    cJSON_AddNumberToObject(man, "layout", STORE_LAYOUT_VERSION);
    json_add_time(man, "createdAt", clock_wall_ms());
    cJSON_AddBoolToObject(man, "encrypted", pass[0] != 0);
    cJSON_AddStringToObject(man, "consistency", "cuts in order: CHATTO_EVENTS, then each bucket, then object stores");
    arr = cJSON_AddArrayToObject(man, "streams");
    exc = cJSON_AddArrayToObject(man, "excluded");
    size_t n = store_resources(res, MAX_RES);
    for (size_t i = 0; i < n; i++) {
        struct store_stream_state ss;
        uint64_t records = 0, bytes = 0;
        char sha[65];
        if (res[i].is_volatile) {
            excluded(exc, res[i].stream, res[i].kind == STORE_RES_OBJECTS ? "cache, made again on demand"
                                                                           : "state of the running processes");
            continue;
        }
        /* the cut: this stream's last sequence now, after every earlier stream was read (see the top) */
        if (store_stream_state(opconn_store(oc), res[i].stream, &ss, &err) != CH_OK) {
            rc = fail(&err);
            goto out;
        }
        if (!ss.exists) {
            excluded(exc, res[i].stream, "absent from this NATS");
            continue;
        }
        int64_t cut_ms = clock_wall_ms();
        if (bk_writer_begin(w, res[i].stream, &err) != CH_OK ||
            store_dump(opconn_store(oc), &res[i], ss.last_seq, on_msg, &(struct dump_ctx){ w }, &err) != CH_OK ||
            bk_writer_end(w, &records, &bytes, sha, &err) != CH_OK) {
            rc = fail(&err);
            goto out;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", res[i].stream);
        cJSON_AddStringToObject(o, "kind", kind_name(res[i].kind));
        cJSON *c = cJSON_AddObjectToObject(o, "config");
        cJSON_AddStringToObject(c, "subjects", ss.subjects);
        cJSON_AddNumberToObject(c, "replicas", ss.replicas);
        cJSON_AddNumberToObject(c, "maxAgeNs", (double)ss.max_age_ns);
        cJSON_AddNumberToObject(c, "maxMsgsPerSubject", (double)ss.max_msgs_per_subject);
        cJSON_AddNumberToObject(c, "duplicatesNs", (double)ss.duplicates_ns);
        cJSON_AddNumberToObject(o, "firstSeq", (double)ss.first_seq);
        cJSON_AddNumberToObject(o, "cutSeq", (double)ss.last_seq);
        json_add_time(o, "cutAt", cut_ms);
        cJSON_AddNumberToObject(o, "messages", (double)records);
        cJSON_AddNumberToObject(o, "bytes", (double)bytes);
        cJSON_AddStringToObject(o, "sha256", sha);
        cJSON_AddItemToArray(arr, o);
        total += records;
    }
    if (a->include_secrets) {
        char sp[PATH_MAX], hex[65];
        char *sec = NULL;
        size_t slen = 0;
        secrets_path(cfg, sp, sizeof sp);
        if (read_small(sp, &sec, &slen) != 0) {
            fprintf(stderr, "chatto: --include-secrets: %s: %s (every secret is set in the configuration?)\n", sp,
                    strerror(errno));
            goto out;
        }
        crypto_sha256_hex(sec, slen, hex);
        enum ch_status fs = bk_writer_file(w, BK_SECRETS, sec, slen, &err);
        explicit_bzero(sec, slen);
        free(sec);
        if (fs != CH_OK) {
            rc = fail(&err);
            goto out;
        }
        cJSON *so = cJSON_AddObjectToObject(man, "secrets");
        cJSON_AddStringToObject(so, "file", BK_SECRETS);
        cJSON_AddStringToObject(so, "sha256", hex);
    } else
        excluded(exc, "generated secrets (<data_dir>/secrets.ini)",
                 "credentials, outside NATS: keep them with the archive (or use --include-secrets), sessions and "
                 "API tokens need the same secrets");
    excluded(exc, "consumer chatto_notifier on CHATTO_EVENTS",
             "made again by the first server (new events only): notifications up to the cut are in "
             "KV_chatto_notifications");
    excluded(exc, "search index", "outside NATS and disposable: rebuilt from CHATTO_EVENTS");
    excluded(exc, "the config file", "outside NATS");
    if (!(text = json_print(man, NULL))) {
        fprintf(stderr, "chatto: out of memory\n");
        goto out;
    }
    if (bk_writer_finish(w, text, &err) != CH_OK) {
        w = NULL;
        rc = fail(&err);
        goto out;
    }
    w = NULL;
    struct stat sb;
    uint64_t size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    printf("wrote %s: %llu messages from %d streams, %llu bytes%s, in %lld ms\n", path, (unsigned long long)total,
           cJSON_GetArraySize(arr), (unsigned long long)size, pass[0] ? ", encrypted" : "",
           (long long)(clock_mono_ms() - t0));
    rc = 0;
out:
    bk_writer_abort(w);
    cJSON_Delete(man);
    free(text);
    opconn_close(oc);
    explicit_bzero(pass, sizeof pass);
    return rc;
}

/* ---- restore ---- */

struct res_state {
    const struct store_res *res;
    const cJSON *entry; /* its manifest entry */
    struct crypto_sha256 sum;
    uint64_t records, last_seq, cut, next, skipped_expired;
    bool seen, restore;
};

static struct res_state *
find(struct res_state *v, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i].res->stream) == len && !strncmp(v[i].res->stream, name, len))
            return &v[i];
    return NULL;
}

static uint64_t
jnum(const cJSON *o, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(f) && f->valuedouble >= 0 ? (uint64_t)f->valuedouble : 0;
}

/* Pass 1: read the whole archive, checking every record, each stream's count and SHA-256 against the manifest
 * and the manifest's format, before anything is written to NATS. */
struct secrets {
    char *data; /* the archive's secrets.ini, or NULL */
    size_t len;
};

static enum ch_status
verify(const char *path, const char *pass, struct res_state *v, size_t n, cJSON **manifest, struct secrets *sec,
       struct ch_err *err)
{
    struct bk_reader *r = NULL;
    enum ch_status s;
    cJSON *man = NULL;
    const char *name;
    const unsigned char *data;
    size_t len;

    if ((s = bk_reader_open(path, pass, &r, err)) != CH_OK)
        return s;
    for (;;) {
        if ((s = bk_reader_next(r, &name, &data, &len, err)) != CH_OK)
            goto out;
        if (!name)
            break;
        if (man) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s after the manifest)", path, name);
            goto out;
        }
        if (!strcmp(name, BK_MANIFEST)) {
            if (!(man = cJSON_ParseWithLength((const char *)data, len))) {
                s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (its manifest is not JSON)", path);
                goto out;
            }
            continue;
        }
        if (!strcmp(name, BK_SECRETS) && !sec->data) {
            if (!(sec->data = malloc(len + 1))) {
                s = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
                goto out;
            }
            memcpy(sec->data, data, len);
            sec->len = len;
            continue;
        }
        const char *slash = strchr(name, '/');
        struct res_state *rs = slash ? find(v, n, name, (size_t)(slash - name)) : NULL;
        if (!rs) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: not a chatto backup archive, or from a newer version "
                                                 "(unknown entry %s)", path, name);
            goto out;
        }
        crypto_sha256_update(&rs->sum, data, len);
        rs->seen = true;
        for (size_t off = 0; off < len;) {
            struct bk_record rec;
            if ((s = bk_record_decode(data, len, &off, &rec, err)) != CH_OK)
                goto out;
            if (rs->res->kind != STORE_RES_KV && rs->records && rec.seq <= rs->last_seq) {
                s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s out of order)", path, name);
                goto out;
            }
            rs->last_seq = rec.seq;
            rs->records++;
        }
    }
    if (!man) {
        s = ch_err_set(err, CH_EINVAL, NULL, "%s: not a chatto backup archive (no %s)", path, BK_MANIFEST);
        goto out;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(man, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, FORMAT_NAME)) {
        s = ch_err_set(err, CH_EINVAL, NULL, "%s: not a chatto backup archive (manifest format)", path);
        goto out;
    }
    /* an archive of an older layout restores as it was made (its chatto_meta says which layout it is) and the
     * first server to start migrates it; a newer one this code would misread */
    if (jnum(man, "formatVersion") != FORMAT_VERSION || jnum(man, "layout") < 1 ||
        jnum(man, "layout") > STORE_LAYOUT_VERSION) {
        s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive format %llu, layout %llu; this chatto reads format %d, "
                                             "layouts 1 to %d", path, (unsigned long long)jnum(man, "formatVersion"),
                       (unsigned long long)jnum(man, "layout"), FORMAT_VERSION, STORE_LAYOUT_VERSION);
        goto out;
    }
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(man, "streams"), *e;
    cJSON_ArrayForEach(e, streams)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(e, "sha256");
        struct res_state *rs = cJSON_IsString(nm) ? find(v, n, nm->valuestring, strlen(nm->valuestring)) : NULL;
        unsigned char d[32];
        char hex[65];
        if (!rs || !cJSON_IsString(sha)) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: the manifest names an unknown stream", path);
            goto out;
        }
        crypto_sha256_final(&rs->sum, d);
        sodium_bin2hex(hex, sizeof hex, d, sizeof d);
        if (strcmp(hex, sha->valuestring) || rs->records != jnum(e, "messages")) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s: %llu records, checksum %s; the "
                                                 "manifest says %llu, %.12s…)", path, rs->res->stream,
                           (unsigned long long)rs->records, strcmp(hex, sha->valuestring) ? "differs" : "matches",
                           (unsigned long long)jnum(e, "messages"), sha->valuestring);
            goto out;
        }
        rs->entry = e;
        rs->cut = jnum(e, "cutSeq");
    }
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(man, "secrets");
    const cJSON *ssha = cJSON_GetObjectItemCaseSensitive(so, "sha256");
    char shex[65] = "";
    if (sec->data)
        crypto_sha256_hex(sec->data, sec->len, shex);
    if (!!so != !!sec->data || (so && (!cJSON_IsString(ssha) || strcmp(shex, ssha->valuestring)))) {
        s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s does not match the manifest)", path,
                       BK_SECRETS);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].seen && !v[i].entry) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s is not in the manifest)", path,
                           v[i].res->stream);
            goto out;
        }
    *manifest = man;
    man = NULL;
    s = CH_OK;
out:
    cJSON_Delete(man);
    bk_reader_close(r);
    return s;
}

/* What the target already holds in stream rs (0: nothing of Chatto's). The identity record and the layout version
 * every connection's bootstrap writes into chatto_meta (ours too) do not count. */
static enum ch_status
held(struct store *st, const struct res_state *rs, uint64_t *count, struct ch_err *err)
{
    struct store_stream_state ss;
    enum ch_status s;

    *count = 0;
    if ((s = store_stream_state(st, rs->res->stream, &ss, err)) != CH_OK)
        return s;
    if (!ss.exists || !ss.msgs)
        return CH_OK;
    if (rs->res->kind == STORE_RES_KV && rs->res->bucket == STORE_B_META) {
        char **keys = NULL;
        size_t nk = 0;
        if ((s = store_kv_keys(st, STORE_B_META, ">", &keys, &nk, err)) != CH_OK)
            return s;
        for (size_t i = 0; i < nk; i++)
            *count += strcmp(keys[i], "server") != 0 && strcmp(keys[i], "layout_version") != 0;
        store_kv_keys_free(keys);
        return CH_OK;
    }
    *count = ss.msgs;
    return CH_OK;
}

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p) != 0 && errno != ENOENT;
}

/* Pass 2: write every record of the streams being restored. */
static enum ch_status
apply(struct store *st, const char *path, const char *pass, struct res_state *v, size_t n, struct ch_err *err)
{
    struct bk_reader *r = NULL;
    struct store_replayer *rp = NULL;
    enum ch_status s;
    const char *name;
    const unsigned char *data;
    size_t len;
    int64_t now_ns = clock_wall_ms() * 1000000LL;

    if ((s = store_replayer_new(st, &rp, err)) != CH_OK || (s = bk_reader_open(path, pass, &r, err)) != CH_OK)
        goto out;
    for (;;) {
        if ((s = bk_reader_next(r, &name, &data, &len, err)) != CH_OK)
            goto out;
        if (!name || !strcmp(name, BK_MANIFEST))
            break;
        const char *slash = strchr(name, '/');
        struct res_state *rs = slash ? find(v, n, name, (size_t)(slash - name)) : NULL;
        if (!rs || !rs->restore)
            continue;
        int64_t max_age = (int64_t)jnum(cJSON_GetObjectItemCaseSensitive(rs->entry, "config"), "maxAgeNs");
        for (size_t off = 0; off < len;) {
            struct bk_record rec;
            char subject[1024];
            if ((s = bk_record_decode(data, len, &off, &rec, err)) != CH_OK)
                goto out;
            /* a bucket with an age limit (notifications: 90 days): what would have aged out by now stays out;
             * the rest starts a new age (JetStream stamps it now) */
            if (rs->res->kind == STORE_RES_KV && max_age > 0 && rec.time_ns + max_age < now_ns) {
                rs->skipped_expired++;
                continue;
            }
            if (rec.subject_len >= sizeof subject) {
                s = ch_err_set(err, CH_EINVAL, NULL, "archive is damaged (a subject too long)");
                goto out;
            }
            memcpy(subject, rec.subject, rec.subject_len);
            subject[rec.subject_len] = '\0';
            struct store_raw_msg m = { .seq = rec.seq, .time_ns = rec.time_ns, .subject = subject, .hdr = rec.hdr,
                                       .hdr_len = rec.hdr_len, .data = rec.data, .len = rec.len };
            if ((s = store_replay(rp, rs->res, &rs->next, &m, err)) != CH_OK)
                goto out;
        }
    }
    /* sequences up to each cut are taken, so what is written next comes after anything the archive names */
    for (size_t i = 0; i < n; i++)
        if (v[i].restore && v[i].res->kind != STORE_RES_KV &&
            (s = store_replay_fill(rp, v[i].res, &v[i].next, v[i].cut, err)) != CH_OK)
            goto out;
    if ((s = store_replayer_finish(rp, err)) != CH_OK)
        goto out;
    /* and check what JetStream now holds against the archive */
    for (size_t i = 0; i < n; i++) {
        struct store_stream_state ss;
        if (!v[i].restore)
            continue;
        if ((s = store_stream_state(st, v[i].res->stream, &ss, err)) != CH_OK)
            goto out;
        bool kv = v[i].res->kind == STORE_RES_KV;
        if (ss.msgs != v[i].records - v[i].skipped_expired || (!kv && ss.last_seq != v[i].cut)) {
            s = ch_err_set(err, CH_EINTERNAL, NULL, "%s holds %llu messages up to sequence %llu after the restore; "
                                                    "the archive has %llu up to %llu", v[i].res->stream,
                           (unsigned long long)ss.msgs, (unsigned long long)ss.last_seq,
                           (unsigned long long)(v[i].records - v[i].skipped_expired), (unsigned long long)v[i].cut);
            goto out;
        }
    }
out:
    bk_reader_close(r);
    store_replayer_free(rp);
    return s;
}

int
backupcmd_restore(const struct cli_args *a, struct cfg *cfg)
{
    const char *path = a->pos[0], *mode = a->conflict ? a->conflict : "error";
    struct store_res res[MAX_RES];
    struct res_state v[MAX_RES];
    struct opconn *oc = NULL;
    struct ch_err err = { 0 };
    cJSON *man = NULL;
    char pass[1024], sp[PATH_MAX];
    int rc = 1;
    size_t n = store_resources(res, MAX_RES);
    struct secrets sec = { 0 };
    char *have = NULL;
    size_t have_len = 0;
    bool embedded = cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED), had_secrets = false, write_secrets = false;
    int64_t t0 = clock_mono_ms();

    memset(v, 0, sizeof v);
    for (size_t i = 0; i < n; i++) {
        v[i].res = &res[i];
        v[i].next = 1;
        crypto_sha256_init(&v[i].sum);
    }
    if (read_passphrase(a->passphrase_file, pass, sizeof pass) != 0)
        return EXIT_USAGE;
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "chatto: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (verify(path, pass, v, n, &man, &sec, &err) != CH_OK) {
        rc = fail(&err);
        goto out;
    }
    /* (opening the data directory generates secrets where there were none: which were there before?) */
    secrets_path(cfg, sp, sizeof sp);
    had_secrets = embedded && read_small(sp, &have, &have_len) == 0;
    if (opconn_open(cfg, true, &oc) != 0)
        goto out;
    struct store *st = opconn_store(oc);
    int procs = 0;
    if (store_procs_count(st, &procs, &err) != CH_OK) {
        rc = fail(&err);
        goto out;
    }
    if (procs > 0) {
        fprintf(stderr, "chatto: %d chatto process%s running on this NATS (chatto_processes): stop every one "
                        "before restoring (a crashed one's entry expires within 30 s)\n",
                procs, procs == 1 ? " is" : "es are");
        goto out;
    }
    /* what is there already, stream by stream */
    char found[1024] = "";
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t count = 0;
        if (!v[i].entry)
            continue;
        if (held(st, &v[i], &count, &err) != CH_OK) {
            rc = fail(&err);
            goto out;
        }
        v[i].restore = count == 0 || !strcmp(mode, "overwrite");
        if (count && off < sizeof found)
            off += (size_t)snprintf(found + off, sizeof found - off, "%s%s (%llu %s)", off ? ", " : "",
                                    res[i].stream, (unsigned long long)count,
                                    res[i].kind == STORE_RES_KV ? "keys" : "messages");
    }
    if (sec.data && embedded) {
        bool differ = had_secrets && (have_len != sec.len || memcmp(have, sec.data, sec.len) != 0);
        write_secrets = !had_secrets || (differ && !strcmp(mode, "overwrite"));
        if (differ && off < sizeof found)
            off += (size_t)snprintf(found + off, sizeof found - off, "%s%.400s (other secrets)", off ? ", " : "", sp);
    } else if (sec.data)
        fprintf(stderr, "chatto: note: the archive holds the secrets an embedded data directory generated; with an "
                        "external NATS they come from the configuration and are not written anywhere\n");
    if (found[0] && !strcmp(mode, "error")) {
        fprintf(stderr, "chatto: this NATS already holds Chatto data: %s; restore into an empty one, or choose "
                        "--conflict=skip (keep those streams as they are) or --conflict=overwrite (replace them)\n",
                found);
        goto out;
    }
    if (found[0])
        fprintf(stderr, "chatto: %s: %s\n", !strcmp(mode, "skip") ? "keeping" : "replacing", found);
    for (size_t i = 0; i < n; i++)
        if (v[i].restore && store_stream_reset(st, &res[i], &err) != CH_OK) {
            rc = fail(&err);
            goto out;
        }
    if (apply(st, path, pass, v, n, &err) != CH_OK) {
        fprintf(stderr, "chatto: the restore stopped part-way; run it again with --conflict=overwrite\n");
        rc = fail(&err);
        goto out;
    }
    if (write_secrets) {
        char tmp[PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", sp);
        FILE *f = NULL;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = fd >= 0 && (f = fdopen(fd, "w")) && fwrite(sec.data, 1, sec.len, f) == sec.len;
        if (f)
            ok = fclose(f) == 0 && ok;
        else if (fd >= 0)
            close(fd);
        if (!ok || rename(tmp, sp) != 0) {
            fprintf(stderr, "chatto: cannot write %s: %s\n", sp, strerror(errno));
            unlink(tmp);
            goto out;
        }
    }
    uint64_t total = 0, expired = 0;
    int streams = 0;
    bool events = false;
    for (size_t i = 0; i < n; i++)
        if (v[i].restore) {
            total += v[i].records - v[i].skipped_expired;
            expired += v[i].skipped_expired;
            streams++;
            events |= res[i].kind == STORE_RES_EVENTS;
        }
    /* this process's search index followed the old event log: it is disposable, so it is made again */
    if (events && cfg_bool(cfg, CFG_SEARCH_PROVIDER_ENABLED)) {
        char dir[PATH_MAX];
        if (*cfg_str(cfg, CFG_SEARCH_PROVIDER_DIRECTORY))
            snprintf(dir, sizeof dir, "%s", cfg_str(cfg, CFG_SEARCH_PROVIDER_DIRECTORY));
        else
            snprintf(dir, sizeof dir, "%s/search", cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR));
        struct stat sb;
        if (stat(dir, &sb) == 0 && nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            fprintf(stderr, "chatto: warning: cannot remove the old search index %s: %s\n", dir, strerror(errno));
    }
    printf("restored %llu messages into %d streams from %s in %lld ms%s%s\n", (unsigned long long)total, streams,
           path, (long long)(clock_mono_ms() - t0), expired ? " (entries past their age limit left out)" : "",
           write_secrets ? "; wrote the archive's secrets.ini" : "");
    rc = 0;
out:
    cJSON_Delete(man);
    opconn_close(oc);
    explicit_bzero(pass, sizeof pass);
    if (sec.data) {
        explicit_bzero(sec.data, sec.len);
        free(sec.data);
    }
    if (have) {
        explicit_bzero(have, have_len);
        free(have);
    }
    return rc;
}
