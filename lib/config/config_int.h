/* SPDX-License-Identifier: MIT */
#pragma once
/* Internals shared by config.c and ini.c only. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct cfg_val {
    char *raw;    /* the text as given (quotes removed), "" allowed; NULL only before the defaults are set */
    bool b;       /* BOOL */
    int64_t i;    /* INT, PORT, SIZE (bytes), DURATION (ms) */
    char **list;  /* LIST, URLS: NULL-terminated */
    size_t nlist;
    enum cfg_source src;
    char origin[96]; /* "path:12", "CHATTO_X", "--flag", "default" */
};

struct cfg {
    struct cfg_val v[CFG_KEY_COUNT];
};
