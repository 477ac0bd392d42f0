/* SPDX-License-Identifier: MIT */
/*
 * Read-model snapshots: a process starts from the newest snapshot and follows only the events after it, instead
 * of replaying CHATTO_EVENTS from the first event.
 *
 * What a snapshot holds: the model's rooms (members, messages, timelines, pins, calls) as they were after event S,
 * and the erase backlog. Never a message body (bodies stay in the stream, and a deleted one is erased there), and
 * nothing of the users directory, credentials or read positions' source (KV buckets the process watches anyway).
 * The format is binary (varints, a table of repeated ids), versioned, and names S and a hash of event S: a
 * snapshot whose event S is not in this stream as it was (a stream reset or restored without it) is not used.
 *
 * Writing: one process at a time (the lease "projection-snapshot") encodes its model once at least
 * core.projection_snapshot_events events were applied since the last snapshot, and puts it as the object
 * "model" of PROJECTION_SNAPSHOTS (the object store ages out what is not rewritten within
 * core.projection_snapshot_retention; it is rewritten at half that age). The previous object's chunks are erased.
 * Encoding a large model takes seconds, and the follower cannot apply events meanwhile (requests waiting for their
 * writes would time out), so the writer forks: the child gets a copy-on-write image of the model taken under the
 * read lock, which is held only for the fork itself, encodes it and pipes the bytes back (as Redis's BGSAVE
 * does). The child runs nothing but the encoder (malloc is fork-safe in glibc; no other lock, no I/O but the
 * pipe, signals blocked, killed with its parent). If the fork fails, the writer encodes under the lock.
 * Loading: the follower's prepare hook, on the store's keeper thread before the first subscription. Any doubt
 * (missing, unreadable, another stream, another format) falls back to replaying the whole stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "chat/chat_int.h"
#include "log/log.h"
#include "store/store.h"

#define SNAP_MAGIC "CHATSNAP"
#define SNAP_FORMAT 4 /* 2: rooms end with their cold timeline; 3: and their quiet threads' cold replies; 4: cold
                       * entries say whether they are rich, and where their last event is; 1-3 are still read */
#define SNAP_OBJECT "model"
#define SNAP_LEASE "projection-snapshot"
#define SNAP_CHUNK (512u * 1024u)
#define SNAP_CHECK_MS 1000

/* ---- encoding ---- */

/* The string table while encoding: interned ids are one copy each, so they are told apart by address (open
 * addressing on the pointer; no string is hashed or compared). */
struct reftab {
    const char **keys;
    uint64_t *idx;
    size_t cap, n;
};

struct wbuf {
    unsigned char *p;
    size_t n, cap;
    bool oom, bad;
    struct reftab refs;
    const char *const *authors; /* the model's author table (cold timelines) */
};

static size_t
ref_slot(const struct reftab *t, const char *s)
{
    uint64_t h = (uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 20) & (t->cap - 1);

    while (t->keys[i] && t->keys[i] != s)
        i = (i + 1) & (t->cap - 1);
    return i;
}

/* The index of s (2..), or 0 after adding it with the next one. */
static uint64_t
ref_find_or_add(struct wbuf *b, const char *s)
{
    struct reftab *t = &b->refs;

    if (t->n * 2 >= t->cap) {
        struct reftab nt = { .cap = t->cap ? t->cap * 2 : 4096, .n = t->n };
        nt.keys = calloc(nt.cap, sizeof *nt.keys);
        nt.idx = calloc(nt.cap, sizeof *nt.idx);
        if (!nt.keys || !nt.idx) {
            free(nt.keys);
            free(nt.idx);
            b->oom = true;
            return 1;
        }
        for (size_t i = 0; i < t->cap; i++)
            if (t->keys[i]) {
                size_t k = ref_slot(&nt, t->keys[i]);
                nt.keys[k] = t->keys[i];
                nt.idx[k] = t->idx[i];
            }
        free(t->keys);
        free(t->idx);
        *t = nt;
    }
    size_t i = ref_slot(t, s);
    if (t->keys[i])
        return t->idx[i];
    t->keys[i] = s;
    t->idx[i] = ++t->n + 1; /* indexes 2.. (1 is "") */
    return 0;
}

static void
w_bytes(struct wbuf *b, const void *v, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

static void
w_u64(struct wbuf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;

    do {
        t[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    w_bytes(b, t, n);
}

static void
w_i64(struct wbuf *b, int64_t v)
{
    w_u64(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void
w_str(struct wbuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    w_u64(b, n);
    w_bytes(b, s, n);
}

/* An id that repeats (authors, actors, users): its index in the table, or 0 and the id, which takes the next. */
/* An interned id (what messages and timeline items refer to); the model's fixed-size id copies go as strings. */
static void
w_ref(struct wbuf *b, const char *s)
{
    uint64_t i;

    if (!s || !*s) {
        w_u64(b, 1);
        return;
    }
    if ((i = ref_find_or_add(b, s))) {
        w_u64(b, i);
        return;
    }
    w_u64(b, 0);
    w_str(b, s);
}

static void
w_msg(struct wbuf *b, const struct chat_msg *msg)
{
    w_str(b, msg->id);
    w_ref(b, msg->author);
    w_u64(b, msg->pos);
    w_i64(b, msg->created_at);
    w_i64(b, msg->edited_at);
    w_i64(b, msg->deleted_at);
    w_ref(b, msg->thread_root);
    w_ref(b, msg->in_reply_to);
    w_u64(b, msg->nmentions);
    for (size_t i = 0; i < msg->nmentions; i++)
        w_ref(b, msg->mentions[i]);
    w_u64(b, (uint64_t)msg->mention_all | (uint64_t)msg->mention_here << 1 | (uint64_t)msg->known << 2 |
                 (uint64_t)msg->refused << 3 | (uint64_t)(msg->attachments != NULL) << 4 | (uint64_t)msg->nlater << 5 |
                 (uint64_t)msg->touched << 13);
    if (msg->attachments)
        w_str(b, msg->attachments);
    w_u64(b, msg->nreactions);
    for (size_t i = 0; i < msg->nreactions; i++) {
        w_str(b, msg->reactions[i].emoji);
        w_u64(b, msg->reactions[i].n);
        for (size_t k = 0; k < msg->reactions[i].n; k++)
            w_ref(b, msg->reactions[i].users[k]);
    }
    w_u64(b, msg->nbody);
    for (size_t i = 0; i < msg->nbody; i++)
        w_u64(b, msg->body_seqs[i]);
    w_u64(b, msg->reply_count);
    w_i64(b, msg->last_reply_at);
    w_u64(b, msg->last_seq);
}

/* Cold list c's entry i, after the entry (or base) at prev: its position as an increment (doubled, plus one when
 * rich: then its later distance follows), its author as a reference. */
static void
w_cold_entry(struct wbuf *b, const struct cold_list *c, size_t i, uint64_t prev)
{
    w_u64(b, (cold_list_pos(c, i) - prev) << 1 | cold_list_rich(c, i));
    if (cold_list_rich(c, i))
        w_u64(b, c->later[i]);
    w_ref(b, b->authors[c->author[i]]);
}

static void
w_room(struct wbuf *b, const struct chat_room *r)
{
    size_t it = 0;
    const char *key;
    void *val;

    w_str(b, r->id);
    w_str(b, r->name);
    w_str(b, r->description);
    w_u64(b, (uint64_t)r->vis | (uint64_t)r->archived << 2 | (uint64_t)r->exists << 3);
    w_i64(b, r->created_at);
    w_str(b, r->created_by);
    w_str(b, r->dm_key);
    w_u64(b, r->room_seq);
    w_i64(b, r->last_activity);
    w_u64(b, r->pin_seq);
    w_u64(b, r->call_seq);
    w_str(b, r->call.id);
    w_str(b, r->call.started_by);
    w_i64(b, r->call.started_at);
    w_u64(b, r->call.nparts);
    for (size_t i = 0; i < r->call.nparts; i++) {
        w_str(b, r->call.parts[i].user);
        w_i64(b, r->call.parts[i].joined_at);
    }
    w_u64(b, map_len(r->members));
    while (map_next(r->members, &it, &key, &val)) {
        const struct chat_member *cm = val;
        w_str(b, cm->user);
        w_u64(b, (uint64_t)cm->role);
        w_i64(b, cm->joined_at);
        w_u64(b, cm->last_read);
        w_u64(b, cm->seq);
    }
    /* the timeline with its messages inline (the loader then needs no lookup per item), then the messages that
     * are not in it: thread replies, and those never posted (reactions seen first) or refused */
    size_t in_tl = 0, others = 0;
    w_u64(b, map_len(r->msgs));
    w_u64(b, r->ntl);
    for (size_t i = 0; i < r->ntl; i++) {
        const struct chat_item *x = r->tl[i];
        w_u64(b, x->pos);
        w_u64(b, (uint64_t)x->kind);
        if (x->kind == IT_MSG) {
            w_msg(b, x->msg);
            in_tl++;
            continue; /* the rest is the message's */
        }
        w_ref(b, x->id);
        w_ref(b, x->actor);
        w_ref(b, x->subject_user);
        w_i64(b, x->at);
    }
    w_u64(b, map_len(r->msgs) - in_tl);
    it = 0;
    while (map_next(r->msgs, &it, &key, &val)) {
        const struct chat_msg *msg = val;
        if (msg->known && !msg->thread_root[0])
            continue; /* in the timeline */
        w_msg(b, msg);
        others++;
    }
    if (in_tl + others != map_len(r->msgs))
        b->bad = true; /* a posted top-level message missing from its timeline: not a state to keep */
    w_u64(b, r->npins);
    for (size_t i = 0; i < r->npins; i++) {
        w_str(b, r->pins[i].msg->id);
        w_i64(b, r->pins[i].at);
        w_str(b, r->pins[i].by);
    }
    /* the cold timeline */
    w_u64(b, r->cold.n);
    for (size_t i = 0; i < r->cold.n; i++)
        w_cold_entry(b, &r->cold, i, i ? model_cold_pos(r, i - 1) : 0);
    /* the quiet threads' cold replies: root, base, then as the timeline's */
    size_t threads = 0, seen = 0;
    const char *root;
    it = 0;
    while (map_next(r->threads, &it, &root, &val))
        threads += ((struct seqlist *)val)->cold.n > 0;
    w_u64(b, threads);
    it = 0;
    while (map_next(r->threads, &it, &root, &val)) {
        const struct cold_list *c = &((struct seqlist *)val)->cold;
        if (!c->n)
            continue;
        w_str(b, root);
        w_u64(b, c->base);
        w_u64(b, c->n);
        for (size_t i = 0; i < c->n; i++)
            w_cold_entry(b, c, i, i ? cold_list_pos(c, i - 1) : c->base);
        seen += c->n;
    }
    if (seen != r->thread_cold)
        b->bad = true;
}

enum ch_status
snapshot_encode(struct chat_model *m, unsigned char **out, size_t *len, uint64_t *seq, struct ch_err *err)
{
    struct wbuf b = { .authors = m->authors };
    size_t it = 0;
    const char *key;
    void *val;
    uint32_t fmt = SNAP_FORMAT;

    *out = NULL;
    *len = 0;
    *seq = m->state_seq;
    w_bytes(&b, SNAP_MAGIC, 8);
    w_bytes(&b, &fmt, sizeof fmt);
    w_bytes(&b, (unsigned char[32]){ 0 }, 32); /* the hash of event S, filled by the writer */
    w_u64(&b, *seq);
    w_u64(&b, map_len(m->rooms));
    while (map_next(m->rooms, &it, &key, &val))
        w_room(&b, val);
    w_u64(&b, m->nerase);
    for (size_t i = 0; i < m->nerase; i++)
        w_u64(&b, m->erase[i]);
    w_bytes(&b, "END.", 4);
    free(b.refs.keys);
    free(b.refs.idx);
    if (b.oom || b.bad) {
        free(b.p);
        return ch_err_set(err, b.oom ? CH_ENOMEM : CH_EINTERNAL, NULL,
                          b.oom ? "out of memory" : "a room's timeline lacks one of its messages");
    }
    *out = b.p;
    *len = b.n;
    return CH_OK;
}

/* ---- decoding ---- */

struct rbuf {
    const unsigned char *p;
    size_t n, at;
    bool bad;
    struct chat_model *m;
    uint32_t fmt;
    const char **strings;
    size_t nstrings, cap;
    char tmp[4096];
};

static uint64_t
r_u64(struct rbuf *b)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 64; shift += 7) {
        if (b->at >= b->n) {
            b->bad = true;
            return 0;
        }
        unsigned char c = b->p[b->at++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    b->bad = true;
    return 0;
}

static int64_t
r_i64(struct rbuf *b)
{
    uint64_t v = r_u64(b);

    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A string into dst (cap bytes with the NUL); false (and bad) if it does not fit or the buffer ends. */
static bool
r_str(struct rbuf *b, char *dst, size_t cap)
{
    uint64_t n = r_u64(b);

    if (b->bad || n >= cap || n > b->n - b->at) {
        b->bad = true;
        if (cap)
            dst[0] = '\0';
        return false;
    }
    memcpy(dst, b->p + b->at, n);
    dst[n] = '\0';
    b->at += n;
    return true;
}

/* A string of any length (caller frees), NULL when bad. */
static char *
r_strdup(struct rbuf *b)
{
    uint64_t n = r_u64(b);
    char *s;

    if (b->bad || n > b->n - b->at || !(s = malloc(n + 1))) {
        b->bad = true;
        return NULL;
    }
    memcpy(s, b->p + b->at, n);
    s[n] = '\0';
    b->at += n;
    return s;
}

static const char *
r_ref(struct rbuf *b)
{
    uint64_t i = r_u64(b);

    if (b->bad)
        return "";
    if (i == 1)
        return "";
    if (i >= 2) {
        if (i - 2 >= b->nstrings) {
            b->bad = true;
            return "";
        }
        return b->strings[i - 2];
    }
    if (!r_str(b, b->tmp, ID_MAX + 1))
        return "";
    const char *s = model_intern(b->m, b->tmp);
    if (!s || !*s) {
        b->bad = true;
        return "";
    }
    if (b->nstrings == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        const char **nv = realloc(b->strings, cap * sizeof *nv);
        if (!nv) {
            b->bad = true;
            return "";
        }
        b->strings = nv;
        b->cap = cap;
    }
    b->strings[b->nstrings++] = s;
    return s;
}

/* An id the model keeps in a fixed field. */
static void
r_id(struct rbuf *b, char dst[ID_MAX + 1])
{
    r_str(b, dst, ID_MAX + 1);
}

static const char **
r_refs(struct rbuf *b, size_t n)
{
    const char **v;

    if (n > b->n - b->at || !(v = calloc(n ? n : 1, sizeof *v))) { /* each takes a byte at least */
        b->bad = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = r_ref(b);
    return v;
}

static int
by_pos(const void *a, const void *b)
{
    const struct chat_msg *x = *(struct chat_msg *const *)a, *y = *(struct chat_msg *const *)b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Replies and mentions are appended in the writer's map order, then sorted once the room is read. */
static void
seqlist_sort(struct seqlist *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, by_pos);
}

static struct chat_msg *
r_msg(struct rbuf *b, struct chat_room *r)
{
    struct chat_msg *msg;
    uint64_t flags, n;
    size_t before = map_len(r->msgs);

    if (!r_str(b, b->tmp, ID_MAX + 1) || !(msg = model_msg_get_or_new(r, b->tmp)) || map_len(r->msgs) == before) {
        b->bad = true; /* (the same message twice) */
        return NULL;
    }
    msg->author = r_ref(b);
    msg->pos = r_u64(b);
    msg->created_at = r_i64(b);
    msg->edited_at = r_i64(b);
    msg->deleted_at = r_i64(b);
    msg->thread_root = r_ref(b);
    msg->in_reply_to = r_ref(b);
    n = r_u64(b);
    if (n) {
        msg->mentions = r_refs(b, n);
        msg->nmentions = msg->mentions ? n : 0;
    }
    flags = r_u64(b);
    msg->mention_all = flags & 1;
    msg->mention_here = flags & 2;
    msg->known = flags & 4;
    msg->refused = flags & 8;
    msg->nlater = b->fmt >= 4 ? (uint8_t)(flags >> 5) : UINT8_MAX; /* (format 3 and before: not known) */
    msg->touched = b->fmt >= 4 ? (flags >> 13) & 1 : true;
    if (flags & 16)
        msg->attachments = r_strdup(b);
    n = r_u64(b);
    if (n > b->n - b->at) {
        b->bad = true;
        return msg;
    }
    if (n && !(msg->reactions = calloc(n, sizeof *msg->reactions))) {
        b->bad = true;
        return msg;
    }
    for (size_t i = 0; i < n && !b->bad; i++) {
        struct chat_reaction *rx = &msg->reactions[i];
        r_str(b, rx->emoji, sizeof rx->emoji);
        uint64_t k = r_u64(b);
        if (!b->bad && (rx->users = r_refs(b, k)))
            rx->n = k;
        msg->nreactions = i + 1;
    }
    n = r_u64(b);
    if (n > (b->n - b->at)) {
        b->bad = true;
        return msg;
    }
    if (n == 1) {
        msg->body_one = r_u64(b);
        msg->body_seqs = &msg->body_one;
        msg->nbody = 1;
    } else if (n > 1) {
        if (!(msg->body_seqs = calloc(n, sizeof *msg->body_seqs))) {
            b->bad = true;
            return msg;
        }
        for (size_t i = 0; i < n; i++)
            msg->body_seqs[i] = r_u64(b);
        msg->nbody = n;
    }
    msg->reply_count = (uint32_t)r_u64(b);
    msg->last_reply_at = r_i64(b);
    msg->last_seq = r_u64(b);
    if (msg->known && msg->thread_root[0]) {
        struct seqlist *l = map_get(r->threads, msg->thread_root);
        if (!l && (l = calloc(1, sizeof *l)))
            map_put(r->threads, msg->thread_root, l, NULL);
        if (!l || !model_seqlist_append(l, msg))
            b->bad = true;
    }
    if (msg->known && !msg->deleted_at && (msg->nmentions || msg->mention_all) && !model_seqlist_append(&r->mentioned, msg))
        b->bad = true;
    return msg;
}

/* A cold entry after the one at *pos (or the list's base): *pos moves to it; its author's index and its later
 * distance (formats 4 on: see w_cold_entry; before, none is rich). False when it makes no sense. */
static bool
r_cold_entry(struct rbuf *b, uint64_t *pos, uint32_t *author, uint32_t *later)
{
    uint64_t step = r_u64(b), l = b->fmt >= 4 && (step & 1) ? r_u64(b) : 0;
    const char *who = r_ref(b);

    step = b->fmt >= 4 ? step >> 1 : step;
    *author = b->bad || !*who ? UINT32_MAX : model_author_index(b->m, who);
    *later = (uint32_t)l;
    if (!step || *pos + step < *pos || *author == UINT32_MAX || l > UINT32_MAX)
        return false;
    *pos += step;
    return true;
}

static void
r_room(struct rbuf *b)
{
    struct chat_room *r;
    uint64_t flags, n;

    if (!r_str(b, b->tmp, ID_MAX + 1) || !id_valid(b->tmp) || map_get(b->m->rooms, b->tmp) ||
        !(r = model_room_get_or_new(b->m, b->tmp))) {
        b->bad = true;
        return;
    }
    r_str(b, r->name, sizeof r->name);
    r_str(b, r->description, sizeof r->description);
    flags = r_u64(b);
    r->vis = (enum room_vis)(flags & 3);
    r->archived = flags & 4;
    r->exists = flags & 8;
    r->created_at = r_i64(b);
    r_id(b, r->created_by);
    r_str(b, r->dm_key, sizeof r->dm_key);
    if (r->dm_key[0])
        map_put(b->m->dms, r->dm_key, r->id, NULL);
    r->room_seq = r_u64(b);
    r->last_activity = r_i64(b);
    r->pin_seq = r_u64(b);
    r->call_seq = r_u64(b);
    r_str(b, r->call.id, sizeof r->call.id);
    r_id(b, r->call.started_by);
    r->call.started_at = r_i64(b);
    n = r_u64(b);
    if (n > CALL_PARTS_MAX || (n && !(r->call.parts = calloc(n, sizeof *r->call.parts)))) {
        b->bad = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        r_id(b, r->call.parts[i].user);
        r->call.parts[i].joined_at = r_i64(b);
    }
    r->call.nparts = n;
    n = r_u64(b);
    if (n <= b->n - b->at)
        map_reserve(r->members, n); /* they come in the writer's hash order: see map_reserve */
    for (uint64_t i = 0; i < n && !b->bad; i++) {
        struct chat_member *cm = calloc(1, sizeof *cm);
        if (!cm) {
            b->bad = true;
            break;
        }
        r_id(b, cm->user);
        cm->role = (enum room_role)(r_u64(b) % 3);
        cm->joined_at = r_i64(b);
        cm->last_read = r_u64(b);
        cm->seq = r_u64(b);
        if (!cm->user[0] || map_get(r->members, cm->user)) {
            free(cm);
            b->bad = true;
            break;
        }
        map_put(r->members, cm->user, cm, NULL);
    }
    n = r_u64(b);
    if (n <= b->n - b->at)
        map_reserve(r->msgs, n);
    n = r_u64(b);
    for (uint64_t i = 0; i < n && !b->bad; i++) {
        uint64_t pos = r_u64(b), kind = r_u64(b);
        struct chat_item *x;
        if (kind > IT_CALL_ENDED || (r->ntl && r->tl[r->ntl - 1]->pos > pos) ||
            !(x = model_tl_insert(r, pos, (enum item_kind)kind))) {
            b->bad = true;
            break;
        }
        if (kind == IT_MSG) {
            struct chat_msg *msg = r_msg(b, r);
            if (!msg || msg->pos != pos) {
                b->bad = true;
                break;
            }
            x->msg = msg;
            x->id = msg->id;
            x->actor = msg->author;
            x->at = msg->created_at;
            continue;
        }
        x->id = r_ref(b);
        x->actor = r_ref(b);
        x->subject_user = r_ref(b);
        x->at = r_i64(b);
    }
    n = r_u64(b);
    for (uint64_t i = 0; i < n && !b->bad; i++)
        r_msg(b, r);
    size_t it = 0;
    const char *key;
    void *val;
    while (map_next(r->threads, &it, &key, &val))
        seqlist_sort(val);
    seqlist_sort(&r->mentioned);
    n = r_u64(b);
    if (n > b->n - b->at || (n && !(r->pins = calloc(n, sizeof *r->pins)))) {
        b->bad = true;
        return;
    }
    for (size_t i = 0; i < n && !b->bad; i++) {
        r_str(b, b->tmp, ID_MAX + 1);
        struct chat_msg *msg = map_get(r->msgs, b->tmp);
        if (!msg) {
            b->bad = true;
            break;
        }
        r->pins[i].msg = msg;
        msg->pinned = true;
        r->pins[i].at = r_i64(b);
        r_id(b, r->pins[i].by);
        r->npins = i + 1;
    }
    if (b->fmt < 2 || b->bad)
        return;
    n = r_u64(b);
    if (n > b->n - b->at) { /* (each takes two bytes at least) */
        b->bad = true;
        return;
    }
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n && !b->bad; i++) {
        uint32_t a, later;
        if (!r_cold_entry(b, &pos, &a, &later) || !model_cold_append(r, pos, a, later))
            b->bad = true;
    }
    if (b->fmt < 3 || b->bad)
        return;
    uint64_t threads = r_u64(b);
    if (threads > b->n - b->at) {
        b->bad = true;
        return;
    }
    for (uint64_t t = 0; t < threads && !b->bad; t++) {
        r_str(b, b->tmp, ID_MAX + 1);
        const char *root = model_intern(b->m, b->tmp);
        uint64_t base = r_u64(b);
        n = r_u64(b);
        struct seqlist *l = root && *root ? map_get(r->threads, root) : NULL;
        bool oom = false;
        if (root && *root && !l && (l = calloc(1, sizeof *l))) { /* (every reply of it is cold) */
            map_put(r->threads, root, l, &oom);
            if (oom) {
                free(l);
                l = NULL;
            }
        }
        if (!l || n > b->n - b->at) {
            b->bad = true;
            break;
        }
        pos = base;
        for (uint64_t i = 0; i < n && !b->bad; i++) {
            uint32_t a, later;
            if (!r_cold_entry(b, &pos, &a, &later) || !model_thread_cold_append(r, l, base, pos, a, later))
                b->bad = true;
        }
        l->settled = true;
    }
}

enum ch_status
snapshot_decode(const unsigned char *buf, size_t len, struct chat_model **out, uint64_t *seq, struct ch_err *err)
{
    struct rbuf b = { .p = buf, .n = len };
    uint32_t fmt;
    uint64_t n;

    *out = NULL;
    if (len < 44 + 4 || memcmp(buf, SNAP_MAGIC, 8))
        return ch_err_set(err, CH_EINVAL, NULL, "not a read-model snapshot");
    memcpy(&fmt, buf + 8, sizeof fmt);
    b.fmt = fmt;
    if (fmt != SNAP_FORMAT && fmt != 1 && fmt != 2 && fmt != 3)
        return ch_err_set(err, CH_EINVAL, NULL, "snapshot format %u, this chatto reads %u", fmt, SNAP_FORMAT);
    if (memcmp(buf + len - 4, "END.", 4))
        return ch_err_set(err, CH_EINVAL, NULL, "snapshot cut short");
    b.n = len - 4;
    b.at = 44; /* after the magic, the format and the hash of event S */
    if (!(b.m = chat_model_new(0)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    *seq = r_u64(&b);
    n = r_u64(&b);
    if (n <= b.n - b.at)
        map_reserve(b.m->rooms, n);
    for (uint64_t i = 0; i < n && !b.bad; i++)
        r_room(&b);
    n = r_u64(&b);
    if (!b.bad && n <= b.n - b.at && n && !(b.m->erase = calloc(n, sizeof *b.m->erase)))
        b.bad = true;
    else if (n > b.n - b.at)
        b.bad = true;
    for (uint64_t i = 0; i < n && !b.bad; i++)
        b.m->erase[b.m->nerase++] = r_u64(&b);
    b.m->caperase = b.m->nerase;
    if (!b.bad && b.at != b.n)
        b.bad = true;
    free(b.strings);
    if (b.bad) {
        chat_model_free(b.m);
        return ch_err_set(err, CH_EINVAL, NULL, "snapshot damaged (at byte %zu of %zu)", b.at, len);
    }
    b.m->state_seq = *seq;
    *out = b.m;
    return CH_OK;
}

/* ---- stream identity: a hash of event S ---- */

#define SNAP_HASH_AT 12 /* after the magic and the format */
#define SNAP_HASH_LEN 32

static enum ch_status
event_hash(struct chat *c, uint64_t seq, unsigned char out[SNAP_HASH_LEN], struct ch_err *err)
{
    char *subject = NULL, *data = NULL;
    size_t len = 0;
    crypto_generichash_state h;
    enum ch_status st;

    if ((st = store_get(c->store, STORE_S_EVENTS, seq, &subject, &data, &len, err)) != CH_OK)
        return st;
    crypto_generichash_init(&h, NULL, 0, SNAP_HASH_LEN);
    crypto_generichash_update(&h, (const unsigned char *)subject, strlen(subject));
    crypto_generichash_update(&h, (const unsigned char *)"\n", 1);
    crypto_generichash_update(&h, (const unsigned char *)data, len);
    crypto_generichash_final(&h, out, SNAP_HASH_LEN);
    sodium_memzero(data, len);
    free(subject);
    free(data);
    return CH_OK;
}

/* ---- loading (the follower's prepare hook) ---- */

/* The newest snapshot's bytes (caller frees); CH_ENOTFOUND if there is none. */
static enum ch_status
snapshot_read(struct chat *c, struct store_obj_info *info, size_t max, unsigned char **out, size_t *len,
              struct ch_err *err)
{
    struct store_obj_reader *rd = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;
    enum ch_status st;

    *out = NULL;
    *len = 0;
    if ((st = store_obj_get_info(c->store, STORE_S_SNAPSHOTS, SNAP_OBJECT, info, err)) != CH_OK)
        return st;
    /* the whole object, or (max) its first chunk only: the writer's header check needs a few bytes, not 150 MB */
    size_t cap = max && max + SNAP_CHUNK < info->size ? max + SNAP_CHUNK : (size_t)info->size;
    if (info->size > (uint64_t)SIZE_MAX / 2 || !(buf = malloc(cap ? cap : 1)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory for a %" PRIu64 "-byte snapshot", info->size);
    if ((st = store_obj_reader_open(c->store, STORE_S_SNAPSHOTS, info, &rd, err)) != CH_OK) {
        free(buf);
        return st;
    }
    for (;;) {
        char *chunk = NULL;
        size_t k = 0;
        if ((st = store_obj_read(rd, &chunk, &k, err)) != CH_OK)
            break;
        if (k == 0) {
            free(chunk);
            break;
        }
        if (n + k > info->size) {
            free(chunk);
            st = ch_err_set(err, CH_EINTERNAL, NULL, "snapshot longer than its description says");
            break;
        }
        if (n + k > cap)
            k = cap - n; /* (max: a chunk larger than ours; the header is in its first bytes) */
        memcpy(buf + n, chunk, k);
        n += k;
        free(chunk);
        if (max && n >= max)
            break; /* only its header was wanted */
    }
    store_obj_reader_close(rd);
    if (st != CH_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return CH_OK;
}

static uint64_t
snapshot_prepare(void *ctx)
{
    struct chat *c = ctx;
    struct store_obj_info info;
    struct ch_err err = { 0 };
    unsigned char *buf = NULL, hash[SNAP_HASH_LEN];
    size_t len = 0;
    struct chat_model *tmp = NULL;
    uint64_t seq = 0;
    int64_t t0 = clock_mono_ms(), t_read = 0;
    enum ch_status st;

    if (!c->snap.enabled)
        return 0;
    st = snapshot_read(c, &info, 0, &buf, &len, &err);
    t_read = clock_mono_ms() - t0;
    if (st == CH_ENOTFOUND) {
        log_info("chat: no read-model snapshot yet: replaying the whole event stream");
        return 0;
    }
    if (st == CH_OK)
        st = snapshot_decode(buf, len, &tmp, &seq, &err);
    if (st == CH_OK && (st = event_hash(c, seq, hash, &err)) != CH_OK)
        ch_err_set(&err, st, NULL, "event %" PRIu64 " of the snapshot is not in the stream (%s)", seq, err.msg);
    if (st == CH_OK && sodium_memcmp(hash, buf + SNAP_HASH_AT, SNAP_HASH_LEN) != 0)
        st = ch_err_set(&err, CH_ECONFLICT, NULL, "event %" PRIu64 " differs from the snapshot's: another stream",
                        seq);
    free(buf);
    if (st != CH_OK) {
        log_warn("chat: not using the read-model snapshot (%s): replaying the whole event stream", err.msg);
        chat_model_free(tmp);
        return 0;
    }
    chat_model_adopt(c->m, tmp, seq);
    chat_model_free(tmp);
    pthread_mutex_lock(&c->snap.mu);
    c->snap.last_seq = seq;
    c->snap.last_ms = info.mtime_ms;
    c->snap.known = true;
    pthread_mutex_unlock(&c->snap.mu);
    log_info("chat: read model loaded from the snapshot at event %" PRIu64 " (%zu bytes, %lld ms, %lld of them "
             "reading it); following the events after it", seq, len, (long long)(clock_mono_ms() - t0),
             (long long)t_read);
    return seq + 1;
}

/* ---- writing ---- */

/* What the store holds: the newest snapshot's event and time (from its header). */
static void
snapshot_learn(struct chat *c)
{
    struct store_obj_info info;
    unsigned char *buf = NULL;
    size_t len = 0;
    uint64_t seq = 0;

    enum ch_status st = snapshot_read(c, &info, 64, &buf, &len, NULL);
    if (st == CH_OK && len >= SNAP_HASH_AT + SNAP_HASH_LEN + 1 && !memcmp(buf, SNAP_MAGIC, 8)) {
        struct rbuf b = { .p = buf, .n = len, .at = SNAP_HASH_AT + SNAP_HASH_LEN };
        seq = r_u64(&b);
    }
    free(buf);
    if (st != CH_OK && st != CH_ENOTFOUND)
        return; /* ask again next time */
    pthread_mutex_lock(&c->snap.mu);
    c->snap.known = true;
    c->snap.last_seq = st == CH_OK ? seq : 0;
    c->snap.last_ms = st == CH_OK ? info.mtime_ms : 0;
    pthread_mutex_unlock(&c->snap.mu);
}

static bool
write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Encode in a child process (see the top); *locked_ms is how long the model's read lock was held. CH_EUNAVAIL
 * when the child could not be made (the caller encodes in-process). */
static enum ch_status
encode_forked(struct chat *c, unsigned char **out, size_t *len, uint64_t *seq, int64_t *locked_ms,
              struct ch_err *err)
{
    int p[2];
    pid_t pid;
    int64_t t0;
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf;
    int status = 0;

    *out = NULL;
    *len = 0;
    if (pipe2(p, O_CLOEXEC) != 0)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "pipe: %s", strerror(errno));
    t0 = clock_mono_ms();
    pthread_rwlock_rdlock(&c->m->lock);
    *seq = c->m->state_seq;
    pid = fork();
    if (pid == 0) {
        /* the child: this thread alone, the model as it was under the read lock */
        unsigned char *b = NULL;
        size_t bl = 0;
        uint64_t s = 0;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        if (snapshot_encode(c->m, &b, &bl, &s, NULL) != CH_OK || !write_all(p[1], b, bl))
            _exit(1);
        _exit(0);
    }
    pthread_rwlock_unlock(&c->m->lock);
    *locked_ms = clock_mono_ms() - t0;
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return ch_err_set(err, CH_EUNAVAIL, NULL, "fork: %s", strerror(errno));
    }
    buf = malloc(cap);
    for (;;) {
        if (buf && n == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else {
                buf = nb;
                cap *= 2;
            }
        }
        if (!buf)
            break; /* out of memory: drain nothing more; the child dies of EPIPE */
        ssize_t k = read(p[0], buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!buf) {
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n < 48 || memcmp(buf, SNAP_MAGIC, 8)) {
        free(buf);
        return ch_err_set(err, CH_EINTERNAL, NULL, "the encoding child failed (status %d)", status);
    }
    *out = buf;
    *len = n;
    return CH_OK;
}

static void
snapshot_write(struct chat *c)
{
    struct store_obj_info old, info;
    struct ch_err err = { 0 };
    unsigned char *buf = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    int64_t t0 = clock_mono_ms(), locked = 0;
    bool had_old;

    enum ch_status st = encode_forked(c, &buf, &len, &seq, &locked, &err);
    if (st == CH_EUNAVAIL) {
        log_warn("chat: cannot encode the read-model snapshot in a child (%s): encoding it under the lock", err.msg);
        pthread_rwlock_rdlock(&c->m->lock);
        st = snapshot_encode(c->m, &buf, &len, &seq, &err);
        pthread_rwlock_unlock(&c->m->lock);
        locked = clock_mono_ms() - t0;
    }
    if (st == CH_OK)
        st = event_hash(c, seq, buf + SNAP_HASH_AT, &err);
    had_old = st == CH_OK && store_obj_get_info(c->store, STORE_S_SNAPSHOTS, SNAP_OBJECT, &old, NULL) == CH_OK;
    if (st == CH_OK)
        st = store_obj_put(c->store, STORE_S_SNAPSHOTS, SNAP_OBJECT, "application/octet-stream", buf, len, SNAP_CHUNK,
                           &info, &err);
    free(buf);
    if (st != CH_OK) {
        log_warn("chat: cannot write a read-model snapshot at event %" PRIu64 ": %s", seq, err.msg);
        return;
    }
    if (had_old && strcmp(old.nuid, info.nuid))
        store_obj_erase_chunks(c->store, STORE_S_SNAPSHOTS, old.nuid, NULL);
    pthread_mutex_lock(&c->snap.mu);
    c->snap.last_seq = seq;
    c->snap.last_ms = info.mtime_ms;
    c->snap.known = true;
    pthread_mutex_unlock(&c->snap.mu);
    log_info("chat: read-model snapshot at event %" PRIu64 " written: %zu bytes (%lld ms under the model's read "
             "lock, %lld ms in all)", seq, len, (long long)locked, (long long)(clock_mono_ms() - t0));
}

static bool
snapshot_due(struct chat *c)
{
    uint64_t cur;

    if (!store_follower_attached(c->follower) || chat_model_applied(c->m) < store_follower_target(c->follower))
        return false; /* still replaying */
    pthread_rwlock_rdlock(&c->m->lock);
    cur = c->m->state_seq;
    pthread_rwlock_unlock(&c->m->lock);
    pthread_mutex_lock(&c->snap.mu);
    bool known = c->snap.known;
    uint64_t last = c->snap.last_seq;
    int64_t age = clock_wall_ms() - c->snap.last_ms;
    pthread_mutex_unlock(&c->snap.mu);
    if (!known || cur <= last)
        return false;
    return !last || cur - last >= c->snap.every || age > c->snap.retention_ms / 2;
}

static void *
snapshot_main(void *arg)
{
    struct chat *c = arg;
    bool held_before = false;
    int64_t next_try = 0; /* another process holds the lease: ask again later, not every second */
    sigset_t all;

    /* the encoding child inherits this thread's mask: no handler of the server's may run in it */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    for (;;) {
        struct timespec ts = clock_deadline(SNAP_CHECK_MS);
        pthread_mutex_lock(&c->snap.mu);
        if (!c->snap.stop)
            pthread_cond_timedwait(&c->snap.cv, &c->snap.mu, &ts);
        bool stop = c->snap.stop, known = c->snap.known;
        pthread_mutex_unlock(&c->snap.mu);
        if (stop)
            break;
        if (!known)
            snapshot_learn(c);
        if (clock_mono_ms() < next_try || !snapshot_due(c))
            continue;
        bool held = false;
        if (store_lease_acquire(c->store, SNAP_LEASE, c->snap.holder, 60000, &held, NULL) != CH_OK || !held) {
            held_before = false;
            next_try = clock_mono_ms() + 30000;
            continue;
        }
        if (!held_before) { /* another process may have written since we looked */
            held_before = true;
            snapshot_learn(c);
            if (!snapshot_due(c))
                continue;
        }
        snapshot_write(c);
    }
    if (held_before)
        store_lease_release(c->store, SNAP_LEASE, c->snap.holder);
    store_thread_exit();
    return NULL;
}

store_follow_prepare_fn
snapshot_loader(struct chat *c)
{
    return c->snap.enabled ? snapshot_prepare : NULL;
}

enum ch_status
snapshot_start(struct chat *c, struct ch_err *err)
{
    if (!c->snap.enabled)
        return CH_OK;
    if (pthread_create(&c->snap.thread, NULL, snapshot_main, c) != 0)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the snapshot thread");
    c->snap.running = true;
    return CH_OK;
}

void
snapshot_stop(struct chat *c)
{
    if (c->snap.running) {
        pthread_mutex_lock(&c->snap.mu);
        c->snap.stop = true;
        pthread_cond_signal(&c->snap.cv);
        pthread_mutex_unlock(&c->snap.mu);
        pthread_join(c->snap.thread, NULL);
        c->snap.running = false;
    }
}
