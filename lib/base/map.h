/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A hash map from strings to pointers (open addressing, linear probing, FNV-1a). Keys are copied (or, in a
 * map_new_borrowing map, borrowed); values are borrowed. Not thread-safe: the owner locks. Iteration order is
 * unspecified.
 */
#include <stdbool.h>
#include <stddef.h>

struct map;

struct map *map_new(void);
/* A map that keeps the key pointers it is given instead of copies (no allocation per entry): each key must stay
 * alive and unchanged while its entry is in the map, e.g. a string inside the value itself. Putting a key that is
 * already there replaces the value and keeps the first key pointer. */
struct map *map_new_borrowing(void);
/* Frees the map and its keys; free_value (may be NULL) is called for each value. */
void map_free(struct map *m, void (*free_value)(void *));
void *map_get(const struct map *m, const char *key);
/* Insert or replace; returns the previous value (or NULL). Returns NULL and leaves the map unchanged only on
 * out-of-memory, which map_put reports through *oom when given. */
void *map_put(struct map *m, const char *key, void *value, bool *oom);
/* Remove; returns the removed value or NULL. */
void *map_del(struct map *m, const char *key);
size_t map_len(const struct map *m);
/* Make room for n entries in all, so that filling it does not grow it. Needed before inserting another map's
 * entries in its iteration order (hash order): growing from small while filling in that order clusters every key
 * into a few runs and makes linear probing quadratic. False when out of memory (the map still works). */
bool map_reserve(struct map *m, size_t n);
/* Iterate: start with *it = 0; returns false when done. */
bool map_next(const struct map *m, size_t *it, const char **key, void **value);
