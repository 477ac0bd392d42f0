/* SPDX-License-Identifier: MIT */
/*
 * The process registry: every chatto process on one NATS keeps a short-lived record in the chatto_processes
 * bucket (refreshed every PROCS_REFRESH_MS, gone PROCS_TTL after the process stops refreshing it). The record
 * holds a fingerprint of each setting that must be the same on every process (cookie and core secrets,
 * webserver.url, ...). A process that joins with a setting different from one held by a process already
 * running refuses to start and names the setting, instead of silently breaking the other processes' sessions.
 *
 * Fingerprints are keyed BLAKE2b-128 hashes of "name\0value": they tell equal from different, and reveal nothing
 * useful about a secret of the length Chatto requires. Record format (text):
 *   v1 <started, ms since the epoch>\n
 *   <setting> <32 hex digits>\n ...
 *   layout <STORE_LAYOUT_VERSION>\n          (since 0.2.0, always last: 0.1.0 stops reading at the first line
 *                                          that is not a setting; layout.c looks for processes without it)
 * Runs on the store-keeper thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/clock.h"
#include "log/log.h"
#include "store/store_int.h"

#define FP_BYTES 16

static const unsigned char fp_key[crypto_generichash_KEYBYTES] = "chatto settings fingerprint v1";

enum ch_status
store_procs_init(struct store *st, const struct store_opts *o, struct ch_err *err)
{
    size_t cap = 96, len;
    unsigned char raw[4];
    char *rec;

    if (o->nsettings == 0)
        return CH_OK; /* a short-lived CLI command: not a serving process */
    for (size_t i = 0; i < o->nsettings; i++)
        cap += strlen(o->settings[i].name) + 2 * FP_BYTES + 2;
    if (!(rec = malloc(cap)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    len = (size_t)snprintf(rec, cap, "v1 %lld\n", (long long)clock_wall_ms());
    for (size_t i = 0; i < o->nsettings; i++) {
        const char *name = o->settings[i].name, *val = o->settings[i].value ? o->settings[i].value : "";
        unsigned char fp[FP_BYTES];
        char hex[2 * FP_BYTES + 1];
        crypto_generichash_state h;

        crypto_generichash_init(&h, fp_key, sizeof fp_key, sizeof fp);
        crypto_generichash_update(&h, (const unsigned char *)name, strlen(name) + 1);
        crypto_generichash_update(&h, (const unsigned char *)val, strlen(val));
        crypto_generichash_final(&h, fp, sizeof fp);
        sodium_bin2hex(hex, sizeof hex, fp, sizeof fp);
        len += (size_t)snprintf(rec + len, cap - len, "%s %s\n", name, hex);
    }
    snprintf(rec + len, cap - len, "layout %d\n", STORE_LAYOUT_VERSION);
    st->proc_record = rec;
    /* the key: this process's name (host/pid) made key-safe, plus a random part for uniqueness */
    size_t k = 0;
    for (const char *p = o->name ? o->name : "chatto"; *p && k < sizeof st->proc_key - 10; p++)
        st->proc_key[k++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
                                           || *p == '-' || *p == '_'
                                       ? *p
                                       : '_');
    randombytes_buf(raw, sizeof raw);
    st->proc_key[k++] = '-';
    sodium_bin2hex(st->proc_key + k, sizeof st->proc_key - k, raw, sizeof raw);
    return CH_OK;
}

/* The fingerprint of `name` in a record, copied into fp (2*FP_BYTES+1); false if the record has none. */
static bool
record_find(const char *rec, size_t len, const char *name, char *fp)
{
    size_t nl = strlen(name);
    const char *p = rec, *end = rec + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) == nl + 1 + 2 * FP_BYTES && memcmp(p, name, nl) == 0 && p[nl] == ' ') {
            memcpy(fp, p + nl + 1, 2 * FP_BYTES);
            fp[2 * FP_BYTES] = '\0';
            return true;
        }
        p = eol + 1;
    }
    return false;
}

/* Compare our record with another process's; the first setting whose fingerprint differs goes into name.
 * A setting the other record lacks (an older version) is not compared. */
static bool
records_differ(const char *mine, const char *theirs, size_t theirs_len, char *name, size_t namelen)
{
    for (const char *p = strchr(mine, '\n'); p && *++p;) {
        const char *sp = strchr(p, ' '), *eol = strchr(p, '\n');
        char key[128], other[2 * FP_BYTES + 1];

        if (!sp || !eol || (size_t)(sp - p) >= sizeof key || eol - sp - 1 != 2 * FP_BYTES)
            break;
        memcpy(key, p, (size_t)(sp - p));
        key[sp - p] = '\0';
        if (record_find(theirs, theirs_len, key, other) && memcmp(sp + 1, other, 2 * FP_BYTES) != 0) {
            snprintf(name, namelen, "%s", key);
            return true;
        }
        p = eol;
    }
    return false;
}

static natsStatus
put_record(struct store *st, uint64_t *rev)
{
    return kvStore_Put(rev, st->kv[STORE_B_PROCS], st->proc_key, st->proc_record, (int)strlen(st->proc_record));
}

enum ch_status
store_procs_join(struct store *st, struct ch_err *err)
{
    kvStore *kv = st->kv[STORE_B_PROCS];
    kvKeysList keys = { 0 };
    uint64_t mine = 0;
    natsStatus s;
    enum ch_status cs = CH_OK;

    if (!st->proc_record)
        return CH_OK;
    if ((s = put_record(st, &mine)) != NATS_OK)
        return store_map(s, 0, "process registry", err);
    s = kvStore_Keys(&keys, kv, NULL);
    if (s == NATS_NOT_FOUND)
        return CH_OK;
    if (s != NATS_OK)
        return store_map(s, 0, "process registry", err);
    for (int i = 0; i < keys.Count && cs == CH_OK; i++) {
        kvEntry *e = NULL;
        char setting[128];

        if (strcmp(keys.Keys[i], st->proc_key) == 0 || kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
            continue;
        /* the process that registered first keeps running; the later one (us, here) gives way */
        if (kvEntry_Revision(e) < mine && kvEntry_ValueLen(e) > 0
            && records_differ(st->proc_record, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), setting,
                              sizeof setting)) {
            int64_t age_s = (clock_wall_ms() - kvEntry_Created(e) / 1000000) / 1000;
            pthread_mutex_lock(&st->mu);
            snprintf(st->fatal, sizeof st->fatal,
                     "%s differs from the value used by the running Chatto process %s (seen %llds ago); every "
                     "process on one NATS must use the same %s. Fix it here, or stop all processes before "
                     "changing it everywhere (a killed process's record expires after %ds)",
                     setting, keys.Keys[i], (long long)(age_s < 0 ? 0 : age_s), setting, PROCS_TTL_S);
            pthread_mutex_unlock(&st->mu);
            cs = ch_err_set(err, CH_EINVAL, setting, "%s", st->fatal);
        }
        kvEntry_Destroy(e);
    }
    kvKeysList_Destroy(&keys);
    if (cs != CH_OK)
        kvStore_Delete(kv, st->proc_key);
    else
        st->proc_refreshed_ms = clock_mono_ms();
    return cs;
}

void
store_procs_refresh(struct store *st)
{
    uint64_t rev;

    if (!st->proc_record || !st->kv[STORE_B_PROCS] || clock_mono_ms() - st->proc_refreshed_ms < PROCS_REFRESH_MS)
        return;
    if (put_record(st, &rev) == NATS_OK)
        st->proc_refreshed_ms = clock_mono_ms();
}

void
store_procs_leave(struct store *st)
{
    if (st->proc_record && st->kv[STORE_B_PROCS] && store_answering(st) && !st->fatal[0])
        kvStore_Delete(st->kv[STORE_B_PROCS], st->proc_key);
    free(st->proc_record);
    st->proc_record = NULL;
}

bool
store_fatal(struct store *st, char *reason, size_t len)
{
    bool f;

    if (!st)
        return false;
    pthread_mutex_lock(&st->mu);
    f = st->fatal[0] != '\0';
    if (f)
        snprintf(reason, len, "%s", st->fatal);
    pthread_mutex_unlock(&st->mu);
    return f;
}

enum ch_status
store_procs_count(struct store *st, int *n, struct ch_err *err)
{
    char **keys = NULL;
    size_t k = 0;
    enum ch_status cs = store_kv_keys(st, STORE_B_PROCS, ">", &keys, &k, err);

    if (cs == CH_ENOTFOUND)
        k = 0;
    else if (cs != CH_OK)
        return cs;
    store_kv_keys_free(keys);
    *n = (int)k;
    return CH_OK;
}
