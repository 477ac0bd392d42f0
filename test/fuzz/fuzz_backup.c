/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the backup archive reader (lib/backup) and restore's checks (server/backupcmd.c verify(), through
 * backupcmd_check_archive), the bytes `chatto restore` reads before it trusts anything: tar headers, entry sizes,
 * the encryption header, records, their subjects and headers, the manifest's JSON and numbers, the checksums.
 * A damaged or hostile archive must give an error, never a crash, an over-read, undefined behaviour (a manifest
 * number cast out of range) or a huge allocation. No NATS is involved: verify() reads only the file. (Encrypted
 * inputs stop at the passphrase check: every run would otherwise spend Argon2id's memory.)
 *
 * Input: an archive file's bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backup/backup.h"
#include "backupcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-archive", 0);
    char path[64];
    struct bk_reader *r = NULL;
    const char *name;
    const unsigned char *entry;
    size_t len;

    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size)
        goto out;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (bk_reader_open(path, NULL, &r, NULL) != CH_OK)
        goto out;
    (void)bk_reader_encrypted(r);
    while (bk_reader_next(r, &name, &entry, &len, NULL) == CH_OK && name) {
        struct bk_record rec;
        for (size_t off = 0; off < len && bk_record_decode(entry, len, &off, &rec, NULL) == CH_OK;) {
            (void)bk_subject_ok(rec.subject, rec.subject_len, "chatto.ev.");
            (void)bk_headers_ok(rec.hdr, rec.hdr_len);
        }
    }
    /* the whole of restore's first pass: manifest, counts, cuts, checksums, subjects per stream */
    struct ch_err err = { 0 };
    (void)backupcmd_check_archive(path, NULL, &err);
out:
    bk_reader_close(r);
    close(fd);
    return 0;
}
