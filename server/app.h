/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The process: owns config, log set-up, secrets, the nats-server supervisor, storage and the HTTP edge, and
 * starts and stops them in one place. Main thread only.
 */
#include "cli.h"

/* Serve until SIGTERM/SIGINT. Returns the process exit code (0 clean, 1 runtime failure, 2 config error).
 * Takes ownership of cfg. args is kept to rebuild the config on SIGHUP. */
int app_run(struct cfg *cfg, const struct cli_args *args);

/* Fill missing secrets from (or generate into) <data_dir>/secrets.ini. Exposed for `config check`. */
enum ch_status app_load_secrets(struct cfg *cfg, bool create, struct ch_err *err);
