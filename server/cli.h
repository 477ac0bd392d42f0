/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Command line: subcommands, getopt_long options generated from the config key table, --help, and building the
 * effective configuration (defaults < file < env < flags). Main thread only.
 */
#include <stdbool.h>
#include <stdio.h>

#include "base/status.h"
#include "config/config.h"

enum cli_cmd { CLI_RUN, CLI_INIT, CLI_CONFIG_PRINT, CLI_CONFIG_CHECK, CLI_USER, CLI_VERSION, CLI_HELP, CLI_SEARCH_PROVIDER,
              CLI_BACKUP, CLI_RESTORE };

#define CLI_MAX_FLAGS 128

struct cli_args {
    enum cli_cmd cmd;
    const char *config_path; /* -c/--config or CHATTO_CONFIG; NULL = none */
    const char *init_path;   /* chatto init [PATH] */
    bool show_secrets;       /* config print --show-secrets */
    const char *role;        /* user create|set-role --role */
    const char *display;     /* user create --display-name */
    const char *pos[4];      /* user VERB ARG... / restore FILE: positional words after the command */
    const char *output;      /* backup -o/--output FILE */
    const char *passphrase_file; /* backup|restore --passphrase-file FILE */
    const char *conflict;    /* restore --conflict=error|skip|overwrite */
    bool include_secrets;    /* backup --include-secrets */
    size_t npos;
    size_t nflags;
    struct {
        enum cfg_key key;
        const char *value;
        char origin[80];
    } flags[CLI_MAX_FLAGS];
};

/* Exit codes. */
#define EXIT_USAGE 2

/* Parse argv. On a usage error prints it (naming the flag) and returns CH_EINVAL. */
enum ch_status cli_parse(int argc, char **argv, struct cli_args *a, struct ch_err *err);

/* Build the configuration from the parsed arguments and the environment. *out is the caller's (cfg_free). */
enum ch_status cli_build_config(const struct cli_args *a, char *const *envp, struct cfg **out, struct ch_err *err);

/* Print --help (generated from the key table). */
void cli_print_help(FILE *out);
