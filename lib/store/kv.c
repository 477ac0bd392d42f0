/* SPDX-License-Identifier: MIT */
/*
 * Key/value operations over nats.c's KV API, with our status codes. nats.c reports a failed create or
 * compare-and-set as plain NATS_ERR with "wrong last sequence" in its error text; we turn that into CH_EEXIST
 * (create) or CH_ECONFLICT (update). Any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

bool
store_kv_key_valid(const char *key)
{
    size_t n = strlen(key);

    if (n == 0 || n > 512 || key[0] == '.' || key[n - 1] == '.' || strstr(key, ".."))
        return false;
    for (const char *p = key; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '=' || c == '/' || c == '.'))
            return false;
    }
    return true;
}

static enum ch_status
bucket(struct store *st, enum store_bucket b, const char *key, kvStore **kv, struct ch_err *err)
{
    if (!st || !(atomic_load(&st->bootstrapped) || store_bootstrapping(st)) || !st->kv[b])
        return ch_err_set(err, CH_EUNAVAIL, NULL, "storage is not ready yet");
    if (key && !store_kv_key_valid(key))
        return ch_err_set(err, CH_EINVAL, NULL, "invalid key");
    *kv = st->kv[b];
    return CH_OK;
}

enum ch_status
store_kv_get(struct store *st, enum store_bucket b, const char *key, char **val, size_t *len, uint64_t *rev,
             struct ch_err *err)
{
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    natsStatus s;
    enum ch_status cs;
    int n;
    char *v;

    if ((cs = bucket(st, b, key, &kv, err)) != CH_OK)
        return cs;
    if ((s = kvStore_Get(&e, kv, key)) != NATS_OK)
        return store_map(s, 0, store_bucket_name(b), err);
    n = kvEntry_ValueLen(e);
    v = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!v) {
        kvEntry_Destroy(e);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (n > 0)
        memcpy(v, kvEntry_Value(e), (size_t)n);
    v[n > 0 ? n : 0] = '\0';
    if (rev)
        *rev = kvEntry_Revision(e);
    if (len)
        *len = (size_t)(n > 0 ? n : 0);
    *val = v;
    kvEntry_Destroy(e);
    return CH_OK;
}

/* KV writes are publishes to $KV.<bucket>.<key> with nats.c's JetStream publish, not its kvStore_* calls: those
 * lose the JetStream error code (a full store came back as a bare "Error", and kvStore_Create even clears the
 * text with a read of its own), so a full disk answered 500 instead of "storage full". */
#define KV_CREATE UINT64_MAX /* expect: no live value (the subject empty, or its last entry a delete) */

static enum ch_status
kv_publish(struct store *st, enum store_bucket b, const char *key, const void *val, size_t len, uint64_t expect,
           uint64_t *rev, struct ch_err *err)
{
    char subject[600], stream[80];
    jsPubOptions po;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs;

    snprintf(subject, sizeof subject, "$KV.%s.%s", store_bucket_name(b), key);
    jsPubOptions_Init(&po);
    po.MaxWait = st->timeout_ms;
    if (expect == KV_CREATE)
        po.ExpectNoMessage = true;
    else if (expect)
        po.ExpectLastSubjectSeq = expect;
    s = js_Publish(&ack, st->js, subject, val, (int)len, &po, &jerr);
    if (s != NATS_OK && expect == KV_CREATE && jerr == JSStreamWrongLastSequenceErr) {
        /* something is there: a value (it exists), or a delete or purge marker (the key may be created again) */
        natsMsg *last = NULL;
        jsErrCode gerr = 0;
        snprintf(stream, sizeof stream, "KV_%s", store_bucket_name(b));
        if (js_GetLastMsg(&last, st->js, stream, subject, NULL, &gerr) == NATS_OK) {
            const char *op = NULL;
            natsMsgHeader_Get(last, "KV-Operation", &op);
            if (op && (!strcmp(op, "DEL") || !strcmp(op, "PURGE"))) {
                po.ExpectNoMessage = false;
                po.ExpectLastSubjectSeq = natsMsg_GetSequence(last);
                jerr = 0;
                s = js_Publish(&ack, st->js, subject, val, (int)len, &po, &jerr);
            }
            natsMsg_Destroy(last);
        }
        if (s != NATS_OK && (jerr == JSStreamWrongLastSequenceErr || jerr == 0)) {
            jsPubAck_Destroy(ack);
            return ch_err_set(err, CH_EEXIST, NULL, "%s: already exists", store_bucket_name(b));
        }
    }
    cs = store_map(s, jerr, store_bucket_name(b), err);
    if (cs == CH_OK && rev)
        *rev = ack->Sequence;
    jsPubAck_Destroy(ack);
    return cs;
}

enum ch_status
store_kv_create(struct store *st, enum store_bucket b, const char *key, const void *val, size_t len, uint64_t *rev,
                struct ch_err *err)
{
    kvStore *kv = NULL;
    enum ch_status cs;

    if ((cs = bucket(st, b, key, &kv, err)) != CH_OK)
        return cs;
    return kv_publish(st, b, key, val, len, KV_CREATE, rev, err);
}

enum ch_status
store_kv_update(struct store *st, enum store_bucket b, const char *key, const void *val, size_t len,
                uint64_t last_rev, uint64_t *rev, struct ch_err *err)
{
    kvStore *kv = NULL;
    enum ch_status cs;

    if ((cs = bucket(st, b, key, &kv, err)) != CH_OK)
        return cs;
    if (!last_rev)
        return kv_publish(st, b, key, val, len, KV_CREATE, rev, err);
    return kv_publish(st, b, key, val, len, last_rev, rev, err);
}

enum ch_status
store_kv_put(struct store *st, enum store_bucket b, const char *key, const void *val, size_t len, uint64_t *rev,
             struct ch_err *err)
{
    kvStore *kv = NULL;
    enum ch_status cs;

    if ((cs = bucket(st, b, key, &kv, err)) != CH_OK)
        return cs;
    return kv_publish(st, b, key, val, len, 0, rev, err);
}

enum ch_status
store_kv_purge(struct store *st, enum store_bucket b, const char *key, struct ch_err *err)
{
    kvStore *kv = NULL;
    enum ch_status cs;

    if ((cs = bucket(st, b, key, &kv, err)) != CH_OK)
        return cs;
    return store_map(kvStore_Purge(kv, key, NULL), 0, store_bucket_name(b), err);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void
store_kv_keys_free(char **keys)
{
    if (!keys)
        return;
    for (char **p = keys; *p; p++)
        free(*p);
    free(keys);
}

enum ch_status
store_kv_keys(struct store *st, enum store_bucket b, const char *filter, char ***keys, size_t *n,
              struct ch_err *err)
{
    kvStore *kv = NULL;
    kvWatcher *w = NULL;
    kvWatchOptions o;
    natsStatus s;
    enum ch_status cs;
    char **v = NULL;
    size_t cnt = 0, cap = 0;

    if ((cs = bucket(st, b, NULL, &kv, err)) != CH_OK)
        return cs;
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = true;
    o.MetaOnly = true;
    o.Timeout = st->timeout_ms;
    if ((s = kvStore_Watch(&w, kv, filter, &o)) != NATS_OK)
        return store_map(s, 0, store_bucket_name(b), err);
    for (;;) {
        kvEntry *e = NULL;
        s = kvWatcher_Next(&e, w, st->timeout_ms);
        if (s != NATS_OK) {
            cs = store_map(s, 0, store_bucket_name(b), err);
            goto fail;
        }
        if (!e)
            break; /* initial values done */
        if (kvEntry_Operation(e) == kvOp_Put) {
            if (cnt + 1 >= cap) {
                cap = cap ? cap * 2 : 64;
                char **nv = realloc(v, cap * sizeof *v);
                if (!nv) {
                    kvEntry_Destroy(e);
                    cs = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
                    goto fail;
                }
                v = nv;
            }
            v[cnt] = strdup(kvEntry_Key(e));
            if (v[cnt])
                cnt++;
        }
        kvEntry_Destroy(e);
    }
    kvWatcher_Destroy(w);
    if (!v && !(v = calloc(1, sizeof *v)))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    v[cnt] = NULL;
    qsort(v, cnt, sizeof *v, cmp_str);
    *keys = v;
    *n = cnt;
    return CH_OK;
fail:
    kvWatcher_Destroy(w);
    if (v) {
        v[cnt] = NULL;
        store_kv_keys_free(v);
    }
    return cs;
}
