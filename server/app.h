/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The process: owns config, log set-up, secrets, the nats-server supervisor, storage and the HTTP edge, and
 * starts and stops them in one place. Main thread only.
 */
#include <sys/types.h>

#include "accounts/accounts.h"
#include "cli.h"
#include "store/store.h"

/* Serve until SIGTERM/SIGINT. Returns the process exit code (0 clean, 1 runtime failure, 2 config error).
 * Takes ownership of cfg. args is kept to rebuild the config on SIGHUP. */
int app_run(struct cfg *cfg, const struct cli_args *args);
/* `chatto search-provider`: only a search provider on an external NATS, until SIGTERM/SIGINT. Frees cfg. */
int app_search_provider(struct cfg *cfg);

/* Fill missing secrets from (or generate into) <data_dir>/secrets.ini. Exposed for `config check`. */
enum ch_status app_load_secrets(struct cfg *cfg, bool create, struct ch_err *err);

/* mkdir -p; components created with mode. 0 or -1 (errno). */
int app_mkdirs(const char *path, mode_t mode);

/* Lock <dir>/chatto.lock so only one process runs a nats-server child on a data directory. Returns the lock's
 * fd, or -1 with CH_EEXIST (held by another process, named in the message) or another error. */
int app_lock_data_dir(const char *dir, struct ch_err *err);

/* Storage options from the configuration (external-mode URL and credentials, replicas, timeouts); in embedded
 * mode the caller fills in the child's URL and token. Strings are borrowed from cfg. */
void app_store_opts(const struct cfg *cfg, const char *name, struct store_opts *so);

/* Account options from the configuration. */
void app_accounts_opts(const struct cfg *cfg, struct store *st, struct accounts_opts *ao);
