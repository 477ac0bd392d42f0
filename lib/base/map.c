/* SPDX-License-Identifier: MIT */
/* String-keyed hash map; see map.h. Deletion uses backward-shift, so there are no tombstones. */
#include "base/map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    char *key; /* NULL = empty */
    void *value;
    uint32_t hash;
};

struct map {
    struct slot *slots;
    size_t cap; /* power of two */
    size_t len;
    bool borrow; /* keys are the caller's (map_new_borrowing) */
};

static uint32_t
fnv1a(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct map *
map_new(void)
{
    struct map *m = calloc(1, sizeof *m);

    if (!m)
        return NULL;
    m->cap = 16;
    if (!(m->slots = calloc(m->cap, sizeof *m->slots))) {
        free(m);
        return NULL;
    }
    return m;
}

struct map *
map_new_borrowing(void)
{
    struct map *m = map_new();

    if (m)
        m->borrow = true;
    return m;
}

void
map_free(struct map *m, void (*free_value)(void *))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        if (!m->borrow)
            free(m->slots[i].key);
        if (free_value)
            free_value(m->slots[i].value);
    }
    free(m->slots);
    free(m);
}

static size_t
find(const struct map *m, const char *key, uint32_t h)
{
    size_t i = h & (m->cap - 1);

    while (m->slots[i].key && (m->slots[i].hash != h || strcmp(m->slots[i].key, key) != 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *
map_get(const struct map *m, const char *key)
{
    size_t i = find(m, key, fnv1a(key));

    return m->slots[i].key ? m->slots[i].value : NULL;
}

static bool
grow(struct map *m)
{
    struct slot *old = m->slots;
    size_t oldcap = m->cap;
    struct slot *ns = calloc(oldcap * 2, sizeof *ns);

    if (!ns)
        return false;
    m->slots = ns;
    m->cap = oldcap * 2;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].key)
            continue;
        size_t j = old[i].hash & (m->cap - 1);
        while (m->slots[j].key)
            j = (j + 1) & (m->cap - 1);
        m->slots[j] = old[i];
    }
    free(old);
    return true;
}

bool
map_reserve(struct map *m, size_t n)
{
    while ((n + 1) * 4 > m->cap * 3)
        if (!grow(m))
            return false;
    return true;
}

void *
map_put(struct map *m, const char *key, void *value, bool *oom)
{
    uint32_t h = fnv1a(key);
    size_t i;

    if (oom)
        *oom = false;
    if ((m->len + 1) * 4 > m->cap * 3 && !grow(m)) {
        if (oom)
            *oom = true;
        return NULL;
    }
    i = find(m, key, h);
    if (m->slots[i].key) {
        void *prev = m->slots[i].value;
        m->slots[i].value = value;
        return prev;
    }
    if (!(m->slots[i].key = m->borrow ? (char *)key : strdup(key))) {
        if (oom)
            *oom = true;
        return NULL;
    }
    m->slots[i].value = value;
    m->slots[i].hash = h;
    m->len++;
    return NULL;
}

void *
map_del(struct map *m, const char *key)
{
    size_t i = find(m, key, fnv1a(key)), j;
    void *v;

    if (!m->slots[i].key)
        return NULL;
    v = m->slots[i].value;
    if (!m->borrow)
        free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->len--;
    /* backward-shift the cluster after i so lookups never stop early */
    j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (!m->slots[j].key)
            break;
        size_t home = m->slots[j].hash & (m->cap - 1);
        /* move j to i if its home is not in (i, j] cyclically */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return v;
}

size_t
map_len(const struct map *m)
{
    return m->len;
}

bool
map_next(const struct map *m, size_t *it, const char **key, void **value)
{
    while (*it < m->cap) {
        size_t i = (*it)++;
        if (m->slots[i].key) {
            if (key)
                *key = m->slots[i].key;
            if (value)
                *value = m->slots[i].value;
            return true;
        }
    }
    return false;
}
