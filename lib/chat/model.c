/* SPDX-License-Identifier: MIT */
/*
 * The read model: rooms, members, messages, threads, reactions and read positions, rebuilt from the event stream
 * (replayed from the first event at start, then live). chat_model_apply runs on the follower thread only;
 * chat_model_user / chat_model_read on their watcher threads; all under the write lock. Malformed events are
 * counted and skipped: one bad record must not stop a server from starting.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "chat/chat_int.h"
#include "json/json.h"
#include "store/subject.h"

static const char *const role_names[] = { "member", "admin", "owner" };

const char *
room_role_str(enum room_role r)
{
    return (unsigned)r < 3 ? role_names[r] : "member";
}

static enum room_role
role_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, role_names[i]))
            return (enum room_role)i;
    return RROLE_MEMBER;
}

/* ---- lifetime ---- */

static void
msg_free(void *p)
{
    struct chat_msg *m = p;

    if (!m)
        return;
    free(m->mentions);
    free(m->attachments);
    for (size_t i = 0; i < m->nreactions; i++)
        free(m->reactions[i].users);
    free(m->reactions);
    if (m->body_seqs != &m->body_one)
        free(m->body_seqs);
    free(m);
}

static void
seqlist_free(void *p)
{
    struct seqlist *l = p;

    if (l) {
        free(l->v);
        free(l->cold.off);
        free(l->cold.author);
        free(l->cold.later);
    }
    free(l);
}

static void
room_free(void *p)
{
    struct chat_room *r = p;

    if (!r)
        return;
    map_free(r->members, free);
    map_free(r->threads, seqlist_free);
    map_free(r->msgs, msg_free);
    for (size_t i = 0; i < r->ntl; i++)
        free(r->tl[i]);
    free(r->tl);
    free(r->mentioned.v);
    free(r->pins);
    free(r->call.parts);
    free(r->cold.off);
    free(r->cold.author);
    free(r->cold.later);
    free(r);
}

/* A message that could not leave memory may now (unpinned, its files edited away): the next eviction pass of its
 * room or thread looks at it again (write lock). */
static void
coldable_again(struct chat_room *r, const struct chat_msg *msg)
{
    if (msg->thread_root[0]) {
        struct seqlist *l = map_get(r->threads, msg->thread_root);
        if (l)
            l->settled = false;
    } else {
        r->evict_scan = 0;
    }
}

/* An event on msg's subject applied at seq: its last; one more after the post unless it is the post; touch: not
 * an edit either. */
static void
msg_saw(struct chat_msg *msg, uint64_t seq, bool post, bool touch)
{
    msg->last_seq = seq;
    if (!post && msg->nlater < UINT8_MAX)
        msg->nlater++;
    msg->touched = msg->touched || touch;
}

/* Take msg out of r's pins (a message unpinned or deleted). */
static void
pin_drop(struct chat_room *r, struct chat_msg *msg)
{
    if (!msg->pinned)
        return;
    for (size_t i = 0; i < r->npins; i++)
        if (r->pins[i].msg == msg) {
            memmove(r->pins + i, r->pins + i + 1, (r->npins - i - 1) * sizeof *r->pins);
            r->npins--;
            break;
        }
    msg->pinned = false;
}

struct chat_model *
chat_model_new(size_t cache_bytes)
{
    struct chat_model *m = calloc(1, sizeof *m);

    if (!m)
        return NULL;
    pthread_rwlock_init(&m->lock, NULL);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->rooms = map_new();
    m->dms = map_new();
    m->users = map_new();
    m->logins = map_new();
    m->pending_reads = map_new();
    m->interned = map_new_borrowing(); /* each key is its value */
    m->author_ix = map_new_borrowing();
    m->bodies = body_cache_new(cache_bytes);
    if (!m->bodies || !m->rooms || !m->dms || !m->users || !m->logins || !m->pending_reads || !m->interned ||
        !m->author_ix) {
        chat_model_free(m);
        return NULL;
    }
    return m;
}

void
chat_model_free(struct chat_model *m)
{
    if (!m)
        return;
    map_free(m->rooms, room_free);
    map_free(m->dms, NULL);
    map_free(m->users, free);
    map_free(m->logins, NULL);
    map_free(m->pending_reads, free);
    map_free(m->author_ix, NULL);
    free(m->authors);
    map_free(m->interned, free);
    free(m->erase);
    body_cache_free(m->bodies);
    pthread_rwlock_destroy(&m->lock);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

/* ---- lookups ---- */

struct chat_room *
model_room(struct chat_model *m, const char *id)
{
    struct chat_room *r = id ? map_get(m->rooms, id) : NULL;

    return r && r->exists ? r : NULL;
}

struct chat_member *
model_member(struct chat_room *r, const char *uid)
{
    return r && uid ? map_get(r->members, uid) : NULL;
}

struct chat_msg *
model_msg(struct chat_room *r, const char *id)
{
    struct chat_msg *msg = r && id ? map_get(r->msgs, id) : NULL;

    return msg && msg->known ? msg : NULL;
}

const struct user *
model_user(struct chat_model *m, const char *id)
{
    return id ? map_get(m->users, id) : NULL;
}

size_t
model_tl_after(const struct chat_room *r, uint64_t p)
{
    size_t lo = 0, hi = r->ntl;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->tl[mid]->pos <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t
seqlist_after(const struct seqlist *l, uint64_t p)
{
    size_t lo = 0, hi = l->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->v[mid]->pos <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t
cold_list_after(const struct cold_list *c, uint64_t p)
{
    size_t lo = 0, hi = c->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cold_list_pos(c, mid) <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t
model_cold_after(const struct chat_room *r, uint64_t p)
{
    return cold_list_after(&r->cold, p);
}

uint32_t
model_author_find(const struct chat_model *m, const char *id)
{
    void *v = id ? map_get(m->author_ix, id) : NULL;

    return v ? (uint32_t)((uintptr_t)v - 1) : UINT32_MAX;
}

uint32_t
model_author_index(struct chat_model *m, const char *interned)
{
    uint32_t i = model_author_find(m, interned);
    bool oom = false;

    if (i != UINT32_MAX)
        return i;
    if (m->nauthors >= UINT32_MAX - 1)
        return UINT32_MAX;
    if (m->nauthors == m->capauthors) {
        size_t cap = m->capauthors ? m->capauthors * 2 : 64;
        const char **nv = realloc(m->authors, cap * sizeof *nv);
        if (!nv)
            return UINT32_MAX;
        m->authors = nv;
        m->capauthors = cap;
    }
    map_put(m->author_ix, interned, (void *)(uintptr_t)(m->nauthors + 1), &oom);
    if (oom)
        return UINT32_MAX;
    m->authors[m->nauthors] = interned;
    return (uint32_t)m->nauthors++;
}

static bool
cold_reserve(struct cold_list *c, size_t n)
{
    if (n <= c->cap)
        return true;
    size_t cap = c->cap ? c->cap : n < 8 ? n : 64; /* (a thread's: often a few replies; a room's grows) */
    while (cap < n)
        cap *= 2;
    uint32_t *p = realloc(c->off, cap * sizeof *p);
    if (!p)
        return false;
    c->off = p;
    uint32_t *a = realloc(c->author, cap * sizeof *a);
    if (!a)
        return false;
    c->author = a;
    if (c->later) {
        uint32_t *l = realloc(c->later, cap * sizeof *l);
        if (!l)
            return false;
        c->later = l;
    }
    c->cap = cap;
    return true;
}

/* Give c its array of later distances (its first rich entry), 0 for the entries it has (capacity reserved). */
static bool
cold_later_need(struct cold_list *c)
{
    if (!c->later)
        c->later = calloc(c->cap ? c->cap : 1, sizeof *c->later);
    return c->later != NULL;
}

static void cold_drop(struct chat_room *r, uint64_t pos);

/* Append pos (after every position in c), its author and later distance to c; base is c's when it is empty. */
static bool
cold_list_append(struct cold_list *c, uint64_t base, uint64_t pos, uint32_t author, uint32_t later)
{
    if (!c->n)
        c->base = base;
    if (pos < c->base || (c->n && cold_list_pos(c, c->n - 1) >= pos) || pos - c->base > UINT32_MAX ||
        !cold_reserve(c, c->n + 1) || (later && !cold_later_need(c)))
        return false;
    c->off[c->n] = (uint32_t)(pos - c->base);
    c->author[c->n] = author;
    if (c->later)
        c->later[c->n] = later;
    c->n++;
    return true;
}
static void thread_cold_drop(struct chat_room *r, struct seqlist *l, uint64_t pos);

bool
model_cold_append(struct chat_room *r, uint64_t pos, uint32_t author, uint32_t later)
{
    return cold_list_append(&r->cold, r->ntl && r->tl[0]->pos < pos ? r->tl[0]->pos : pos, pos, author, later);
}

bool
model_thread_cold_append(struct chat_room *r, struct seqlist *l, uint64_t base, uint64_t pos, uint32_t author,
                         uint32_t later)
{
    if (!cold_list_append(&l->cold, base, pos, author, later))
        return false;
    r->thread_cold++;
    return true;
}

/* ---- small helpers ---- */

static const char *
jstr(const cJSON *o, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(f) && f->valuestring ? f->valuestring : NULL;
}

static int64_t
jint(const cJSON *o, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

    if (cJSON_IsNumber(f))
        return (int64_t)f->valuedouble;
    if (cJSON_IsString(f) && f->valuestring)
        return strtoll(f->valuestring, NULL, 10);
    return 0;
}

static void
copy_id(char dst[ID_MAX + 1], const char *src)
{
    snprintf(dst, ID_MAX + 1, "%s", src && id_valid(src) ? src : "");
}

const char *
model_intern(struct chat_model *m, const char *id)
{
    char *v;
    bool oom = false;

    if (!id || !id_valid(id))
        return "";
    if ((v = map_get(m->interned, id)))
        return v;
    if (!(v = strdup(id)))
        return NULL;
    map_put(m->interned, v, v, &oom);
    if (oom) {
        free(v);
        return NULL;
    }
    return v;
}

/* model_intern, "" when out of memory (a reference then reads as absent rather than crash the follower). */
static const char *
intern(struct chat_model *m, const char *id)
{
    const char *v = model_intern(m, id);

    return v ? v : "";
}

bool
model_seqlist_append(struct seqlist *l, struct chat_msg *msg)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct chat_msg **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return false;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = msg;
    return true;
}

bool
model_seqlist_insert(struct seqlist *l, struct chat_msg *msg)
{
    size_t at = seqlist_after(l, msg->pos);

    if (!model_seqlist_append(l, msg))
        return false;
    memmove(l->v + at + 1, l->v + at, (l->n - 1 - at) * sizeof *l->v);
    l->v[at] = msg;
    return true;
}

static void
seqlist_remove(struct seqlist *l, const struct chat_msg *msg)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == msg) {
            memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
            l->n--;
            return;
        }
}

struct chat_item *
model_tl_insert(struct chat_room *r, uint64_t pos, enum item_kind kind)
{
    struct chat_item *it = calloc(1, sizeof *it);
    size_t at;

    if (!it)
        return NULL;
    it->id = it->actor = it->subject_user = "";
    if (r->ntl == r->captl) {
        size_t cap = r->captl ? r->captl * 2 : 16;
        struct chat_item **nv = realloc(r->tl, cap * sizeof *nv);
        if (!nv) {
            free(it);
            return NULL;
        }
        r->tl = nv;
        r->captl = cap;
    }
    it->pos = pos;
    it->kind = kind;
    /* live events append; replays of edited messages insert earlier */
    at = !r->ntl || r->tl[r->ntl - 1]->pos <= pos ? r->ntl : model_tl_after(r, pos);
    if (at < r->evict_scan) /* (an eviction pass must look at it) */
        r->evict_scan = at;
    memmove(r->tl + at + 1, r->tl + at, (r->ntl - at) * sizeof *r->tl);
    r->tl[at] = it;
    r->ntl++;
    return it;
}

/* A top-level message's timeline item, at its position (write lock). False when out of memory. */
static bool
tl_add_msg(struct chat_room *r, struct chat_msg *msg)
{
    struct chat_item *it = model_tl_insert(r, msg->pos, IT_MSG);

    if (!it)
        return false;
    it->id = msg->id;
    it->actor = msg->author;
    it->at = msg->created_at;
    it->msg = msg;
    return true;
}

struct chat_room *
model_room_get_or_new(struct chat_model *m, const char *id)
{
    struct chat_room *r = map_get(m->rooms, id);

    if (r)
        return r;
    if (!(r = calloc(1, sizeof *r)))
        return NULL;
    copy_id(r->id, id);
    r->members = map_new();
    r->msgs = map_new_borrowing(); /* keyed by the message's own id */
    r->threads = map_new_borrowing(); /* keyed by the interned root id */
    if (!r->members || !r->msgs || !r->threads) {
        room_free(r);
        return NULL;
    }
    map_put(m->rooms, id, r, NULL);
    return r;
}

/* (id: a valid id) */
struct chat_msg *
model_msg_get_or_new(struct chat_room *r, const char *id)
{
    struct chat_msg *msg = map_get(r->msgs, id);
    size_t len = strlen(id);
    bool oom = false;

    if (msg)
        return msg;
    if (!id_valid(id) || !(msg = calloc(1, sizeof *msg + len + 1)))
        return NULL;
    memcpy(msg->id, id, len + 1);
    msg->author = msg->thread_root = msg->in_reply_to = "";
    map_put(r->msgs, msg->id, msg, &oom);
    if (oom) {
        free(msg);
        return NULL;
    }
    return msg;
}

static void
erase_later(struct chat_model *m, uint64_t seq)
{
    body_cache_drop(m->bodies, seq);
    if (m->nerase == m->caperase) {
        size_t cap = m->caperase ? m->caperase * 2 : 16;
        uint64_t *nv = realloc(m->erase, cap * sizeof *nv);
        if (!nv)
            return;
        m->erase = nv;
        m->caperase = cap;
    }
    m->erase[m->nerase++] = seq;
}

/* Recount a thread root's live replies and latest reply time. */
static void
thread_summary(struct chat_room *r, const char *root_id)
{
    struct chat_msg *root = model_msg_get_or_new(r, root_id);
    struct seqlist *l = map_get(r->threads, root_id);

    if (!root)
        return;
    root->reply_count = 0;
    root->last_reply_at = 0;
    for (size_t i = 0; l && i < l->n; i++) {
        if (l->v[i]->deleted_at)
            continue;
        root->reply_count++;
        if (l->v[i]->created_at > root->last_reply_at)
            root->last_reply_at = l->v[i]->created_at;
    }
}

/* ---- change notifications ---- */

/* Whether the change an event makes is worth a frame: the start-up replay of history is nobody's news (realtime
 * drops it too), so its frames are not even built. Events of the replay are those below the sequence the follower
 * was at when it attached; from the first one past it (or any time later, e.g. a catch-up after a reconnect),
 * everything is news. Under the write lock. */
static bool
news(struct chat_model *m, uint64_t seq)
{
    if (!m->listener || m->quiet)
        return false;
    if (!atomic_load(&m->live)) {
        if (seq && seq < atomic_load(&m->replay_target))
            return false;
        if (seq)
            atomic_store(&m->live, true);
    }
    return true;
}

static void
notify(struct chat_model *m, struct chat_room *r, uint64_t seq, const char *type, cJSON *payload,
       const char *extra_user)
{
    const char **aud;
    size_t n = 0, it = 0;
    const char *key;

    if (!m->listener || !payload) {
        cJSON_Delete(payload);
        return;
    }
    aud = calloc(map_len(r->members) + 2, sizeof *aud);
    if (!aud) {
        cJSON_Delete(payload);
        return;
    }
    while (map_next(r->members, &it, &key, NULL))
        aud[n++] = key;
    if (extra_user && !map_get(r->members, extra_user))
        aud[n++] = extra_user;
    cJSON_AddStringToObject(payload, "type", type);
    cJSON_AddStringToObject(payload, "roomId", r->id);
    if (seq)
        json_add_int64_str(payload, "cursor", (int64_t)seq);
    struct chat_change c = { .seq = seq, .room_id = r->id, .type = type, .payload = payload, .audience = aud,
                             .naudience = n };
    m->listener(m->listener_ctx, &c);
    free(aud);
    cJSON_Delete(payload);
}

/* ---- applying events ---- */

static void
apply_room_created(struct chat_model *m, struct chat_room *r, uint64_t seq, const cJSON *ev, const char *actor,
                   int64_t at)
{
    const cJSON *room = cJSON_GetObjectItemCaseSensitive(ev, "room"), *mem;
    const char *vis = jstr(room, "visibility");
    struct chat_item *it;

    if (r->exists)
        return;
    r->exists = true;
    snprintf(r->name, sizeof r->name, "%s", jstr(room, "name") ? jstr(room, "name") : "");
    snprintf(r->description, sizeof r->description, "%s", jstr(room, "description") ? jstr(room, "description") : "");
    r->vis = vis && !strcmp(vis, "private") ? VIS_PRIVATE : vis && !strcmp(vis, "dm") ? VIS_DM : VIS_PUBLIC;
    r->created_at = at;
    copy_id(r->created_by, actor);
    if (jstr(room, "dmKey")) {
        snprintf(r->dm_key, sizeof r->dm_key, "%s", jstr(room, "dmKey"));
        map_put(m->dms, r->dm_key, r->id, NULL);
    }
    r->room_seq = seq;
    cJSON_ArrayForEach(mem, cJSON_GetObjectItemCaseSensitive(ev, "members"))
    {
        const char *u = jstr(mem, "user");
        struct chat_member *cm;
        if (!u || !id_valid(u) || map_get(r->members, u) || !(cm = calloc(1, sizeof *cm)))
            continue;
        copy_id(cm->user, u);
        cm->role = role_parse(jstr(mem, "role"));
        cm->joined_at = at;
        char key[2 * ID_MAX + 2];
        snprintf(key, sizeof key, "%s.%s", u, r->id);
        uint64_t *pending = map_del(m->pending_reads, key);
        if (pending) {
            cm->last_read = *pending;
            free(pending);
        }
        map_put(r->members, u, cm, NULL);
    }
    if ((it = model_tl_insert(r, seq, IT_ROOM_CREATED))) {
        it->id = intern(m, jstr(ev, "id"));
        it->actor = intern(m, actor);
        it->at = at;
    }
    if (news(m, seq)) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "room", view_room(r));
        notify(m, r, seq, "room.created", p, NULL);
    }
}

static void
apply_room_event(struct chat_model *m, struct chat_room *r, uint64_t seq, const char *type, const cJSON *ev,
                 const char *actor, int64_t at)
{
    enum item_kind kind;
    struct chat_item *it;

    if (!r->exists)
        return;
    r->room_seq = seq;
    if (!strcmp(type, "room.updated")) {
        if (jstr(ev, "name"))
            snprintf(r->name, sizeof r->name, "%s", jstr(ev, "name"));
        if (jstr(ev, "description"))
            snprintf(r->description, sizeof r->description, "%s", jstr(ev, "description"));
        kind = IT_ROOM_UPDATED;
    } else if (!strcmp(type, "room.archived")) {
        r->archived = true;
        kind = IT_ROOM_ARCHIVED;
    } else {
        r->archived = false;
        kind = IT_ROOM_UNARCHIVED;
    }
    if ((it = model_tl_insert(r, seq, kind))) {
        it->id = intern(m, jstr(ev, "id"));
        it->actor = intern(m, actor);
        it->at = at;
    }
    if (news(m, seq)) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "room", view_room(r));
        notify(m, r, seq, kind == IT_ROOM_UPDATED ? "room.updated" : "room.archived", p, NULL);
    }
}

static void
apply_member(struct chat_model *m, struct chat_room *r, uint64_t seq, const char *type, const cJSON *ev,
             const char *actor, int64_t at)
{
    const char *u = jstr(ev, "user");
    struct chat_member *cm;
    bool join = !strcmp(type, "member.joined") || !strcmp(type, "member.added");
    bool leave = !strcmp(type, "member.left") || !strcmp(type, "member.removed");
    struct chat_item *it;
    char key[2 * ID_MAX + 2];

    if (!r->exists || !u || !id_valid(u))
        return;
    cm = map_get(r->members, u);
    if (join) {
        if (cm) { /* already a member (a replay of a raced join): keep the first */
            cm->seq = seq;
            return;
        }
        if (!(cm = calloc(1, sizeof *cm)))
            return;
        copy_id(cm->user, u);
        cm->role = role_parse(jstr(ev, "role"));
        cm->joined_at = at;
        cm->seq = seq;
        snprintf(key, sizeof key, "%s.%s", u, r->id);
        uint64_t *pending = map_del(m->pending_reads, key);
        if (pending) {
            cm->last_read = *pending;
            free(pending);
        }
        map_put(r->members, u, cm, NULL);
    } else if (leave) {
        if (!cm)
            return;
        free(map_del(r->members, u));
    } else if (!strcmp(type, "member.role")) {
        if (cm) {
            cm->role = role_parse(jstr(ev, "role"));
            cm->seq = seq;
        }
        return; /* no timeline entry */
    } else {
        return;
    }
    if ((it = model_tl_insert(r, seq, join ? IT_JOINED : IT_LEFT))) {
        it->id = intern(m, jstr(ev, "id"));
        it->actor = intern(m, actor);
        it->subject_user = intern(m, u);
        it->at = at;
    }
    if (news(m, seq)) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "userId", u);
        cJSON_AddItemToObject(p, "room", view_room(r));
        notify(m, r, seq, join ? "member.joined" : "member.left", p, leave ? u : NULL);
    }
}

static void
set_list(struct chat_model *m, const char ***dst, size_t *n, const cJSON *arr)
{
    const cJSON *x;
    size_t cnt = 0, cap = (size_t)cJSON_GetArraySize(arr);

    free(*dst);
    *dst = NULL;
    *n = 0;
    if (!cap || !(*dst = calloc(cap, sizeof **dst)))
        return;
    cJSON_ArrayForEach(x, arr)
    {
        if (cJSON_IsString(x) && id_valid(x->valuestring))
            (*dst)[cnt++] = intern(m, x->valuestring);
    }
    *n = cnt;
}

static void
apply_message(struct chat_model *m, struct chat_room *r, uint64_t seq, const char *type, const cJSON *ev,
              const char *actor)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(ev, "msg");
    const char *id = jstr(j, "id");
    struct chat_msg *msg;
    bool posted = !strcmp(type, "msg.posted"), deleted = !strcmp(type, "msg.deleted");
    bool was_known, was_deleted;
    const char *body = NULL; /* the snapshot's */
    int64_t pos;

    (void)actor;
    if (!r->exists || !id || !id_valid(id) || !(msg = model_msg_get_or_new(r, id)))
        return;
    if (msg->refused) {
        erase_later(m, seq);
        return;
    }
    /* A process validates a post against its own model, which may trail the stream by a moment; the stream
     * order decides. A post ordered after its author left (or after the room was archived) is refused here,
     * the same way on every process, and the posting process reports it (chat_post checks model_msg). */
    if (posted && !msg->known && (r->archived || !model_member(r, jstr(j, "author")))) {
        msg->refused = true;
        erase_later(m, seq);
        return;
    }
    was_known = msg->known;
    was_deleted = msg->deleted_at != 0;
    pos = posted ? (int64_t)seq : jint(j, "pos");
    if (pos <= 0)
        pos = (int64_t)seq;
    msg_saw(msg, seq, posted && !was_known, deleted || (posted && was_known));
    if (!was_known) {
        msg->known = true;
        msg->pos = (uint64_t)pos;
        cold_drop(r, msg->pos); /* (a cold message whose post was erased before it could be brought back) */
        msg->author = intern(m, jstr(j, "author"));
        msg->created_at = jint(j, "createdAt");
        msg->thread_root = intern(m, jstr(j, "threadRoot"));
        msg->in_reply_to = intern(m, jstr(j, "inReplyTo"));
        if (msg->thread_root[0]) {
            struct seqlist *l = map_get(r->threads, msg->thread_root);
            if (!l && (l = calloc(1, sizeof *l)))
                map_put(r->threads, msg->thread_root, l, NULL);
            thread_cold_drop(r, l, msg->pos); /* (the same, of a cold reply) */
            if (l) {
                model_seqlist_insert(l, msg);
                l->settled = false;
            }
        } else {
            tl_add_msg(r, msg);
        }
    }
    if (deleted) {
        if (!msg->deleted_at) {
            msg->deleted_at = jint(j, "deletedAt") ? jint(j, "deletedAt") : 1;
            free(msg->attachments);
            msg->attachments = NULL;
            for (size_t i = 0; i < msg->nreactions; i++)
                free(msg->reactions[i].users);
            free(msg->reactions);
            msg->reactions = NULL;
            msg->nreactions = 0;
            if (msg->nmentions || msg->mention_all)
                seqlist_remove(&r->mentioned, msg);
            pin_drop(r, msg);
            free(msg->mentions);
            msg->mentions = NULL;
            msg->nmentions = 0;
            msg->mention_all = msg->mention_here = false;
        }
        /* whatever snapshot bytes we saw must go; the deleter erases them, this is the safety net */
        for (size_t i = 0; i < msg->nbody; i++)
            erase_later(m, msg->body_seqs[i]);
        if (msg->body_seqs != &msg->body_one)
            free(msg->body_seqs);
        msg->body_seqs = NULL;
        msg->nbody = 0;
    } else if (msg->deleted_at) {
        /* a snapshot older than its tombstone can only appear in a replay where erasure did not finish */
        erase_later(m, seq);
        return;
    } else {
        body = jstr(j, "body");
        if (!body)
            body = "";
        /* replaying history, only the newest bodies can stay in the cache (at most one per 64 bytes of it): the
         * older ones would be evicted again at once */
        uint64_t target = atomic_load(&m->replay_target);
        if (atomic_load(&m->live) || !target || seq + body_cache_max(m->bodies) / 64 >= target)
            body_cache_put(m->bodies, seq, body, strlen(body));
        if (!msg->nbody) { /* most messages are never edited: no array of their own */
            msg->body_one = seq;
            msg->body_seqs = &msg->body_one;
            msg->nbody = 1;
        } else {
            bool inline_one = msg->body_seqs == &msg->body_one;
            uint64_t *ns = realloc(inline_one ? NULL : msg->body_seqs, (msg->nbody + 1) * sizeof *ns);
            if (ns) {
                if (inline_one)
                    ns[0] = msg->body_one;
                msg->body_seqs = ns;
                msg->body_seqs[msg->nbody++] = seq;
            }
        }
        if (!posted)
            msg->edited_at = jint(j, "editedAt");
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(j, "attachments");
        bool had_files = msg->attachments != NULL;
        free(msg->attachments);
        msg->attachments = cJSON_IsArray(att) && cJSON_GetArraySize(att) > 0 ? cJSON_PrintUnformatted(att) : NULL;
        if (had_files && !msg->attachments)
            coldable_again(r, msg);
        bool had_mentions = msg->nmentions > 0 || msg->mention_all;
        set_list(m, &msg->mentions, &msg->nmentions, cJSON_GetObjectItemCaseSensitive(j, "mentions"));
        msg->mention_all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "mentionsAll"));
        msg->mention_here = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "mentionsHere"));
        bool has_mentions = msg->nmentions > 0 || msg->mention_all;
        if (has_mentions && !had_mentions)
            model_seqlist_insert(&r->mentioned, msg);
        else if (!has_mentions && had_mentions)
            seqlist_remove(&r->mentioned, msg);
        if (!msg->thread_root[0] && msg->created_at > r->last_activity)
            r->last_activity = msg->created_at;
    }
    if (msg->thread_root[0] && !was_known && !msg->deleted_at) {
        /* a new reply: counted on its own (a recount per reply made a long thread's replay quadratic) */
        struct chat_msg *root = model_msg_get_or_new(r, msg->thread_root);
        if (root) {
            root->reply_count++;
            if (msg->created_at > root->last_reply_at)
                root->last_reply_at = msg->created_at;
        }
    } else if (msg->thread_root[0] && msg->deleted_at && !was_deleted) {
        thread_summary(r, msg->thread_root); /* one fewer; the latest reply may have been this one */
    }
    if (news(m, seq)) {
        cJSON *p = cJSON_CreateObject();
        const char *t;
        if (deleted) {
            t = "message.deleted";
            cJSON_AddStringToObject(p, "eventId", msg->id);
            if (msg->thread_root[0])
                cJSON_AddStringToObject(p, "threadRootEventId", msg->thread_root);
        } else {
            t = was_known && !was_deleted ? "message.updated" : "message.created";
            cJSON *v = view_message(m, msg, r->id, NULL, NULL);
            if (body && !cJSON_GetObjectItemCaseSensitive(v, "body")) /* too big for the cache */
                cJSON_AddStringToObject(v, "body", body);
            cJSON_AddItemToObject(p, "message", v);
        }
        notify(m, r, seq, t, p, NULL);
        if (msg->thread_root[0]) {
            struct chat_msg *root = map_get(r->msgs, msg->thread_root);
            if (root) {
                cJSON *q = cJSON_CreateObject();
                cJSON_AddStringToObject(q, "threadRootEventId", root->id);
                cJSON_AddNumberToObject(q, "replyCount", root->reply_count);
                if (root->last_reply_at)
                    json_add_time(q, "lastReplyAt", root->last_reply_at);
                notify(m, r, seq, "thread.updated", q, NULL);
            }
        }
    }
}

static void
apply_pin(struct chat_model *m, struct chat_room *r, uint64_t seq, bool pin, const cJSON *ev, const char *actor,
          int64_t at)
{
    const char *id = jstr(ev, "msgId");
    struct chat_msg *msg;

    if (!r->exists || !id || !actor || !id_valid(actor) || !(msg = model_msg_get_or_new(r, id)))
        return;
    msg_saw(msg, seq, false, true);
    if (seq > r->pin_seq) /* (a restore replays older pins) */
        r->pin_seq = seq;
    if (msg->deleted_at || !msg->known || msg->refused || msg->pinned == pin)
        return;
    if (pin) {
        struct chat_pin *nv = realloc(r->pins, (r->npins + 1) * sizeof *nv);
        if (!nv)
            return;
        r->pins = nv;
        nv[r->npins].msg = msg;
        nv[r->npins].at = at;
        copy_id(nv[r->npins].by, actor);
        r->npins++;
        msg->pinned = true;
    } else {
        pin_drop(r, msg);
        coldable_again(r, msg);
    }
    if (news(m, seq)) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "message", view_message(m, msg, r->id, NULL, NULL));
        cJSON_AddStringToObject(p, "actorId", actor);
        notify(m, r, seq, pin ? "message.pinned" : "message.unpinned", p, NULL);
    }
}

static void
apply_reaction(struct chat_model *m, struct chat_room *r, uint64_t seq, bool add, const cJSON *ev, const char *actor)
{
    const char *id = jstr(ev, "msgId"), *emoji = jstr(ev, "emoji");
    struct chat_msg *msg;
    struct chat_reaction *rx = NULL;
    size_t i;

    if (!r->exists || !id || !emoji || !actor || !id_valid(actor) || strlen(emoji) > EMOJI_MAX_BYTES ||
        !(msg = model_msg_get_or_new(r, id)))
        return;
    msg_saw(msg, seq, false, true);
    if (msg->deleted_at)
        return;
    for (i = 0; i < msg->nreactions; i++)
        if (!strcmp(msg->reactions[i].emoji, emoji))
            rx = &msg->reactions[i];
    if (add) {
        if (!rx) {
            struct chat_reaction *nv = realloc(msg->reactions, (msg->nreactions + 1) * sizeof *nv);
            if (!nv)
                return;
            msg->reactions = nv;
            rx = &msg->reactions[msg->nreactions++];
            memset(rx, 0, sizeof *rx);
            snprintf(rx->emoji, sizeof rx->emoji, "%s", emoji);
        }
        for (i = 0; i < rx->n; i++)
            if (!strcmp(rx->users[i], actor))
                return; /* already there */
        const char **nu = realloc(rx->users, (rx->n + 1) * sizeof *nu);
        if (!nu)
            return;
        rx->users = nu;
        rx->users[rx->n++] = intern(m, actor);
    } else {
        if (!rx)
            return;
        for (i = 0; i < rx->n && strcmp(rx->users[i], actor); i++)
            ;
        if (i == rx->n)
            return;
        memmove(rx->users + i, rx->users + i + 1, (rx->n - i - 1) * sizeof *rx->users);
        rx->n--;
        if (rx->n == 0) {
            free(rx->users);
            size_t k = (size_t)(rx - msg->reactions);
            memmove(msg->reactions + k, msg->reactions + k + 1, (msg->nreactions - k - 1) * sizeof *rx);
            msg->nreactions--;
            rx = NULL;
        }
    }
    if (news(m, seq) && msg->known) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "eventId", msg->id);
        cJSON_AddStringToObject(p, "emoji", emoji);
        cJSON_AddStringToObject(p, "userId", actor);
        cJSON_AddNumberToObject(p, "count", rx ? (double)rx->n : 0);
        notify(m, r, seq, add ? "reaction.added" : "reaction.removed", p, NULL);
    }
}

/* An event on a message's subject (a post, edit, delete, reaction or pin), as the stream or a restore has it:
 * false if type is none of those. */
static bool
apply_msg_event(struct chat_model *m, struct chat_room *r, uint64_t seq, const char *type, const cJSON *ev,
                const char *actor, int64_t at)
{
    if (!strcmp(type, "msg.posted") || !strcmp(type, "msg.edited") || !strcmp(type, "msg.deleted"))
        apply_message(m, r, seq, type, ev, actor);
    else if (!strcmp(type, "reaction.added") || !strcmp(type, "reaction.removed"))
        apply_reaction(m, r, seq, type[9] == 'a', ev, actor);
    else if (!strcmp(type, "msg.pinned") || !strcmp(type, "msg.unpinned"))
        apply_pin(m, r, seq, type[4] == 'p', ev, actor, at);
    else
        return false;
    return true;
}

/* The room's call facts (calls.c): call.started {callId, user} starts a call with its first participant,
 * call.joined / call.left {callId, user} change who is in it, call.ended {callId} ends it. A fact for another
 * call than the active one changes nothing (it only moves the subject's sequence). */
static void
apply_call(struct chat_model *m, struct chat_room *r, uint64_t seq, const char *type, const cJSON *ev,
           const char *actor, int64_t at)
{
    const char *cid = jstr(ev, "callId"), *u = jstr(ev, "user");
    struct chat_call *call = &r->call;
    const char *frame = NULL;
    struct chat_item *it;
    size_t i;

    r->call_seq = seq;
    if (!r->exists || !cid || !id_valid(cid))
        return;
    if (!strcmp(type, "call.started")) {
        if (call->id[0] || !u || !id_valid(u) || !(call->parts = calloc(1, sizeof *call->parts)))
            return;
        copy_id(call->id, cid);
        copy_id(call->started_by, u);
        call->started_at = at;
        copy_id(call->parts[0].user, u);
        call->parts[0].joined_at = at;
        call->nparts = 1;
        if ((it = model_tl_insert(r, seq, IT_CALL_STARTED))) {
            it->id = intern(m, jstr(ev, "id"));
            it->actor = intern(m, actor && *actor ? actor : u);
            it->subject_user = intern(m, cid);
            it->at = at;
        }
        frame = "call.started";
    } else if (strcmp(cid, call->id)) {
        return;
    } else if (!strcmp(type, "call.joined")) {
        if (!u || !id_valid(u) || call->nparts >= CALL_PARTS_MAX)
            return;
        for (i = 0; i < call->nparts; i++)
            if (!strcmp(call->parts[i].user, u))
                return;
        struct chat_call_part *nv = realloc(call->parts, (call->nparts + 1) * sizeof *nv);
        if (!nv)
            return;
        call->parts = nv;
        copy_id(nv[call->nparts].user, u);
        nv[call->nparts].joined_at = at;
        call->nparts++;
        frame = "call.participant_joined";
    } else if (!strcmp(type, "call.left")) {
        for (i = 0; u && i < call->nparts && strcmp(call->parts[i].user, u); i++)
            ;
        if (!u || i == call->nparts)
            return;
        memmove(call->parts + i, call->parts + i + 1, (call->nparts - i - 1) * sizeof *call->parts);
        call->nparts--;
        frame = "call.participant_left";
    } else if (!strcmp(type, "call.ended")) {
        if ((it = model_tl_insert(r, seq, IT_CALL_ENDED))) {
            it->id = intern(m, jstr(ev, "id"));
            it->actor = intern(m, actor);
            it->subject_user = intern(m, cid);
            it->at = at;
        }
        free(call->parts);
        memset(call, 0, sizeof *call);
        frame = "call.ended";
    } else {
        return;
    }
    if (news(m, seq)) {
        cJSON *p = cJSON_CreateObject(), *v = view_call(m, r);
        cJSON_AddStringToObject(p, "callId", cid);
        if (u && id_valid(u))
            cJSON_AddStringToObject(p, "participantId", u);
        if (v)
            cJSON_AddItemToObject(p, "call", v);
        notify(m, r, seq, frame, p, NULL);
    }
}

/* ---- the cold timeline ---- */

#define THREAD_SWEEP_MS 30000 /* how often the sweep looks for quiet threads (at most: the idle time if shorter) */
#define COLD_HOLD_S 60 /* a message brought back stays in memory at least this long ... */
#define USE_HOLD_S 2   /* ... and one a command is about to look up, this long */

uint32_t
model_hold_until(bool for_long)
{
    return (uint32_t)(clock_mono_ms() / 1000) + (for_long ? COLD_HOLD_S : USE_HOLD_S);
}
/* Timeline items past the resident window that make an eviction pass: a quarter of the window, 1 to 64. */
#define EVICT_SLACK(w) ((w) / 4 > 64 ? 64 : (w) / 4 ? (w) / 4 : 1)

void
chat_model_set_resident(struct chat_model *m, size_t resident)
{
    m->resident = resident;
}

void
chat_model_set_idle(struct chat_model *m, int64_t idle_ms)
{
    m->idle_ms = idle_ms;
}

/* How many of r's newest top-level items stay in memory: the whole window while people post in it, a page once it
 * has been quiet for idle_ms (most rooms of a team, and every old DM, most of the time). A room that wakes up
 * grows back as it gets new messages; what left memory is read from the stream when shown. */
static size_t
room_window(const struct chat_model *m, const struct chat_room *r)
{
    if (m->idle_ms > 0 && m->resident > MODEL_IDLE_WINDOW && clock_wall_ms() - r->last_activity > m->idle_ms)
        return MODEL_IDLE_WINDOW;
    return m->resident;
}

/* Events on a rich message's subject beyond which it stays in memory: bringing one back reads them one round trip
 * each. Counted from its state (its reactions); reactions taken back and pins undone are not seen. */
#define COLD_RICH_EVENTS 32

/* Whether msg may leave memory for a cold list (a room's timeline, or with reply a thread's replies), and *rich:
 * whether its post is not all there is of it. A known message may unless it was deleted or refused, is pinned,
 * mentions anyone (mention counts read the model), carries files (so does the room's file list), starts a thread,
 * or was edited and also reacted to or pinned (an edit erases the versions before it, the post included: an edited
 * one is read from its last edit, a whole snapshot, which must then be all there is besides the post). A plain one
 * (no event on its subject after the post) is shown from its post alone; a rich one (*rich: reacted to, pinned
 * once, edited) is brought back from the events its subject still holds before it is shown (chat_model_restore).
 * Anything that happens to either later brings it back first (chat_model_apply's need). */
static bool
msg_coldable(const struct chat_room *r, const struct chat_msg *msg, bool reply, bool *rich)
{
    if (!msg->known || msg->refused || msg->deleted_at || !msg->nbody || msg->pinned || msg->nmentions ||
        msg->mention_all || msg->mention_here || !msg->thread_root[0] != !reply || msg->reply_count ||
        msg->last_reply_at || msg->attachments || map_get(r->threads, msg->id))
        return false;
    /* its body is in its post, or, edited and nothing else since, in its last edit: a whole snapshot that replaced
     * the post (an edit erases the versions before it) */
    if (msg->edited_at ? msg->touched || msg->body_seqs[msg->nbody - 1] != msg->last_seq
                       : msg->nbody != 1 || msg->body_seqs[0] != msg->pos)
        return false;
    *rich = msg->edited_at || msg->nreactions || msg->last_seq != msg->pos;
    if (*rich) {
        size_t events = 0;
        for (size_t i = 0; i < msg->nreactions && events <= COLD_RICH_EVENTS; i++)
            events += msg->reactions[i].n;
        if (events > COLD_RICH_EVENTS)
            return false;
    }
    return true;
}

/* The entries an eviction pass moves out of memory, before they are merged into a cold list. */
struct cold_out {
    uint64_t *pos;
    uint32_t *author, *later;
    size_t n;
    bool rich; /* one of them is */
};

static bool
cold_out_init(struct cold_out *o, size_t n)
{
    *o = (struct cold_out){ malloc(n * sizeof *o->pos), malloc(n * sizeof *o->author),
                            malloc(n * sizeof *o->later), 0, false };
    return o->pos && o->author && o->later;
}

static void
cold_out_free(struct cold_out *o)
{
    free(o->pos);
    free(o->author);
    free(o->later);
}

/* Out of memory into o, if it may: msg (at pos, by author index a), rich or not. */
static bool
cold_out_add(struct cold_out *o, const struct chat_msg *msg, uint32_t a, bool rich)
{
    if (rich && (msg->last_seq <= msg->pos || msg->last_seq - msg->pos >= COLD_LATER_ONE))
        return false;
    o->pos[o->n] = msg->pos;
    o->author[o->n] = a;
    /* the only event after the post, or the last edit, a whole snapshot, when that is all that came */
    bool one = msg->edited_at ? !msg->touched : msg->nlater == 1;
    o->later[o->n++] = rich ? (uint32_t)(msg->last_seq - msg->pos) | (one ? COLD_LATER_ONE : 0) : 0;
    o->rich = o->rich || rich;
    return true;
}

/* Merge o (sorted) into c, whose capacity is reserved (write lock); false (nothing merged) out of memory. */
static bool
cold_merge(struct cold_list *c, const struct cold_out *o)
{
    size_t i = c->n, j = o->n, k = c->n + o->n;

    if (o->rich && !cold_later_need(c))
        return false;
    while (j > 0) {
        if (i > 0 && cold_list_pos(c, i - 1) > o->pos[j - 1]) {
            c->off[k - 1] = c->off[i - 1];
            c->author[k - 1] = c->author[i - 1];
            if (c->later)
                c->later[k - 1] = c->later[i - 1];
            i--;
        } else {
            c->off[k - 1] = (uint32_t)(o->pos[j - 1] - c->base);
            c->author[k - 1] = o->author[j - 1];
            if (c->later)
                c->later[k - 1] = o->later[j - 1];
            j--;
        }
        k--;
    }
    c->n += o->n;
    return true;
}

/* Whether the thread of root (its replies l) has been quiet for the idle time and may have replies to move out. */
static bool
thread_due(const struct chat_model *m, const struct chat_msg *root, const struct seqlist *l, int64_t now)
{
    return m->resident && m->idle_ms > 0 && root && !l->settled && l->n &&
           now - (root->last_reply_at ? root->last_reply_at : root->created_at) > m->idle_ms;
}

/* Move the plain replies of a quiet thread out of memory (write lock); the root keeps its counts. */
static size_t
thread_evict(struct chat_model *m, struct chat_room *r, struct chat_msg *root, struct seqlist *l)
{
    uint32_t now = (uint32_t)(clock_mono_ms() / 1000);
    size_t w = 0, can = 0, rich_can = 0;
    bool settled = true, rich;
    struct cold_out o;

    for (size_t i = 0; i < l->n; i++)
        if (msg_coldable(r, l->v[i], true, &rich)) {
            can++;
            rich_can += rich;
        }
    if (!can || !cold_out_init(&o, can) || !cold_reserve(&l->cold, l->cold.n + can) ||
        (rich_can && !cold_later_need(&l->cold))) {
        if (can)
            cold_out_free(&o);
        l->settled = !can;
        return 0;
    }
    if (!l->cold.n)
        l->cold.base = root->pos;
    for (size_t i = 0; i < l->n; i++) {
        struct chat_msg *msg = l->v[i];
        uint32_t a;
        bool coldable = msg_coldable(r, msg, true, &rich);
        if (coldable && atomic_load_explicit(&msg->held_until, memory_order_relaxed) <= now &&
            msg->pos >= l->cold.base && msg->pos - l->cold.base <= UINT32_MAX &&
            (a = model_author_index(m, msg->author)) != UINT32_MAX && cold_out_add(&o, msg, a, rich)) {
            map_del(r->msgs, msg->id);
            msg_free(msg);
            continue;
        }
        settled = settled && !(coldable && atomic_load_explicit(&msg->held_until, memory_order_relaxed) > now);
        l->v[w++] = msg;
    }
    l->n = w;
    if (!w) { /* (the list of replies in memory is often empty now: give its array back) */
        free(l->v);
        l->v = NULL;
        l->cap = 0;
    }
    cold_merge(&l->cold, &o); /* (the replies brought back interleave with the cold ones; its arrays are there) */
    r->thread_cold += o.n;
    l->settled = settled;
    cold_out_free(&o);
    return o.n;
}

/* After a pass that moved many messages out (the threads of a quiet day at once, a snapshot of a process that kept
 * more): the allocator keeps what they took, scattered among what stays, unless told to hand free pages back. */
#define GIVE_BACK_MOVED 20000
static void
give_back(size_t moved)
{
    if (moved >= GIVE_BACK_MOVED)
        malloc_trim(0);
}

/* Whether r has grown past its window by the slack since the last pass (or, for a sweep, the last pass skipped
 * messages held for a moment). */
static bool
evict_due(const struct chat_model *m, const struct chat_room *r, bool sweep)
{
    size_t w = room_window(m, r);

    return m->resident && r->ntl > w && ((sweep && r->evict_held) || r->ntl > r->evict_kept + w + EVICT_SLACK(w));
}

/* Move the plain messages before r's resident window to its cold timeline (write lock). One brought back or used
 * lately stays for a while (held_until). */
static size_t
evict(struct chat_model *m, struct chat_room *r)
{
    size_t end = r->ntl - room_window(m, r), start = r->evict_scan < end ? r->evict_scan : end;
    size_t w = start, scan = start, held = 0;
    uint32_t now = (uint32_t)(clock_mono_ms() / 1000);
    bool settled = true; /* every item kept so far stays for good (what the next pass can skip) */
    struct cold_out o;

    if (end == start || !cold_reserve(&r->cold, r->cold.n + (end - start)))
        return 0;
    if (!r->cold.n)
        r->cold.base = r->tl[0]->pos; /* (the oldest item: no message of the room is older) */
    if (!cold_out_init(&o, end - start)) {
        cold_out_free(&o);
        return 0;
    }
    for (size_t i = start; i < end; i++) {
        struct chat_item *it = r->tl[i];
        struct chat_msg *msg = it->kind == IT_MSG ? it->msg : NULL;
        uint32_t a;
        bool rich = false;
        if (!msg || !msg_coldable(r, msg, false, &rich)) { /* (rarely may later: coldable_again) */
            if (settled)
                scan = w + 1;
        } else if (atomic_load_explicit(&msg->held_until, memory_order_relaxed) > now) {
            held++;
            settled = false;
        } else if (it->pos >= r->cold.base && it->pos - r->cold.base <= UINT32_MAX &&
                   (a = model_author_index(m, msg->author)) != UINT32_MAX && (!rich || cold_later_need(&r->cold)) &&
                   cold_out_add(&o, msg, a, rich)) {
            map_del(r->msgs, msg->id);
            msg_free(msg);
            free(it);
            continue;
        } else {
            settled = false;
        }
        r->tl[w++] = it;
    }
    memmove(r->tl + w, r->tl + end, (r->ntl - end) * sizeof *r->tl);
    r->ntl = w + (r->ntl - end);
    r->evict_kept = w;
    r->evict_held = held;
    r->evict_scan = scan;
    /* (usually an append: all of them are newer than the cold ones, unless some were brought back; the arrays are
     * there) */
    cold_merge(&r->cold, &o);
    cold_out_free(&o);
    return o.n;
}

void
chat_model_sweep(struct chat_model *m)
{
    size_t it = 0;
    const char *key;
    void *val;
    bool due = false;

    if (!m->resident)
        return;
    /* quiet threads are looked at every THREAD_SWEEP_MS (a room may have tens of thousands) */
    int64_t mono = clock_mono_ms(), now = clock_wall_ms();
    bool threads = m->idle_ms > 0 && mono - m->threads_swept_ms >= (m->idle_ms < THREAD_SWEEP_MS ? m->idle_ms
                                                                                                 : THREAD_SWEEP_MS);
    if (threads)
        m->threads_swept_ms = mono;
    /* (looked at under the read lock first: most ticks find nothing to do and block no reader) */
    pthread_rwlock_rdlock(&m->lock);
    while (!due && map_next(m->rooms, &it, &key, &val)) {
        struct chat_room *r = val;
        due = evict_due(m, r, true);
        size_t t = 0;
        const char *root;
        void *l;
        while (threads && !due && map_next(r->threads, &t, &root, &l))
            due = thread_due(m, map_get(r->msgs, root), l, now);
    }
    pthread_rwlock_unlock(&m->lock);
    if (!due)
        return;
    it = 0;
    size_t moved = 0;
    pthread_rwlock_wrlock(&m->lock);
    while (map_next(m->rooms, &it, &key, &val)) {
        struct chat_room *r = val;
        if (evict_due(m, r, true))
            moved += evict(m, r);
        size_t t = 0;
        const char *root;
        void *l;
        while (threads && map_next(r->threads, &t, &root, &l)) {
            struct chat_msg *rm = map_get(r->msgs, root);
            if (thread_due(m, rm, l, now))
                moved += thread_evict(m, r, rm, l);
        }
    }
    pthread_rwlock_unlock(&m->lock);
    give_back(moved);
}

/* Take position pos off a cold list, if it is there (write lock). */
static bool
cold_list_drop(struct cold_list *c, uint64_t pos)
{
    size_t k;

    if (!c->n || pos > cold_list_pos(c, c->n - 1) || !pos)
        return false;
    k = cold_list_after(c, pos - 1);
    if (k >= c->n || cold_list_pos(c, k) != pos)
        return false;
    memmove(c->off + k, c->off + k + 1, (c->n - k - 1) * sizeof *c->off);
    memmove(c->author + k, c->author + k + 1, (c->n - k - 1) * sizeof *c->author);
    if (c->later)
        memmove(c->later + k, c->later + k + 1, (c->n - k - 1) * sizeof *c->later);
    c->n--;
    return true;
}

static void
cold_drop(struct chat_room *r, uint64_t pos)
{
    cold_list_drop(&r->cold, pos);
}

/* ... off a thread's cold replies. */
static void
thread_cold_drop(struct chat_room *r, struct seqlist *l, uint64_t pos)
{
    if (l && cold_list_drop(&l->cold, pos))
        r->thread_cold--;
}

/* The message an event is about, when it is on r's cold timeline (so it must be brought back first); NULL if none.
 * Write lock. */
static const char *
cold_target(struct chat_room *r, const char *type, const cJSON *ev)
{
    const char *id = NULL;
    const struct chat_msg *msg;

    if (!r->cold.n && !r->thread_cold)
        return NULL;
    if (!strcmp(type, "msg.edited") || !strcmp(type, "msg.deleted"))
        id = jstr(cJSON_GetObjectItemCaseSensitive(ev, "msg"), "id");
    else if (!strncmp(type, "reaction.", 9) || !strcmp(type, "msg.pinned") || !strcmp(type, "msg.unpinned"))
        id = jstr(ev, "msgId");
    else if (!strcmp(type, "msg.posted")) { /* a reply: its root, and the message it answers (its author hears) */
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(ev, "msg");
        const char *root = jstr(j, "threadRoot"), *quoted = jstr(j, "inReplyTo");
        if (root && *root && id_valid(root) && !((msg = map_get(r->msgs, root)) && msg->known))
            return root;
        id = quoted;
    }
    if (!id || !*id || !id_valid(id))
        return NULL;
    msg = map_get(r->msgs, id);
    return msg && msg->known ? NULL : id;
}

/* A message back from its post j at seq: what the post says (before it is put in its place) ... */
static void
restore_from_post(struct chat_model *m, struct chat_msg *msg, const cJSON *j, uint64_t seq)
{
    msg->pos = seq;
    msg->author = intern(m, jstr(j, "author"));
    msg->created_at = jint(j, "createdAt");
    msg->in_reply_to = intern(m, jstr(j, "inReplyTo"));
}

/* ... and once it is there: known, its body (that of the post, or of the edit at seq that replaced it), held in
 * memory a while. */
static void
restore_known(struct chat_model *m, struct chat_msg *msg, const cJSON *j, uint64_t seq, bool edit)
{
    const char *body = jstr(j, "body");

    msg->known = true;
    if (edit) {
        msg->edited_at = jint(j, "editedAt");
        msg->nlater = 1; /* (what there is after the post now: this edit) */
    }
    atomic_store_explicit(&msg->held_until, model_hold_until(true), memory_order_relaxed);
    msg->body_one = seq;
    msg->body_seqs = &msg->body_one;
    msg->nbody = 1;
    if (msg->last_seq < seq)
        msg->last_seq = seq;
    if (body)
        body_cache_put(m->bodies, seq, body, strlen(body));
}

/* The later events of a rich message brought back (write lock): what the model applied of them before it left
 * memory, as then, and nobody's news. One the model has not applied yet is the follower's to apply. */
static void
restore_later(struct chat_model *m, struct chat_room *r, struct chat_msg *msg, const struct chat_event_ref *later,
              size_t n)
{
    m->quiet = true;
    for (size_t i = 0; i < n; i++) {
        if (later[i].seq <= msg->last_seq || later[i].seq > m->state_seq)
            continue;
        cJSON *ev = cJSON_ParseWithLength(later[i].data, later[i].len);
        const char *type = jstr(ev, "type");
        if (type && strcmp(type, "msg.posted")) /* (the post is the base) */
            apply_msg_event(m, r, later[i].seq, type, ev, jstr(ev, "actor"), jint(ev, "at"));
        cJSON_Delete(ev);
    }
    m->quiet = false;
}

/* The position of the message whose base event ev (at seq) is: its post's, or the one the edit that replaced the
 * post names; 0 if ev is neither. */
static uint64_t
base_pos(const cJSON *ev, uint64_t seq)
{
    const char *type = jstr(ev, "type");
    int64_t pos = jint(cJSON_GetObjectItemCaseSensitive(ev, "msg"), "pos");

    if (type && !strcmp(type, "msg.posted"))
        return seq;
    return type && !strcmp(type, "msg.edited") && pos > 0 && (uint64_t)pos <= seq ? (uint64_t)pos : 0;
}

/* r's cold entry at pos: on its timeline (*l NULL), or else among the cold replies of the thread of root; its list
 * and index (*k), NULL if there is none. Either lock. */
static struct cold_list *
cold_find(struct chat_room *r, uint64_t pos, const char *root, struct seqlist **l, size_t *k)
{
    struct cold_list *c = &r->cold;

    *l = NULL;
    *k = cold_list_after(c, pos - 1);
    if (*k < c->n && cold_list_pos(c, *k) == pos)
        return c;
    if (!r->thread_cold || !root || !id_valid(root) || !(*l = map_get(r->threads, root)))
        return NULL;
    c = &(*l)->cold;
    *k = cold_list_after(c, pos - 1);
    return *k < c->n && cold_list_pos(c, *k) == pos ? c : NULL;
}

bool
chat_model_restore(struct chat_model *m, uint64_t seq, const char *subject, const char *data, size_t len,
                   const struct chat_event_ref *later, size_t nlater)
{
    cJSON *ev = cJSON_ParseWithLength(data, len);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(ev, "msg");
    const char *id = jstr(j, "id"), *root = jstr(j, "threadRoot");
    uint64_t pos = base_pos(ev, seq);
    bool done = false, edit = pos && pos != seq;
    struct store_event_subject subj;
    struct chat_room *r;
    struct chat_msg *msg = NULL;
    struct seqlist *l;
    size_t k;

    if (!pos || !store_subject_event_parse(subject, &subj) || subj.kind != STORE_EV_MESSAGE || !id ||
        strcmp(id, subj.id)) {
        cJSON_Delete(ev);
        return false;
    }
    pthread_rwlock_wrlock(&m->lock);
    r = model_room(m, subj.room);
    if (r && cold_find(r, pos, root, &l, &k)) {
        msg = map_get(r->msgs, id);
        if ((!msg || !msg->known) && (msg = model_msg_get_or_new(r, id))) {
            /* its snapshot says all there is but what the later events did (no files, mentions or thread) */
            restore_from_post(m, msg, j, pos);
            if (l)
                msg->thread_root = intern(m, root);
            if ((done = l ? model_seqlist_insert(l, msg) : tl_add_msg(r, msg))) {
                restore_known(m, msg, j, seq, edit);
                if (l)
                    l->settled = false;
            }
        }
        if (done || (msg && msg->known)) { /* (known: it is back already; the entry must not show it twice) */
            if (l)
                thread_cold_drop(r, l, pos);
            else
                cold_drop(r, pos);
        }
    }
    if (done && nlater)
        restore_later(m, r, msg, later, nlater);
    pthread_rwlock_unlock(&m->lock);
    cJSON_Delete(ev);
    return done;
}

uint64_t
chat_model_cold_last(struct chat_model *m, uint64_t seq, const char *subject, const char *data, size_t len,
                     bool *one)
{
    struct store_event_subject subj;
    uint64_t last = 0;
    struct seqlist *l;
    size_t k;

    *one = false;
    if (!store_subject_event_parse(subject, &subj) || subj.kind != STORE_EV_MESSAGE)
        return 0;
    cJSON *ev = cJSON_ParseWithLength(data, len);
    uint64_t pos = base_pos(ev, seq);
    pthread_rwlock_rdlock(&m->lock);
    struct chat_room *r = model_room(m, subj.room);
    const struct cold_list *c =
        r && pos ? cold_find(r, pos, jstr(cJSON_GetObjectItemCaseSensitive(ev, "msg"), "threadRoot"), &l, &k) : NULL;
    if (c && cold_list_rich(c, k)) {
        last = cold_list_last(c, k);
        *one = cold_list_one(c, k);
    }
    pthread_rwlock_unlock(&m->lock);
    cJSON_Delete(ev);
    return last;
}

static void wake_waiters(struct chat_model *m);

bool
chat_model_apply(struct chat_model *m, uint64_t seq, const char *subject, const char *data, size_t len, int64_t ms,
                 char *need)
{
    cJSON *ev = cJSON_ParseWithLength(data, len);
    const char *type = jstr(ev, "type"), *actor = jstr(ev, "actor");
    struct store_event_subject subj;
    int64_t at;

    /* the subject names the room (store/subject.h); what happened is the event's type */
    if (!store_subject_event_parse(subject, &subj) || !type) {
        atomic_fetch_add(&m->bad_events, 1);
        goto done_unlocked;
    }
    at = jint(ev, "at") ? jint(ev, "at") : ms;

    pthread_rwlock_wrlock(&m->lock);
    struct chat_room *r = model_room_get_or_new(m, subj.room);
    const char *cold = need && r ? cold_target(r, type, ev) : NULL;
    if (cold) { /* not applied: the caller brings the message back first */
        snprintf(need, ID_MAX + 1, "%s", cold);
        pthread_rwlock_unlock(&m->lock);
        cJSON_Delete(ev);
        return false;
    }
    if (!r)
        atomic_fetch_add(&m->bad_events, 1);
    else if (!strcmp(type, "room.created"))
        apply_room_created(m, r, seq, ev, actor, at);
    else if (!strcmp(type, "room.updated") || !strcmp(type, "room.archived") || !strcmp(type, "room.unarchived"))
        apply_room_event(m, r, seq, type, ev, actor, at);
    else if (!strncmp(type, "member.", 7))
        apply_member(m, r, seq, type, ev, actor, at);
    else if (apply_msg_event(m, r, seq, type, ev, actor, at))
        ;
    else if (subj.kind == STORE_EV_CALL && !strncmp(type, "call.", 5))
        apply_call(m, r, seq, type, ev, actor, at);
    else
        atomic_fetch_add(&m->bad_events, 1);
    if (seq > m->state_seq)
        m->state_seq = seq;
    if (r && evict_due(m, r, false))
        evict(m, r);
    pthread_rwlock_unlock(&m->lock);
done_unlocked:
    cJSON_Delete(ev);
    pthread_mutex_lock(&m->mu);
    if (seq > m->applied)
        m->applied = seq;
    wake_waiters(m);
    pthread_mutex_unlock(&m->mu);
    return true;
}

/* ---- a snapshot's state ---- */

void
chat_model_adopt(struct chat_model *m, struct chat_model *from, uint64_t seq)
{
    struct map *t;
    size_t it = 0, n = 0;
    const char *key;
    void *val;
    char **keys;

    pthread_rwlock_wrlock(&m->lock);
#define SWAP(f)                                                                                                        \
    do {                                                                                                               \
        t = m->f;                                                                                                      \
        m->f = from->f;                                                                                                \
        from->f = t;                                                                                                   \
    } while (0)
    SWAP(rooms);
    SWAP(dms);
    SWAP(interned);
    SWAP(author_ix);
#undef SWAP
    {
        const char **a = m->authors;
        size_t n1 = m->nauthors, c1 = m->capauthors;
        m->authors = from->authors;
        m->nauthors = from->nauthors;
        m->capauthors = from->capauthors;
        from->authors = a;
        from->nauthors = n1;
        from->capauthors = c1;
    }
    free(m->erase);
    m->erase = from->erase;
    m->nerase = from->nerase;
    m->caperase = from->caperase;
    from->erase = NULL;
    from->nerase = from->caperase = 0;
    m->state_seq = seq;
    /* a snapshot written by a process that keeps more in memory than this one */
    it = 0;
    while (m->resident && map_next(m->rooms, &it, &key, &val)) {
        struct chat_room *r = val;
        if (evict_due(m, r, false))
            evict(m, r);
    }
    it = 0;
    /* read positions the watcher brought before the members existed */
    keys = calloc(map_len(m->pending_reads) + 1, sizeof *keys);
    while (keys && map_next(m->pending_reads, &it, &key, &val)) {
        const char *dot = strchr(key, '.');
        struct chat_room *r = dot ? map_get(m->rooms, dot + 1) : NULL;
        char uid[ID_MAX + 1];
        if (!r || (size_t)(dot - key) > ID_MAX)
            continue;
        snprintf(uid, sizeof uid, "%.*s", (int)(dot - key), key);
        struct chat_member *cm = map_get(r->members, uid);
        if (cm) {
            if (*(uint64_t *)val > cm->last_read)
                cm->last_read = *(uint64_t *)val;
            keys[n++] = strdup(key);
        }
    }
    for (size_t i = 0; keys && i < n; i++) {
        if (keys[i])
            free(map_del(m->pending_reads, keys[i]));
        free(keys[i]);
    }
    free(keys);
    pthread_rwlock_unlock(&m->lock);
    pthread_mutex_lock(&m->mu);
    if (seq > m->applied)
        m->applied = seq;
    wake_waiters(m);
    pthread_mutex_unlock(&m->mu);
}

/* ---- users and read positions ---- */

void
chat_model_user(struct chat_model *m, const char *id, const char *json, size_t len, uint64_t rev)
{
    if (id) {
        struct user *u = NULL, *old;
        if (json && (u = malloc(sizeof *u)) && user_parse(json, len, u) != CH_OK) {
            free(u);
            u = NULL;
        }
        if (u)
            explicit_bzero(u->password_hash, sizeof u->password_hash);
        pthread_rwlock_wrlock(&m->lock);
        old = map_get(m->users, id);
        if (old)
            map_del(m->logins, old->login);
        if (u) {
            map_put(m->users, id, u, NULL);
            map_put(m->logins, u->login, u->id, NULL);
        } else {
            map_del(m->users, id);
        }
        /* a status or presence choice changed: the user's own devices follow it, and realtime refreshes what the
         * sockets that show this user know of them (their custom status rides on presence frames) */
        if (old && u && m->listener &&
            (strcmp(old->status_emoji, u->status_emoji) || strcmp(old->status_text, u->status_text) ||
             old->status_expires != u->status_expires || strcmp(old->presence, u->presence) ||
             strcmp(old->display_name, u->display_name) || strcmp(old->avatar, u->avatar))) {
            cJSON *p = cJSON_CreateObject();
            const char *aud[1] = { u->id };
            cJSON_AddStringToObject(p, "type", "user.updated");
            cJSON_AddStringToObject(p, "userId", u->id);
            cJSON_AddItemToObject(p, "user", user_to_json(u, true));
            struct chat_change c = { .room_id = "", .type = "user.updated", .payload = p, .audience = aud,
                                     .naudience = 1 };
            m->listener(m->listener_ctx, &c);
            cJSON_Delete(p);
        }
        free(old);
        pthread_rwlock_unlock(&m->lock);
    }
    pthread_mutex_lock(&m->mu);
    if (!id)
        m->users_loaded = true;
    if (rev > m->users_rev)
        m->users_rev = rev;
    wake_waiters(m);
    pthread_mutex_unlock(&m->mu);
}

void
chat_model_read(struct chat_model *m, const char *key, const char *val, size_t len, uint64_t rev)
{
    if (key && val) {
        char uid[ID_MAX + 1], room[ID_MAX + 1], buf[32];
        const char *dot = strchr(key, '.');
        uint64_t pos;

        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), val);
        pos = strtoull(buf, NULL, 10);
        if (dot && (size_t)(dot - key) <= ID_MAX && strlen(dot + 1) <= ID_MAX) {
            snprintf(uid, sizeof uid, "%.*s", (int)(dot - key), key);
            snprintf(room, sizeof room, "%s", dot + 1);
            pthread_rwlock_wrlock(&m->lock);
            struct chat_room *r = map_get(m->rooms, room);
            struct chat_member *cm = r ? map_get(r->members, uid) : NULL;
            if (cm) {
                if (pos > cm->last_read) {
                    cm->last_read = pos;
                    if (m->listener) {
                        cJSON *p = cJSON_CreateObject();
                        json_add_int64_str(p, "lastReadCursor", (int64_t)pos);
                        /* only the reader's own devices care */
                        const char *aud[1] = { uid };
                        cJSON_AddStringToObject(p, "type", "read.updated");
                        cJSON_AddStringToObject(p, "roomId", r->id);
                        struct chat_change c = { .room_id = r->id, .type = "read.updated", .payload = p,
                                                 .audience = aud, .naudience = 1 };
                        m->listener(m->listener_ctx, &c);
                        cJSON_Delete(p);
                    }
                }
            } else {
                /* the member event has not arrived yet (reads and events come on different streams) */
                uint64_t *v = malloc(sizeof *v);
                if (v) {
                    *v = pos;
                    free(map_put(m->pending_reads, key, v, NULL));
                }
            }
            pthread_rwlock_unlock(&m->lock);
        }
    }
    pthread_mutex_lock(&m->mu);
    if (!key)
        m->reads_loaded = true;
    if (rev > m->reads_rev)
        m->reads_rev = rev;
    wake_waiters(m);
    pthread_mutex_unlock(&m->mu);
}

/* ---- waiting ---- */

/* A thread waiting until a progress field reaches a target. Each has its own condition variable: with one shared
 * by all, every applied event woke every waiting request (eight posts in flight: eight wake-ups per event, seven
 * of them for nothing). */
struct model_waiter {
    const uint64_t *field;
    uint64_t target;
    pthread_cond_t cv;
    struct model_waiter *next;
};

/* After a progress field moved (m->mu held): wake the waiters it satisfies. */
static void
wake_waiters(struct chat_model *m)
{
    for (struct model_waiter *w = m->waiters; w; w = w->next)
        if (*w->field >= w->target)
            pthread_cond_signal(&w->cv);
}

static bool
wait_for(struct chat_model *m, uint64_t *field, uint64_t target, int64_t timeout_ms)
{
    struct timespec ts = clock_deadline(timeout_ms);
    struct model_waiter w = { .field = field, .target = target };
    bool ok;

    pthread_mutex_lock(&m->mu);
    if (*field >= target) {
        pthread_mutex_unlock(&m->mu);
        return true;
    }
    pthread_cond_init(&w.cv, NULL);
    w.next = m->waiters;
    m->waiters = &w;
    while (*field < target)
        if (pthread_cond_timedwait(&w.cv, &m->mu, &ts) != 0)
            break;
    ok = *field >= target;
    for (struct model_waiter **p = &m->waiters; *p; p = &(*p)->next)
        if (*p == &w) {
            *p = w.next;
            break;
        }
    pthread_mutex_unlock(&m->mu);
    pthread_cond_destroy(&w.cv);
    return ok;
}

bool
chat_model_wait(struct chat_model *m, uint64_t seq, int64_t timeout_ms)
{
    return wait_for(m, &m->applied, seq, timeout_ms);
}

bool
chat_model_wait_users(struct chat_model *m, uint64_t rev, int64_t timeout_ms)
{
    return wait_for(m, &m->users_rev, rev, timeout_ms);
}

bool
chat_model_wait_reads(struct chat_model *m, uint64_t rev, int64_t timeout_ms)
{
    return wait_for(m, &m->reads_rev, rev, timeout_ms);
}

uint64_t
chat_model_applied(struct chat_model *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t v = m->applied;
    pthread_mutex_unlock(&m->mu);
    return v;
}

void
chat_model_take_erasures(struct chat_model *m, uint64_t **v, size_t *n)
{
    pthread_rwlock_wrlock(&m->lock);
    *v = m->erase;
    *n = m->nerase;
    m->erase = NULL;
    m->nerase = m->caperase = 0;
    pthread_rwlock_unlock(&m->lock);
}
