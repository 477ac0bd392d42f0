/* SPDX-License-Identifier: MIT */
/*
 * The full-text index: one SQLite database (WAL) in its own directory, with an FTS5 table (unicode61 tokenizer,
 * diacritics removed, prefix indexes for 2 and 3 characters) holding message bodies and a plain table holding what
 * the filters need. It is disposable: opened afresh when damaged or of another schema version, rebuilt from the
 * stream. The position (the last stream sequence applied) is written in the same transaction as the changes, so a
 * restart resumes where the index stopped. secure_delete zeroes what SQLite frees; search_index_purge() merges the
 * FTS segments so that no old segment keeps the tokens of edited or deleted text.
 *
 * Ranking: bm25, then the newer message. A very common word matches most of the index and bm25 would be computed
 * for every match, so relevance ranks the newest RANK_WINDOW matches the caller may read (a bounded cost: the
 * match list is walked newest first and stops there; pages of relevance results end at RANK_WINDOW).
 *
 * A struct search_index is one connection: used by one thread at a time (the provider serialises).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json/json.h"
#include "search/search.h"
#include "store/subject.h"

#define SCHEMA_VERSION 1
#define RANK_WINDOW 1000
#define SNIPPET_TOKENS 24
#define PLAIN_SNIPPET_CHARS 200

struct search_index {
    sqlite3 *db;
    bool writer, in_txn;
    uint64_t position;
    sqlite3_stmt *ins_msg, *ins_fts, *get_row, *upd_msg, *upd_fts, *del_msg, *del_fts, *set_pos, *thread_root;
};

static const char *const schema[] = {
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER)",
    "CREATE TABLE IF NOT EXISTS msgs(rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, room TEXT NOT NULL, "
    "author TEXT NOT NULL, ts INTEGER NOT NULL, bseq INTEGER NOT NULL, att INTEGER NOT NULL, thread INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS msgs_room_ts ON msgs(room, ts)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2', "
    "prefix = '2 3')",
    NULL,
};

static enum ch_status
db_err(struct search_index *ix, const char *what, struct ch_err *err)
{
    return ch_err_set(err, CH_EINTERNAL, NULL, "search index: %s: %s", what, ix && ix->db ? sqlite3_errmsg(ix->db) : "?");
}

static int
exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void
remove_files(const char *dir)
{
    static const char *const names[] = { "index.db", "index.db-wal", "index.db-shm", "index.db-journal", NULL };
    char path[PATH_MAX];

    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
}

static void
finalize_all(struct search_index *ix)
{
    sqlite3_stmt **s[] = { &ix->ins_msg, &ix->ins_fts, &ix->get_row, &ix->upd_msg, &ix->upd_fts,
                           &ix->del_msg, &ix->del_fts, &ix->set_pos, &ix->thread_root };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        sqlite3_finalize(*s[i]);
        *s[i] = NULL;
    }
}

void
search_index_close(struct search_index *ix)
{
    if (!ix)
        return;
    if (ix->in_txn)
        exec(ix->db, "ROLLBACK");
    finalize_all(ix);
    sqlite3_close(ix->db);
    free(ix);
}

/* open and check; false if the database must be thrown away */
static bool
try_open(struct search_index *ix, const char *path)
{
    sqlite3_stmt *st = NULL;
    int64_t version = -1;

    if (sqlite3_open_v2(path, &ix->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        return false;
    sqlite3_busy_timeout(ix->db, 5000);
    if (exec(ix->db, "PRAGMA secure_delete = ON") || exec(ix->db, "PRAGMA journal_mode = WAL") ||
        exec(ix->db, "PRAGMA synchronous = NORMAL") || exec(ix->db, "PRAGMA foreign_keys = OFF"))
        return false;
    if (!ix->writer)
        return true;
    for (int i = 0; schema[i]; i++)
        if (exec(ix->db, schema[i]) != SQLITE_OK)
            return false;
    if (sqlite3_prepare_v2(ix->db, "SELECT k, v FROM meta", -1, &st, NULL) != SQLITE_OK)
        return false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (k && !strcmp(k, "schema"))
            version = sqlite3_column_int64(st, 1);
        else if (k && !strcmp(k, "position"))
            ix->position = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (version == -1) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta VALUES('schema', %d)", SCHEMA_VERSION);
        return exec(ix->db, sql) == SQLITE_OK && ix->position == 0;
    }
    if (version != SCHEMA_VERSION)
        return false;
    /* a quick structural check of the FTS table: a damaged index is rebuilt rather than trusted */
    return exec(ix->db, "SELECT count(*) FROM fts WHERE fts MATCH '\"integrity\"'") == SQLITE_OK;
}

static bool
prepare(struct search_index *ix)
{
    struct {
        sqlite3_stmt **s;
        const char *sql;
    } p[] = {
        { &ix->ins_msg, "INSERT OR IGNORE INTO msgs(id, room, author, ts, bseq, att, thread) VALUES(?,?,?,?,?,?,?)" },
        { &ix->ins_fts, "INSERT INTO fts(rowid, body) VALUES(?, ?)" },
        { &ix->get_row, "SELECT rowid FROM msgs WHERE id = ?" },
        { &ix->upd_msg, "UPDATE msgs SET bseq = ? WHERE rowid = ?" },
        { &ix->upd_fts, "UPDATE fts SET body = ? WHERE rowid = ?" },
        { &ix->del_msg, "DELETE FROM msgs WHERE rowid = ?" },
        { &ix->del_fts, "DELETE FROM fts WHERE rowid = ?" },
        { &ix->set_pos, "INSERT OR REPLACE INTO meta VALUES('position', ?)" },
        { &ix->thread_root, "UPDATE msgs SET thread = 1 WHERE id = ? AND thread = 0" },
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (sqlite3_prepare_v3(ix->db, p[i].sql, -1, SQLITE_PREPARE_PERSISTENT, p[i].s, NULL) != SQLITE_OK)
            return false;
    return true;
}

enum ch_status
search_index_open(const char *dir, bool writer, struct search_index **out, struct ch_err *err)
{
    struct search_index *ix = NULL;
    char path[PATH_MAX];

    if (snprintf(path, sizeof path, "%s/index.db", dir) >= (int)sizeof path)
        return ch_err_set(err, CH_EINVAL, "search_provider.directory", "path too long");
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!(ix = calloc(1, sizeof *ix)))
            return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        ix->writer = writer;
        if (try_open(ix, path) && (!writer || prepare(ix))) {
            *out = ix;
            return CH_OK;
        }
        search_index_close(ix);
        ix = NULL;
        if (!writer)
            break;
        remove_files(dir); /* disposable: start afresh */
    }
    return ch_err_set(err, CH_EINTERNAL, "search_provider.directory", "cannot open a search index in %s", dir);
}

uint64_t
search_index_position(struct search_index *ix)
{
    return ix->position;
}

bool
search_index_in_txn(struct search_index *ix)
{
    return ix->in_txn;
}

static int64_t
row_of(struct search_index *ix, const char *id)
{
    int64_t row = 0;

    sqlite3_bind_text(ix->get_row, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(ix->get_row) == SQLITE_ROW)
        row = sqlite3_column_int64(ix->get_row, 0);
    sqlite3_reset(ix->get_row);
    sqlite3_clear_bindings(ix->get_row);
    return row;
}

static int
step_reset(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* the body as stored: the snippet markers can never come from a message */
static char *
clean_body(const char *b)
{
    char *c = strdup(b ? b : "");

    for (char *p = c; p && *p; p++)
        if (*p == SEARCH_MARK_OPEN || *p == SEARCH_MARK_CLOSE)
            *p = ' ';
    return c;
}

static const char *
jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t
jint(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static int
apply_msg(struct search_index *ix, uint64_t seq, const char *room, const cJSON *ev, const char *type, bool *purge)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "msg");
    const char *id = jstr(m, "id");
    int rc = SQLITE_OK;
    int64_t row;

    if (!id)
        return SQLITE_OK;
    if (!strcmp(type, "msg.posted")) {
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(m, "attachments");
        const char *root = jstr(m, "threadRoot"), *author = jstr(m, "author");
        char *body = clean_body(jstr(m, "body"));
        if (!body)
            return SQLITE_NOMEM;
        sqlite3_bind_text(ix->ins_msg, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ix->ins_msg, 2, room, -1, SQLITE_STATIC);
        sqlite3_bind_text(ix->ins_msg, 3, author ? author : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(ix->ins_msg, 4, jint(m, "createdAt"));
        sqlite3_bind_int64(ix->ins_msg, 5, (int64_t)seq);
        sqlite3_bind_int(ix->ins_msg, 6, cJSON_IsArray(att) && cJSON_GetArraySize(att) > 0);
        sqlite3_bind_int(ix->ins_msg, 7, root && *root);
        if ((rc = step_reset(ix->ins_msg)) == SQLITE_OK && sqlite3_changes(ix->db) == 1) {
            sqlite3_bind_int64(ix->ins_fts, 1, sqlite3_last_insert_rowid(ix->db));
            sqlite3_bind_text(ix->ins_fts, 2, body, -1, SQLITE_STATIC);
            rc = step_reset(ix->ins_fts);
            if (rc == SQLITE_OK && root && *root) {
                sqlite3_bind_text(ix->thread_root, 1, root, -1, SQLITE_STATIC);
                rc = step_reset(ix->thread_root);
            }
        }
        free(body);
    } else if (!(row = row_of(ix, id))) {
        return SQLITE_OK; /* never indexed (or gone already) */
    } else if (!strcmp(type, "msg.edited")) {
        char *body = clean_body(jstr(m, "body"));
        if (!body)
            return SQLITE_NOMEM;
        sqlite3_bind_int64(ix->upd_msg, 1, (int64_t)seq);
        sqlite3_bind_int64(ix->upd_msg, 2, row);
        sqlite3_bind_text(ix->upd_fts, 1, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ix->upd_fts, 2, row);
        if ((rc = step_reset(ix->upd_msg)) == SQLITE_OK)
            rc = step_reset(ix->upd_fts);
        free(body);
        *purge = true;
    } else if (!strcmp(type, "msg.deleted")) {
        sqlite3_bind_int64(ix->del_fts, 1, row);
        sqlite3_bind_int64(ix->del_msg, 1, row);
        if ((rc = step_reset(ix->del_fts)) == SQLITE_OK)
            rc = step_reset(ix->del_msg);
        *purge = true;
    }
    return rc;
}

enum ch_status
search_index_apply(struct search_index *ix, uint64_t seq, const char *subject, const char *data, size_t len,
                   bool *purge, struct ch_err *err)
{
    struct store_event_subject subj;
    cJSON *ev = NULL;
    const char *type;
    int rc = SQLITE_OK;

    if (seq <= ix->position)
        return CH_OK; /* applied already (a redelivery) */
    if (!ix->in_txn) {
        if (exec(ix->db, "BEGIN IMMEDIATE") != SQLITE_OK)
            return db_err(ix, "begin", err);
        ix->in_txn = true;
    }
    if (store_subject_event_parse(subject, &subj) && subj.kind == STORE_EV_MESSAGE &&
        (ev = cJSON_ParseWithLength(data, len)) && (type = jstr(ev, "type")) && !strncmp(type, "msg.", 4))
        rc = apply_msg(ix, seq, subj.room, ev, type, purge);
    cJSON_Delete(ev);
    if (rc != SQLITE_OK)
        return db_err(ix, "apply", err);
    sqlite3_bind_int64(ix->set_pos, 1, (int64_t)seq);
    if (step_reset(ix->set_pos) != SQLITE_OK)
        return db_err(ix, "position", err);
    ix->position = seq;
    return CH_OK;
}

enum ch_status
search_index_commit(struct search_index *ix, struct ch_err *err)
{
    if (!ix->in_txn)
        return CH_OK;
    if (exec(ix->db, "COMMIT") != SQLITE_OK)
        return db_err(ix, "commit", err);
    ix->in_txn = false;
    return CH_OK;
}

enum ch_status
search_index_purge(struct search_index *ix, struct ch_err *err)
{
    if (ix->in_txn && search_index_commit(ix, err) != CH_OK)
        return CH_EINTERNAL;
    if (exec(ix->db, "INSERT INTO fts(fts) VALUES('optimize')") != SQLITE_OK)
        return db_err(ix, "optimize", err);
    if (exec(ix->db, "PRAGMA wal_checkpoint(TRUNCATE)") != SQLITE_OK)
        return db_err(ix, "checkpoint", err);
    return CH_OK;
}

uint64_t
search_index_size(const char *dir)
{
    char path[PATH_MAX];
    struct stat sb;
    uint64_t total = 0;
    static const char *const names[] = { "index.db", "index.db-wal", "index.db-shm", NULL };

    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) == 0)
            total += (uint64_t)sb.st_size;
    }
    return total;
}

/* ---- queries ---- */

struct sqlbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void
add(struct sqlbuf *b, const char *s)
{
    size_t n = strlen(s);

    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->len + n + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

/* strings of a JSON array (borrowed), at most max */
static enum ch_status
str_list(const cJSON *req, const char *name, size_t max, const char ***out, size_t *n, struct ch_err *err)
{
    return json_get_str_array(req, name, false, max, 1, 1024, out, n, err);
}

/* " AND m.<col> IN (?,?,...)" */
static void
in_list(struct sqlbuf *b, const char *col, size_t n)
{
    add(b, " AND m.");
    add(b, col);
    add(b, " IN (");
    for (size_t i = 0; i < n; i++)
        add(b, i ? ",?" : "?");
    add(b, ")");
}

struct qargs {
    const char *match;
    const char **rooms, **authors;
    size_t nrooms, nauthors;
    int64_t after, before;
    bool att, thread;
};

/* the filters, after "WHERE ..." */
static void
filters(struct sqlbuf *b, const struct qargs *a)
{
    in_list(b, "room", a->nrooms);
    if (a->nauthors)
        in_list(b, "author", a->nauthors);
    if (a->after)
        add(b, " AND m.ts > ?");
    if (a->before)
        add(b, " AND m.ts < ?");
    if (a->att)
        add(b, " AND m.att = 1");
    if (a->thread)
        add(b, " AND m.thread = 1");
}

static int
bind_filters(sqlite3_stmt *s, int i, const struct qargs *a)
{
    for (size_t k = 0; k < a->nrooms; k++)
        sqlite3_bind_text(s, i++, a->rooms[k], -1, SQLITE_STATIC);
    for (size_t k = 0; k < a->nauthors; k++)
        sqlite3_bind_text(s, i++, a->authors[k], -1, SQLITE_STATIC);
    if (a->after)
        sqlite3_bind_int64(s, i++, a->after);
    if (a->before)
        sqlite3_bind_int64(s, i++, a->before);
    return i;
}

/* One ranked page: the newest RANK_WINDOW matches the caller may read are read once, newest first (FTS5 walks the
 * match list backwards and stops), each with its bm25; they are sorted here (bm25, then newer first) and only the
 * page's rows get a snippet (a rowid lookup each). */
struct ranked_row {
    int64_t rowid, ts, bseq;
    double score;
    char id[72], room[72];
};

static int
cmp_ranked(const void *x, const void *y)
{
    const struct ranked_row *a = x, *b = y;

    if (a->score != b->score)
        return a->score < b->score ? -1 : 1; /* bm25: lower is better */
    if (a->ts != b->ts)
        return a->ts > b->ts ? -1 : 1;
    return a->rowid > b->rowid ? -1 : a->rowid < b->rowid;
}

static enum ch_status
ranked(struct search_index *ix, const struct qargs *a, int64_t limit, int64_t offset, cJSON **resp,
       struct ch_err *err)
{
    struct sqlbuf b = { 0 };
    sqlite3_stmt *s = NULL, *sn = NULL;
    struct ranked_row *rows = NULL;
    size_t n = 0;
    enum ch_status st = CH_OK;
    cJSON *out = NULL, *hits;
    char snip[200];
    int rc = SQLITE_DONE;

    if (!(rows = malloc(RANK_WINDOW * sizeof *rows)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    add(&b, "SELECT f.rowid, m.ts, m.bseq, bm25(fts), m.id, m.room FROM fts f JOIN msgs m ON m.rowid = f.rowid "
            "WHERE fts MATCH ?");
    filters(&b, a);
    add(&b, " ORDER BY f.rowid DESC LIMIT ?");
    if (b.oom || sqlite3_prepare_v2(ix->db, b.s, -1, &s, NULL) != SQLITE_OK) {
        st = db_err(ix, "prepare", err);
        goto out;
    }
    sqlite3_bind_text(s, 1, a->match, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, bind_filters(s, 2, a), RANK_WINDOW);
    while (n < RANK_WINDOW && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct ranked_row *r = &rows[n++];
        r->rowid = sqlite3_column_int64(s, 0);
        r->ts = sqlite3_column_int64(s, 1);
        r->bseq = sqlite3_column_int64(s, 2);
        r->score = sqlite3_column_double(s, 3);
        snprintf(r->id, sizeof r->id, "%s", (const char *)sqlite3_column_text(s, 4));
        snprintf(r->room, sizeof r->room, "%s", (const char *)sqlite3_column_text(s, 5));
    }
    if (n < RANK_WINDOW && rc != SQLITE_DONE) {
        st = db_err(ix, "query", err);
        goto out;
    }
    qsort(rows, n, sizeof *rows, cmp_ranked);
    snprintf(snip, sizeof snip, "SELECT snippet(fts, 0, char(%d), char(%d), '…', %d) FROM fts WHERE fts MATCH ? "
                                "AND rowid = ?", SEARCH_MARK_OPEN, SEARCH_MARK_CLOSE, SNIPPET_TOKENS);
    if (sqlite3_prepare_v2(ix->db, snip, -1, &sn, NULL) != SQLITE_OK) {
        st = db_err(ix, "prepare", err);
        goto out;
    }
    out = cJSON_CreateObject();
    hits = cJSON_AddArrayToObject(out, "hits");
    for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++) {
        cJSON *h = cJSON_CreateObject();
        char seq[24];
        cJSON_AddStringToObject(h, "messageId", rows[i].id);
        cJSON_AddStringToObject(h, "roomId", rows[i].room);
        snprintf(seq, sizeof seq, "%" PRId64, rows[i].bseq);
        cJSON_AddStringToObject(h, "bodySeq", seq);
        cJSON_AddNumberToObject(h, "createdAt", (double)rows[i].ts);
        cJSON_AddNumberToObject(h, "score", -rows[i].score);
        sqlite3_bind_text(sn, 1, a->match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(sn, 2, rows[i].rowid);
        const char *t = sqlite3_step(sn) == SQLITE_ROW ? (const char *)sqlite3_column_text(sn, 0) : NULL;
        cJSON_AddStringToObject(h, "snippet", t ? t : "");
        sqlite3_reset(sn);
        cJSON_AddItemToArray(hits, h);
    }
    *resp = out;
    out = NULL;
out:
    sqlite3_finalize(s);
    sqlite3_finalize(sn);
    cJSON_Delete(out);
    free(b.s);
    free(rows);
    return st;
}

enum ch_status
search_index_query(struct search_index *ix, const cJSON *req, cJSON **resp, struct ch_err *err)
{
    const char **words = NULL, **prefixes = NULL, **phrases = NULL;
    size_t nw = 0, np = 0, nph = 0;
    struct qargs a = { 0 };
    struct sqlbuf b = { 0 };
    sqlite3_stmt *s = NULL;
    int64_t limit = 20, offset = 0;
    bool newest = false;
    const char *order = jstr(req, "order");
    enum ch_status st;
    char *match = NULL;
    cJSON *out = NULL, *hits;
    int rc, n = 0;

    if ((st = str_list(req, "words", SEARCH_MAX_TERMS, &words, &nw, err)) != CH_OK ||
        (st = str_list(req, "prefixes", SEARCH_MAX_TERMS, &prefixes, &np, err)) != CH_OK ||
        (st = str_list(req, "phrases", SEARCH_MAX_TERMS, &phrases, &nph, err)) != CH_OK ||
        (st = str_list(req, "roomIds", 20000, &a.rooms, &a.nrooms, err)) != CH_OK ||
        (st = str_list(req, "authorIds", 1000, &a.authors, &a.nauthors, err)) != CH_OK ||
        (st = json_get_int(req, "after", false, 0, INT64_MAX, &a.after, err)) != CH_OK ||
        (st = json_get_int(req, "before", false, 0, INT64_MAX, &a.before, err)) != CH_OK ||
        (st = json_get_bool(req, "hasAttachments", false, &a.att, err)) != CH_OK ||
        (st = json_get_bool(req, "isThread", false, &a.thread, err)) != CH_OK ||
        (st = json_get_int(req, "limit", false, 1, 101, &limit, err)) != CH_OK ||
        (st = json_get_int(req, "offset", false, 0, 100000, &offset, err)) != CH_OK)
        goto out;
    newest = order && !strcmp(order, "newest");
    if (!a.nrooms) {
        st = ch_err_set(err, CH_EINVAL, "roomIds", "required");
        goto out;
    }
    match = search_match_expr(words, nw, prefixes, np, phrases, nph);
    a.match = match;

    if (match && !newest) {
        st = ranked(ix, &a, limit, offset, resp, err);
        goto out;
    }
    if (match) {
        char snip[160];
        snprintf(snip, sizeof snip, "snippet(fts, 0, char(%d), char(%d), '…', %d)", SEARCH_MARK_OPEN,
                 SEARCH_MARK_CLOSE, SNIPPET_TOKENS);
        add(&b, "SELECT m.id, m.room, m.bseq, m.ts, ");
        add(&b, "0.0, ");
        add(&b, snip);
        add(&b, " FROM fts f JOIN msgs m ON m.rowid = f.rowid WHERE fts MATCH ?");
        filters(&b, &a);
        add(&b, " ORDER BY f.rowid DESC");
    } else {
        add(&b, "SELECT m.id, m.room, m.bseq, m.ts, 0.0, substr(f.body, 1, ");
        char num[24];
        snprintf(num, sizeof num, "%d", PLAIN_SNIPPET_CHARS);
        add(&b, num);
        add(&b, ") FROM msgs m JOIN fts f ON f.rowid = m.rowid WHERE 1");
        filters(&b, &a);
        add(&b, " ORDER BY m.rowid DESC");
    }
    add(&b, " LIMIT ? OFFSET ?");
    if (b.oom || sqlite3_prepare_v2(ix->db, b.s, -1, &s, NULL) != SQLITE_OK) {
        st = db_err(ix, "prepare", err);
        goto out;
    }
    int i = 1;
    if (match)
        sqlite3_bind_text(s, i++, match, -1, SQLITE_STATIC);
    i = bind_filters(s, i, &a);
    sqlite3_bind_int64(s, i++, limit);
    sqlite3_bind_int64(s, i, offset);
    out = cJSON_CreateObject();
    hits = cJSON_AddArrayToObject(out, "hits");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cJSON *h = cJSON_CreateObject();
        char seq[24];
        cJSON_AddStringToObject(h, "messageId", (const char *)sqlite3_column_text(s, 0));
        cJSON_AddStringToObject(h, "roomId", (const char *)sqlite3_column_text(s, 1));
        snprintf(seq, sizeof seq, "%" PRId64, (int64_t)sqlite3_column_int64(s, 2));
        cJSON_AddStringToObject(h, "bodySeq", seq);
        cJSON_AddNumberToObject(h, "createdAt", (double)sqlite3_column_int64(s, 3));
        cJSON_AddNumberToObject(h, "score", -sqlite3_column_double(s, 4));
        const char *sn = (const char *)sqlite3_column_text(s, 5);
        cJSON_AddStringToObject(h, "snippet", sn ? sn : "");
        cJSON_AddItemToArray(hits, h);
        n++;
    }
    if (rc != SQLITE_DONE) {
        st = db_err(ix, "query", err);
        goto out;
    }
    (void)n;
    *resp = out;
    out = NULL;
out:
    sqlite3_finalize(s);
    cJSON_Delete(out);
    free(b.s);
    free(match);
    free(words);
    free(prefixes);
    free(phrases);
    free(a.rooms);
    free(a.authors);
    return st;
}
