/* SPDX-License-Identifier: MIT */
#pragma once
/* `chatto backup [-o FILE] [--passphrase-file FILE]` and `chatto restore FILE [--conflict=...]`. Main thread. */
#include "cli.h"

/* Write an archive of every stream, bucket and object store Chatto owns. Returns the exit code. */
int backupcmd_backup(const struct cli_args *a, struct cfg *cfg);
/* Load an archive (a->pos[0]) into this configuration's NATS. Returns the exit code. */
int backupcmd_restore(const struct cli_args *a, struct cfg *cfg);
/* Read and check the archive at path as `chatto restore` does before it writes anything (records, subjects,
 * headers, manifest, checksums), without NATS: CH_OK, or why not in err. For tests and the fuzz harness. */
enum ch_status backupcmd_check_archive(const char *path, const char *passphrase, struct ch_err *err);
