/* SPDX-License-Identifier: MIT */
/*
 * The store's layout version and its migrations. chatto_meta's key "layout_version" says which layout of streams,
 * buckets and stored data the store has (a decimal number). A fresh installation writes STORE_LAYOUT_VERSION
 * before anything else of it (before the identity "server"), so a store with "server" but no version was made by
 * 0.1.0, whose layout is 1. An older layout is brought up to date one step at a time (migrations[], N -> N+1), by
 * exactly one process: the one that holds the lease "layout" in chatto_leases; every step is idempotent, so a
 * migrator that dies half-way is simply followed by the next one once its lease expires. Everyone else waits for
 * the version to become current before its bootstrap succeeds (and so before it is ready). A layout newer than
 * this binary knows is fatal (store_fatal): this code would misread it, and nothing here can take it back.
 *
 * Runs on the store-keeper thread, inside store_bootstrap (which lets it use the buckets it has just bound).
 * Logs each step at info level: a migration is rare and an operator wants to see it happen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "log/log.h"
#include "store/store_int.h"

#define LAYOUT_KEY "layout_version"
#define LAYOUT_LEASE "layout"
#define LAYOUT_LEASE_MS 120000 /* far longer than any step takes; a dead migrator's lease passes on after it */
#define LAYOUT_WAIT_MS 20000   /* how long one bootstrap attempt waits for another process's migration */
#define LAYOUT_POLL_MS 250

/* ---- the migrations: layout N -> N+1 is migrations[N - 1]. Each is idempotent (it may run again after a crash,
 * or after another process's lease expired) and leaves the data readable by the code of both layouts where it can,
 * so processes of the previous release still running during a rolling upgrade keep working. ---- */

/* Processes of 0.1.0 running now: records in the process registry without a "layout" line (procs.c). The
 * migrating process has not registered yet, and nor has any other process of this release (they wait for us). */
static enum ch_status
count_layout_1_processes(struct store *st, int *n, struct ch_err *err)
{
    kvStore *kv = st->kv[STORE_B_PROCS];
    kvKeysList keys = { 0 };
    natsStatus s;

    *n = 0;
    s = kvStore_Keys(&keys, kv, NULL);
    if (s == NATS_NOT_FOUND)
        return CH_OK;
    if (s != NATS_OK)
        return store_map(s, 0, "process registry", err);
    for (int i = 0; i < keys.Count; i++) {
        kvEntry *e = NULL;
        if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
            continue; /* gone meanwhile */
        int len = kvEntry_ValueLen(e);
        const char *v = kvEntry_Value(e);
        if (len > 0 && !memmem(v, (size_t)len, "\nlayout ", 8))
            (*n)++;
        kvEntry_Destroy(e);
    }
    kvKeysList_Destroy(&keys);
    return CH_OK;
}

/* 0.1.0 kept presence heartbeats in the bucket chatto_presence (entries lived two minutes); presence has travelled
 * over core NATS since, so nothing of 0.2.0 reads or writes the bucket: delete it. Unless processes of 0.1.0 are
 * still running (a rolling upgrade): they check the bucket for readiness, and would drop out of the load balancer
 * at once; then it stays, harmless (nothing but two-minute heartbeats), and the operator may delete it once they
 * are gone (nats stream rm KV_chatto_presence). 0.2.0 added the buckets
 * chatto_uploads, chatto_assets, chatto_follows, chatto_notifications, chatto_notification_policies,
 * chatto_push_subscriptions and chatto_leases and the object store SERVER_ASSETS: bootstrap made them (it makes
 * every stream and bucket of the current layout) just before this runs; check that they are all there. The
 * streams and buckets 0.1.0 made have 0.2.0's configuration already (same subjects, limits and flags), and every
 * record 0.1.0 wrote (users, logins, credentials, read positions, events) is read by 0.2.0 as it is. */
static enum ch_status
migrate_1_to_2(struct store *st, struct ch_err *err)
{
    static const enum store_bucket added[] = { STORE_B_UPLOADS, STORE_B_ASSETS,      STORE_B_FOLLOWS, STORE_B_NOTIFS,
                                               STORE_B_NOTIFPOLICY, STORE_B_PUSHSUBS, STORE_B_LEASES };
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs;
    char name[64];
    int old_running = 0;

    jsOptions_Init(&jo);
    jo.Wait = st->timeout_ms;
    if ((cs = count_layout_1_processes(st, &old_running, err)) != CH_OK)
        return cs;
    if (old_running) {
        log_info("store: layout 1 -> 2: %d process%s of 0.1.0 still running use%s the bucket chatto_presence, so it "
                 "stays (unused from now on; delete it once they are gone: nats stream rm KV_chatto_presence)",
                 old_running, old_running == 1 ? "" : "es", old_running == 1 ? "s" : "");
    } else {
        s = js_DeleteStream(st->js, "KV_chatto_presence", &jo, &jerr);
        if (s == NATS_OK)
            log_info("store: layout 1 -> 2: deleted the bucket chatto_presence (presence no longer goes through "
                     "JetStream)");
        else if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
            return store_map(s, jerr, "KV_chatto_presence", err);
    }
    for (size_t i = 0; i < sizeof added / sizeof *added; i++) {
        jsStreamInfo *si = NULL;
        snprintf(name, sizeof name, "KV_%s", store_bucket_name(added[i]));
        jerr = 0;
        s = js_GetStreamInfo(&si, st->js, name, &jo, &jerr);
        jsStreamInfo_Destroy(si);
        if (s != NATS_OK)
            return store_map(s, jerr, name, err);
    }
    jsStreamInfo *si = NULL;
    jerr = 0;
    s = js_GetStreamInfo(&si, st->js, store_stream_name(STORE_S_ASSETS), &jo, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        return store_map(s, jerr, store_stream_name(STORE_S_ASSETS), err);
    log_info("store: layout 1 -> 2: the %zu buckets and the object store %s new in 0.2.0 are there",
             sizeof added / sizeof *added, STORE_OBJ_ASSETS);
    return CH_OK;
}

static const struct migration {
    const char *what; /* for the log */
    enum ch_status (*fn)(struct store *st, struct ch_err *err);
} migrations[] = {
    /* 1 -> 2 */ { "0.1.0 -> 0.2.0: drop chatto_presence unless 0.1.0 processes still run; check the new buckets and "
                   "object store", migrate_1_to_2 },
};

_Static_assert(sizeof migrations / sizeof *migrations == STORE_LAYOUT_VERSION - 1,
               "every layout version after 1 needs its migration in migrations[] (store.h says the rule)");

/* What the store says: *version (0 when the key is absent) and its revision, and whether the identity "server" is
 * there (an installation exists). */
static enum ch_status
read_state(kvStore *meta, int *version, uint64_t *rev, bool *installed, struct ch_err *err)
{
    kvEntry *e = NULL;
    natsStatus s;

    *version = 0;
    *rev = 0;
    *installed = false;
    /* "server" first, then the version: a new process writes the version before "server", so finding "server"
     * and then no version means a process that knew no versions (0.1.0) made this store */
    s = kvStore_Get(&e, meta, "server");
    kvEntry_Destroy(e);
    e = NULL;
    if (s == NATS_OK)
        *installed = true;
    else if (s != NATS_NOT_FOUND)
        return store_map(s, 0, "store layout", err);
    s = kvStore_Get(&e, meta, LAYOUT_KEY);
    if (s == NATS_NOT_FOUND)
        return CH_OK;
    if (s != NATS_OK)
        return store_map(s, 0, "store layout", err);
    char buf[16] = "", *end = NULL;
    int n = kvEntry_ValueLen(e);
    if (n > 0 && n < (int)sizeof buf)
        memcpy(buf, kvEntry_Value(e), (size_t)n);
    *rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    long v = strtol(buf, &end, 10);
    if (!buf[0] || *end || v < 1 || v > 1000000)
        return ch_err_set(err, CH_EINTERNAL, NULL, "chatto_meta %s is not a layout version: \"%s\"", LAYOUT_KEY, buf);
    *version = (int)v;
    return CH_OK;
}

/* A layout from a newer Chatto: this process must not serve (store_fatal; the app exits with status 2). */
static enum ch_status
refuse_newer(struct store *st, int version, struct ch_err *err)
{
    pthread_mutex_lock(&st->mu);
    snprintf(st->fatal, sizeof st->fatal,
             "the store has layout version %d, but this chatto knows layouts up to %d only: a newer Chatto has "
             "upgraded it, and this older one would misread it. Run that newer version (downgrades are not "
             "supported; restore a backup taken before the upgrade to go back)", version, STORE_LAYOUT_VERSION);
    pthread_mutex_unlock(&st->mu);
    return ch_err_set(err, CH_EINVAL, NULL, "%s", st->fatal);
}

enum ch_status
store_layout_check(struct store *st, struct ch_err *err)
{
    kvStore *meta = NULL;
    int version;
    uint64_t rev;
    bool installed;
    enum ch_status cs;
    natsStatus s = js_KeyValue(&meta, st->js, store_bucket_name(STORE_B_META));

    if (s == NATS_NOT_FOUND)
        return CH_OK; /* nothing there yet: a fresh installation */
    if (s != NATS_OK)
        return store_map(s, 0, "store layout", err);
    cs = read_state(meta, &version, &rev, &installed, err);
    kvStore_Destroy(meta);
    if (cs == CH_OK && version > STORE_LAYOUT_VERSION)
        return refuse_newer(st, version, err);
    return cs;
}

/* Writes the version after a step: an update of the revision we read, or a create when there was none. */
static enum ch_status
write_version(struct store *st, int version, uint64_t *rev, struct ch_err *err)
{
    char val[16];
    int n = snprintf(val, sizeof val, "%d", version);

    return *rev ? store_kv_update(st, STORE_B_META, LAYOUT_KEY, val, (size_t)n, *rev, rev, err)
                : store_kv_create(st, STORE_B_META, LAYOUT_KEY, val, (size_t)n, rev, err);
}

/* Holding the lease: every step from the stored layout to the current one, the version written after each. */
static enum ch_status
run_steps(struct store *st, struct ch_err *err)
{
    int version;
    uint64_t rev;
    bool installed;
    enum ch_status cs;

    /* read again under the lease: the previous holder may have finished meanwhile */
    if ((cs = read_state(st->kv[STORE_B_META], &version, &rev, &installed, err)) != CH_OK)
        return cs;
    if (version > STORE_LAYOUT_VERSION)
        return refuse_newer(st, version, err);
    if (version == 0)
        version = 1;
    for (; version < STORE_LAYOUT_VERSION; version++) {
        const struct migration *m = &migrations[version - 1];
        int64_t t0 = clock_mono_ms();
        log_info("store: migrating the layout from version %d to %d (%s)", version, version + 1, m->what);
        if ((cs = m->fn(st, err)) != CH_OK)
            return cs;
        if ((cs = write_version(st, version + 1, &rev, err)) != CH_OK)
            return cs; /* CH_ECONFLICT/CH_EEXIST: someone wrote meanwhile (our lease expired?); start over */
        log_info("store: layout version %d written (%lld ms)", version + 1, (long long)(clock_mono_ms() - t0));
    }
    return CH_OK;
}

enum ch_status
store_layout_migrate(struct store *st, struct ch_err *err)
{
    int64_t deadline = clock_mono_ms() + LAYOUT_WAIT_MS;
    bool said_waiting = false;
    unsigned char raw[6];
    char holder[48], hex[sizeof raw * 2 + 1];
    enum ch_status cs;

    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    snprintf(holder, sizeof holder, "pid%ld-%s", (long)getpid(), hex);
    for (;;) {
        int version;
        uint64_t rev;
        bool installed, held = false;

        if ((cs = read_state(st->kv[STORE_B_META], &version, &rev, &installed, err)) != CH_OK)
            return cs;
        if (version == STORE_LAYOUT_VERSION)
            return CH_OK;
        if (version > STORE_LAYOUT_VERSION)
            return refuse_newer(st, version, err);
        if (version == 0 && !installed) {
            /* a new installation: it starts at the current layout (a racing process's create wins the same way) */
            uint64_t none = 0;
            cs = write_version(st, STORE_LAYOUT_VERSION, &none, err);
            if (cs == CH_OK)
                log_info("store: new installation, layout version %d", STORE_LAYOUT_VERSION);
            if (cs != CH_EEXIST)
                return cs;
            continue;
        }
        if ((cs = store_lease_acquire(st, LAYOUT_LEASE, holder, LAYOUT_LEASE_MS, &held, err)) != CH_OK)
            return cs;
        if (held) {
            cs = run_steps(st, err);
            store_lease_release(st, LAYOUT_LEASE, holder);
            if (cs == CH_ECONFLICT || cs == CH_EEXIST)
                continue;
            return cs;
        }
        if (!said_waiting) {
            log_info("store: another process is migrating the layout from version %d to %d; waiting for it",
                     version ? version : 1, STORE_LAYOUT_VERSION);
            said_waiting = true;
        }
        if (clock_mono_ms() >= deadline || !store_connected(st) || atomic_load(&st->closing))
            return ch_err_set(err, CH_EUNAVAIL, NULL, "another process is migrating the store layout from version "
                              "%d to %d", version ? version : 1, STORE_LAYOUT_VERSION);
        nanosleep(&(struct timespec){ 0, LAYOUT_POLL_MS * 1000000L }, NULL);
    }
}

enum ch_status
store_layout_require_current(struct store *st, struct ch_err *err)
{
    int version;
    uint64_t rev;
    bool installed;
    enum ch_status cs;

    if ((cs = read_state(st->kv[STORE_B_META], &version, &rev, &installed, err)) != CH_OK)
        return cs;
    if (version > STORE_LAYOUT_VERSION)
        return refuse_newer(st, version, err);
    if (version == STORE_LAYOUT_VERSION)
        return CH_OK;
    if (version == 0 && !installed) {
        uint64_t none = 0;
        cs = write_version(st, STORE_LAYOUT_VERSION, &none, err);
        return cs == CH_EEXIST ? CH_OK : cs; /* a server starting at the same moment wrote it first */
    }
    pthread_mutex_lock(&st->mu);
    snprintf(st->fatal, sizeof st->fatal,
             "the store has layout version %d, from an older Chatto; this chatto (layout %d) upgrades it when its "
             "server starts, not from an operator command: start the server once (chatto run, or systemctl "
             "start chatto), then run this command again", version ? version : 1, STORE_LAYOUT_VERSION);
    pthread_mutex_unlock(&st->mu);
    return ch_err_set(err, CH_EINVAL, NULL, "%s", st->fatal);
}
