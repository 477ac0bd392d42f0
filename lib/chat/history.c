/* SPDX-License-Identifier: MIT */
/*
 * History, answered from the read model: a room's timeline paged by cursor (before, after or newest), the page
 * around one event, and a thread's replies. Cursors are timeline positions (stream sequences). A timeline page
 * merges the items in memory with the cold timeline (cold.c), whose posts are fetched by sequence without the lock.
 * HTTP worker threads.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "metrics/metrics.h"
#include "store/store.h"

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

/* ---- the room timeline: items in memory merged with the cold timeline (cold.c) ---- */

#define PAGE_MAX 100

/* One entry of a timeline page: an item in memory, or (it NULL) a cold message: shown from its post, or (rich)
 * brought back into memory first, with its last event (last, when it is the only one after the post). */
struct tl_entry {
    uint64_t pos;
    const struct chat_item *it;
    bool rich;
    uint64_t last;
};

/* The entry of cold list c's entry k. */
static struct tl_entry
cold_entry(const struct cold_list *c, size_t k)
{
    return (struct tl_entry){ cold_list_pos(c, k), NULL, cold_list_rich(c, k),
                              cold_list_one(c, k) ? cold_list_last(c, k) : 0 };
}
struct tl_plan {
    struct tl_entry v[PAGE_MAX];
    size_t n;
    bool older, newer; /* items before the first and after the last exist */
};

/* Up to limit items before position `before` (exclusive), the newest of them, oldest first. Model read-locked. */
static void
plan_before(const struct chat_room *r, uint64_t before, size_t limit, struct tl_plan *p)
{
    size_t i = before ? model_tl_after(r, before - 1) : 0, k = before ? model_cold_after(r, before - 1) : 0;
    size_t n = 0;

    p->newer = i < r->ntl || k < r->cold.n;
    while (n < limit && (i > 0 || k > 0)) {
        if (k == 0 || (i > 0 && r->tl[i - 1]->pos > model_cold_pos(r, k - 1))) {
            i--;
            p->v[n++] = (struct tl_entry){ r->tl[i]->pos, r->tl[i], false, 0 };
        } else {
            k--;
            p->v[n++] = cold_entry(&r->cold, k);
        }
    }
    p->older = i > 0 || k > 0;
    for (size_t a = 0; a < n / 2; a++) {
        struct tl_entry t = p->v[a];
        p->v[a] = p->v[n - 1 - a];
        p->v[n - 1 - a] = t;
    }
    p->n = n;
}

/* Up to limit items after position `after` (exclusive), appended to p from p->n. Model read-locked. */
static void
plan_after(const struct chat_room *r, uint64_t after, size_t limit, struct tl_plan *p)
{
    size_t i = model_tl_after(r, after), k = model_cold_after(r, after), n = 0;

    if (!p->n)
        p->older = i > 0 || k > 0;
    while (n < limit && p->n < PAGE_MAX && (i < r->ntl || k < r->cold.n)) {
        if (k == r->cold.n || (i < r->ntl && r->tl[i]->pos < model_cold_pos(r, k))) {
            p->v[p->n++] = (struct tl_entry){ r->tl[i]->pos, r->tl[i], false, 0 };
            i++;
        } else {
            p->v[p->n++] = cold_entry(&r->cold, k);
            k++;
        }
        n++;
    }
    p->newer = i < r->ntl || k < r->cold.n;
}

/* Posts of cold messages fetched for a page, by position. */
struct cold_got {
    struct {
        uint64_t pos;
        char *subject, *data;
        size_t len;
    } v[PAGE_MAX * 2];
    size_t n;
};

/* The index of the event at seq in g, g->n if it is not there. */
static size_t
got_index(const struct cold_got *g, uint64_t seq)
{
    size_t i = 0;

    while (i < g->n && g->v[i].pos != seq)
        i++;
    return i;
}

static const char *
got_find(const struct cold_got *g, uint64_t pos, size_t *len)
{
    size_t i = got_index(g, pos);

    if (i == g->n)
        return NULL;
    *len = g->v[i].len;
    return g->v[i].data;
}

struct got_ctx {
    struct cold_got *g;
    const uint64_t *seqs;
};

static void
got_one(void *ctx, size_t i, const char *subject, const char *data, size_t len)
{
    struct got_ctx *x = ctx;
    struct cold_got *g = x->g;

    if (g->n == sizeof g->v / sizeof g->v[0] || !(g->v[g->n].data = malloc(len + 1)))
        return;
    if (!(g->v[g->n].subject = strdup(subject))) {
        free(g->v[g->n].data);
        return;
    }
    memcpy(g->v[g->n].data, data, len);
    g->v[g->n].data[len] = '\0';
    g->v[g->n].len = len;
    g->v[g->n++].pos = x->seqs[i];
}

static void
got_free(struct cold_got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        explicit_bzero(g->v[i].data, g->v[i].len);
        free(g->v[i].data);
        free(g->v[i].subject);
    }
    g->n = 0;
}

/* Fetch the posts at want into g (no lock held); *last: nothing came (erased since: render without them). */
static enum ch_status
got_fetch(struct chat *c, struct cold_got *g, const uint64_t *want, size_t n, bool *last, struct ch_err *err)
{
    struct got_ctx x = { g, want };

    if (g->n + n > sizeof g->v / sizeof g->v[0])
        got_free(g); /* (a page that keeps moving: start over) */
    size_t before = g->n;
    enum ch_status st = store_get_many(c->store, STORE_S_EVENTS, want, n, got_one, &x, err);

    if (st != CH_OK)
        return st;
    metrics_add(MET_BODY_FETCHES, NULL, NULL, (double)n); /* (each post holds its body) */
    *last = g->n == before;
    return CH_OK;
}

/* The positions of p's cold entries whose posts g does not hold yet (and the last events of rich ones, when that
 * is their only event after the post), into want (PAGE_MAX * 2); how many. *rich: how many of its rich cold entries
 * g holds the posts of (to bring back: plan_restore). */
static size_t
plan_wants(const struct tl_plan *p, const struct cold_got *g, uint64_t *want, size_t *rich)
{
    size_t n = 0, len;

    *rich = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].it)
            continue;
        if (got_find(g, p->v[i].pos, &len) || (p->v[i].last && got_find(g, p->v[i].last, &len))) {
            *rich += p->v[i].rich; /* (an edited one's post is gone: its last edit replaced it) */
        } else {
            want[n++] = p->v[i].pos;
            if (p->v[i].last)
                want[n++] = p->v[i].last;
        }
    }
    return n;
}

/* Bring p's rich cold entries whose posts g holds back into memory (no lock held: p's positions only). */
static enum ch_status
plan_restore(struct chat *c, const struct tl_plan *p, const struct cold_got *g, struct ch_err *err)
{
    enum ch_status st = CH_OK;

    for (size_t i = 0; i < p->n && st == CH_OK; i++) {
        if (p->v[i].it || !p->v[i].rich)
            continue;
        size_t b = got_index(g, p->v[i].pos), l = p->v[i].last ? got_index(g, p->v[i].last) : g->n;
        if (b == g->n) /* (no post: the last edit, a whole snapshot, replaced it) */
            b = l;
        if (b == g->n)
            continue;
        struct chat_event_ref last = { p->v[i].last, l < g->n ? g->v[l].data : NULL, l < g->n ? g->v[l].len : 0 };
        st = chat_cold_restore_post(c, g->v[b].pos, g->v[b].subject, g->v[b].data, g->v[b].len,
                                    l < g->n && l != b ? &last : NULL, err);
    }
    return st;
}

/* Fetch what a plan wants (no lock held): the posts in want, then the rich entries brought back. */
static enum ch_status
plan_fetch(struct chat *c, const struct tl_plan *p, struct cold_got *g, const uint64_t *want, size_t n, bool *last,
           struct ch_err *err)
{
    enum ch_status st = n ? got_fetch(c, g, want, n, last, err) : CH_OK;

    return st == CH_OK ? plan_restore(c, p, g, err) : st;
}

/* The page of a plan. A cold message whose post is not in g is left out (erased since: deleted). Model
 * read-locked. */
static cJSON *
plan_page(const struct chat_model *m, const struct chat_room *r, const char *viewer, const struct tl_plan *p,
          const struct cold_got *g, struct body_fill *bf)
{
    cJSON *page = cJSON_CreateObject(), *events = cJSON_AddArrayToObject(page, "events");
    cJSON *users = cJSON_AddObjectToObject(cJSON_AddObjectToObject(page, "includes"), "users");
    uint64_t first = 0, last = 0;

    for (size_t i = 0; i < p->n; i++) {
        const struct chat_item *it = p->v[i].it;
        cJSON *e = NULL;
        if (it) {
            e = view_item(m, it, r->id, viewer, bf);
            view_include_user(m, users, it->actor);
            if (it->subject_user[0])
                view_include_user(m, users, it->subject_user);
        } else if (!p->v[i].rich) { /* (a rich one not brought back is left out: its post is not what it shows) */
            size_t len = 0;
            const char *data = got_find(g, p->v[i].pos, &len);
            if (data)
                e = chat_cold_view(m, r->id, p->v[i].pos, data, len, viewer, users);
        }
        if (!e)
            continue;
        cJSON_AddItemToArray(events, e);
        if (!first)
            first = p->v[i].pos;
        last = p->v[i].pos;
    }
    if (first) {
        json_add_int64_str(page, "startCursor", (int64_t)first);
        json_add_int64_str(page, "endCursor", (int64_t)last);
    } else {
        cJSON_AddStringToObject(page, "startCursor", "");
        cJSON_AddStringToObject(page, "endCursor", "");
    }
    cJSON_AddBoolToObject(page, "hasOlder", p->older);
    cJSON_AddBoolToObject(page, "hasNewer", p->newer);
    return page;
}

/* How a page is chosen: before/after a cursor, the newest, or around an event. */
struct page_want {
    enum { PW_BEFORE, PW_AFTER, PW_NEWEST, PW_AROUND } kind;
    uint64_t cursor; /* PW_AROUND: 0 until the event's position is known */
    const char *event;
    size_t limit;
};

/* The event's position in r's timeline, 0 if it is not there. Model read-locked. */
static uint64_t
event_pos(struct chat_room *r, const char *event)
{
    struct chat_msg *msg = model_msg(r, event);

    if (msg && !msg->thread_root[0]) {
        size_t i = model_tl_after(r, msg->pos - 1);
        if (i < r->ntl && r->tl[i]->pos == msg->pos)
            return msg->pos;
    }
    for (size_t i = 0; i < r->ntl; i++)
        if (!strcmp(r->tl[i]->id, event))
            return r->tl[i]->pos;
    return 0;
}

/* A timeline page of room_id as who sees it: planned under the lock, the cold posts it shows fetched without it
 * (one round trip), then rendered under the lock from a fresh plan (what moved meanwhile is fetched too). */
static enum ch_status
timeline_page(struct chat *c, const struct user *who, const char *room_id, struct page_want *w, cJSON **out,
              struct ch_err *err)
{
    struct cold_got *g = calloc(1, sizeof *g);
    struct tl_plan *p = malloc(sizeof *p);
    struct body_fill bf = { 0 };
    enum ch_status st = CH_OK;

    if (!g || !p) {
        free(g);
        free(p);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    bool last = false; /* render with what there is: what is still missing is gone (erased: deleted) */
    for (int round = 0;; round++) {
        struct chat_room *r;
        struct chat_member *cm;
        uint64_t want[PAGE_MAX * 2];
        size_t nwant = 0, nrich = 0;

        pthread_rwlock_rdlock(&c->m->lock);
        if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) != CH_OK) {
            pthread_rwlock_unlock(&c->m->lock);
            break;
        }
        memset(p, 0, sizeof *p);
        switch (w->kind) {
        case PW_BEFORE:
            plan_before(r, w->cursor, w->limit, p);
            break;
        case PW_NEWEST:
            plan_before(r, UINT64_MAX, w->limit, p);
            break;
        case PW_AFTER:
            plan_after(r, w->cursor, w->limit, p);
            break;
        case PW_AROUND: {
            uint64_t pos = event_pos(r, w->event);
            if (!pos) {
                st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such event in this room's timeline");
                break;
            }
            plan_before(r, pos, w->limit / 2, p);
            plan_after(r, pos - 1, w->limit - p->n, p);
            break;
        }
        }
        if (st == CH_OK)
            nwant = plan_wants(p, g, want, &nrich);
        if (st != CH_OK || (!nwant && !nrich) || last || round == 3) {
            if (st == CH_OK) {
                *out = cJSON_CreateObject();
                cJSON_AddStringToObject(*out, "roomId", room_id);
                cJSON_AddItemToObject(*out, "page", plan_page(c->m, r, who->id, p, g, &bf));
            }
            pthread_rwlock_unlock(&c->m->lock);
            break;
        }
        pthread_rwlock_unlock(&c->m->lock);
        if ((st = plan_fetch(c, p, g, want, nwant, &last, err)) != CH_OK)
            break;
    }
    got_free(g);
    free(g);
    free(p);
    return chat_bodies_finish(c, &bf, st, out, err);
}

enum ch_status
chat_room_events(struct chat *c, const struct user *who, const char *room_id, const char *before, const char *after,
                 int limit_in, cJSON **out, struct ch_err *err)
{
    uint64_t b = 0, a = 0;
    size_t limit = 50;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = check_limit(limit_in, &limit, err)) != CH_OK ||
        (st = parse_cursor("before", before, &b, err)) != CH_OK || (st = parse_cursor("after", after, &a, err)) != CH_OK)
        return st;
    if (before && *before && after && *after)
        return ch_err_set(err, CH_EINVAL, "before", "give before or after, not both");
    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    struct page_want w = { .kind = after && *after ? PW_AFTER : before && *before ? PW_BEFORE : PW_NEWEST,
                           .cursor = after && *after ? a : b, .limit = limit };
    return timeline_page(c, who, room_id, &w, out, err);
}

enum ch_status
chat_room_events_around(struct chat *c, const struct user *who, const char *room_id, const char *event,
                        int limit_in, cJSON **out, struct ch_err *err)
{
    size_t limit = 50;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", event, err)) != CH_OK ||
        (st = check_limit(limit_in, &limit, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK ||
        (st = chat_msg_ensure(c, room_id, event, err)) != CH_OK)
        return st;
    struct page_want w = { .kind = PW_AROUND, .event = event, .limit = limit };
    return timeline_page(c, who, room_id, &w, out, err);
}

/* ---- a thread: its replies in memory merged with those of a quiet thread out of it (seqlist.cold) ---- */

/* A thread page's plan: a timeline plan whose items in memory are made for its replies here. */
struct th_plan {
    struct tl_plan p;
    struct chat_item items[PAGE_MAX];
};

/* Entry n of q: reply msg (in memory) ... */
static void
th_entry(struct th_plan *q, size_t n, const struct chat_msg *msg)
{
    struct chat_item *it = &q->items[n];

    *it = (struct chat_item){ .pos = msg->pos, .kind = IT_MSG, .id = msg->id, .actor = msg->author,
                              .subject_user = "", .at = msg->created_at, .msg = (struct chat_msg *)msg };
    q->p.v[n] = (struct tl_entry){ msg->pos, it, false, 0 };
}

/* ... or cold reply k of c. */
static void
th_cold(struct th_plan *q, size_t n, const struct cold_list *c, size_t k)
{
    q->p.v[n] = cold_entry(c, k);
}

/* Up to limit replies of l after `after`, or else before `before` (exclusive; 0: none) or the newest. Model
 * read-locked; l may be NULL. */
static void
thread_plan(const struct seqlist *l, bool has_before, uint64_t before, bool has_after, uint64_t after, size_t limit,
            struct th_plan *q)
{
    size_t nh = l ? l->n : 0, nc = l ? l->cold.n : 0, i, k, n = 0;
    struct tl_plan *p = &q->p;

    memset(p, 0, sizeof *p);
    if (!l)
        return;
    if (has_after) {
        i = seqlist_after(l, after);
        k = cold_list_after(&l->cold, after);
        p->older = i > 0 || k > 0;
        for (; n < limit && (i < nh || k < nc); n++) {
            if (k == nc || (i < nh && l->v[i]->pos < cold_list_pos(&l->cold, k))) {
                th_entry(q, n, l->v[i]);
                i++;
            } else {
                th_cold(q, n, &l->cold, k);
                k++;
            }
        }
        p->newer = i < nh || k < nc;
        p->n = n;
        return;
    }
    i = has_before ? (before ? seqlist_after(l, before - 1) : 0) : nh;
    k = has_before ? (before ? cold_list_after(&l->cold, before - 1) : 0) : nc;
    p->newer = i < nh || k < nc;
    for (; n < limit && (i > 0 || k > 0); n++) {
        if (k == 0 || (i > 0 && l->v[i - 1]->pos > cold_list_pos(&l->cold, k - 1))) {
            i--;
            th_entry(q, n, l->v[i]);
        } else {
            k--;
            th_cold(q, n, &l->cold, k);
        }
    }
    p->older = i > 0 || k > 0;
    for (size_t a = 0; a < n / 2; a++) { /* (the entries point at their items: swapping them is enough) */
        struct tl_entry t = p->v[a];
        p->v[a] = p->v[n - 1 - a];
        p->v[n - 1 - a] = t;
    }
    p->n = n;
}

enum ch_status
chat_thread(struct chat *c, const struct user *who, const char *room_id, const char *root_id, const char *before,
            const char *after, int limit_in, cJSON **out, struct ch_err *err)
{
    uint64_t b = 0, a = 0;
    size_t limit = 50;
    enum ch_status st;
    struct body_fill bf = { 0 };
    bool has_before = before && *before, has_after = after && *after;

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = id_check("threadRootEventId", root_id, err)) != CH_OK ||
        (st = check_limit(limit_in, &limit, err)) != CH_OK || (st = parse_cursor("before", before, &b, err)) != CH_OK ||
        (st = parse_cursor("after", after, &a, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK ||
        (st = chat_msg_ensure(c, room_id, root_id, err)) != CH_OK)
        return st;
    struct cold_got *g = calloc(1, sizeof *g);
    struct th_plan *p = malloc(sizeof *p);
    if (!g || !p) {
        free(g);
        free(p);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    /* as a timeline page: planned under the lock, the cold replies' posts fetched without it, rendered from a
     * fresh plan */
    bool last = false;
    for (int round = 0;; round++) {
        struct chat_room *r;
        struct chat_member *cm;
        uint64_t want[PAGE_MAX * 2];
        size_t nwant = 0, nrich = 0;

        pthread_rwlock_rdlock(&c->m->lock);
        if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) != CH_OK) {
            pthread_rwlock_unlock(&c->m->lock);
            break;
        }
        struct chat_msg *root = model_msg(r, root_id);
        if (!root || root->thread_root[0]) {
            st = ch_err_set(err, CH_ENOTFOUND, "threadRootEventId", "no such thread in this room");
            pthread_rwlock_unlock(&c->m->lock);
            break;
        }
        thread_plan(map_get(r->threads, root_id), has_before, b, has_after, a, limit, p);
        nwant = plan_wants(&p->p, g, want, &nrich);
        if ((!nwant && !nrich) || last || round == 3) {
            *out = cJSON_CreateObject();
            cJSON_AddItemToObject(*out, "root", view_message(c->m, root, room_id, who->id, &bf));
            cJSON_AddItemToObject(*out, "page", plan_page(c->m, r, who->id, &p->p, g, &bf));
            pthread_rwlock_unlock(&c->m->lock);
            break;
        }
        pthread_rwlock_unlock(&c->m->lock);
        if ((st = plan_fetch(c, &p->p, g, want, nwant, &last, err)) != CH_OK)
            break;
    }
    got_free(g);
    free(g);
    free(p);
    return chat_bodies_finish(c, &bf, st, out, err);
}
