/* SPDX-License-Identifier: MIT */
/*
 * Message bodies outside the read model. The model keeps, per message, the stream sequences of the snapshots that
 * hold its body; the bodies live in a bounded cache (core.cache_size bytes, the least recently used out first),
 * filled by the follower as snapshots arrive and by readers that fetch what is not cached from the stream.
 *
 * Deletion: a deleted or refused message's bodies are dropped (their bytes zeroed) under the model's write lock,
 * which also moves the cache's drop generation. A reader records the generation while it renders (model
 * read-locked) and caches what it fetched later only if no drop happened in between, so a fetch that raced with a
 * delete never brings the deleted bytes back into memory.
 *
 * Any thread: one mutex, held for table work only (never across NATS).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "store/subject.h"

struct body_entry {
    uint64_t seq;
    struct body_entry *hnext;       /* hash chain */
    struct body_entry *prev, *next; /* recency: prev is more recent */
    size_t len;
    char body[];
};

struct body_cache {
    pthread_mutex_t mu;
    struct body_entry **buckets;
    size_t nbuckets, count, bytes, max;
    struct body_entry *head, *tail; /* most and least recently used */
    uint64_t gen;                   /* drops so far */
};

static size_t
entry_cost(size_t len)
{
    return sizeof(struct body_entry) + len + 1 + sizeof(struct body_entry *);
}

static size_t
slot(const struct body_cache *bc, uint64_t seq)
{
    uint64_t h = seq * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (bc->nbuckets - 1);
}

struct body_cache *
body_cache_new(size_t max_bytes)
{
    struct body_cache *bc = calloc(1, sizeof *bc);

    if (!bc)
        return NULL;
    bc->nbuckets = 1024;
    if (!(bc->buckets = calloc(bc->nbuckets, sizeof *bc->buckets))) {
        free(bc);
        return NULL;
    }
    bc->max = max_bytes;
    pthread_mutex_init(&bc->mu, NULL);
    return bc;
}

static void
entry_free(struct body_entry *e)
{
    sodium_memzero(e->body, e->len);
    free(e);
}

void
body_cache_free(struct body_cache *bc)
{
    if (!bc)
        return;
    for (struct body_entry *e = bc->head, *n; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    free(bc->buckets);
    pthread_mutex_destroy(&bc->mu);
    free(bc);
}

static struct body_entry **
find(struct body_cache *bc, uint64_t seq)
{
    struct body_entry **pp = &bc->buckets[slot(bc, seq)];

    while (*pp && (*pp)->seq != seq)
        pp = &(*pp)->hnext;
    return pp;
}

static void
unlink_lru(struct body_cache *bc, struct body_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        bc->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        bc->tail = e->prev;
    e->prev = e->next = NULL;
}

static void
push_front(struct body_cache *bc, struct body_entry *e)
{
    e->prev = NULL;
    e->next = bc->head;
    if (bc->head)
        bc->head->prev = e;
    bc->head = e;
    if (!bc->tail)
        bc->tail = e;
}

/* Remove the entry *pp points at (mu held). */
static void
remove_at(struct body_cache *bc, struct body_entry **pp)
{
    struct body_entry *e = *pp;

    *pp = e->hnext;
    unlink_lru(bc, e);
    bc->count--;
    bc->bytes -= entry_cost(e->len);
    entry_free(e);
}

static void
grow(struct body_cache *bc)
{
    size_t n = bc->nbuckets * 2;
    struct body_entry **nb = calloc(n, sizeof *nb);

    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < bc->nbuckets; i++)
        for (struct body_entry *e = bc->buckets[i], *next; e; e = next) {
            next = e->hnext;
            size_t k = (size_t)((e->seq * 0x9E3779B97F4A7C15ull) >> 32) & (n - 1);
            e->hnext = nb[k];
            nb[k] = e;
        }
    free(bc->buckets);
    bc->buckets = nb;
    bc->nbuckets = n;
}

/* mu held */
static void
put_locked(struct body_cache *bc, uint64_t seq, const char *body, size_t len)
{
    struct body_entry **pp = find(bc, seq), *e;
    size_t cost = entry_cost(len);

    if (*pp) { /* the same sequence always holds the same body */
        unlink_lru(bc, *pp);
        push_front(bc, *pp);
        return;
    }
    if (cost > bc->max)
        return;
    while (bc->tail && bc->bytes + cost > bc->max)
        remove_at(bc, find(bc, bc->tail->seq));
    if (!(e = malloc(sizeof *e + len + 1)))
        return;
    e->seq = seq;
    e->len = len;
    memcpy(e->body, body, len);
    e->body[len] = '\0';
    pp = find(bc, seq);
    e->hnext = NULL;
    *pp = e;
    push_front(bc, e);
    bc->count++;
    bc->bytes += cost;
    if (bc->count > bc->nbuckets)
        grow(bc);
}

void
body_cache_put(struct body_cache *bc, uint64_t seq, const char *body, size_t len)
{
    pthread_mutex_lock(&bc->mu);
    put_locked(bc, seq, body, len);
    pthread_mutex_unlock(&bc->mu);
}

bool
body_cache_put_if(struct body_cache *bc, uint64_t gen, uint64_t seq, const char *body, size_t len)
{
    bool ok;

    pthread_mutex_lock(&bc->mu);
    if ((ok = bc->gen == gen))
        put_locked(bc, seq, body, len);
    pthread_mutex_unlock(&bc->mu);
    return ok;
}

bool
body_cache_add_to(struct body_cache *bc, uint64_t seq, cJSON *o, const char *name)
{
    struct body_entry **pp;
    bool hit;

    pthread_mutex_lock(&bc->mu);
    pp = find(bc, seq);
    if ((hit = *pp != NULL)) {
        unlink_lru(bc, *pp);
        push_front(bc, *pp);
        if (o)
            cJSON_AddStringToObject(o, name, (*pp)->body);
    }
    pthread_mutex_unlock(&bc->mu);
    if (hit && o)
        metrics_inc(MET_BODY_CACHE_HITS, NULL, NULL);
    return hit;
}

char *
body_cache_dup(struct body_cache *bc, uint64_t seq)
{
    struct body_entry **pp;
    char *s = NULL;

    pthread_mutex_lock(&bc->mu);
    pp = find(bc, seq);
    if (*pp) {
        unlink_lru(bc, *pp);
        push_front(bc, *pp);
        s = strdup((*pp)->body);
    }
    pthread_mutex_unlock(&bc->mu);
    return s;
}

void
body_cache_drop(struct body_cache *bc, uint64_t seq)
{
    struct body_entry **pp;

    pthread_mutex_lock(&bc->mu);
    bc->gen++;
    if (*(pp = find(bc, seq)))
        remove_at(bc, pp);
    pthread_mutex_unlock(&bc->mu);
}

size_t
body_cache_max(const struct body_cache *bc)
{
    return bc->max;
}

uint64_t
body_cache_gen(struct body_cache *bc)
{
    pthread_mutex_lock(&bc->mu);
    uint64_t g = bc->gen;
    pthread_mutex_unlock(&bc->mu);
    return g;
}

void
body_cache_stats(struct body_cache *bc, struct body_cache_stats *out)
{
    pthread_mutex_lock(&bc->mu);
    out->bytes = bc->bytes;
    out->entries = bc->count;
    out->max = bc->max;
    pthread_mutex_unlock(&bc->mu);
}

/* ---- readers: render now, fetch what was missing after the lock ---- */

void
body_fill_want(struct body_fill *f, struct body_cache *bc, cJSON *obj, uint64_t seq)
{
    if (!f->n && !f->cap)
        f->gen = body_cache_gen(bc);
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct body_want *nv = realloc(f->v, cap * sizeof *nv);
        if (!nv) {
            f->failed = true;
            return;
        }
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n].obj = obj;
    f->v[f->n].seq = seq;
    f->n++;
}

void
body_fill_free(struct body_fill *f)
{
    free(f->v);
    memset(f, 0, sizeof *f);
}

/* The body in a stored snapshot event of message msg_id in room_id (caller frees); CH_EINTERNAL if the event is
 * not such a snapshot. */
static enum ch_status
body_of(const char *subject, const char *data, size_t len, const char *room_id, const char *msg_id, char **body,
        struct ch_err *err)
{
    char want[STORE_SUBJECT_MAX];
    cJSON *ev;
    const cJSON *snap;
    const char *type, *b;
    enum ch_status st = CH_OK;

    *body = NULL;
    if (store_subject_event_message(want, sizeof want, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINVAL, "messageId", "invalid message id");
    ev = cJSON_ParseWithLength(data, len);
    snap = cJSON_GetObjectItemCaseSensitive(ev, "msg");
    type = json_str_or(ev, "type", NULL);
    b = json_str_or(snap, "body", NULL);
    if (strcmp(subject, want) || !type || (strcmp(type, "msg.posted") && strcmp(type, "msg.edited")) || !b ||
        strcmp(json_str_or(snap, "id", ""), msg_id))
        st = ch_err_set(err, CH_EINTERNAL, NULL, "event is not a snapshot of message %s", msg_id);
    else if (!(*body = strdup(b)))
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    cJSON_Delete(ev);
    return st;
}

enum ch_status
chat_body_fetch(struct chat *c, uint64_t seq, const char *room_id, const char *msg_id, char **body,
                struct ch_err *err)
{
    char *subject = NULL, *data = NULL;
    size_t len = 0;
    enum ch_status st;

    *body = NULL;
    metrics_inc(MET_BODY_FETCHES, NULL, NULL);
    if ((st = store_get(c->store, STORE_S_EVENTS, seq, &subject, &data, &len, err)) == CH_OK)
        st = body_of(subject, data, len, room_id, msg_id, body, err);
    if (data)
        sodium_memzero(data, len);
    free(subject);
    free(data);
    return st;
}

struct fill_ctx {
    struct chat *c;
    struct body_fill *f;
    enum ch_status st;
    struct ch_err *err;
};

static void
fill_one(void *arg, size_t i, const char *subject, const char *data, size_t len)
{
    struct fill_ctx *x = arg;
    cJSON *o = x->f->v[i].obj;
    char *body = NULL;

    if (x->st != CH_OK)
        return;
    if ((x->st = body_of(subject, data, len, json_str_or(o, "roomId", ""), json_str_or(o, "id", ""), &body,
                         x->err)) != CH_OK)
        return;
    cJSON_AddStringToObject(o, "body", body);
    body_cache_put_if(x->c->m->bodies, x->f->gen, x->f->v[i].seq, body, strlen(body));
    sodium_memzero(body, strlen(body));
    free(body);
}

enum ch_status
chat_bodies_fill(struct chat *c, struct body_fill *f, struct ch_err *err)
{
    struct fill_ctx x = { .c = c, .f = f, .st = CH_OK, .err = err };
    uint64_t *seqs = NULL;
    enum ch_status st = CH_OK;

    if (f->failed)
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    else if (f->n && !(seqs = malloc(f->n * sizeof *seqs)))
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (st == CH_OK && f->n) {
        for (size_t i = 0; i < f->n; i++)
            seqs[i] = f->v[i].seq;
        metrics_add(MET_BODY_FETCHES, NULL, NULL, (double)f->n);
        /* one gone since we looked (erased: deleted a moment ago) is left out */
        st = store_get_many(c->store, STORE_S_EVENTS, seqs, f->n, fill_one, &x, err);
        if (st == CH_OK)
            st = x.st;
    }
    free(seqs);
    body_fill_free(f);
    return st;
}

enum ch_status
chat_bodies_finish(struct chat *c, struct body_fill *f, enum ch_status st, cJSON **out, struct ch_err *err)
{
    if (st != CH_OK) {
        body_fill_free(f);
        return st;
    }
    if ((st = chat_bodies_fill(c, f, err)) != CH_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return st;
}

void
chat_body_warm(struct chat *c, uint64_t gen, uint64_t seq, const char *room_id, const char *msg_id)
{
    char *body = NULL;

    if (!seq || body_cache_add_to(c->m->bodies, seq, NULL, NULL) ||
        chat_body_fetch(c, seq, room_id, msg_id, &body, NULL) != CH_OK)
        return;
    body_cache_put_if(c->m->bodies, gen, seq, body, strlen(body));
    sodium_memzero(body, strlen(body));
    free(body);
}
