/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Configuration: one table (keys.def) and the typed values read from it. Layers are applied in precedence order
 * by the caller: cfg_new() (defaults) < cfg_load_file() < cfg_load_env() < cfg_set(..., CFG_SRC_FLAG).
 * A struct cfg is built by one thread at start-up and read-only afterwards, so readers need no lock.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

enum cfg_type {
    CFG_T_STR,
    CFG_T_PATH,
    CFG_T_BOOL,
    CFG_T_INT,
    CFG_T_PORT,
    CFG_T_SIZE,
    CFG_T_DURATION,
    CFG_T_URL,
    CFG_T_URLS,
    CFG_T_LIST,
    CFG_T_ENUM,
};

#define CFG_F_SECRET 0x1u
#define CFG_F_MATCH 0x2u
#define CFG_F_NEEDED 0x4u

enum cfg_key {
#define KEY(id, sec, name, type, def, sh, opts, flags, help) id,
#include "config/keys.def"
#undef KEY
    CFG_KEY_COUNT
};

/* One row of the table, with the derived names filled in. */
struct cfg_keyinfo {
    enum cfg_key id;
    const char *section;
    const char *name;
    enum cfg_type type;
    const char *def;
    char short_flag; /* 0 if none */
    const char *options;
    unsigned flags;
    const char *help;
    const char *dotted;   /* "nats.embedded.port" */
    const char *env;      /* "CHATTO_NATS_EMBEDDED_PORT" */
    const char *longflag; /* "nats-embedded-port", or NULL for secrets */
};

enum cfg_source { CFG_SRC_DEFAULT = 0, CFG_SRC_GENERATED, CFG_SRC_FILE, CFG_SRC_ENV, CFG_SRC_FLAG };

struct cfg;

/* The table row of a key (static storage). */
const struct cfg_keyinfo *cfg_keyinfo(enum cfg_key k);
/* Find a key by section and name, or by dotted name when section is NULL; -1 if unknown. */
int cfg_key_find(const char *section, const char *name);
/* Human name of a type ("duration", "size", ...). */
const char *cfg_type_name(enum cfg_type t);

/* A config holding every default. NULL on out-of-memory. Free with cfg_free(). */
struct cfg *cfg_new(void);
void cfg_free(struct cfg *c);

/* Read an INI file (the seed's TOML-like snippets work: dotted sections, quoted values, # and ; comments).
 * Errors: "path:line: section.key: reason" in err->msg, CH_EINVAL (or CH_ENOTFOUND if unreadable). */
enum ch_status cfg_load_file(struct cfg *c, const char *path, struct ch_err *err);
/* The same for an in-memory text (name is used in messages). */
enum ch_status cfg_load_string(struct cfg *c, const char *text, const char *name, struct ch_err *err);

/* Apply every CHATTO_<SECTION>_<NAME> variable in envp. Unknown CHATTO_* names are errors, except those in the
 * NULL-terminated ignore list (e.g. CHATTO_CONFIG). */
enum ch_status cfg_load_env(struct cfg *c, char *const *envp, const char *const *ignore, struct ch_err *err);

/* Apply the CHATTO_* lines of an environment file (NAME=value, systemd EnvironmentFile syntax: # comments,
 * optional quotes, optional "export "), as if they were environment variables, except that keys the real
 * environment or a flag already set keep their values. Other names are ignored; unknown CHATTO_ names are
 * errors naming file:line. */
enum ch_status cfg_load_env_file(struct cfg *c, const char *path, struct ch_err *err);

/* Set one key from text; origin ("--port", "CHATTO_X", "file:12") is used in error messages. */
enum ch_status cfg_set(struct cfg *c, enum cfg_key k, const char *value, enum cfg_source src, const char *origin,
                       struct ch_err *err);

/* Cross-key checks that need the final values (required keys in external mode, auth method credentials, ...). */
enum ch_status cfg_validate(const struct cfg *c, struct ch_err *err);

/* Typed getters; the key must have a matching type (CH_ASSERT otherwise). Strings are borrowed, never NULL. */
const char *cfg_str(const struct cfg *c, enum cfg_key k);
bool cfg_bool(const struct cfg *c, enum cfg_key k);
/* INT, PORT, SIZE (bytes) and DURATION (milliseconds). */
int64_t cfg_int(const struct cfg *c, enum cfg_key k);
/* LIST and URLS: a NULL-terminated array (borrowed) and its length. */
const char *const *cfg_list(const struct cfg *c, enum cfg_key k, size_t *count);
enum cfg_source cfg_source_of(const struct cfg *c, enum cfg_key k);
/* True if the key's value is non-empty. */
bool cfg_is_set(const struct cfg *c, enum cfg_key k);

/* Print the effective configuration as INI, secrets masked unless show_secrets, each line annotated with where
 * the value came from. */
void cfg_print(const struct cfg *c, FILE *out, bool show_secrets);

/* Write a commented example config listing every key at its default. If secrets is non-NULL, it is indexed by
 * key and holds values for secret keys, which are written uncommented (used by `chatto init`). */
void cfg_write_example(FILE *out, const char *const *secrets);
