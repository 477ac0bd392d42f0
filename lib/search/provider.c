/* SPDX-License-Identifier: MIT */
/*
 * The search provider: keeps one index directory up to date with CHATTO_EVENTS and answers queries on NATS.
 *
 * The store's follower thread applies each event to the index inside an open transaction (writer connection,
 * under mu); the "search-indexer" thread commits that transaction a moment later (so a burst becomes one commit
 * and a lone message is searchable within ~INDEX_COMMIT_MS), purges removed text from the files once it is due,
 * and subscribes to the query subject (as one of the providers' queue group) only once the index has caught up
 * with the stream: a provider still rebuilding never answers, so a new replica cannot make searches incomplete.
 * Queries run on nats.c's subscription thread on a second, read-only connection (WAL: readers never wait for the
 * writer), under rmu. No lock is held across a NATS call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "json/json.h"
#include "log/log.h"
#include "search/search.h"
#include "store/store.h"

#define INDEX_COMMIT_MS 5   /* commit when nothing arrived for this long ... */
#define INDEX_MAX_TXN_MS 50 /* ... or the transaction is this old */
#define INDEX_IDLE_MS 500   /* the indexer's tick while no transaction is open */
#define CATCHUP_COMPACT 10000 /* events applied before first answering that make the indexer merge segments */

struct search_provider {
    struct store *store;
    char dir[PATH_MAX];
    int64_t purge_delay_ms;
    int lock_fd;

    pthread_mutex_t mu; /* guards the writer connection and everything below it */
    struct search_index *w;
    int64_t txn_start_ms, last_apply_ms, purge_due_ms; /* purge_due_ms 0: nothing to purge */
    bool failed; /* the writer failed: stop applying (the follower is stopped and the index reopened) */

    pthread_mutex_t rmu; /* guards the reader connection */
    struct search_index *r;

    struct store_follower *follower;
    struct store_sub *query_sub, *status_sub; /* query_sub: indexer thread only */
    atomic_bool ready, stop;
    atomic_uint_fast64_t position;
    uint64_t start_position; /* the index's position when opened (a long catch-up is compacted before answering) */
    pthread_t thread;
    pthread_mutex_t smu; /* guards kick (a transaction was opened: the indexer must tick soon) */
    pthread_cond_t scv;
    bool kick;
};

static void
on_event(void *ctx, uint64_t seq, const char *subject, const char *data, size_t len, int64_t ms)
{
    struct search_provider *p = ctx;
    struct ch_err err = { 0 };
    bool purge = false;
    int64_t now = clock_mono_ms();

    (void)ms;
    pthread_mutex_lock(&p->mu);
    if (!p->failed && p->w) {
        bool was = search_index_in_txn(p->w);
        if (search_index_apply(p->w, seq, subject, data, len, &purge, &err) != CH_OK) {
            p->failed = true;
            log_error("search: %s; this process stops indexing (delete the index directory to rebuild)", err.msg);
        } else {
            if (!was)
                p->txn_start_ms = now;
            p->last_apply_ms = now;
            if (purge && !p->purge_due_ms)
                p->purge_due_ms = now + p->purge_delay_ms;
            atomic_store(&p->position, search_index_position(p->w));
        }
    }
    bool opened = p->w && search_index_in_txn(p->w) && p->txn_start_ms == now;
    pthread_mutex_unlock(&p->mu);
    if (opened) { /* wake the indexer: it commits within INDEX_COMMIT_MS..INDEX_MAX_TXN_MS */
        pthread_mutex_lock(&p->smu);
        p->kick = true;
        pthread_cond_signal(&p->scv);
        pthread_mutex_unlock(&p->smu);
    }
}

static void
reply_json(struct search_provider *p, const char *reply, cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);

    if (s)
        store_core_reply(p->store, reply, s, strlen(s), NULL);
    free(s);
    cJSON_Delete(o);
}

static void
on_query(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
    struct search_provider *p = ctx;
    struct ch_err err = { 0 };
    cJSON *req = NULL, *resp = NULL;

    (void)subject;
    if (!reply)
        return;
    if (json_parse_object(data, len, 16, &req, &err) == CH_OK) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "ping"))) {
            resp = cJSON_CreateObject();
            cJSON_AddBoolToObject(resp, "ready", true);
        } else {
            pthread_mutex_lock(&p->rmu);
            if (search_index_query(p->r, req, &resp, &err) != CH_OK)
                resp = NULL;
            pthread_mutex_unlock(&p->rmu);
        }
    }
    cJSON_Delete(req);
    if (!resp) {
        resp = cJSON_CreateObject();
        cJSON_AddStringToObject(resp, "error", err.status == CH_EINVAL ? err.msg : "the search index failed");
        cJSON_AddBoolToObject(resp, "invalid", err.status == CH_EINVAL);
    }
    reply_json(p, reply, resp);
}

static void
on_status(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
    struct search_provider *p = ctx;
    uint64_t indexed = 0, target = 0;
    bool ready = search_provider_ready(p, &indexed, &target);
    cJSON *o = cJSON_CreateObject();

    (void)subject;
    (void)data;
    (void)len;
    if (!reply) {
        cJSON_Delete(o);
        return;
    }
    cJSON_AddStringToObject(o, "state", ready ? "ready" : store_follower_attached(p->follower) ? "indexing" : "starting");
    cJSON_AddNumberToObject(o, "indexed", (double)indexed);
    cJSON_AddNumberToObject(o, "target", (double)target);
    reply_json(p, reply, o);
}

bool
search_provider_ready(struct search_provider *p, uint64_t *indexed, uint64_t *target)
{
    uint64_t pos = atomic_load(&p->position), t = store_follower_target(p->follower);

    if (indexed)
        *indexed = pos;
    if (target)
        *target = t;
    return store_follower_attached(p->follower) && pos >= t;
}

static void *
indexer_main(void *arg)
{
    struct search_provider *p = arg;

    int64_t tick = INDEX_IDLE_MS;

    pthread_mutex_lock(&p->smu);
    while (!atomic_load(&p->stop)) {
        struct timespec ts = clock_deadline(tick);
        if (!p->kick)
            pthread_cond_timedwait(&p->scv, &p->smu, &ts);
        p->kick = false;
        pthread_mutex_unlock(&p->smu);

        struct ch_err err = { 0 };
        int64_t now = clock_mono_ms();
        pthread_mutex_lock(&p->mu);
        if (!p->failed && search_index_in_txn(p->w) &&
            (now - p->last_apply_ms >= INDEX_COMMIT_MS || now - p->txn_start_ms >= INDEX_MAX_TXN_MS) &&
            search_index_commit(p->w, &err) != CH_OK)
            p->failed = true;
        if (!p->failed && p->purge_due_ms && now >= p->purge_due_ms) {
            if (search_index_purge(p->w, &err) != CH_OK)
                p->failed = true;
            p->purge_due_ms = 0;
        }
        bool failed = p->failed;
        /* short ticks while a transaction waits for its commit or a purge is near, long ones when idle */
        tick = !failed && search_index_in_txn(p->w) ? INDEX_COMMIT_MS : INDEX_IDLE_MS;
        if (!failed && p->purge_due_ms && p->purge_due_ms - now < tick)
            tick = p->purge_due_ms - now > 1 ? p->purge_due_ms - now : 1;
        pthread_mutex_unlock(&p->mu);
        if (!p->query_sub && tick > 50)
            tick = 50; /* not answering yet: look at the progress often */
        if (failed && err.msg[0])
            log_error("search: %s; this process stops indexing (delete the index directory to rebuild)", err.msg);
        if (failed && p->query_sub) { /* a stale index must not answer: the other providers do */
            store_core_unsubscribe(p->query_sub);
            p->query_sub = NULL;
            atomic_store(&p->ready, false);
        }
        /* caught up (and committed): join the providers that answer */
        if (!p->query_sub && !failed && search_provider_ready(p, NULL, NULL)) {
            pthread_mutex_lock(&p->mu);
            bool committed = !search_index_in_txn(p->w);
            /* after a long catch-up (a rebuild) the index is many small segments: merge them once, so queries
             * read one segment and the files shrink, before answering anybody */
            if (committed && search_index_position(p->w) - p->start_position > CATCHUP_COMPACT &&
                search_index_purge(p->w, &err) != CH_OK)
                log_warn("search: compacting the index: %s", err.msg);
            p->start_position = search_index_position(p->w);
            pthread_mutex_unlock(&p->mu);
            if (committed && store_core_queue_subscribe(p->store, SEARCH_SUBJECT_QUERY, SEARCH_QUEUE_GROUP, on_query,
                                                        p, &p->query_sub, &err) == CH_OK)
                atomic_store(&p->ready, true);
        }
        pthread_mutex_lock(&p->smu);
    }
    pthread_mutex_unlock(&p->smu);
    store_thread_exit();
    return NULL;
}

static int
mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(buf, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

enum ch_status
search_provider_start(const struct search_provider_opts *o, struct search_provider **out, struct ch_err *err)
{
    struct search_provider *p = calloc(1, sizeof *p);
    char path[PATH_MAX + 16];
    enum ch_status st;

    if (!p)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    p->store = o->store;
    p->purge_delay_ms = o->purge_delay_ms;
    p->lock_fd = -1;
    snprintf(p->dir, sizeof p->dir, "%s", o->directory);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->rmu, NULL);
    pthread_mutex_init(&p->smu, NULL);
    pthread_cond_init(&p->scv, NULL);
    if (mkdirs(p->dir) != 0) {
        st = ch_err_set(err, CH_EINVAL, "search_provider.directory", "cannot create %s: %s", p->dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/index.lock", p->dir);
    if ((p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        st = ch_err_set(err, CH_EINVAL, "search_provider.directory", "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        st = ch_err_set(err, CH_EEXIST, "search_provider.directory", "%s is in use by another process", p->dir);
        goto fail;
    }
    if ((st = search_index_open(p->dir, true, &p->w, err)) != CH_OK ||
        (st = search_index_open(p->dir, false, &p->r, err)) != CH_OK)
        goto fail;
    atomic_store(&p->position, search_index_position(p->w));
    p->start_position = search_index_position(p->w);
    /* the follower first: the status handler reads it */
    if ((st = store_follow_from(p->store, STORE_S_EVENTS, search_index_position(p->w) + 1, on_event, p, &p->follower,
                                err)) != CH_OK ||
        (st = store_core_subscribe(p->store, SEARCH_SUBJECT_STATUS, on_status, p, &p->status_sub, err)) != CH_OK)
        goto fail;
    if (pthread_create(&p->thread, NULL, indexer_main, p) != 0) {
        st = ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the search indexer thread");
        goto fail;
    }
    *out = p;
    return CH_OK;
fail:
    store_follower_stop(p->follower);
    p->follower = NULL;
    store_core_unsubscribe(p->status_sub);
    p->status_sub = NULL;
    search_provider_stop(p);
    return st;
}

void
search_provider_stop(struct search_provider *p)
{
    if (!p)
        return;
    if (p->thread) {
        pthread_mutex_lock(&p->smu);
        atomic_store(&p->stop, true);
        pthread_cond_broadcast(&p->scv);
        pthread_mutex_unlock(&p->smu);
        pthread_join(p->thread, NULL);
    }
    store_core_unsubscribe(p->query_sub);
    store_core_unsubscribe(p->status_sub);
    store_follower_stop(p->follower);
    if (p->w) {
        search_index_commit(p->w, NULL);
        if (p->purge_due_ms)
            search_index_purge(p->w, NULL); /* removed text does not outlive the process in the files */
    }
    search_index_close(p->r);
    search_index_close(p->w);
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->rmu);
    pthread_mutex_destroy(&p->smu);
    pthread_cond_destroy(&p->scv);
    free(p);
}
