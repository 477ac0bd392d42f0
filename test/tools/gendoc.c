/* SPDX-License-Identifier: MIT */
/*
 * Generates the documentation that must not drift from lib/config/keys.def:
 *   gendoc ini                         the commented example config (etc/chatto.ini)
 *   gendoc man1 < man/chatto.1.in      fills @FLAGS@ (options) and @ENV@ (environment)
 *   gendoc man5 < man/chatto.ini.5.in  fills @KEYS@ (one entry per key)
 * `make docs` writes the outputs; `make check-docs` and the docs test fail when they are stale.
 */
#include <stdio.h>
#include <string.h>

#include "config/config.h"

/* Text for roff: backslashes, leading dots and quotes, and hyphens (so flags are not hyphenated). */
static void
roff(FILE *out, const char *s, bool hyphens)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-' && hyphens)
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

static const char *
placeholder(enum cfg_type t)
{
    switch (t) {
    case CFG_T_BOOL: return "true|false";
    case CFG_T_INT: return "N";
    case CFG_T_PORT: return "PORT";
    case CFG_T_SIZE: return "SIZE";
    case CFG_T_DURATION: return "DURATION";
    case CFG_T_URL: return "URL";
    case CFG_T_URLS: return "URL[,URL...]";
    case CFG_T_LIST: return "LIST";
    case CFG_T_PATH: return "PATH";
    case CFG_T_ENUM: return NULL;
    case CFG_T_STR: return "VALUE";
    }
    return "VALUE";
}

static void
type_desc(FILE *out, const struct cfg_keyinfo *k)
{
    fputs(cfg_type_name(k->type), out);
    if (k->type == CFG_T_ENUM) {
        fputs(": ", out);
        for (const char *p = k->options; *p; p++)
            if (*p == '|')
                fputs(", ", out);
            else
                fputc(*p, out);
    } else if (k->type == CFG_T_INT && k->options[0]) {
        fputs(" ", out);
        roff(out, k->options, true);
    } else if ((k->type == CFG_T_URL || k->type == CFG_T_URLS) && k->options[0]) {
        fputs(", scheme ", out);
        for (const char *p = k->options; *p; p++)
            fputs(*p == '|' ? " or " : (char[]){ *p, 0 }, out);
    }
}

static void
flag_usage(FILE *out, const struct cfg_keyinfo *k)
{
    const char *ph = placeholder(k->type);

    if (k->short_flag)
        fprintf(out, "\\fB\\-%c\\fR, ", k->short_flag);
    fputs("\\fB\\-\\-", out);
    roff(out, k->longflag, true);
    fputs("\\fR", out);
    if (k->type == CFG_T_BOOL) {
        fputs("[=\\fItrue\\fR|\\fIfalse\\fR]", out);
        return;
    }
    fputs(" \\fI", out);
    if (ph)
        fputs(ph, out);
    else
        for (const char *p = k->options; *p; p++)
            fputc(*p, out);
    fputs("\\fR", out);
}

static void
man1_flags(FILE *out)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *k = cfg_keyinfo((enum cfg_key)i);
        if (!k->longflag)
            continue;
        fputs(".TP\n", out);
        flag_usage(out, k);
        fputc('\n', out);
        roff(out, k->help, false);
        fputs(".\n", out);
        fputs("Sets \\fB", out);
        roff(out, k->dotted, false);
        fputs("\\fR", out);
        if (k->def[0]) {
            fputs(" (default \\fB", out);
            roff(out, k->def, true);
            fputs("\\fR)", out);
        }
        fputs(".\n", out);
    }
}

static void
man1_env(FILE *out)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *k = cfg_keyinfo((enum cfg_key)i);
        fprintf(out, ".TP\n.B %s\nSets \\fB", k->env);
        roff(out, k->dotted, false);
        fputs("\\fR.\n", out);
    }
}

static void
man5_keys(FILE *out)
{
    const char *section = NULL;

    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *k = cfg_keyinfo((enum cfg_key)i);
        if (!section || strcmp(section, k->section)) {
            fprintf(out, ".SS [%s]\n", k->section);
            section = k->section;
        }
        fputs(".TP\n.B ", out);
        roff(out, k->name, false);
        fputc('\n', out);
        roff(out, k->help, false);
        fputs(".\n.br\nType: ", out);
        type_desc(out, k);
        fputs(". Default: ", out);
        if (k->def[0]) {
            fputs("\\fB", out);
            roff(out, k->def, true);
            fputs("\\fR", out);
        } else {
            fputs("none", out);
        }
        fputs(".\n.br\nEnvironment: \\fB", out);
        roff(out, k->env, false);
        fputs("\\fR. Flag: ", out);
        if (k->longflag) {
            fputs("\\fB\\-\\-", out);
            roff(out, k->longflag, true);
            fputs("\\fR", out);
        } else {
            fputs("none (secrets are never accepted on the command line)", out);
        }
        fputs(".\n", out);
        if (k->flags & CFG_F_MATCH)
            fputs(".br\nMust match on every process of one deployment.\n", out);
        if (k->flags & CFG_F_NEEDED)
            fputs(".br\nRequired when \\fBnats.embedded.enabled\\fR is false; generated otherwise.\n", out);
        if (k->id == CFG_LOG_LEVEL || k->id == CFG_LOG_FORMAT)
            fputs(".br\nApplied again on SIGHUP.\n", out);
        else
            fputs(".br\nA change needs a restart.\n", out);
    }
}

static int
fill(FILE *in, FILE *out, const char *marker, void (*fn)(FILE *), const char *marker2, void (*fn2)(FILE *))
{
    char line[4096];

    while (fgets(line, sizeof line, in)) {
        char bare[4096];
        snprintf(bare, sizeof bare, "%s", line);
        bare[strcspn(bare, "\n")] = '\0';
        if (!strcmp(bare, marker))
            fn(out);
        else if (marker2 && !strcmp(bare, marker2))
            fn2(out);
        else
            fputs(line, out);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "ini")) {
        cfg_write_example(stdout, NULL);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "man1"))
        return fill(stdin, stdout, "@FLAGS@", man1_flags, "@ENV@", man1_env);
    if (argc == 2 && !strcmp(argv[1], "man5"))
        return fill(stdin, stdout, "@KEYS@", man5_keys, NULL, NULL);
    fprintf(stderr, "usage: gendoc ini | man1 < chatto.1.in | man5 < chatto.ini.5.in\n");
    return 2;
}
