/* SPDX-License-Identifier: MIT */
/*
 * `chatto user ...`: the operator's escape hatch for when nobody can log in. It talks to the same NATS as the
 * server: in external mode the configured cluster; in embedded mode the running server's child (found through
 * <data_dir>/run/client.url), or, when no server runs on the data directory, a temporary child of its own.
 * Main thread only.
 */
#include "usercmd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "crypto/crypto.h"
#include "log/log.h"
#include "store/store.h"
#include "supervisor.h"

/* A password from stdin: prompted twice without echo on a terminal, else the first line. */
static int
read_password(char *buf, size_t len)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, noecho;
    char again[1100];

    for (int round = 0; round < (tty ? 2 : 1); round++) {
        char *dst = round ? again : buf;
        size_t cap = round ? sizeof again : len;
        if (tty) {
            fprintf(stderr, round ? "Repeat password: " : "Password: ");
            tcgetattr(STDIN_FILENO, &old);
            noecho = old;
            noecho.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSANOW, &noecho);
        }
        char *got = fgets(dst, (int)cap, stdin);
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSANOW, &old);
            fputc('\n', stderr);
        }
        if (!got)
            return -1;
        dst[strcspn(dst, "\r\n")] = '\0';
    }
    if (tty && strcmp(buf, again) != 0) {
        fprintf(stderr, "chatto: the passwords differ\n");
        explicit_bzero(again, sizeof again);
        return -1;
    }
    explicit_bzero(again, sizeof again);
    return 0;
}

struct conn {
    struct sup *sup;
    struct store *store;
    struct accounts *accounts;
    int lock_fd;
    char url[512];
};

static void
conn_close(struct conn *c)
{
    accounts_free(c->accounts);
    store_close(c->store);
    sup_stop(c->sup);
    store_library_shutdown();
    if (c->lock_fd >= 0)
        close(c->lock_fd);
}

static int
conn_open(struct cfg *cfg, struct conn *c)
{
    struct store_opts so;
    struct accounts_opts ao;
    struct ch_err err = { 0 };
    const char *urls[2] = { c->url, NULL };
    char reason[200] = "", bin[PATH_MAX];

    memset(c, 0, sizeof *c);
    c->lock_fd = -1;
    store_library_init();
    app_store_opts(cfg, "chatto-cli", &so);
    if (cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED)) {
        const char *dir = cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR);
        if (app_mkdirs(dir, 0750) != 0) {
            fprintf(stderr, "chatto: cannot create %s: %s\n", dir, strerror(errno));
            return 1;
        }
        c->lock_fd = app_lock_data_dir(dir, &err);
        if (c->lock_fd < 0 && err.status != CH_EEXIST) {
            fprintf(stderr, "chatto: %s\n", err.msg);
            return 1;
        }
        if (app_load_secrets(cfg, c->lock_fd >= 0, &err) != CH_OK) {
            fprintf(stderr, "chatto: %s\n", err.msg);
            return 1;
        }
        if (c->lock_fd < 0) {
            /* a server runs on this data directory: use its child */
            if (sup_running_url(dir, c->url, sizeof c->url, &err) != CH_OK) {
                fprintf(stderr, "chatto: a chatto server runs on %s but its NATS address is unknown: %s\n", dir,
                        err.msg);
                return 1;
            }
        } else {
            struct sup_opts o = {
                .binary = bin,
                .bind_address = "127.0.0.1",
                .data_dir = dir,
                .token = cfg_str(cfg, CFG_NATS_EMBEDDED_AUTH_TOKEN),
                .max_file_store = cfg_int(cfg, CFG_NATS_EMBEDDED_MAX_FILE_STORE),
                .start_timeout_ms = cfg_int(cfg, CFG_NATS_EMBEDDED_START_TIMEOUT),
                .stop_timeout_ms = cfg_int(cfg, CFG_NATS_EMBEDDED_STOP_TIMEOUT),
                .probe = store_probe_url,
            };
            if (sup_resolve_binary(cfg_str(cfg, CFG_NATS_EMBEDDED_BINARY), bin, sizeof bin, &err) != CH_OK ||
                sup_start(&o, &c->sup, &err) != CH_OK) {
                fprintf(stderr, "chatto: %s\n", err.msg);
                return 1;
            }
            snprintf(c->url, sizeof c->url, "%s", sup_client_url(c->sup));
        }
        so.urls = urls;
        so.auth = STORE_AUTH_TOKEN;
        so.token = cfg_str(cfg, CFG_NATS_EMBEDDED_AUTH_TOKEN);
        so.reconnect_wait_ms = 250;
    }
    if (store_open(&so, &c->store, &err) != CH_OK) {
        fprintf(stderr, "chatto: %s\n", err.msg);
        return 1;
    }
    /* wait (bounded) until storage answers */
    for (int i = 0; i < 400 && !store_ready(c->store, reason, sizeof reason); i++) {
        char why[640];
        if (store_fatal(c->store, why, sizeof why)) { /* e.g. a store a newer Chatto has upgraded */
            fprintf(stderr, "chatto: %s\n", why);
            return 2;
        }
        nanosleep(&(struct timespec){ 0, 50 * 1000000L }, NULL);
    }
    if (!store_ready(c->store, reason, sizeof reason)) {
        fprintf(stderr, "chatto: storage not ready: %s\n", reason);
        return 1;
    }
    app_accounts_opts(cfg, c->store, &ao);
    if (accounts_new(&ao, &c->accounts, &err) != CH_OK) {
        fprintf(stderr, "chatto: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int
usage(void)
{
    fprintf(stderr, "usage: chatto user create LOGIN [--role ROLE] [--display-name NAME]\n"
                    "       chatto user set-password LOGIN\n"
                    "       chatto user set-role LOGIN member|admin|owner\n"
                    "       chatto user disable|enable LOGIN\n"
                    "       chatto user list\n");
    return EXIT_USAGE;
}

static int
fail(const struct ch_err *err)
{
    char buf[CH_ERR_MSG_MAX + 80];

    fprintf(stderr, "chatto: %s\n", ch_err_text(err, buf, sizeof buf));
    return 1;
}

int
usercmd_run(const struct cli_args *a, struct cfg *cfg)
{
    const char *verb = a->npos ? a->pos[0] : "";
    size_t want = !strcmp(verb, "list") ? 1 : !strcmp(verb, "set-role") ? 3 : 2;
    struct conn c;
    struct ch_err err = { 0 };
    struct user u;
    char pw[1100];
    int rc = 1, role = a->role ? user_role_parse(a->role) : ROLE_MEMBER;

    if (!*verb || a->npos != want ||
        (strcmp(verb, "create") && strcmp(verb, "set-password") && strcmp(verb, "set-role") &&
         strcmp(verb, "disable") && strcmp(verb, "enable") && strcmp(verb, "list")))
        return usage();
    if (!strcmp(verb, "set-role"))
        role = user_role_parse(a->pos[2]);
    if (role < 0) {
        fprintf(stderr, "chatto: role must be member, admin or owner\n");
        return EXIT_USAGE;
    }
    if ((!strcmp(verb, "create") || !strcmp(verb, "set-password")) && read_password(pw, sizeof pw) != 0) {
        fprintf(stderr, "chatto: no password given on stdin\n");
        return EXIT_USAGE;
    }
    if (conn_open(cfg, &c) != 0)
        goto out;
    if (!strcmp(verb, "create")) {
        if (accounts_create_user(c.accounts, a->pos[1], pw, a->display, (enum user_role)role, &u, &err) != CH_OK)
            rc = fail(&err);
        else
            printf("created %s (%s, role %s)\n", u.login, u.id, user_role_str(u.role)), rc = 0;
    } else if (!strcmp(verb, "list")) {
        char after[ID_MAX + 1] = "", next[ID_MAX + 1];
        rc = 0;
        do {
            struct user *v = NULL;
            size_t n = 0;
            if (accounts_list(c.accounts, after, 200, true, &v, &n, next, &err) != CH_OK) {
                rc = fail(&err);
                break;
            }
            for (size_t i = 0; i < n; i++)
                printf("%-20s %-32s %-6s %s%s\n", v[i].id, v[i].login, user_role_str(v[i].role),
                       v[i].is_bot ? "bot " : "", v[i].disabled ? "disabled" : "");
            free(v);
            snprintf(after, sizeof after, "%s", next);
        } while (next[0]);
    } else {
        if (accounts_get_by_login(c.accounts, a->pos[1], &u, &err) != CH_OK) {
            rc = fail(&err);
            goto out;
        }
        enum ch_status st;
        if (!strcmp(verb, "set-password"))
            st = accounts_set_password(c.accounts, u.id, pw, &err);
        else if (!strcmp(verb, "set-role"))
            st = accounts_set_role(c.accounts, NULL, u.id, (enum user_role)role, &u, &err);
        else
            st = accounts_set_disabled(c.accounts, NULL, u.id, !strcmp(verb, "disable"), &u, &err);
        if (st != CH_OK)
            rc = fail(&err);
        else
            printf("%s: done\n", a->pos[1]), rc = 0;
    }
out:
    explicit_bzero(pw, sizeof pw);
    conn_close(&c);
    return rc;
}
