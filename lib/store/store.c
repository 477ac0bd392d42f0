/* SPDX-License-Identifier: MIT */
/*
 * Connection, keeper thread and readiness. See store.h for the threading rules. Log lines here are the
 * connection's own events (connect, disconnect, reconnect, bootstrap), each logged once where it happens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto/crypto.h"
#include "log/log.h"
#include "base/clock.h"
#include "store/store_int.h"

const char *
store_last_error(void)
{
    const char *e = nats_GetLastError(NULL);

    /* nats.c prefixes its messages with "(file.c:123): " */
    if (e && e[0] == '(') {
        const char *p = strstr(e, "): ");
        if (p)
            e = p + 3;
    }
    return e ? e : "";
}

int
store_auth_parse(const char *s)
{
    static const char *const names[] = { "none", "token", "userpass", "nkey", "credentials" };

    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

enum ch_status
store_map(natsStatus s, jsErrCode jerr, const char *what, struct ch_err *err)
{
    const char *text = natsStatus_GetText(s);
    const char *last = store_last_error();

    if (s == NATS_OK)
        return CH_OK;
    if (jerr == JSStreamWrongLastSequenceErr)
        return ch_err_set(err, CH_ECONFLICT, NULL, "%s: changed concurrently, retry", what);
    if (jerr == JSStorageResourcesExceededErr || jerr == JSInsufficientResourcesErr ||
        jerr == JSAccountResourcesExceededErr || jerr == JSMemoryResourcesExceededErr || jerr == JSStreamLimitsErr)
        return ch_err_set(err, CH_ELIMIT, NULL, "%s: the server's storage is full (an operator must free or add space)", what);
    if (jerr == JSClusterNotAvailErr || jerr == JSStreamOfflineErr || jerr == JSClusterNoPeersErr)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "%s: JetStream unavailable", what);
    switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_SERVER:
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
        return ch_err_set(err, CH_EUNAVAIL, NULL, "%s: NATS unavailable (%s)", what, text);
    case NATS_NOT_FOUND:
        return ch_err_set(err, CH_ENOTFOUND, NULL, "%s: not found", what);
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return ch_err_set(err, CH_EINVAL, NULL, "%s: invalid argument", what);
    case NATS_NO_MEMORY:
        return ch_err_set(err, CH_ENOMEM, NULL, "%s: out of memory", what);
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return ch_err_set(err, CH_EUNAVAIL, NULL, "%s: NATS refused our credentials", what);
    default:
        if (strstr(last, "wrong last sequence"))
            return ch_err_set(err, CH_ECONFLICT, NULL, "%s: changed concurrently, retry", what);
        /* the KV calls do not hand us the JetStream error code, only its text (HTTP-like 503 from the server) */
        if (strstr(last, "temporarily unavailable") || strstr(last, "not available") || strstr(last, "offline") ||
            strstr(last, "no suitable peers"))
            return ch_err_set(err, CH_EUNAVAIL, NULL, "%s: JetStream unavailable (%s)", what, last);
        return ch_err_set(err, CH_EINTERNAL, NULL, "%s: %s%s%s (jetstream error %d)", what, text,
                          *last ? ": " : "", last, (int)jerr);
    }
}

static void
on_connected(natsConnection *nc, void *closure)
{
    struct store *st = closure;
    char url[256] = "";

    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    log_info("nats: connected to %s", url);
    atomic_store(&st->up, true);
    pthread_mutex_lock(&st->mu);
    st->connect_error[0] = '\0';
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void
on_disconnected(natsConnection *nc, void *closure)
{
    struct store *st = closure;

    (void)nc;
    atomic_store(&st->up, false);
    /* nats.c also calls this on a normal close; that is not news */
    if (!atomic_load(&st->closing))
        log_warn("nats: disconnected; reconnecting in the background");
}

static void
on_reconnected(natsConnection *nc, void *closure)
{
    struct store *st = closure;
    char url[256] = "";

    atomic_store(&st->up, true);
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    log_info("nats: reconnected to %s", url);
}

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    struct store *st = closure;

    (void)nc;
    (void)sub;
    /* During a failover every subscription reports the same few things (missed heartbeats, timeouts) several
     * times a second, often alternating: each kind is said once, then at most every 30 s with a count. */
    log_limited(st->err_limit, LOGL_WARN, natsStatus_GetText(s), "nats: asynchronous error: %s",
                natsStatus_GetText(s));
}

static void
on_closed(natsConnection *nc, void *closure)
{
    struct store *st = closure;

    (void)nc;
    atomic_store(&st->up, false);
    pthread_mutex_lock(&st->closed_mu);
    st->closed = true;
    pthread_cond_signal(&st->closed_cv);
    pthread_mutex_unlock(&st->closed_mu);
}

static void
on_lame_duck(natsConnection *nc, void *closure)
{
    (void)nc;
    (void)closure;
    log_info("nats: server entered lame duck mode; will move to another server");
}

static natsStatus
sign_nonce(char **custom_err, unsigned char **sig, int *sig_len, const char *nonce, void *closure)
{
    struct store *st = closure;

    (void)custom_err;
    if (crypto_nkey_sign(st->nkey_seed, (const unsigned char *)nonce, strlen(nonce), sig, NULL) != CH_OK)
        return NATS_ERR;
    *sig_len = 64;
    return NATS_OK;
}

/* The seed itself, or the first line of the file it names. Caller frees (and zeroes). */
static char *
load_seed(const char *v, struct ch_err *err)
{
    char buf[256], *s;
    FILE *f;
    size_t n;

    if (strncmp(v, "SU", 2) == 0)
        return strdup(v);
    if (!(f = fopen(v, "r"))) {
        ch_err_set(err, CH_EINVAL, "nats.client.nkey_seed",
                   "nats.client.nkey_seed: neither a user seed (SU...) nor a readable file: %s", strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    s = strdup(buf);
    explicit_bzero(buf, sizeof buf);
    return s;
}

static void *
keeper_main(void *arg)
{
    struct store *st = arg;
    int64_t next_try = 0, backoff = 250;
    char last_err[CH_ERR_MSG_MAX] = "";

    for (bool first = true;; first = false) {
        pthread_mutex_lock(&st->mu);
        if (!st->stop && !first) {
            struct timespec ts = clock_deadline(1000);
            pthread_cond_timedwait(&st->cv, &st->mu, &ts);
        }
        bool stop = st->stop;
        pthread_mutex_unlock(&st->mu);
        if (stop)
            break;
        store_subs_attach(st);
        if (atomic_load(&st->bootstrapped)) {
            store_followers_check(st);
            store_procs_refresh(st);
            continue;
        }
        if (store_fatal(st, last_err, sizeof last_err))
            continue; /* the app is on its way out */
        if (!store_connected(st) || clock_mono_ms() < next_try)
            continue;

        struct ch_err err = { 0 };
        if (store_bootstrap(st, &err) == CH_OK) {
            atomic_store(&st->bootstrapped, true);
            log_info("store: streams and buckets ready (replicas=%d)", st->replicas);
            store_followers_attach(st);
            continue;
        }
        /* retry with backoff; say it once per distinct reason (a fatal one is the app's to report) */
        if (!store_fatal(st, NULL, 0) && strcmp(last_err, err.msg) != 0) {
            log_warn("store: bootstrap failed, retrying: %s", err.msg);
            snprintf(last_err, sizeof last_err, "%s", err.msg);
        }
        next_try = clock_mono_ms() + backoff;
        backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
    }
    nats_ReleaseThreadMemory();
    return NULL;
}

static void store_free(struct store *st);
static void wait_closed(struct store *st, int64_t timeout_ms);

static void
stop_keeper(struct store *st)
{
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->keeper, NULL);
}

static enum ch_status
set_auth(struct store *st, natsOptions *opts, const struct store_opts *o, struct ch_err *err)
{
    natsStatus s = NATS_OK;
    char pub[57];

    switch (o->auth) {
    case STORE_AUTH_NONE:
        break;
    case STORE_AUTH_TOKEN:
        s = natsOptions_SetToken(opts, o->token);
        break;
    case STORE_AUTH_USERPASS:
        s = natsOptions_SetUserInfo(opts, o->username, o->password);
        break;
    case STORE_AUTH_NKEY:
        if (!(st->nkey_seed = load_seed(o->nkey_seed, err)))
            return err ? err->status : CH_EINVAL;
        if (crypto_nkey_public(st->nkey_seed, pub, err) != CH_OK)
            return ch_err_set(err, CH_EINVAL, "nats.client.nkey_seed", "nats.client.nkey_seed: %s",
                              err ? err->msg : "invalid");
        s = natsOptions_SetNKey(opts, pub, sign_nonce, st);
        break;
    case STORE_AUTH_CREDENTIALS:
        s = natsOptions_SetUserCredentialsFromFiles(opts, o->credentials_file, NULL);
        break;
    }
    if (s != NATS_OK)
        return ch_err_set(err, CH_EINVAL, NULL, "nats client credentials: %s", nats_GetLastError(NULL));
    if (o->ca_cert && *o->ca_cert) {
        if (natsOptions_LoadCATrustedCertificates(opts, o->ca_cert) != NATS_OK)
            return ch_err_set(err, CH_EINVAL, "nats.client.ca_cert", "nats.client.ca_cert: cannot load %s: %s",
                              o->ca_cert, nats_GetLastError(NULL));
    }
    return CH_OK;
}

enum ch_status
store_open(const struct store_opts *o, struct store **out, struct ch_err *err)
{
    struct store *st = calloc(1, sizeof *st);
    jsOptions jo;
    natsStatus s;
    enum ch_status cs = CH_OK;
    size_t n = 0, off = 0;

    if (!st)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->lmu, NULL);
    pthread_mutex_init(&st->hmu, NULL);
    pthread_cond_init(&st->cv, NULL);
    pthread_cond_init(&st->attach_cv, NULL);
    pthread_cond_init(&st->hcv, NULL);
    pthread_mutex_init(&st->closed_mu, NULL);
    pthread_cond_init(&st->closed_cv, NULL);
    st->err_limit = log_limit_new(30000);
    st->replicas = o->replicas > 0 ? o->replicas : 1;
    st->operator_command = o->operator_command;
    st->asset_cache_ttl_ms = o->asset_cache_ttl_ms > 0 ? o->asset_cache_ttl_ms : 0;
    st->snapshot_ttl_ms = o->snapshot_ttl_ms > 0 ? o->snapshot_ttl_ms : 0;
    st->timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 5000;
    while (o->urls[n]) {
        off += (size_t)snprintf(st->urls + off, off < sizeof st->urls ? sizeof st->urls - off : 0, "%s%s",
                                n ? "," : "", o->urls[n]);
        n++;
    }
    if (n == 0) {
        cs = ch_err_set(err, CH_EINVAL, "nats.client.url", "no NATS server URL");
        goto fail;
    }
    if ((s = natsOptions_Create(&st->opts)) != NATS_OK) {
        cs = store_map(s, 0, "nats options", err);
        goto fail;
    }
    natsOptions_SetServers(st->opts, (const char **)o->urls, (int)n);
    natsOptions_SetName(st->opts, o->name ? o->name : "chatto");
    natsOptions_SetMaxReconnect(st->opts, -1);
    natsOptions_SetReconnectWait(st->opts, o->reconnect_wait_ms > 0 ? o->reconnect_wait_ms : 1000);
    natsOptions_SetReconnectJitter(st->opts, 100, 1000);
    natsOptions_SetTimeout(st->opts, 2000);
    natsOptions_SetPingInterval(st->opts, 5000);
    natsOptions_SetMaxPingsOut(st->opts, 3);
    natsOptions_SetReconnectBufSize(st->opts, 8 * 1024 * 1024);
    /* every request/reply is on some HTTP request's critical path: write it now, not at the next flush */
    natsOptions_SetSendAsap(st->opts, true);
    natsOptions_SetDisconnectedCB(st->opts, on_disconnected, st);
    natsOptions_SetReconnectedCB(st->opts, on_reconnected, st);
    natsOptions_SetErrorHandler(st->opts, on_error, st);
    natsOptions_SetLameDuckModeCB(st->opts, on_lame_duck, st);
    natsOptions_SetClosedCB(st->opts, on_closed, st);
    if ((cs = set_auth(st, st->opts, o, err)) != CH_OK)
        goto fail;

    /* One plain attempt first, so that the reason for a failure (refused, bad credentials, TLS) reaches the
     * log; then nats.c's retry-on-failed-connect takes over and keeps the process up until NATS appears. */
    natsOptions_SetRetryOnFailedConnect(st->opts, false, NULL, NULL);
    s = natsConnection_Connect(&st->nc, st->opts);
    if (s != NATS_OK) {
        const char *why = store_last_error();
        snprintf(st->connect_error, sizeof st->connect_error, "%s", *why ? why : natsStatus_GetText(s));
        if (s == NATS_CONNECTION_AUTH_FAILED || strstr(st->connect_error, "uthorization"))
            log_error("nats: %s refused our credentials (%s); check nats.client.auth_method and its settings; "
                      "retrying",
                      st->urls, st->connect_error);
        else
            log_info("nats: waiting for %s (%s)", st->urls, st->connect_error);
        natsOptions_SetRetryOnFailedConnect(st->opts, true, on_connected, st);
        s = natsConnection_Connect(&st->nc, st->opts);
    }
    if (s == NATS_OK) {
        char url[256] = "";
        atomic_store(&st->up, true);
        natsConnection_GetConnectedUrl(st->nc, url, sizeof url);
        log_info("nats: connected to %s", url);
    } else if (s != NATS_NOT_YET_CONNECTED) {
        cs = ch_err_set(err, CH_EUNAVAIL, NULL, "nats connect to %s: %s", st->urls,
                        *store_last_error() ? store_last_error() : natsStatus_GetText(s));
        goto fail;
    }
    jsOptions_Init(&jo);
    jo.Wait = st->timeout_ms;
    if ((s = natsConnection_JetStream(&st->js, st->nc, &jo)) != NATS_OK) {
        cs = store_map(s, 0, "jetstream context", err);
        goto fail;
    }
    if ((cs = store_procs_init(st, o, err)) != CH_OK)
        goto fail;
    if (pthread_create(&st->keeper, NULL, keeper_main, st) != 0) {
        cs = ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the store-keeper thread");
        goto fail;
    }
    pthread_setname_np(st->keeper, "store-keeper");
    if ((cs = store_health_start(st, err)) != CH_OK) {
        stop_keeper(st);
        goto fail;
    }
    *out = st;
    return CH_OK;
fail:
    jsCtx_Destroy(st->js);
    store_free(st);
    return cs;
}

/* Close the connection and wait for nats.c's closed callback (it runs on nats.c's thread after Close returns, and
 * uses st), then free what the store owns. Used by store_close and by store_open's failure path. */
static void
wait_closed(struct store *st, int64_t timeout_ms)
{
    struct timespec ts = clock_deadline(timeout_ms);

    pthread_mutex_lock(&st->closed_mu);
    while (!st->closed)
        if (pthread_cond_timedwait(&st->closed_cv, &st->closed_mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&st->closed_mu);
}

static void
store_free(struct store *st)
{
    if (st->nc) {
        natsConnection_Close(st->nc);
        wait_closed(st, 5000);
    }
    natsConnection_Destroy(st->nc);
    natsOptions_Destroy(st->opts);
    if (st->nkey_seed) {
        explicit_bzero(st->nkey_seed, strlen(st->nkey_seed));
        free(st->nkey_seed);
    }
    free(st->proc_record);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->lmu);
    pthread_mutex_destroy(&st->hmu);
    pthread_cond_destroy(&st->cv);
    pthread_cond_destroy(&st->attach_cv);
    pthread_cond_destroy(&st->hcv);
    pthread_mutex_destroy(&st->closed_mu);
    pthread_cond_destroy(&st->closed_cv);
    log_limit_free(st->err_limit);
    free(st);
}

void
store_shutdown(struct store *st, int64_t drain_ms)
{
    bool answering;

    if (!st || atomic_exchange(&st->closing, true))
        return;
    store_health_stop(st);
    answering = store_answering(st);
    /* With NATS down or stalled, close first: that ends the keeper's call in progress (and every other caller's)
     * at once instead of after its request timeout. */
    if (!answering)
        natsConnection_Close(st->nc);
    stop_keeper(st); /* before anything below touches what the keeper uses (the process record) */
    if (answering) {
        /* leave the process registry (a record left behind expires by itself), push out what we published,
         * then close. Not nats.c's drain: it finishes on a thread of its own that races with the close that
         * must follow it (ThreadSanitizer caught it crashing in natsThread_Detach). */
        store_procs_leave(st);
        natsConnection_FlushTimeout(st->nc, drain_ms);
        natsConnection_Close(st->nc);
    }
    wait_closed(st, 2000);
}

bool
store_closing(struct store *st)
{
    return st && atomic_load(&st->closing);
}

void
store_close(struct store *st)
{
    if (!st)
        return;
    store_shutdown(st, 2000);
    store_procs_leave(st); /* frees the record if the registry was not reachable */
    for (int i = 0; i < STORE_B_COUNT; i++)
        kvStore_Destroy(st->kv[i]);
    jsCtx_Destroy(st->js);
    st->js = NULL;
    store_free(st);
}

void
store_library_init(void)
{
    /* nats.c spins on its mutexes before sleeping (a few thousand tries by default); with more threads than cores
     * that burns CPU the request threads need. This must run before the first connection, probes included. */
    nats_Open(0);
}

void
store_thread_exit(void)
{
    nats_ReleaseThreadMemory();
}

void
store_library_shutdown(void)
{
    nats_CloseAndWait(2000);
}

bool
store_connected(struct store *st)
{
    return st && atomic_load(&st->up);
}

enum ch_status
store_probe_url(const char *url, const char *token, int64_t timeout_ms, struct ch_err *err)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus s;
    enum ch_status cs;

    if ((s = natsOptions_Create(&opts)) == NATS_OK && (s = natsOptions_SetURL(opts, url)) == NATS_OK &&
        (s = natsOptions_SetTimeout(opts, timeout_ms)) == NATS_OK &&
        (s = natsOptions_SetAllowReconnect(opts, false)) == NATS_OK && token && *token)
        s = natsOptions_SetToken(opts, token);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    if (s == NATS_OK)
        s = js_GetAccountInfo(&ai, js, &jo, &jerr);
    cs = store_map(s, jerr, "jetstream probe", err);
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    return cs;
}

enum ch_status
store_server_identity(struct store *st, char *id, size_t idlen, int64_t *created_ms)
{
    if (!st || !atomic_load(&st->bootstrapped))
        return CH_EUNAVAIL;
    snprintf(id, idlen, "%s", st->server_id);
    if (created_ms)
        *created_ms = st->server_created_ms;
    return CH_OK;
}
