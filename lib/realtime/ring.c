/* SPDX-License-Identifier: MIT */
/*
 * The replay ring and the resume decision (rt-worker only). The ring keeps the last replay_events durable frames
 * this process handed out. A socket that says hello with resumeFrom = a cursor in the ring gets the later frames
 * of the rooms it is in, then live ones; older than the ring (or than this process's start), it gets "reset" and
 * reloads what it shows. Both run on rt-worker, in the order frames go to the transport, so a resume is exact.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "json/json.h"
#include "realtime/rt_int.h"

enum ch_status
rt_ring_init(struct rt *rt)
{
    rt->ring_cap = rt->o.replay_events;
    rt->ring = calloc(rt->ring_cap ? rt->ring_cap : 1, sizeof *rt->ring);
    rt->ring_floor = chat_applied(rt->o.chat);
    return rt->ring ? CH_OK : CH_ENOMEM;
}

void
rt_ring_free(struct rt *rt)
{
    for (size_t i = 0; rt->ring && i < rt->ring_n; i++)
        free(rt->ring[(rt->ring_start + i) % rt->ring_cap].frame);
    free(rt->ring);
    rt->ring = NULL;
    rt->ring_n = 0;
}

void
rt_ring_push(struct rt *rt, const struct rt_item *it)
{
    struct ring_entry *e;

    if (!rt->ring_cap || !it->seq)
        return;
    if (rt->ring_n == rt->ring_cap) {
        e = &rt->ring[rt->ring_start];
        rt->ring_floor = e->seq;
        free(e->frame);
        e->frame = NULL;
        rt->ring_start = (rt->ring_start + 1) % rt->ring_cap;
        rt->ring_n--;
    }
    e = &rt->ring[(rt->ring_start + rt->ring_n) % rt->ring_cap];
    e->seq = it->seq;
    memcpy(e->room, it->room, sizeof e->room);
    memcpy(e->type, it->type, sizeof e->type);
    memcpy(e->subject_user, it->subject_user, sizeof e->subject_user);
    e->len = it->frame_len;
    e->frame = malloc(it->frame_len ? it->frame_len : 1);
    if (e->frame)
        memcpy(e->frame, it->frame, it->frame_len);
    rt->ring_n++; /* an entry without its frame (out of memory) keeps its place and is skipped on replay */
}

/* Events after this are all in the ring: those evicted, and the start-up replay (never delivered), are not. */
static uint64_t
ring_floor(struct rt *rt)
{
    uint64_t target = chat_replay_target(rt->o.chat);

    return rt->ring_floor > target ? rt->ring_floor : target;
}

static uint64_t
ring_last(struct rt *rt)
{
    return rt->ring_n ? rt->ring[(rt->ring_start + rt->ring_n - 1) % rt->ring_cap].seq : ring_floor(rt);
}

static bool
add(struct rt_frame **v, size_t *n, size_t *cap, char *data, size_t len)
{
    if (!data)
        return false;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct rt_frame *nv = realloc(*v, nc * sizeof *nv);
        if (!nv) {
            free(data);
            return false;
        }
        *v = nv;
        *cap = nc;
    }
    (*v)[*n].data = data;
    (*v)[(*n)++].len = len;
    return true;
}

static char *
dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n ? n : 1);

    if (d)
        memcpy(d, p, n);
    return d;
}

void
rt_ring_admit(struct rt *rt, const struct rt_item *it)
{
    uint64_t last = ring_last(rt), floor = ring_floor(rt), from = last, resume = 0;
    struct rt_frame *v = NULL;
    size_t n = 0, cap = 0, len;
    bool reset = false, ok = true;
    char *end = NULL;

    if (it->resume[0]) {
        resume = strtoull(it->resume, &end, 10);
        if (*end == '\0') {
            if (resume >= floor && resume <= last)
                from = resume;
            else if (resume < floor)
                reset = true; /* too much was missed (or this process has not seen it): refetch */
        }
    }
    if (reset) {
        char *f = rt_frame_simple("reset", "reason", "too many events missed; reload the rooms you show", &len);
        ok = add(&v, &n, &cap, f, len);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ready");
    json_add_int64_str(o, "cursor", (int64_t)from);
    cJSON_AddStringToObject(o, "userId", it->user);
    char *f = json_print(o, &len);
    cJSON_Delete(o);
    ok = ok && add(&v, &n, &cap, f, len);
    for (size_t i = 0; ok && from < last && i < rt->ring_n; i++) {
        struct ring_entry *e = &rt->ring[(rt->ring_start + i) % rt->ring_cap];
        if (e->seq <= from || !e->frame)
            continue;
        if (chat_is_member(rt->o.chat, e->room, it->user) ||
            (!strcmp(e->type, "member.left") && !strcmp(e->subject_user, it->user)))
            ok = add(&v, &n, &cap, dup_bytes(e->frame, e->len), e->len);
    }
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            free(v[i].data);
        free(v);
        rt->tx->refuse(rt->tx_ctx, it->conn, 1011, "out of memory");
        return;
    }
    rt->tx->admit(rt->tx_ctx, it->conn, it->user, it->verifier, v, n);
}
