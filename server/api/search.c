/* SPDX-License-Identifier: MIT */
/*
 * chatto.api.v1.MessageSearchService (upstream's shapes): SearchMessages and GetStatus. The query text is parsed
 * here (lib/search), the rooms and authors it may cover come from the read model (lib/chat), whichever search
 * provider answers first matches it (NATS request/reply, lib/search), and every hit is re-checked against the read
 * model before it is shown. HTTP worker threads; no lock held across the NATS request.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "chat/chat.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "search/search.h"

#define ME (&c->who->user)
#define PAGE_DEFAULT 50
#define PAGE_MAX 100
#define OFFSET_MAX 5000

static enum ch_status
disabled(struct ch_err *err)
{
    return ch_err_set(err, CH_ECONFLICT, NULL, "message search is disabled on this server (search.enabled)");
}

/* The cursor is "<offset>.<16 hex>", the hex binding it to the caller and every other field of the request. */
static void
cursor_tag(const char *uid, const cJSON *in, char tag[17])
{
    static const char *const fields[] = { "query", "roomId", "authorId", "createdAfter", "createdBefore",
                                          "hasAttachments", "order", "pageSize", NULL };
    struct crypto_sha256 h;
    unsigned char d[32];

    crypto_sha256_init(&h);
    crypto_sha256_update(&h, uid, strlen(uid) + 1);
    for (int i = 0; fields[i]; i++) {
        char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(in, fields[i]));
        if (s) {
            crypto_sha256_update(&h, s, strlen(s));
            free(s);
        }
        crypto_sha256_update(&h, "|", 1);
    }
    crypto_sha256_final(&h, d);
    for (int i = 0; i < 8; i++)
        snprintf(tag + 2 * i, 3, "%02x", d[i]);
}

static enum ch_status
parse_cursor(const char *uid, const cJSON *in, const char *cur, int64_t *offset, struct ch_err *err)
{
    char tag[17], *end = NULL;
    unsigned long long v;

    *offset = 0;
    if (!cur || !*cur)
        return CH_OK;
    v = strtoull(cur, &end, 10);
    cursor_tag(uid, in, tag);
    if (end == cur || *end != '.' || strcmp(end + 1, tag) || v > OFFSET_MAX)
        return ch_err_set(err, CH_EINVAL, "cursor", "not a cursor this server issued for this query");
    *offset = (int64_t)v;
    return CH_OK;
}

static void
add_strs(cJSON *o, const char *name, char *const *v, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(o, name);

    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
}

static enum ch_status
search_messages(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *text = NULL, *room = NULL, *author = NULL, *order = NULL, *cur = NULL;
    int64_t after = 0, before = 0, page = 0, offset = 0;
    bool has_att = false;
    struct search_query *q = NULL;
    struct chat_search_scope scope = { 0 };
    cJSON *req = NULL, *resp = NULL, *o = NULL;
    enum ch_status st;

    if (!cfg_bool(c->env->cfg, CFG_SEARCH_ENABLED))
        return disabled(err);
    if ((st = json_get_str(in, "query", true, 1, SEARCH_QUERY_MAX_BYTES, &text, err)) != CH_OK ||
        (st = json_get_str(in, "roomId", false, 1, 128, &room, err)) != CH_OK ||
        (st = json_get_str(in, "authorId", false, 1, 128, &author, err)) != CH_OK ||
        (st = json_get_time(in, "createdAfter", false, &after, err)) != CH_OK ||
        (st = json_get_time(in, "createdBefore", false, &before, err)) != CH_OK ||
        (st = json_get_bool(in, "hasAttachments", false, &has_att, err)) != CH_OK ||
        (st = json_get_str(in, "order", false, 0, 64, &order, err)) != CH_OK ||
        (st = json_get_int(in, "pageSize", false, 0, PAGE_MAX, &page, err)) != CH_OK ||
        (st = json_get_str(in, "cursor", false, 0, 8192, &cur, err)) != CH_OK ||
        (st = parse_cursor(ME->id, in, cur, &offset, err)) != CH_OK)
        return st;
    bool newest = order && !strcmp(order, "MESSAGE_SEARCH_ORDER_NEWEST");
    if (order && *order && !newest && strcmp(order, "MESSAGE_SEARCH_ORDER_RELEVANCE") &&
        strcmp(order, "MESSAGE_SEARCH_ORDER_UNSPECIFIED"))
        return ch_err_set(err, CH_EINVAL, "order", "must be MESSAGE_SEARCH_ORDER_RELEVANCE or _NEWEST");
    if (!page)
        page = PAGE_DEFAULT;
    if ((st = search_query_parse(text, &q, err)) != CH_OK)
        return st;
    /* the stricter bound wins */
    struct chat_search_filter f = { .after_ms = q->after_ms, .before_ms = q->before_ms,
                                    .has_attachment = q->has_attachment || has_att, .is_thread = q->is_thread };
    if (after > f.after_ms)
        f.after_ms = after;
    if (before && (!f.before_ms || before < f.before_ms))
        f.before_ms = before;
    if ((st = chat_search_scope(c->env->chat, ME, (const char *const *)q->in_rooms, q->nin, room,
                                (const char *const *)q->from_users, q->nfrom, author, &scope, err)) != CH_OK)
        goto out;
    o = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(o, "results");
    cJSON *users = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "includes"), "users");
    bool more = false;
    if (scope.nrooms && !scope.empty) {
        req = cJSON_CreateObject();
        add_strs(req, "words", q->words, q->nwords);
        add_strs(req, "prefixes", q->prefixes, q->nprefixes);
        add_strs(req, "phrases", q->phrases, q->nphrases);
        cJSON *rooms = cJSON_AddArrayToObject(req, "roomIds"), *authors = cJSON_AddArrayToObject(req, "authorIds");
        for (size_t i = 0; i < scope.nrooms; i++)
            cJSON_AddItemToArray(rooms, cJSON_CreateString(scope.rooms[i]));
        for (size_t i = 0; i < scope.nauthors; i++)
            cJSON_AddItemToArray(authors, cJSON_CreateString(scope.authors[i]));
        cJSON_AddNumberToObject(req, "after", (double)f.after_ms);
        cJSON_AddNumberToObject(req, "before", (double)f.before_ms);
        cJSON_AddBoolToObject(req, "hasAttachments", f.has_attachment);
        cJSON_AddBoolToObject(req, "isThread", f.is_thread);
        cJSON_AddStringToObject(req, "order", newest ? "newest" : "relevance");
        cJSON_AddNumberToObject(req, "limit", (double)(page + 1));
        cJSON_AddNumberToObject(req, "offset", (double)offset);
        if ((st = search_client_query(c->env->store, req, cfg_int(c->env->cfg, CFG_NATS_REQUEST_TIMEOUT), &resp,
                                      err)) != CH_OK)
            goto out;
        const cJSON *hits = cJSON_GetObjectItemCaseSensitive(resp, "hits");
        size_t taken = 0;
        more = cJSON_GetArraySize(hits) > page;
        if (more) /* the extra hit only says there is more */
            cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(resp, "hits"), (int)page);
        if ((st = chat_search_hydrate(c->env->chat, ME, hits, &scope, &f, (size_t)page, results, users, &taken,
                                      err)) != CH_OK)
            goto out;
    }
    if (more && offset + page <= OFFSET_MAX) {
        char next[48], tag[17];
        cursor_tag(ME->id, in, tag);
        snprintf(next, sizeof next, "%" PRId64 ".%s", offset + page, tag);
        cJSON_AddStringToObject(o, "nextCursor", next);
    } else {
        cJSON_AddStringToObject(o, "nextCursor", "");
    }
    *out = o;
    o = NULL;
out:
    cJSON_Delete(o);
    cJSON_Delete(req);
    cJSON_Delete(resp);
    chat_search_scope_free(&scope);
    search_query_free(q);
    return st;
}

static enum ch_status
get_status(struct api_ctx *c, const cJSON *in, cJSON **out, struct ch_err *err)
{
    const char *s;

    (void)in;
    (void)err;
    *out = cJSON_CreateObject();
    if (!cfg_bool(c->env->cfg, CFG_SEARCH_ENABLED)) {
        cJSON_AddStringToObject(*out, "state", "MESSAGE_SEARCH_STATE_DISABLED");
        return CH_OK;
    }
    s = search_client_status(c->env->store, 1000);
    if (!strcmp(s, "ready")) {
        cJSON_AddStringToObject(*out, "state", "MESSAGE_SEARCH_STATE_READY");
        return CH_OK;
    }
    cJSON_AddStringToObject(*out, "state", !strcmp(s, "indexing") ? "MESSAGE_SEARCH_STATE_INDEXING"
                                                                   : "MESSAGE_SEARCH_STATE_UNAVAILABLE");
    cJSON_AddStringToObject(*out, "retryAfter", "2s");
    return CH_OK;
}

const struct api_method search_methods[] = {
    { "chatto.api.v1.MessageSearchService", "SearchMessages", API_AUTH_USER, 16 * 1024, search_messages },
    { "chatto.api.v1.MessageSearchService", "GetStatus", API_AUTH_USER, 1024, get_status },
    { 0 },
};
