/* SPDX-License-Identifier: MIT */
/*
 * Typed configuration values, the derived names of the key table, and the env / print / example outputs.
 * The INI reader is in ini.c. Built on one thread at start-up; read-only (and lock-free) afterwards.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/parse.h"
#include "config/config_int.h"

static struct cfg_keyinfo g_keys[CFG_KEY_COUNT] = {
#define KEY(ident, sec, nm, ty, df, sh, op, fl, hp)                                                                    \
    { .id = ident, .section = sec, .name = nm, .type = ty, .def = df, .short_flag = sh, .options = op, .flags = fl,    \
      .help = hp },
#include "config/keys.def"
#undef KEY
};
static char g_names[CFG_KEY_COUNT][3][96];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void
derive_names(void)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        struct cfg_keyinfo *k = &g_keys[i];
        char *dotted = g_names[i][0], *env = g_names[i][1], *flag = g_names[i][2];

        snprintf(dotted, 96, "%s.%s", k->section, k->name);
        snprintf(env, 96, "CHATTO_%s", dotted);
        for (char *p = env; *p; p++)
            *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        snprintf(flag, 96, "%s", dotted);
        for (char *p = flag; *p; p++)
            if (*p == '.' || *p == '_')
                *p = '-';
        k->dotted = dotted;
        k->env = env;
        k->longflag = (k->flags & CFG_F_SECRET) ? NULL : flag;
    }
}

const struct cfg_keyinfo *
cfg_keyinfo(enum cfg_key k)
{
    CH_ASSERT((unsigned)k < CFG_KEY_COUNT);
    pthread_once(&g_once, derive_names);
    return &g_keys[k];
}

int
cfg_key_find(const char *section, const char *name)
{
    char dotted[160];

    pthread_once(&g_once, derive_names);
    if (section && *section)
        snprintf(dotted, sizeof dotted, "%s.%s", section, name);
    else
        snprintf(dotted, sizeof dotted, "%s", name);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        if (strcmp(g_keys[i].dotted, dotted) == 0)
            return (int)i;
    return -1;
}

const char *
cfg_type_name(enum cfg_type t)
{
    switch (t) {
    case CFG_T_STR: return "string";
    case CFG_T_PATH: return "path";
    case CFG_T_BOOL: return "bool";
    case CFG_T_INT: return "integer";
    case CFG_T_PORT: return "port";
    case CFG_T_SIZE: return "size";
    case CFG_T_DURATION: return "duration";
    case CFG_T_URL: return "URL";
    case CFG_T_URLS: return "URL list";
    case CFG_T_LIST: return "list";
    case CFG_T_ENUM: return "enum";
    }
    return "?";
}

static void
val_clear(struct cfg_val *v, bool secret)
{
    if (v->raw && secret)
        explicit_bzero(v->raw, strlen(v->raw));
    free(v->raw);
    parse_list_free(v->list);
    memset(v, 0, sizeof *v);
}

void
cfg_free(struct cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        val_clear(&c->v[i], g_keys[i].flags & CFG_F_SECRET);
    free(c);
}

struct cfg *
cfg_new(void)
{
    struct cfg *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    pthread_once(&g_once, derive_names);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        struct ch_err err;
        /* a default that does not parse is a bug in keys.def; the unit tests catch it */
        if (cfg_set(c, (enum cfg_key)i, g_keys[i].def, CFG_SRC_DEFAULT, "default", &err) != CH_OK) {
            cfg_free(c);
            return NULL;
        }
    }
    return c;
}

/* Validate text for key k into v (fresh); returns the reason in err without the key name. */
static enum ch_status
parse_value(const struct cfg_keyinfo *k, const char *s, struct cfg_val *v, struct ch_err *err)
{
    enum ch_status st = CH_OK;
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    char canon[64] = "";

    switch (k->type) {
    case CFG_T_STR:
    case CFG_T_PATH:
        break;
    case CFG_T_BOOL:
        st = parse_bool(s, &v->b, err);
        break;
    case CFG_T_INT:
        if (k->options[0])
            sscanf(k->options, "%" SCNd64 "..%" SCNd64, &lo, &hi);
        st = parse_int(s, lo, hi, &v->i, err);
        break;
    case CFG_T_PORT:
        st = parse_port(s, &v->i, err);
        break;
    case CFG_T_SIZE:
        st = parse_size(s, &v->i, err);
        break;
    case CFG_T_DURATION:
        st = parse_duration(s, &v->i, err);
        break;
    case CFG_T_URL:
        if (*s)
            st = parse_url(s, k->options, err);
        break;
    case CFG_T_URLS:
    case CFG_T_LIST:
        st = parse_list(s, &v->list, &v->nlist, err);
        for (size_t i = 0; st == CH_OK && k->type == CFG_T_URLS && i < v->nlist; i++)
            st = parse_url(v->list[i], k->options, err);
        break;
    case CFG_T_ENUM: {
        const char *p = k->options, *t;
        size_t tl;
        bool ok = false;
        /* blanks around the value are ignored and any case is accepted, as for the other types; the value kept
         * is the table's spelling, so readers compare against one form */
        t = parse_trim(s, &tl);
        while (*p && !ok) {
            size_t n = strcspn(p, "|");
            ok = tl == n && strncasecmp(p, t, n) == 0;
            if (ok && n < sizeof canon)
                snprintf(canon, sizeof canon, "%.*s", (int)n, p);
            p += n + (p[n] == '|');
        }
        if (ok && canon[0])
            s = canon;
        if (!ok) {
            char opts[128];
            snprintf(opts, sizeof opts, "%s", k->options);
            for (char *q = opts; *q; q++)
                if (*q == '|')
                    *q = ',';
            st = ch_err_set(err, CH_EINVAL, NULL, "must be one of %s, got '%.40s'", opts, s);
        }
        break;
    }
    }
    if (st == CH_OK && !(v->raw = strdup(s)))
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (st == CH_OK && k->type == CFG_T_ENUM)
        for (char *q = v->raw; *q; q++)
            *q = (char)tolower((unsigned char)*q);
    return st;
}

enum ch_status
cfg_set(struct cfg *c, enum cfg_key k, const char *value, enum cfg_source src, const char *origin,
        struct ch_err *err)
{
    const struct cfg_keyinfo *ki = cfg_keyinfo(k);
    struct cfg_val nv = { 0 };
    struct ch_err e = { 0 };
    enum ch_status st;

    if ((st = parse_value(ki, value, &nv, &e)) != CH_OK) {
        val_clear(&nv, ki->flags & CFG_F_SECRET);
        if (strncmp(origin, "CHATTO_", 7) == 0 || strncmp(origin, "--", 2) == 0)
            return ch_err_set(err, st, ki->dotted, "%s: %s", origin, e.msg);
        return ch_err_set(err, st, ki->dotted, "%s: %s: %s", origin, ki->dotted, e.msg);
    }
    nv.src = src;
    snprintf(nv.origin, sizeof nv.origin, "%s", origin);
    val_clear(&c->v[k], ki->flags & CFG_F_SECRET);
    c->v[k] = nv;
    return CH_OK;
}

/* The key whose environment name is name, or -1. */
static int
env_key(const char *name)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        if (strcmp(cfg_keyinfo((enum cfg_key)i)->env, name) == 0)
            return (int)i;
    return -1;
}

enum ch_status
cfg_load_env(struct cfg *c, char *const *envp, const char *const *ignore, struct ch_err *err)
{
    for (; envp && *envp; envp++) {
        const char *eq = strchr(*envp, '=');
        char name[128];
        bool skip = false;
        int k;

        if (strncmp(*envp, "CHATTO_", 7) != 0 || !eq)
            continue;
        /* a name too long for the buffer is no key either: it gets the unknown-variable error below */
        snprintf(name, sizeof name, "%.*s", (int)(eq - *envp), *envp);
        for (const char *const *ig = ignore; ig && *ig; ig++)
            skip |= strcmp(*ig, name) == 0;
        if (skip)
            continue;
        if ((k = env_key(name)) < 0)
            return ch_err_set(err, CH_EINVAL, NULL,
                              "%s: unknown environment variable (no such config key; see chatto --help)", name);
        enum ch_status st = cfg_set(c, (enum cfg_key)k, eq + 1, CFG_SRC_ENV, name, err);
        if (st != CH_OK)
            return st;
    }
    return CH_OK;
}

static const struct cfg_val *
getv(const struct cfg *c, enum cfg_key k)
{
    CH_ASSERT(c && (unsigned)k < CFG_KEY_COUNT);
    return &c->v[k];
}

/* One value of an environment file: optional matching quotes removed, surrounding blanks trimmed. */
static char *
env_value(char *v)
{
    size_t n;

    v = (char *)parse_trim(v, &n);
    v[n] = '\0';
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        v++;
    }
    return v;
}

enum ch_status
cfg_load_env_file(struct cfg *c, const char *path, struct ch_err *err)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int lineno = 0;
    enum ch_status st = CH_OK;

    if (!f)
        return ch_err_set(err, CH_EINVAL, "core.secrets_file", "core.secrets_file: cannot read %s: %s", path,
                          strerror(errno));
    while (st == CH_OK && fgets(line, sizeof line, f)) {
        char *p = line, *eq, origin[600];
        int k;

        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = ch_err_set(err, CH_EINVAL, NULL, "%s:%d: line too long", path, lineno);
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == ';')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        if (!(eq = strchr(p, '='))) {
            st = ch_err_set(err, CH_EINVAL, NULL, "%s:%d: expected NAME=value", path, lineno);
            break;
        }
        *eq = '\0';
        p[strcspn(p, " \t")] = '\0';
        if (strncmp(p, "CHATTO_", 7) != 0)
            continue; /* the file may hold other variables for other programs */
        if ((k = env_key(p)) < 0) {
            st = ch_err_set(err, CH_EINVAL, NULL, "%s:%d: %s: unknown variable (no such config key)", path, lineno,
                            p);
            break;
        }
        /* like the environment, but the real environment and flags win */
        if (getv(c, (enum cfg_key)k)->src >= CFG_SRC_ENV)
            continue;
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        st = cfg_set(c, (enum cfg_key)k, env_value(eq + 1), CFG_SRC_ENV, origin, err);
    }
    if (st == CH_OK && ferror(f))
        st = ch_err_set(err, CH_EINVAL, "core.secrets_file", "core.secrets_file: cannot read %s", path);
    explicit_bzero(line, sizeof line);
    fclose(f);
    return st;
}

const char *
cfg_str(const struct cfg *c, enum cfg_key k)
{
    const char *s = getv(c, k)->raw;
    return s ? s : "";
}

bool
cfg_bool(const struct cfg *c, enum cfg_key k)
{
    CH_ASSERT(g_keys[k].type == CFG_T_BOOL);
    return getv(c, k)->b;
}

int64_t
cfg_int(const struct cfg *c, enum cfg_key k)
{
    enum cfg_type t = g_keys[k].type;
    CH_ASSERT(t == CFG_T_INT || t == CFG_T_PORT || t == CFG_T_SIZE || t == CFG_T_DURATION);
    return getv(c, k)->i;
}

const char *const *
cfg_list(const struct cfg *c, enum cfg_key k, size_t *count)
{
    static const char *const empty[] = { NULL };
    const struct cfg_val *v = getv(c, k);

    CH_ASSERT(g_keys[k].type == CFG_T_LIST || g_keys[k].type == CFG_T_URLS);
    if (count)
        *count = v->nlist;
    return v->list ? (const char *const *)v->list : empty;
}

enum cfg_source
cfg_source_of(const struct cfg *c, enum cfg_key k)
{
    return getv(c, k)->src;
}

bool
cfg_is_set(const struct cfg *c, enum cfg_key k)
{
    return cfg_str(c, k)[0] != '\0';
}

static enum ch_status
require(const struct cfg *c, enum cfg_key k, const char *why, struct ch_err *err)
{
    const struct cfg_keyinfo *ki = cfg_keyinfo(k);

    if (cfg_is_set(c, k))
        return CH_OK;
    return ch_err_set(err, CH_EINVAL, ki->dotted, "%s: required when %s (set it in the config file or %s)",
                      ki->dotted, why, ki->env);
}

#define SECRET_MIN_LEN 16

/* core.assets.s3: everything the client needs when S3 is the backend, or when an endpoint is set at all (files
 * stored in S3 earlier are then still served). The finer checks (port range, path_style against the bucket name)
 * are lib/s3's, at start-up. */
static enum ch_status
validate_s3(const struct cfg *c, struct ch_err *err)
{
    static const enum cfg_key need[] = { CFG_CORE_ASSETS_S3_ENDPOINT, CFG_CORE_ASSETS_S3_BUCKET,
                                         CFG_CORE_ASSETS_S3_ACCESS_KEY_ID, CFG_CORE_ASSETS_S3_SECRET_ACCESS_KEY };
    bool backend = strcmp(cfg_str(c, CFG_CORE_ASSETS_STORAGE_BACKEND), "s3") == 0;
    const char *ep = cfg_str(c, CFG_CORE_ASSETS_S3_ENDPOINT), *b = cfg_str(c, CFG_CORE_ASSETS_S3_BUCKET);
    enum ch_status st;

    if (!backend && !*ep)
        return CH_OK;
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if ((st = require(c, need[i], backend ? "storage_backend is s3" : "core.assets.s3.endpoint is set", err)))
            return st;
    if (!strncasecmp(ep, "https://", 8))
        ep += 8;
    else if (!strncasecmp(ep, "http://", 7))
        ep += 7;
    if (!*ep || strcspn(ep, "/?#@ \t") < strlen(ep) - (ep[strlen(ep) - 1] == '/'))
        return ch_err_set(err, CH_EINVAL, "core.assets.s3.endpoint",
                          "core.assets.s3.endpoint: must be host[:port] (or http(s)://host[:port]), without a path");
    if (strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != strlen(b))
        return ch_err_set(err, CH_EINVAL, "core.assets.s3.bucket",
                          "core.assets.s3.bucket: must be a bucket name (letters, digits, '.', '-', '_')");
    return CH_OK;
}

/* Web Push: a VAPID pair comes whole (the keys themselves are checked where they are read), a subject is a contact */
static enum ch_status
validate_push(const struct cfg *c, struct ch_err *err)
{
    const char *pub = cfg_str(c, CFG_PUSH_VAPID_PUBLIC_KEY), *priv = cfg_str(c, CFG_PUSH_VAPID_PRIVATE_KEY);
    const char *sub = cfg_str(c, CFG_PUSH_VAPID_SUBJECT);

    if (!*pub != !*priv)
        return ch_err_set(err, CH_EINVAL, *pub ? "push.vapid_private_key" : "push.vapid_public_key",
                          "%s: must be set too when %s is (a VAPID key pair comes whole)",
                          *pub ? "push.vapid_private_key" : "push.vapid_public_key",
                          *pub ? "push.vapid_public_key" : "push.vapid_private_key");
    if (*sub && strncmp(sub, "mailto:", 7) != 0 && strncmp(sub, "https://", 8) != 0)
        return ch_err_set(err, CH_EINVAL, "push.vapid_subject",
                          "push.vapid_subject: must be a mailto: or https:// contact, e.g. mailto:ops@example.com");
    return CH_OK;
}

/* LiveKit: a webhook key comes with its secret; the server id names LiveKit rooms ("<id>.server_<room>@<call>"),
 * so it holds no '.' or '@'; reconciliation runs at least once a second */
static enum ch_status
validate_livekit(const struct cfg *c, struct ch_err *err)
{
    const char *wk = cfg_str(c, CFG_LIVEKIT_WEBHOOK_API_KEY), *ws = cfg_str(c, CFG_LIVEKIT_WEBHOOK_API_SECRET);
    const char *sid = cfg_str(c, CFG_LIVEKIT_SERVER_ID);

    if (!*wk != !*ws)
        return ch_err_set(err, CH_EINVAL, *wk ? "livekit.webhook_api_secret" : "livekit.webhook_api_key",
                          "%s: must be set too when %s is", *wk ? "livekit.webhook_api_secret" : "livekit.webhook_api_key",
                          *wk ? "livekit.webhook_api_key" : "livekit.webhook_api_secret");
    if (strlen(sid) > 64 || strspn(sid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(sid))
        return ch_err_set(err, CH_EINVAL, "livekit.server_id",
                          "livekit.server_id: at most 64 letters, digits, '-' or '_' (it prefixes LiveKit room names)");
    if (cfg_int(c, CFG_LIVEKIT_RECONCILE_INTERVAL) < 1000)
        return ch_err_set(err, CH_EINVAL, "livekit.reconcile_interval", "livekit.reconcile_interval: at least 1s");
    return CH_OK;
}

enum ch_status
cfg_validate(const struct cfg *c, struct ch_err *err)
{
    enum ch_status st;
    const char *m;

    /* Secrets that replicas must share: refuse to start naming every missing one at once, because replicas that
     * silently generated different secrets would break each other's sessions. */
    if (!cfg_bool(c, CFG_NATS_EMBEDDED_ENABLED)) {
        char missing[CH_ERR_MSG_MAX] = "";
        size_t off = 0;
        for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
            const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)i);
            if ((ki->flags & CFG_F_NEEDED) && !cfg_is_set(c, (enum cfg_key)i) && off < sizeof missing)
                off += (size_t)snprintf(missing + off, sizeof missing - off, "%s%s (%s)", off ? ", " : "",
                                        ki->dotted, ki->env);
        }
        if (off)
            return ch_err_set(err, CH_EINVAL, NULL,
                              "nats.embedded.enabled is false, so these secrets must be set, identical on every "
                              "process: %s",
                              missing);
        if ((st = require(c, CFG_NATS_CLIENT_URL, "nats.embedded.enabled is false", err)) != CH_OK)
            return st;
    }
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)i);
        size_t n = strlen(cfg_str(c, (enum cfg_key)i));
        if ((ki->flags & CFG_F_SECRET) && (ki->flags & CFG_F_MATCH) && n > 0 && n < SECRET_MIN_LEN)
            return ch_err_set(err, CH_EINVAL, ki->dotted,
                              "%s: too short (%zu bytes); use at least %d, e.g. the 43-character secrets that "
                              "`chatto init` generates",
                              ki->dotted, n, SECRET_MIN_LEN);
    }
    m = cfg_str(c, CFG_NATS_CLIENT_AUTH_METHOD);
    if (!cfg_bool(c, CFG_NATS_EMBEDDED_ENABLED)) {
        if (strcmp(m, "token") == 0 && (st = require(c, CFG_NATS_CLIENT_TOKEN, "auth_method is token", err)))
            return st;
        if (strcmp(m, "userpass") == 0 &&
            ((st = require(c, CFG_NATS_CLIENT_USERNAME, "auth_method is userpass", err)) ||
             (st = require(c, CFG_NATS_CLIENT_PASSWORD, "auth_method is userpass", err))))
            return st;
        if (strcmp(m, "nkey") == 0 && (st = require(c, CFG_NATS_CLIENT_NKEY_SEED, "auth_method is nkey", err)))
            return st;
        if (strcmp(m, "credentials") == 0 &&
            (st = require(c, CFG_NATS_CLIENT_CREDENTIALS_FILE, "auth_method is credentials", err)))
            return st;
    }
    if (cfg_bool(c, CFG_LIVEKIT_ENABLED) &&
        ((st = require(c, CFG_LIVEKIT_URL, "livekit.enabled is true", err)) ||
         (st = require(c, CFG_LIVEKIT_API_KEY, "livekit.enabled is true", err)) ||
         (st = require(c, CFG_LIVEKIT_API_SECRET, "livekit.enabled is true", err))))
        return st;
    if ((st = validate_livekit(c, err)) != CH_OK)
        return st;
    if ((st = validate_s3(c, err)) != CH_OK || (st = validate_push(c, err)) != CH_OK)
        return st;
    if (strpbrk(cfg_str(c, CFG_WEBSERVER_URL), "?#"))
        return ch_err_set(err, CH_EINVAL, "webserver.url", "webserver.url: must not contain a query or fragment");
    if (cfg_str(c, CFG_METRICS_PATH)[0] != '/')
        return ch_err_set(err, CH_EINVAL, "metrics.path", "metrics.path: must start with '/'");
    if (!cfg_is_set(c, CFG_NATS_EMBEDDED_DATA_DIR) && cfg_bool(c, CFG_NATS_EMBEDDED_ENABLED))
        return require(c, CFG_NATS_EMBEDDED_DATA_DIR, "nats.embedded.enabled is true", err);
    return CH_OK;
}

static const char *
source_name(enum cfg_source s)
{
    switch (s) {
    case CFG_SRC_DEFAULT: return "default";
    case CFG_SRC_GENERATED: return "generated";
    case CFG_SRC_FILE: return "file";
    case CFG_SRC_ENV: return "env";
    case CFG_SRC_FLAG: return "flag";
    }
    return "?";
}

/* Write s as a double-quoted INI value that our reader turns back into s. A raw newline would end the line, so
 * line breaks and tabs (possible in values from the environment) go out as escapes. */
static void
put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        switch (*s) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default: fputc(*s, out);
        }
    }
    fputc('"', out);
}

static bool
needs_quotes(enum cfg_type t)
{
    return t == CFG_T_STR || t == CFG_T_PATH || t == CFG_T_URL || t == CFG_T_URLS || t == CFG_T_LIST;
}

void
cfg_print(const struct cfg *c, FILE *out, bool show_secrets)
{
    const char *section = NULL;

    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)i);
        const struct cfg_val *v = &c->v[i];

        if (!section || strcmp(section, ki->section) != 0) {
            fprintf(out, "%s[%s]\n", section ? "\n" : "", ki->section);
            section = ki->section;
        }
        fprintf(out, "%s = ", ki->name);
        if ((ki->flags & CFG_F_SECRET) && !show_secrets && cfg_is_set(c, (enum cfg_key)i))
            fputs("\"********\"", out);
        else if (needs_quotes(ki->type))
            put_quoted(out, cfg_str(c, (enum cfg_key)i));
        else
            fputs(cfg_str(c, (enum cfg_key)i), out);
        if (v->src == CFG_SRC_DEFAULT)
            fputs("  # default\n", out);
        else
            fprintf(out, "  # %s: %s\n", source_name(v->src), v->origin);
    }
}

void
cfg_write_example(FILE *out, const char *const *secrets)
{
    const char *section = NULL;

    fputs("# Chatto configuration (INI; simple TOML snippets work too).\n"
          "#\n"
          "# Every key is listed at its default value, commented out: uncomment a line to change it.\n"
          "# Precedence, lowest to highest: defaults < this file < CHATTO_* environment < command-line flags.\n"
          "# Values may be quoted (\"...\" with \\\" and \\\\ escapes, or '...' taken literally); a # or ; after\n"
          "# whitespace starts a comment. Keys may be indented; each key may appear once; lines must be at\n"
          "# most 198 bytes long.\n"
          "#\n"
          "# Units:  sizes      1024, 64KiB, 25MB, 1 GiB   (KB/MB/GB = 1000^n bytes, KiB/MiB/GiB = 1024^n)\n"
          "#         durations  500ms, 30s, 15m, 2h, 90d, 1w, 1h30m\n"
          "#         bools      true/false, yes/no, on/off, 1/0\n"
          "#         lists      comma-separated: a, b, c\n"
          "#\n"
          "# Keys marked \"must match\" need the same value on every chatto process of one deployment.\n"
          "# See chatto.ini(5) for the full reference.\n",
          out);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)i);
        const char *sv = secrets ? secrets[i] : NULL;

        if (!section || strcmp(section, ki->section) != 0) {
            fprintf(out, "\n[%s]\n", ki->section);
            section = ki->section;
        }
        fprintf(out, "\n# %s\n# %s", ki->help, cfg_type_name(ki->type));
        if (ki->type == CFG_T_ENUM) {
            fputs(" (", out);
            for (const char *p = ki->options; *p; p++)
                fputs(*p == '|' ? ", " : (char[]){ *p, 0 }, out);
            fputs(")", out);
        } else if (ki->type == CFG_T_INT && ki->options[0]) {
            fprintf(out, " (%s)", ki->options);
        }
        fprintf(out, "; env %s", ki->env);
        if (ki->longflag)
            fprintf(out, "; flag --%s", ki->longflag);
        if (ki->flags & CFG_F_MATCH)
            fputs("; must match", out);
        fputc('\n', out);
        if (sv) {
            fprintf(out, "%s = ", ki->name);
            put_quoted(out, sv);
            fputc('\n', out);
            continue;
        }
        fprintf(out, "#%s = ", ki->name);
        if (needs_quotes(ki->type))
            put_quoted(out, ki->def);
        else
            fputs(ki->def, out);
        fputc('\n', out);
    }
}
