/* SPDX-License-Identifier: MIT */
/*
 * lib/config: the key table, the INI reader (the seed's TOML snippets, quoting, comments, and errors that name
 * file, line, key and reason), CHATTO_* variables, precedence, cross-key validation, and the two writers
 * (`config print` and the generated example), which must both read back. Table-driven where there are cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char SEED_SNIPPET[] = "[nats.embedded]\n"
                                   "enabled = false\n"
                                   "\n"
                                   "[nats.client]\n"
                                   "url = \"nats://nats:4222\"\n"
                                   "auth_method = \"token\"\n"
                                   "token = \"your-shared-token\"\n";

/* Secrets that satisfy cfg_validate in external mode (16+ bytes each). */
static const char SECRETS[] = "[webserver]\n"
                              "cookie_signing_secret = cookie-secret-0123456789\n"
                              "[core]\n"
                              "secret_key = core-secret-0123456789\n"
                              "[core.assets]\n"
                              "signing_secret = assets-secret-0123456789\n";

static struct cfg *
load_ok(const char *text)
{
    struct cfg *c = cfg_new();
    struct ch_err err = { 0 };

    assert_non_null(c);
    if (cfg_load_string(c, text, "t.ini", &err) != CH_OK)
        fail_msg("rejected: %s\n--- text ---\n%s", err.msg, text);
    return c;
}

static char *
capture_print(const struct cfg *c, bool show_secrets)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    cfg_print(c, f, show_secrets);
    fclose(f);
    return buf;
}

static char *
capture_example(const char *const *secrets)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    cfg_write_example(f, secrets);
    fclose(f);
    return buf;
}

/* Typed equality of every key, so a round trip is checked on what the server reads, not just the text. */
static void
assert_same_config(const struct cfg *a, const struct cfg *b)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        enum cfg_key k = (enum cfg_key)i;
        const struct cfg_keyinfo *ki = cfg_keyinfo(k);
        if (strcmp(cfg_str(a, k), cfg_str(b, k)) != 0)
            fail_msg("%s: '%s' became '%s'", ki->dotted, cfg_str(a, k), cfg_str(b, k));
        switch (ki->type) {
        case CFG_T_BOOL: assert_int_equal(cfg_bool(a, k), cfg_bool(b, k)); break;
        case CFG_T_INT:
        case CFG_T_PORT:
        case CFG_T_SIZE:
        case CFG_T_DURATION: assert_true(cfg_int(a, k) == cfg_int(b, k)); break;
        case CFG_T_LIST:
        case CFG_T_URLS: {
            size_t na, nb;
            const char *const *la = cfg_list(a, k, &na), *const *lb = cfg_list(b, k, &nb);
            assert_int_equal(na, nb);
            for (size_t j = 0; j < na; j++)
                assert_string_equal(la[j], lb[j]);
            break;
        }
        default: break;
        }
    }
}

/* ---- the table ---- */

/* Enum values: any case, blanks around them ignored; the value kept is the table's spelling. */
static void
test_enum_values_are_kept_in_the_tables_spelling(void **state)
{
    struct cfg *c = cfg_new();
    struct ch_err err = { 0 };
    (void)state;
    assert_int_equal(cfg_set(c, CFG_NATS_CLIENT_AUTH_METHOD, " Token ", CFG_SRC_ENV, "CHATTO_X", &err), CH_OK);
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_AUTH_METHOD), "token");
    assert_int_equal(cfg_set(c, CFG_LOG_FORMAT, "JSON", CFG_SRC_FLAG, "--log-format", &err), CH_OK);
    assert_string_equal(cfg_str(c, CFG_LOG_FORMAT), "json");
    assert_int_equal(cfg_set(c, CFG_LOG_FORMAT, "jsonl", CFG_SRC_FLAG, "--log-format", &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "must be one of"));
    assert_string_equal(cfg_str(c, CFG_LOG_FORMAT), "json");
    cfg_free(c);
}

static void
test_table_defaults_all_parse_and_are_the_effective_values(void **state)
{
    struct cfg *c = cfg_new();
    (void)state;
    assert_non_null(c); /* cfg_new fails if any default does not parse */
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)i);
        assert_int_equal(ki->id, (enum cfg_key)i);
        if (strcmp(cfg_str(c, (enum cfg_key)i), ki->def) != 0)
            fail_msg("%s: effective '%s', default '%s'", ki->dotted, cfg_str(c, (enum cfg_key)i), ki->def);
        assert_int_equal(cfg_source_of(c, (enum cfg_key)i), CFG_SRC_DEFAULT);
        assert_int_equal(cfg_is_set(c, (enum cfg_key)i), ki->def[0] != '\0');
        assert_string_not_equal(cfg_type_name(ki->type), "?");
        if (ki->type == CFG_T_INT && ki->options[0]) {
            long long lo, hi, d = atoll(ki->def);
            if (sscanf(ki->options, "%lld..%lld", &lo, &hi) != 2 || lo > hi || d < lo || d > hi)
                fail_msg("%s: bad range '%s' for default %s", ki->dotted, ki->options, ki->def);
        }
        if ((ki->type == CFG_T_ENUM || ki->type == CFG_T_URL || ki->type == CFG_T_URLS) && !ki->options[0])
            fail_msg("%s: needs options", ki->dotted);
        if ((ki->flags & CFG_F_NEEDED) && !(ki->flags & CFG_F_SECRET))
            fail_msg("%s: NEEDED keys are secrets", ki->dotted);
    }
    cfg_free(c);
    cfg_free(NULL);
}

static void
test_table_every_key_has_help_and_unique_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *a = cfg_keyinfo((enum cfg_key)i);
        char env[128], flag[128];
        if (!a->help || strlen(a->help) < 10 || strchr(a->help, '\n'))
            fail_msg("%s: help must be one non-trivial line", a->dotted);
        /* derived names follow the documented rules */
        snprintf(env, sizeof env, "CHATTO_%s_%s", a->section, a->name);
        snprintf(flag, sizeof flag, "%s-%s", a->section, a->name);
        for (char *p = env; *p; p++)
            *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        for (char *p = flag; *p; p++)
            if (*p == '.' || *p == '_')
                *p = '-';
        assert_string_equal(a->env, env);
        if (a->flags & CFG_F_SECRET)
            assert_null(a->longflag); /* argv is world-readable */
        else
            assert_string_equal(a->longflag, flag);
        assert_int_equal(cfg_key_find(a->section, a->name), (int)i);
        assert_int_equal(cfg_key_find(NULL, a->dotted), (int)i);
        assert_int_equal(cfg_key_find("", a->dotted), (int)i);
        for (size_t j = i + 1; j < CFG_KEY_COUNT; j++) {
            const struct cfg_keyinfo *b = cfg_keyinfo((enum cfg_key)j);
            if (strcmp(a->dotted, b->dotted) == 0 || strcmp(a->env, b->env) == 0)
                fail_msg("%s and %s share a name", a->dotted, b->dotted);
            if (a->longflag && b->longflag && strcmp(a->longflag, b->longflag) == 0)
                fail_msg("%s and %s share --%s", a->dotted, b->dotted, a->longflag);
            if (a->short_flag && a->short_flag == b->short_flag)
                fail_msg("%s and %s share -%c", a->dotted, b->dotted, a->short_flag);
        }
    }
    assert_int_equal(cfg_key_find("webserver", "nope"), -1);
    assert_int_equal(cfg_key_find(NULL, "port"), -1);
    assert_int_equal(cfg_key_find("nats", "embedded.port"), CFG_NATS_EMBEDDED_PORT);
    assert_string_equal(cfg_keyinfo(CFG_NATS_EMBEDDED_AUTH_TOKEN)->env, "CHATTO_NATS_EMBEDDED_AUTH_TOKEN");
    assert_string_equal(cfg_keyinfo(CFG_WEBSERVER_PORT)->longflag, "webserver-port");
}

/* ---- the INI reader: accepted syntax ---- */

static void
test_load_string_reads_the_seed_snippet_verbatim(void **state)
{
    struct cfg *c = load_ok(SEED_SNIPPET);
    size_t n = 0;
    (void)state;
    assert_false(cfg_bool(c, CFG_NATS_EMBEDDED_ENABLED));
    assert_string_equal(cfg_list(c, CFG_NATS_CLIENT_URL, &n)[0], "nats://nats:4222");
    assert_int_equal(n, 1);
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_URL), "nats://nats:4222");
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_AUTH_METHOD), "token");
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_TOKEN), "your-shared-token");
    assert_int_equal(cfg_source_of(c, CFG_NATS_CLIENT_TOKEN), CFG_SRC_FILE);
    assert_int_equal(cfg_source_of(c, CFG_NATS_EMBEDDED_ENABLED), CFG_SRC_FILE);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_DEFAULT);
    cfg_free(c);
}

static void
test_load_string_value_syntax(void **state)
{
    static const struct {
        const char *what, *text;
        enum cfg_key key;
        const char *want;
    } c[] = {
        { "bare", "[core]\nserver_name = Chat Team\n", CFG_CORE_SERVER_NAME, "Chat Team" },
        { "no spaces around =", "[core]\nserver_name=x\n", CFG_CORE_SERVER_NAME, "x" },
        { "colon separator", "[core]\nserver_name: x\n", CFG_CORE_SERVER_NAME, "x" },
        { "= inside the value", "[nats.client]\ntoken = a=b=c\n", CFG_NATS_CLIENT_TOKEN, "a=b=c" },
        { ": inside the value", "[core]\nserver_name = a:b\n", CFG_CORE_SERVER_NAME, "a:b" },
        { "= after a colon separator", "[core]\nserver_name: a=b\n", CFG_CORE_SERVER_NAME, "a=b" },
        { "URL with port", "[nats.client]\nurl = nats://a:4222\n", CFG_NATS_CLIENT_URL, "nats://a:4222" },
        { "double quotes", "[core]\nserver_name = \"Chat Team\"\n", CFG_CORE_SERVER_NAME, "Chat Team" },
        { "escapes", "[core]\nserver_name = \"a\\\"b\\\\c\\td\\ne\\rf\"\n", CFG_CORE_SERVER_NAME,
          "a\"b\\c\td\ne\rf" },
        { "single quotes are literal", "[core]\nserver_name = 'C:\\new\\t \"x\" # y'\n", CFG_CORE_SERVER_NAME,
          "C:\\new\\t \"x\" # y" },
        { "quoted leading and trailing spaces", "[core]\nserver_name = \"  x  \"\n", CFG_CORE_SERVER_NAME,
          "  x  " },
        { "empty quotes", "[core]\nserver_name = \"\"\n", CFG_CORE_SERVER_NAME, "" },
        { "empty single quotes", "[core]\nserver_name = ''\n", CFG_CORE_SERVER_NAME, "" },
        { "empty value", "[core]\nserver_name =\n", CFG_CORE_SERVER_NAME, "" },
        { "empty value, spaces", "[core]\nserver_name =    \n", CFG_CORE_SERVER_NAME, "" },
        { "# comment after a quoted value", "[nats.embedded]\ndata_dir = \"/x\" # c\n", CFG_NATS_EMBEDDED_DATA_DIR,
          "/x" },
        { "# comment after a bare value", "[nats.embedded]\ndata_dir = /x # c\n", CFG_NATS_EMBEDDED_DATA_DIR, "/x" },
        { "# comment right after the quote", "[nats.embedded]\ndata_dir = \"/x\"# c\n", CFG_NATS_EMBEDDED_DATA_DIR,
          "/x" },
        { "# without whitespace is data", "[nats.embedded]\ndata_dir = /x#y\n", CFG_NATS_EMBEDDED_DATA_DIR, "/x#y" },
        { "# inside double quotes", "[core]\nserver_name = \"a # b\"\n", CFG_CORE_SERVER_NAME, "a # b" },
        { "a value that is only a comment", "[core]\nserver_name = # nothing\n", CFG_CORE_SERVER_NAME, "" },
        { "; comment after a quoted value", "[nats.embedded]\ndata_dir = \"/x\" ; c\n", CFG_NATS_EMBEDDED_DATA_DIR,
          "/x" },
        { "; comment after a bare value", "[nats.embedded]\ndata_dir = /x ; c\n", CFG_NATS_EMBEDDED_DATA_DIR, "/x" },
        { "; without whitespace is data", "[core]\nserver_name = a;b\n", CFG_CORE_SERVER_NAME, "a;b" },
        { "; after whitespace inside double quotes", "[core]\nserver_name = \"a ; b\"\n", CFG_CORE_SERVER_NAME,
          "a ; b" },
        { "; and # inside single quotes", "[core]\nserver_name = 'a ; b # c'  ; real\n", CFG_CORE_SERVER_NAME,
          "a ; b # c" },
        { "trailing whitespace", "[core]\nserver_name = x \t \n", CFG_CORE_SERVER_NAME, "x" },
        { "indented key (TOML style)", "[core]\n    server_name = x\n", CFG_CORE_SERVER_NAME, "x" },
        { "tab-indented key", "[core]\n\tserver_name = x\n", CFG_CORE_SERVER_NAME, "x" },
        { "indented key after another key", "[core]\n  server_name = x\n  secret_key = y\n", CFG_CORE_SECRET_KEY,
          "y" },
        { "[ spaced section ]", "[ core ]\nserver_name = x\n", CFG_CORE_SERVER_NAME, "x" },
        { "[\tspaced section\t]", "[\tcore.assets\t]\nmax_upload_size = 5MB\n", CFG_CORE_ASSETS_MAX_UPLOAD_SIZE,
          "5MB" },
        { "indented section", "  [core]\nserver_name = x\n", CFG_CORE_SERVER_NAME, "x" },
        { "top-level dotted key", "log.level = debug\n[core]\nserver_name = x\n", CFG_LOG_LEVEL, "debug" },
        { "dotted key under a parent section", "[nats]\nembedded.data_dir = /srv\n", CFG_NATS_EMBEDDED_DATA_DIR,
          "/srv" },
        { "enum is case-insensitive", "[log]\nlevel = DEBUG\n", CFG_LOG_LEVEL, "debug" },
        { "CRLF line endings", "[core]\r\nserver_name = x\r\nsecret_key = y\r\n", CFG_CORE_SERVER_NAME, "x" },
        { "CRLF after a quoted value", "[core]\r\nserver_name = \"x y\"\r\n", CFG_CORE_SERVER_NAME, "x y" },
        { "CRLF after a comment", "[core]\r\nserver_name = x # c\r\n", CFG_CORE_SERVER_NAME, "x" },
        { "BOM", "\xEF\xBB\xBF[core]\nserver_name = x\n", CFG_CORE_SERVER_NAME, "x" },
        { "BOM before a top-level key", "\xEF\xBB\xBFlog.level = warn\n", CFG_LOG_LEVEL, "warn" },
        { "no final newline", "[core]\nserver_name = x", CFG_CORE_SERVER_NAME, "x" },
        { "comments and blank lines", "# a\n; b\n   # c\n\t; d\n\n   \n[core]\n# e\nserver_name = x\n",
          CFG_CORE_SERVER_NAME, "x" },
        { "UTF-8 value", "[core]\nserver_name = \"Caf\xc3\xa9 \xe2\x82\xac\"\n", CFG_CORE_SERVER_NAME,
          "Caf\xc3\xa9 \xe2\x82\xac" },
        { "list value", "[webserver]\ntrusted_proxies = 10.0.0.0/8, ::1 # two\n", CFG_WEBSERVER_TRUSTED_PROXIES,
          "10.0.0.0/8, ::1" },
        { "empty text", "", CFG_CORE_SERVER_NAME, "Chatto" },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct cfg *cf = cfg_new();
        struct ch_err err = { 0 };
        if (cfg_load_string(cf, c[i].text, "t.ini", &err) != CH_OK)
            fail_msg("%s: rejected: %s", c[i].what, err.msg);
        if (strcmp(cfg_str(cf, c[i].key), c[i].want) != 0)
            fail_msg("%s: got '%s', want '%s'", c[i].what, cfg_str(cf, c[i].key), c[i].want);
        cfg_free(cf);
    }
}

static void
test_load_string_typed_values(void **state)
{
    struct cfg *c = load_ok("[webserver]\nport = 5000\nmax_body_size = 2 MiB\ntrusted_proxies = 10.0.0.0/8, ::1\n"
                            "request_logging = yes\n[auth]\ntoken_ttl = 1h30m\n[nats.client]\n"
                            "url = nats://a:1, tls://b:2\n");
    size_t n = 0;
    const char *const *l;
    (void)state;
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5000);
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_MAX_BODY_SIZE), 2097152);
    assert_true(cfg_bool(c, CFG_WEBSERVER_REQUEST_LOGGING));
    assert_int_equal(cfg_int(c, CFG_AUTH_TOKEN_TTL), 5400000);
    l = cfg_list(c, CFG_WEBSERVER_TRUSTED_PROXIES, &n);
    assert_int_equal(n, 2);
    assert_string_equal(l[0], "10.0.0.0/8");
    assert_string_equal(l[1], "::1");
    assert_null(l[2]);
    l = cfg_list(c, CFG_NATS_CLIENT_URL, &n);
    assert_int_equal(n, 2);
    assert_string_equal(l[1], "tls://b:2");
    cfg_free(c);
    c = cfg_new();
    l = cfg_list(c, CFG_WEBSERVER_TRUSTED_PROXIES, &n); /* default "" */
    assert_int_equal(n, 0);
    assert_null(l[0]);
    cfg_free(c);
}

/* ---- the INI reader: errors ---- */

static void
test_load_string_errors_name_file_line_key_and_reason(void **state)
{
    static const struct {
        const char *what, *text;
        int line;
        const char *key;    /* "" when the error is not about one key */
        const char *reason; /* must follow "t.ini:LINE: key: " */
    } c[] = {
        { "unknown key", "[webserver]\nprot = 1\n", 2, "webserver.prot", "unknown key" },
        { "unknown section", "[webserver]\nport = 4000\n\n[nats.embeded]\nenabled = true\n", 5,
          "nats.embeded.enabled", "unknown key (there is no section [nats.embeded])" },
        { "unknown top-level key", "nope = 1\n", 1, "nope", "unknown key" },
        { "unknown dotted top-level key", "log.lvl = debug\n", 1, "log.lvl", "unknown key" },
        { "bad bool", "[nats.embedded]\nenabled = maybe\n", 2, "nats.embedded.enabled",
          "expected true or false, got 'maybe'" },
        { "bad int", "[webserver]\nthreads = many\n", 2, "webserver.threads", "expected a number, got 'many'" },
        { "int out of range", "[webserver]\nthreads = 300\n", 2, "webserver.threads",
          "must be between 0 and 256, got 300" },
        { "bad port", "[webserver]\nport = 70000\n", 2, "webserver.port", "must be between 0 and 65535, got 70000" },
        { "bad size", "[core.assets]\nmax_upload_size = 1.5MB\n", 2, "core.assets.max_upload_size",
          "size must be a whole number" },
        { "bad size unit", "[core.assets]\nmax_upload_size = 10XB\n", 2, "core.assets.max_upload_size",
          "unknown size unit 'xb'" },
        { "duration without unit", "[auth]\ntoken_ttl = 90\n", 2, "auth.token_ttl", "missing or unknown unit" },
        { "negative duration", "[auth]\ntoken_ttl = -5s\n", 2, "auth.token_ttl", "duration must not be negative" },
        { "bad enum", "[log]\nformat = xml\n", 2, "log.format", "must be one of text,json, got 'xml'" },
        { "bad url scheme", "[webserver]\nurl = ftp://x\n", 2, "webserver.url",
          "URL scheme must be one of http|https" },
        { "url without host", "[webserver]\nurl = http://\n", 2, "webserver.url", "URL has no host" },
        { "bad item in a url list", "[nats.client]\nurl = nats://a:1, http://b\n", 2, "nats.client.url",
          "URL scheme must be one of nats|tls" },
        { "key set twice", "[webserver]\nport = 1\n\n# c\nport = 2\n", 5, "webserver.port",
          "set twice (first on line 2)" },
        { "dotted and sectioned key set twice", "log.level = debug\n[log]\nlevel = info\n", 3, "log.level",
          "set twice (first on line 1)" },
        { "unterminated double quote", "[core]\nserver_name = \"open\n", 2, "core.server_name",
          "unterminated quoted value" },
        { "unterminated single quote", "[core]\nserver_name = 'open\n", 2, "core.server_name",
          "unterminated quoted value" },
        { "escaped closing quote", "[core]\nserver_name = \"open\\\"\n", 2, "core.server_name",
          "unterminated quoted value" },
        { "text after the closing quote", "[core]\nserver_name = \"a\" b\n", 2, "core.server_name",
          "unexpected text after the closing quote" },
        { "second quoted string", "[core]\nserver_name = \"a\" \"b\"\n", 2, "core.server_name",
          "unexpected text after the closing quote" },
        { "unknown escape", "[core]\nserver_name = \"\\q\"\n", 2, "core.server_name", "unknown escape" },
        { "backslash at the end", "[core]\nserver_name = \"a\\\n", 2, "core.server_name", "unknown escape" },
        { "line without =", "[core]\n\njust words\n", 3, "", "syntax error" },
        { "unclosed section", "[core\nserver_name = x\n", 1, "", "syntax error" },
        { "; comment before the =", "[core]\nserver_name ; x = 1\n", 2, "", "syntax error" },
        { "line numbers count comments, blanks and CRLF",
          "# c\r\n\r\n[core]\r\n; x\r\n  \r\n  server_name = \"x\" y\r\n", 6, "core.server_name",
          "unexpected text after the closing quote" },
        { "the first of two errors wins", "[core]\nserver_name = \"x\n[webserver]\nprot = 1\n", 2,
          "core.server_name", "unterminated" },
        { "a syntax error before a key error", "[core]\nserver_name = a\njunk\n[webserver]\nprot = 1\n", 3, "",
          "syntax error" },
        { "a key error before a syntax error", "[webserver]\nprot = 1\njunk\n", 2, "webserver.prot", "unknown key" },
        { "a key error after a ; syntax error keeps its line", "[core]\na ; b = 1\n\n[webserver]\nprot = 1\n", 2, "",
          "syntax error" },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct cfg *cf = cfg_new();
        struct ch_err err = { 0 };
        char want[256];
        enum ch_status st = cfg_load_string(cf, c[i].text, "t.ini", &err);
        snprintf(want, sizeof want, "t.ini:%d: %s%s%s", c[i].line, c[i].key, c[i].key[0] ? ": " : "", c[i].reason);
        if (st != CH_EINVAL)
            fail_msg("%s: status %d, message '%s'", c[i].what, st, err.msg);
        if (strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("%s: message '%s', want it to start '%s'", c[i].what, err.msg, want);
        cfg_free(cf);
    }
}

static void
test_load_string_rejects_lines_over_198_bytes_instead_of_truncating(void **state)
{
    static const struct {
        const char *prefix, *suffix;
        size_t total; /* bytes in the line, without '\n' */
        bool ok;
    } c[] = {
        { "server_name = \"", "\"", 198, true },
        { "server_name = \"", "\"", 199, false },
        { "server_name = \"", "\"", 316, false },
        { "server_name = \"", "\"\r", 198, true }, /* the '\r' of CRLF counts */
        { "server_name = \"", "\"\r", 199, false },
        { "        server_name = \"", "\"", 198, true }, /* so does indentation */
        { "        server_name = \"", "\"", 199, false },
        { "# ", "", 198, true },                            /* and comments */
        { "# ", "", 199, false },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char text[600], line[400], msg[96];
        size_t fill = c[i].total - strlen(c[i].prefix) - strlen(c[i].suffix);
        struct cfg *cf = cfg_new();
        struct ch_err err = { 0 };
        memset(line, 'v', fill);
        line[fill] = '\0';
        snprintf(text, sizeof text, "[core]\n# ok\n%s%s%s\nsecret_key = after\n", c[i].prefix, line, c[i].suffix);
        enum ch_status st = cfg_load_string(cf, text, "t.ini", &err);
        if (c[i].ok) {
            if (st != CH_OK)
                fail_msg("%zu-byte line rejected: %s", c[i].total, err.msg);
            if (c[i].prefix[0] != '#')
                assert_int_equal(strlen(cfg_str(cf, CFG_CORE_SERVER_NAME)), fill); /* not cut */
            assert_string_equal(cfg_str(cf, CFG_CORE_SECRET_KEY), "after");
        } else {
            snprintf(msg, sizeof msg, "t.ini:3: line too long (%zu bytes; at most 198)", c[i].total);
            if (st != CH_EINVAL || strcmp(err.msg, msg) != 0)
                fail_msg("%zu-byte line: status %d, message '%s'", c[i].total, st, err.msg);
            assert_string_equal(cfg_str(cf, CFG_CORE_SERVER_NAME), "Chatto"); /* nothing applied */
        }
        cfg_free(cf);
    }
}

static void
test_load_string_without_err_still_fails(void **state)
{
    struct cfg *c = cfg_new();
    (void)state;
    assert_int_equal(cfg_load_string(c, "[webserver]\nprot = 1\n", "t.ini", NULL), CH_EINVAL);
    assert_int_equal(cfg_load_string(c, "junk\n", "t.ini", NULL), CH_EINVAL);
    cfg_free(c);
}

/* ---- files ---- */

struct tmpdir {
    char path[64];
};

static void
tmp_write(const struct tmpdir *d, const char *name, const void *data, size_t len, char *out, size_t outlen)
{
    FILE *f;

    snprintf(out, outlen, "%s/%s", d->path, name);
    f = fopen(out, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void
test_load_file_reports_missing_binary_huge_and_bad_files(void **state)
{
    struct tmpdir d;
    struct cfg *c = cfg_new();
    struct ch_err err = { 0 };
    char good[128], bin[128], bad[128], huge[128], want[200];
    char *big = malloc((1 << 20) + 2);
    (void)state;
    strcpy(d.path, "/tmp/chatto-test-config-XXXXXX");
    assert_non_null(mkdtemp(d.path));
    assert_non_null(big);

    assert_int_equal(cfg_load_file(c, "/nonexistent/x.ini", &err), CH_ENOTFOUND);
    assert_string_equal(err.msg, "/nonexistent/x.ini: cannot open config file: No such file or directory");

    tmp_write(&d, "good.ini", SEED_SNIPPET, strlen(SEED_SNIPPET), good, sizeof good);
    assert_int_equal(cfg_load_file(c, good, &err), CH_OK);
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_TOKEN), "your-shared-token");

    tmp_write(&d, "nul.ini", "[core]\nserver_name = a\0b\n", 25, bin, sizeof bin);
    assert_int_equal(cfg_load_file(c, bin, &err), CH_EINVAL);
    snprintf(want, sizeof want, "%s: config file contains a NUL byte (binary file?)", bin);
    assert_string_equal(err.msg, want);

    tmp_write(&d, "bad.ini", "# x\n[webserver]\nport = http\n", 28, bad, sizeof bad);
    assert_int_equal(cfg_load_file(c, bad, &err), CH_EINVAL);
    snprintf(want, sizeof want, "%s:3: webserver.port: expected a number", bad); /* the path names the file */
    assert_memory_equal(err.msg, want, strlen(want));

    memset(big, '#', (1 << 20) + 1);
    for (size_t i = 100; i < (1 << 20); i += 100)
        big[i] = '\n';
    tmp_write(&d, "huge.ini", big, (1 << 20) + 1, huge, sizeof huge);
    assert_int_equal(cfg_load_file(c, huge, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "larger than 1 MiB"));
    tmp_write(&d, "huge.ini", big, 1 << 20, huge, sizeof huge); /* exactly 1 MiB of comments is fine */
    assert_int_equal(cfg_load_file(c, huge, &err), CH_OK);

    assert_int_not_equal(cfg_load_file(c, d.path, &err), CH_OK); /* a directory */
    assert_non_null(strstr(err.msg, d.path));

    unlink(good);
    unlink(bin);
    unlink(bad);
    unlink(huge);
    rmdir(d.path);
    free(big);
    cfg_free(c);
}

/* ---- environment ---- */

static void
test_load_env_applies_chatto_variables_and_skips_others(void **state)
{
    char longname[300];
    char *env[] = { "PATH=/bin",
                    "HOME=/root",
                    "CHATTO=1",
                    "CHATTOX_LOG_LEVEL=debug",
                    "chatto_log_level=debug",
                    "NOT_CHATTO_LOG_LEVEL=debug",
                    "CHATTO_NO_EQUALS_SIGN",
                    "CHATTO_CONFIG=/etc/chatto/chatto.ini",
                    "CHATTO_TEST_SOMETHING=1",
                    "CHATTO_NATS_EMBEDDED_ENABLED=false",
                    "CHATTO_LOG_LEVEL=warn",
                    "CHATTO_NATS_CLIENT_TOKEN=a=b",
                    "CHATTO_CORE_SERVER_NAME=",
                    NULL };
    const char *ignore[] = { "CHATTO_CONFIG", "CHATTO_TEST_SOMETHING", NULL };
    struct cfg *c = cfg_new();
    struct ch_err err = { 0 };
    (void)state;
    assert_int_equal(cfg_load_env(c, env, ignore, &err), CH_OK);
    assert_false(cfg_bool(c, CFG_NATS_EMBEDDED_ENABLED));
    assert_int_equal(cfg_source_of(c, CFG_NATS_EMBEDDED_ENABLED), CFG_SRC_ENV);
    assert_string_equal(cfg_str(c, CFG_LOG_LEVEL), "warn");
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_TOKEN), "a=b");
    assert_string_equal(cfg_str(c, CFG_CORE_SERVER_NAME), "");
    assert_int_equal(cfg_source_of(c, CFG_CORE_SERVER_NAME), CFG_SRC_ENV);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_DEFAULT);
    assert_int_equal(cfg_load_env(c, NULL, NULL, &err), CH_OK);
    /* a name too long for any key is still an unknown variable, not silently skipped */
    memset(longname, 'X', sizeof longname);
    memcpy(longname, "CHATTO_", 7);
    strcpy(longname + 250, "=1");
    char *lenv[] = { longname, NULL };
    assert_int_equal(cfg_load_env(c, lenv, NULL, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "CHATTO_XXXX"));
    assert_non_null(strstr(err.msg, "unknown environment variable"));
    cfg_free(c);
}

static void
test_load_env_errors_name_the_variable(void **state)
{
    static const struct {
        const char *var;
        const char *msg;
    } c[] = {
        { "CHATTO_FOO=1", "CHATTO_FOO: unknown environment variable (no such config key; see chatto --help)" },
        { "CHATTO_WEBSERVER_PROT=1", "CHATTO_WEBSERVER_PROT: unknown environment variable" },
        { "CHATTO_CONFIG=/x", "CHATTO_CONFIG: unknown environment variable" }, /* not ignored unless listed */
        { "CHATTO_WEBSERVER_PORT=http", "CHATTO_WEBSERVER_PORT: expected a number, got 'http'" },
        { "CHATTO_NATS_EMBEDDED_ENABLED=maybe", "CHATTO_NATS_EMBEDDED_ENABLED: expected true or false" },
        { "CHATTO_AUTH_TOKEN_TTL=90", "CHATTO_AUTH_TOKEN_TTL: missing or unknown unit" },
        { "CHATTO_CORE_ASSETS_MAX_UPLOAD_SIZE=1.5MB", "CHATTO_CORE_ASSETS_MAX_UPLOAD_SIZE: size must be a whole" },
        { "CHATTO_LOG_FORMAT=xml", "CHATTO_LOG_FORMAT: must be one of text,json" },
        { "CHATTO_NATS_CLIENT_URL=http://x", "CHATTO_NATS_CLIENT_URL: URL scheme must be one of nats|tls" },
        { "CHATTO_LOG_LEVEL=de bug", "CHATTO_LOG_LEVEL: must be one of" }, /* blanks around are trimmed, not inside */
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        char *env[] = { "CHATTO_LOG_LEVEL=error", (char *)c[i].var, NULL };
        struct cfg *cf = cfg_new();
        struct ch_err err = { 0 };
        if (cfg_load_env(cf, env, NULL, &err) != CH_EINVAL)
            fail_msg("%s: accepted", c[i].var);
        if (strncmp(err.msg, c[i].msg, strlen(c[i].msg)) != 0)
            fail_msg("%s: message '%s', want it to start '%s'", c[i].var, err.msg, c[i].msg);
        cfg_free(cf);
    }
}

/* ---- precedence ---- */

static void
test_precedence_is_defaults_file_env_flag_and_source_of_reports_it(void **state)
{
    struct cfg *c = load_ok("[webserver]\nport = 5001\nbind_address = 10.0.0.1\n[log]\nformat = json\n");
    char *env[] = { "CHATTO_WEBSERVER_PORT=5002", "CHATTO_LOG_FORMAT=text", NULL };
    struct ch_err err = { 0 };
    (void)state;
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5001);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_FILE);
    assert_int_equal(cfg_load_env(c, env, NULL, NULL), CH_OK);
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5002);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_ENV);
    assert_int_equal(cfg_set(c, CFG_WEBSERVER_PORT, "5003", CFG_SRC_FLAG, "--webserver-port", NULL), CH_OK);
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5003);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_FLAG);
    assert_string_equal(cfg_str(c, CFG_LOG_FORMAT), "text");
    assert_int_equal(cfg_source_of(c, CFG_LOG_FORMAT), CFG_SRC_ENV);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_BIND_ADDRESS), CFG_SRC_FILE);
    assert_int_equal(cfg_source_of(c, CFG_LOG_LEVEL), CFG_SRC_DEFAULT);
    /* a bad flag names the flag and changes nothing */
    assert_int_equal(cfg_set(c, CFG_WEBSERVER_PORT, "x", CFG_SRC_FLAG, "--webserver-port", &err), CH_EINVAL);
    assert_string_equal(err.msg, "--webserver-port: expected a number, got 'x'");
    assert_string_equal(err.field, "webserver.port");
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5003);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_FLAG);
    cfg_free(c);
}

/* ---- validation ---- */

static void
test_validate_external_mode_names_all_missing_secrets_and_env_names(void **state)
{
    struct cfg *c = load_ok(SEED_SNIPPET);
    struct ch_err err = { 0 };
    (void)state;
    assert_int_equal(cfg_validate(c, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "nats.embedded.enabled is false"));
    assert_non_null(strstr(err.msg, "webserver.cookie_signing_secret (CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET)"));
    assert_non_null(strstr(err.msg, "core.secret_key (CHATTO_CORE_SECRET_KEY)"));
    assert_non_null(strstr(err.msg, "core.assets.signing_secret (CHATTO_CORE_ASSETS_SIGNING_SECRET)"));
    /* with one of them set, only the other two are named */
    cfg_set(c, CFG_CORE_SECRET_KEY, "core-secret-0123456789", CFG_SRC_ENV, "CHATTO_CORE_SECRET_KEY", NULL);
    assert_int_equal(cfg_validate(c, &err), CH_EINVAL);
    assert_null(strstr(err.msg, "core.secret_key"));
    assert_non_null(strstr(err.msg, "webserver.cookie_signing_secret"));
    assert_non_null(strstr(err.msg, "core.assets.signing_secret"));
    cfg_free(c);
}

static void
test_validate_cross_key_rules(void **state)
{
    static const struct {
        const char *what;
        const char *text; /* loaded over the defaults; "@" at the start also loads SECRETS */
        const char *msg;  /* NULL: valid */
    } c[] = {
        { "defaults (embedded)", "", NULL },
        { "seed snippet with secrets", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://nats:4222\n"
                                       "auth_method = token\ntoken = your-shared-token\n",
          NULL },
        { "external without url", "@[nats.embedded]\nenabled = false\n",
          "nats.client.url: required when nats.embedded.enabled is false (set it in the config file or "
          "CHATTO_NATS_CLIENT_URL)" },
        { "token without token", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://a:1\n"
                                 "auth_method = token\n",
          "nats.client.token: required when auth_method is token" },
        { "userpass without user", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://a:1\n"
                                   "auth_method = userpass\npassword = p\n",
          "nats.client.username: required when auth_method is userpass" },
        { "userpass without password", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://a:1\n"
                                       "auth_method = userpass\nusername = u\n",
          "nats.client.password: required when auth_method is userpass" },
        { "nkey without seed", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://a:1\n"
                               "auth_method = nkey\n",
          "nats.client.nkey_seed: required when auth_method is nkey" },
        { "credentials without file", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://a:1\n"
                                      "auth_method = credentials\n",
          "nats.client.credentials_file: required when auth_method is credentials" },
        { "15-byte shared secret", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://a:1\n"
                                   "[core]\nsecret_key = 0123456789abcde\n",
          "core.secret_key: too short (15 bytes); use at least 16" },
        { "16-byte shared secret", "@[nats.embedded]\nenabled = false\n[nats.client]\nurl = nats://a:1\n"
                                   "[core]\nsecret_key = 0123456789abcdef\n",
          NULL },
        { "short optional shared secret in embedded mode", "[webserver]\ncookie_encryption_secret = short\n",
          "webserver.cookie_encryption_secret: too short (5 bytes)" },
        { "short secret that need not match", "[nats.embedded]\nauth_token = t\n", NULL },
        { "livekit needs its url", "[livekit]\nenabled = true\n", "livekit.url: required when livekit.enabled" },
        { "livekit needs its key", "[livekit]\nenabled = true\nurl = wss://lk\n",
          "livekit.api_key: required when livekit.enabled is true" },
        { "livekit needs its secret", "[livekit]\nenabled = true\nurl = wss://lk\napi_key = k\n",
          "livekit.api_secret: required when livekit.enabled is true (set it in the config file or "
          "CHATTO_LIVEKIT_API_SECRET)" },
        { "livekit complete", "[livekit]\nenabled = true\nurl = wss://lk\napi_key = k\napi_secret = s\n", NULL },
        { "livekit webhook key without its secret", "[livekit]\nwebhook_api_key = wk\n",
          "livekit.webhook_api_secret: must be set too when livekit.webhook_api_key is" },
        { "livekit server_id with a dot", "[livekit]\nserver_id = a.b\n", "livekit.server_id: at most 64" },
        { "livekit reconcile too often", "[livekit]\nreconcile_interval = 10ms\n",
          "livekit.reconcile_interval: at least 1s" },
        { "metrics on", "[metrics]\nenabled = true\n", NULL },
        { "metrics path", "[metrics]\nenabled = true\npath = metrics\n", "metrics.path: must start with '/'" },
        { "push pair without its private key", "[push]\nvapid_public_key = BAAA\n",
          "push.vapid_private_key: must be set too when push.vapid_public_key is" },
        { "push subject not a contact", "[push]\nvapid_subject = ops@example.com\n",
          "push.vapid_subject: must be a mailto: or https:// contact" },
        { "s3 needs endpoint", "[core.assets]\nstorage_backend = s3\n",
          "core.assets.s3.endpoint: required when storage_backend is s3" },
        { "s3 needs its keys", "[core.assets]\nstorage_backend = s3\n[core.assets.s3]\nendpoint = e\nbucket = b\n",
          "core.assets.s3.access_key_id: required when storage_backend is s3" },
        { "s3 needs its secret", "[core.assets]\nstorage_backend = s3\n[core.assets.s3]\nendpoint = e\nbucket = b\n"
                                 "access_key_id = k\n",
          "core.assets.s3.secret_access_key: required when storage_backend is s3 (set it in the config file or "
          "CHATTO_CORE_ASSETS_S3_SECRET_ACCESS_KEY)" },
        { "s3 complete", "[core.assets]\nstorage_backend = s3\n[core.assets.s3]\nendpoint = https://e:9000/\n"
                         "bucket = b\naccess_key_id = k\nsecret_access_key = s\npath_style = auto\n",
          NULL },
        { "s3 endpoint with a path", "[core.assets]\nstorage_backend = s3\n[core.assets.s3]\nendpoint = e/x\n"
                                     "bucket = b\naccess_key_id = k\nsecret_access_key = s\n",
          "core.assets.s3.endpoint: must be host[:port]" },
        { "s3 bucket with a slash", "[core.assets]\nstorage_backend = s3\n[core.assets.s3]\nendpoint = e\n"
                                    "bucket = b/c\naccess_key_id = k\nsecret_access_key = s\n",
          "core.assets.s3.bucket: must be a bucket name" },
        { "s3 endpoint alone needs a bucket", "[core.assets.s3]\nendpoint = e\n",
          "core.assets.s3.bucket: required when core.assets.s3.endpoint is set" },
        { "webserver.url with a query", "[webserver]\nurl = https://x/?a=1\n",
          "webserver.url: must not contain a query or fragment" },
        { "webserver.url with a fragment", "[webserver]\nurl = https://x/#top\n", "webserver.url: must not contain" },
        { "relative metrics path", "[metrics]\npath = metrics\n", "metrics.path: must start with '/'" },
        { "embedded without data_dir", "[nats.embedded]\ndata_dir = \"\"\n",
          "nats.embedded.data_dir: required when nats.embedded.enabled is true" },
    };
    (void)state;
    for (size_t i = 0; i < N(c); i++) {
        struct cfg *cf = cfg_new();
        struct ch_err err = { 0 };
        const char *text = c[i].text;
        if (*text == '@') {
            assert_int_equal(cfg_load_string(cf, SECRETS, "secrets.ini", NULL), CH_OK);
            text++;
        }
        if (cfg_load_string(cf, text, "t.ini", &err) != CH_OK)
            fail_msg("%s: rejected while loading: %s", c[i].what, err.msg);
        enum ch_status st = cfg_validate(cf, &err);
        if (!c[i].msg && st != CH_OK)
            fail_msg("%s: invalid: %s", c[i].what, err.msg);
        if (c[i].msg && (st != CH_EINVAL || strncmp(err.msg, c[i].msg, strlen(c[i].msg)) != 0))
            fail_msg("%s: status %d, message '%s', want it to start '%s'", c[i].what, st, err.msg, c[i].msg);
        cfg_free(cf);
    }
}

/* ---- writers ---- */

static void
test_print_masks_set_secrets_unless_asked(void **state)
{
    struct cfg *c = load_ok("[core]\nsecret_key = \"s3cret-value-0123456789\"\n[nats.client]\n"
                            "password = hunter2hunter2\n");
    char *masked, *shown;
    (void)state;
    masked = capture_print(c, false);
    assert_null(strstr(masked, "s3cret"));
    assert_null(strstr(masked, "hunter2"));
    assert_non_null(strstr(masked, "\nsecret_key = \"********\"  # file: t.ini:2\n"));
    assert_non_null(strstr(masked, "\npassword = \"********\"  # file: t.ini:4\n"));
    assert_non_null(strstr(masked, "\ncookie_signing_secret = \"\"  # default\n")); /* unset: nothing to hide */
    assert_non_null(strstr(masked, "\nport = 4000  # default\n"));
    shown = capture_print(c, true);
    assert_non_null(strstr(shown, "\nsecret_key = \"s3cret-value-0123456789\"  # file: t.ini:2\n"));
    assert_non_null(strstr(shown, "\npassword = \"hunter2hunter2\"  # file: t.ini:4\n"));
    /* the masked form still loads (a secret reads as ********) */
    struct cfg *back = load_ok(masked);
    assert_string_equal(cfg_str(back, CFG_CORE_SECRET_KEY), "********");
    cfg_free(back);
    free(masked);
    free(shown);
    cfg_free(c);
}

static void
test_print_output_loads_back_to_the_same_values(void **state)
{
    /* every kind of value that needs care when written back: quotes, backslashes, comment characters after
     * whitespace, surrounding spaces, line breaks and tabs (only possible through the environment), UTF-8 */
    struct cfg *c = load_ok("log.level = DEBUG\n"
                            "[core]\n"
                            "secret_key = \"s3cret \\\"quoted\\\" \\\\ value\"\n"
                            "server_name = 'a#b;c # d ; e'\n"
                            "[core.assets]\n"
                            "max_upload_size = 25 MiB\n"
                            "[webserver]\n"
                            "url = https://chat.example.com:8443/app\n"
                            "trusted_proxies = 10.0.0.0/8, ::1\n"
                            "port = 0\n"
                            "[auth]\n"
                            "token_ttl = 1h30m\n"
                            "[nats.client]\n"
                            "url = nats://a:1, tls://b:2\n");
    char *env[] = { "CHATTO_NATS_EMBEDDED_DATA_DIR=  /srv/data dir ",
                    "CHATTO_NATS_CLIENT_PASSWORD=line1\nline2\ttab\rcr",
                    "CHATTO_NATS_CLIENT_USERNAME=caf\xc3\xa9 \xe2\x82\xac",
                    "CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET=ends with backslash\\",
                    NULL };
    char *out;
    struct cfg *back;
    (void)state;
    assert_int_equal(cfg_load_env(c, env, NULL, NULL), CH_OK);
    assert_int_equal(cfg_set(c, CFG_WEBSERVER_THREADS, "8", CFG_SRC_FLAG, "--webserver-threads", NULL), CH_OK);
    out = capture_print(c, true);
    back = load_ok(out);
    assert_same_config(c, back);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) /* everything printed is now "from the file" */
        assert_int_equal(cfg_source_of(back, (enum cfg_key)i), CFG_SRC_FILE);
    assert_string_equal(cfg_str(back, CFG_NATS_CLIENT_PASSWORD), "line1\nline2\ttab\rcr");
    assert_non_null(strstr(out, "# env: CHATTO_NATS_CLIENT_PASSWORD"));
    assert_non_null(strstr(out, "# flag: --webserver-threads"));
    free(out);
    cfg_free(back);
    /* and a config of nothing but defaults prints to a file that reads back as the defaults */
    cfg_free(c);
    c = cfg_new();
    out = capture_print(c, false);
    back = load_ok(out);
    assert_same_config(c, back);
    free(out);
    cfg_free(back);
    cfg_free(c);
}

static void
test_example_lists_every_key_commented_and_loads_as_is(void **state)
{
    char *ex = capture_example(NULL), *p, *line;
    struct cfg *c, *def = cfg_new();
    size_t lineno = 0;
    (void)state;
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)i);
        char needle[256];
        snprintf(needle, sizeof needle, "\n#%s = ", ki->name);
        if (!strstr(ex, needle))
            fail_msg("%s: no commented line", ki->dotted);
        snprintf(needle, sizeof needle, "\n# %s\n", ki->help);
        if (!strstr(ex, needle))
            fail_msg("%s: help missing", ki->dotted);
        snprintf(needle, sizeof needle, "env %s", ki->env);
        if (!strstr(ex, needle))
            fail_msg("%s: env name missing", ki->dotted);
    }
    /* our reader's own limit applies to what we generate */
    for (p = ex; (line = strsep(&p, "\n")) != NULL; lineno++) {
        if (strlen(line) > 198)
            fail_msg("example line %zu is %zu bytes", lineno + 1, strlen(line));
        if (p)
            p[-1] = '\n';
    }
    c = load_ok(ex);
    assert_same_config(def, c);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        assert_int_equal(cfg_source_of(c, (enum cfg_key)i), CFG_SRC_DEFAULT);
    cfg_free(c);
    /* every commented default, uncommented, is the real default */
    for (p = ex; (p = strstr(p, "\n#")) != NULL; p++) {
        char *eol = strchr(p + 1, '\n'), *eq = strstr(p + 1, " = ");
        if (eq && (!eol || eq < eol) && p[2] != ' ' && p[2] != '\n')
            p[1] = ' ';
    }
    c = load_ok(ex);
    assert_same_config(def, c);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_FILE);
    cfg_free(c);
    cfg_free(def);
    free(ex);
}

static void
test_example_writes_given_secrets_uncommented_and_they_load_back(void **state)
{
    const char *secrets[CFG_KEY_COUNT] = { 0 };
    char *ex;
    struct cfg *c;
    struct ch_err err = { 0 };
    (void)state;
    secrets[CFG_CORE_SECRET_KEY] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    secrets[CFG_WEBSERVER_COOKIE_SIGNING_SECRET] = "with \"quotes\" and \\ backslash # ; x";
    secrets[CFG_CORE_ASSETS_SIGNING_SECRET] = "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-";
    ex = capture_example(secrets);
    assert_non_null(strstr(ex, "\nsecret_key = \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\"\n"));
    assert_null(strstr(ex, "\n#secret_key = "));
    assert_non_null(strstr(ex, "\n#cookie_encryption_secret = \"\"\n")); /* no value given: stays commented */
    c = load_ok(ex);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        if (!secrets[i])
            continue;
        assert_string_equal(cfg_str(c, (enum cfg_key)i), secrets[i]);
        assert_int_equal(cfg_source_of(c, (enum cfg_key)i), CFG_SRC_FILE);
    }
    /* that is exactly what external mode needs besides the NATS URL */
    assert_int_equal(cfg_set(c, CFG_NATS_EMBEDDED_ENABLED, "false", CFG_SRC_FLAG, "--x", NULL), CH_OK);
    assert_int_equal(cfg_set(c, CFG_NATS_CLIENT_URL, "nats://a:1", CFG_SRC_FLAG, "--x", NULL), CH_OK);
    assert_int_equal(cfg_validate(c, &err), CH_OK);
    cfg_free(c);
    free(ex);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enum_values_are_kept_in_the_tables_spelling),
        cmocka_unit_test(test_table_defaults_all_parse_and_are_the_effective_values),
        cmocka_unit_test(test_table_every_key_has_help_and_unique_names),
        cmocka_unit_test(test_load_string_reads_the_seed_snippet_verbatim),
        cmocka_unit_test(test_load_string_value_syntax),
        cmocka_unit_test(test_load_string_typed_values),
        cmocka_unit_test(test_load_string_errors_name_file_line_key_and_reason),
        cmocka_unit_test(test_load_string_rejects_lines_over_198_bytes_instead_of_truncating),
        cmocka_unit_test(test_load_string_without_err_still_fails),
        cmocka_unit_test(test_load_file_reports_missing_binary_huge_and_bad_files),
        cmocka_unit_test(test_load_env_applies_chatto_variables_and_skips_others),
        cmocka_unit_test(test_load_env_errors_name_the_variable),
        cmocka_unit_test(test_precedence_is_defaults_file_env_flag_and_source_of_reports_it),
        cmocka_unit_test(test_validate_external_mode_names_all_missing_secrets_and_env_names),
        cmocka_unit_test(test_validate_cross_key_rules),
        cmocka_unit_test(test_print_masks_set_secrets_unless_asked),
        cmocka_unit_test(test_print_output_loads_back_to_the_same_values),
        cmocka_unit_test(test_example_lists_every_key_commented_and_loads_as_is),
        cmocka_unit_test(test_example_writes_given_secrets_uncommented_and_they_load_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
