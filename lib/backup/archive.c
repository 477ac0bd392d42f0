/* SPDX-License-Identifier: MIT */
/*
 * The backup archive's writer and reader (format in backup.h): a ustar writer of our own, records buffered into
 * parts in memory (so each tar entry's size is known before its header is written, and nothing is spooled to disk
 * in the clear), and the optional passphrase encryption around the whole byte stream. No NATS, no logging.
 * Main thread only.
 */
#include "backup/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"

#define PART_TARGET (4u * 1024u * 1024u) /* a part is written once it holds this much */
#define CHUNK 65536u                     /* plaintext per encrypted chunk */
#define ENC_CHECK_LEN 32
#define ENC_HDR_LEN (16 + 8 + 8 + crypto_pwhash_SALTBYTES + ENC_CHECK_LEN + crypto_secretstream_xchacha20poly1305_HEADERBYTES)
#define SS_HDR_OFF (32 + crypto_pwhash_SALTBYTES + ENC_CHECK_LEN)
/* An archive can be attacked offline for as long as anyone likes, so new ones take Argon2id's MODERATE cost (256 MiB,
 * about a second), not the INTERACTIVE one of a login. The reader takes the cost from the header, so archives
 * written with INTERACTIVE (chatto 0.2.0 before this change) still read. */
#define ENC_OPS crypto_pwhash_OPSLIMIT_MODERATE
#define ENC_MEM crypto_pwhash_MEMLIMIT_MODERATE
/* bounds on what an archive header may ask of us: a hostile file must not make us allocate gigabytes */
#define ENC_OPS_MAX 16u
#define ENC_MEM_MAX (1024ull * 1024ull * 1024ull)

static void
put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t
get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A value only the right key gives: it tells a wrong passphrase from damaged data (which the AEAD reports). */
static void
key_check(unsigned char out[ENC_CHECK_LEN], const unsigned char *key, size_t keylen)
{
    static const char what[] = "chatto-backup key check";
    crypto_generichash(out, ENC_CHECK_LEN, (const unsigned char *)what, sizeof what - 1, key, keylen);
}

static enum ch_status
write_all(int fd, const void *buf, size_t len, struct ch_err *err)
{
    const unsigned char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ch_err_set(err, CH_EINTERNAL, NULL, "cannot write the archive: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return CH_OK;
}

/* ---- writer ---- */

struct bk_writer {
    int fd;
    char *path, *tmp;
    bool enc;
    crypto_secretstream_xchacha20poly1305_state ss;
    unsigned char out[CHUNK]; /* bytes waiting for write() or encryption */
    size_t nout;
    /* the current resource */
    char name[128];
    bool open;
    unsigned char *part;
    size_t npart, cap;
    unsigned nparts;
    uint64_t records, bytes;
    struct crypto_sha256 sum;
};

/* Encrypt and write the buffered bytes as one chunk (tag FINAL at the end). */
static enum ch_status
flush_out(struct bk_writer *w, bool final, struct ch_err *err)
{
    enum ch_status s;

    if (!w->enc) {
        s = write_all(w->fd, w->out, w->nout, err);
        w->nout = 0;
        return s;
    }
    unsigned char hdr[4];
    unsigned char *c = malloc(w->nout + crypto_secretstream_xchacha20poly1305_ABYTES);
    unsigned long long clen = 0;
    if (!c)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    crypto_secretstream_xchacha20poly1305_push(&w->ss, c, &clen, w->out, w->nout, NULL, 0,
                                               final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
    put_be(hdr, clen, 4);
    s = write_all(w->fd, hdr, 4, err);
    if (s == CH_OK)
        s = write_all(w->fd, c, (size_t)clen, err);
    free(c);
    sodium_memzero(w->out, w->nout);
    w->nout = 0;
    return s;
}

static enum ch_status
emit(struct bk_writer *w, const void *data, size_t len, struct ch_err *err)
{
    const unsigned char *p = data;
    while (len) {
        /* a full buffer goes out only when more bytes follow, so the last bytes of the tar always travel in the
         * FINAL chunk (an eager flush left an empty FINAL chunk after a tar of an exact multiple of CHUNK bytes) */
        if (w->nout == sizeof w->out) {
            enum ch_status s = flush_out(w, false, err);
            if (s != CH_OK)
                return s;
        }
        size_t n = sizeof w->out - w->nout < len ? sizeof w->out - w->nout : len;
        memcpy(w->out + w->nout, p, n);
        w->nout += n;
        p += n;
        len -= n;
    }
    return CH_OK;
}

/* One ustar entry: header, data, zero padding to 512 bytes. */
static enum ch_status
tar_entry(struct bk_writer *w, const char *name, const void *data, size_t len, struct ch_err *err)
{
    unsigned char h[512];
    unsigned sum = 0;
    static const unsigned char zero[512];
    enum ch_status s;

    if (strlen(name) >= 100)
        return ch_err_set(err, CH_EINVAL, NULL, "archive entry name too long: %s", name);
    memset(h, 0, sizeof h);
    memcpy(h, name, strlen(name));
    snprintf((char *)h + 100, 8, "%07o", 0600);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)len);
    snprintf((char *)h + 136, 12, "%011llo", (unsigned long long)time(NULL));
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6); /* "ustar\0" */
    memcpy(h + 263, "00", 2);
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum); /* six digits, NUL, and the space already there */
    h[155] = ' ';
    if ((s = emit(w, h, sizeof h, err)) != CH_OK || (s = emit(w, data, len, err)) != CH_OK)
        return s;
    if (len % 512)
        s = emit(w, zero, 512 - len % 512, err);
    return s;
}

enum ch_status
bk_writer_open(const char *path, const char *passphrase, struct bk_writer **out, struct ch_err *err)
{
    return bk_writer_open_kdf(path, passphrase, ENC_OPS, ENC_MEM, out, err);
}

enum ch_status
bk_writer_open_kdf(const char *path, const char *passphrase, unsigned long long ops, size_t mem,
                   struct bk_writer **out, struct ch_err *err)
{
    struct bk_writer *w = calloc(1, sizeof *w);
    struct stat sb;
    enum ch_status s = CH_OK;

    if (!w)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    w->fd = -1;
    if (stat(path, &sb) == 0) {
        s = ch_err_set(err, CH_EEXIST, NULL, "%s already exists; refusing to overwrite it", path);
        goto fail;
    }
    size_t n = strlen(path) + 16;
    if (!(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
        s = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto fail;
    }
    snprintf(w->tmp, n, "%s.partial", path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        s = ch_err_set(err, CH_EINVAL, NULL, "cannot create %s: %s", w->tmp, strerror(errno));
        goto fail;
    }
    if (passphrase && *passphrase) {
        unsigned char hdr[ENC_HDR_LEN], key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
        unsigned char *salt = hdr + 32;
        memcpy(hdr, BK_ENC_MAGIC, 16);
        if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > ENC_OPS_MAX || mem < crypto_pwhash_MEMLIMIT_MIN ||
            mem > ENC_MEM_MAX) {
            s = ch_err_set(err, CH_EINVAL, NULL, "key-derivation settings out of range");
            goto fail;
        }
        put_be(hdr + 16, ops, 8);
        put_be(hdr + 24, mem, 8);
        randombytes_buf(salt, crypto_pwhash_SALTBYTES);
        if (crypto_pwhash(key, sizeof key, passphrase, strlen(passphrase), salt, ops, mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
            s = ch_err_set(err, CH_ENOMEM, NULL, "cannot derive the key (out of memory)");
            goto fail;
        }
        key_check(hdr + 32 + crypto_pwhash_SALTBYTES, key, sizeof key);
        crypto_secretstream_xchacha20poly1305_init_push(&w->ss, hdr + SS_HDR_OFF, key);
        sodium_memzero(key, sizeof key);
        w->enc = true;
        if ((s = write_all(w->fd, hdr, sizeof hdr, err)) != CH_OK)
            goto fail;
    }
    *out = w;
    return CH_OK;
fail:
    bk_writer_abort(w);
    return s;
}

static enum ch_status
flush_part(struct bk_writer *w, struct ch_err *err)
{
    char name[160];
    if (!w->npart)
        return CH_OK;
    snprintf(name, sizeof name, "%s/%08u.rec", w->name, ++w->nparts);
    crypto_sha256_update(&w->sum, w->part, w->npart);
    w->bytes += w->npart;
    enum ch_status s = tar_entry(w, name, w->part, w->npart, err);
    sodium_memzero(w->part, w->npart);
    w->npart = 0;
    return s;
}

enum ch_status
bk_writer_begin(struct bk_writer *w, const char *name, struct ch_err *err)
{
    if (w->open || !*name || strlen(name) >= sizeof w->name || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                            "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
                                                                        strlen(name))
        return ch_err_set(err, CH_EINVAL, NULL, "bad resource name for the archive: %s", name);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->open = true;
    w->nparts = 0;
    w->records = w->bytes = 0;
    crypto_sha256_init(&w->sum);
    return CH_OK;
}

enum ch_status
bk_writer_record(struct bk_writer *w, const struct bk_record *r, struct ch_err *err)
{
    size_t need = 4 + 8 + 8 + 2 + r->subject_len + 4 + r->hdr_len + 4 + r->len;

    if (!w->open || r->subject_len > 65535 || r->hdr_len > UINT32_MAX / 2 || r->len > UINT32_MAX / 2 ||
        need > BK_ENTRY_MAX)
        return ch_err_set(err, CH_EINVAL, NULL, "record too large for the archive");
    if (w->npart + need > w->cap) {
        size_t cap = w->cap ? w->cap : PART_TARGET + 64 * 1024;
        while (cap < w->npart + need)
            cap *= 2;
        unsigned char *p = malloc(cap);
        if (!p)
            return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        if (w->part) {
            memcpy(p, w->part, w->npart);
            sodium_memzero(w->part, w->cap);
            free(w->part);
        }
        w->part = p;
        w->cap = cap;
    }
    unsigned char *p = w->part + w->npart;
    put_be(p, need - 4, 4);
    put_be(p + 4, r->seq, 8);
    put_be(p + 12, (uint64_t)r->time_ns, 8);
    put_be(p + 20, r->subject_len, 2);
    memcpy(p + 22, r->subject, r->subject_len);
    p += 22 + r->subject_len;
    put_be(p, r->hdr_len, 4);
    if (r->hdr_len)
        memcpy(p + 4, r->hdr, r->hdr_len);
    p += 4 + r->hdr_len;
    put_be(p, r->len, 4);
    if (r->len)
        memcpy(p + 4, r->data, r->len);
    w->npart += need;
    w->records++;
    return w->npart >= PART_TARGET ? flush_part(w, err) : CH_OK;
}

enum ch_status
bk_writer_end(struct bk_writer *w, uint64_t *records, uint64_t *bytes, char sha256_hex[65], struct ch_err *err)
{
    unsigned char d[32];
    enum ch_status s;

    if (!w->open)
        return ch_err_set(err, CH_EINVAL, NULL, "no resource is open");
    if ((s = flush_part(w, err)) != CH_OK)
        return s;
    crypto_sha256_final(&w->sum, d);
    sodium_bin2hex(sha256_hex, 65, d, sizeof d);
    *records = w->records;
    *bytes = w->bytes;
    w->open = false;
    return CH_OK;
}

enum ch_status
bk_writer_file(struct bk_writer *w, const char *name, const void *data, size_t len, struct ch_err *err)
{
    if (w->open || strchr(name, '/'))
        return ch_err_set(err, CH_EINVAL, NULL, "bad file entry for the archive: %s", name);
    return tar_entry(w, name, data, len, err);
}

/* fsync the directory that holds path, so that the new name survives a crash. */
static void
sync_dir(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return;
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash == d)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = d;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some filesystems refuse fsync on a directory */
        close(fd);
    }
    free(d);
}

/* Give the finished temporary file tmp its name path, never replacing a file that appeared at path meanwhile:
 * link() then unlink(); where the filesystem has no hard links (vfat, exFAT, some CIFS mounts) a rename that
 * refuses to replace (renameat2 RENAME_NOREPLACE), and where that is unsupported too, a rename after a last
 * check that path is still free. */
static enum ch_status
publish(const char *tmp, const char *path, struct ch_err *err)
{
    if (link(tmp, path) == 0) {
        unlink(tmp);
        sync_dir(path);
        return CH_OK;
    }
    int e = errno;
    if (e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == EXDEV || e == ENOSYS || e == EMLINK) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
            sync_dir(path);
            return CH_OK;
        }
        e = errno;
        if (e == EINVAL || e == ENOSYS || e == ENOTSUP || e == EOPNOTSUPP) {
            struct stat sb;
            if (lstat(path, &sb) == 0)
                e = EEXIST;
            else if (rename(tmp, path) == 0) {
                sync_dir(path);
                return CH_OK;
            } else
                e = errno;
        }
    }
    return ch_err_set(err, CH_EINTERNAL, NULL, "cannot create %s: %s", path, strerror(e));
}

enum ch_status
bk_writer_finish(struct bk_writer *w, const char *manifest, struct ch_err *err)
{
    static const unsigned char zero[1024];
    enum ch_status s;

    if (w->open) {
        s = ch_err_set(err, CH_EINVAL, NULL, "a resource is still open");
        goto fail;
    }
    if ((s = tar_entry(w, BK_MANIFEST, manifest, strlen(manifest), err)) != CH_OK ||
        (s = emit(w, zero, sizeof zero, err)) != CH_OK || (s = flush_out(w, true, err)) != CH_OK)
        goto fail;
    int fd = w->fd;
    w->fd = -1;
    int e = fsync(fd) != 0 ? errno : 0;
    if (close(fd) != 0 && !e) /* closed whatever fsync said: no descriptor leaks */
        e = errno;
    if (e) {
        s = ch_err_set(err, CH_EINTERNAL, NULL, "cannot write %s: %s", w->tmp, strerror(e));
        goto fail;
    }
    if ((s = publish(w->tmp, w->path, err)) != CH_OK)
        goto fail;
    free(w->part);
    free(w->path);
    free(w->tmp);
    sodium_memzero(w, sizeof *w);
    free(w);
    return CH_OK;
fail:
    bk_writer_abort(w);
    return s;
}

void
bk_writer_abort(struct bk_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    if (w->part) {
        sodium_memzero(w->part, w->cap);
        free(w->part);
    }
    free(w->path);
    free(w->tmp);
    sodium_memzero(w, sizeof *w);
    free(w);
}

/* ---- reader ---- */

struct bk_reader {
    int fd;
    bool enc, final;
    uint64_t offset; /* of the file, for messages */
    crypto_secretstream_xchacha20poly1305_state ss;
    unsigned chunks;
    unsigned char *in;      /* decrypted bytes not yet consumed */
    size_t nin, pos;
    unsigned char *entry;   /* the current entry's bytes */
    size_t entry_cap;
    char name[256];
    bool ended;
};

static enum ch_status
read_exact(int fd, void *buf, size_t len, size_t *got, struct ch_err *err)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < len) {
        ssize_t n = read(fd, p + *got, len - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ch_err_set(err, CH_EINTERNAL, NULL, "cannot read the archive: %s", strerror(errno));
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return CH_OK;
}

/* Decrypt the next chunk into r->in. */
static enum ch_status
next_chunk(struct bk_reader *r, struct ch_err *err)
{
    unsigned char hdr[4];
    size_t got;
    enum ch_status s;

    if (r->final)
        return ch_err_set(err, CH_EINVAL, NULL, "archive has data after its end");
    if ((s = read_exact(r->fd, hdr, 4, &got, err)) != CH_OK)
        return s;
    if (got < 4)
        return ch_err_set(err, CH_EINVAL, NULL, "archive is truncated (the encrypted stream ends at byte %llu "
                                                "without its final chunk)", (unsigned long long)r->offset);
    size_t clen = (size_t)get_be(hdr, 4);
    if (clen < crypto_secretstream_xchacha20poly1305_ABYTES || clen > CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)
        return ch_err_set(err, CH_EINVAL, NULL, "archive is damaged (bad chunk length at byte %llu)",
                          (unsigned long long)r->offset);
    unsigned char *c = malloc(clen);
    if (!c)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if ((s = read_exact(r->fd, c, clen, &got, err)) != CH_OK) {
        free(c);
        return s;
    }
    if (got < clen) {
        free(c);
        return ch_err_set(err, CH_EINVAL, NULL, "archive is truncated (at byte %llu)",
                          (unsigned long long)(r->offset + 4 + got));
    }
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&r->ss, r->in, &mlen, &tag, c, clen, NULL, 0) != 0) {
        free(c);
        return ch_err_set(err, CH_EINVAL, NULL, "archive is damaged or was tampered with (authentication failed "
                                                "for the chunk at byte %llu)", (unsigned long long)r->offset);
    }
    free(c);
    r->chunks++;
    r->offset += 4 + clen;
    r->nin = (size_t)mlen;
    r->pos = 0;
    r->final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    return CH_OK;
}

/* Exactly len bytes of the tar (decrypted if need be); CH_EINVAL at a premature end. */
static enum ch_status
src_read(struct bk_reader *r, void *buf, size_t len, struct ch_err *err)
{
    unsigned char *p = buf;
    enum ch_status s;

    if (!r->enc) {
        size_t got;
        if ((s = read_exact(r->fd, buf, len, &got, err)) != CH_OK)
            return s;
        r->offset += got;
        if (got < len)
            return ch_err_set(err, CH_EINVAL, NULL, "archive is truncated (at byte %llu)",
                              (unsigned long long)r->offset);
        return CH_OK;
    }
    while (len) {
        if (r->pos == r->nin) {
            if (r->final)
                return ch_err_set(err, CH_EINVAL, NULL, "archive is truncated (the tar ends early)");
            if ((s = next_chunk(r, err)) != CH_OK)
                return s;
            continue;
        }
        size_t n = r->nin - r->pos < len ? r->nin - r->pos : len;
        memcpy(p, r->in + r->pos, n);
        r->pos += n;
        p += n;
        len -= n;
    }
    return CH_OK;
}

bool
bk_file_encrypted(const char *path)
{
    char magic[16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool yes = false;
    if (fd >= 0) {
        yes = read(fd, magic, sizeof magic) == (ssize_t)sizeof magic && !memcmp(magic, BK_ENC_MAGIC, 16);
        close(fd);
    }
    return yes;
}

enum ch_status
bk_reader_open(const char *path, const char *passphrase, struct bk_reader **out, struct ch_err *err)
{
    struct bk_reader *r = calloc(1, sizeof *r);
    unsigned char hdr[ENC_HDR_LEN];
    size_t got;
    enum ch_status s;
    struct stat sb;

    if (!r)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        s = ch_err_set(err, errno == ENOENT ? CH_ENOTFOUND : CH_EINVAL, NULL, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(r->fd, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        s = ch_err_set(err, CH_EINVAL, NULL, "%s: not a regular file", path);
        goto fail;
    }
    if ((s = read_exact(r->fd, hdr, sizeof hdr, &got, err)) != CH_OK)
        goto fail;
    if (got >= 16 && !memcmp(hdr, BK_ENC_MAGIC, 16)) {
        unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
        uint64_t ops = get_be(hdr + 16, 8), mem = get_be(hdr + 24, 8);
        r->enc = true;
        if (got < sizeof hdr) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is truncated (in its encryption header)", path);
            goto fail;
        }
        if (!passphrase || !*passphrase) {
            s = ch_err_set(err, CH_EAUTH, NULL, "%s is encrypted: give its passphrase with --passphrase-file FILE "
                                                "or CHATTO_BACKUP_PASSPHRASE", path);
            goto fail;
        }
        if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > ENC_OPS_MAX || mem < crypto_pwhash_MEMLIMIT_MIN ||
            mem > ENC_MEM_MAX) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (implausible key-derivation settings)", path);
            goto fail;
        }
        if (crypto_pwhash(key, sizeof key, passphrase, strlen(passphrase), hdr + 32, ops, (size_t)mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
            s = ch_err_set(err, CH_ENOMEM, NULL, "cannot derive the key (out of memory)");
            goto fail;
        }
        unsigned char check[ENC_CHECK_LEN];
        key_check(check, key, sizeof key);
        if (sodium_memcmp(check, hdr + 32 + crypto_pwhash_SALTBYTES, ENC_CHECK_LEN) != 0) {
            sodium_memzero(key, sizeof key);
            s = ch_err_set(err, CH_EAUTH, NULL, "wrong passphrase for %s", path);
            goto fail;
        }
        int bad = crypto_secretstream_xchacha20poly1305_init_pull(&r->ss, hdr + SS_HDR_OFF, key);
        sodium_memzero(key, sizeof key);
        if (bad) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: archive is damaged (bad stream header)", path);
            goto fail;
        }
        if (!(r->in = malloc(CHUNK))) {
            s = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
            goto fail;
        }
        r->offset = sizeof hdr;
    } else {
        if (lseek(r->fd, 0, SEEK_SET) != 0) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: cannot seek: %s", path, strerror(errno));
            goto fail;
        }
        unsigned char h[512];
        if (read_exact(r->fd, h, sizeof h, &got, err) != CH_OK || got < sizeof h || memcmp(h + 257, "ustar", 5) ||
            lseek(r->fd, 0, SEEK_SET) != 0) {
            s = ch_err_set(err, CH_EINVAL, NULL, "%s: not a chatto backup archive (neither an encrypted archive nor "
                                                 "a tar file)", path);
            goto fail;
        }
    }
    *out = r;
    return CH_OK;
fail:
    bk_reader_close(r);
    return s;
}

bool
bk_reader_encrypted(const struct bk_reader *r)
{
    return r->enc;
}

static uint64_t
octal(const unsigned char *p, size_t n, bool *ok)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && p[i] == ' ')
        i++;
    size_t start = i;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++)
        v = v * 8 + (uint64_t)(p[i] - '0');
    if (i == start || (i < n && p[i] != 0 && p[i] != ' '))
        *ok = false;
    return v;
}

enum ch_status
bk_reader_next(struct bk_reader *r, const char **name, const unsigned char **data, size_t *len, struct ch_err *err)
{
    unsigned char h[512];
    enum ch_status s;
    bool ok = true;
    static const unsigned char zero[512];

    *name = NULL;
    if (r->ended)
        return CH_OK;
    if ((s = src_read(r, h, sizeof h, err)) != CH_OK)
        return s;
    if (!memcmp(h, zero, sizeof zero)) {
        /* the end: a second zero block, then (encrypted) the stream must end right here */
        if ((s = src_read(r, h, sizeof h, err)) != CH_OK)
            return s;
        if (memcmp(h, zero, sizeof zero))
            return ch_err_set(err, CH_EINVAL, NULL, "archive is damaged (data after the end-of-archive block)");
        /* an archive whose tar is an exact multiple of CHUNK bytes may end with an empty FINAL chunk (every
         * writer before the lazy flush in emit() did that): read it */
        if (r->enc && r->pos == r->nin && !r->final) {
            if ((s = next_chunk(r, err)) != CH_OK)
                return s;
            if (!r->final)
                return ch_err_set(err, CH_EINVAL, NULL, "archive has data after its end");
        }
        if (r->enc && (r->pos != r->nin || !r->final))
            return ch_err_set(err, CH_EINVAL, NULL, r->final ? "archive has data after its end"
                                                             : "archive is truncated (no final chunk)");
        r->ended = true;
        return CH_OK;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    uint64_t want = octal(h + 148, 8, &ok), size = octal(h + 124, 12, &ok);
    if (!ok || want != sum || memcmp(h + 257, "ustar", 5))
        return ch_err_set(err, CH_EINVAL, NULL, "archive is damaged (bad tar header near byte %llu)",
                          (unsigned long long)r->offset);
    if (size > BK_ENTRY_MAX)
        return ch_err_set(err, CH_EINVAL, NULL, "archive is damaged (an entry of %llu bytes)", (unsigned long long)size);
    memcpy(r->name, h, 100);
    r->name[100] = '\0';
    if (size + 512 > r->entry_cap) {
        unsigned char *p = realloc(r->entry, (size_t)size + 512);
        if (!p)
            return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        r->entry = p;
        r->entry_cap = (size_t)size + 512;
    }
    size_t padded = (size_t)((size + 511) / 512 * 512);
    if ((s = src_read(r, r->entry, padded, err)) != CH_OK)
        return s;
    *name = r->name;
    *data = r->entry;
    *len = (size_t)size;
    return CH_OK;
}

void
bk_reader_close(struct bk_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->in) {
        sodium_memzero(r->in, CHUNK);
        free(r->in);
    }
    if (r->entry) {
        sodium_memzero(r->entry, r->entry_cap);
        free(r->entry);
    }
    sodium_memzero(r, sizeof *r); /* the secretstream state holds the key */
    free(r);
}

enum ch_status
bk_record_decode(const unsigned char *part, size_t len, size_t *off, struct bk_record *out, struct ch_err *err)
{
    const unsigned char *p = part + *off;
    size_t left = len - *off, rl, sl, hl, dl;

    if (left < 4 || (rl = (size_t)get_be(p, 4)) > left - 4 || rl < 8 + 8 + 2 + 4 + 4)
        goto bad;
    sl = (size_t)get_be(p + 20, 2);
    if (22 + sl + 4 > rl + 4)
        goto bad;
    hl = (size_t)get_be(p + 22 + sl, 4);
    if (22 + sl + 4 + hl + 4 > rl + 4)
        goto bad;
    dl = (size_t)get_be(p + 22 + sl + 4 + hl, 4);
    if (22 + sl + 4 + hl + 4 + dl != rl + 4)
        goto bad;
    out->seq = get_be(p + 4, 8);
    out->time_ns = (int64_t)get_be(p + 12, 8);
    out->subject = (const char *)p + 22;
    out->subject_len = sl;
    out->hdr = (const char *)p + 22 + sl + 4;
    out->hdr_len = hl;
    out->data = p + 22 + sl + 4 + hl + 4;
    out->len = dl;
    *off += rl + 4;
    return CH_OK;
bad:
    return ch_err_set(err, CH_EINVAL, NULL, "archive is damaged (a malformed record at offset %zu of a part)", *off);
}
