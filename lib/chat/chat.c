/* SPDX-License-Identifier: MIT */
/*
 * The chat core's lifetime and its feeds: chat_new starts the read model's follower on CHATTO_EVENTS, the two KV
 * watchers (users, read positions) and the eraser; chat_free stops them. The feed callbacks only hand what they
 * get to the model (model.c). Also readiness, the realtime listener and the directory lookup.
 *
 * The commands live beside this file, one concern each: rooms.c dms.c messages.c reactions.c history.c reads.c
 * realtime.c, on top of sync.c (read-your-writes), append.c (the write path) and access.c (who may do what).
 * Subjects: one per room, member and message (store/subject.h builds them).
 * Still here, until they move into files of their own: history, reads, realtime.
 *
 * Threads: chat_new/chat_free on the main thread; the callbacks on the store's follower and watcher threads;
 * the rest on HTTP worker threads.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"

/* ---- feeding the model ---- */

static void
on_event(void *ctx, uint64_t seq, const char *subject, const char *data, size_t len, int64_t ms)
{
    chat_model_apply(((struct chat *)ctx)->m, seq, subject, data, len, ms);
}

static void
on_user(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    chat_model_user(((struct chat *)ctx)->m, key, val, len, rev);
}

static void
on_read(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    chat_model_read(((struct chat *)ctx)->m, key, val, len, rev);
}

enum ch_status
chat_new(const struct chat_opts *o, struct chat **out, struct ch_err *err)
{
    struct chat *c = calloc(1, sizeof *c);
    enum ch_status st;

    if (!c || !(c->m = chat_model_new())) {
        free(c);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    c->store = o->store;
    c->edit_window_ms = o->edit_window_ms;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    sync_init(c);
    if ((st = store_kv_watch(c->store, STORE_B_USERS, ">", on_user, c, &c->users_w, err)) != CH_OK ||
        (st = store_kv_watch(c->store, STORE_B_READS, ">", on_read, c, &c->reads_w, err)) != CH_OK ||
        (st = store_follow(c->store, STORE_S_EVENTS, on_event, c, &c->follower, err)) != CH_OK) {
        chat_free(c);
        return st;
    }
    if ((st = eraser_start(c, err)) != CH_OK) {
        chat_free(c);
        return st;
    }
    *out = c;
    return CH_OK;
}

void
chat_free(struct chat *c)
{
    if (!c)
        return;
    eraser_stop(c);
    store_follower_stop(c->follower);
    store_kv_watch_stop(c->users_w);
    store_kv_watch_stop(c->reads_w);
    chat_model_free(c->m);
    sync_destroy(c);
    free(c);
}

void
chat_set_listener(struct chat *c, chat_listener_fn fn, void *ctx)
{
    pthread_rwlock_wrlock(&c->m->lock);
    c->m->listener = fn;
    c->m->listener_ctx = ctx;
    pthread_rwlock_unlock(&c->m->lock);
}

bool
chat_ready(struct chat *c, char *reason, size_t len)
{
    if (!store_follower_attached(c->follower)) {
        snprintf(reason, len, "read model not subscribed yet");
        return false;
    }
    uint64_t target = store_follower_target(c->follower), applied = chat_model_applied(c->m);
    if (applied < target) {
        snprintf(reason, len, "replaying history (%" PRIu64 " of %" PRIu64 ")", applied, target);
        return false;
    }
    pthread_mutex_lock(&c->m->mu);
    bool loaded = c->m->users_loaded && c->m->reads_loaded;
    pthread_mutex_unlock(&c->m->mu);
    if (!loaded) {
        snprintf(reason, len, "loading users and read positions");
        return false;
    }
    return true;
}

bool
chat_lookup_user(struct chat *c, const char *uid, struct user *out)
{
    const struct user *u;
    bool found;

    pthread_rwlock_rdlock(&c->m->lock);
    u = model_user(c->m, uid);
    if ((found = u != NULL))
        *out = *u;
    pthread_rwlock_unlock(&c->m->lock);
    return found;
}

/* ==== history ==== */

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
            cJSON_AddItemToArray(events, view_item(it, p->r->id, p->viewer));
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
                                  view_message(msg, p->r->id, p->viewer));
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
                           .n = r->ntl };
        pager_window(&p, before && *before, b, after && *after, a, limit, &from, &to);
        *out = cJSON_CreateObject();
        cJSON_AddStringToObject(*out, "roomId", room_id);
        cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_room_events_around(struct chat *c, const struct user *who, const char *room_id, const char *event,
                        int limit_in, cJSON **out, struct ch_err *err)
{
    size_t limit = 50, idx = SIZE_MAX;
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

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
                               .n = r->ntl };
            size_t from = idx > limit / 2 ? idx - limit / 2 : 0, to = from + limit < r->ntl ? from + limit : r->ntl;
            *out = cJSON_CreateObject();
            cJSON_AddStringToObject(*out, "roomId", room_id);
            cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
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
            struct pager p = { .m = c->m, .r = r, .viewer = who->id, .replies = l ? l : &empty, .n = l ? l->n : 0 };
            pager_window(&p, before && *before, b, after && *after, a, limit, &from, &to);
            *out = cJSON_CreateObject();
            cJSON_AddItemToObject(*out, "root", view_message(root, room_id, who->id));
            cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

/* ==== reads ==== */

/* Unread messages (by others, top level) and mentions of uid after the member's read position. */
void
chat_unread_counts(const struct chat_room *r, const struct chat_member *cm, size_t *unread, size_t *mentions)
{
    *unread = *mentions = 0;
    for (size_t i = model_tl_after(r, cm->last_read); i < r->ntl; i++) {
        const struct chat_msg *msg = r->tl[i]->msg;
        if (r->tl[i]->kind == IT_MSG && !msg->deleted_at && strcmp(msg->author, cm->user) != 0)
            (*unread)++;
    }
    for (size_t i = seqlist_after(&r->mentioned, cm->last_read); i < r->mentioned.n; i++) {
        const struct chat_msg *msg = r->mentioned.v[i];
        if (msg->deleted_at || !strcmp(msg->author, cm->user))
            continue;
        for (size_t j = 0; j < msg->nmentions; j++)
            if (!strcmp(msg->mentions[j], cm->user)) {
                (*mentions)++;
                break;
            }
    }
}

enum ch_status
chat_mark_read(struct chat *c, const struct user *who, const char *room_id, const char *event, cJSON **out,
               struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    uint64_t pos = 0, rev = 0;
    char key[2 * ID_MAX + 2], val[32];

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = chat_id_or_empty("eventId", event, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        if (event && *event) {
            struct chat_msg *msg = model_msg(r, event);
            if (msg)
                pos = msg->pos;
            for (size_t i = 0; !pos && i < r->ntl; i++)
                if (!strcmp(r->tl[i]->id, event))
                    pos = r->tl[i]->pos;
            if (!pos)
                st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such event in this room");
        } else {
            pos = chat_model_applied(c->m); /* positions are stream sequences: everything so far */
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK)
        return st;
    snprintf(key, sizeof key, "%s.%s", who->id, room_id);
    snprintf(val, sizeof val, "%" PRIu64, pos);
    /* only ever forward, even when two devices race */
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        char *cur = NULL;
        uint64_t cur_rev = 0;
        st = store_kv_get(c->store, STORE_B_READS, key, &cur, NULL, &cur_rev, err);
        if (st == CH_OK && strtoull(cur, NULL, 10) >= pos) {
            free(cur);
            rev = cur_rev;
            break;
        }
        free(cur);
        if (st == CH_OK)
            st = store_kv_update(c->store, STORE_B_READS, key, val, strlen(val), cur_rev, &rev, err);
        else if (st == CH_ENOTFOUND)
            st = store_kv_create(c->store, STORE_B_READS, key, val, strlen(val), &rev, err);
        if (st != CH_ECONFLICT && st != CH_EEXIST)
            break;
    }
    if (st != CH_OK)
        return st;
    if (!chat_model_wait_reads(c->m, rev, c->timeout_ms))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "stored, but this server has not caught up yet; retry");
    pthread_rwlock_rdlock(&c->m->lock);
    r = model_room(c->m, room_id);
    cm = model_member(r, who->id);
    *out = cJSON_CreateObject();
    if (cm) {
        size_t unread, mentions;
        chat_unread_counts(r, cm, &unread, &mentions);
        json_add_int64_str(*out, "lastReadCursor", (int64_t)cm->last_read);
        cJSON_AddNumberToObject(*out, "unreadCount", (double)unread);
        cJSON_AddNumberToObject(*out, "mentionCount", (double)mentions);
    }
    pthread_rwlock_unlock(&c->m->lock);
    return CH_OK;
}

/* ==== realtime ==== */

bool
chat_room_member_ids(struct chat *c, const char *room_id, char (**ids)[65], size_t *n)
{
    bool ok = false;

    *ids = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    if (r) {
        size_t it = 0, k = 0;
        const char *key;
        *ids = calloc(map_len(r->members) + 1, sizeof **ids);
        if (*ids) {
            while (map_next(r->members, &it, &key, NULL))
                snprintf((*ids)[k++], 65, "%s", key);
            *n = k;
            ok = true;
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return ok;
}

bool
chat_is_member(struct chat *c, const char *room_id, const char *uid)
{
    pthread_rwlock_rdlock(&c->m->lock);
    bool v = model_member(model_room(c->m, room_id), uid) != NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return v;
}

enum ch_status
chat_check_typing(struct chat *c, const struct user *who, const char *room_id, const char *thread_root,
                  struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = chat_id_or_empty("threadRootEventId", thread_root, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK && r->archived)
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

uint64_t
chat_applied(struct chat *c)
{
    return chat_model_applied(c->m);
}

uint64_t
chat_replay_target(struct chat *c)
{
    return store_follower_target(c->follower);
}
