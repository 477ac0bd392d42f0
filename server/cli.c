/* SPDX-License-Identifier: MIT */
/* Command-line parsing and --help, both generated from lib/config/keys.def. Main thread only. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define OPT_KEY_BASE 1000
#define OPT_SHOW_SECRETS 900
#define OPT_ROLE 901
#define OPT_DISPLAY 902
#define OPT_PASSFILE 903
#define OPT_CONFLICT 904
#define OPT_SECRETS 905

static const char *
cmd_name(enum cli_cmd c)
{
    switch (c) {
    case CLI_RUN: return "run";
    case CLI_INIT: return "init";
    case CLI_CONFIG_PRINT: return "config print";
    case CLI_CONFIG_CHECK: return "config check";
    case CLI_USER: return "user";
    case CLI_VERSION: return "version";
    case CLI_HELP: return "help";
    case CLI_SEARCH_PROVIDER: return "search-provider";
    case CLI_BACKUP: return "backup";
    case CLI_RESTORE: return "restore";
    }
    return "?";
}

enum ch_status
cli_parse(int argc, char **argv, struct cli_args *a, struct ch_err *err)
{
    static struct option longopts[CFG_KEY_COUNT + 12];
    static char shortopts[128];
    size_t n = 0, so = 0;
    int i = 1, c;

    memset(a, 0, sizeof *a);
    a->cmd = CLI_RUN;
    a->config_path = getenv("CHATTO_CONFIG");
    if (a->config_path && !*a->config_path)
        a->config_path = NULL;

    /* subcommand words come first */
    if (i < argc && argv[i][0] != '-') {
        if (!strcmp(argv[i], "run"))
            a->cmd = CLI_RUN;
        else if (!strcmp(argv[i], "init"))
            a->cmd = CLI_INIT;
        else if (!strcmp(argv[i], "version"))
            a->cmd = CLI_VERSION;
        else if (!strcmp(argv[i], "help"))
            a->cmd = CLI_HELP;
        else if (!strcmp(argv[i], "user"))
            a->cmd = CLI_USER;
        else if (!strcmp(argv[i], "backup"))
            a->cmd = CLI_BACKUP;
        else if (!strcmp(argv[i], "restore"))
            a->cmd = CLI_RESTORE;
        else if (!strcmp(argv[i], "search-provider"))
            a->cmd = CLI_SEARCH_PROVIDER;
        else if (!strcmp(argv[i], "config")) {
            if (i + 1 < argc && !strcmp(argv[i + 1], "print"))
                a->cmd = CLI_CONFIG_PRINT;
            else if (i + 1 < argc && !strcmp(argv[i + 1], "check"))
                a->cmd = CLI_CONFIG_CHECK;
            else
                return ch_err_set(err, CH_EINVAL, NULL, "config: expected 'print' or 'check'");
            i++;
        } else
            return ch_err_set(err, CH_EINVAL, NULL, "unknown command '%s' (see chatto --help)", argv[i]);
        i++;
    }

    longopts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
    longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    longopts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
    longopts[n++] = (struct option){ "show-secrets", no_argument, NULL, OPT_SHOW_SECRETS };
    longopts[n++] = (struct option){ "role", required_argument, NULL, OPT_ROLE };
    longopts[n++] = (struct option){ "display-name", required_argument, NULL, OPT_DISPLAY };
    longopts[n++] = (struct option){ "output", required_argument, NULL, 'o' };
    longopts[n++] = (struct option){ "passphrase-file", required_argument, NULL, OPT_PASSFILE };
    longopts[n++] = (struct option){ "conflict", required_argument, NULL, OPT_CONFLICT };
    longopts[n++] = (struct option){ "include-secrets", no_argument, NULL, OPT_SECRETS };
    so += (size_t)snprintf(shortopts + so, sizeof shortopts - so, "c:hVo:");
    for (size_t k = 0; k < CFG_KEY_COUNT; k++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)k);
        if (!ki->longflag)
            continue;
        longopts[n++] = (struct option){ ki->longflag, ki->type == CFG_T_BOOL ? optional_argument : required_argument,
                                         NULL, OPT_KEY_BASE + (int)k };
        if (ki->short_flag)
            so += (size_t)snprintf(shortopts + so, sizeof shortopts - so, "%c:", ki->short_flag);
    }
    longopts[n] = (struct option){ 0 };

    optind = i;
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int key = -1;
        if (c == 'c') {
            a->config_path = optarg;
            continue;
        }
        if (c == 'h') {
            a->cmd = CLI_HELP;
            continue;
        }
        if (c == 'V') {
            a->cmd = CLI_VERSION;
            continue;
        }
        if (c == OPT_SHOW_SECRETS) {
            a->show_secrets = true;
            continue;
        }
        if (c == OPT_ROLE || c == OPT_DISPLAY) {
            if (a->cmd != CLI_USER)
                return ch_err_set(err, CH_EINVAL, NULL, "--%s: only for 'chatto user'",
                                  c == OPT_ROLE ? "role" : "display-name");
            *(c == OPT_ROLE ? &a->role : &a->display) = optarg;
            continue;
        }
        if (c == 'o') {
            if (a->cmd != CLI_BACKUP)
                return ch_err_set(err, CH_EINVAL, NULL, "-o/--output: only for 'chatto backup'");
            if (!*optarg) /* refused now, not after the whole backup ran */
                return ch_err_set(err, CH_EINVAL, NULL, "-o/--output: the archive's file name is empty");
            a->output = optarg;
            continue;
        }
        if (c == OPT_PASSFILE) {
            if (a->cmd != CLI_BACKUP && a->cmd != CLI_RESTORE)
                return ch_err_set(err, CH_EINVAL, NULL, "--passphrase-file: only for 'chatto backup' and 'restore'");
            a->passphrase_file = optarg;
            continue;
        }
        if (c == OPT_SECRETS) {
            if (a->cmd != CLI_BACKUP)
                return ch_err_set(err, CH_EINVAL, NULL, "--include-secrets: only for 'chatto backup'");
            a->include_secrets = true;
            continue;
        }
        if (c == OPT_CONFLICT) {
            if (a->cmd != CLI_RESTORE)
                return ch_err_set(err, CH_EINVAL, NULL, "--conflict: only for 'chatto restore'");
            if (strcmp(optarg, "error") && strcmp(optarg, "skip") && strcmp(optarg, "overwrite"))
                return ch_err_set(err, CH_EINVAL, NULL, "--conflict: must be error, skip or overwrite, not '%s'",
                                  optarg);
            a->conflict = optarg;
            continue;
        }
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            if (optopt && optopt < 128)
                return ch_err_set(err, CH_EINVAL, NULL, "-%c: unknown option or missing value (see chatto --help)",
                                  optopt);
            return ch_err_set(err, CH_EINVAL, NULL, "%s: unknown option or missing value (see chatto --help)", bad);
        }
        if (c >= OPT_KEY_BASE)
            key = c - OPT_KEY_BASE;
        else
            for (size_t k = 0; k < CFG_KEY_COUNT && key < 0; k++)
                if (cfg_keyinfo((enum cfg_key)k)->short_flag == c)
                    key = (int)k;
        if (key < 0)
            return ch_err_set(err, CH_EINVAL, NULL, "unknown option (see chatto --help)");
        if (a->nflags == CLI_MAX_FLAGS)
            return ch_err_set(err, CH_EINVAL, NULL, "too many options");
        a->flags[a->nflags].key = (enum cfg_key)key;
        a->flags[a->nflags].value = optarg ? optarg : "true";
        snprintf(a->flags[a->nflags].origin, sizeof a->flags[a->nflags].origin, "--%s",
                 cfg_keyinfo((enum cfg_key)key)->longflag);
        a->nflags++;
    }
    if (optind < argc && a->cmd == CLI_INIT)
        a->init_path = argv[optind++];
    while (a->cmd == CLI_USER && optind < argc && a->npos < sizeof a->pos / sizeof a->pos[0])
        a->pos[a->npos++] = argv[optind++];
    if (a->cmd == CLI_RESTORE && optind < argc)
        a->pos[a->npos++] = argv[optind++];
    if (a->cmd == CLI_RESTORE && a->npos != 1)
        return ch_err_set(err, CH_EINVAL, NULL, "restore: which archive? (chatto restore FILE)");
    if (optind < argc)
        return ch_err_set(err, CH_EINVAL, NULL, "%s: unexpected argument for '%s'", argv[optind], cmd_name(a->cmd));
    return CH_OK;
}

enum ch_status
cli_build_config(const struct cli_args *a, char *const *envp, struct cfg **out, struct ch_err *err)
{
    /* not config keys: the config file's path, a secret read where it is used, and hooks of the integration tests
     * (lib/store/follow.c, lib/chat/notify.c) */
    static const char *const ignore[] = { "CHATTO_CONFIG", "CHATTO_BACKUP_PASSPHRASE", "CHATTO_TEST_FOLLOWER_FAULT",
                                          "CHATTO_TEST_NOTIFIER_FEED_MAX", "CHATTO_TEST_FOLLOWER_TRIM_BACKLOG", NULL };
    struct cfg *c = cfg_new();
    enum ch_status st = CH_OK;

    if (!c)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (a->config_path && (st = cfg_load_file(c, a->config_path, err)) != CH_OK)
        goto fail;
    if ((st = cfg_load_env(c, envp, ignore, err)) != CH_OK)
        goto fail;
    for (size_t i = 0; i < a->nflags; i++)
        if ((st = cfg_set(c, a->flags[i].key, a->flags[i].value, CFG_SRC_FLAG, a->flags[i].origin, err)) != CH_OK)
            goto fail;
    if (cfg_is_set(c, CFG_CORE_SECRETS_FILE) &&
        (st = cfg_load_env_file(c, cfg_str(c, CFG_CORE_SECRETS_FILE), err)) != CH_OK)
        goto fail;
    *out = c;
    return CH_OK;
fail:
    cfg_free(c);
    return st;
}

void
cli_print_help(FILE *out)
{
    const char *section = NULL;

    fputs("Usage: chatto [COMMAND] [OPTIONS]\n"
          "\n"
          "Chatto is a self-hosted team chat server. By default it runs its own nats-server child (JetStream,\n"
          "data in nats.embedded.data_dir); with --nats-embedded-enabled=false it joins an external NATS cluster.\n"
          "\n"
          "Commands:\n"
          "  run                    serve (the default)\n"
          "  init [PATH]            write a commented config file with fresh secrets (default ./chatto.ini)\n"
          "  config print           print the effective configuration, secrets masked (--show-secrets to show)\n"
          "  config check           validate the configuration and exit (0 = valid, 2 = invalid)\n"
          "  user create LOGIN [--role member|admin|owner] [--display-name NAME]\n"
          "                         create an account; the password is read from stdin\n"
          "  user set-password LOGIN  reset a password (read from stdin); ends all its sessions\n"
          "  user set-role LOGIN ROLE give an account the role member, admin or owner\n"
          "  user disable|enable LOGIN  disable (ending all sessions) or re-enable an account\n"
          "  user list              list accounts\n"
          "                         user commands use the same NATS as the server (in embedded mode the running\n"
          "                         server's child, or a temporary one when the server is stopped)\n"
          "  backup [-o FILE] [--passphrase-file FILE] [--include-secrets]\n"
          "                         write every stream, bucket and object store Chatto owns (not caches) into\n"
          "                         one archive (default ./chatto-backup-<UTC time>.tar), online and consistent;\n"
          "                         encrypted when a passphrase is given (the file's first line, or\n"
          "                         CHATTO_BACKUP_PASSPHRASE; the default name then ends in .tar.enc);\n"
          "                         --include-secrets adds the secrets embedded mode\n"
          "                         generated (<data_dir>/secrets.ini; encrypted archives only)\n"
          "  restore FILE [--conflict=error|skip|overwrite] [--passphrase-file FILE]\n"
          "                         load an archive into this configuration's NATS while no chatto serves it;\n"
          "                         a NATS holding Chatto data is refused unless --conflict says skip (keep\n"
          "                         what is there, per stream) or overwrite (replace it)\n"
          "  search-provider        run only a search index and answer searches for the servers on the same\n"
          "                         (external) NATS; search_provider.* settings apply\n"
          "  version                print the version\n"
          "  help                   print this help\n"
          "\n"
          "General options:\n"
          "  -c, --config FILE      config file (also CHATTO_CONFIG); without it only env and flags apply\n"
          "  -h, --help             print this help\n"
          "  -V, --version          print the version\n"
          "      --show-secrets     with config print: show secret values\n"
          "  -o, --output FILE      with backup: the archive to write (never overwritten)\n"
          "      --passphrase-file FILE  with backup/restore: the passphrase (first line of FILE)\n"
          "      --conflict MODE    with restore: error (default), skip or overwrite\n"
          "      --include-secrets  with backup: add <data_dir>/secrets.ini (needs a passphrase)\n"
          "\n"
          "Settings (precedence: defaults < config file < CHATTO_* environment < these flags).\n"
          "Each flag sets the config key [section] name; bools accept --flag or --flag=true|false.\n"
          "Secrets have no flag (command lines are visible to other users): use the file or environment.\n",
          out);
    for (size_t k = 0; k < CFG_KEY_COUNT; k++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)k);
        char flag[96];

        if (!section || strcmp(section, ki->section) != 0) {
            fprintf(out, "\n  [%s]\n", ki->section);
            section = ki->section;
        }
        if (ki->longflag && ki->short_flag)
            snprintf(flag, sizeof flag, "-%c, --%s", ki->short_flag, ki->longflag);
        else if (ki->longflag)
            snprintf(flag, sizeof flag, "    --%s", ki->longflag);
        else
            snprintf(flag, sizeof flag, "    (%s)", ki->env);
        fprintf(out, "  %-42s %s", flag, ki->help);
        if (ki->def[0])
            fprintf(out, " [%s]", ki->def);
        fputc('\n', out);
    }
    fputs("\nEvery setting can also be given as CHATTO_<SECTION>_<NAME> in the environment, e.g.\n"
          "CHATTO_NATS_EMBEDDED_ENABLED=false, CHATTO_NATS_CLIENT_URL=nats://nats:4222.\n"
          "\nExit status: 0 success, 1 runtime failure, 2 usage or configuration error.\n"
          "See chatto(1) and chatto.ini(5).\n",
          out);
}
