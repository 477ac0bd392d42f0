/* SPDX-License-Identifier: MIT */
/*
 * Leases for singleton workers (the LiveKit reconciler): an entry <name> in chatto_leases holding
 * {"holder": ..., "until": <unix ms>}, only ever changed by compare-and-set on its revision, so of two processes
 * racing for an expired lease exactly one wins. The holder renews well before "until"; a holder that died stops
 * renewing and the lease passes to whoever asks after "until". Any thread; no lock of ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "json/json.h"
#include "store/store_int.h"

static char *
record(const char *holder, int64_t until)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "holder", holder);
    cJSON_AddNumberToObject(o, "until", (double)until);
    s = json_print(o, NULL);
    cJSON_Delete(o);
    return s;
}

enum ch_status
store_lease_acquire(struct store *st, const char *name, const char *holder, int64_t ttl_ms, bool *held,
                    struct ch_err *err)
{
    char *val = NULL, *rec;
    size_t len = 0;
    uint64_t rev = 0;
    enum ch_status s;

    *held = false;
    s = store_kv_get(st, STORE_B_LEASES, name, &val, &len, &rev, err);
    if (s != CH_OK && s != CH_ENOTFOUND)
        return s;
    int64_t now = clock_wall_ms();
    if (s == CH_OK) {
        cJSON *o = cJSON_ParseWithLength(val, len);
        const char *h = json_str_or(o, "holder", "");
        int64_t until = json_int64_or(o, "until", 0);
        bool mine = !strcmp(h, holder);
        cJSON_Delete(o);
        free(val);
        if (!mine && until > now)
            return CH_OK; /* someone else's, and alive */
    }
    if (!(rec = record(holder, now + ttl_ms)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    s = s == CH_ENOTFOUND ? store_kv_create(st, STORE_B_LEASES, name, rec, strlen(rec), NULL, err)
                          : store_kv_update(st, STORE_B_LEASES, name, rec, strlen(rec), rev, NULL, err);
    free(rec);
    if (s == CH_EEXIST || s == CH_ECONFLICT)
        return CH_OK; /* another process won this round */
    *held = s == CH_OK;
    return s;
}

void
store_lease_release(struct store *st, const char *name, const char *holder)
{
    char *val = NULL, *rec;
    size_t len = 0;
    uint64_t rev = 0;

    if (store_kv_get(st, STORE_B_LEASES, name, &val, &len, &rev, NULL) != CH_OK)
        return;
    cJSON *o = cJSON_ParseWithLength(val, len);
    bool mine = !strcmp(json_str_or(o, "holder", ""), holder);
    cJSON_Delete(o);
    free(val);
    if (mine && (rec = record(holder, 0))) { /* expired at once */
        store_kv_update(st, STORE_B_LEASES, name, rec, strlen(rec), rev, NULL, NULL);
        free(rec);
    }
}

enum ch_status
store_restore_check(struct store *st, struct ch_err *err)
{
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    natsStatus s = js_KeyValue(&kv, st->js, store_bucket_name(STORE_B_LEASES));
    enum ch_status cs = CH_OK;

    if (s == NATS_NOT_FOUND)
        return CH_OK; /* no bucket, no restore: a fresh store (a restore makes the bucket before it takes the lease) */
    if (s != NATS_OK)
        return store_map(s, 0, "chatto_leases", err);
    s = kvStore_Get(&e, kv, STORE_RESTORE_LEASE);
    if (s == NATS_OK) {
        cJSON *o = cJSON_ParseWithLength(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
        int64_t left = json_int64_or(o, "until", 0) - clock_wall_ms();
        if (left > 0)
            cs = ch_err_set(err, CH_EUNAVAIL, NULL, "chatto restore (%s) is rewriting this NATS's streams; waiting "
                            "until it is done (its lease runs %lld s more unless renewed)",
                            json_str_or(o, "holder", "?"), (long long)(left + 999) / 1000);
        cJSON_Delete(o);
    } else if (s != NATS_NOT_FOUND) {
        cs = store_map(s, 0, "chatto_leases", err);
    }
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    return cs;
}
