/* SPDX-License-Identifier: MIT */
/*
 * The realtime domain's lifetime, its two threads and its feeds (see realtime.h).
 *
 * Durable events: the chat model calls on_change in stream order on its follower thread; we serialise the frame
 * once and queue it with its audience. rt-worker appends it to the replay ring and hands it to the transport.
 * Because the ring, the resume decision (rt_ring_admit) and the live hand-over all happen on rt-worker, in one
 * order, and the transport acts on its queue in that order, a resuming client gets nothing twice and misses
 * nothing.
 *
 * rt-io takes hello tokens (accounts_auth_bearer: a NATS round trip) and this process's presence writes; both are
 * queued under iomu, presence coalesced per user so a stalled NATS cannot pile up work.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts/accounts.h"
#include "base/clock.h"
#include "chat/chat.h"
#include "json/json.h"
#include "realtime/rt_int.h"
#include "store/store.h"
#include "store/subject.h"

void
rt_item_free(struct rt_item *it)
{
    if (!it)
        return;
    free(it->frame);
    free(it->aud);
    free(it->key);
    explicit_bzero(it->verifier, sizeof it->verifier);
    free(it);
}

/* Changes and notifications queued while no socket is admitted here wait for the worker's next tick (or for this
 * many of them) instead of waking it for each: they only go to the ring then, and a socket's hello, which wakes
 * it, comes after them in the queue. */
#define RT_LAZY_MAX 256

void
rt_enqueue(struct rt *rt, struct rt_item *it)
{
    pthread_mutex_lock(&rt->qmu);
    if (rt->stop) {
        pthread_mutex_unlock(&rt->qmu);
        rt_item_free(it);
        return;
    }
    if (rt->qtail)
        rt->qtail->next = it;
    else
        rt->q = it;
    rt->qtail = it;
    rt->nq++;
    if (it->kind == RT_ADMIT) /* counted from here: a change queued after it must carry its audience */
        atomic_fetch_add(&rt->nlocal, 1);
    if ((it->kind != RT_CHANGE && it->kind != RT_NOTIFY) || rt->nq >= RT_LAZY_MAX ||
        atomic_load(&rt->nlocal) > 0)
        pthread_cond_signal(&rt->qcv);
    pthread_mutex_unlock(&rt->qmu);
}

char *
rt_frame_simple(const char *type, const char *k, const char *v, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "type", type);
    if (k)
        cJSON_AddStringToObject(o, k, v);
    s = json_print(o, len);
    cJSON_Delete(o);
    return s;
}

/* ---- rt-worker ---- */

/* A change or notification goes to the sockets of its audience that are here (none: nothing to wake). */
static void
deliver_local(struct rt *rt, struct rt_item *it)
{
    if ((it->naud = rt_presence_local_only(rt, it->aud, it->naud)))
        rt->tx->deliver(rt->tx_ctx, it->frame, it->frame_len, (const char(*)[ID_MAX + 1])it->aud, it->naud, false);
}

static void
worker_handle(struct rt *rt, struct rt_item *it)
{
    switch (it->kind) {
    case RT_CHANGE:
        if (!strcmp(it->type, "user.updated") && it->subject_user[0])
            rt_presence_touch(rt, it->subject_user);
        rt_ring_push(rt, it);
        deliver_local(rt, it);
        break;
    case RT_NOTIFY:
        deliver_local(rt, it);
        break;
    case RT_TYPING:
        rt_typing_update(rt, it);
        break;
    case RT_PRESENCE:
        rt_presence_heard(rt, it);
        break;
    case RT_LOCAL:
        rt_presence_local(rt, it->user, !strcmp(it->status, "online") ? PRES_ONLINE
                                        : !strcmp(it->status, "away") ? PRES_AWAY
                                        : !strcmp(it->status, "dnd")  ? PRES_DND
                                                                      : PRES_OFF);
        break;
    case RT_WATCH:
        rt_presence_watch(rt, it);
        break;
    case RT_GONE:
        rt_presence_gone(rt, it->conn);
        break;
    case RT_REVOKED: {
        /* key: <uid>.<kind>.<verifier> */
        size_t n = strcspn(it->key, ".");
        char uid[ID_MAX + 1];
        if (n == 0 || n > ID_MAX || strlen(it->key) < n + 3)
            break;
        snprintf(uid, sizeof uid, "%.*s", (int)n, it->key);
        rt->tx->terminate(rt->tx_ctx, uid, it->key + n + 3);
        break;
    }
    case RT_ADMIT:
        /* before the admit goes out: a watch frame may follow it, and frames go to users with a watch here */
        if (rt_presence_admit(rt, it->conn, it->user)) {
            rt_ring_admit(rt, it);
        } else {
            atomic_fetch_sub(&rt->nlocal, 1);
            rt->tx->refuse(rt->tx_ctx, it->conn, 1011, "out of memory");
        }
        break;
    case RT_REFUSE:
        rt->tx->refuse(rt->tx_ctx, it->conn, it->code, it->reason);
        break;
    }
}

static void *
worker_main(void *arg)
{
    struct rt *rt = arg;
    int64_t next_tick = clock_mono_ms() + RT_TICK_MS;

    for (;;) {
        struct rt_item *list;
        bool stop;

        pthread_mutex_lock(&rt->qmu);
        while (!rt->q && !rt->stop) {
            int64_t wait = next_tick - clock_mono_ms();
            if (wait <= 0)
                break;
            struct timespec ts = clock_deadline(wait);
            pthread_cond_timedwait(&rt->qcv, &rt->qmu, &ts);
        }
        list = rt->q;
        rt->q = rt->qtail = NULL;
        rt->nq = 0;
        stop = rt->stop;
        pthread_mutex_unlock(&rt->qmu);
        while (list) {
            struct rt_item *next = list->next;
            if (!stop)
                worker_handle(rt, list);
            rt_item_free(list);
            list = next;
        }
        if (stop)
            break;
        int64_t now = clock_mono_ms();
        if (now >= next_tick) {
            next_tick = now + RT_TICK_MS;
            rt_typing_tick(rt, now);
            rt_presence_tick(rt, now);
        } else {
            rt_presence_flush(rt, now);
        }
    }
    return NULL;
}

/* ---- rt-io ---- */

static void
check_token(struct rt *rt, struct rt_auth *a)
{
    struct principal who;
    struct ch_err err = { 0 };
    struct rt_item *it = calloc(1, sizeof *it);
    enum ch_status st = accounts_auth_bearer(rt->o.accounts, a->token, &who, &err);

    if (!it) {
        explicit_bzero(&who, sizeof who);
        return;
    }
    it->conn = a->conn;
    if (st == CH_OK) {
        it->kind = RT_ADMIT;
        snprintf(it->user, sizeof it->user, "%s", who.user.id);
        memcpy(it->verifier, who.verifier, sizeof it->verifier);
        memcpy(it->resume, a->resume, sizeof it->resume);
    } else if (st == CH_EUNAVAIL || st == CH_ENOMEM || st == CH_EINTERNAL) {
        /* 1013 Try Again Later: the token may be fine, we could not check it now */
        it->kind = RT_REFUSE;
        it->code = 1013;
        it->reason = "cannot check the token right now; retry";
    } else {
        it->kind = RT_REFUSE;
        it->code = 1008;
        it->reason = "invalid token";
    }
    explicit_bzero(&who, sizeof who);
    rt_enqueue(rt, it);
}

static void *
io_main(void *arg)
{
    struct rt *rt = arg;

    for (;;) {
        struct rt_auth *auth;
        struct map *pending = NULL;
        int64_t now = clock_mono_ms();

        pthread_mutex_lock(&rt->iomu);
        rt->io_busy = false;
        pthread_cond_broadcast(&rt->iocv); /* rt_quiesce waits for an idle io thread */
        while (!rt->auth && !map_len(rt->pending) && !rt->io_stop && now < rt->next_heartbeat && !rt->full_due &&
               !rt->hello_due && !map_len(rt->resync)) {
            struct timespec ts = clock_deadline(rt->next_heartbeat - now);
            pthread_cond_timedwait(&rt->iocv, &rt->iomu, &ts);
            now = clock_mono_ms();
        }
        if (rt->io_stop) {
            pthread_mutex_unlock(&rt->iomu);
            break;
        }
        auth = rt->auth;
        rt->auth = rt->authtail = NULL;
        if (map_len(rt->pending)) {
            pending = rt->pending;
            rt->pending = map_new();
            if (!rt->pending) { /* keep the old map rather than lose the requests */
                rt->pending = pending;
                pending = NULL;
            }
        }
        rt->io_busy = true;
        pthread_mutex_unlock(&rt->iomu);

        while (auth) {
            struct rt_auth *next = auth->next;
            check_token(rt, auth);
            explicit_bzero(auth, sizeof *auth);
            free(auth);
            auth = next;
        }
        rt_presence_announce(rt, pending, clock_mono_ms());
        map_free(pending, free);
    }
    store_thread_exit();
    return NULL;
}

/* ---- feeds (other threads) ---- */

static void
on_change(void *ctx, const struct chat_change *ch)
{
    struct rt *rt = ctx;
    struct rt_item *it;

    if (!atomic_load(&rt->live)) {
        /* the start-up replay of history is nobody's news */
        if (ch->seq && ch->seq < chat_replay_target(rt->o.chat))
            return;
        atomic_store(&rt->live, true);
    }
    if (!(it = calloc(1, sizeof *it)))
        return;
    it->kind = RT_CHANGE;
    it->seq = ch->seq;
    snprintf(it->room, sizeof it->room, "%s", ch->room_id);
    snprintf(it->type, sizeof it->type, "%s", ch->type);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(ch->payload, "userId");
    if (cJSON_IsString(u))
        snprintf(it->subject_user, sizeof it->subject_user, "%s", u->valuestring);
    it->frame = json_print(ch->payload, &it->frame_len);
    /* with no socket here, nor one being admitted (that is counted before its hello is queued, so it comes after
     * this), nobody here can get it: it only goes to the ring, and a room of 10,000 members is 650 KB of ids */
    size_t naud = atomic_load(&rt->nlocal) > 0 ? ch->naudience : 0;
    it->aud = calloc(naud ? naud : 1, sizeof *it->aud);
    if (!it->frame || !it->aud) {
        rt_item_free(it);
        return;
    }
    for (size_t i = 0; i < naud; i++)
        snprintf(it->aud[i], sizeof it->aud[i], "%s", ch->audience[i]);
    it->naud = naud;
    rt_enqueue(rt, it);
}

/* A notification some process made (chatto.rt.notify.<user>): a frame for that user's sockets here. */
static void
on_notify(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
    struct rt *rt = ctx;
    const char *uid = strrchr(subject, '.');
    struct rt_item *it;

    (void)reply;
    if (!uid || !id_valid(uid + 1) || !len || len > 64 * 1024 || !(it = calloc(1, sizeof *it)))
        return;
    it->kind = RT_NOTIFY;
    it->aud = calloc(1, sizeof *it->aud);
    it->frame = malloc(len + 1);
    if (!it->aud || !it->frame) {
        rt_item_free(it);
        return;
    }
    memcpy(it->frame, data, len);
    it->frame[len] = '\0';
    it->frame_len = len;
    snprintf(it->aud[0], sizeof it->aud[0], "%s", uid + 1);
    it->naud = 1;
    rt_enqueue(rt, it);
}

static void
on_typing(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
    struct rt *rt = ctx;
    cJSON *o = cJSON_ParseWithLength(data, len);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "roomId"), *u = cJSON_GetObjectItemCaseSensitive(o, "userId"),
                *t = cJSON_GetObjectItemCaseSensitive(o, "threadRootEventId");
    struct rt_item *it;

    (void)subject;
    (void)reply;
    if (cJSON_IsString(r) && cJSON_IsString(u) && id_valid(r->valuestring) && id_valid(u->valuestring) &&
        (it = calloc(1, sizeof *it))) {
        it->kind = RT_TYPING;
        snprintf(it->room, sizeof it->room, "%s", r->valuestring);
        snprintf(it->user, sizeof it->user, "%s", u->valuestring);
        if (cJSON_IsString(t) && id_valid(t->valuestring))
            snprintf(it->thread, sizeof it->thread, "%s", t->valuestring);
        rt_enqueue(rt, it);
    }
    cJSON_Delete(o);
}

static void
on_presence(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
    struct rt *rt = ctx;
    struct rt_item *it = calloc(1, sizeof *it);

    (void)reply;
    /* parsed on rt-worker: this is nats.c's thread */
    if (!it || strlen(subject) >= 256 || !(it->key = strdup(subject)) || !(it->frame = malloc(len ? len : 1))) {
        rt_item_free(it);
        return;
    }
    it->kind = RT_PRESENCE;
    memcpy(it->frame, data, len);
    it->frame_len = len;
    rt_enqueue(rt, it);
}

void
rt_revoked(void *ctx, const char *cred_key)
{
    struct rt *rt = ctx;
    struct rt_item *it;

    if (!cred_key || strlen(cred_key) >= 256 || !(it = calloc(1, sizeof *it)))
        return;
    if (!(it->key = strdup(cred_key))) {
        free(it);
        return;
    }
    it->kind = RT_REVOKED;
    rt_enqueue(rt, it);
}

/* ---- public ---- */

enum ch_status
rt_new(const struct rt_opts *o, struct rt **out, struct ch_err *err)
{
    struct rt *rt = calloc(1, sizeof *rt);
    size_t k = 0;

    if (!rt)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    rt->o = *o;
    for (const char *p = o->instance ? o->instance : "chatto"; *p && k < sizeof rt->instance_key - 1; p++)
        rt->instance_key[k++] = (char)(((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                        (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
                                           ? *p
                                           : '-');
    rt->instance_key[k] = '\0';
    pthread_mutex_init(&rt->qmu, NULL);
    pthread_cond_init(&rt->qcv, NULL);
    pthread_mutex_init(&rt->iomu, NULL);
    pthread_cond_init(&rt->iocv, NULL);
    pthread_mutex_init(&rt->pmu, NULL);
    rt->pending = map_new();
    rt->resync = map_new();
    rt->mine = map_new();
    rt->snap = map_new();
    if (!rt->pending || !rt->resync || !rt->mine || !rt->snap || rt_presence_init(rt) != CH_OK ||
        rt_ring_init(rt) != CH_OK) {
        rt_stop(rt);
        return ch_err_set(err, CH_ENOMEM, NULL, "cannot set up the realtime domain");
    }
    rt->next_heartbeat = clock_mono_ms() + o->presence_ms;
    *out = rt;
    return CH_OK;
}

enum ch_status
rt_start(struct rt *rt, const struct rt_transport *tx, void *tx_ctx, struct ch_err *err)
{
    enum ch_status st;

    rt->tx = tx;
    rt->tx_ctx = tx_ctx;
    if (pthread_create(&rt->worker, NULL, worker_main, rt) != 0)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the realtime worker thread");
    pthread_setname_np(rt->worker, "rt-worker");
    if (pthread_create(&rt->io, NULL, io_main, rt) != 0) {
        /* the worker runs: stop it the way rt_stop would, so nothing is left half started */
        pthread_mutex_lock(&rt->qmu);
        rt->stop = true;
        pthread_cond_signal(&rt->qcv);
        pthread_mutex_unlock(&rt->qmu);
        pthread_join(rt->worker, NULL);
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the realtime io thread");
    }
    pthread_setname_np(rt->io, "rt-io");
    rt->started = rt->io_running = true;
    chat_set_listener(rt->o.chat, on_change, rt);
    if ((st = store_core_subscribe(rt->o.store, STORE_SUBJECT_PRESENCE_ALL, on_presence, rt, &rt->presence_sub,
                                   err)) != CH_OK ||
        (st = store_core_subscribe(rt->o.store, STORE_SUBJECT_TYPING_ALL, on_typing, rt, &rt->typing_sub, err)) !=
            CH_OK ||
        (st = store_core_subscribe(rt->o.store, STORE_SUBJECT_NOTIFY_ALL, on_notify, rt, &rt->notify_sub, err)) !=
            CH_OK)
        return st; /* the caller's rt_stop undoes what started */
    return CH_OK;
}

void
rt_quiesce(struct rt *rt, int64_t budget_ms)
{
    int64_t deadline;

    if (!rt || !rt->io_running)
        return;
    deadline = clock_mono_ms() + budget_ms;
    /* let rt-io write what the transport's goodbyes asked for, while NATS answers and time remains */
    pthread_mutex_lock(&rt->iomu);
    while ((rt->io_busy || map_len(rt->pending) || rt->auth) && store_answering(rt->o.store) &&
           clock_mono_ms() < deadline) {
        struct timespec ts = clock_deadline(50);
        pthread_cond_timedwait(&rt->iocv, &rt->iomu, &ts);
    }
    rt->io_stop = true;
    pthread_cond_broadcast(&rt->iocv);
    pthread_mutex_unlock(&rt->iomu);
    pthread_join(rt->io, NULL);
    rt->io_running = false;
    rt_presence_leave(rt);
}

void
rt_stop(struct rt *rt)
{
    if (!rt)
        return;
    if (rt->started) {
        chat_set_listener(rt->o.chat, NULL, NULL);
        store_core_unsubscribe(rt->typing_sub);
        store_core_unsubscribe(rt->notify_sub);
        store_core_unsubscribe(rt->presence_sub);
        if (rt->io_running) {
            pthread_mutex_lock(&rt->iomu);
            rt->io_stop = true;
            pthread_cond_broadcast(&rt->iocv);
            pthread_mutex_unlock(&rt->iomu);
            pthread_join(rt->io, NULL);
            rt->io_running = false;
        }
        pthread_mutex_lock(&rt->qmu);
        rt->stop = true;
        pthread_cond_signal(&rt->qcv);
        pthread_mutex_unlock(&rt->qmu);
        pthread_join(rt->worker, NULL);
    }
    for (struct rt_item *it = rt->q, *nx; it; it = nx) {
        nx = it->next;
        rt_item_free(it);
    }
    for (struct rt_auth *a = rt->auth, *nx; a; a = nx) {
        nx = a->next;
        explicit_bzero(a, sizeof *a);
        free(a);
    }
    rt_ring_free(rt);
    rt_typing_free(rt);
    map_free(rt->pending, free);
    map_free(rt->resync, NULL);
    map_free(rt->mine, NULL);
    rt_presence_free(rt);
    map_free(rt->snap, NULL);
    pthread_mutex_destroy(&rt->qmu);
    pthread_cond_destroy(&rt->qcv);
    pthread_mutex_destroy(&rt->iomu);
    pthread_cond_destroy(&rt->iocv);
    pthread_mutex_destroy(&rt->pmu);
    free(rt);
}

void
rt_hello(struct rt *rt, uint64_t conn, const char *uid, const char *verifier, const char *token, const char *resume)
{
    if (uid) {
        struct rt_item *it = calloc(1, sizeof *it);
        if (!it)
            return;
        it->kind = RT_ADMIT;
        it->conn = conn;
        snprintf(it->user, sizeof it->user, "%s", uid);
        snprintf(it->verifier, sizeof it->verifier, "%s", verifier ? verifier : "");
        snprintf(it->resume, sizeof it->resume, "%s", resume ? resume : "");
        rt_enqueue(rt, it);
        return;
    }
    struct rt_auth *a = calloc(1, sizeof *a);
    if (!a)
        return;
    a->conn = conn;
    snprintf(a->token, sizeof a->token, "%s", token ? token : "");
    snprintf(a->resume, sizeof a->resume, "%s", resume ? resume : "");
    pthread_mutex_lock(&rt->iomu);
    if (rt->io_stop) {
        pthread_mutex_unlock(&rt->iomu);
        explicit_bzero(a, sizeof *a);
        free(a);
        return;
    }
    if (rt->authtail)
        rt->authtail->next = a;
    else
        rt->auth = a;
    rt->authtail = a;
    pthread_cond_signal(&rt->iocv);
    pthread_mutex_unlock(&rt->iomu);
}

void
rt_local_status(struct rt *rt, const char *uid, const char *status)
{
    char *v = strdup(status ? status : "");
    struct rt_item *it = calloc(1, sizeof *it);

    if (it) { /* what this process's sockets say counts here at once; rt-io tells the others */
        it->kind = RT_LOCAL;
        snprintf(it->user, sizeof it->user, "%s", uid);
        snprintf(it->status, sizeof it->status, "%s", status ? status : "");
        rt_enqueue(rt, it);
    }
    if (!v)
        return;
    bool oom = false;
    pthread_mutex_lock(&rt->iomu);
    free(map_put(rt->pending, uid, v, &oom)); /* the latest wish wins */
    if (oom)
        free(v);
    pthread_cond_signal(&rt->iocv);
    pthread_mutex_unlock(&rt->iomu);
}

void
rt_watch(struct rt *rt, uint64_t conn, const char (*uids)[ID_MAX + 1], size_t n)
{
    struct rt_item *it = calloc(1, sizeof *it);

    if (!it || (n && !(it->frame = malloc(n * sizeof *uids)))) {
        rt_item_free(it);
        return;
    }
    it->kind = RT_WATCH;
    it->conn = conn;
    if (n)
        memcpy(it->frame, uids, n * sizeof *uids);
    it->naud = n;
    rt_enqueue(rt, it);
}

void
rt_conn_gone(struct rt *rt, uint64_t conn)
{
    struct rt_item *it = calloc(1, sizeof *it);

    if (!it)
        return;
    it->kind = RT_GONE;
    it->conn = conn;
    rt_enqueue(rt, it);
}

enum ch_status
rt_typing(struct rt *rt, const char *room, const char *uid, const char *thread_root, struct ch_err *err)
{
    cJSON *o = cJSON_CreateObject();
    char subject[STORE_SUBJECT_MAX], *s;
    size_t len;
    enum ch_status st;

    cJSON_AddStringToObject(o, "roomId", room);
    cJSON_AddStringToObject(o, "userId", uid);
    if (thread_root && *thread_root)
        cJSON_AddStringToObject(o, "threadRootEventId", thread_root);
    s = json_print(o, &len);
    cJSON_Delete(o);
    if (!s)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if ((st = store_subject_typing(subject, sizeof subject, room)) != CH_OK) {
        free(s);
        return ch_err_set(err, CH_EINVAL, "roomId", "not a room id");
    }
    st = store_core_publish(rt->o.store, subject, s, len, err);
    free(s);
    return st;
}

const char *
rt_presence(struct rt *rt, const char *uid)
{
    const char *s;

    pthread_mutex_lock(&rt->pmu);
    s = map_get(rt->snap, uid);
    pthread_mutex_unlock(&rt->pmu);
    return s ? s : "offline";
}
