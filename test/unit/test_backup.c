/* SPDX-License-Identifier: MIT */
/*
 * lib/backup: the archive writer and reader, plain and encrypted. Round trips of many records across several parts,
 * then every way an archive goes bad (wrong passphrase, one flipped byte anywhere, cut off anywhere, malformed
 * records) must end in an error, never a crash or a silent success.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "backup/backup.h"
#include "crypto/crypto.h"

static char dir[] = "/tmp/chatto-test-backup-XXXXXX";

static void
path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    unlink(buf);
}

/* Write an archive of two resources: n records of growing size (several 4 MiB parts), then 3 small ones. */
static void
write_sample(const char *path, const char *pass, int n)
{
    struct bk_writer *w = NULL;
    uint64_t recs, bytes;
    char sha[65], subj[64];
    static char data[300000];

    memset(data, 'q', sizeof data);
    /* INTERACTIVE, as 0.2.0 wrote: quicker to derive dozens of times, and it shows such archives still read */
    assert_int_equal(bk_writer_open_kdf(path, pass, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        crypto_pwhash_MEMLIMIT_INTERACTIVE, &w, NULL), CH_OK);
    assert_int_equal(bk_writer_begin(w, "CHATTO_EVENTS", NULL), CH_OK);
    for (int i = 0; i < n; i++) {
        snprintf(subj, sizeof subj, "chatto.ev.r.msg.%d", i);
        struct bk_record r = { .seq = (uint64_t)i * 2 + 1, .time_ns = 1000 + i, .subject = subj,
                               .subject_len = strlen(subj), .hdr = "A: b\r\n", .hdr_len = 6, .data = data,
                               .len = (size_t)(i * 997) % sizeof data };
        assert_int_equal(bk_writer_record(w, &r, NULL), CH_OK);
    }
    assert_int_equal(bk_writer_end(w, &recs, &bytes, sha, NULL), CH_OK);
    assert_int_equal(recs, (uint64_t)n);
    assert_int_equal(bk_writer_begin(w, "KV_chatto_users", NULL), CH_OK);
    for (int i = 0; i < 3; i++) {
        struct bk_record r = { .seq = 7, .subject = "$KV.chatto_users.k", .subject_len = 18, .hdr = "", .data = "v",
                               .len = 1 };
        assert_int_equal(bk_writer_record(w, &r, NULL), CH_OK);
    }
    assert_int_equal(bk_writer_end(w, &recs, &bytes, sha, NULL), CH_OK);
    assert_int_equal(bk_writer_finish(w, "{\"format\":\"chatto-backup\"}", NULL), CH_OK);
}

/* Read it all back: CH_OK and the counts, or the first error. */
static enum ch_status
read_all(const char *path, const char *pass, int *events, int *kv, bool *manifest, struct ch_err *err)
{
    struct bk_reader *r = NULL;
    enum ch_status s;
    const char *name;
    const unsigned char *data;
    size_t len;

    *events = *kv = 0;
    *manifest = false;
    if ((s = bk_reader_open(path, pass, &r, err)) != CH_OK)
        return s;
    for (;;) {
        if ((s = bk_reader_next(r, &name, &data, &len, err)) != CH_OK || !name)
            break;
        if (!strcmp(name, BK_MANIFEST)) {
            *manifest = len == 26 && !memcmp(data, "{\"format\":\"chatto-backup\"}", 26);
            continue;
        }
        for (size_t off = 0; off < len;) {
            struct bk_record rec;
            if ((s = bk_record_decode(data, len, &off, &rec, err)) != CH_OK)
                goto out;
            if (!strncmp(name, "CHATTO_EVENTS/", 14)) {
                assert_int_equal(rec.seq, (uint64_t)*events * 2 + 1);
                assert_int_equal(rec.len, (size_t)(*events * 997) % 300000);
                assert_int_equal(rec.hdr_len, 6);
                (*events)++;
            } else
                (*kv)++;
        }
    }
out:
    bk_reader_close(r);
    return s;
}

static void
test_plain_and_encrypted_round_trips_across_parts(void **state)
{
    char path[256];
    int ev, kv;
    bool man;

    (void)state;
    for (int enc = 0; enc < 2; enc++) {
        path_of(path, sizeof path, enc ? "a.tar.enc" : "a.tar");
        write_sample(path, enc ? "pass phrase" : NULL, 60);
        assert_int_equal(read_all(path, enc ? "pass phrase" : NULL, &ev, &kv, &man, NULL), CH_OK);
        assert_int_equal(ev, 60);
        assert_int_equal(kv, 3);
        assert_true(man);
        assert_int_equal(bk_file_encrypted(path), enc);
        /* never overwritten */
        struct bk_writer *w = NULL;
        assert_int_equal(bk_writer_open(path, NULL, &w, NULL), CH_EEXIST);
        assert_null(w);
    }
}

static void
test_wrong_or_missing_passphrase_is_an_auth_error(void **state)
{
    char path[256];
    int ev, kv;
    bool man;
    struct ch_err err = { 0 };

    (void)state;
    path_of(path, sizeof path, "b.tar.enc");
    write_sample(path, "right", 3);
    assert_int_equal(read_all(path, "wrong", &ev, &kv, &man, &err), CH_EAUTH);
    assert_non_null(strstr(err.msg, "wrong passphrase"));
    assert_int_equal(read_all(path, NULL, &ev, &kv, &man, &err), CH_EAUTH);
    assert_non_null(strstr(err.msg, "encrypted"));
}

static void
test_every_flipped_byte_and_every_cut_is_an_error(void **state)
{
    char path[256], bad[256];
    int ev, kv;
    bool man;
    struct stat sb;

    (void)state;
    for (int enc = 0; enc < 2; enc++) {
        path_of(path, sizeof path, "c");
        path_of(bad, sizeof bad, "c.bad");
        write_sample(path, enc ? "pw" : NULL, 4);
        assert_int_equal(stat(path, &sb), 0);
        FILE *f = fopen(path, "rb");
        unsigned char *buf = malloc((size_t)sb.st_size);
        assert_int_equal(fread(buf, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
        fclose(f);
        /* (each encrypted read derives the key with Argon2id, ~0.2 s: a dozen places, spread over the file) */
        for (off_t at = 0; at < sb.st_size; at += enc ? sb.st_size / 12 + 1 : 1021) {
            /* a flipped byte: encrypted archives catch every one; plain ones catch those in headers and records
             * (the manifest's checksums, compared by the caller, cover record contents) */
            buf[at] ^= 0x20;
            f = fopen(bad, "wb");
            fwrite(buf, 1, (size_t)sb.st_size, f);
            fclose(f);
            enum ch_status s = read_all(bad, enc ? "pw" : NULL, &ev, &kv, &man, NULL);
            if (enc)
                assert_int_not_equal(s, CH_OK);
            buf[at] ^= 0x20;
            /* cut off here */
            f = fopen(bad, "wb");
            fwrite(buf, 1, (size_t)at, f);
            fclose(f);
            s = read_all(bad, enc ? "pw" : NULL, &ev, &kv, &man, NULL);
            if (enc || at < sb.st_size - 1024) /* a plain tar cut inside its trailing zero blocks is whole */
                assert_true(s != CH_OK || !man);
        }
        free(buf);
    }
}

static void
test_malformed_records_are_rejected(void **state)
{
    unsigned char rec[64];
    struct bk_record r;
    size_t off = 0;

    (void)state;
    memset(rec, 0, sizeof rec);
    rec[3] = 200; /* claims more than there is */
    assert_int_equal(bk_record_decode(rec, sizeof rec, &off, &r, NULL), CH_EINVAL);
    rec[3] = 26; /* 8 + 8 + 2 + 0 + 4 + 0 + 4 = 26: an empty record */
    assert_int_equal(bk_record_decode(rec, 30, &off, &r, NULL), CH_OK);
    assert_int_equal(off, 30);
    off = 0;
    rec[21] = 5; /* a subject longer than the record */
    assert_int_equal(bk_record_decode(rec, 30, &off, &r, NULL), CH_EINVAL);
    off = 0;
    assert_int_equal(bk_record_decode(rec, 3, &off, &r, NULL), CH_EINVAL);
}

static unsigned char *
slurp(const char *path, size_t *len)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    unsigned char *buf = malloc((size_t)sb.st_size + 1);
    FILE *f = fopen(path, "rb");
    assert_non_null(buf);
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
    fclose(f);
    *len = (size_t)sb.st_size;
    return buf;
}

/* An archive holding only a manifest of mlen bytes ('x'), written by our writer. */
static void
write_manifest_only(const char *path, const char *pass, size_t mlen)
{
    struct bk_writer *w = NULL;
    char *m = malloc(mlen + 1);
    assert_non_null(m);
    memset(m, 'x', mlen);
    m[mlen] = '\0';
    assert_int_equal(bk_writer_open_kdf(path, pass, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN, &w,
                                        NULL), CH_OK);
    assert_int_equal(bk_writer_finish(w, m, NULL), CH_OK);
    free(m);
}

static enum ch_status
read_manifest_only(const char *path, const char *pass, size_t mlen, struct ch_err *err)
{
    struct bk_reader *r = NULL;
    const char *name;
    const unsigned char *data;
    size_t len;
    enum ch_status s;
    int entries = 0;

    if ((s = bk_reader_open(path, pass, &r, err)) != CH_OK)
        return s;
    while ((s = bk_reader_next(r, &name, &data, &len, err)) == CH_OK && name) {
        assert_string_equal(name, BK_MANIFEST);
        assert_int_equal(len, mlen);
        entries++;
    }
    bk_reader_close(r);
    if (s == CH_OK)
        assert_int_equal(entries, 1);
    return s;
}

/* A tar of 512 + 64000 + 1024 = 65536 bytes (one whole chunk) and its neighbours, and two whole chunks: the last
 * tar bytes must travel in the FINAL chunk, and each reads back. */
static void
test_tar_of_a_multiple_of_the_chunk_size_reads_back(void **state)
{
    static const size_t sizes[] = { 64000 - 512, 64000 - 1, 64000, 64000 + 1, 64000 + 512, 64000 + 65536, 1, 0 };
    char path[256];

    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int enc = 0; enc < 2; enc++) {
            path_of(path, sizeof path, "m.tar");
            write_manifest_only(path, enc ? "pw" : NULL, sizes[i]);
            struct ch_err err = { 0 };
            enum ch_status s = read_manifest_only(path, enc ? "pw" : NULL, sizes[i], &err);
            if (s != CH_OK)
                fail_msg("manifest of %zu bytes, %s: %s", sizes[i], enc ? "encrypted" : "plain", err.msg);
            if (enc && sizes[i] == 64000) { /* one chunk, the FINAL one: no empty chunk after it */
                struct stat sb;
                assert_int_equal(stat(path, &sb), 0);
                assert_int_equal(sb.st_size, 16 + 8 + 8 + crypto_pwhash_SALTBYTES + 32 +
                                                 crypto_secretstream_xchacha20poly1305_HEADERBYTES + 4 + 65536 +
                                                 crypto_secretstream_xchacha20poly1305_ABYTES);
            }
        }
    }
}

/* Encrypt a plain tar the way the first 0.2.0 writer did: a 64 KiB chunk as soon as the buffer filled, then the
 * FINAL chunk with what was left, possibly nothing. final_mode 0: as it did; 1: no FINAL chunk (cut off);
 * 2: a non-empty FINAL chunk after the end (data after the end). */
static void
encrypt_like_0_2_0(const char *plain, const char *out, const char *pass, int final_mode)
{
    size_t len;
    unsigned char *tar = slurp(plain, &len);
    unsigned char hdr[16 + 8 + 8 + crypto_pwhash_SALTBYTES + 32 + crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    crypto_secretstream_xchacha20poly1305_state st;
    static const char what[] = "chatto-backup key check";
    unsigned long long ops = crypto_pwhash_OPSLIMIT_MIN;
    size_t mem = crypto_pwhash_MEMLIMIT_MIN;

    memcpy(hdr, BK_ENC_MAGIC, 16);
    for (int i = 0; i < 8; i++) {
        hdr[16 + i] = (unsigned char)(ops >> (56 - 8 * i));
        hdr[24 + i] = (unsigned char)((uint64_t)mem >> (56 - 8 * i));
    }
    randombytes_buf(hdr + 32, crypto_pwhash_SALTBYTES);
    assert_int_equal(crypto_pwhash(key, sizeof key, pass, strlen(pass), hdr + 32, ops, mem,
                                   crypto_pwhash_ALG_ARGON2ID13), 0);
    crypto_generichash(hdr + 32 + crypto_pwhash_SALTBYTES, 32, (const unsigned char *)what, sizeof what - 1, key,
                       sizeof key);
    crypto_secretstream_xchacha20poly1305_init_push(&st, hdr + 32 + crypto_pwhash_SALTBYTES + 32, key);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    fwrite(hdr, 1, sizeof hdr, f);
    static unsigned char c[65536 + crypto_secretstream_xchacha20poly1305_ABYTES];
    size_t off = 0;
    for (;;) {
        size_t n = len - off > 65536 ? 65536 : len - off;
        bool last = off + n == len && n < 65536;
        unsigned long long clen;
        if (off == len) {
            /* the buffer filled exactly at the end: the old writer sent an empty FINAL chunk */
            if (final_mode == 1)
                break;
            n = 0;
            last = true;
        }
        if (off == len && final_mode == 2) /* data in the chunk after the end */
            crypto_secretstream_xchacha20poly1305_push(&st, c, &clen, (const unsigned char *)"junk", 4, NULL, 0,
                                                       crypto_secretstream_xchacha20poly1305_TAG_FINAL);
        else
            crypto_secretstream_xchacha20poly1305_push(&st, c, &clen, tar + off, n, NULL, 0,
                                                       last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
        unsigned char l[4] = { (unsigned char)(clen >> 24), (unsigned char)(clen >> 16), (unsigned char)(clen >> 8),
                               (unsigned char)clen };
        fwrite(l, 1, 4, f);
        fwrite(c, 1, (size_t)clen, f);
        off += n;
        if (last)
            break;
    }
    fclose(f);
    sodium_memzero(key, sizeof key);
    free(tar);
}

/* Archives the first 0.2.0 wrote for a tar of an exact multiple of 64 KiB (an empty FINAL chunk after the end
 * blocks) read back; one that lacks that chunk, or has data in it, does not. */
static void
test_an_empty_final_chunk_after_the_end_reads(void **state)
{
    char plain[256], enc[256];
    struct ch_err err = { 0 };

    (void)state;
    path_of(plain, sizeof plain, "legacy.tar");
    path_of(enc, sizeof enc, "legacy.tar.enc");
    write_manifest_only(plain, NULL, 64000);
    encrypt_like_0_2_0(plain, enc, "pw", 0);
    if (read_manifest_only(enc, "pw", 64000, &err) != CH_OK)
        fail_msg("%s", err.msg);
    path_of(enc, sizeof enc, "legacy.tar.enc");
    encrypt_like_0_2_0(plain, enc, "pw", 1);
    assert_int_equal(read_manifest_only(enc, "pw", 64000, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "truncated"));
    path_of(enc, sizeof enc, "legacy.tar.enc");
    encrypt_like_0_2_0(plain, enc, "pw", 2);
    assert_int_not_equal(read_manifest_only(enc, "pw", 64000, &err), CH_OK);
    /* and a tar that is not a multiple: the old writer's output read before and still does */
    path_of(plain, sizeof plain, "legacy.tar");
    write_manifest_only(plain, NULL, 1000);
    path_of(enc, sizeof enc, "legacy.tar.enc");
    encrypt_like_0_2_0(plain, enc, "pw", 0);
    assert_int_equal(read_manifest_only(enc, "pw", 1000, &err), CH_OK);
}

/* New archives take Argon2id's MODERATE cost (an archive can be attacked offline); the header says so. */
static void
test_new_archives_use_the_moderate_kdf_cost(void **state)
{
    char path[256];
    struct bk_writer *w = NULL;
    size_t len;

    (void)state;
    path_of(path, sizeof path, "kdf.tar.enc");
    assert_int_equal(bk_writer_open(path, "pw", &w, NULL), CH_OK);
    assert_int_equal(bk_writer_finish(w, "{}", NULL), CH_OK);
    unsigned char *b = slurp(path, &len);
    uint64_t ops = 0, mem = 0;
    for (int i = 0; i < 8; i++) {
        ops = ops << 8 | b[16 + i];
        mem = mem << 8 | b[24 + i];
    }
    assert_int_equal(ops, crypto_pwhash_OPSLIMIT_MODERATE);
    assert_int_equal(mem, crypto_pwhash_MEMLIMIT_MODERATE);
    free(b);
    assert_int_equal(read_manifest_only(path, "pw", 2, NULL), CH_OK);
    path_of(path, sizeof path, "kdf.tar.enc");
    w = NULL;
    assert_int_equal(bk_writer_open_kdf(path, "pw", 1000, crypto_pwhash_MEMLIMIT_MIN, &w, NULL), CH_EINVAL);
    assert_null(w);
}

static void
test_not_an_archive(void **state)
{
    char path[256];
    struct bk_reader *r = NULL;
    struct ch_err err = { 0 };

    (void)state;
    path_of(path, sizeof path, "junk");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 100; i++)
        fputs("not an archive at all\n", f);
    fclose(f);
    assert_int_equal(bk_reader_open(path, NULL, &r, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "not a chatto backup archive"));
    path_of(path, sizeof path, "missing");
    assert_int_equal(bk_reader_open(path, NULL, &r, &err), CH_ENOTFOUND);
    assert_null(r);
}

/* A file that appears at the archive's path while the backup runs is never replaced, and no temporary file or
 * descriptor is left behind. */
static void
test_finish_never_replaces_a_file_that_appeared(void **state)
{
    char path[256], tmp[300];
    struct bk_writer *w = NULL;
    size_t len;
    struct ch_err err = { 0 };

    (void)state;
    path_of(path, sizeof path, "raced.tar");
    assert_int_equal(bk_writer_open(path, NULL, &w, NULL), CH_OK);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("someone else's", f);
    fclose(f);
    assert_int_equal(bk_writer_finish(w, "{}", &err), CH_EINTERNAL);
    unsigned char *b = slurp(path, &len);
    assert_int_equal(len, 14);
    free(b);
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
}

/* What a restore may publish: a subject of the record's own stream, one plain NATS subject. */
static void
test_subjects_outside_the_stream_or_not_plain_are_refused(void **state)
{
    static const struct {
        const char *subject, *prefix;
        bool ok;
    } cases[] = {
        { "chatto.ev.r1.msg.m1", "chatto.ev.", true },
        { "$KV.chatto_users.u1", "$KV.chatto_users.", true },
        { "$KV.chatto_users.a/b=c-d_e", "$KV.chatto_users.", true },
        { "$O.SERVER_ASSETS.C.abc", "$O.SERVER_ASSETS.", true },
        { "$JS.API.STREAM.DELETE.KV_chatto_users", "chatto.ev.", false }, /* a JetStream API request */
        { "$KV.chatto_rooms.r1", "$KV.chatto_users.", false },             /* another bucket's */
        { "chatto.ev.", "chatto.ev.", false },                             /* the prefix alone */
        { "chatto.ev.a b", "chatto.ev.", false },                          /* a space: protocol */
        { "chatto.ev.a\r\nPUB x 1", "chatto.ev.", false },                 /* CR/LF: protocol */
        { "chatto.ev.a\tb", "chatto.ev.", false },
        { "chatto.ev.a..b", "chatto.ev.", false },                         /* an empty token */
        { "chatto.ev.a.", "chatto.ev.", false },
        { "chatto.ev.>", "chatto.ev.", false },                            /* wildcards */
        { "chatto.ev.*.msg", "chatto.ev.", false },
        { "chatto.ev.a\x7f", "chatto.ev.", false },
        { "chatto.ev.\xc3\xa9", "chatto.ev.", false },
        { "chatto.e", "chatto.ev.", false },
    };
    char longs[1100];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (bk_subject_ok(cases[i].subject, strlen(cases[i].subject), cases[i].prefix) != cases[i].ok)
            fail_msg("subject %zu (%s): expected %s", i, cases[i].subject, cases[i].ok ? "ok" : "refused");
    /* a NUL inside the given length */
    assert_false(bk_subject_ok("chatto.ev.a\0b", 13, "chatto.ev."));
    /* up to BK_SUBJECT_MAX bytes */
    memcpy(longs, "chatto.ev.", 10);
    memset(longs + 10, 'a', sizeof longs - 10);
    assert_true(bk_subject_ok(longs, BK_SUBJECT_MAX, "chatto.ev."));
    assert_false(bk_subject_ok(longs, BK_SUBJECT_MAX + 1, "chatto.ev."));
}

/* Header lines are written back whole or the archive is refused: none is dropped or cut. */
static void
test_header_lines_must_be_whole_and_fit(void **state)
{
    static const struct {
        const char *hdr;
        bool ok;
    } cases[] = {
        { "", true },
        { "A: b\r\n", true },
        { "Nats-Msg-Id: x\r\nChatto-Test: kept\r\n", true },
        { "A:\r\n", true },
        { "A: b\tc\r\n", true },
        { "A: b", false },          /* no CRLF at the end */
        { "A: b\n", false },        /* LF alone */
        { "\r\n", false },          /* an empty line */
        { "no colon\r\n", false },
        { ": value\r\n", false },   /* no name */
        { "A b: c\r\n", false },    /* a space in the name */
        { "A: b\rc\r\n", false },   /* a CR inside the value */
        { "A: b\x01\r\n", false },
    };
    char big[1100 + 2];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (bk_headers_ok(cases[i].hdr, strlen(cases[i].hdr)) != cases[i].ok)
            fail_msg("headers %zu: expected %s", i, cases[i].ok ? "ok" : "refused");
    assert_false(bk_headers_ok("A: b\0c\r\n", 8));
    /* BK_HDR_LINE_MAX bytes fit; one more does not (restore used to drop such a line silently) */
    memset(big, 'v', sizeof big);
    memcpy(big, "A: ", 3);
    memcpy(big + BK_HDR_LINE_MAX, "\r\n", 2);
    assert_true(bk_headers_ok(big, BK_HDR_LINE_MAX + 2));
    memcpy(big + BK_HDR_LINE_MAX + 1, "\r\n", 2);
    assert_false(bk_headers_ok(big, BK_HDR_LINE_MAX + 3));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_encrypted_round_trips_across_parts),
        cmocka_unit_test(test_wrong_or_missing_passphrase_is_an_auth_error),
        cmocka_unit_test(test_every_flipped_byte_and_every_cut_is_an_error),
        cmocka_unit_test(test_malformed_records_are_rejected),
        cmocka_unit_test(test_not_an_archive),
        cmocka_unit_test(test_tar_of_a_multiple_of_the_chunk_size_reads_back),
        cmocka_unit_test(test_an_empty_final_chunk_after_the_end_reads),
        cmocka_unit_test(test_new_archives_use_the_moderate_kdf_cost),
        cmocka_unit_test(test_finish_never_replaces_a_file_that_appeared),
        cmocka_unit_test(test_subjects_outside_the_stream_or_not_plain_are_refused),
        cmocka_unit_test(test_header_lines_must_be_whole_and_fit),
    };
    assert_int_equal(crypto_init(), CH_OK);
    assert_non_null(mkdtemp(dir));
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
