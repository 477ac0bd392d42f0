/* SPDX-License-Identifier: MIT */
/*
 * lib/search: the query language (what parses into what, what is refused and with which words), the MATCH
 * expression (only quoted strings ever reach FTS5), and the index itself on a temporary directory: applying
 * events, ranking, filters, the position surviving a reopen, and deleted text leaving the files after a purge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "search/search.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct search_query *
parse_ok(const char *text)
{
    struct search_query *q = NULL;
    struct ch_err err = { 0 };

    if (search_query_parse(text, &q, &err) != CH_OK)
        fail_msg("%s: %s", text, err.msg);
    return q;
}

static void
test_search_query_parses_words_phrases_prefixes_and_filters(void **state)
{
    (void)state;
    struct search_query *q = parse_ok("  Deploy \"release train\" stand* AND friday in:#general in:\"Ops Team\" "
                                      "from:@Bob before:2026-03-02 after:2026-03-01 has:attachment is:thread "
                                      "https://x.org/a 10:30");
    assert_int_equal(q->nwords, 4);
    assert_string_equal(q->words[0], "Deploy");
    assert_string_equal(q->words[1], "friday");
    assert_string_equal(q->words[2], "https://x.org/a");
    assert_string_equal(q->words[3], "10:30");
    assert_int_equal(q->nphrases, 1);
    assert_string_equal(q->phrases[0], "release train");
    assert_int_equal(q->nprefixes, 1);
    assert_string_equal(q->prefixes[0], "stand");
    assert_int_equal(q->nin, 2);
    assert_string_equal(q->in_rooms[0], "general");
    assert_string_equal(q->in_rooms[1], "Ops Team");
    assert_int_equal(q->nfrom, 1);
    assert_string_equal(q->from_users[0], "Bob");
    assert_int_equal(q->before_ms, 1772409600000LL);            /* 2026-03-02T00:00Z */
    assert_int_equal(q->after_ms, 1772409600000LL - 1);         /* the end of 2026-03-01 */
    assert_true(q->has_attachment && q->is_thread && search_query_has_text(q));
    search_query_free(q);

    q = parse_ok("from:@alice");
    assert_false(search_query_has_text(q));
    search_query_free(q);
    q = parse_ok("a-b !!! (ok)"); /* punctuation alone is dropped; words keep theirs (the tokenizer splits) */
    assert_int_equal(q->nwords, 2);
    search_query_free(q);
}

static void
test_search_query_refuses_engine_syntax_by_name(void **state)
{
    (void)state;
    static const struct {
        const char *q, *msg;
    } cases[] = {
        { "", "required" },
        { "   ", "nothing to search" },
        { "!!!", "nothing to search" },
        { "\"open", "unbalanced quote" },
        { "a \"b\" \"c", "unbalanced quote" },
        { "in:\"Ops", "unbalanced quote" },
        { "\"\"", "empty phrase" },
        { "\" - \"", "empty phrase" },
        { "\"ab\"*", "after a phrase" },
        { "a OR b", "OR is not supported" },
        { "NOT a", "NOT is not supported" },
        { "NEAR(a b)", "NEAR is not supported" },
        { "NEAR/3", "NEAR is not supported" },
        { "NEAR", "NEAR is not supported" },
        { "*", "* is allowed only" },
        { "**", "* is allowed only" },
        { "*ab", "* is allowed only" },
        { "a*b", "* is allowed only" },
        { "ab**", "* is allowed only" },
        { "a*", "at least 2" },
        { "AND", "AND must stand" },
        { "AND a", "AND must stand" },
        { "a AND", "AND must stand" },
        { "a AND AND b", "AND must stand" },
        { "body:x", "unknown filter \"body:\"" },
        { "fts:x", "unknown filter \"fts:\"" },
        { "in:", "in: needs a room" },
        { "in:#", "in: needs a room" },
        { "from:@", "from: needs a user" },
        { "before:2026-1-1", "YYYY-MM-DD" },
        { "before:2026-02-30", "YYYY-MM-DD" },
        { "after:1969-12-31", "YYYY-MM-DD" },
        { "after:tomorrow", "YYYY-MM-DD" },
        { "has:link", "has:attachment" },
        { "is:open", "is:thread" },
        { "after:2026-01-02 before:2026-01-02", "earlier" },
        { "in:a in:b in:c in:d in:e in:f in:g in:h in:i", "at most 8" },
        { "tab\001x", "control characters" },
        { "\xff\xfe", "UTF-8" },
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct search_query *q = NULL;
        struct ch_err err = { 0 };
        if (search_query_parse(cases[i].q, &q, &err) != CH_EINVAL)
            fail_msg("accepted: %s", cases[i].q);
        assert_null(q);
        assert_string_equal(err.field, "query");
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("%s: %s (wanted %s)", cases[i].q, err.msg, cases[i].msg);
    }
    char long_q[SEARCH_QUERY_MAX_BYTES + 2];
    memset(long_q, 'x', sizeof long_q - 1);
    long_q[sizeof long_q - 1] = '\0';
    struct ch_err err = { 0 };
    struct search_query *q = NULL;
    assert_int_equal(search_query_parse(long_q, &q, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "too long"));
    char many[400] = "";
    for (int i = 0; i < SEARCH_MAX_TERMS + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "w%d ", i);
    assert_int_equal(search_query_parse(many, &q, &err), CH_EINVAL);
    assert_non_null(strstr(err.msg, "too many"));
}

static void
test_search_match_expr_quotes_every_token(void **state)
{
    (void)state;
    const char *words[] = { "deploy", "say \"hi\"", "NEAR(a" }, *prefixes[] = { "stand" }, *phrases[] = { "a b" };
    char *m = search_match_expr(words, 3, prefixes, 1, phrases, 1);
    assert_string_equal(m, "\"a b\" \"deploy\" \"say \"\"hi\"\"\" \"NEAR(a\" \"stand\" *");
    free(m);
    assert_null(search_match_expr(NULL, 0, NULL, 0, NULL, 0));
}

/* ---- the index on a temporary directory ---- */

static void
ev(struct search_index *ix, uint64_t seq, const char *room, const char *type, const char *msg_json)
{
    char subj[128], data[1024];
    struct ch_err err = { 0 };
    bool purge = false;
    const char *id = strstr(msg_json, "\"id\":\"") + 6;

    snprintf(subj, sizeof subj, "chatto.ev.%s.msg.%.*s", room, (int)(strchr(id, '"') - id), id);
    snprintf(data, sizeof data, "{\"type\":\"%s\",\"msg\":%s}", type, msg_json);
    if (search_index_apply(ix, seq, subj, data, strlen(data), &purge, &err) != CH_OK)
        fail_msg("%s", err.msg);
}

static cJSON *
query(struct search_index *ix, const char *json)
{
    cJSON *req = cJSON_Parse(json), *resp = NULL;
    struct ch_err err = { 0 };

    assert_non_null(req);
    if (search_index_query(ix, req, &resp, &err) != CH_OK)
        fail_msg("%s: %s", json, err.msg);
    cJSON_Delete(req);
    return resp;
}

static const char *
hit(const cJSON *resp, int i)
{
    const cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "hits"), i);
    return h ? cJSON_GetObjectItem(h, "messageId")->valuestring : NULL;
}

static bool
files_contain(const char *dir, const char *needle)
{
    const char *names[] = { "index.db", "index.db-wal", "index.db-journal" };
    bool found = false;

    for (size_t i = 0; i < N(names) && !found; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        if (n > 0 && fread(buf, 1, (size_t)n, f) == (size_t)n)
            found = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
        free(buf);
        fclose(f);
    }
    return found;
}

static void
test_search_index_applies_ranks_filters_resumes_and_forgets(void **state)
{
    (void)state;
    char dir[] = "/tmp/chatto-test-search-XXXXXX";
    struct search_index *ix = NULL, *rd = NULL;
    struct ch_err err = { 0 };
    cJSON *r;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(search_index_open(dir, true, &ix, &err), CH_OK);
    assert_int_equal(search_index_position(ix), 0);
    ev(ix, 1, "r1", "msg.posted", "{\"id\":\"m1\",\"author\":\"u1\",\"body\":\"Café deploy deploy\",\"createdAt\":1000}");
    ev(ix, 2, "r1", "msg.posted", "{\"id\":\"m2\",\"author\":\"u2\",\"body\":\"we deploy on friday, then lunch and "
                                  "more words\",\"createdAt\":2000}");
    ev(ix, 3, "r2", "msg.posted", "{\"id\":\"m3\",\"author\":\"u1\",\"body\":\"deploy \\u0002mark\\u0003\","
                                  "\"createdAt\":3000,\"threadRoot\":\"m9\",\"attachments\":[{\"id\":\"a\"}]}");
    ev(ix, 4, "r1", "msg.posted", "{\"id\":\"m4\",\"author\":\"u1\",\"body\":\"zanzibarwhisper secret\","
                                  "\"createdAt\":4000}");
    assert_int_equal(search_index_commit(ix, &err), CH_OK);
    assert_int_equal(search_index_open(dir, false, &rd, &err), CH_OK);

    r = query(rd, "{\"words\":[\"DEPLOY\"],\"roomIds\":[\"r1\",\"r2\"],\"limit\":10}");
    assert_string_equal(hit(r, 0), "m1"); /* two occurrences in three words */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "hits")), 3);
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"cafe\"],\"roomIds\":[\"r1\"]}");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "hits"), 0), "snippet")->valuestring,
                        "\x02" "Café" "\x03 deploy deploy");
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"mark\"],\"roomIds\":[\"r2\"]}"); /* the markers in a body are not markers */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "hits"), 0), "snippet")->valuestring,
                        "deploy  \x02mark\x03 ");
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"deploy\"],\"roomIds\":[\"r2\"]}"); /* rooms */
    assert_string_equal(hit(r, 0), "m3");
    assert_null(hit(r, 1));
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"deploy\"],\"roomIds\":[\"r1\",\"r2\"],\"authorIds\":[\"u2\"]}");
    assert_string_equal(hit(r, 0), "m2");
    assert_null(hit(r, 1));
    cJSON_Delete(r);
    r = query(rd, "{\"prefixes\":[\"fri\"],\"roomIds\":[\"r1\"]}");
    assert_string_equal(hit(r, 0), "m2");
    cJSON_Delete(r);
    r = query(rd, "{\"phrases\":[\"deploy on friday\"],\"roomIds\":[\"r1\"]}");
    assert_string_equal(hit(r, 0), "m2");
    cJSON_Delete(r);
    r = query(rd, "{\"phrases\":[\"friday on deploy\"],\"roomIds\":[\"r1\"]}");
    assert_null(hit(r, 0));
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"deploy\"],\"roomIds\":[\"r1\",\"r2\"],\"hasAttachments\":true,\"isThread\":true}");
    assert_string_equal(hit(r, 0), "m3");
    assert_null(hit(r, 1));
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"deploy\"],\"roomIds\":[\"r1\",\"r2\"],\"after\":1000,\"before\":3000}");
    assert_string_equal(hit(r, 0), "m2");
    assert_null(hit(r, 1));
    cJSON_Delete(r);
    r = query(rd, "{\"roomIds\":[\"r1\"],\"authorIds\":[\"u1\"],\"order\":\"newest\"}"); /* filters only */
    assert_string_equal(hit(r, 0), "m4");
    assert_string_equal(hit(r, 1), "m1");
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"deploy\"],\"roomIds\":[\"r1\",\"r2\"],\"order\":\"newest\",\"limit\":1,\"offset\":1}");
    assert_string_equal(hit(r, 0), "m2");
    assert_null(hit(r, 1));
    cJSON_Delete(r);
    /* what an FTS engine would read as syntax is text here */
    r = query(rd, "{\"words\":[\"NEAR(deploy\",\"body:x\",\"\\\"\"],\"roomIds\":[\"r1\"]}");
    assert_null(hit(r, 0));
    cJSON_Delete(r);

    /* edit, delete: the old text is not found, and after a purge it is not in the files either */
    ev(ix, 5, "r1", "msg.edited", "{\"id\":\"m1\",\"body\":\"quokkanebula now\"}");
    ev(ix, 6, "r1", "msg.deleted", "{\"id\":\"m4\"}");
    ev(ix, 6, "r1", "msg.posted", "{\"id\":\"m5\",\"body\":\"redelivered: ignored\",\"createdAt\":1}");
    assert_int_equal(search_index_commit(ix, &err), CH_OK);
    r = query(rd, "{\"words\":[\"cafe\"],\"roomIds\":[\"r1\"]}");
    assert_null(hit(r, 0));
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"quokkanebula\"],\"roomIds\":[\"r1\"]}");
    assert_string_equal(hit(r, 0), "m1");
    cJSON_Delete(r);
    r = query(rd, "{\"words\":[\"redelivered\"],\"roomIds\":[\"r1\"]}");
    assert_null(hit(r, 0));
    cJSON_Delete(r);
    search_index_close(rd);
    assert_int_equal(search_index_purge(ix, &err), CH_OK);
    assert_false(files_contain(dir, "zanzibarwhisper"));
    assert_false(files_contain(dir, "Café"));
    assert_true(files_contain(dir, "quokkanebula"));

    /* the position survives a reopen */
    search_index_close(ix);
    assert_int_equal(search_index_open(dir, true, &ix, &err), CH_OK);
    assert_int_equal(search_index_position(ix), 6);
    /* bad requests are CH_EINVAL, never an engine error */
    cJSON *req = cJSON_Parse("{\"words\":[\"x\"]}"), *resp = NULL;
    assert_int_equal(search_index_query(ix, req, &resp, &err), CH_EINVAL);
    cJSON_Delete(req);
    search_index_close(ix);

    /* a damaged index is thrown away and started afresh */
    char path[512];
    snprintf(path, sizeof path, "%s/index.db", dir);
    FILE *f = fopen(path, "wb");
    fputs("this is not a database, it is garbage of some length............................................", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/index.db-wal", dir);
    unlink(path);
    assert_int_equal(search_index_open(dir, true, &ix, &err), CH_OK);
    assert_int_equal(search_index_position(ix), 0);
    search_index_close(ix);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_query_parses_words_phrases_prefixes_and_filters),
        cmocka_unit_test(test_search_query_refuses_engine_syntax_by_name),
        cmocka_unit_test(test_search_match_expr_quotes_every_token),
        cmocka_unit_test(test_search_index_applies_ranks_filters_resumes_and_forgets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
