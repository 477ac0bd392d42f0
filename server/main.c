/* SPDX-License-Identifier: MIT */
/* argv → subcommand. Nothing else lives here. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "backupcmd.h"
#include "cli.h"
#include "crypto/crypto.h"
#include "log/log.h"
#include "supervisor.h"
#include "usercmd.h"
#include "version.h"

extern char **environ;

static int
cmd_init(const char *path)
{
    const char *secrets[CFG_KEY_COUNT] = { 0 };
    char vals[4][CRYPTO_SECRET_LEN + 1];
    enum cfg_key keys[4] = { CFG_WEBSERVER_COOKIE_SIGNING_SECRET, CFG_WEBSERVER_COOKIE_ENCRYPTION_SECRET,
                             CFG_CORE_SECRET_KEY, CFG_CORE_ASSETS_SIGNING_SECRET };
    int fd;
    FILE *f;

    if (crypto_init() != CH_OK) {
        fprintf(stderr, "chatto: libsodium failed to initialise\n");
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        crypto_secret_new(vals[i]);
        secrets[keys[i]] = vals[i];
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "chatto: %s already exists; refusing to overwrite it\n", path);
        else
            fprintf(stderr, "chatto: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    f = fdopen(fd, "w");
    cfg_write_example(f, secrets);
    if (fclose(f) != 0) {
        fprintf(stderr, "chatto: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    explicit_bzero(vals, sizeof vals);
    printf("Wrote %s (mode 0600) with fresh secrets. Start with: chatto run --config %s\n", path, path);
    return 0;
}

static int
cmd_config(const struct cli_args *a, struct cfg *cfg)
{
    struct ch_err err = { 0 };

    if (a->cmd == CLI_CONFIG_CHECK) {
        char bin[4096];
        if (cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED) &&
            sup_resolve_binary(cfg_str(cfg, CFG_NATS_EMBEDDED_BINARY), bin, sizeof bin, &err) != CH_OK) {
            fprintf(stderr, "chatto: %s\n", err.msg);
            return EXIT_USAGE;
        }
        printf("configuration OK (%s NATS%s%s)\n", cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED) ? "embedded" : "external",
               a->config_path ? ", file " : "", a->config_path ? a->config_path : "");
        return 0;
    }
    if (crypto_init() == CH_OK && cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED))
        app_load_secrets(cfg, false, NULL); /* show where generated secrets come from, if any */
    cfg_print(cfg, stdout, a->show_secrets);
    return 0;
}

int
main(int argc, char **argv)
{
    struct cli_args args;
    struct ch_err err = { 0 };
    struct cfg *cfg = NULL;
    int rc;

    if (cli_parse(argc, argv, &args, &err) != CH_OK) {
        fprintf(stderr, "chatto: %s\n", err.msg);
        return EXIT_USAGE;
    }
    switch (args.cmd) {
    case CLI_HELP:
        cli_print_help(stdout);
        return 0;
    case CLI_VERSION:
        printf("chatto %s\n", CHATTO_VERSION);
        return 0;
    case CLI_INIT:
        return cmd_init(args.init_path ? args.init_path : "chatto.ini");
    default:
        break;
    }
    if (cli_build_config(&args, environ, &cfg, &err) != CH_OK || cfg_validate(cfg, &err) != CH_OK) {
        fprintf(stderr, "chatto: %s\n", err.msg);
        cfg_free(cfg);
        return EXIT_USAGE;
    }
    if (args.cmd == CLI_USER || args.cmd == CLI_BACKUP || args.cmd == CLI_RESTORE) {
        if (crypto_init() != CH_OK) {
            fprintf(stderr, "chatto: libsodium failed to initialise\n");
            cfg_free(cfg);
            return 1;
        }
        /* operator commands print results on stdout; keep the log for warnings */
        log_configure(LOGL_WARN, false);
        rc = args.cmd == CLI_USER     ? usercmd_run(&args, cfg)
             : args.cmd == CLI_BACKUP ? backupcmd_backup(&args, cfg)
                                      : backupcmd_restore(&args, cfg);
        cfg_free(cfg);
        return rc;
    }
    if (args.cmd == CLI_CONFIG_CHECK || args.cmd == CLI_CONFIG_PRINT) {
        rc = cmd_config(&args, cfg);
        cfg_free(cfg);
        return rc;
    }
    if (args.cmd == CLI_SEARCH_PROVIDER)
        return app_search_provider(cfg);
    return app_run(cfg, &args);
}
