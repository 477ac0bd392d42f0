/* SPDX-License-Identifier: MIT */
/*
 * Token buckets (see ratelimit.h). A bucket is refilled lazily when it is taken from; buckets that are full
 * again are dropped when the map grows large, so idle users cost nothing. One mutex: a take is a map lookup and
 * some arithmetic.
 */
#include "base/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>

#include "base/map.h"

#define PRUNE_AT 65536

struct bucket {
    double tokens;
    int64_t at_ms;
};

struct ratelimit {
    pthread_mutex_t mu;
    double rate, burst; /* tokens a second; at most burst */
    struct map *buckets;
};

struct ratelimit *
ratelimit_new(double rate, double burst)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);

    if (!rl || !(rl->buckets = map_new())) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    map_free(rl->buckets, free);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static double
level(const struct ratelimit *rl, const struct bucket *b, int64_t now_ms)
{
    double t = b->tokens + rl->rate * (double)(now_ms - b->at_ms) / 1000.0;

    return t > rl->burst ? rl->burst : t;
}

/* Drop the buckets that are full again (their users could post a whole burst): they hold nothing worth keeping. */
static void
prune(struct ratelimit *rl, int64_t now_ms)
{
    struct map *keep = map_new();
    size_t it = 0;
    const char *key;
    void *v;

    if (!keep)
        return;
    while (map_next(rl->buckets, &it, &key, &v)) {
        if (level(rl, v, now_ms) >= rl->burst) {
            free(v);
            continue;
        }
        bool oom = false;
        map_put(keep, key, v, &oom);
        if (oom)
            free(v);
    }
    map_free(rl->buckets, NULL);
    rl->buckets = keep;
}

bool
ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, int64_t *retry_ms)
{
    struct bucket *b;
    bool ok = true;

    if (!rl || rl->rate <= 0)
        return true;
    pthread_mutex_lock(&rl->mu);
    if (!(b = map_get(rl->buckets, key))) {
        bool oom = false;
        if (map_len(rl->buckets) >= PRUNE_AT)
            prune(rl, now_ms);
        if ((b = malloc(sizeof *b))) {
            b->tokens = rl->burst;
            b->at_ms = now_ms;
            map_put(rl->buckets, key, b, &oom);
            if (oom) {
                free(b);
                b = NULL;
            }
        }
    }
    if (b) { /* (out of memory: let it through rather than refuse everyone) */
        b->tokens = level(rl, b, now_ms);
        b->at_ms = now_ms;
        if (b->tokens >= 1) {
            b->tokens -= 1;
        } else {
            ok = false;
            if (retry_ms)
                *retry_ms = (int64_t)((1 - b->tokens) * 1000.0 / rl->rate) + 1;
        }
    }
    pthread_mutex_unlock(&rl->mu);
    return ok;
}
