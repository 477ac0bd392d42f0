/* SPDX-License-Identifier: MIT */
/*
 * History, answered from the read model: a room's timeline paged by cursor (before, after or newest), the page
 * around one event, and a thread's replies. Cursors are timeline positions (stream sequences). The pager renders
 * either a timeline or a thread's replies with the users they mention. HTTP worker threads; model read-locked.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"

static enum ch_status
parse_cursor(const char *field, const char *s, uint64_t *out, struct ch_err *err)
{
    char *end = NULL;

    if (!s || !*s)
        return CH_OK;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || !isdigit((unsigned char)*s))
        return ch_err_set(err, CH_EINVAL, field, "not a cursor this server issued");
    *out = v;
    return CH_OK;
}

/* Render items [from, to) of a position-sorted sequence as a page. get(i) returns the item's position and view. */
struct pager {
    const struct chat_model *m;
    const struct chat_room *r;
    const char *viewer;
    const struct chat_item *const *items; /* timeline, or NULL */
    const struct seqlist *replies;        /* thread, or NULL */
    size_t n;
    struct body_fill *bf;
};

static uint64_t
pager_pos(const struct pager *p, size_t i)
{
    return p->items ? p->items[i]->pos : p->replies->v[i]->pos;
}

static cJSON *
pager_page(const struct pager *p, size_t from, size_t to)
{
    cJSON *page = cJSON_CreateObject(), *events = cJSON_AddArrayToObject(page, "events");
    cJSON *users = cJSON_AddObjectToObject(cJSON_AddObjectToObject(page, "includes"), "users");

    for (size_t i = from; i < to; i++) {
        if (p->items) {
            const struct chat_item *it = p->items[i];
            cJSON_AddItemToArray(events, view_item(p->m, it, p->r->id, p->viewer, p->bf));
            view_include_user(p->m, users, it->actor);
            if (it->subject_user[0])
                view_include_user(p->m, users, it->subject_user);
        } else {
            const struct chat_msg *msg = p->replies->v[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "id", msg->id);
            json_add_time(e, "createdAt", msg->created_at);
            cJSON_AddStringToObject(e, "actorId", msg->author);
            json_add_int64_str(e, "cursor", (int64_t)msg->pos);
            cJSON_AddItemToObject(cJSON_AddObjectToObject(e, "messagePosted"), "message",
                                  view_message(p->m, msg, p->r->id, p->viewer, p->bf));
            cJSON_AddItemToArray(events, e);
            view_include_user(p->m, users, msg->author);
        }
    }
    if (to > from) {
        json_add_int64_str(page, "startCursor", (int64_t)pager_pos(p, from));
        json_add_int64_str(page, "endCursor", (int64_t)pager_pos(p, to - 1));
    } else {
        cJSON_AddStringToObject(page, "startCursor", "");
        cJSON_AddStringToObject(page, "endCursor", "");
    }
    cJSON_AddBoolToObject(page, "hasOlder", from > 0);
    cJSON_AddBoolToObject(page, "hasNewer", to < p->n);
    return page;
}

static size_t
pager_after(const struct pager *p, uint64_t pos)
{
    return p->items ? model_tl_after(p->r, pos) : seqlist_after(p->replies, pos);
}

/* [from, to) for before/after/newest. */
static void
pager_window(const struct pager *p, bool has_before, uint64_t before, bool has_after, uint64_t after, size_t limit,
             size_t *from, size_t *to)
{
    if (has_after) {
        *from = pager_after(p, after);
        *to = *from + limit < p->n ? *from + limit : p->n;
    } else {
        *to = has_before ? (before ? pager_after(p, before - 1) : 0) : p->n;
        *from = *to > limit ? *to - limit : 0;
    }
}

static enum ch_status
check_limit(int limit, size_t *out, struct ch_err *err)
{
    if (limit == 0)
        limit = 50;
    if (limit < 1 || limit > 100)
        return ch_err_set(err, CH_EINVAL, "limit", "must be between 1 and 100");
    *out = (size_t)limit;
    return CH_OK;
}

enum ch_status
chat_room_events(struct chat *c, const struct user *who, const char *room_id, const char *before, const char *after,
                 int limit_in, cJSON **out, struct ch_err *err)
{
    uint64_t b = 0, a = 0;
    size_t limit = 50, from, to;
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    struct body_fill bf = { 0 };

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = check_limit(limit_in, &limit, err)) != CH_OK ||
        (st = parse_cursor("before", before, &b, err)) != CH_OK || (st = parse_cursor("after", after, &a, err)) != CH_OK)
        return st;
    if (before && *before && after && *after)
        return ch_err_set(err, CH_EINVAL, "before", "give before or after, not both");
    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct pager p = { .m = c->m, .r = r, .viewer = who->id, .items = (const struct chat_item *const *)r->tl,
                           .n = r->ntl, .bf = &bf };
        pager_window(&p, before && *before, b, after && *after, a, limit, &from, &to);
        *out = cJSON_CreateObject();
        cJSON_AddStringToObject(*out, "roomId", room_id);
        cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
    }
    pthread_rwlock_unlock(&c->m->lock);
    return chat_bodies_finish(c, &bf, st, out, err);
}

enum ch_status
chat_room_events_around(struct chat *c, const struct user *who, const char *room_id, const char *event,
                        int limit_in, cJSON **out, struct ch_err *err)
{
    size_t limit = 50, idx = SIZE_MAX;
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    struct body_fill bf = { 0 };

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", event, err)) != CH_OK ||
        (st = check_limit(limit_in, &limit, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct chat_msg *msg = model_msg(r, event);
        if (msg && !msg->thread_root[0]) {
            size_t i = model_tl_after(r, msg->pos - 1);
            if (i < r->ntl && r->tl[i]->pos == msg->pos)
                idx = i;
        }
        for (size_t i = 0; idx == SIZE_MAX && i < r->ntl; i++)
            if (!strcmp(r->tl[i]->id, event))
                idx = i;
        if (idx == SIZE_MAX) {
            st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such event in this room's timeline");
        } else {
            struct pager p = { .m = c->m, .r = r, .viewer = who->id, .items = (const struct chat_item *const *)r->tl,
                               .n = r->ntl, .bf = &bf };
            size_t from = idx > limit / 2 ? idx - limit / 2 : 0, to = from + limit < r->ntl ? from + limit : r->ntl;
            *out = cJSON_CreateObject();
            cJSON_AddStringToObject(*out, "roomId", room_id);
            cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return chat_bodies_finish(c, &bf, st, out, err);
}

enum ch_status
chat_thread(struct chat *c, const struct user *who, const char *room_id, const char *root_id, const char *before,
            const char *after, int limit_in, cJSON **out, struct ch_err *err)
{
    uint64_t b = 0, a = 0;
    size_t limit = 50, from, to;
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    struct body_fill bf = { 0 };
    static const struct seqlist empty;

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = id_check("threadRootEventId", root_id, err)) != CH_OK ||
        (st = check_limit(limit_in, &limit, err)) != CH_OK || (st = parse_cursor("before", before, &b, err)) != CH_OK ||
        (st = parse_cursor("after", after, &a, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct chat_msg *root = model_msg(r, root_id);
        const struct seqlist *l = map_get(r->threads, root_id);
        if (!root || root->thread_root[0]) {
            st = ch_err_set(err, CH_ENOTFOUND, "threadRootEventId", "no such thread in this room");
        } else {
            struct pager p = { .m = c->m, .r = r, .viewer = who->id, .replies = l ? l : &empty, .n = l ? l->n : 0,
                               .bf = &bf };
            pager_window(&p, before && *before, b, after && *after, a, limit, &from, &to);
            *out = cJSON_CreateObject();
            cJSON_AddItemToObject(*out, "root", view_message(c->m, root, room_id, who->id, &bf));
            cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return chat_bodies_finish(c, &bf, st, out, err);
}
