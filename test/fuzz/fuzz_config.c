/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the configuration loader. An INI file (our fixes around inih: long lines, indentation, quotes,
 * comments, line numbers), then CHATTO_* environment lines, then validation and printing: every path that
 * turns text an operator wrote into settings. Bad input must give an error naming where, never a crash.
 *
 * Input: the INI text, optionally followed by a NUL byte and environment lines ("NAME=value\n"...).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    const char *nul = memchr(data, '\0', size);
    size_t ini_len = nul ? (size_t)(nul - (const char *)data) : size;
    char *ini = strndup((const char *)data, ini_len);
    struct cfg *c = cfg_new();
    struct ch_err err = { 0 };

    if (!devnull)
        devnull = fopen("/dev/null", "w");
    if (!ini || !c)
        goto out;
    if (cfg_load_string(c, ini, "fuzz.ini", &err) != CH_OK)
        goto out;
    if (nul) {
        /* environment lines: split at '\n' into a NULL-terminated array */
        char *env = strndup(nul + 1, size - ini_len - 1);
        char *vec[64];
        size_t n = 0;
        for (char *save = NULL, *line = env ? strtok_r(env, "\n", &save) : NULL; line && n < 63;
             line = strtok_r(NULL, "\n", &save))
            vec[n++] = line;
        vec[n] = NULL;
        enum ch_status st = cfg_load_env(c, vec, NULL, &err);
        free(env);
        if (st != CH_OK)
            goto out;
    }
    if (cfg_validate(c, &err) == CH_OK && devnull)
        cfg_print(c, devnull, false);
out:
    cfg_free(c);
    free(ini);
    return 0;
}
