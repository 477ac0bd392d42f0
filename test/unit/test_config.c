/* SPDX-License-Identifier: MIT */
/* Configuration: the INI reader (seed snippets, quoting, comments, errors with line numbers), env, precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static struct cfg *
load(const char *text, enum ch_status want, const char *msg_part)
{
    struct cfg *c = cfg_new();
    struct ch_err err = { 0 };
    enum ch_status st;

    assert_non_null(c);
    st = cfg_load_string(c, text, "t.ini", &err);
    if (st != want)
        fail_msg("status %d (want %d) for:\n%s\nmessage: %s", st, want, text, err.msg);
    if (msg_part && !strstr(err.msg, msg_part))
        fail_msg("message '%s' lacks '%s'", err.msg, msg_part);
    return c;
}

static void
test_table_defaults_parse_and_names_are_unique(void **state)
{
    struct cfg *c = cfg_new();
    (void)state;
    assert_non_null(c);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        const struct cfg_keyinfo *a = cfg_keyinfo((enum cfg_key)i);
        assert_true(strlen(a->help) > 10);
        assert_int_equal(cfg_source_of(c, (enum cfg_key)i), CFG_SRC_DEFAULT);
        assert_int_equal(cfg_key_find(a->section, a->name), (int)i);
        assert_int_equal(cfg_key_find(NULL, a->dotted), (int)i);
        for (size_t j = i + 1; j < CFG_KEY_COUNT; j++) {
            const struct cfg_keyinfo *b = cfg_keyinfo((enum cfg_key)j);
            assert_string_not_equal(a->env, b->env);
            if (a->longflag && b->longflag)
                assert_string_not_equal(a->longflag, b->longflag);
            if (a->short_flag)
                assert_int_not_equal(a->short_flag, b->short_flag);
        }
        if (a->flags & CFG_F_SECRET)
            assert_null(a->longflag);
    }
    assert_string_equal(cfg_keyinfo(CFG_NATS_EMBEDDED_AUTH_TOKEN)->env, "CHATTO_NATS_EMBEDDED_AUTH_TOKEN");
    assert_string_equal(cfg_keyinfo(CFG_WEBSERVER_PORT)->longflag, "webserver-port");
    cfg_free(c);
}

static void
test_seed_snippet_unchanged(void **state)
{
    struct cfg *c = load("[nats.embedded]\nenabled = false\n\n[nats.client]\nurl = \"nats://nats:4222\"\n"
                         "auth_method = \"token\"\ntoken = \"your-shared-token\"\n",
                         CH_OK, NULL);
    size_t n;
    (void)state;
    assert_false(cfg_bool(c, CFG_NATS_EMBEDDED_ENABLED));
    assert_string_equal(cfg_list(c, CFG_NATS_CLIENT_URL, &n)[0], "nats://nats:4222");
    assert_int_equal(n, 1);
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_AUTH_METHOD), "token");
    assert_string_equal(cfg_str(c, CFG_NATS_CLIENT_TOKEN), "your-shared-token");
    assert_int_equal(cfg_source_of(c, CFG_NATS_CLIENT_TOKEN), CFG_SRC_FILE);
    cfg_free(c);
}

static void
test_quotes_comments_indentation(void **state)
{
    struct cfg *c = load("\xEF\xBB\xBF# leading comment\r\n"
                         "log.level = debug\r\n"
                         "[ core ]\r\n"
                         "  server_name = \"Team \\\"A\\\" # not a comment\"   # a comment\r\n"
                         "[nats.embedded]\n"
                         "\tdata_dir = '/srv/x # y\\z'  ; another comment\n"
                         "[webserver]\n"
                         "trusted_proxies = 10.0.0.0/8, ::1 # two\n"
                         "url = http://chat.example.com:8080\n"
                         "[auth]\n"
                         "token_ttl: 1h30m\n",
                         CH_OK, NULL);
    size_t n;
    (void)state;
    assert_string_equal(cfg_str(c, CFG_LOG_LEVEL), "debug");
    assert_string_equal(cfg_str(c, CFG_CORE_SERVER_NAME), "Team \"A\" # not a comment");
    assert_string_equal(cfg_str(c, CFG_NATS_EMBEDDED_DATA_DIR), "/srv/x # y\\z");
    assert_string_equal(cfg_list(c, CFG_WEBSERVER_TRUSTED_PROXIES, &n)[1], "::1");
    assert_int_equal(n, 2);
    assert_string_equal(cfg_str(c, CFG_WEBSERVER_URL), "http://chat.example.com:8080");
    assert_int_equal(cfg_int(c, CFG_AUTH_TOKEN_TTL), 5400000);
    cfg_free(c);
}

static void
test_errors_name_line_key_and_reason(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        { "[webserver]\nport = 4000\n\n[nats.embeded]\nenabled = true\n", "t.ini:5: nats.embeded.enabled: unknown key" },
        { "[webserver]\nprot = 1\n", "t.ini:2: webserver.prot: unknown key" },
        { "nope = 1\n", "t.ini:1: nope: unknown key" },
        { "[webserver]\nport = 70000\n", "t.ini:2: webserver.port: must be between 0 and 65535" },
        { "[nats.embedded]\nenabled = maybe\n", "t.ini:2: nats.embedded.enabled: expected true or false" },
        { "[core.assets]\nmax_upload_size = 1.5MB\n", "t.ini:2: core.assets.max_upload_size: size must be a whole" },
        { "[auth]\ntoken_ttl = 90\n", "t.ini:2: auth.token_ttl: missing or unknown unit" },
        { "[log]\nformat = xml\n", "t.ini:2: log.format: must be one of text,json" },
        { "[nats.client]\nurl = http://x\n", "t.ini:2: nats.client.url: URL scheme must be one of nats|tls" },
        { "[webserver]\nport = 1\n\n# c\nport = 2\n", "t.ini:5: webserver.port: set twice (first on line 2)" },
        { "[core]\nserver_name = \"open\n", "t.ini:2: core.server_name: unterminated quoted value" },
        { "[core]\nserver_name = \"a\" b\n", "t.ini:2: core.server_name: unexpected text after the closing quote" },
        { "[core]\nserver_name = \"\\q\"\n", "t.ini:2: core.server_name: unknown escape" },
        { "[core]\n\njust words\n", "t.ini:3: syntax error" },
        { "[core\n", "t.ini:1: syntax error" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cfg_free(load(cases[i].text, CH_EINVAL, cases[i].msg));
}

static void
test_long_lines_are_rejected_not_truncated(void **state)
{
    char text[600];
    (void)state;
    snprintf(text, sizeof text, "[core]\n# ok\nserver_name = \"%0300d\"\n", 0);
    cfg_free(load(text, CH_EINVAL, "t.ini:3: line too long (316 bytes; at most 198)"));
    snprintf(text, sizeof text, "[core]\nserver_name = \"%0180d\"\n", 0);
    cfg_free(load(text, CH_OK, NULL));
}

static void
test_files_missing_or_binary(void **state)
{
    struct cfg *c = cfg_new();
    struct ch_err err;
    char path[] = "/tmp/chatto-test-XXXXXX";
    int fd = mkstemp(path);
    (void)state;
    assert_int_equal(cfg_load_file(c, "/nonexistent/x.ini", &err), CH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/x.ini: cannot open config file"));
    assert_true(write(fd, "[core]\0x", 8) == 8);
    close(fd);
    assert_int_equal(cfg_load_file(c, path, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "NUL byte"));
    unlink(path);
    cfg_free(c);
}

static void
test_env_overrides_and_errors(void **state)
{
    struct cfg *c = cfg_new();
    struct ch_err err;
    char *ok[] = { "PATH=/bin", "CHATTO_NATS_EMBEDDED_ENABLED=false", "CHATTO_CONFIG=/x", "CHATTO_LOG_LEVEL=warn",
                   NULL };
    char *unknown[] = { "CHATTO_WEBSERVER_PROT=1", NULL };
    char *bad[] = { "CHATTO_WEBSERVER_PORT=http", NULL };
    const char *ignore[] = { "CHATTO_CONFIG", NULL };
    (void)state;
    assert_int_equal(cfg_load_env(c, ok, ignore, &err), CH_OK);
    assert_false(cfg_bool(c, CFG_NATS_EMBEDDED_ENABLED));
    assert_int_equal(cfg_source_of(c, CFG_LOG_LEVEL), CFG_SRC_ENV);
    assert_int_equal(cfg_load_env(c, unknown, ignore, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "CHATTO_WEBSERVER_PROT: unknown environment variable"));
    assert_int_equal(cfg_load_env(c, bad, ignore, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "CHATTO_WEBSERVER_PORT: expected a number"));
    cfg_free(c);
}

static void
test_precedence_defaults_file_env_flags(void **state)
{
    struct cfg *c = load("[webserver]\nport = 5001\nbind_address = 10.0.0.1\n", CH_OK, NULL);
    char *env[] = { "CHATTO_WEBSERVER_PORT=5002", NULL };
    (void)state;
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5001);
    assert_int_equal(cfg_load_env(c, env, NULL, NULL), CH_OK);
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5002);
    assert_int_equal(cfg_set(c, CFG_WEBSERVER_PORT, "5003", CFG_SRC_FLAG, "--webserver-port", NULL), CH_OK);
    assert_int_equal(cfg_int(c, CFG_WEBSERVER_PORT), 5003);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_PORT), CFG_SRC_FLAG);
    assert_int_equal(cfg_source_of(c, CFG_WEBSERVER_BIND_ADDRESS), CFG_SRC_FILE);
    assert_int_equal(cfg_source_of(c, CFG_LOG_LEVEL), CFG_SRC_DEFAULT);
    cfg_free(c);
}

static void
test_validate_external_mode(void **state)
{
    struct cfg *c = load("[nats.embedded]\nenabled = false\n", CH_OK, NULL);
    struct ch_err err;
    (void)state;
    assert_int_equal(cfg_validate(c, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "webserver.cookie_signing_secret (CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET)"));
    assert_non_null(strstr(err.msg, "core.secret_key (CHATTO_CORE_SECRET_KEY)"));
    assert_non_null(strstr(err.msg, "core.assets.signing_secret (CHATTO_CORE_ASSETS_SIGNING_SECRET)"));
    cfg_set(c, CFG_WEBSERVER_COOKIE_SIGNING_SECRET, "0123456789abcdef", CFG_SRC_ENV, "CHATTO_X", NULL);
    cfg_set(c, CFG_CORE_SECRET_KEY, "0123456789abcdef", CFG_SRC_ENV, "CHATTO_X", NULL);
    cfg_set(c, CFG_CORE_ASSETS_SIGNING_SECRET, "short", CFG_SRC_ENV, "CHATTO_X", NULL);
    assert_int_equal(cfg_validate(c, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "nats.client.url: required"));
    cfg_set(c, CFG_NATS_CLIENT_URL, "nats://a:1, tls://b:2", CFG_SRC_ENV, "CHATTO_X", NULL);
    assert_int_equal(cfg_validate(c, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "core.assets.signing_secret: too short"));
    cfg_set(c, CFG_CORE_ASSETS_SIGNING_SECRET, "0123456789abcdef", CFG_SRC_ENV, "CHATTO_X", NULL);
    cfg_set(c, CFG_NATS_CLIENT_AUTH_METHOD, "token", CFG_SRC_ENV, "CHATTO_X", NULL);
    assert_int_equal(cfg_validate(c, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "nats.client.token: required when auth_method is token"));
    cfg_set(c, CFG_NATS_CLIENT_TOKEN, "t", CFG_SRC_ENV, "CHATTO_X", NULL);
    assert_int_equal(cfg_validate(c, &err), CH_OK);
    cfg_free(c);
}

static void
test_print_masks_and_round_trips(void **state)
{
    struct cfg *c = load("[core]\nsecret_key = \"s3cret value with \\\"quotes\\\"\"\nserver_name = 'a#b;c'\n", CH_OK,
                         NULL);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    (void)state;
    cfg_print(c, f, false);
    fclose(f);
    assert_null(strstr(buf, "s3cret"));
    assert_non_null(strstr(buf, "secret_key = \"********\""));
    free(buf);
    f = open_memstream(&buf, &len);
    cfg_print(c, f, true);
    fclose(f);
    struct cfg *back = load(buf, CH_OK, NULL);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        assert_string_equal(cfg_str(back, (enum cfg_key)i), cfg_str(c, (enum cfg_key)i));
    free(buf);
    cfg_free(back);
    cfg_free(c);
}

static void
test_example_config_loads_and_lists_every_key(void **state)
{
    const char *secrets[CFG_KEY_COUNT] = { 0 };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    (void)state;
    secrets[CFG_CORE_SECRET_KEY] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    cfg_write_example(f, secrets);
    fclose(f);
    struct cfg *c = load(buf, CH_OK, NULL);
    assert_string_equal(cfg_str(c, CFG_CORE_SECRET_KEY), secrets[CFG_CORE_SECRET_KEY]);
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        char needle[128];
        snprintf(needle, sizeof needle, "\n%s%s = ", secrets[i] ? "" : "#", cfg_keyinfo((enum cfg_key)i)->name);
        assert_non_null(strstr(buf, needle));
    }
    free(buf);
    cfg_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_defaults_parse_and_names_are_unique),
        cmocka_unit_test(test_seed_snippet_unchanged),
        cmocka_unit_test(test_quotes_comments_indentation),
        cmocka_unit_test(test_errors_name_line_key_and_reason),
        cmocka_unit_test(test_long_lines_are_rejected_not_truncated),
        cmocka_unit_test(test_files_missing_or_binary),
        cmocka_unit_test(test_env_overrides_and_errors),
        cmocka_unit_test(test_precedence_defaults_file_env_flags),
        cmocka_unit_test(test_validate_external_mode),
        cmocka_unit_test(test_print_masks_and_round_trips),
        cmocka_unit_test(test_example_config_loads_and_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
