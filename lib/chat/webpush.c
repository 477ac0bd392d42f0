/* SPDX-License-Identifier: MIT */
/*
 * Web Push for notifications (upstream's PushNotificationService Subscribe, Unsubscribe, SendTestNotification).
 *
 * Subscriptions: one KV entry per browser in chatto_push_subscriptions, <user>.<hash of the endpoint> ->
 * {endpoint, p256dh, auth, userAgent, clientHost, at}, the same for every process. At most PUSH_SUBS_MAX per
 * account: a new one pushes out the one refreshed longest ago (the client refreshes its own at every start). An
 * endpoint belongs to one account: subscribing it moves it (a shared browser changed hands).
 *
 * Sending: the notifier of the process that wrote an alerting entry queues it here (pusher_enqueue); PUSHER_THREADS
 * workers send it to every subscription of the person with lib/push (RFC 8291 encryption, RFC 8292 VAPID), urgency
 * high, TTL the rest of a two-minute delivery window (a push that would arrive later than that is dropped: stale
 * alerts wake phones for nothing). A 404 or 410 from the push service deletes the subscription. So each push
 * leaves exactly one process, and a slow push service holds up pushes only, never notifications or requests.
 * The test push (one per account per 10 s, counted in NATS so every process agrees) is sent by the caller's thread.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "chat/chat_int.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "log/log.h"
#include "push/push.h"
#include "store/store.h"

#define PUSH_SUBS_MAX 16
#define PUSH_WINDOW_MS (2 * 60 * 1000) /* upstream's delivery window */
#define PUSH_TEST_GAP_MS 10000
#define PUSHER_THREADS 2
#define PUSHER_QUEUE_MAX 4096
#define SUB_KEY_MAX (ID_MAX + 34)

struct push_item {
    struct push_item *next;
    char uid[ID_MAX + 1];
    char *payload;
    int64_t at;
};

struct pusher {
    struct push_config cfg; /* cfg.vapid is the caller's, alive until chat_free */
    char subject[600];
    pthread_t threads[PUSHER_THREADS];
    int nthreads;
    pthread_mutex_t mu; /* guards the queue and stop */
    pthread_cond_t cv;
    struct push_item *head, *tail;
    size_t queued;
    bool stop;
    int64_t dropped_logged_ms;
};

/* <uid>.<the endpoint's SHA-256, first 16 bytes in hex> */
static void
sub_key(const char *uid, const char *endpoint, char out[SUB_KEY_MAX])
{
    char hex[CRYPTO_SHA256_HEX];

    crypto_sha256_hex(endpoint, strlen(endpoint), hex);
    snprintf(out, SUB_KEY_MAX, "%s.%.32s", uid, hex);
}

static enum ch_status
sub_load(struct chat *c, const char *key, cJSON **o, struct ch_err *err)
{
    char *v = NULL;
    size_t len = 0;
    uint64_t rev;
    enum ch_status st;

    *o = NULL;
    if ((st = store_kv_get(c->store, STORE_B_PUSHSUBS, key, &v, &len, &rev, err)) != CH_OK)
        return st;
    *o = cJSON_ParseWithLength(v, len);
    free(v);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(*o, "endpoint"))) {
        cJSON_Delete(*o);
        *o = NULL;
        return ch_err_set(err, CH_EINTERNAL, NULL, "push subscription %s is corrupt", key);
    }
    return CH_OK;
}

/* ---- sending ---- */

/* Send payload to one stored subscription; a gone one is deleted. CH_OK if the push service took it. */
static enum ch_status
send_one(struct chat *c, const char *key, const char *payload, int ttl_s)
{
    struct pusher *p = c->pusher;
    cJSON *s = NULL;
    struct ch_err e = { 0 };
    long http = 0;
    enum ch_status st;

    if (sub_load(c, key, &s, NULL) != CH_OK)
        return CH_ENOTFOUND;
    struct push_msg m = {
        .endpoint = json_str_or(s, "endpoint", ""),
        .p256dh = json_str_or(s, "p256dh", ""),
        .auth = json_str_or(s, "auth", ""),
        .payload = payload,
        .len = strlen(payload),
        .ttl_s = ttl_s,
        .urgency = PUSH_URGENCY_HIGH,
    };
    st = push_send(&p->cfg, &m, &http, &e);
    if (st == CH_ENOTFOUND) {
        log_info("push: a subscription is gone (HTTP %ld); deleted", http);
        store_kv_purge(c->store, STORE_B_PUSHSUBS, key, NULL);
    } else if (st != CH_OK) {
        log_warn("push: not sent (HTTP %ld): %s", http, e.msg);
    }
    cJSON_Delete(s);
    return st;
}

/* Send to every subscription of uid; how many took it (-1: none could be listed). */
static int
send_all(struct chat *c, const char *uid, const char *payload, int ttl_s, size_t *nsubs)
{
    char filter[ID_MAX + 4], **keys = NULL;
    size_t n = 0;
    int ok = 0;

    *nsubs = 0;
    snprintf(filter, sizeof filter, "%s.*", uid);
    if (store_kv_keys(c->store, STORE_B_PUSHSUBS, filter, &keys, &n, NULL) != CH_OK)
        return -1;
    *nsubs = n;
    for (size_t i = 0; i < n; i++)
        ok += send_one(c, keys[i], payload, ttl_s) == CH_OK;
    store_kv_keys_free(keys);
    return ok;
}

static void *
pusher_main(void *arg)
{
    struct chat *c = arg;
    struct pusher *p = c->pusher;

    pthread_setname_np(pthread_self(), "chat-pusher");
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        struct push_item *it = p->head;
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        int64_t left_ms = it->at + PUSH_WINDOW_MS - clock_wall_ms();
        size_t n;
        if (left_ms > 0 && store_connected(c->store))
            send_all(c, it->uid, it->payload, (int)((left_ms + 999) / 1000), &n);
        free(it->payload);
        free(it);
    }
    store_thread_exit();
    return NULL;
}

void
pusher_enqueue(struct chat *c, const char *uid, char *payload, int64_t at)
{
    struct pusher *p = c->pusher;
    struct push_item *it = NULL;

    if (!p || !payload || !(it = calloc(1, sizeof *it))) {
        free(payload);
        return;
    }
    snprintf(it->uid, sizeof it->uid, "%s", uid);
    it->payload = payload;
    it->at = at;
    pthread_mutex_lock(&p->mu);
    if (p->stop || p->queued >= PUSHER_QUEUE_MAX) {
        bool say = !p->stop && clock_mono_ms() - p->dropped_logged_ms > 60000;
        if (say)
            p->dropped_logged_ms = clock_mono_ms();
        pthread_mutex_unlock(&p->mu);
        if (say)
            log_warn("push: %d pushes are waiting for slow push services; dropping new ones", PUSHER_QUEUE_MAX);
        free(payload);
        free(it);
        return;
    }
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

enum ch_status
chat_push_start(struct chat *c, const struct push_vapid *vapid, const char *subject, bool allow_loopback,
                struct ch_err *err)
{
    struct pusher *p = calloc(1, sizeof *p);

    if (!p)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    snprintf(p->subject, sizeof p->subject, "%s", subject);
    p->cfg.vapid = vapid;
    p->cfg.subject = p->subject;
    p->cfg.allow_loopback = allow_loopback;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    c->pusher = p;
    for (int i = 0; i < PUSHER_THREADS; i++) {
        if (pthread_create(&p->threads[i], NULL, pusher_main, c) != 0) {
            pusher_stop(c);
            return ch_err_set(err, CH_ENOMEM, NULL, "cannot start the push threads");
        }
        p->nthreads++;
    }
    return CH_OK;
}

void
pusher_stop(struct chat *c)
{
    struct pusher *p = c->pusher;

    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while (p->head) {
        struct push_item *it = p->head;
        p->head = it->next;
        free(it->payload);
        free(it);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    c->pusher = NULL;
}

bool
chat_push_enabled(const struct chat *c)
{
    return c->pusher != NULL;
}

const char *
chat_push_public_key(const struct chat *c)
{
    return c->pusher ? push_vapid_public(c->pusher->cfg.vapid) : NULL;
}

/* ---- the API ---- */

static enum ch_status
push_needed(struct chat *c, struct ch_err *err)
{
    return c->pusher ? CH_OK : ch_err_set(err, CH_ECONFLICT, NULL, "Web Push is not enabled on this server (push.enabled)");
}

/* The oldest of uid's subscriptions beyond PUSH_SUBS_MAX go (best effort: the limit holds from the next one on). */
static void
subs_trim(struct chat *c, const char *uid)
{
    char filter[ID_MAX + 4], **keys = NULL;
    size_t n = 0, left;

    snprintf(filter, sizeof filter, "%s.*", uid);
    if (store_kv_keys(c->store, STORE_B_PUSHSUBS, filter, &keys, &n, NULL) != CH_OK)
        return;
    for (left = n; left > PUSH_SUBS_MAX; left--) {
        size_t oldest = n;
        int64_t oldest_at = INT64_MAX;
        for (size_t i = 0; i < n; i++) {
            cJSON *s = NULL;
            if (!keys[i][0])
                continue; /* trimmed already */
            int64_t at = sub_load(c, keys[i], &s, NULL) == CH_OK ? json_int64_or(s, "at", 0) : 0;
            cJSON_Delete(s);
            if (at < oldest_at) {
                oldest_at = at;
                oldest = i;
            }
        }
        if (oldest == n)
            break;
        store_kv_purge(c->store, STORE_B_PUSHSUBS, keys[oldest], NULL);
        keys[oldest][0] = '\0';
    }
    store_kv_keys_free(keys);
}

enum ch_status
chat_push_subscribe(struct chat *c, const struct user *who, const struct chat_push_sub *sub, struct ch_err *err)
{
    char key[SUB_KEY_MAX], filter[64], hex[CRYPTO_SHA256_HEX], **keys = NULL;
    size_t n = 0;
    enum ch_status st;

    if ((st = push_needed(c, err)) != CH_OK ||
        (st = push_subscription_check(&c->pusher->cfg, sub->endpoint, sub->p256dh, sub->auth, err)) != CH_OK)
        return st;
    sub_key(who->id, sub->endpoint, key);
    /* the endpoint belongs to this account from now on: another account's record of it goes */
    crypto_sha256_hex(sub->endpoint, strlen(sub->endpoint), hex);
    snprintf(filter, sizeof filter, "*.%.32s", hex);
    if ((st = store_kv_keys(c->store, STORE_B_PUSHSUBS, filter, &keys, &n, err)) != CH_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) != 0)
            store_kv_purge(c->store, STORE_B_PUSHSUBS, keys[i], NULL);
    store_kv_keys_free(keys);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "endpoint", sub->endpoint);
    cJSON_AddStringToObject(o, "p256dh", sub->p256dh);
    cJSON_AddStringToObject(o, "auth", sub->auth);
    if (sub->user_agent && *sub->user_agent)
        cJSON_AddStringToObject(o, "userAgent", sub->user_agent);
    if (sub->client_host && *sub->client_host)
        cJSON_AddStringToObject(o, "clientHost", sub->client_host);
    json_add_int64_str(o, "at", clock_wall_ms());
    char *s = json_print(o, NULL);
    cJSON_Delete(o);
    if (!s)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    st = store_kv_put(c->store, STORE_B_PUSHSUBS, key, s, strlen(s), NULL, err);
    free(s);
    if (st == CH_OK)
        subs_trim(c, who->id);
    return st;
}

enum ch_status
chat_push_unsubscribe(struct chat *c, const struct user *who, const char *endpoint, struct ch_err *err)
{
    char key[SUB_KEY_MAX];

    sub_key(who->id, endpoint, key);
    return store_kv_purge(c->store, STORE_B_PUSHSUBS, key, err);
}

/* One test push per account per PUSH_TEST_GAP_MS, whichever process is asked (compare-and-set in chatto_throttle). */
static enum ch_status
test_allowed(struct chat *c, const char *uid, struct ch_err *err)
{
    char key[ID_MAX + 16], buf[32];
    enum ch_status st;

    snprintf(key, sizeof key, "pushtest.%s", uid);
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        char *v = NULL;
        uint64_t rev = 0;
        long long last = 0;
        int64_t now = clock_wall_ms();
        st = store_kv_get(c->store, STORE_B_THROTTLE, key, &v, NULL, &rev, err);
        if (st != CH_OK && st != CH_ENOTFOUND)
            return st;
        if (st == CH_OK && sscanf(v, "%lld", &last) == 1 && now - last < PUSH_TEST_GAP_MS && now >= last) {
            free(v);
            return ch_err_set(err, CH_ELIMIT, NULL, "one test push per %d seconds; try again in %lld s",
                              PUSH_TEST_GAP_MS / 1000, (long long)((PUSH_TEST_GAP_MS - (now - last) + 999) / 1000));
        }
        free(v);
        snprintf(buf, sizeof buf, "%" PRId64, now);
        st = st == CH_OK ? store_kv_update(c->store, STORE_B_THROTTLE, key, buf, strlen(buf), rev, NULL, err)
                         : store_kv_create(c->store, STORE_B_THROTTLE, key, buf, strlen(buf), NULL, err);
        if (st != CH_ECONFLICT && st != CH_EEXIST)
            return st;
    }
    return ch_err_set(err, CH_ELIMIT, NULL, "one test push per %d seconds", PUSH_TEST_GAP_MS / 1000);
}

enum ch_status
chat_push_test(struct chat *c, const struct user *who, bool *sent, struct ch_err *err)
{
    char filter[ID_MAX + 4], **keys = NULL;
    size_t n = 0;
    enum ch_status st;

    *sent = false;
    if ((st = push_needed(c, err)) != CH_OK)
        return st;
    snprintf(filter, sizeof filter, "%s.*", who->id);
    if ((st = store_kv_keys(c->store, STORE_B_PUSHSUBS, filter, &keys, &n, err)) != CH_OK)
        return st;
    store_kv_keys_free(keys);
    if (!n)
        return ch_err_set(err, CH_ECONFLICT, NULL, "this account has no push subscriptions; enable push on a device first");
    if ((st = test_allowed(c, who->id, err)) != CH_OK)
        return st;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "title", "Chatto test notification");
    cJSON_AddStringToObject(o, "body", "Push notifications reach this device.");
    cJSON_AddStringToObject(o, "url", "/");
    cJSON_AddStringToObject(o, "tag", "chatto-test");
    cJSON_AddStringToObject(o, "cause", "test");
    char *payload = json_print(o, NULL);
    cJSON_Delete(o);
    if (!payload)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    int ok = send_all(c, who->id, payload, PUSH_WINDOW_MS / 1000, &n);
    free(payload);
    if (ok <= 0) /* the push services' answers are logged, not shown */
        return ch_err_set(err, CH_EUNAVAIL, NULL, "no push service accepted the test notification");
    *sent = true;
    return CH_OK;
}
