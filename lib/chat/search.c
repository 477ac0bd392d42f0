/* SPDX-License-Identifier: MIT */
/*
 * Message search, the read model's part: which rooms and authors a query may cover (the caller's rooms now, after
 * catching up with every acknowledged event, so a room left a moment ago is out), and turning a provider's hits
 * into results, each re-checked against the model as it is: the caller is still a member, the message still
 * exists with the very body the index matched (an index that trails an edit or a delete never shows old text),
 * and the filters still hold. The index decides what matches; this file decides what may be seen.
 * HTTP worker threads; model read-locked; no lock across NATS.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat/chat_int.h"
#include "json/json.h"

static const char *
json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

void
chat_search_scope_free(struct chat_search_scope *s)
{
    if (!s)
        return;
    free(s->rooms);
    free(s->authors);
    s->rooms = s->authors = NULL;
    s->nrooms = s->nauthors = 0;
}

static bool
push_id(char (**v)[ID_MAX + 1], size_t *n, const char *id)
{
    char(*nv)[ID_MAX + 1] = realloc(*v, (*n + 1) * sizeof *nv);

    if (!nv)
        return false;
    *v = nv;
    snprintf(nv[(*n)++], ID_MAX + 1, "%s", id);
    return true;
}

enum ch_status
chat_search_scope(struct chat *c, const struct user *who, const char *const *room_names, size_t nnames,
                  const char *room_id, const char *const *logins, size_t nlogins, const char *author_id,
                  struct chat_search_scope *out, struct ch_err *err)
{
    struct chat_search_scope s = { 0 };
    enum ch_status st = CH_OK;
    size_t it = 0;
    const char *key;
    void *v;

    memset(out, 0, sizeof *out);
    if ((st = chat_id_or_empty("roomId", room_id, err)) != CH_OK ||
        (st = chat_id_or_empty("authorId", author_id, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK ||
        (nlogins && (st = sync_users(c, err)) != CH_OK)) /* logins: a user renamed a moment ago */
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    /* in: names must each name a room the caller can read (a private room they are not in reads as unknown) */
    for (size_t i = 0; i < nnames && st == CH_OK; i++) {
        bool found = false;
        for (it = 0; map_next(c->m->rooms, &it, &key, &v);) {
            struct chat_room *r = v;
            if (r->exists && r->vis != VIS_DM && !strcasecmp(r->name, room_names[i]) && model_member(r, who->id))
                found = true;
        }
        if (!found)
            st = ch_err_set(err, CH_EINVAL, "query", "in:#%.80s: no room of yours has that name", room_names[i]);
    }
    for (it = 0; st == CH_OK && map_next(c->m->rooms, &it, &key, &v);) {
        struct chat_room *r = v;
        bool named = nnames == 0;
        if (!r->exists || !model_member(r, who->id) || (room_id && *room_id && strcmp(room_id, r->id)))
            continue;
        for (size_t i = 0; i < nnames && !named; i++)
            named = r->vis != VIS_DM && !strcasecmp(r->name, room_names[i]);
        if (named && !push_id(&s.rooms, &s.nrooms, r->id))
            st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < nlogins && st == CH_OK; i++) {
        char low[128];
        const char *uid;
        size_t k;
        for (k = 0; k + 1 < sizeof low && logins[i][k]; k++)
            low[k] = (char)tolower((unsigned char)logins[i][k]);
        low[k] = '\0';
        if (!(uid = map_get(c->m->logins, logins[i])) && !(uid = map_get(c->m->logins, low)))
            st = ch_err_set(err, CH_EINVAL, "query", "from:@%.80s: no such user", logins[i]);
        else if (author_id && *author_id && strcmp(author_id, uid))
            continue; /* authorId and from: intersect */
        else if (!push_id(&s.authors, &s.nauthors, uid))
            st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (st == CH_OK && author_id && *author_id && !nlogins && !push_id(&s.authors, &s.nauthors, author_id))
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (st == CH_OK && (nlogins || (author_id && *author_id)) && !s.nauthors)
        s.empty = true; /* authorId and from: name nobody in common */
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK) {
        chat_search_scope_free(&s);
        return st;
    }
    *out = s;
    return CH_OK;
}

static bool
author_ok(const struct chat_search_scope *s, const char *author)
{
    if (!s->nauthors)
        return true;
    for (size_t i = 0; i < s->nauthors; i++)
        if (!strcmp(s->authors[i], author))
            return true;
    return false;
}

enum ch_status
chat_search_hydrate(struct chat *c, const struct user *who, const cJSON *hits, const struct chat_search_scope *s,
                    const struct chat_search_filter *f, size_t max, cJSON *results, cJSON *users, size_t *taken,
                    struct ch_err *err)
{
    const cJSON *h;
    uint64_t newest = 0;
    struct body_fill bf = { 0 };

    *taken = 0;
    /* the model must know every body the index matched: a hit newer than our model waits for it */
    cJSON_ArrayForEach(h, hits)
    {
        const cJSON *bs = cJSON_GetObjectItemCaseSensitive(h, "bodySeq");
        uint64_t v = cJSON_IsString(bs) ? strtoull(bs->valuestring, NULL, 10) : 0;
        if (v > newest)
            newest = v;
    }
    if (newest > chat_model_applied(c->m))
        chat_model_wait(c->m, newest, c->timeout_ms);
    /* hits on the cold timeline are brought back into memory (best effort: one that cannot be is left out) */
    cJSON_ArrayForEach(h, hits)
        chat_msg_ensure(c, json_str(h, "roomId"), json_str(h, "messageId"), NULL);

    pthread_rwlock_rdlock(&c->m->lock);
    cJSON_ArrayForEach(h, hits)
    {
        const char *room_id = json_str(h, "roomId"), *msg_id = json_str(h, "messageId"), *bs = json_str(h, "bodySeq");
        const cJSON *score = cJSON_GetObjectItemCaseSensitive(h, "score");
        struct chat_room *r = room_id ? model_room(c->m, room_id) : NULL;
        struct chat_msg *msg = r && msg_id ? model_msg(r, msg_id) : NULL;

        if (*taken >= max)
            break;
        if (!r || !r->exists || !model_member(r, who->id) || !msg || !msg->known || msg->refused ||
            msg->deleted_at || !msg->nbody || !bs ||
            strtoull(bs, NULL, 10) != msg->body_seqs[msg->nbody - 1])
            continue; /* not the caller's to see, or not what the index matched (any more) */
        if (!author_ok(s, msg->author) || (f->after_ms && msg->created_at <= f->after_ms) ||
            (f->before_ms && msg->created_at >= f->before_ms) || (f->has_attachment && !msg->attachments) ||
            (f->is_thread && !msg->thread_root[0] && !msg->reply_count))
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "message", view_message(c->m, msg, r->id, who->id, &bf));
        cJSON_AddNumberToObject(o, "relevanceScore", cJSON_IsNumber(score) ? score->valuedouble : 0);
        cJSON_AddStringToObject(o, "snippet", json_str(h, "snippet") ? json_str(h, "snippet") : "");
        cJSON_AddStringToObject(o, "roomId", r->id);
        cJSON_AddStringToObject(o, "roomName", r->name);
        cJSON_AddBoolToObject(o, "directMessage", r->vis == VIS_DM);
        cJSON_AddStringToObject(o, "eventId", msg->id);
        if (msg->thread_root[0])
            cJSON_AddStringToObject(o, "threadRootEventId", msg->thread_root);
        json_add_int64_str(o, "cursor", (int64_t)msg->pos);
        cJSON_AddItemToArray(results, o);
        view_include_user(c->m, users, msg->author);
        (*taken)++;
    }
    pthread_rwlock_unlock(&c->m->lock);
    return chat_bodies_fill(c, &bf, err);
}
