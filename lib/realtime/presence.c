/* SPDX-License-Identifier: MIT */
/*
 * Presence that scales with what people look at, not with the square of the team.
 *
 * Announcing (rt-io): each process announces, on core NATS, the users it holds sockets for: a change as soon as
 * it happens (coalesced per wake-up of rt-io), and a full summary every presence_interval, in parts of up to
 * PRES_PART_USERS users. Announcements carry the process's random epoch and a sequence number. A process that
 * starts says hello and everyone answers with a full summary; a receiver that sees a gap in a process's
 * sequence asks that process for a full one; a process that stops says bye. Nothing goes into JetStream.
 *
 * Listening (rt-worker): every process keeps what each process (itself included) says, ages out a process
 * silent for three intervals (a crash), and keeps per user how many processes say online or away: online if
 * any says online, away if some say away and none online, offline otherwise.
 *
 * Telling (rt-worker): a socket says which users it shows ({"type":"presence.watch","userIds":[...]}: its DM
 * partners, the member list, the authors on screen; its own user is always included) and gets their statuses
 * at once, then each change of one of them, gathered into at most one presence frame per second. Sharing a room
 * is not enough: #general holds everyone. So N users connecting cost N times the watchers of each, not N².
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "chat/chat.h"
#include "json/json.h"
#include "model/user.h"
#include "log/log.h"
#include "realtime/rt_int.h"
#include "store/store.h"
#include "store/subject.h"

#define PRES_PART_USERS 2000 /* users per summary part (about 60 KB of JSON) */
#define PRES_WATCH_MAX 1000  /* users one socket may watch */
#define PRES_FRAME_GAP_MS 1000

struct pres_count {
    uint32_t online, away, dnd;
};

static const char *
status_name(int s)
{
    return s == PRES_ONLINE ? "online" : s == PRES_AWAY ? "away" : s == PRES_DND ? "dnd" : "offline";
}

static int
status_code(const char *s)
{
    return !s ? PRES_OFF : !strcmp(s, "online") || !strcmp(s, "o") ? PRES_ONLINE
                         : !strcmp(s, "away") || !strcmp(s, "a")   ? PRES_AWAY
                         : !strcmp(s, "dnd") || !strcmp(s, "d")    ? PRES_DND
                                                                   : PRES_OFF;
}

static int
aggregate_of(const struct pres_count *c)
{
    /* Do-Not-Disturb is a choice: it wins over a device that merely happens to be active */
    return !c ? PRES_OFF : c->dnd ? PRES_DND : c->online ? PRES_ONLINE : c->away ? PRES_AWAY : PRES_OFF;
}

static void
conn_key(uint64_t conn, char key[24])
{
    snprintf(key, 24, "%" PRIx64, conn);
}

static void
proc_free(void *p)
{
    struct pres_proc *pp = p;

    if (!pp)
        return;
    map_free(pp->users, NULL);
    map_free(pp->building, NULL);
    free(pp);
}

static void
watch_free(void *p)
{
    struct pres_watch *w = p;

    if (!w)
        return;
    free(w->pending);
    free(w->links);
    free(w);
}

static void
conns_free(void *p)
{
    struct pres_conns *c = p;

    if (c)
        free(c->v);
    free(c);
}

enum ch_status
rt_presence_init(struct rt *rt)
{
    rt->procs = map_new();
    rt->counts = map_new();
    rt->watches = map_new();
    rt->watchers = map_new();
    randombytes_buf(&rt->epoch, sizeof rt->epoch);
    rt->hello_due = true;
    return rt->procs && rt->counts && rt->watches && rt->watchers ? CH_OK : CH_ENOMEM;
}

void
rt_presence_free(struct rt *rt)
{
    map_free(rt->procs, proc_free);
    map_free(rt->counts, free);
    map_free(rt->watches, watch_free);
    map_free(rt->watchers, conns_free);
    free(rt->pres_due);
    rt->procs = rt->counts = rt->watches = rt->watchers = NULL;
    rt->pres_due = NULL;
}

/* ---- rt-worker: who watches whom ---- */

/* w shows uid from now on (appends a link). False when out of memory. */
static bool
link_add(struct rt *rt, struct pres_watch *w, const char *uid)
{
    struct pres_conns *pc = map_get(rt->watchers, uid);

    if (!pc) {
        bool oom = false;
        if (!(pc = calloc(1, sizeof *pc)))
            return false;
        snprintf(pc->uid, sizeof pc->uid, "%s", uid);
        map_put(rt->watchers, uid, pc, &oom);
        if (oom) {
            free(pc);
            return false;
        }
    }
    /* both lists start with room for one: most users are shown by their own socket only, and a socket's list is
     * its own user until it says what it shows */
    if (pc->n == pc->cap) {
        uint32_t cap = pc->cap ? pc->cap * 2 : 1;
        struct pres_slot *nv = realloc(pc->v, cap * sizeof *nv);
        if (!nv)
            goto fail;
        pc->v = nv;
        pc->cap = cap;
    }
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 1;
        struct pres_link *nl = realloc(w->links, cap * sizeof *nl);
        if (!nl)
            goto fail;
        w->links = nl;
        w->cap = cap;
    }
    pc->v[pc->n] = (struct pres_slot){ w, w->n };
    w->links[w->n++] = (struct pres_link){ pc, pc->n++ };
    return true;
fail:
    if (!pc->n)
        conns_free(map_del(rt->watchers, uid));
    return false;
}

/* Undo link i of w in its user's list (O(1): the last slot moves into the hole and its link is told). The
 * caller removes the link from w itself. */
static void
link_unhook(struct rt *rt, struct pres_watch *w, uint32_t i)
{
    struct pres_conns *pc = w->links[i].pc;
    uint32_t at = w->links[i].at;

    if (i == 0)
        pc->own--;
    pc->v[at] = pc->v[--pc->n];
    if (at < pc->n)
        pc->v[at].w->links[pc->v[at].at].at = at;
    if (!pc->n) {
        char uid[ID_MAX + 1];
        memcpy(uid, pc->uid, sizeof uid);
        conns_free(map_del(rt->watchers, uid));
    }
}

static void
due_add(struct rt *rt, struct pres_watch *w)
{
    if (w->due)
        return;
    if (rt->ndue == rt->capdue) {
        size_t cap = rt->capdue ? rt->capdue * 2 : 64;
        struct pres_watch **nv = realloc(rt->pres_due, cap * sizeof *nv);
        if (!nv)
            return;
        rt->pres_due = nv;
        rt->capdue = cap;
    }
    rt->pres_due[rt->ndue++] = w;
    w->due = true;
}

static void
due_del(struct rt *rt, struct pres_watch *w)
{
    for (size_t i = 0; w->due && i < rt->ndue; i++)
        if (rt->pres_due[i] == w) {
            rt->pres_due[i] = rt->pres_due[--rt->ndue];
            break;
        }
    w->due = false;
}

/* uid's aggregate changed: what rt_presence() answers, and every socket that shows uid */
static void
notify(struct rt *rt, const char *uid, int status)
{
    struct pres_conns *c = map_get(rt->watchers, uid);

    pthread_mutex_lock(&rt->pmu);
    if (status == PRES_OFF)
        map_del(rt->snap, uid);
    else
        map_put(rt->snap, uid, (void *)status_name(status), NULL);
    pthread_mutex_unlock(&rt->pmu);
    for (uint32_t i = 0; c && i < c->n; i++) {
        struct pres_watch *w = c->v[i].w;
        uint32_t k = 0;
        while (k < w->npending && w->pending[k].pc != c)
            k++;
        if (k == w->npending) {
            if (w->npending == w->cappending) {
                uint32_t cap = w->cappending ? w->cappending * 2 : 4;
                struct pres_change *nv = realloc(w->pending, cap * sizeof *nv);
                if (!nv)
                    continue;
                w->pending = nv;
                w->cappending = cap;
            }
            w->pending[w->npending++].pc = c;
        }
        w->pending[k].status = status;
        due_add(rt, w);
    }
}

/* ---- rt-worker: what each process says ---- */

/* Process p now says st (PRES_OFF: nothing) about uid. */
static void
entry_set(struct rt *rt, struct pres_proc *p, const char *uid_in, int st)
{
    char uid[ID_MAX + 1];
    int old = (int)(uintptr_t)map_get(p->users, uid_in);
    struct pres_count *c;
    bool oom = false;

    if (old == st || !id_valid(uid_in))
        return;
    snprintf(uid, sizeof uid, "%s", uid_in); /* uid_in may be a key of the map we change */
    if (st)
        map_put(p->users, uid, (void *)(uintptr_t)st, &oom);
    else
        map_del(p->users, uid);
    if (oom)
        return;
    c = map_get(rt->counts, uid);
    int before = aggregate_of(c);
    if (!c && st) {
        if (!(c = calloc(1, sizeof *c)))
            return;
        map_put(rt->counts, uid, c, &oom);
        if (oom) {
            free(c);
            return;
        }
    }
    if (c) {
        if (old == PRES_ONLINE && c->online)
            c->online--;
        else if (old == PRES_AWAY && c->away)
            c->away--;
        else if (old == PRES_DND && c->dnd)
            c->dnd--;
        if (st == PRES_ONLINE)
            c->online++;
        else if (st == PRES_AWAY)
            c->away++;
        else if (st == PRES_DND)
            c->dnd++;
    }
    int after = aggregate_of(c);
    if (c && !c->online && !c->away && !c->dnd)
        free(map_del(rt->counts, uid));
    if (before != after)
        notify(rt, uid, after);
}

/* p's users become exactly those of next (NULL: none). */
static void
proc_replace(struct rt *rt, struct pres_proc *p, struct map *next)
{
    size_t n = map_len(p->users), k = 0, it = 0;
    char (*old)[ID_MAX + 1] = n ? calloc(n, sizeof *old) : NULL;
    const char *uid;
    void *v;

    while (old && map_next(p->users, &it, &uid, NULL))
        snprintf(old[k++], ID_MAX + 1, "%s", uid);
    it = 0;
    while (next && map_next(next, &it, &uid, &v))
        entry_set(rt, p, uid, (int)(uintptr_t)v);
    for (size_t i = 0; i < k; i++)
        if (!next || !map_get(next, old[i]))
            entry_set(rt, p, old[i], PRES_OFF);
    free(old);
}

static struct pres_proc *
proc_get(struct rt *rt, const char *key)
{
    struct pres_proc *p = map_get(rt->procs, key);
    bool oom = false;

    if (p)
        return p;
    if (!(p = calloc(1, sizeof *p)) || !(p->users = map_new())) {
        proc_free(p);
        return NULL;
    }
    snprintf(p->key, sizeof p->key, "%s", key);
    map_put(rt->procs, key, p, &oom);
    if (oom) {
        proc_free(p);
        return NULL;
    }
    return p;
}

static void
proc_drop(struct rt *rt, const char *key)
{
    struct pres_proc *p = map_get(rt->procs, key);

    if (!p)
        return;
    proc_replace(rt, p, NULL);
    proc_free(map_del(rt->procs, key));
}

/* Ask rt-io to send something: our full summary (full), or a resync request to process key. */
static void
ask_io(struct rt *rt, bool full, const char *resync_key)
{
    pthread_mutex_lock(&rt->iomu);
    if (full)
        rt->full_due = true;
    if (resync_key && !map_get(rt->resync, resync_key))
        map_put(rt->resync, resync_key, (void *)1, NULL);
    pthread_cond_signal(&rt->iocv);
    pthread_mutex_unlock(&rt->iomu);
}

void
rt_presence_heard(struct rt *rt, const struct rt_item *it)
{
    char key[ID_MAX + 1];
    const char *kind = NULL;
    cJSON *o = NULL;
    const cJSON *e, *s, *u, *x;

    if (!strcmp(it->key, STORE_SUBJECT_PRESENCE_HELLO)) {
        o = cJSON_ParseWithLength(it->frame, it->frame_len);
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(o, "p");
        if (!cJSON_IsString(from) || strcmp(from->valuestring, rt->instance_key) != 0)
            ask_io(rt, true, NULL); /* a process started: it wants everyone's summary */
        cJSON_Delete(o);
        return;
    }
    if (!store_subject_presence_parse(it->key, &kind, key))
        return;
    if (!strcmp(kind, "resync")) {
        if (!strcmp(key, rt->instance_key))
            ask_io(rt, true, NULL);
        return;
    }
    if (!strcmp(key, rt->instance_key))
        return; /* our own announcement: we know it already */
    o = cJSON_ParseWithLength(it->frame, it->frame_len);
    e = cJSON_GetObjectItemCaseSensitive(o, "e");
    s = cJSON_GetObjectItemCaseSensitive(o, "s");
    u = cJSON_GetObjectItemCaseSensitive(o, "u");
    if (!cJSON_IsString(e) || !cJSON_IsNumber(s) || s->valuedouble < 1) {
        cJSON_Delete(o);
        return;
    }
    uint64_t epoch = strtoull(e->valuestring, NULL, 16), seq = (uint64_t)s->valuedouble;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "bye"))) {
        proc_drop(rt, key);
        cJSON_Delete(o);
        return;
    }
    struct pres_proc *p = proc_get(rt, key);
    if (!p) {
        cJSON_Delete(o);
        return;
    }
    if (p->epoch != epoch) { /* a new run of that process (or the first we hear of it): start afresh */
        proc_replace(rt, p, NULL);
        p->epoch = epoch;
        p->seq = 0;
        map_free(p->building, NULL);
        p->building = NULL;
    }
    if (p->seq && seq != p->seq + 1)
        ask_io(rt, false, key); /* we missed something: ask for a full summary (this one still applies) */
    p->seq = seq;
    p->heard = clock_mono_ms();
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "full")) && cJSON_IsNumber(x)) {
        uint64_t id = (uint64_t)x->valuedouble;
        if (!p->building || p->building_id != id) {
            map_free(p->building, NULL);
            p->building = map_new();
            p->building_id = id;
        }
        for (const cJSON *i = u ? u->child : NULL; i && p->building; i = i->next)
            if (cJSON_IsString(i) && status_code(i->valuestring) != PRES_OFF && id_valid(i->string))
                map_put(p->building, i->string, (void *)(uintptr_t)status_code(i->valuestring), NULL);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "last")) && p->building) {
            proc_replace(rt, p, p->building);
            map_free(p->building, NULL);
            p->building = NULL;
        }
    } else {
        for (const cJSON *i = u ? u->child : NULL; i; i = i->next)
            if (cJSON_IsString(i))
                entry_set(rt, p, i->string, status_code(i->valuestring));
    }
    cJSON_Delete(o);
}

void
rt_presence_touch(struct rt *rt, const char *uid)
{
    notify(rt, uid, aggregate_of(map_get(rt->counts, uid)));
}

void
rt_presence_local(struct rt *rt, const char *uid, int status)
{
    struct pres_proc *p = proc_get(rt, rt->instance_key);

    if (p)
        entry_set(rt, p, uid, status);
}

void
rt_presence_tick(struct rt *rt, int64_t now)
{
    if (now >= rt->next_aging) {
        rt->next_aging = now + rt->o.presence_ms / 2;
        for (;;) {
            size_t it = 0;
            const char *key;
            void *v;
            char victim[ID_MAX + 1] = "";
            while (map_next(rt->procs, &it, &key, &v)) {
                struct pres_proc *p = v;
                if (strcmp(p->key, rt->instance_key) && now - p->heard > 3 * rt->o.presence_ms) {
                    snprintf(victim, sizeof victim, "%s", key);
                    break;
                }
            }
            if (!victim[0])
                break;
            log_info("realtime: no presence from process %s for %lld ms; its users are offline here", victim,
                     (long long)(3 * rt->o.presence_ms));
            proc_drop(rt, victim); /* the map changed: look again */
        }
    }
    rt_presence_flush(rt, now);
}

/* ---- rt-worker: telling the sockets ---- */

/* A presence frame to w: every user it shows (all), or what changed since the last one. */
static void
send_statuses(struct rt *rt, struct pres_watch *w, bool all)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    int64_t now = clock_wall_ms();
    uint32_t n = all ? w->n : w->npending;
    size_t len;
    char *s;

    cJSON_AddStringToObject(o, "type", "presence");
    arr = cJSON_AddArrayToObject(o, "users");
    for (uint32_t i = 0; i < n; i++) {
        const struct pres_conns *pc = all ? w->links[i].pc : w->pending[i].pc;
        int st = all ? aggregate_of(map_get(rt->counts, pc->uid)) : w->pending[i].status;
        cJSON *x = cJSON_CreateObject(), *cs;
        struct user u;
        cJSON_AddStringToObject(x, "userId", pc->uid);
        cJSON_AddStringToObject(x, "status", status_name(st));
        /* the custom status travels with presence: shown where presence is shown, to the same sockets */
        if (rt->o.chat && chat_lookup_user(rt->o.chat, pc->uid, &u) && (cs = user_status_json(&u, now)))
            cJSON_AddItemToObject(x, "customStatus", cs);
        cJSON_AddItemToArray(arr, x);
    }
    s = json_print(o, &len);
    cJSON_Delete(o);
    if (s)
        rt->tx->unicast(rt->tx_ctx, w->conn, s, len);
    free(s);
}

static void
pending_clear(struct pres_watch *w)
{
    free(w->pending); /* an idle socket keeps no buffer */
    w->pending = NULL;
    w->npending = w->cappending = 0;
}

void
rt_presence_flush(struct rt *rt, int64_t now)
{
    for (size_t i = 0; i < rt->ndue;) {
        struct pres_watch *w = rt->pres_due[i];
        if (now - w->last_sent < PRES_FRAME_GAP_MS) {
            i++;
            continue;
        }
        if (w->npending)
            send_statuses(rt, w, false);
        pending_clear(w);
        w->last_sent = now;
        w->due = false;
        rt->pres_due[i] = rt->pres_due[--rt->ndue];
    }
}

bool
rt_presence_admit(struct rt *rt, uint64_t conn, const char *uid)
{
    struct pres_watch *w = calloc(1, sizeof *w);
    char key[24];
    bool oom = false;

    if (!w)
        return false;
    w->conn = conn;
    if (!link_add(rt, w, uid)) { /* links[0]: its own user */
        watch_free(w);
        return false;
    }
    w->links[0].pc->own++;
    conn_key(conn, key);
    map_put(rt->watches, key, w, &oom);
    if (oom) {
        link_unhook(rt, w, 0);
        watch_free(w);
        return false;
    }
    return true;
}

size_t
rt_presence_local_only(struct rt *rt, char (*ids)[ID_MAX + 1], size_t n)
{
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        struct pres_conns *pc = map_get(rt->watchers, ids[i]);
        if (pc && pc->own && w != i)
            memcpy(ids[w], ids[i], sizeof ids[w]);
        w += pc && pc->own;
    }
    return w;
}

void
rt_presence_watch(struct rt *rt, const struct rt_item *it)
{
    char key[24];
    struct pres_watch *w;
    const char(*ids)[ID_MAX + 1] = (const char(*)[ID_MAX + 1])it->frame;
    size_t n = it->naud < PRES_WATCH_MAX ? it->naud : PRES_WATCH_MAX;

    conn_key(it->conn, key);
    if (!(w = map_get(rt->watches, key)) || !w->n)
        return;
    /* keep links[0] (its own user), replace the rest */
    while (w->n > 1)
        link_unhook(rt, w, --w->n);
    struct map *seen = map_new(); /* duplicates are dropped in one pass, not by comparing every pair */
    if (seen)
        map_put(seen, w->links[0].pc->uid, w, NULL);
    for (size_t i = 0; seen && i < n; i++) {
        if (!id_valid(ids[i]) || map_get(seen, ids[i]))
            continue;
        map_put(seen, ids[i], w, NULL);
        if (!link_add(rt, w, ids[i]))
            break;
    }
    map_free(seen, NULL);
    /* the snapshot: every user shown, now; changes from here on come at most once a second */
    send_statuses(rt, w, true);
    pending_clear(w);
    due_del(rt, w);
    w->last_sent = clock_mono_ms();
}

void
rt_presence_gone(struct rt *rt, uint64_t conn)
{
    char key[24];
    struct pres_watch *w;

    conn_key(conn, key);
    if (!(w = map_get(rt->watches, key)))
        return;
    while (w->n)
        link_unhook(rt, w, --w->n);
    due_del(rt, w);
    watch_free(map_del(rt->watches, key));
    atomic_fetch_sub(&rt->nlocal, 1);
}

/* ---- rt-io: our announcements ---- */

static void
publish(struct rt *rt, const char *subject, cJSON *o)
{
    size_t len;
    char *s = json_print(o, &len);

    if (s)
        store_core_publish(rt->o.store, subject, s, len, NULL); /* lost while NATS is away: summaries heal it */
    free(s);
}

static cJSON *
announcement(struct rt *rt)
{
    cJSON *o = cJSON_CreateObject();
    char epoch[24];

    snprintf(epoch, sizeof epoch, "%" PRIx64, rt->epoch);
    cJSON_AddStringToObject(o, "e", epoch);
    cJSON_AddNumberToObject(o, "s", (double)++rt->seq);
    return o;
}

void
rt_presence_announce(struct rt *rt, struct map *pending, int64_t now)
{
    char subject[STORE_SUBJECT_MAX + 32];
    size_t it = 0;
    const char *uid;
    void *v;
    cJSON *delta = NULL, *u = NULL;
    bool full, hello;
    struct map *resync;

    if (store_subject_presence(subject, sizeof subject, rt->instance_key) != CH_OK)
        return;
    while (pending && map_next(pending, &it, &uid, &v)) {
        int want = status_code(*(const char *)v ? v : NULL);
        int have = (int)(uintptr_t)map_get(rt->mine, uid);
        if (want == have)
            continue; /* e.g. a socket came and went before we got here */
        if (want)
            map_put(rt->mine, uid, (void *)(uintptr_t)want, NULL);
        else
            map_del(rt->mine, uid);
        if (!delta) {
            delta = announcement(rt);
            u = cJSON_AddObjectToObject(delta, "u");
        }
        cJSON_AddStringToObject(u, uid, want == PRES_ONLINE ? "o" : want == PRES_AWAY ? "a"
                                        : want == PRES_DND  ? "d" : "");
    }
    if (delta)
        publish(rt, subject, delta);
    cJSON_Delete(delta);

    pthread_mutex_lock(&rt->iomu);
    full = rt->full_due || now >= rt->next_heartbeat;
    hello = rt->hello_due;
    rt->full_due = rt->hello_due = false;
    resync = map_len(rt->resync) ? rt->resync : NULL;
    if (resync)
        rt->resync = map_new();
    if (resync && !rt->resync) { /* out of memory: keep the requests for next time */
        rt->resync = resync;
        resync = NULL;
    }
    pthread_mutex_unlock(&rt->iomu);

    if (hello) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "p", rt->instance_key);
        publish(rt, STORE_SUBJECT_PRESENCE_HELLO, o);
        cJSON_Delete(o);
    }
    it = 0;
    while (resync && map_next(resync, &it, &uid, NULL)) {
        char rs[STORE_SUBJECT_MAX + 32];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "p", rt->instance_key);
        if (store_subject_presence_resync(rs, sizeof rs, uid) == CH_OK)
            publish(rt, rs, o);
        cJSON_Delete(o);
    }
    map_free(resync, NULL);
    if (!full)
        return;
    rt->next_heartbeat = now + rt->o.presence_ms;
    /* the whole list, in parts; a receiver swaps it in when the last part arrives */
    uint64_t id = rt->seq + 1;
    size_t total = map_len(rt->mine), sent = 0;
    it = 0;
    do {
        cJSON *o = announcement(rt);
        cJSON_AddNumberToObject(o, "full", (double)id);
        cJSON *users = cJSON_AddObjectToObject(o, "u");
        size_t k = 0;
        while (k < PRES_PART_USERS && map_next(rt->mine, &it, &uid, &v)) {
            int code = (int)(uintptr_t)v;
            cJSON_AddStringToObject(users, uid, code == PRES_AWAY ? "a" : code == PRES_DND ? "d" : "o");
            k++;
        }
        sent += k;
        cJSON_AddBoolToObject(o, "last", sent >= total);
        publish(rt, subject, o);
        cJSON_Delete(o);
    } while (sent < total);
}

void
rt_presence_leave(struct rt *rt)
{
    char subject[STORE_SUBJECT_MAX + 32];
    cJSON *o;

    if (store_subject_presence(subject, sizeof subject, rt->instance_key) != CH_OK)
        return;
    o = announcement(rt);
    cJSON_AddBoolToObject(o, "bye", true);
    publish(rt, subject, o);
    cJSON_Delete(o);
}
