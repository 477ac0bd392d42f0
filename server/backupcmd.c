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
#define PASS_MAX 1024 /* a passphrase is at most PASS_MAX - 1 bytes */

static int
fail(const struct ch_err *err)
{
    char buf[CH_ERR_MSG_MAX + 80];

    fprintf(stderr, "chatto: %s\n", ch_err_text(err, buf, sizeof buf));
    return 1;
}

/* The passphrase: the first line of --passphrase-file, else CHATTO_BACKUP_PASSPHRASE, else none (""). Into buf
 * (sodium_malloc'd, PASS_MAX bytes): a longer one is an error, never cut short (a cut passphrase would encrypt
 * an archive nobody could open with the one they typed). 0, or -1 after a message. */
static int
read_passphrase(const char *file, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    if (file) {
        struct stat sb;
        int fd = open(file, O_RDONLY | O_CLOEXEC), c = EOF;
        FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
        if (!f) {
            fprintf(stderr, "chatto: --passphrase-file %s: %s\n", file, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 044))
            fprintf(stderr, "chatto: warning: --passphrase-file %s can be read by other users (mode %03o): "
                            "chmod 600 it\n", file, (unsigned)(sb.st_mode & 0777));
        setvbuf(f, NULL, _IONBF, 0); /* no stdio buffer keeps a copy of the passphrase */
        while (n < len && (c = getc(f)) != EOF && c != '\n')
            buf[n++] = (char)c;
        fclose(f);
        if (n == len) {
            sodium_memzero(buf, len);
            fprintf(stderr, "chatto: --passphrase-file %s: the passphrase is longer than %zu bytes\n", file,
                    len - 1);
            return -1;
        }
        buf[n] = '\0';
        if (n && buf[n - 1] == '\r')
            buf[--n] = '\0';
        if (!buf[0] || strlen(buf) != n) {
            sodium_memzero(buf, len);
            fprintf(stderr, "chatto: --passphrase-file %s: the first line is %s\n", file,
                    buf[0] ? "not text (a NUL byte)" : "empty");
            return -1;
        }
        return 0;
    }
    const char *e = getenv(PASSPHRASE_ENV);
    if (e) {
        if (strlen(e) >= len) {
            fprintf(stderr, "chatto: %s: the passphrase is longer than %zu bytes\n", PASSPHRASE_ENV, len - 1);
            return -1;
        }
        memcpy(buf, e, strlen(e) + 1);
    }
    return 0;
}

/* A sodium_malloc'd passphrase buffer of PASS_MAX bytes (NULL after a message); pass_free wipes and frees it. */
static char *
pass_new(void)
{
    char *p = sodium_malloc(PASS_MAX);
    if (!p)
        fprintf(stderr, "chatto: out of memory\n");
    else
        p[0] = '\0';
    return p;
}

static void
pass_free(char *p)
{
    if (p) {
        sodium_memzero(p, PASS_MAX);
        sodium_free(p);
    }
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
    int e = ferror(f) ? (errno ? errno : EIO) : 0; /* (a directory opens, then fails to read: EISDIR) */
    fclose(f);
    if (e) {
        free(b);
        errno = e;
        return -1;
    }
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
    const struct store_res *res;
};

static enum ch_status
on_msg(void *ctx, const struct store_raw_msg *m, struct ch_err *err)
{
    struct dump_ctx *d = ctx;
    struct bk_record r = { .seq = m->seq, .time_ns = m->time_ns, .subject = m->subject,
                           .subject_len = strlen(m->subject), .hdr = m->hdr, .hdr_len = m->hdr_len,
                           .data = m->data, .len = m->len };
    /* what restore's verify() would refuse must fail the backup now, not the restore one day */
    if (!bk_subject_ok(r.subject, r.subject_len, d->res->subject_prefix) || !bk_headers_ok(r.hdr, r.hdr_len))
        return ch_err_set(err, CH_EINVAL, NULL, "%s: the message at sequence %llu (%.200s) could not be restored "
                                                "(its subject or a header line is not one restore writes back)",
                          d->res->stream, (unsigned long long)m->seq, m->subject);
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
    char *pass = NULL, path[PATH_MAX], stamp[32];
    cJSON *man = NULL, *arr, *exc;
    char *text = NULL;
    int rc = 1;
    uint64_t total = 0;
    int64_t t0 = clock_mono_ms();
    time_t now = time(NULL);

    if (!(pass = pass_new()))
        return 1;
    if (read_passphrase(a->passphrase_file, pass, PASS_MAX) != 0) {
        pass_free(pass);
        return EXIT_USAGE;
    }
    /* the generated secrets are credentials: they travel only inside an encrypted archive */
    if (a->include_secrets && !pass[0]) {
        fprintf(stderr, "chatto: --include-secrets needs a passphrase (--passphrase-file or %s): the archive "
                        "would hold credentials\n", PASSPHRASE_ENV);
        pass_free(pass);
        return EXIT_USAGE;
    }
    if (a->include_secrets && !cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED)) {
        fprintf(stderr, "chatto: --include-secrets: only embedded mode generates secrets; with an external NATS they "
                        "are in your configuration\n");
        pass_free(pass);
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
        /* a stream with nothing in it (a bucket whose entries all aged out: msgs 0, last_seq > 0) is not read:
         * a consumer on it would wait for messages that never come */
        bool empty = ss.msgs == 0 || ss.first_seq > ss.last_seq;
        struct dump_ctx dc = { w, &res[i] };
        if (bk_writer_begin(w, res[i].stream, &err) != CH_OK ||
            (!empty && store_dump(opconn_store(oc), &res[i], ss.last_seq, on_msg, &dc, &err) != CH_OK) ||
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
    excluded(exc, "the notifier's position (notifier-position in chatto_leases)",
             "made again by the first server at the end of the stream: notifications up to the cut are in "
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
    pass_free(pass);
    return rc;
}

/* ---- restore ---- */

struct res_state {
    const struct store_res *res;
    const cJSON *entry; /* its manifest entry */
    struct crypto_sha256 sum;
    uint64_t records, last_seq, cut, next, skipped_expired;
    int64_t max_age_ns; /* config.maxAgeNs, checked: 0 .. MAX_AGE_NS */
    bool seen, restore;
};

/* Bounds on a manifest's numbers. JSON numbers are doubles: integers above 2^53 are not exact, and casting a
 * double outside an integer type's range (or NaN) is undefined, so every number is checked before it is cast. */
#define JNUM_MAX (1ull << 53)
#define MAX_AGE_NS (INT64_MAX / 2) /* so that now - maxAge cannot overflow */
/* A restore writes one placeholder (then deletes it) for every sequence up to the cut that the archive has no
 * record for. Erased messages make such gaps, but a cut far beyond the records is a damaged or hostile manifest
 * that would keep the restore publishing for hours: at the measured ~15,000 writes a second, a million
 * placeholders take about a minute, and ten erased messages for every kept one is far more than deletion or
 * retention leave in a real log. */
#define GAP_MAX(records) ((records) * 10 + 1000000)

static struct res_state *
find(struct res_state *v, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i].res->stream) == len && !strncmp(v[i].res->stream, name, len))
            return &v[i];
    return NULL;
}

/* The number o.name as an integer in 0..max: false if it is absent, not a number, not an integer or out of range. */
static bool
jnum(const cJSON *o, const char *name, uint64_t max, uint64_t *out)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    double d;

    if (!cJSON_IsNumber(f))
        return false;
    d = f->valuedouble;
    if (!(d >= 0 && d <= (double)max && d <= (double)JNUM_MAX)) /* (NaN fails every comparison) */
        return false;
    if ((double)(uint64_t)d != d)
        return false;
    *out = (uint64_t)d;
    return true;
}

/* Pass 1: read the whole archive, checking every record, each stream's count and SHA-256 against the manifest
 * and the manifest's format, before anything is written to NATS: whatever apply() would refuse half-way (after
 * --conflict=overwrite deleted the streams) is refused here, so a damaged or hostile archive writes nothing. */
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
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%.100s after the manifest)", path, name);
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
        if (!rs || rs->res->is_volatile) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: not a chatto backup archive, or from a newer version "
                                                 "(unknown entry %.100s)", path, name);
            goto out;
        }
        crypto_sha256_update(&rs->sum, data, len);
        rs->seen = true;
        for (size_t off = 0; off < len;) {
            struct bk_record rec;
            const char *why = NULL;
            if ((s = bk_record_decode(data, len, &off, &rec, err)) != CH_OK)
                goto out;
            if (rec.seq == 0)
                why = "sequence 0";
            else if (rs->res->kind != STORE_RES_KV && rs->records && rec.seq <= rs->last_seq)
                why = "out of order";
            else if (rec.time_ns < 0)
                why = "a time before 1970";
            else if (!bk_subject_ok(rec.subject, rec.subject_len, rs->res->subject_prefix))
                why = "a subject that is not one of the stream's";
            else if (!bk_headers_ok(rec.hdr, rec.hdr_len))
                why = "malformed headers";
            if (why) {
                s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%.100s: a record with %s)", path, name,
                               why);
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
    uint64_t fv = 0, layout = 0;
    bool fv_ok = jnum(man, "formatVersion", UINT32_MAX, &fv), layout_ok = jnum(man, "layout", UINT32_MAX, &layout);
    if (!fv_ok || !layout_ok || fv != FORMAT_VERSION || layout < 1 || layout > STORE_LAYOUT_VERSION) {
        s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive format %llu, layout %llu; this chatto reads format %d, "
                                             "layouts 1 to %d", path, (unsigned long long)fv,
                       (unsigned long long)layout, FORMAT_VERSION, STORE_LAYOUT_VERSION);
        goto out;
    }
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(man, "streams"), *e;
    if (!cJSON_IsArray(streams)) {
        s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (the manifest has no streams)", path);
        goto out;
    }
    cJSON_ArrayForEach(e, streams)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(e, "sha256");
        struct res_state *rs = cJSON_IsString(nm) ? find(v, n, nm->valuestring, strlen(nm->valuestring)) : NULL;
        unsigned char d[32];
        char hex[65];
        uint64_t msgs = 0, cut = 0, max_age = 0;
        if (!rs || rs->res->is_volatile || rs->entry || !cJSON_IsString(sha)) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: the manifest names an unknown stream (or one twice)", path);
            goto out;
        }
        const cJSON *conf = cJSON_GetObjectItemCaseSensitive(e, "config");
        if (!jnum(e, "messages", JNUM_MAX, &msgs) || !jnum(e, "cutSeq", JNUM_MAX, &cut) ||
            (cJSON_GetObjectItemCaseSensitive(conf, "maxAgeNs") && !jnum(conf, "maxAgeNs", MAX_AGE_NS, &max_age))) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s: a count, cut or age in the manifest "
                                                 "is missing or out of range)", path, rs->res->stream);
            goto out;
        }
        crypto_sha256_final(&rs->sum, d);
        sodium_bin2hex(hex, sizeof hex, d, sizeof d);
        if (strcmp(hex, sha->valuestring) || rs->records != msgs) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s: %llu records, checksum %s; the "
                                                 "manifest says %llu, %.12s…)", path, rs->res->stream,
                           (unsigned long long)rs->records, strcmp(hex, sha->valuestring) ? "differs" : "matches",
                           (unsigned long long)msgs, sha->valuestring);
            goto out;
        }
        /* the event log and the object stores are written back with their sequences up to the cut */
        if (rs->res->kind != STORE_RES_KV &&
            ((rs->records && rs->last_seq > cut) || cut - rs->records > GAP_MAX(rs->records))) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (%s: %llu records up to sequence %llu, "
                                                 "but the cut is %llu)", path, rs->res->stream,
                           (unsigned long long)rs->records, (unsigned long long)rs->last_seq,
                           (unsigned long long)cut);
            goto out;
        }
        rs->entry = e;
        rs->cut = cut;
        rs->max_age_ns = (int64_t)max_age;
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

/* Fresh per-stream state for verify() and apply(), over res (store_resources()). */
static void
res_init(struct res_state *v, const struct store_res *res, size_t n)
{
    memset(v, 0, n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i].res = &res[i];
        v[i].next = 1;
        crypto_sha256_init(&v[i].sum);
    }
}

enum ch_status
backupcmd_check_archive(const char *path, const char *passphrase, struct ch_err *err)
{
    struct store_res res[MAX_RES];
    struct res_state v[MAX_RES];
    struct secrets sec = { 0 };
    cJSON *man = NULL;
    size_t n = store_resources(res, MAX_RES);

    res_init(v, res, n);
    enum ch_status s = verify(path, passphrase, v, n, &man, &sec, err);
    cJSON_Delete(man);
    if (sec.data) {
        sodium_memzero(sec.data, sec.len);
        free(sec.data);
    }
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

/* The target's store layout: chatto_meta's "layout_version"; without one, 1 if the store was ever bootstrapped
 * (0.1.0 wrote "server" but no version), else 0 (nothing there). */
static enum ch_status
target_layout(struct store *st, uint64_t *layout, struct ch_err *err)
{
    char *val = NULL;
    size_t len = 0;
    uint64_t rev = 0;
    enum ch_status s = store_kv_get(st, STORE_B_META, "layout_version", &val, &len, &rev, err);

    *layout = 0;
    if (s == CH_OK) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        bool bad = errno || end == val || *end || v < 1;
        free(val);
        if (bad)
            return ch_err_set(err, CH_EINVAL, NULL, "chatto_meta: a malformed layout_version");
        *layout = v;
        return CH_OK;
    }
    if (s != CH_ENOTFOUND)
        return s;
    s = store_kv_get(st, STORE_B_META, "server", &val, &len, &rev, err);
    free(val);
    if (s == CH_OK)
        *layout = 1;
    return s == CH_ENOTFOUND ? CH_OK : s;
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
/* The lease STORE_RESTORE_LEASE, held from before the process-registry check until the restore ends: every
 * bootstrap (a server starting, another operator command) waits while it is live, so nothing is made, joined or
 * read while the streams are deleted and written again. Renewed as the restore goes. */
struct restore_lease {
    struct store *st;
    char holder[96];
    int64_t renew_at; /* monotonic */
    bool held;
};

static enum ch_status
lease_keep(struct restore_lease *l, bool first, struct ch_err *err)
{
    enum ch_status s;
    bool held = false;

    if (!first && clock_mono_ms() < l->renew_at)
        return CH_OK;
    if ((s = store_lease_acquire(l->st, STORE_RESTORE_LEASE, l->holder, STORE_RESTORE_LEASE_MS, &held, err)) != CH_OK)
        return s;
    if (!held)
        return ch_err_set(err, CH_ECONFLICT, NULL, first ? "another chatto restore is running on this NATS"
                                                         : "another chatto restore took over this NATS (this one "
                                                           "stalled past its lease)");
    l->held = true;
    l->renew_at = clock_mono_ms() + STORE_RESTORE_LEASE_MS / 4;
    return CH_OK;
}

static enum ch_status
apply(struct store *st, const char *path, const char *pass, struct res_state *v, size_t n, struct restore_lease *lease,
      struct ch_err *err)
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
        if ((s = lease_keep(lease, false, err)) != CH_OK || (s = bk_reader_next(r, &name, &data, &len, err)) != CH_OK)
            goto out;
        if (!name || !strcmp(name, BK_MANIFEST))
            break;
        const char *slash = strchr(name, '/');
        struct res_state *rs = slash ? find(v, n, name, (size_t)(slash - name)) : NULL;
        if (!rs || !rs->restore)
            continue;
        int64_t max_age = rs->max_age_ns; /* 0 .. MAX_AGE_NS: verify() checked it */
        for (size_t off = 0; off < len;) {
            struct bk_record rec;
            char subject[1024];
            if ((s = bk_record_decode(data, len, &off, &rec, err)) != CH_OK)
                goto out;
            /* a bucket with an age limit (notifications: 90 days): what would have aged out by now stays out;
             * the rest starts a new age (JetStream stamps it now) */
            if (rs->res->kind == STORE_RES_KV && max_age > 0 && rec.time_ns < now_ns - max_age) {
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
            ((s = lease_keep(lease, false, err)) != CH_OK ||
             (s = store_replay_fill(rp, v[i].res, &v[i].next, v[i].cut, err)) != CH_OK))
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
    char *pass = NULL, sp[PATH_MAX];
    int rc = 1;
    struct restore_lease lease = { 0 };
    size_t n = store_resources(res, MAX_RES);
    struct secrets sec = { 0 };
    char *have = NULL;
    size_t have_len = 0;
    bool embedded = cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED), had_secrets = false, write_secrets = false;
    int64_t t0 = clock_mono_ms();

    res_init(v, res, n);
    if (!(pass = pass_new()))
        return 1;
    if (read_passphrase(a->passphrase_file, pass, PASS_MAX) != 0) {
        pass_free(pass);
        return EXIT_USAGE;
    }
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "chatto: %s: %s\n", path, strerror(errno));
        pass_free(pass);
        return 1;
    }
    if (verify(path, pass, v, n, &man, &sec, &err) != CH_OK) {
        rc = fail(&err);
        goto out;
    }
    /* (opening the data directory generates secrets where there were none: which were there before?) */
    secrets_path(cfg, sp, sizeof sp);
    if (embedded) {
        /* only "no such file" means there are none; a file we cannot read must not be taken for absent (the
         * archive's would then replace it) */
        if (read_small(sp, &have, &have_len) == 0)
            had_secrets = true;
        else if (errno != ENOENT) {
            fprintf(stderr, "chatto: %s: %s\n", sp, strerror(errno));
            goto out;
        }
    }
    if (opconn_open(cfg, true, &oc) != 0)
        goto out;
    struct store *st = opconn_store(oc);
    int procs = 0;
    lease.st = st;
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    for (char *h = host; *h; h++) /* a KV-safe holder id: host and pid */
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '-'))
            *h = '-';
    snprintf(lease.holder, sizeof lease.holder, "restore-%s-%ld", host[0] ? host : "host", (long)getpid());
    if (lease_keep(&lease, true, &err) != CH_OK) {
        rc = fail(&err);
        goto out;
    }
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
    /* keeping streams of one layout next to restored ones of another would leave a store no layout describes
     * (the kept ones were migrated when we connected, the restored ones would never be) */
    uint64_t man_layout = 0, have_layout = 0;
    if (found[0] && !strcmp(mode, "skip")) {
        (void)jnum(man, "layout", UINT32_MAX, &man_layout); /* verify() checked it */
        if (target_layout(st, &have_layout, &err) != CH_OK) {
            rc = fail(&err);
            goto out;
        }
        if (have_layout != man_layout) {
            fprintf(stderr, "chatto: --conflict=skip would mix store layouts: the archive has layout %llu, this NATS "
                            "layout %llu; restore into an empty NATS or choose --conflict=overwrite\n",
                    (unsigned long long)man_layout, (unsigned long long)have_layout);
            goto out;
        }
    }
    if (found[0])
        fprintf(stderr, "chatto: %s: %s\n", !strcmp(mode, "skip") ? "keeping" : "replacing", found);
    for (size_t i = 0; i < n; i++)
        if (v[i].restore && store_stream_reset(st, &res[i], &err) != CH_OK) {
            rc = fail(&err);
            goto out;
        }
    if (apply(st, path, pass, v, n, &lease, &err) != CH_OK) {
        fprintf(stderr, "chatto: the restore stopped part-way; run it again with --conflict=overwrite\n");
        rc = fail(&err);
        goto out;
    }
    if (write_secrets) {
        char tmp[PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", sp);
        FILE *f = NULL;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok = fd >= 0 && (f = fdopen(fd, "w")) && fwrite(sec.data, 1, sec.len, f) == sec.len &&
                  fflush(f) == 0 && fsync(fd) == 0; /* on disk before it takes the name */
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
    if (lease.held)
        store_lease_release(lease.st, STORE_RESTORE_LEASE, lease.holder);
    cJSON_Delete(man);
    opconn_close(oc);
    pass_free(pass);
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
