/* SPDX-License-Identifier: MIT */
/*
 * The janitor: every few minutes (with jitter, on every process; each step is idempotent and guarded by a
 * compare-and-set, so processes running it at once do no harm) it drops uploads idle past their expiry with their
 * chunks, files nobody attached within a day, and files whose erase did not finish (NATS or S3 was away when
 * their message was deleted), and S3 objects of uploads that died between the put and the file record. Its own
 * thread.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "assets/assets_int.h"
#include "base/clock.h"
#include "log/log.h"
#include "s3/s3.h"

#define JANITOR_EVERY_MS (5 * 60 * 1000)
#define UPLOAD_RECORD_KEEP_MS (60 * 60 * 1000LL) /* a finished upload's record is kept a while after expiry */

/* An upload that died while completing into S3 may have put its object there before the file record was
 * written: with no record, nothing else would ever delete it. */
static void
drop_s3_orphan(struct assets *a, const char *asset_id)
{
    cJSON *rec = NULL;
    uint64_t rev = 0;
    struct s3 *s3 = NULL;
    char key[ASSET_S3_KEY_MAX];
    struct ch_err err = { 0 };

    if (!id_valid(asset_id) || asset_s3(a, asset_id, &s3, NULL) != CH_OK)
        return;
    if (rec_load(a, STORE_B_ASSETS, asset_id, &rec, &rev, &err) != CH_ENOTFOUND) {
        cJSON_Delete(rec); /* it has a record (the file's own sweep handles it), or we cannot tell now */
        return;
    }
    asset_s3_key(asset_id, key);
    if (s3_delete(s3, key, &err) != CH_OK)
        log_warn("assets: janitor cannot delete the S3 object of abandoned upload %s: %s", asset_id, err.msg);
}

static void
sweep_uploads(struct assets *a, int64_t now)
{
    char **keys = NULL;
    size_t n = 0;

    if (store_kv_keys(a->store, STORE_B_UPLOADS, ">", &keys, &n, NULL) != CH_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        cJSON *rec = NULL;
        uint64_t rev = 0;
        if (rec_load(a, STORE_B_UPLOADS, keys[i], &rec, &rev, NULL) != CH_OK)
            continue;
        const char *s = rec_str(rec, "status");
        int64_t exp = rec_int(rec, "expiresAt");
        if ((!strcmp(s, "open") || !strcmp(s, "completing")) && exp <= now) {
            /* abandoned: cancel it first (a racing chunk then fails its compare-and-set), then drop the bytes */
            bool completing = !strcmp(s, "completing");
            rec_set_str(rec, "status", "cancelled");
            if (rec_save(a, STORE_B_UPLOADS, keys[i], rec, rev, NULL, NULL) == CH_OK) {
                store_obj_erase_chunks(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), NULL);
                if (completing && !strcmp(rec_str(rec, "backend"), "s3"))
                    drop_s3_orphan(a, rec_str(rec, "assetId"));
            }
        } else if (!strcmp(s, "cancelled") && exp + UPLOAD_RECORD_KEEP_MS <= now) {
            if (store_obj_erase_chunks(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), NULL) == CH_OK)
                store_kv_purge(a->store, STORE_B_UPLOADS, keys[i], NULL);
        } else if (!strcmp(s, "completed") && exp + UPLOAD_RECORD_KEEP_MS <= now) {
            /* the file has its own record; a copy staged for S3 goes with this one (normally erased already) */
            if (strcmp(rec_str(rec, "backend"), "s3") != 0 ||
                store_obj_erase_chunks(a->store, STORE_S_ASSETS, rec_str(rec, "nuid"), NULL) == CH_OK)
                store_kv_purge(a->store, STORE_B_UPLOADS, keys[i], NULL);
        }
        cJSON_Delete(rec);
    }
    store_kv_keys_free(keys);
}

static void
sweep_assets(struct assets *a, int64_t now)
{
    char **keys = NULL;
    size_t n = 0;
    struct ch_err err = { 0 };

    if (store_kv_keys(a->store, STORE_B_ASSETS, ">", &keys, &n, NULL) != CH_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        cJSON *rec = NULL;
        uint64_t rev = 0;
        bool destroy = false;
        if (rec_load(a, STORE_B_ASSETS, keys[i], &rec, &rev, NULL) != CH_OK)
            continue;
        const char *s = rec_str(rec, "status");
        if (!strcmp(s, "pending") && rec_int(rec, "expiresAt") <= now) {
            /* never attached: mark it first, so a message attaching it right now fails its compare-and-set */
            rec_set_str(rec, "status", "deleting");
            destroy = rec_save(a, STORE_B_ASSETS, keys[i], rec, rev, NULL, NULL) == CH_OK;
        } else if (!strcmp(s, "deleting")) {
            destroy = true;
        }
        cJSON_Delete(rec);
        if (destroy && asset_destroy(a, keys[i], &err) != CH_OK)
            log_warn("assets: janitor cannot erase file %s yet: %s", keys[i], err.msg);
    }
    store_kv_keys_free(keys);
}

void
assets_janitor_pass(struct assets *a, int64_t now_ms)
{
    sweep_uploads(a, now_ms);
    sweep_assets(a, now_ms);
}

static void *
janitor_main(void *arg)
{
    struct assets *a = arg;

    pthread_setname_np(pthread_self(), "assets-janitor");
    pthread_mutex_lock(&a->janitor.mu);
    while (!a->janitor.stop) {
        struct timespec ts = clock_deadline(JANITOR_EVERY_MS / 2 + (int64_t)randombytes_uniform(JANITOR_EVERY_MS));
        pthread_cond_timedwait(&a->janitor.cv, &a->janitor.mu, &ts);
        if (a->janitor.stop)
            break;
        pthread_mutex_unlock(&a->janitor.mu);
        if (store_answering(a->store))
            assets_janitor_pass(a, clock_wall_ms());
        pthread_mutex_lock(&a->janitor.mu);
    }
    pthread_mutex_unlock(&a->janitor.mu);
    store_thread_exit();
    return NULL;
}

enum ch_status
janitor_start(struct assets *a, struct ch_err *err)
{
    if (pthread_create(&a->janitor.thread, NULL, janitor_main, a) != 0)
        return ch_err_set(err, CH_ENOMEM, NULL, "cannot start the assets janitor thread");
    a->janitor.running = true;
    return CH_OK;
}

void
janitor_stop(struct assets *a)
{
    if (!a->janitor.running)
        return;
    pthread_mutex_lock(&a->janitor.mu);
    a->janitor.stop = true;
    pthread_cond_signal(&a->janitor.cv);
    pthread_mutex_unlock(&a->janitor.mu);
    pthread_join(a->janitor.thread, NULL);
    a->janitor.running = false;
}
