/* SPDX-License-Identifier: MIT */
/*
 * `chatto user ...`: the operator's escape hatch for when nobody can log in. It talks to the same NATS as the
 * server (opconn.c: the configured cluster, the running server's child, or a temporary child of its own).
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
#include "opconn.h"

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
    struct opconn *oc;
    struct accounts *accounts;
};

static void
conn_close(struct conn *c)
{
    accounts_free(c->accounts);
    opconn_close(c->oc);
}

static int
conn_open(struct cfg *cfg, struct conn *c)
{
    struct accounts_opts ao;
    struct ch_err err = { 0 };

    memset(c, 0, sizeof *c);
    if (opconn_open(cfg, false, &c->oc) != 0)
        return 1;
    app_accounts_opts(cfg, opconn_store(c->oc), &ao);
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
