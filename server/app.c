/* SPDX-License-Identifier: MIT */
/*
 * Process wiring and lifecycle. Start order: signals blocked → crypto → data dir, lock and secrets (embedded) →
 * HTTP listener (so /healthz answers at once) → nats-server child (embedded) → storage → wait for signals.
 * Stop order is the reverse, draining at each step.
 *
 * Threads in this process:
 *   main               app_run: sigwait loop, readiness log, start/stop
 *   MHD-worker x N     epoll threads (webserver.threads): every HTTP connection's bytes, routing, the handlers
 *                      that never wait (healthz, readyz, static files); never wait on NATS
 *   http-worker x M    made on demand, one per request that may wait on storage (the API), which holds up
 *                      only that request; idle ones leave after 30 s
 *   nats-supervisor    owns the nats-server child (embedded mode only)
 *   store-keeper       bootstraps streams and buckets once connected; subscribes stream followers
 *   store-health       asks JetStream a few times a second; /readyz reads what it found
 *   kv watchers        one thread per KV watch (users, read positions, presence, revoked tokens)
 *   ws-loop            every WebSocket (epoll + wslay): moves bytes, never waits on NATS (server/ws)
 *   rt-worker          realtime: replay ring, resume, typing, presence, audiences (lib/realtime); no NATS calls
 *   rt-io              realtime's NATS calls: hello token checks, this process's presence entries
 *   chat eraser        erases bodies of deleted messages a crashed deleter left behind
 *   search-indexer     commits and purges the search index, joins the providers once caught up (lib/search);
 *                      events are applied on the store's follower thread, queries answered on nats.c's
 *   nats.c threads     connection reader/flusher/timers and subscription callbacks (our callbacks run there)
 * SIGTERM, SIGINT and SIGHUP are blocked before any thread starts, so only main receives them (sigwait).
 */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "base/netaddr.h"
#include "base/ratelimit.h"
#include "base/parse.h"
#include "assets/assets.h"
#include "calls/calls.h"
#include "chat/chat.h"
#include "crypto/crypto.h"
#include "http/http.h"
#include "push/push.h"
#include "log/log.h"
#include "store/store.h"
#include "supervisor.h"
#include "web.h"
#include "metricsd.h"
#include "metrics/metrics.h"
#include "realtime/realtime.h"
#include "s3/s3.h"
#include "search/search.h"
#include "ws/ws.h"
#include "version.h"

extern char **environ;

/* Secrets generated for embedded mode when not configured; nats.embedded.auth_token included. */
/* lib/chat reaches files through these (it does not know lib/assets). */
static enum ch_status
hook_claim(void *ctx, const char *uid, const char *room, const char *msg_id, const char *const *ids, size_t n,
           cJSON **attachments, struct ch_err *err)
{
    return assets_claim(ctx, uid, room, msg_id, ids, n, attachments, err);
}

static void
hook_unclaim(void *ctx, const char *msg_id, const char *const *ids, size_t n)
{
    assets_unclaim(ctx, msg_id, ids, n);
}

static void
hook_erase(void *ctx, const char *const *ids, size_t n)
{
    assets_erase(ctx, ids, n);
}

static void
hook_url(void *ctx, const char *asset_id, const char *viewer, char *buf, size_t len, int64_t *expires_ms)
{
    assets_url(ctx, asset_id, viewer, buf, len, expires_ms);
}

static bool
hook_thumb_url(void *ctx, const char *asset_id, const char *content_type, int width, int height, const char *viewer,
               char *buf, size_t len, int64_t *expires_ms)
{
    static const struct assets_image_spec thumb = { ASSETS_THUMB_DIM, ASSETS_THUMB_DIM, ASSETS_FIT_CONTAIN };

    if (!assets_image_offered(ctx, content_type, width, height))
        return false;
    assets_image_url(ctx, asset_id, &thumb, viewer, buf, len, expires_ms);
    return true;
}

static bool
hook_online(void *ctx, const char *uid)
{
    return strcmp(rt_presence(ctx, uid), "offline") != 0;
}

static const enum cfg_key generated_secrets[] = {
    CFG_WEBSERVER_COOKIE_SIGNING_SECRET,
    CFG_CORE_SECRET_KEY,
    CFG_CORE_ASSETS_SIGNING_SECRET,
    CFG_NATS_EMBEDDED_AUTH_TOKEN,
};
#define N_GENERATED (sizeof generated_secrets / sizeof generated_secrets[0])

static void
apply_log_config(const struct cfg *cfg)
{
    log_configure((enum log_level)log_level_parse(cfg_str(cfg, CFG_LOG_LEVEL)),
                  strcmp(cfg_str(cfg, CFG_LOG_FORMAT), "json") == 0);
}

int
app_mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

enum ch_status
app_load_secrets(struct cfg *cfg, bool create, struct ch_err *err)
{
    const char *dir = cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR);
    char path[PATH_MAX], names[512] = "";
    struct cfg *saved = NULL;
    struct stat sb;
    bool missing = false;
    enum ch_status st = CH_OK;
    size_t off = 0;

    snprintf(path, sizeof path, "%s/secrets.ini", dir);
    for (size_t i = 0; i < N_GENERATED; i++)
        missing |= !cfg_is_set(cfg, generated_secrets[i]);
    if (!missing)
        return CH_OK;
    if (!(saved = cfg_new()))
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if (stat(path, &sb) == 0) {
        if ((st = cfg_load_file(saved, path, err)) != CH_OK)
            goto out;
        if (sb.st_mode & 077)
            log_warn("app: %s is readable by other users (mode %03o); it should be 0600", path,
                     (unsigned)(sb.st_mode & 0777));
    } else if (errno != ENOENT) {
        st = ch_err_set(err, CH_EINVAL, NULL, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* generate what neither the config nor the secrets file has */
    bool changed = false;
    for (size_t i = 0; i < N_GENERATED; i++) {
        enum cfg_key k = generated_secrets[i];
        if (cfg_is_set(cfg, k) || cfg_is_set(saved, k))
            continue;
        if (!create) {
            st = ch_err_set(err, CH_ENOTFOUND, NULL, "no secrets generated yet");
            goto out;
        }
        char secret[CRYPTO_SECRET_LEN + 1];
        crypto_secret_new(secret);
        cfg_set(saved, k, secret, CFG_SRC_GENERATED, path, NULL);
        explicit_bzero(secret, sizeof secret);
        off += (size_t)snprintf(names + off, off < sizeof names ? sizeof names - off : 0, "%s%s", off ? ", " : "",
                                cfg_keyinfo(k)->dotted);
        changed = true;
    }
    if (changed) {
        char tmp[PATH_MAX + 8];
        int fd;
        FILE *f;
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
            st = ch_err_set(err, CH_EINVAL, "nats.embedded.data_dir", "cannot write %s: %s", tmp, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        fputs("# Secrets chatto generated for this data directory. Keep this file private (mode 0600) and back it\n"
              "# up with the data: losing it logs everyone out. Values set in the config file or environment win.\n",
              f);
        const char *section = NULL;
        for (size_t i = 0; i < N_GENERATED; i++) {
            const struct cfg_keyinfo *ki = cfg_keyinfo(generated_secrets[i]);
            if (!cfg_is_set(saved, generated_secrets[i]))
                continue;
            if (!section || strcmp(section, ki->section)) {
                fprintf(f, "[%s]\n", ki->section);
                section = ki->section;
            }
            fprintf(f, "%s = \"%s\"\n", ki->name, cfg_str(saved, generated_secrets[i]));
        }
        if (fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
            st = ch_err_set(err, CH_EINVAL, "nats.embedded.data_dir", "cannot write %s: %s", path, strerror(errno));
            goto out;
        }
        log_info("app: generated %s and stored them in %s", names, path);
    }
    for (size_t i = 0; i < N_GENERATED; i++) {
        enum cfg_key k = generated_secrets[i];
        if (!cfg_is_set(cfg, k) && cfg_is_set(saved, k))
            cfg_set(cfg, k, cfg_str(saved, k), CFG_SRC_GENERATED, path, NULL);
    }
out:
    cfg_free(saved);
    return st;
}

int
app_lock_data_dir(const char *dir, struct ch_err *err)
{
    char path[PATH_MAX], pid[32];
    int fd;

    snprintf(path, sizeof path, "%s/chatto.lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        ch_err_set(err, CH_EINVAL, "nats.embedded.data_dir", "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = read(fd, pid, sizeof pid - 1);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        ch_err_set(err, CH_EEXIST, "nats.embedded.data_dir",
                   "data directory %s is in use by another chatto process (pid %s)", dir, *pid ? pid : "?");
        close(fd);
        return -1;
    }
    if (ftruncate(fd, 0) == 0) {
        int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
        if (pwrite(fd, pid, (size_t)n, 0) < 0) {
        }
    }
    return fd;
}

void
app_store_opts(const struct cfg *cfg, const char *name, struct store_opts *so)
{
    memset(so, 0, sizeof *so);
    so->replicas = (int)cfg_int(cfg, CFG_NATS_REPLICAS);
    so->request_timeout_ms = cfg_int(cfg, CFG_NATS_REQUEST_TIMEOUT);
    if (cfg_bool(cfg, CFG_CORE_ASSETS_CACHE_ENABLED))
        so->asset_cache_ttl_ms = cfg_int(cfg, CFG_CORE_ASSETS_CACHE_TTL);
    if (cfg_bool(cfg, CFG_CORE_PROJECTION_SNAPSHOTS))
        so->snapshot_ttl_ms = cfg_int(cfg, CFG_CORE_PROJECTION_SNAPSHOT_RETENTION);
    so->name = name;
    if (cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED))
        return; /* the caller knows the child's URL and token */
    so->urls = cfg_list(cfg, CFG_NATS_CLIENT_URL, NULL);
    so->auth = (enum store_auth)store_auth_parse(cfg_str(cfg, CFG_NATS_CLIENT_AUTH_METHOD));
    so->token = cfg_str(cfg, CFG_NATS_CLIENT_TOKEN);
    so->username = cfg_str(cfg, CFG_NATS_CLIENT_USERNAME);
    so->password = cfg_str(cfg, CFG_NATS_CLIENT_PASSWORD);
    so->nkey_seed = cfg_str(cfg, CFG_NATS_CLIENT_NKEY_SEED);
    so->credentials_file = cfg_str(cfg, CFG_NATS_CLIENT_CREDENTIALS_FILE);
    so->ca_cert = cfg_str(cfg, CFG_NATS_CLIENT_CA_CERT);
    so->reconnect_wait_ms = 1000;
}

/* The settings every process on one NATS must share: the table's must-match keys, except the NATS URLs (each
 * process may list the cluster's nodes in its own order). Numbers are compared by value. */
static size_t
app_match_settings(const struct cfg *cfg, struct store_setting *out, char (*num)[24])
{
    size_t n = 0;

    for (int k = 0; k < CFG_KEY_COUNT; k++) {
        const struct cfg_keyinfo *ki = cfg_keyinfo((enum cfg_key)k);
        if (!(ki->flags & CFG_F_MATCH) || k == CFG_NATS_CLIENT_URL)
            continue;
        out[n].name = ki->dotted;
        if (ki->type == CFG_T_INT) {
            snprintf(num[n], sizeof num[n], "%lld", (long long)cfg_int(cfg, (enum cfg_key)k));
            out[n].value = num[n];
        } else {
            out[n].value = cfg_str(cfg, (enum cfg_key)k);
        }
        n++;
    }
    return n;
}

/* http://host:port spelled as browsers send Origin (no default port), through the same parser as webserver.url */
static void
loopback_origin(const char *host, int port, char *buf, size_t len)
{
    char u[64];

    snprintf(u, sizeof u, "http://%s:%d", host, port);
    if (parse_url_origin(u, buf, len) != CH_OK)
        snprintf(buf, len, "%s", u);
}

void
app_accounts_opts(const struct cfg *cfg, struct store *st, struct accounts_opts *ao)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    memset(ao, 0, sizeof *ao);
    ao->store = st;
    ao->core_secret = cfg_str(cfg, CFG_CORE_SECRET_KEY);
    ao->cookie_signing_secret = cfg_str(cfg, CFG_WEBSERVER_COOKIE_SIGNING_SECRET);
    ao->cookie_encryption_secret = cfg_str(cfg, CFG_WEBSERVER_COOKIE_ENCRYPTION_SECRET);
    ao->cost = (enum crypto_pwcost)crypto_pwcost_parse(cfg_str(cfg, CFG_AUTH_PASSWORD_HASH));
    ao->max_concurrent_hashes = cfg_int(cfg, CFG_AUTH_MAX_CONCURRENT_HASHES)
                                    ? (int)cfg_int(cfg, CFG_AUTH_MAX_CONCURRENT_HASHES)
                                    : (int)(ncpu > 0 ? ncpu : 1);
    ao->token_ttl_ms = cfg_int(cfg, CFG_AUTH_TOKEN_TTL);
    ao->max_users = cfg_int(cfg, CFG_LIMITS_MAX_USERS);
    ao->login_max_failures = (int)cfg_int(cfg, CFG_AUTH_LOGIN_MAX_FAILURES);
    ao->login_max_failures_per_ip = (int)cfg_int(cfg, CFG_AUTH_LOGIN_MAX_FAILURES_PER_IP);
    ao->login_lockout_ms = cfg_int(cfg, CFG_AUTH_LOGIN_LOCKOUT);
    ao->register_max_per_ip = (int)cfg_int(cfg, CFG_AUTH_REGISTER_MAX_PER_IP);
    ao->register_max = (int)cfg_int(cfg, CFG_AUTH_REGISTER_MAX);
    ao->register_window_ms = cfg_int(cfg, CFG_AUTH_REGISTER_WINDOW);
}

/* systemd's readiness protocol (Type=notify): one datagram to $NOTIFY_SOCKET. A no-op outside systemd. */
static void
sd_notify_msg(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n;
    int fd;

    if (!path || (path[0] != '/' && path[0] != '@') || (n = strlen(path)) >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract socket */
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return;
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        log_warn("app: cannot notify systemd: %s", strerror(errno));
    close(fd);
}

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* SIGHUP: re-read the configuration and apply what can change without a restart (log level and format). */
static void
reload(const struct cli_args *args, const struct cfg *cur)
{
    struct cfg *next = NULL;
    struct ch_err err = { 0 };

    if (cli_build_config(args, environ, &next, &err) != CH_OK) {
        log_error("app: SIGHUP: configuration not reloaded: %s", err.msg);
        return;
    }
    apply_log_config(next);
    log_info("app: SIGHUP: log level %s, format %s (other settings need a restart)", cfg_str(next, CFG_LOG_LEVEL),
             cfg_str(next, CFG_LOG_FORMAT));
    for (size_t k = 0; k < CFG_KEY_COUNT; k++) {
        if (k == CFG_LOG_LEVEL || k == CFG_LOG_FORMAT ||
            (cfg_source_of(next, (enum cfg_key)k) == CFG_SRC_DEFAULT &&
             cfg_source_of(cur, (enum cfg_key)k) == CFG_SRC_GENERATED))
            continue;
        if (strcmp(cfg_str(next, (enum cfg_key)k), cfg_str(cur, (enum cfg_key)k)) != 0)
            log_warn("app: SIGHUP: %s changed; restart chatto to apply it", cfg_keyinfo((enum cfg_key)k)->dotted);
    }
    cfg_free(next);
}

/* accounts' user cache is the chat read model's directory */
static bool
lookup_user(void *chat, const char *uid, struct user *out)
{
    return chat_lookup_user(chat, uid, out);
}

/* Web Push, unless push.enabled is false: the configured VAPID pair, or one derived from core.secret_key (which
 * every process shares, so every process signs with the same key and any of them may send). The subject defaults
 * to the public origin when it is https, else to a postmaster address at its host. CH_EINVAL names a bad key. */
static enum ch_status
app_push_start(const struct cfg *cfg, struct chat *chat, const char *origin, struct push_vapid **vapid,
               struct ch_err *err)
{
    const char *pub = cfg_str(cfg, CFG_PUSH_VAPID_PUBLIC_KEY), *priv = cfg_str(cfg, CFG_PUSH_VAPID_PRIVATE_KEY);
    char subject[600];
    enum ch_status st;

    if (!cfg_bool(cfg, CFG_PUSH_ENABLED))
        return CH_OK;
    if (*priv) {
        if ((st = push_vapid_parse(priv, pub, vapid, err)) != CH_OK) {
            char msg[CH_ERR_MSG_MAX];
            bool public_key = !strcmp(err->field, "vapid_public_key");
            snprintf(msg, sizeof msg, "%s", err->msg); /* "vapid_...: why" */
            return ch_err_set(err, st, public_key ? "push.vapid_public_key" : "push.vapid_private_key", "push.%s",
                              msg);
        }
    } else {
        struct crypto_sha256 h;
        unsigned char seed[32];
        static const char label[] = "chatto vapid seed";
        crypto_sha256_init(&h);
        crypto_sha256_update(&h, label, sizeof label);
        crypto_sha256_update(&h, cfg_str(cfg, CFG_CORE_SECRET_KEY), strlen(cfg_str(cfg, CFG_CORE_SECRET_KEY)));
        crypto_sha256_final(&h, seed);
        st = push_vapid_derive(seed, vapid, err);
        sodium_memzero(seed, sizeof seed);
        if (st != CH_OK)
            return st;
    }
    if (*cfg_str(cfg, CFG_PUSH_VAPID_SUBJECT)) {
        snprintf(subject, sizeof subject, "%s", cfg_str(cfg, CFG_PUSH_VAPID_SUBJECT));
    } else if (!strncmp(origin, "https://", 8)) {
        snprintf(subject, sizeof subject, "%s", origin);
    } else {
        const char *h = strstr(origin, "://") ? strstr(origin, "://") + 3 : origin;
        size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
        snprintf(subject, sizeof subject, "mailto:postmaster@%.*s", (int)n, h);
    }
    if (cfg_bool(cfg, CFG_PUSH_ALLOW_LOOPBACK_ENDPOINTS))
        log_warn("app: push.allow_loopback_endpoints is on: pushes may go to loopback and http:// (tests only)");
    return chat_push_start(chat, *vapid, subject, cfg_bool(cfg, CFG_PUSH_ALLOW_LOOPBACK_ENDPOINTS), err);
}

/* ---- gauges read at each scrape (metrics.enabled) ---- */

static double
gauge_ready(void *ctx)
{
    char reason[200];
    return api_ready(ctx, reason, sizeof reason) ? 1 : 0;
}

static double
gauge_inflight(void *ctx)
{
    return (double)http_inflight(ctx);
}

static double
gauge_ws(void *ctx)
{
    return (double)ws_connections(ctx);
}

static double
gauge_model(void *ctx, enum metric_id m)
{
    struct chat_stats s;
    chat_stats(ctx, &s);
    return m == MET_MODEL_ROOMS      ? (double)s.rooms
           : m == MET_MODEL_MESSAGES ? (double)s.messages
           : m == MET_MODEL_COLD_MESSAGES ? (double)s.cold
           : m == MET_MODEL_USERS    ? (double)s.users
           : m == MET_BODY_CACHE_BYTES ? (double)s.body_bytes
                                     : (double)s.lag;
}

static double gauge_rooms(void *ctx) { return gauge_model(ctx, MET_MODEL_ROOMS); }
static double gauge_messages(void *ctx) { return gauge_model(ctx, MET_MODEL_MESSAGES); }
static double gauge_cold(void *ctx) { return gauge_model(ctx, MET_MODEL_COLD_MESSAGES); }
static double gauge_users(void *ctx) { return gauge_model(ctx, MET_MODEL_USERS); }
static double gauge_lag(void *ctx) { return gauge_model(ctx, MET_FOLLOWER_LAG); }
static double gauge_bodies(void *ctx) { return gauge_model(ctx, MET_BODY_CACHE_BYTES); }

/* The S3 client, when core.assets.s3.endpoint is set (files stored in S3 are served whatever the backend). With
 * the s3 backend, the bucket is made now if missing; if S3 cannot be reached we start anyway and say so: uploads
 * then answer "unavailable" and the bucket is tried again with each, so one S3 outage never keeps a replica down,
 * and start-up waits at most a connect timeout (5 s) or a request timeout (30 s), not for S3 to come back.
 * CH_EINVAL (bad options, naming the key) is the caller's to report as a configuration error. */
static enum ch_status
app_s3_open(const struct cfg *cfg, struct s3 **out, struct ch_err *err)
{
    struct s3_opts o = {
        .endpoint = cfg_str(cfg, CFG_CORE_ASSETS_S3_ENDPOINT),
        .bucket = cfg_str(cfg, CFG_CORE_ASSETS_S3_BUCKET),
        .region = cfg_str(cfg, CFG_CORE_ASSETS_S3_REGION),
        .access_key_id = cfg_str(cfg, CFG_CORE_ASSETS_S3_ACCESS_KEY_ID),
        .secret_access_key = cfg_str(cfg, CFG_CORE_ASSETS_S3_SECRET_ACCESS_KEY),
        .path_prefix = cfg_str(cfg, CFG_CORE_ASSETS_S3_PATH_PREFIX),
        .use_ssl = cfg_bool(cfg, CFG_CORE_ASSETS_S3_USE_SSL),
        .path_style = (enum s3_path_style)s3_path_style_parse(cfg_str(cfg, CFG_CORE_ASSETS_S3_PATH_STYLE)),
    };
    bool backend = strcmp(cfg_str(cfg, CFG_CORE_ASSETS_STORAGE_BACKEND), "s3") == 0;
    struct ch_err e = { 0 };
    enum ch_status st;

    *out = NULL;
    if (!cfg_is_set(cfg, CFG_CORE_ASSETS_S3_ENDPOINT))
        return CH_OK;
    if ((st = s3_new(&o, out, err)) != CH_OK)
        return st;
    log_info("app: attachments %s S3 at %s", backend ? "are stored in" : "stored earlier are read from",
             s3_describe(*out));
    if (backend && s3_bucket_ensure(*out, &e) != CH_OK)
        log_warn("app: S3 bucket %s is not ready (%s); starting anyway, uploads will answer unavailable until it "
                 "is", cfg_str(cfg, CFG_CORE_ASSETS_S3_BUCKET), e.msg);
    return CH_OK;
}

/* The search provider of this process (search_provider.enabled), or NULL: a directory another process holds is
 * not an error (that process answers), anything else is logged and search runs without this process's index. */
static struct search_provider *
app_search_start(const struct cfg *cfg, struct store *store)
{
    struct search_provider *p = NULL;
    struct ch_err err = { 0 };
    char dir[PATH_MAX];

    if (!cfg_bool(cfg, CFG_SEARCH_PROVIDER_ENABLED))
        return NULL;
    if (*cfg_str(cfg, CFG_SEARCH_PROVIDER_DIRECTORY))
        snprintf(dir, sizeof dir, "%s", cfg_str(cfg, CFG_SEARCH_PROVIDER_DIRECTORY));
    else
        snprintf(dir, sizeof dir, "%s/search", cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR));
    struct search_provider_opts o = { .store = store, .directory = dir,
                                      .purge_delay_ms = cfg_int(cfg, CFG_SEARCH_PROVIDER_PURGE_DELAY) };
    if (search_provider_start(&o, &p, &err) != CH_OK) {
        if (err.status == CH_EEXIST)
            log_info("search: %s; searches are answered by the process that holds it", err.msg);
        else
            log_error("search: no index in this process: %s", err.msg);
        return NULL;
    }
    log_info("search: index in %s (rebuilt from the event stream if missing)", dir);
    return p;
}

int
app_search_provider(struct cfg *cfg)
{
    struct store *store = NULL;
    struct search_provider *p = NULL;
    struct store_opts so;
    struct ch_err err = { 0 };
    char host[64] = "localhost", instance[128];
    sigset_t sigs;
    int rc = 1;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    apply_log_config(cfg);
    if (cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED)) {
        fprintf(stderr, "chatto: search-provider needs an external NATS: set nats.embedded.enabled = false and "
                        "nats.client.url\n");
        cfg_free(cfg);
        return EXIT_USAGE;
    }
    if (!cfg_bool(cfg, CFG_SEARCH_PROVIDER_ENABLED))
        cfg_set(cfg, CFG_SEARCH_PROVIDER_ENABLED, "true", CFG_SRC_DEFAULT, NULL, NULL);
    store_library_init();
    gethostname(host, sizeof host - 1);
    snprintf(instance, sizeof instance, "%s/%d search-provider", host, (int)getpid());
    app_store_opts(cfg, instance, &so);
    if (store_open(&so, &store, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    if (!(p = app_search_start(cfg, store)))
        goto out;
    printf("chatto search-provider is running\n");
    fflush(stdout);
    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    rc = 0;
out:
    search_provider_stop(p);
    store_shutdown(store, 2000);
    store_close(store);
    store_library_shutdown();
    cfg_free(cfg);
    return rc;
}

int
app_run(struct cfg *cfg, const struct cli_args *args)
{
    struct api_env env = {
        .cfg = cfg,
        .version = CHATTO_VERSION,
        .log_limit = log_limit_new(30000),
        .writes = ratelimit_new((double)cfg_int(cfg, CFG_LIMITS_MESSAGES_PER_SECOND),
                                (double)cfg_int(cfg, CFG_LIMITS_MESSAGES_BURST)),
        .bot_writes = ratelimit_new((double)cfg_int(cfg, CFG_LIMITS_BOT_MESSAGES_PER_SECOND),
                                    (double)cfg_int(cfg, CFG_LIMITS_BOT_MESSAGES_BURST)),
    };
    struct http *http = NULL;
    struct sup *sup = NULL;
    struct store *store = NULL;
    struct accounts *accounts = NULL;
    struct chat *chat = NULL;
    struct push_vapid *vapid = NULL;
    struct metricsd *metricsd = NULL;
    struct assets *assets = NULL;
    struct s3 *s3 = NULL;
    struct rt *rt = NULL;
    struct calls_reconciler *reconciler = NULL;
    struct ws *ws = NULL;
    struct web *web = NULL;
    struct search_provider *search = NULL;
    struct netaddr_set *proxies = NULL;
    struct ch_err err = { 0 };
    sigset_t sigs;
    int lock_fd = -1, rc = 1, listen_fd = -1, bound = 0;
    bool embedded = cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED);
    char public_url[512], origin[512], instance[128], host[64] = "localhost", binary[PATH_MAX] = "";
    char alias4[64], alias6[64];
    const char *aliases[] = { alias4, alias6, NULL };
    const char *urls[2] = { NULL, NULL };

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    apply_log_config(cfg);
    raise_nofile();
    if (crypto_init() != CH_OK) {
        log_error("app: libsodium failed to initialise");
        goto out;
    }
    store_library_init();
    if (netaddr_set_parse(cfg_list(cfg, CFG_WEBSERVER_TRUSTED_PROXIES, NULL), &proxies, &err) != CH_OK) {
        fprintf(stderr, "chatto: webserver.trusted_proxies: %s\n", err.msg);
        rc = EXIT_USAGE;
        goto out;
    }

    if (app_s3_open(cfg, &s3, &err) != CH_OK) {
        fprintf(stderr, "chatto: %s\n", err.msg);
        rc = EXIT_USAGE;
        goto out;
    }

    if (embedded) {
        const char *dir = cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR);
        if (sup_resolve_binary(cfg_str(cfg, CFG_NATS_EMBEDDED_BINARY), binary, sizeof binary, &err) != CH_OK) {
            fprintf(stderr, "chatto: %s\n", err.msg);
            rc = EXIT_USAGE;
            goto out;
        }
        if (app_mkdirs(dir, 0750) != 0) {
            log_error("app: cannot create data directory %s: %s", dir, strerror(errno));
            goto out;
        }
        if ((lock_fd = app_lock_data_dir(dir, &err)) < 0) {
            log_error("app: %s", err.msg);
            goto out;
        }
        if (app_load_secrets(cfg, true, &err) != CH_OK) {
            log_error("app: %s", err.msg);
            goto out;
        }
    }

    gethostname(host, sizeof host - 1);
    snprintf(instance, sizeof instance, "%s/%d", host, (int)getpid());
    if (http_listen(cfg_str(cfg, CFG_WEBSERVER_BIND_ADDRESS), (int)cfg_int(cfg, CFG_WEBSERVER_PORT), &listen_fd,
                    &bound, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    /* an unset webserver.url follows the port actually bound; a person may open it as localhost or 127.0.0.1,
     * so both loopback spellings count as our origin until an operator names the real one */
    if (cfg_source_of(cfg, CFG_WEBSERVER_URL) == CFG_SRC_DEFAULT) {
        snprintf(public_url, sizeof public_url, "http://localhost:%d", bound);
        loopback_origin("127.0.0.1", bound, alias4, sizeof alias4);
        loopback_origin("[::1]", bound, alias6, sizeof alias6);
        env.origin_aliases = aliases;
    } else
        snprintf(public_url, sizeof public_url, "%s", cfg_str(cfg, CFG_WEBSERVER_URL));
    if (parse_url_origin(public_url, origin, sizeof origin) != CH_OK)
        snprintf(origin, sizeof origin, "%s", public_url);
    env.public_url = public_url;
    env.public_origin = origin;
    env.cookie_secure = strncmp(public_url, "https://", 8) == 0;
    /* __Host- cookies must be Secure, Path=/ and host-only: the browser then refuses them from anywhere else */
    env.cookie_name = env.cookie_secure ? "__Host-chatto_session" : "chatto_session";

    struct store_opts so;
    struct store_setting match[CFG_KEY_COUNT];
    char match_num[CFG_KEY_COUNT][24];
    app_store_opts(cfg, instance, &so);
    so.settings = match;
    so.nsettings = app_match_settings(cfg, match, match_num);
    if (embedded) {
        struct sup_opts o = {
            .binary = binary,
            .bind_address = cfg_str(cfg, CFG_NATS_EMBEDDED_BIND_ADDRESS),
            .port = (int)cfg_int(cfg, CFG_NATS_EMBEDDED_PORT),
            .http_port = (int)cfg_int(cfg, CFG_NATS_EMBEDDED_HTTP_PORT),
            .data_dir = cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR),
            .token = cfg_str(cfg, CFG_NATS_EMBEDDED_AUTH_TOKEN),
            .max_file_store = cfg_int(cfg, CFG_NATS_EMBEDDED_MAX_FILE_STORE),
            .start_timeout_ms = cfg_int(cfg, CFG_NATS_EMBEDDED_START_TIMEOUT),
            .stop_timeout_ms = cfg_int(cfg, CFG_NATS_EMBEDDED_STOP_TIMEOUT),
            .probe = store_probe_url,
        };
        if (sup_start(&o, &sup, &err) != CH_OK) {
            log_error("app: cannot start the embedded NATS server: %s", err.msg);
            goto out;
        }
        env.sup = sup;
        urls[0] = sup_client_url(sup);
        so.urls = urls;
        so.auth = STORE_AUTH_TOKEN;
        so.token = cfg_str(cfg, CFG_NATS_EMBEDDED_AUTH_TOKEN);
        so.reconnect_wait_ms = 250;
    }
    if (store_open(&so, &store, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    env.store = store;

    struct accounts_opts ao;
    app_accounts_opts(cfg, store, &ao);
    if (accounts_new(&ao, &accounts, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    env.accounts = accounts;
    /* a restarted process on the same host and port is its predecessor's successor: it takes over its leases at
     * once (two processes cannot listen on one port, so the other is gone or going) */
    char slot[160];
    snprintf(slot, sizeof slot, "%s:%d", host, bound);
    struct chat_opts co = {
        .store = store,
        .edit_window_ms = cfg_int(cfg, CFG_CHAT_EDIT_WINDOW),
        .timeout_ms = cfg_int(cfg, CFG_NATS_REQUEST_TIMEOUT),
        .cache_bytes = (size_t)cfg_int(cfg, CFG_CORE_CACHE_SIZE),
        .resident_messages = (size_t)cfg_int(cfg, CFG_CORE_RESIDENT_MESSAGES),
        .resident_idle_ms = cfg_int(cfg, CFG_CORE_RESIDENT_IDLE_AFTER),
        .snapshots = cfg_bool(cfg, CFG_CORE_PROJECTION_SNAPSHOTS),
        .snapshot_events = (uint64_t)cfg_int(cfg, CFG_CORE_PROJECTION_SNAPSHOT_EVENTS),
        .snapshot_retention_ms = cfg_int(cfg, CFG_CORE_PROJECTION_SNAPSHOT_RETENTION),
        .holder = slot,
        .no_notifier = !cfg_bool(cfg, CFG_CHAT_NOTIFICATION_WORKER),
    };
    if (chat_new(&co, &chat, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    env.chat = chat;
    search = app_search_start(cfg, store);
    accounts_set_user_cache(accounts, lookup_user, chat);
    if (app_push_start(cfg, chat, origin, &vapid, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    chat_start_notifications(chat); /* (after push: the notifier reads it without a lock) */
    struct assets_opts aso = {
        .store = store,
        .chat = chat,
        .signing_secret = cfg_str(cfg, CFG_CORE_ASSETS_SIGNING_SECRET),
        .max_upload = cfg_int(cfg, CFG_CORE_ASSETS_MAX_UPLOAD_SIZE),
        .max_image_pixels = cfg_int(cfg, CFG_CORE_ASSETS_MAX_IMAGE_PIXELS),
        .cache = cfg_bool(cfg, CFG_CORE_ASSETS_CACHE_ENABLED),
        .janitor = true,
        .s3 = s3,
        .s3_backend = s3 && strcmp(cfg_str(cfg, CFG_CORE_ASSETS_STORAGE_BACKEND), "s3") == 0,
    };
    if (assets_new(&aso, &assets, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    env.assets = assets;
    struct chat_asset_hooks hooks = { .claim = hook_claim, .unclaim = hook_unclaim, .erase = hook_erase,
                                      .url = hook_url, .thumb_url = hook_thumb_url, .ctx = assets };
    chat_set_asset_hooks(chat, &hooks);
    struct rt_opts rto = {
        .store = store,
        .chat = chat,
        .accounts = accounts,
        .instance = instance,
        .replay_events = (size_t)cfg_int(cfg, CFG_REALTIME_REPLAY_EVENTS),
        .typing_ms = cfg_int(cfg, CFG_REALTIME_TYPING_TIMEOUT),
        .presence_ms = cfg_int(cfg, CFG_REALTIME_PRESENCE_INTERVAL),
    };
    struct ws_opts wso = {
        .max_connections = (int)cfg_int(cfg, CFG_REALTIME_MAX_CONNECTIONS),
        .max_per_user = (int)cfg_int(cfg, CFG_REALTIME_MAX_CONNECTIONS_PER_USER),
        .max_per_ip = (int)cfg_int(cfg, CFG_REALTIME_MAX_CONNECTIONS_PER_IP),
        .max_unauthenticated = (int)cfg_int(cfg, CFG_REALTIME_MAX_UNAUTHENTICATED),
        .ping_ms = cfg_int(cfg, CFG_REALTIME_PING_INTERVAL),
        .idle_ms = cfg_int(cfg, CFG_REALTIME_IDLE_TIMEOUT),
        .hello_ms = cfg_int(cfg, CFG_REALTIME_HELLO_TIMEOUT),
        .max_message = (size_t)cfg_int(cfg, CFG_REALTIME_MAX_MESSAGE_SIZE),
        .queue_hard = (size_t)cfg_int(cfg, CFG_REALTIME_SEND_QUEUE_HARD),
        .queue_soft = (size_t)cfg_int(cfg, CFG_REALTIME_SEND_QUEUE_SOFT),
        .soft_grace_ms = cfg_int(cfg, CFG_REALTIME_SEND_QUEUE_GRACE),
    };
    /* the domain first, then the transport it hands frames to, then the domain's threads and feeds */
    if (rt_new(&rto, &rt, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    env.rt = rt;
    wso.rt = rt;
    struct chat_presence_hook ph = { .online = hook_online, .ctx = rt };
    chat_set_presence_hook(chat, &ph); /* @here's audience */
    /* verified credentials are kept (no NATS round trip per request); revoked ones also end their sockets */
    accounts_on_revoked(accounts, rt_revoked, rt);
    if (accounts_start_cache(accounts, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    if (ws_start(&wso, &ws, &err) != CH_OK || rt_start(rt, ws_transport(), ws, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    env.ws = ws;
    char ws_origin[600];
    snprintf(ws_origin, sizeof ws_origin, "%s%s", strncmp(origin, "https://", 8) ? "ws://" : "wss://",
             strstr(origin, "://") ? strstr(origin, "://") + 3 : origin);
    char connect_src[1400];
    snprintf(connect_src, sizeof connect_src, "%s", ws_origin);
    if (cfg_bool(cfg, CFG_LIVEKIT_ENABLED)) {
        /* the browser reaches LiveKit's signalling (ws) and its HTTP fallback at livekit.url's origin */
        const char *lk = cfg_str(cfg, CFG_LIVEKIT_URL), *lkhost = strstr(lk, "://");
        bool tls = !strncmp(lk, "wss://", 6) || !strncmp(lk, "https://", 8);
        if (lkhost) {
            lkhost += 3;
            int hl = (int)strcspn(lkhost, "/?#");
            if (hl > 0 && hl < 300)
                snprintf(connect_src + strlen(connect_src), sizeof connect_src - strlen(connect_src),
                         " %s://%.*s %s://%.*s", tls ? "wss" : "ws", hl, lkhost, tls ? "https" : "http", hl, lkhost);
        }
    }
    if (web_load(cfg_str(cfg, CFG_WEBSERVER_WEB_DIR), connect_src, &web, &err) == CH_OK)
        log_info("http: web client from %s", web_dir(web));
    else
        log_warn("http: no web client (%s); serving the API only", err.msg);
    env.web = web;

    /* env is complete: from here on worker threads read it, nobody writes it */
    struct http_opts ho = {
        .listen_fd = listen_fd,
        .max_connections = (int)cfg_int(cfg, CFG_WEBSERVER_MAX_CONNECTIONS),
        .io_threads = (int)cfg_int(cfg, CFG_WEBSERVER_THREADS),
        .max_connections_per_ip = (int)cfg_int(cfg, CFG_WEBSERVER_MAX_CONNECTIONS_PER_IP),
        .connection_timeout_ms = cfg_int(cfg, CFG_WEBSERVER_CONNECTION_TIMEOUT),
        .max_body = cfg_int(cfg, CFG_WEBSERVER_MAX_BODY_SIZE),
        .memory_limit = (size_t)cfg_int(cfg, CFG_WEBSERVER_CONNECTION_MEMORY),
        .request_logging = cfg_bool(cfg, CFG_WEBSERVER_REQUEST_LOGGING),
        .trusted_proxies = proxies,
        .proxy_forwarded = strcmp(cfg_str(cfg, CFG_WEBSERVER_PROXY_HEADER), "forwarded") == 0,
        .instance = instance,
    };
    if (http_start(&ho, api_routes(), &env, &http, &err) != CH_OK) {
        log_error("app: %s", err.msg);
        goto out;
    }
    listen_fd = -1; /* the daemon owns it now */
    log_info("http: listening on %s:%d (at most %d connections; requests that wait on storage get a worker "
             "thread each)",
             cfg_str(cfg, CFG_WEBSERVER_BIND_ADDRESS), bound, ho.max_connections);
    if (cfg_bool(cfg, CFG_METRICS_ENABLED)) {
        int mport = 0;
        metrics_set_version(CHATTO_VERSION);
        metrics_set_gauge(MET_READY, gauge_ready, &env);
        metrics_set_gauge(MET_HTTP_INFLIGHT, gauge_inflight, http);
        metrics_set_gauge(MET_WS_CONNECTIONS, gauge_ws, ws);
        metrics_set_gauge(MET_MODEL_ROOMS, gauge_rooms, chat);
        metrics_set_gauge(MET_MODEL_MESSAGES, gauge_messages, chat);
        metrics_set_gauge(MET_MODEL_COLD_MESSAGES, gauge_cold, chat);
        metrics_set_gauge(MET_BODY_CACHE_BYTES, gauge_bodies, chat);
        metrics_set_gauge(MET_MODEL_USERS, gauge_users, chat);
        metrics_set_gauge(MET_FOLLOWER_LAG, gauge_lag, chat);
        if (metricsd_start(cfg_str(cfg, CFG_METRICS_BIND_ADDRESS), (int)cfg_int(cfg, CFG_METRICS_PORT),
                           cfg_str(cfg, CFG_METRICS_PATH), &metricsd, &mport, &err) != CH_OK) {
            log_error("app: %s", err.msg);
            goto out;
        }
        log_info("metrics: listening on %s:%d%s", cfg_str(cfg, CFG_METRICS_BIND_ADDRESS), mport,
                 cfg_str(cfg, CFG_METRICS_PATH));
    }

    if (cfg_bool(cfg, CFG_LIVEKIT_ENABLED)) {
        /* one process at a time (a lease in NATS) compares calls with LiveKit's rooms */
        char holder[160];
        snprintf(holder, sizeof holder, "%s", instance);
        for (char *p = holder; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
                *p = '_';
        struct calls_reconcile_opts cro = {
            .store = store,
            .chat = chat,
            .url = cfg_str(cfg, CFG_LIVEKIT_URL),
            .api_key = cfg_str(cfg, CFG_LIVEKIT_API_KEY),
            .api_secret = cfg_str(cfg, CFG_LIVEKIT_API_SECRET),
            .server_id = cfg_str(cfg, CFG_LIVEKIT_SERVER_ID),
            .interval_ms = cfg_int(cfg, CFG_LIVEKIT_RECONCILE_INTERVAL),
            .holder = holder,
        };
        if (calls_reconciler_start(&cro, &reconciler, &err) != CH_OK) {
            log_error("app: %s", err.msg);
            goto out;
        }
        log_info("calls: voice and video calls through LiveKit at %s (rooms named %s.*)", cro.url, cro.server_id);
    }

    /* main loop: signals, and one log line per readiness change */
    bool was_ready = false, announced = false, fatal = false;
    char last_reason[200] = "";
    for (;;) {
        struct timespec tick = { .tv_sec = 0, .tv_nsec = 250 * 1000000L };
        char reason[200];
        int sig = sigtimedwait(&sigs, NULL, &tick);

        if (sig == SIGHUP) {
            sd_notify_msg("RELOADING=1");
            reload(args, cfg);
            sd_notify_msg("READY=1");
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("app: %s received; draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        char why[640];
        if (store_fatal(store, why, sizeof why)) {
            log_error("app: refusing to serve: %s", why);
            fatal = true;
            break;
        }
        bool ready = api_ready(&env, reason, sizeof reason);
        if (ready && !announced) {
            announced = true;
            log_info("app: ready");
            sd_notify_msg("READY=1\nSTATUS=ready");
            printf("Chatto %s is ready: open %s\n", CHATTO_VERSION, public_url);
            bool owned = true;
            if (accounts_has_owner(accounts, &owned, NULL) == CH_OK && !owned)
                printf("No account exists yet: the first account registered (in the browser, or with `chatto user "
                       "create`) becomes the server owner.\n");
            fflush(stdout);
        } else if (ready != was_ready && announced) {
            if (ready)
                log_info("app: ready again");
        }
        if (!ready && strcmp(reason, last_reason) != 0 && (announced || strcmp(reason, "NATS not connected") == 0))
            log_warn("app: not ready: %s", reason);
        snprintf(last_reason, sizeof last_reason, "%s", ready ? "" : reason);
        was_ready = ready;
    }

    /* drain: stop taking connections, say goodbye to WebSockets, let requests finish (up to shutdown_timeout),
     * then close NATS, which releases any handler still waiting on it, then stop the rest and the child */
    sd_notify_msg("STOPPING=1\nSTATUS=draining");
    atomic_store(&env.draining, true);
    http_quiesce(http);
    ws_quiesce(ws);       /* WebSockets get 1001 before the daemon stops (it would drop them) */
    rt_quiesce(rt, 2000); /* ... and their users' presence goes, while NATS answers */
    http_wait_idle(http, cfg_int(cfg, CFG_WEBSERVER_SHUTDOWN_TIMEOUT));
    rc = fatal ? 2 : 0;
out:
    if (listen_fd >= 0)
        close(listen_fd);
    ws_quiesce(ws);
    calls_reconciler_stop(reconciler); /* gives its lease up while NATS still answers */
    store_shutdown(store, 2000);
    accounts_stop_cache(accounts); /* its watch calls into rt */
    rt_stop(rt); /* nothing calls the transport after this */
    ws_stop(ws);
    metricsd_stop(metricsd); /* (its gauges read what stops next) */
    http_stop(http, 0);
    assets_free(assets);
    s3_free(s3); /* after assets, which borrows it */
    search_provider_stop(search);
    chat_free(chat);
    push_vapid_free(vapid); /* after chat, which signs with it */
    web_free(web);
    accounts_free(accounts);
    store_close(store);
    sup_stop(sup);
    store_library_shutdown();
    netaddr_set_free(proxies);
    log_limit_free(env.log_limit);
    ratelimit_free(env.writes);
    ratelimit_free(env.bot_writes);
    if (lock_fd >= 0)
        close(lock_fd);
    if (rc == 0)
        log_info("app: stopped");
    cfg_free(cfg);
    return rc;
}
