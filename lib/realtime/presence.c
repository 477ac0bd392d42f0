/* SPDX-License-Identifier: MIT */
/*
 * Presence. Each process writes "<uid>.<process>" = online|away into the presence bucket for the users it holds
 * sockets for, refreshes those entries every presence_ms and removes them when the user's last socket goes
 * (rt-io: the writes are NATS round trips). Every process watches the bucket and aggregates per user: online if
 * any entry says online, away if all say away, offline when none is left or the entries stopped being refreshed
 * for three periods (a crashed process); each change is sent to every socket (rt-worker).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "base/clock.h"
#include "realtime/rt_int.h"
#include "store/store.h"

struct presence_entry {
    char user[ID_MAX + 1];
    char status[16];
    int64_t seen;
};

static const char *const STATUS_ONLINE = "online";
static const char *const STATUS_AWAY = "away";

/* ---- rt-worker ---- */

static void
broadcast(struct rt *rt, const char *uid, const char *status)
{
    cJSON *o = cJSON_CreateObject();
    size_t len;
    char *s;

    cJSON_AddStringToObject(o, "type", "presence");
    cJSON_AddStringToObject(o, "userId", uid);
    cJSON_AddStringToObject(o, "status", status);
    s = json_print(o, &len);
    cJSON_Delete(o);
    if (s)
        rt->tx->deliver(rt->tx_ctx, s, len, NULL, 0, true);
    free(s);
}

/* Recompute uid's status from every process's entries; tell everyone when it changed. */
static void
aggregate(struct rt *rt, const char *uid)
{
    size_t it = 0;
    void *v;
    const char *best = NULL;

    while (map_next(rt->presence, &it, NULL, &v)) {
        struct presence_entry *e = v;
        if (strcmp(e->user, uid))
            continue;
        if (!strcmp(e->status, STATUS_ONLINE))
            best = STATUS_ONLINE;
        else if (!strcmp(e->status, STATUS_AWAY) && best != STATUS_ONLINE)
            best = STATUS_AWAY;
    }
    if (map_get(rt->agg, uid) == best)
        return;
    if (best)
        map_put(rt->agg, uid, (void *)best, NULL);
    else
        map_del(rt->agg, uid);
    pthread_mutex_lock(&rt->pmu);
    if (best)
        map_put(rt->snap, uid, (void *)best, NULL);
    else
        map_del(rt->snap, uid);
    pthread_mutex_unlock(&rt->pmu);
    broadcast(rt, uid, best ? best : "offline");
}

void
rt_presence_update(struct rt *rt, const struct rt_item *it)
{
    char uid[ID_MAX + 1];
    size_t n = strcspn(it->key, ".");

    if (n == 0 || n > ID_MAX)
        return;
    snprintf(uid, sizeof uid, "%.*s", (int)n, it->key);
    if (it->deleted) {
        free(map_del(rt->presence, it->key));
    } else {
        struct presence_entry *e = map_get(rt->presence, it->key);
        if (!e) {
            bool oom = false;
            if (!(e = calloc(1, sizeof *e)))
                return;
            map_put(rt->presence, it->key, e, &oom);
            if (oom) {
                free(e);
                return;
            }
        }
        snprintf(e->user, sizeof e->user, "%s", uid);
        snprintf(e->status, sizeof e->status, "%s", it->status);
        e->seen = clock_mono_ms();
    }
    aggregate(rt, uid);
}

void
rt_presence_tick(struct rt *rt, int64_t now)
{
    /* age out the entries of processes that stopped refreshing theirs */
    if (now < rt->next_aging)
        return;
    rt->next_aging = now + rt->o.presence_ms;
    for (;;) {
        size_t k = 0;
        const char *key;
        void *v;
        bool removed = false;
        while (map_next(rt->presence, &k, &key, &v)) {
            struct presence_entry *e = v;
            if (now - e->seen > 3 * rt->o.presence_ms) {
                char user[ID_MAX + 1];
                memcpy(user, e->user, sizeof user);
                free(map_del(rt->presence, key));
                aggregate(rt, user);
                removed = true;
                break; /* the map changed: start over */
            }
        }
        if (!removed)
            break;
    }
}

/* ---- rt-io ---- */

static void
put(struct rt *rt, const char *uid, const char *status)
{
    char key[200];

    snprintf(key, sizeof key, "%s.%s", uid, rt->instance_key);
    if (status)
        store_kv_put(rt->o.store, STORE_B_PRESENCE, key, status, strlen(status), NULL, NULL);
    else
        store_kv_purge(rt->o.store, STORE_B_PRESENCE, key, NULL);
}

void
rt_presence_write(struct rt *rt, struct map *pending, int64_t now)
{
    size_t it = 0;
    const char *uid;
    void *v;

    while (pending && map_next(pending, &it, &uid, &v)) {
        const char *want = *(const char *)v ? (!strcmp(v, STATUS_AWAY) ? STATUS_AWAY : STATUS_ONLINE) : NULL;
        const char *have = map_get(rt->mine, uid);
        if (want == have)
            continue; /* e.g. a socket came and went before we got here */
        if (want)
            map_put(rt->mine, uid, (void *)want, NULL);
        else
            map_del(rt->mine, uid);
        put(rt, uid, want);
    }
    if (now >= rt->next_heartbeat) {
        rt->next_heartbeat = now + rt->o.presence_ms;
        it = 0;
        while (map_next(rt->mine, &it, &uid, &v))
            put(rt, uid, v);
    }
}

void
rt_presence_leave(struct rt *rt)
{
    size_t it = 0;
    const char *uid;

    /* our entries go with us, if NATS is there to hear it (they expire by themselves otherwise) */
    while (store_answering(rt->o.store) && map_next(rt->mine, &it, &uid, NULL))
        put(rt, uid, NULL);
}
