/* SPDX-License-Identifier: MIT */
/*
 * Creates every stream and bucket Chatto needs, with nats.replicas replicas. Idempotent and race-safe: several
 * processes may run it at once; JetStream accepts an identical create, and a bucket created earlier with other
 * settings (e.g. before nats.replicas was raised) is updated in place. Runs on the store-keeper thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "base/clock.h"
#include "log/log.h"
#include "store/store_int.h"
#include "store/subject.h"

static const struct {
    const char *name;
    uint8_t history;
    int64_t ttl_ns; /* nats.c passes kvConfig.TTL to the server as nanoseconds */
    const char *description;
} buckets[STORE_B_COUNT] = {
    [STORE_B_META] = { "chatto_meta", 1, 0, "Chatto installation identity, counters and settings" },
    [STORE_B_USERS] = { "chatto_users", 1, 0, "Chatto user accounts" },
    [STORE_B_LOGINS] = { "chatto_logins", 1, 0, "Chatto login names (unique)" },
    [STORE_B_TOKENS] = { "chatto_tokens", 1, 0, "Chatto credential verifiers (sessions, tokens, API keys)" },
    [STORE_B_THROTTLE] = { "chatto_throttle", 1, 86400LL * 1000000000LL, "Chatto failed-login counters" },
    [STORE_B_READS] = { "chatto_reads", 1, 0, "Chatto read positions" },
    [STORE_B_ROOMNAMES] = { "chatto_roomnames", 1, 0, "Chatto room names (unique)" },
    [STORE_B_DMS] = { "chatto_dms", 1, 0, "Chatto direct-message rooms by participants" },
    /* entries of a crashed process age out; live ones are refreshed well within this */
    [STORE_B_PROCS] = { "chatto_processes", 1, PROCS_TTL_S * 1000000000LL, "Chatto processes and their settings" },
    [STORE_B_UPLOADS] = { "chatto_uploads", 1, 0, "Chatto upload sessions" },
    [STORE_B_ASSETS] = { "chatto_assets", 1, 0, "Chatto uploaded files" },
    [STORE_B_FOLLOWS] = { "chatto_follows", 1, 0, "Chatto followed threads and their read positions" },
    /* in-app notifications live 90 days, as upstream's */
    [STORE_B_NOTIFS] = { "chatto_notifications", 1, 90LL * 86400LL * 1000000000LL, "Chatto notifications" },
    [STORE_B_NOTIFPOLICY] = { "chatto_notification_policies", 1, 0, "Chatto notification policies" },
    [STORE_B_PUSHSUBS] = { "chatto_push_subscriptions", 1, 0, "Chatto Web Push subscriptions" },
    /* a lease names its holder and expiry; a holder that died leaves an entry that ages out within the hour */
    [STORE_B_LEASES] = { "chatto_leases", 1, 3600LL * 1000000000LL, "Chatto singleton-worker leases" },
};

/* Making a replicated stream on a fresh cluster waits for its RAFT group: give it time rather than give up at the
 * request timeout and ask again for what is already being made. (Requests JetStream drops because it has no
 * leader yet are not sent: bootstrap first asks for the account's info, which only a leader answers.) */
#define BOOT_WAIT_MS 20000
#define BOOT_LEADER_WAIT_MS 1000
#define BOOT_STEP_WAIT_MS 2500 /* one request; the step is asked again until BOOT_WAIT_MS */

static enum ch_status update_stream(struct store *st, const char *stream, bool bucket, struct ch_err *err);

static const struct {
    const char *name;
    const char *subjects[2];
    int64_t duplicates_ns;
    bool object; /* laid out as a NATS object store: rollups of the meta subjects, discard new, purgeable */
    const char *description;
} streams[STORE_S_COUNT] = {
    /* a 10-minute duplicate window: a client retrying a post with the same Idempotency-Key stores it once */
    [STORE_S_EVENTS] = { "CHATTO_EVENTS", { STORE_SUBJECT_EVENTS_ALL }, 600LL * 1000000000LL, false,
                         "Chatto rooms and messages" },
    /* the standard object-store stream of bucket SERVER_ASSETS, so NATS clients' object-store APIs read it */
    [STORE_S_ASSETS] = { "OBJ_" STORE_OBJ_ASSETS, { "$O." STORE_OBJ_ASSETS ".C.>", "$O." STORE_OBJ_ASSETS ".M.>" },
                         600LL * 1000000000LL, true, "Chatto attachments (object store " STORE_OBJ_ASSETS ")" },
    [STORE_S_ASSET_CACHE] = { "OBJ_" STORE_OBJ_ASSET_CACHE,
                              { "$O." STORE_OBJ_ASSET_CACHE ".C.>", "$O." STORE_OBJ_ASSET_CACHE ".M.>" },
                              120LL * 1000000000LL, true, "Chatto resized images (object store "
                              STORE_OBJ_ASSET_CACHE "), aged out" },
    /* derived data: any process can make one again from CHATTO_EVENTS */
    [STORE_S_SNAPSHOTS] = { "OBJ_" STORE_OBJ_SNAPSHOTS,
                            { "$O." STORE_OBJ_SNAPSHOTS ".C.>", "$O." STORE_OBJ_SNAPSHOTS ".M.>" },
                            120LL * 1000000000LL, true, "Chatto read-model snapshots (object store "
                            STORE_OBJ_SNAPSHOTS "), aged out" },
};

/* The age limit of an aged-out stream (its setting), -1 for the others. */
static int64_t
stream_max_age_ns(const struct store *st, const char *stream)
{
    if (!strcmp(stream, streams[STORE_S_ASSET_CACHE].name))
        return st->asset_cache_ttl_ms * 1000000LL;
    if (!strcmp(stream, streams[STORE_S_SNAPSHOTS].name))
        return st->snapshot_ttl_ms * 1000000LL;
    return -1;
}

bool
store_stream_used(const struct store *st, enum store_stream s)
{
    return (s != STORE_S_ASSET_CACHE || st->asset_cache_ttl_ms > 0) && (s != STORE_S_SNAPSHOTS || st->snapshot_ttl_ms > 0);
}

const char *
store_bucket_name(enum store_bucket b)
{
    return buckets[b].name;
}

const char *
store_stream_name(enum store_stream s)
{
    return streams[s].name;
}

static enum ch_status
create_stream(struct store *st, enum store_stream s, struct ch_err *err)
{
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns;

    jsStreamConfig_Init(&sc);
    sc.Name = streams[s].name;
    sc.Description = streams[s].description;
    sc.Subjects = (const char **)streams[s].subjects; /* nats.c does not write through it */
    sc.SubjectsLen = streams[s].subjects[1] ? 2 : 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = st->replicas;
    sc.Duplicates = streams[s].duplicates_ns;
    sc.AllowDirect = true;
    if (stream_max_age_ns(st, streams[s].name) >= 0)
        sc.MaxAge = stream_max_age_ns(st, streams[s].name);
    if (streams[s].object) {
        sc.AllowRollup = true;
        sc.Discard = js_DiscardNew;
    } else {
        sc.DenyPurge = true; /* history is only ever erased message by message */
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = BOOT_STEP_WAIT_MS;
    ns = js_AddStream(&si, st->js, &sc, &jo, &jerr);
    jsStreamInfo_Destroy(si);
    if (ns == NATS_OK)
        return CH_OK;
    if (jerr == JSStreamNameExistErr)
        return update_stream(st, streams[s].name, false, err);
    enum ch_status cs = store_map(ns, jerr, streams[s].name, err);
    if (*store_last_error() && err)
        snprintf(err->msg, sizeof err->msg, "%s: %s", streams[s].name, store_last_error());
    return cs;
}

/* Bring an existing stream to our replica count. */
/* Bring an existing stream to our settings: nats.replicas replicas and, for buckets, no direct gets when
 * replicated. A direct get may be answered by any replica, including one a moment behind: a credential revoked
 * or a login registered through another process could then look unchanged. Reads through the leader cannot. */
static enum ch_status
update_stream(struct store *st, const char *stream, bool bucket, struct ch_err *err)
{
    jsStreamInfo *si = NULL, *si2 = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs;
    bool direct = !bucket || st->replicas == 1;
    /* the caches' age limits follow core.assets.cache.ttl and core.projection_snapshot_retention */
    int64_t max_age = stream_max_age_ns(st, stream);

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = BOOT_STEP_WAIT_MS;
    if ((s = js_GetStreamInfo(&si, st->js, stream, &jo, &jerr)) != NATS_OK)
        return store_map(s, jerr, stream, err);
    if (si->Config->Replicas == st->replicas && si->Config->AllowDirect == direct &&
        (max_age < 0 || si->Config->MaxAge == max_age)) {
        jsStreamInfo_Destroy(si);
        return CH_OK;
    }
    si->Config->Replicas = st->replicas;
    si->Config->AllowDirect = direct;
    if (max_age >= 0)
        si->Config->MaxAge = max_age;
    s = js_UpdateStream(&si2, st->js, si->Config, &jo, &jerr);
    cs = store_map(s, jerr, stream, err);
    if (cs != CH_OK)
        ch_err_set(err, cs, NULL, "%s: cannot update to %d replicas (nats.replicas), direct gets %s: %s", stream,
                   st->replicas, direct ? "on" : "off",
                   *store_last_error() ? store_last_error() : natsStatus_GetText(s));
    jsStreamInfo_Destroy(si);
    jsStreamInfo_Destroy(si2);
    return cs;
}

/* A bucket is a stream laid out as NATS KV wants it (any NATS client's KV API reads and writes it), made at once
 * with our final settings: creating it through nats.c's KV call and then changing it would be two replicated
 * changes per bucket, each waiting for a new RAFT group on a fresh cluster. Then bound as a KV store. */
static enum ch_status
create_bucket(struct store *st, enum store_bucket b, bool bind, struct ch_err *err)
{
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs = CH_OK;
    char stream[64], subject[80];
    const char *subjects[1] = { subject };
    const int64_t dup_window = 120LL * 1000000000LL; /* as nats.c's KV: two minutes, or the TTL if shorter */

    snprintf(stream, sizeof stream, "KV_%s", buckets[b].name);
    snprintf(subject, sizeof subject, "$KV.%s.>", buckets[b].name);
    jsStreamConfig_Init(&sc);
    sc.Name = stream;
    sc.Description = buckets[b].description;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.MaxMsgsPerSubject = buckets[b].history;
    sc.MaxAge = buckets[b].ttl_ns;
    sc.Duplicates = buckets[b].ttl_ns && buckets[b].ttl_ns < dup_window ? buckets[b].ttl_ns : dup_window;
    sc.Storage = js_FileStorage;
    sc.Replicas = st->replicas;
    sc.AllowRollup = true;
    sc.DenyDelete = true;
    sc.Discard = js_DiscardNew;
    sc.AllowDirect = st->replicas == 1; /* see update_stream */
    jsOptions_Init(&jo);
    jo.Wait = BOOT_STEP_WAIT_MS;
    s = js_AddStream(&si, st->js, &sc, &jo, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK && jerr == JSStreamNameExistErr)
        cs = update_stream(st, stream, true, err); /* made by an older version, or with other settings: keep the data */
    else if (s != NATS_OK) {
        cs = store_map(s, jerr, stream, err);
        if (*store_last_error() && err)
            snprintf(err->msg, sizeof err->msg, "%s: %s", stream, store_last_error());
    }
    if (cs != CH_OK || !bind)
        return cs;
    s = js_KeyValue(&st->kv[b], st->js, buckets[b].name);
    return store_map(s, 0, stream, err);
}

/* One bucket or stream made on a thread of its own: on a fresh cluster each waits for a RAFT group to form, and
 * made one after the other three processes racing took 20-60 s to become ready. */
struct boot_job {
    struct store *st;
    int bucket; /* -1: stream */
    int stream;
    enum ch_status cs;
    struct ch_err err;
    pthread_t thread;
    bool started;
    int64_t took_ms;
    int attempts;
};

static void *
boot_one(void *arg)
{
    struct boot_job *j = arg;
    int64_t start = clock_mono_ms(), deadline = start + BOOT_WAIT_MS;

    /* each step is idempotent: one that goes unanswered (a stream's leader still being elected) is asked again
     * here, without starting the whole bootstrap over */
    do {
        memset(&j->err, 0, sizeof j->err);
        j->attempts++;
        j->cs = j->bucket >= 0 ? create_bucket(j->st, (enum store_bucket)j->bucket, true, &j->err)
                               : create_stream(j->st, (enum store_stream)j->stream, &j->err);
        /* (not found: another process is making it right now, and it is not there yet to be bound or changed) */
        if ((j->cs != CH_EUNAVAIL && j->cs != CH_ENOTFOUND) || !store_connected(j->st) ||
            atomic_load(&j->st->closing))
            break;
        struct timespec pause = { 0, 100 * 1000000L };
        nanosleep(&pause, NULL);
    } while (clock_mono_ms() < deadline);
    j->took_ms = clock_mono_ms() - start;
    nats_ReleaseThreadMemory();
    return NULL;
}

enum ch_status
store_stream_create(struct store *st, const char *stream, struct ch_err *err)
{
    int64_t deadline = clock_mono_ms() + BOOT_WAIT_MS;
    enum ch_status cs;
    int b = -1, k = -1;

    for (int i = 0; i < STORE_B_COUNT; i++)
        if (!strncmp(stream, "KV_", 3) && !strcmp(stream + 3, buckets[i].name))
            b = i;
    for (int i = 0; i < STORE_S_COUNT; i++)
        if (!strcmp(stream, streams[i].name))
            k = i;
    if (b < 0 && k < 0)
        return ch_err_set(err, CH_EINVAL, NULL, "%s: not a stream of ours", stream);
    /* as at bootstrap: a fresh stream on a cluster waits for its RAFT group, so ask again for a while (the
     * bucket stays bound: its kvStore handle names the stream, which is the same stream again) */
    do {
        cs = b >= 0 ? create_bucket(st, (enum store_bucket)b, false, err)
                    : create_stream(st, (enum store_stream)k, err);
        if (cs != CH_EUNAVAIL && cs != CH_ENOTFOUND)
            break;
        nanosleep(&(struct timespec){ 0, 100 * 1000000L }, NULL);
    } while (clock_mono_ms() < deadline);
    return cs;
}

/* The installation's identity: the first process to get here creates it; everyone else reads the same. */
static enum ch_status
load_identity(struct store *st, struct ch_err *err)
{
    kvStore *kv = st->kv[STORE_B_META];
    kvEntry *e = NULL;
    unsigned char raw[12];
    char id[32], val[96];
    natsStatus s;

    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, sizeof id, raw, sizeof raw);
    snprintf(val, sizeof val, "%s %lld", id, (long long)clock_wall_ms());
    s = kvStore_CreateString(NULL, kv, "server", val);
    if (s != NATS_OK && s != NATS_ERR) /* NATS_ERR: it exists already (wrong last sequence) */
        return store_map(s, 0, "server identity", err);
    if ((s = kvStore_Get(&e, kv, "server")) != NATS_OK)
        return store_map(s, 0, "server identity", err);
    long long created = 0;
    char rid[40] = "";
    int n = kvEntry_ValueLen(e);
    char *copy = strndup(kvEntry_Value(e), (size_t)(n > 0 ? n : 0));
    kvEntry_Destroy(e);
    if (!copy)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (sscanf(copy, "%39s %lld", rid, &created) != 2) {
        free(copy);
        return ch_err_set(err, CH_EINTERNAL, NULL, "server identity record is malformed");
    }
    free(copy);
    snprintf(st->server_id, sizeof st->server_id, "%s", rid);
    st->server_created_ms = created;
    return CH_OK;
}

static _Thread_local const struct store *booting; /* the store this thread is bootstrapping, if any */

bool
store_bootstrapping(const struct store *st)
{
    return st && booting == st;
}

static enum ch_status
bootstrap(struct store *st, struct ch_err *err)
{
    struct boot_job jobs[STORE_B_COUNT + STORE_S_COUNT];
    size_t n = 0;
    enum ch_status cs = CH_OK;

    /* a fresh cluster elects its JetStream meta leader a moment after it answers health checks; until then
     * requests go unanswered, so ask something cheap first and come back soon if nobody answers */
    jsAccountInfo *ai = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    jsOptions_Init(&jo);
    jo.Wait = BOOT_LEADER_WAIT_MS;
    natsStatus ns = js_GetAccountInfo(&ai, st->js, &jo, &jerr);
    jsAccountInfo_Destroy(ai);
    if (ns != NATS_OK)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "JetStream is not answering yet (%s)",
                          *store_last_error() ? store_last_error() : natsStatus_GetText(ns));
    /* a store a newer Chatto has upgraded is left exactly as it is */
    if ((cs = store_layout_check(st, err)) != CH_OK)
        return cs;
    /* nor is anything made or read while `chatto restore` rewrites the streams (it deletes and remakes them) */
    if ((cs = store_restore_check(st, err)) != CH_OK)
        return cs;
    memset(jobs, 0, sizeof jobs);
    for (int b = 0; b < STORE_B_COUNT; b++)
        if (!st->kv[b])
            jobs[n++] = (struct boot_job){ .st = st, .bucket = b, .stream = -1 };
    for (int s = 0; s < STORE_S_COUNT; s++)
        if (store_stream_used(st, (enum store_stream)s))
            jobs[n++] = (struct boot_job){ .st = st, .bucket = -1, .stream = s };
    for (size_t i = 0; i < n; i++)
        jobs[i].started = pthread_create(&jobs[i].thread, NULL, boot_one, &jobs[i]) == 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].started)
            pthread_join(jobs[i].thread, NULL);
        else
            boot_one(&jobs[i]); /* no thread to be had: do it here */
        if (jobs[i].cs != CH_OK && cs == CH_OK) {
            cs = jobs[i].cs;
            if (err)
                *err = jobs[i].err;
        }
    }
    size_t slow = 0;
    for (size_t i = 1; i < n; i++)
        if (jobs[i].took_ms > jobs[slow].took_ms)
            slow = i;
    if (n && jobs[slow].took_ms > 2000)
        log_info("store: %s%s took %lld ms to make (%d attempts; a fresh cluster elects a leader per stream)",
                 jobs[slow].bucket >= 0 ? "KV_" : "",
                 jobs[slow].bucket >= 0 ? buckets[jobs[slow].bucket].name : streams[jobs[slow].stream].name,
                 (long long)jobs[slow].took_ms, jobs[slow].attempts);
    if (cs != CH_OK)
        return cs;
    /* before the identity: a fresh store gets its layout version first (layout.c says why) */
    cs = st->operator_command ? store_layout_require_current(st, err) : store_layout_migrate(st, err);
    if (cs != CH_OK)
        return cs;
    if ((cs = load_identity(st, err)) != CH_OK)
        return cs;
    return store_procs_join(st, err);
}

enum ch_status
store_bootstrap(struct store *st, struct ch_err *err)
{
    booting = st;
    enum ch_status cs = bootstrap(st, err);
    booting = NULL;
    return cs;
}
