/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Message search: the query language (query.c, pure), the disposable full-text index (index.c, SQLite FTS5), the
 * provider that feeds it from CHATTO_EVENTS and answers queries over NATS request/reply (provider.c), and the
 * client side of that protocol (client.c). The index is never a source of truth: delete its directory and the
 * provider rebuilds it from the stream. Who may see a hit is decided by the caller (lib/chat), at query time.
 *
 * Wire protocol (JSON, lowerCamelCase), on the subjects below; providers answer queries as one queue group:
 *   query request  {words: [..], prefixes: [..], phrases: [..], roomIds: [..], authorIds: [..], after, before (unix
 *                   ms, exclusive, 0 = none), hasAttachments, isThread, order: "relevance"|"newest", limit, offset}
 *   query answer   {hits: [{messageId, roomId, bodySeq, createdAt, score, snippet}], more} or {error: "..."}
 *   status answer  {state: "starting"|"indexing"|"ready", indexed, target}
 * Snippets mark matches with \x02 ... \x03 (bodies never contain those bytes in the index).
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define SEARCH_SUBJECT_QUERY "svc.chatto_ext.search.v1.query"
#define SEARCH_SUBJECT_STATUS "svc.chatto_ext.search.v1.status"
#define SEARCH_QUEUE_GROUP "svc.chatto_ext.search.v1"

#define SEARCH_QUERY_MAX_BYTES 1024
#define SEARCH_MAX_TERMS 32         /* words and phrases together */
#define SEARCH_MAX_FILTER_VALUES 8  /* in: and from: values each */
#define SEARCH_MARK_OPEN '\x02'
#define SEARCH_MARK_CLOSE '\x03'

/* ---- the query language (query.c) ----
 * Words must all match (any order; case and diacritics folded); "quoted text" is an exact phrase; a word ending in
 * * is a prefix (deplo*); AND between words is allowed and changes nothing. Filters: in:#room (or in:"Room
 * Name"), from:@login, before:YYYY-MM-DD, after:YYYY-MM-DD (UTC days, both exclusive), has:attachment, is:thread.
 * Everything else that an FTS engine would read as syntax (OR, NOT, NEAR, column filters, a lone or inner *,
 * unbalanced quotes) is refused with CH_EINVAL naming the problem. */
struct search_query {
    char **words;      /* plain words */
    char **prefixes;   /* words given as prefix* (without the *) */
    char **phrases;    /* quoted phrases */
    char **in_rooms;   /* room names, without '#' */
    char **from_users; /* logins, without '@' */
    size_t nwords, nprefixes, nphrases, nin, nfrom;
    int64_t after_ms, before_ms; /* exclusive bounds; 0 = none */
    bool has_attachment, is_thread;
};

/* Parse text (at most SEARCH_QUERY_MAX_BYTES of UTF-8). *out is the caller's, freed with search_query_free(). */
enum ch_status search_query_parse(const char *text, struct search_query **out, struct ch_err *err);
void search_query_free(struct search_query *q);
/* True if the query has words, prefixes or phrases (else it is filters only). */
bool search_query_has_text(const struct search_query *q);

/* The FTS5 MATCH expression for these terms, built only from double-quoted strings (quotes inside doubled), so no
 * user text is ever read as FTS syntax; NULL when there are no terms (or out of memory). Caller frees. */
char *search_match_expr(const char *const *words, size_t nwords, const char *const *prefixes, size_t nprefixes,
                        const char *const *phrases, size_t nphrases);

/* ---- the index (index.c): one SQLite database in a directory of its own ---- */
struct search_index;

/* Open (creating it if needed) the index in dir; a damaged or older-schema index is thrown away and started afresh.
 * writer: the one connection that applies events (a provider has one writer and one reader). */
enum ch_status search_index_open(const char *dir, bool writer, struct search_index **out, struct ch_err *err);
void search_index_close(struct search_index *ix);
/* The last stream sequence applied (kept in the index, in the same transaction as the changes). */
uint64_t search_index_position(struct search_index *ix);
/* Apply one CHATTO_EVENTS message (writer). Opens a transaction if none is open; *purge is set when text was
 * removed (edit, delete), so a purge should follow. */
enum ch_status search_index_apply(struct search_index *ix, uint64_t seq, const char *subject, const char *data,
                                  size_t len, bool *purge, struct ch_err *err);
/* Commit the open transaction, if any (writer). */
enum ch_status search_index_commit(struct search_index *ix, struct ch_err *err);
bool search_index_in_txn(struct search_index *ix);
/* Make removed text unrecoverable from the files: merge every FTS segment into one (dropping deleted entries),
 * with secure_delete zeroing the freed pages, and truncate the WAL (writer; no open transaction). */
enum ch_status search_index_purge(struct search_index *ix, struct ch_err *err);
/* Answer a query request (protocol above): *resp is {hits, more}. */
enum ch_status search_index_query(struct search_index *ix, const cJSON *req, cJSON **resp, struct ch_err *err);
/* Bytes used by the index files (for status and benchmarks). */
uint64_t search_index_size(const char *dir);

/* ---- the provider (provider.c) ---- */
struct store;
struct search_provider;
struct search_provider_opts {
    struct store *store;
    const char *directory;  /* the index directory (created if missing) */
    int64_t purge_delay_ms; /* removed text is purged from the files at most this long after its removal */
};
/* Open the index, follow CHATTO_EVENTS from its position and, once caught up, answer queries. CH_EEXIST when
 * another process holds the directory. Threads: "search-indexer" (commits, purges, subscribes), the store's
 * follower thread (applies events) and nats.c's subscription threads (answers). */
enum ch_status search_provider_start(const struct search_provider_opts *o, struct search_provider **out,
                                     struct ch_err *err);
void search_provider_stop(struct search_provider *p);
/* True once the index caught up with the stream as it was when the provider subscribed. */
bool search_provider_ready(struct search_provider *p, uint64_t *indexed, uint64_t *target);

/* ---- the client side (client.c): ask whichever provider answers first ---- */
/* *resp is the provider's answer. CH_EUNAVAIL when no provider is ready (or none answered in time). */
enum ch_status search_client_query(struct store *st, const cJSON *req, int64_t timeout_ms, cJSON **resp,
                                   struct ch_err *err);
/* "ready" (a provider answers queries), "indexing" (providers exist, none caught up yet) or "unavailable". */
const char *search_client_status(struct store *st, int64_t timeout_ms);
