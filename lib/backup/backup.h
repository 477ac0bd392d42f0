/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The backup archive: a POSIX ustar file (`tar tf` lists it) that our own small writer and reader handle, whole
 * or encrypted with a passphrase. Knows files and bytes only: what goes in (NATS streams) is server/backupcmd.c's
 * business, and nothing here talks to NATS.
 *
 * Layout of the tar (in this order):
 *   <RESOURCE>/<NNNNNNNN>.rec   the records of one stream, KV bucket or object store, in parts of about 4 MiB
 *                               (a record never spans parts); RESOURCE is the JetStream stream name
 *   secrets.ini                 only with `chatto backup --include-secrets`: <data_dir>/secrets.ini as it was
 *   manifest.json               written last: format, versions, and per resource its cut, counts and SHA-256
 * A record (big-endian): u32 length of the rest | u64 stream sequence | i64 stored time (ns since the epoch) |
 * u16 subject length, subject | u32 header length, headers ("Name: value\r\n" lines) | u32 data length, data.
 *
 * Encrypted archives wrap the whole tar: the magic "CHATTO-BACKUP-E1" (16 bytes), u64 opslimit, u64 memlimit,
 * a 16-byte salt (Argon2id derives the key from the passphrase: crypto_pwhash), a 32-byte key check (BLAKE2b
 * keyed with that key: a wrong passphrase is told apart from damage), the 24-byte header of a
 * crypto_secretstream_xchacha20poly1305 stream, then chunks of u32 length + ciphertext (64 KiB of plaintext
 * each), the last one tagged FINAL and holding the tar's last bytes (an earlier writer could end with an empty
 * FINAL chunk after a tar of a multiple of 64 KiB: the reader accepts that too). A wrong passphrase fails the
 * key check; a changed byte fails where it is; a cut-off file lacks the FINAL chunk. Each is reported as such,
 * never as a crash.
 *
 * Main thread only (one writer or reader is used by one thread).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define BK_MANIFEST "manifest.json"
#define BK_SECRETS "secrets.ini"
#define BK_ENC_MAGIC "CHATTO-BACKUP-E1"
#define BK_ENTRY_MAX (64u * 1024u * 1024u) /* largest tar entry the reader accepts */

/* One stored message (borrowed pointers). */
struct bk_record {
    uint64_t seq;
    int64_t time_ns;
    const char *subject;
    size_t subject_len;
    const char *hdr; /* "Name: value\r\n"... (may be empty) */
    size_t hdr_len;
    const void *data;
    size_t len;
};

/* ---- writing ---- */

struct bk_writer;

/* Start writing the archive path: bytes go to a private temporary file beside it (mode 0600) that becomes path
 * only at bk_writer_finish. With a passphrase (non-empty) the archive is encrypted. CH_EEXIST if path exists.
 * *out is the caller's, freed by bk_writer_finish or bk_writer_abort. */
enum ch_status bk_writer_open(const char *path, const char *passphrase, struct bk_writer **out, struct ch_err *err);
/* The same with the Argon2id cost given (bk_writer_open takes crypto_pwhash's MODERATE limits): for tests, which
 * write many archives, and to write archives like older versions did. CH_EINVAL outside the bounds the reader
 * accepts. */
enum ch_status bk_writer_open_kdf(const char *path, const char *passphrase, unsigned long long opslimit,
                                  size_t memlimit, struct bk_writer **out, struct ch_err *err);
/* Begin the records of resource name (a stream name: [A-Za-z0-9_-]). */
enum ch_status bk_writer_begin(struct bk_writer *w, const char *name, struct ch_err *err);
/* Add one record to the current resource. */
enum ch_status bk_writer_record(struct bk_writer *w, const struct bk_record *r, struct ch_err *err);
/* End the current resource: its record count, bytes (of its parts) and SHA-256 over those bytes as hex. */
enum ch_status bk_writer_end(struct bk_writer *w, uint64_t *records, uint64_t *bytes, char sha256_hex[65],
                             struct ch_err *err);
/* Add a whole file entry (between resources): name (no '/'), its bytes. */
enum ch_status bk_writer_file(struct bk_writer *w, const char *name, const void *data, size_t len,
                              struct ch_err *err);
/* Write the manifest, end the tar (and the encryption stream), flush to disk and rename into place. Frees w
 * (also on failure, removing the temporary file). */
enum ch_status bk_writer_finish(struct bk_writer *w, const char *manifest, struct ch_err *err);
/* Give up: remove the temporary file and free. Accepts NULL. */
void bk_writer_abort(struct bk_writer *w);

/* ---- reading ---- */

struct bk_reader;

/* Open path. An encrypted archive needs passphrase (CH_EAUTH without one or with a wrong one). CH_EINVAL: not an
 * archive of ours. *out is the caller's (bk_reader_close). */
enum ch_status bk_reader_open(const char *path, const char *passphrase, struct bk_reader **out, struct ch_err *err);
/* True if the archive is encrypted (known after the first bytes: any reader that opened). */
bool bk_reader_encrypted(const struct bk_reader *r);
/* True if path starts like an encrypted archive (so a caller can ask for the passphrase first). */
bool bk_file_encrypted(const char *path);
/* The next tar entry: *name (borrowed until the next call) and its bytes (*data borrowed likewise). *name is NULL
 * at the end of the archive (after which the encryption stream must have ended: checked). */
enum ch_status bk_reader_next(struct bk_reader *r, const char **name, const unsigned char **data, size_t *len,
                              struct ch_err *err);
void bk_reader_close(struct bk_reader *r);

/* ---- what a restore may write (check.c) ---- */

#define BK_SUBJECT_MAX 1023  /* longest record subject a restore accepts */
#define BK_HDR_LINE_MAX 1023 /* longest header line ("Name: value", without its CRLF) a restore accepts */

/* True if subject (len bytes, not NUL-terminated) starts with prefix (a stream's: "chatto.ev.", "$KV.<bucket>.",
 * "$O.<bucket>.") and is one publishable NATS subject: at most BK_SUBJECT_MAX bytes of printable ASCII without
 * space, no empty token, no wildcard ('*', '>'). */
bool bk_subject_ok(const char *subject, size_t len, const char *prefix);
/* True if hdr (len bytes, may be 0) is "Name: value\r\n" lines: each line at most BK_HDR_LINE_MAX bytes, a
 * non-empty name of printable ASCII without space before the first ':', a value without control characters but
 * tab. */
bool bk_headers_ok(const char *hdr, size_t len);

/* Decode the record at *off in a part of len bytes and advance *off. CH_EINVAL if it is malformed. */
enum ch_status bk_record_decode(const unsigned char *part, size_t len, size_t *off, struct bk_record *out,
                                struct ch_err *err);
