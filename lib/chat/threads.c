/* SPDX-License-Identifier: MIT */
/*
 * Followed threads and thread read state (upstream's ThreadService FollowThread, UnfollowThread,
 * ListFollowedThreads, MarkThreadAsRead). Per user and thread one KV entry in chatto_follows,
 * <user>.<room>.<root> -> {"f": following, "r": read position, "x": chosen by the user}, so it is the same on every
 * device and process. Replying to a thread, starting one (the root's author) or being mentioned in a reply follows
 * it automatically, unless the user unfollowed it on purpose. Unread counts are the replies by others after the
 * read position, computed from the read model. HTTP worker threads; no lock held across NATS.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"

#define FOLLOWS_LIST_MAX 500

struct follow {
    bool following, chosen;
    uint64_t read;
};

static bool
follow_key(const char *uid, const char *room, const char *root, char *out, size_t len)
{
    return (size_t)snprintf(out, len, "%s.%s.%s", uid, room, root) < len && store_kv_key_valid(out);
}

static enum ch_status
follow_load(struct chat *c, const char *key, struct follow *f, uint64_t *rev, struct ch_err *err)
{
    char *v = NULL;
    size_t len = 0;
    cJSON *o;
    enum ch_status st;

    memset(f, 0, sizeof *f);
    *rev = 0;
    if ((st = store_kv_get(c->store, STORE_B_FOLLOWS, key, &v, &len, rev, err)) != CH_OK)
        return st;
    o = cJSON_ParseWithLength(v, len);
    free(v);
    f->following = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "f"));
    f->chosen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "x"));
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "r");
    f->read = cJSON_IsNumber(r) && r->valuedouble > 0 ? (uint64_t)r->valuedouble : 0;
    cJSON_Delete(o);
    return CH_OK;
}

/* Change one follow entry with compare-and-set; fn edits it and returns false to leave it as it is. */
static enum ch_status
follow_change(struct chat *c, const char *key, bool (*fn)(struct follow *f, const void *arg), const void *arg,
              struct ch_err *err)
{
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        struct follow f;
        uint64_t rev = 0;
        char buf[128];
        enum ch_status st = follow_load(c, key, &f, &rev, err);
        if (st != CH_OK && st != CH_ENOTFOUND)
            return st;
        bool absent = st == CH_ENOTFOUND;
        if (!fn(&f, arg))
            return CH_OK;
        int n = snprintf(buf, sizeof buf, "{\"f\":%s,\"x\":%s,\"r\":%" PRIu64 "}", f.following ? "true" : "false",
                         f.chosen ? "true" : "false", f.read);
        st = absent ? store_kv_create(c->store, STORE_B_FOLLOWS, key, buf, (size_t)n, NULL, err)
                    : store_kv_update(c->store, STORE_B_FOLLOWS, key, buf, (size_t)n, rev, NULL, err);
        if (st != CH_ECONFLICT && st != CH_EEXIST)
            return st;
    }
    return ch_err_set(err, CH_EUNAVAIL, NULL, "the thread state kept changing; try again");
}

static bool
set_follow(struct follow *f, const void *arg)
{
    f->following = *(const bool *)arg;
    f->chosen = true;
    return true;
}

static bool
auto_follow(struct follow *f, const void *arg)
{
    (void)arg;
    if (f->following || f->chosen) /* following already, or unfollowed on purpose: leave it */
        return false;
    f->following = true;
    return true;
}

static bool
set_read(struct follow *f, const void *arg)
{
    uint64_t pos = *(const uint64_t *)arg;
    if (pos <= f->read)
        return false; /* read positions only move forward (two devices may race) */
    f->read = pos;
    return true;
}

void
chat_thread_autofollow(struct chat *c, const char *room, const char *root, const char *const *uids, size_t n)
{
    char key[3 * ID_MAX + 3];
    struct ch_err e = { 0 };

    for (size_t i = 0; i < n; i++)
        if (uids[i] && follow_key(uids[i], room, root, key, sizeof key))
            follow_change(c, key, auto_follow, NULL, &e); /* best effort: a failure only misses a follow */
}

/* The thread's root, checked under the model lock: who may see room, and root is a top-level message there. */
static enum ch_status
thread_check(struct chat *c, const struct user *who, const char *room, const char *root, uint64_t *last_pos,
             struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room, err)) != CH_OK ||
        (st = id_check("threadRootEventId", root, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK ||
        (st = chat_msg_ensure(c, room, root, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room, who, true, &r, &cm, err)) == CH_OK) {
        struct chat_msg *m = model_msg(r, root);
        const struct seqlist *l = map_get(r->threads, root);
        if (!m || !m->known || m->refused || m->thread_root[0])
            st = ch_err_set(err, CH_ENOTFOUND, "threadRootEventId", "no such thread in this room");
        else if (last_pos) {
            *last_pos = l && l->n ? l->v[l->n - 1]->pos : m->pos;
            if (l && l->cold.n && cold_list_pos(&l->cold, l->cold.n - 1) > *last_pos) /* (a quiet thread) */
                *last_pos = cold_list_pos(&l->cold, l->cold.n - 1);
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_follow_thread(struct chat *c, const struct user *who, const char *room, const char *root, bool follow,
                   cJSON **out, struct ch_err *err)
{
    char key[3 * ID_MAX + 3];
    enum ch_status st;

    if ((st = thread_check(c, who, room, root, NULL, err)) != CH_OK)
        return st;
    if (!follow_key(who->id, room, root, key, sizeof key))
        return ch_err_set(err, CH_EINVAL, "threadRootEventId", "not a valid id");
    if ((st = follow_change(c, key, set_follow, &follow, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(*out, "following", follow);
    return CH_OK;
}

enum ch_status
chat_mark_thread_read(struct chat *c, const struct user *who, const char *room, const char *root, const char *event,
                      cJSON **out, struct ch_err *err)
{
    char key[3 * ID_MAX + 3];
    uint64_t pos = 0;
    enum ch_status st;

    if ((st = chat_id_or_empty("eventId", event, err)) != CH_OK ||
        (st = thread_check(c, who, room, root, &pos, err)) != CH_OK ||
        (event && *event && (st = chat_msg_ensure(c, room, event, err)) != CH_OK)) /* (a reply of a quiet thread) */
        return st;
    if (event && *event) { /* up to that reply (one of this thread's) */
        pthread_rwlock_rdlock(&c->m->lock);
        struct chat_room *r = model_room(c->m, room);
        struct chat_msg *m = r ? model_msg(r, event) : NULL;
        bool ours = m && (!strcmp(m->thread_root, root) || !strcmp(m->id, root));
        if (ours)
            pos = m->pos;
        pthread_rwlock_unlock(&c->m->lock);
        if (!ours)
            return ch_err_set(err, CH_ENOTFOUND, "eventId", "no such reply in this thread");
    }
    if (!follow_key(who->id, room, root, key, sizeof key))
        return ch_err_set(err, CH_EINVAL, "threadRootEventId", "not a valid id");
    if ((st = follow_change(c, key, set_read, &pos, err)) != CH_OK)
        return st;
    *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(*out, "unreadCount", 0);
    return CH_OK;
}

struct followed {
    char room[ID_MAX + 1], root[ID_MAX + 1];
    struct follow f;
    int64_t last_reply_at;
};

static int
newest_reply_first(const void *a, const void *b)
{
    const struct followed *x = a, *y = b;
    return x->last_reply_at < y->last_reply_at ? 1 : x->last_reply_at > y->last_reply_at ? -1 : 0;
}

enum ch_status
chat_list_followed_threads(struct chat *c, const struct user *who, int limit, int offset, cJSON **out,
                           struct ch_err *err)
{
    char filter[ID_MAX + 4], **keys = NULL;
    size_t nkeys = 0, n = 0;
    struct followed *v;
    enum ch_status st;

    if (limit <= 0)
        limit = 50;
    snprintf(filter, sizeof filter, "%s.>", who->id);
    if ((st = sync_events(c, err)) != CH_OK ||
        (st = store_kv_keys(c->store, STORE_B_FOLLOWS, filter, &keys, &nkeys, err)) != CH_OK)
        return st;
    if (nkeys > FOLLOWS_LIST_MAX)
        nkeys = FOLLOWS_LIST_MAX;
    if (!(v = calloc(nkeys ? nkeys : 1, sizeof *v))) {
        store_kv_keys_free(keys);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < nkeys; i++) {
        uint64_t rev;
        const char *a = strchr(keys[i], '.'), *b = a ? strchr(a + 1, '.') : NULL;
        if (!b || follow_load(c, keys[i], &v[n].f, &rev, NULL) != CH_OK || !v[n].f.following)
            continue;
        snprintf(v[n].room, sizeof v[n].room, "%.*s", (int)(b - a - 1), a + 1);
        snprintf(v[n].root, sizeof v[n].root, "%s", b + 1);
        n++;
    }
    store_kv_keys_free(keys);
    for (size_t i = 0; i < n; i++) /* (a root nobody answered yet may be on the cold timeline) */
        chat_msg_ensure(c, v[i].room, v[i].root, NULL);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "threads");
    size_t shown = 0, total = 0, unread_threads = 0;
    struct body_fill bf = { 0 };
    pthread_rwlock_rdlock(&c->m->lock);
    for (size_t i = 0; i < n; i++) { /* still visible, still there */
        struct chat_room *r;
        struct chat_member *cm;
        struct chat_msg *root;
        if (chat_room_access(c, v[i].room, who, true, &r, &cm, NULL) != CH_OK || !(root = model_msg(r, v[i].root)) ||
            !root->known || root->refused) {
            v[i].last_reply_at = -1;
            continue;
        }
        v[i].last_reply_at = root->last_reply_at ? root->last_reply_at : root->created_at;
    }
    qsort(v, n ? n : 1, sizeof *v, newest_reply_first);
    for (size_t i = 0; i < n; i++) {
        struct chat_room *r;
        struct chat_member *cm;
        if (v[i].last_reply_at < 0 || chat_room_access(c, v[i].room, who, true, &r, &cm, NULL) != CH_OK)
            continue;
        struct chat_msg *root = model_msg(r, v[i].root);
        const struct seqlist *l = map_get(r->threads, v[i].root);
        size_t unread = 0;
        for (size_t k = l ? seqlist_after(l, v[i].f.read) : 0; l && k < l->n; k++)
            unread += !l->v[k]->deleted_at && strcmp(l->v[k]->author, who->id) != 0;
        if (l && l->cold.n) { /* the cold replies of a quiet thread: by author (none is deleted) */
            uint32_t me = model_author_find(c->m, who->id);
            for (size_t k = cold_list_after(&l->cold, v[i].f.read); k < l->cold.n; k++)
                unread += l->cold.author[k] != me;
        }
        unread_threads += unread > 0;
        if (total++ < (size_t)offset || shown >= (size_t)limit)
            continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "roomId", v[i].room);
        cJSON_AddStringToObject(t, "threadRootEventId", v[i].root);
        cJSON_AddItemToObject(t, "rootMessage", view_message(c->m, root, r->id, who->id, &bf));
        cJSON_AddNumberToObject(t, "replyCount", root->reply_count);
        cJSON_AddNumberToObject(t, "unreadCount", (double)unread);
        json_add_time(t, "lastActivityAt", v[i].last_reply_at);
        cJSON_AddItemToArray(arr, t);
        shown++;
    }
    pthread_rwlock_unlock(&c->m->lock);
    free(v);
    cJSON_AddNumberToObject(o, "unreadThreadCount", (double)unread_threads);
    view_add_page(o, total, (size_t)offset, shown);
    *out = o;
    return chat_bodies_finish(c, &bf, CH_OK, out, err);
}
