/* SPDX-License-Identifier: MIT */
/*
 * Accounts over NATS KV. Uniqueness and counters use create / compare-and-set, never read-then-write:
 *   logins    chatto_logins  <login key> = "<uid> <claimed at ms>"      created atomically: one winner
 *   users     chatto_users   <uid>       = user record (JSON)           updated with compare-and-set
 *   count     chatto_meta    users_count = "<n>"                        CAS counter for limits.max_users
 *   owner     chatto_meta    owner       = "<uid>"                      created once: the first account
 *   creds     chatto_tokens  <uid>.<kind>.<verifier> = JSON             kind s/t/b; revoke = purge
 *   throttle  chatto_throttle a.<login key> / i.<ip> = "<fails> <window start ms>"
 * Password hashes are bounded by a semaphore so parallel logins cannot exhaust memory (each argon2id hash holds
 * its memory cost). Thread-safe; HTTP worker threads.
 */
#include "accounts/accounts.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "base/ids.h"
#include "base/map.h"
#include "json/json.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "store/subject.h"

#define CAS_RETRIES 50
#define HASH_WAIT_S 10
#define LOGIN_CLAIM_STALE_MS 60000
#define CRED_CACHE_MAX_AGE_MS 60000 /* a credential verified this long ago is checked against NATS again */
#define CRED_CACHE_MAX 100000       /* entries; beyond it the cache starts over */
#define REVOKE_FENCE_MS 2000        /* how long a revocation waits for every process to confirm it */

/* A credential verified against NATS: its record exists, and expires at expires_ms (0: never). */
struct cred_entry {
    int64_t expires_ms;
    int64_t verified_ms; /* monotonic */
};

struct accounts {
    struct accounts_opts o;
    accounts_user_cache_fn cache; /* set once at start-up, before requests */
    void *cache_ctx;
    struct crypto_keys *keys;
    sem_t hashes;
    char dummy_hash[CRYPTO_PWHASH_LEN]; /* verified against for unknown logins, so they cost the same */

    /* the credential cache (accounts_start_cache); NULL creds = no cache (CLI commands) */
    pthread_mutex_t cmu; /* guards creds and drops */
    struct map *creds;   /* "<uid>.<kind>.<verifier>" -> struct cred_entry */
    uint64_t drops;      /* moves on every removal: a lookup that raced with one does not cache what it read */
    struct store_watch *tokens_w;
    struct store_sub *revoked_sub;
    accounts_revoked_fn revoked_fn;
    void *revoked_ctx;
};

static enum ch_status
hash_acquire(struct accounts *a, struct ch_err *err)
{
    struct timespec ts = clock_deadline(HASH_WAIT_S * 1000);

    while (sem_timedwait(&a->hashes, &ts) != 0) {
        if (errno == EINTR)
            continue;
        return ch_err_set(err, CH_EUNAVAIL, NULL, "too many logins in progress; try again in a moment");
    }
    return CH_OK;
}

static enum ch_status
hash_password(struct accounts *a, const char *pw, char out[CRYPTO_PWHASH_LEN], struct ch_err *err)
{
    enum ch_status st;

    if ((st = hash_acquire(a, err)) != CH_OK)
        return st;
    st = crypto_pwhash_hash(a->o.cost, pw, strlen(pw), out);
    sem_post(&a->hashes);
    if (st != CH_OK)
        return ch_err_set(err, CH_EUNAVAIL, NULL, "not enough memory to hash the password; try again");
    return CH_OK;
}

static enum ch_status
verify_password(struct accounts *a, const char *hash, const char *pw, bool *ok, struct ch_err *err)
{
    enum ch_status st;

    if ((st = hash_acquire(a, err)) != CH_OK)
        return st;
    *ok = crypto_pwhash_verify(hash, pw, strlen(pw));
    sem_post(&a->hashes);
    return CH_OK;
}

enum ch_status
accounts_new(const struct accounts_opts *o, struct accounts **out, struct ch_err *err)
{
    struct accounts *a = calloc(1, sizeof *a);
    enum ch_status st;
    char pw[CRYPTO_SECRET_LEN + 1];

    if (!a)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    a->o = *o;
    if ((st = crypto_keys_new(o->core_secret, o->cookie_signing_secret, o->cookie_encryption_secret, &a->keys,
                              err)) != CH_OK) {
        free(a);
        return st;
    }
    sem_init(&a->hashes, 0, (unsigned)(o->max_concurrent_hashes > 0 ? o->max_concurrent_hashes : 1));
    pthread_mutex_init(&a->cmu, NULL);
    crypto_secret_new(pw);
    if (crypto_pwhash_hash(o->cost, pw, strlen(pw), a->dummy_hash) != CH_OK) {
        accounts_free(a);
        return ch_err_set(err, CH_ENOMEM, NULL, "cannot hash a password with auth.password_hash: out of memory");
    }
    *out = a;
    return CH_OK;
}

void
accounts_set_user_cache(struct accounts *a, accounts_user_cache_fn fn, void *ctx)
{
    a->cache = fn;
    a->cache_ctx = ctx;
}

void
accounts_free(struct accounts *a)
{
    if (!a)
        return;
    accounts_stop_cache(a);
    map_free(a->creds, free);
    pthread_mutex_destroy(&a->cmu);
    crypto_keys_free(a->keys);
    sem_destroy(&a->hashes);
    free(a);
}

/* ---- the credential cache ---- */

static void
cache_drop(struct accounts *a, const char *key)
{
    pthread_mutex_lock(&a->cmu);
    if (a->creds)
        free(map_del(a->creds, key));
    a->drops++;
    pthread_mutex_unlock(&a->cmu);
}

static uint64_t
cache_drops(struct accounts *a)
{
    pthread_mutex_lock(&a->cmu);
    uint64_t d = a->drops;
    pthread_mutex_unlock(&a->cmu);
    return d;
}

/* True if key was verified against NATS recently and has not expired (nor been revoked since: removals are
 * dropped by the watch and by the revocation fence). */
static bool
cache_hit(struct accounts *a, const char *key)
{
    bool hit = false;

    pthread_mutex_lock(&a->cmu);
    const struct cred_entry *e = a->creds ? map_get(a->creds, key) : NULL;
    if (e && clock_mono_ms() - e->verified_ms < CRED_CACHE_MAX_AGE_MS &&
        (!e->expires_ms || e->expires_ms > clock_wall_ms()))
        hit = true;
    pthread_mutex_unlock(&a->cmu);
    return hit;
}

/* Remember key as verified, unless a removal happened since drops_before was read (it may have been this key's,
 * after NATS answered our read: caching it then would outlive the revocation). */
static void
cache_put(struct accounts *a, const char *key, int64_t expires_ms, uint64_t drops_before)
{
    struct cred_entry *e;
    bool oom = false;

    pthread_mutex_lock(&a->cmu);
    if (a->creds && a->drops == drops_before) {
        if (map_len(a->creds) >= CRED_CACHE_MAX) { /* crude, and rare: start over rather than grow forever */
            map_free(a->creds, free);
            a->creds = map_new();
        }
        if (a->creds && (e = malloc(sizeof *e))) {
            e->expires_ms = expires_ms;
            e->verified_ms = clock_mono_ms();
            free(map_put(a->creds, key, e, &oom));
            if (oom)
                free(e);
        }
    }
    pthread_mutex_unlock(&a->cmu);
}

static void
on_token(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    struct accounts *a = ctx;

    (void)len;
    (void)rev;
    if (!key || val) /* only removals matter */
        return;
    cache_drop(a, key);
    if (a->revoked_fn)
        a->revoked_fn(a->revoked_ctx, key);
}

/* Another process revoked credentials: forget them, and say so (its revocation waits for every process). */
static void
on_revoked(void *ctx, const char *subject, const char *reply, const char *data, size_t len)
{
    struct accounts *a = ctx;
    cJSON *o = cJSON_ParseWithLength(data, len), *k;

    (void)subject;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(o, "keys"))
    {
        if (cJSON_IsString(k))
            cache_drop(a, k->valuestring);
    }
    cJSON_Delete(o);
    if (reply)
        store_core_reply(a->o.store, reply, "ok", 2, NULL);
}

void
accounts_stop_cache(struct accounts *a)
{
    if (!a)
        return;
    store_kv_watch_stop(a->tokens_w);
    store_core_unsubscribe(a->revoked_sub);
    a->tokens_w = NULL;
    a->revoked_sub = NULL;
}

void
accounts_on_revoked(struct accounts *a, accounts_revoked_fn fn, void *ctx)
{
    a->revoked_fn = fn;
    a->revoked_ctx = ctx;
}

enum ch_status
accounts_start_cache(struct accounts *a, struct ch_err *err)
{
    enum ch_status st;

    pthread_mutex_lock(&a->cmu);
    a->creds = map_new();
    pthread_mutex_unlock(&a->cmu);
    if (!a->creds)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    if ((st = store_kv_watch(a->o.store, STORE_B_TOKENS, ">", on_token, a, &a->tokens_w, err)) != CH_OK ||
        (st = store_core_subscribe(a->o.store, STORE_SUBJECT_REVOKED, on_revoked, a, &a->revoked_sub, err)) !=
            CH_OK)
        return st;
    return CH_OK;
}

/* After removing credentials from NATS: every running process forgets them before we answer. */
static void
revoke_fence(struct accounts *a, char **keys, size_t n)
{
    cJSON *o, *arr;
    char *s;
    int want = 0, got = 0;

    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        cache_drop(a, keys[i]);
    if (store_procs_count(a->o.store, &want, NULL) != CH_OK || want == 0)
        return; /* nobody to tell (a CLI command on a NATS no server uses), or we cannot know: the watches will */
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "keys");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(keys[i]));
    s = json_print(o, NULL);
    cJSON_Delete(o);
    if (s && store_core_gather(a->o.store, STORE_SUBJECT_REVOKED, s, strlen(s), want, REVOKE_FENCE_MS, &got, NULL) ==
                 CH_OK &&
        got < want)
        log_warn("account: %d of %d processes confirmed a revocation in time; the others forget it when their "
                 "watch sees it",
                 got, want);
    free(s);
}

/* ---- users ---- */

enum ch_status
accounts_get(struct accounts *a, const char *uid, struct user *out, struct ch_err *err)
{
    char *v = NULL;
    size_t len;
    enum ch_status st;

    if (!id_valid(uid))
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such user");
    st = store_kv_get(a->o.store, STORE_B_USERS, uid, &v, &len, NULL, err);
    if (st == CH_ENOTFOUND)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such user");
    if (st != CH_OK)
        return st;
    st = user_parse(v, len, out);
    free(v);
    return st == CH_OK ? CH_OK : ch_err_set(err, CH_EINTERNAL, NULL, "user record %s is corrupt", uid);
}

enum ch_status
accounts_get_by_login(struct accounts *a, const char *login, struct user *out, struct ch_err *err)
{
    char norm[USER_LOGIN_MAX + 1], key[USER_LOGIN_MAX + 1], uid[ID_MAX + 1], *v = NULL;
    enum ch_status st;

    if (user_login_normalize("login", login, norm, NULL) != CH_OK)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such user");
    user_login_key(norm, key);
    st = store_kv_get(a->o.store, STORE_B_LOGINS, key, &v, NULL, NULL, err);
    if (st == CH_ENOTFOUND)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such user");
    if (st != CH_OK)
        return st;
    snprintf(uid, sizeof uid, "%.*s", (int)strcspn(v, " "), v);
    free(v);
    return accounts_get(a, uid, out, err);
}

/* Read-modify-write a user record with compare-and-set; fn returns CH_OK to write, anything else to stop. */
typedef enum ch_status (*modify_fn)(struct user *u, void *ctx, struct ch_err *err);

static enum ch_status
modify_user(struct accounts *a, const char *uid, modify_fn fn, void *ctx, struct user *out, struct ch_err *err)
{
    for (int i = 0; i < CAS_RETRIES; i++) {
        char *v = NULL, *nv;
        size_t len;
        uint64_t rev;
        struct user u;
        enum ch_status st;

        if (!id_valid(uid))
            return ch_err_set(err, CH_ENOTFOUND, NULL, "no such user");
        st = store_kv_get(a->o.store, STORE_B_USERS, uid, &v, &len, &rev, err);
        if (st == CH_ENOTFOUND)
            return ch_err_set(err, CH_ENOTFOUND, NULL, "no such user");
        if (st != CH_OK)
            return st;
        st = user_parse(v, len, &u);
        free(v);
        if (st != CH_OK)
            return ch_err_set(err, CH_EINTERNAL, NULL, "user record %s is corrupt", uid);
        if ((st = fn(&u, ctx, err)) != CH_OK)
            return st;
        u.updated_at = clock_wall_ms();
        if (!(nv = user_serialize(&u)))
            return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        st = store_kv_update(a->o.store, STORE_B_USERS, uid, nv, strlen(nv), rev, NULL, err);
        free(nv);
        if (st == CH_ECONFLICT)
            continue;
        if (st == CH_OK && out)
            *out = u;
        return st;
    }
    return ch_err_set(err, CH_EUNAVAIL, NULL, "too much contention on this account; retry");
}

static enum ch_status
set_hash(struct user *u, void *ctx, struct ch_err *err)
{
    (void)err;
    snprintf(u->password_hash, sizeof u->password_hash, "%s", (const char *)ctx);
    return CH_OK;
}

/* users_count += delta, refusing to pass max (when delta > 0 and max > 0). *after gets the new value. */
static enum ch_status
adjust_count(struct accounts *a, int delta, int64_t max, int64_t *after, struct ch_err *err)
{
    for (int i = 0; i < CAS_RETRIES; i++) {
        char *v = NULL, buf[32];
        uint64_t rev = 0;
        int64_t n = 0;
        enum ch_status st = store_kv_get(a->o.store, STORE_B_META, "users_count", &v, NULL, &rev, err);

        if (st == CH_OK)
            n = strtoll(v, NULL, 10);
        free(v);
        if (st != CH_OK && st != CH_ENOTFOUND)
            return st;
        if (delta > 0 && max > 0 && n >= max)
            return ch_err_set(err, CH_ELIMIT, NULL, "this server has reached its limit of %" PRId64 " users", max);
        n += delta;
        if (n < 0)
            n = 0;
        snprintf(buf, sizeof buf, "%" PRId64, n);
        st = st == CH_ENOTFOUND ? store_kv_create(a->o.store, STORE_B_META, "users_count", buf, strlen(buf), NULL, err)
                                : store_kv_update(a->o.store, STORE_B_META, "users_count", buf, strlen(buf), rev,
                                                  NULL, err);
        if (st == CH_ECONFLICT || st == CH_EEXIST)
            continue;
        if (st == CH_OK && after)
            *after = n;
        return st;
    }
    return ch_err_set(err, CH_EUNAVAIL, NULL, "too many registrations at once; retry");
}

/* Claim a login for uid. CH_EEXIST if someone has it (a claim older than a minute whose user never got written,
 * left by a crash mid-registration, is taken over). */
static enum ch_status
claim_login(struct accounts *a, const char *key, const char *uid, struct ch_err *err)
{
    char val[96], *cur = NULL, owner[ID_MAX + 1];
    uint64_t rev;
    long long claimed = 0;
    enum ch_status st;
    struct user u;

    snprintf(val, sizeof val, "%s %" PRId64, uid, clock_wall_ms());
    st = store_kv_create(a->o.store, STORE_B_LOGINS, key, val, strlen(val), NULL, err);
    if (st != CH_EEXIST)
        return st;
    if (store_kv_get(a->o.store, STORE_B_LOGINS, key, &cur, NULL, &rev, NULL) != CH_OK)
        return ch_err_set(err, CH_EEXIST, "login", "login taken");
    if (sscanf(cur, "%64s %lld", owner, &claimed) != 2)
        owner[0] = '\0';
    free(cur);
    if (clock_wall_ms() - claimed < LOGIN_CLAIM_STALE_MS || accounts_get(a, owner, &u, NULL) != CH_ENOTFOUND)
        return ch_err_set(err, CH_EEXIST, "login", "login taken");
    st = store_kv_update(a->o.store, STORE_B_LOGINS, key, val, strlen(val), rev, NULL, err);
    return st == CH_ECONFLICT ? ch_err_set(err, CH_EEXIST, "login", "login taken") : st;
}

static enum ch_status
create_account(struct accounts *a, const char *login_in, const char *password, const char *display_in,
               bool is_bot, const char *creator, int forced_role, struct user *out, struct ch_err *err)
{
    struct user u = { 0 };
    char key[USER_LOGIN_MAX + 1], *rec = NULL;
    bool counted = false, claimed = false;
    enum ch_status st;

    if ((st = user_login_normalize("login", login_in, u.login, err)) != CH_OK)
        return st;
    if (!strcmp(u.login, "all") || !strcmp(u.login, "here")) /* @all and @here mean a room's members */
        return ch_err_set(err, CH_EINVAL, "login", "'%s' is reserved (@%s mentions a room's members)", u.login,
                          u.login);
    if ((st = user_display_name_check("displayName", display_in && *display_in ? display_in : u.login,
                                      u.display_name, err)) != CH_OK)
        return st;
    if (!is_bot) {
        if ((st = user_password_check("password", password, err)) != CH_OK ||
            (st = hash_password(a, password, u.password_hash, err)) != CH_OK)
            return st;
    }
    id_new(u.id);
    u.is_bot = is_bot;
    u.created_at = u.updated_at = clock_wall_ms();
    snprintf(u.created_by, sizeof u.created_by, "%s", creator ? creator : "");
    user_login_key(u.login, key);
    if (!is_bot) {
        if ((st = adjust_count(a, 1, a->o.max_users, NULL, err)) != CH_OK)
            goto fail;
        counted = true;
    }
    if ((st = claim_login(a, key, u.id, err)) != CH_OK)
        goto fail;
    claimed = true;
    if (forced_role >= 0) {
        u.role = (enum user_role)forced_role;
        if (u.role == ROLE_OWNER)
            store_kv_put(a->o.store, STORE_B_META, "owner", u.id, strlen(u.id), NULL, NULL);
    } else if (!is_bot) {
        /* the first account to get here owns the server: one atomic create decides */
        st = store_kv_create(a->o.store, STORE_B_META, "owner", u.id, strlen(u.id), NULL, err);
        if (st == CH_OK)
            u.role = ROLE_OWNER;
        else if (st != CH_EEXIST)
            goto fail;
    }
    if (!(rec = user_serialize(&u))) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto fail;
    }
    if ((st = store_kv_create(a->o.store, STORE_B_USERS, u.id, rec, strlen(rec), NULL, err)) != CH_OK)
        goto fail;
    explicit_bzero(rec, strlen(rec));
    free(rec);
    *out = u;
    explicit_bzero(&u, sizeof u);
    return CH_OK;
fail:
    /* undo what we claimed, best effort: nothing half-made should block the name or the count */
    if (claimed)
        store_kv_purge(a->o.store, STORE_B_LOGINS, key, NULL);
    if (counted)
        adjust_count(a, -1, 0, NULL, NULL);
    if (rec)
        explicit_bzero(rec, strlen(rec));
    free(rec);
    explicit_bzero(&u, sizeof u);
    return st;
}


enum ch_status
accounts_create_user(struct accounts *a, const char *login, const char *password, const char *display,
                     enum user_role role, struct user *out, struct ch_err *err)
{
    return create_account(a, login, password, display, false, NULL, (int)role, out, err);
}

/* ---- throttling ---- */

static void
ip_key(const char *ip, char *out, size_t len)
{
    size_t i = 0;

    snprintf(out, len, "i.");
    for (i = 2; *ip && i + 1 < len; ip++, i++)
        out[i] = (*ip == '.' || *ip == ':') ? '_' : *ip;
    out[i] = '\0';
}

/* ---- password attempts ----
 *
 * Three counters in chatto_throttle, each over a window of auth.login_lockout, changed only by compare-and-set so
 * that every process sees one count:
 *   p.<login>.<address>  attempts at one account from one client address: at auth.login_max_failures the pair is
 *                        locked (429) until the window ends. A stranger guessing from elsewhere locks only
 *                        themselves out, never the account's owner.
 *   i.<address>          attempts from one address at any account (auth.login_max_failures_per_ip).
 *   a.<login>            failures at one account from anywhere: past auth.login_max_failures each attempt at it
 *                        waits a little longer (100 ms a failure, at most 2 s) before the password is checked,
 *                        so a botnet's guesses slow down while the owner still gets in within seconds.
 * An attempt is counted before its password is checked, so concurrent guesses can never exceed a limit; a
 * success gives its address's attempt back and clears the pair. Errors reading the counters count as "not
 * locked": availability over strictness for the throttle only; the password check still runs. */

struct window_count {
    long long n, start;
};

static bool
counter_read(struct accounts *a, const char *key, int64_t window_ms, struct window_count *c, uint64_t *rev)
{
    char *v = NULL;
    bool ok = store_kv_get(a->o.store, STORE_B_THROTTLE, key, &v, NULL, rev, NULL) == CH_OK &&
              sscanf(v, "%lld %lld", &c->n, &c->start) == 2;

    free(v);
    if (ok && clock_wall_ms() - c->start >= window_ms)
        c->n = 0; /* an old window: starts over */
    return ok;
}

/* Add delta to key's count (a new window if the last one ended). With max > 0, only while the count is below
 * max: else false, and *retry_s = seconds until the window ends. */
static bool
counter_add(struct accounts *a, const char *key, int64_t window_ms, int delta, int max, int64_t *retry_s)
{
    for (int i = 0; i < CAS_RETRIES; i++) {
        struct window_count c = { 0, 0 };
        uint64_t rev = 0;
        char buf[64];
        int64_t now = clock_wall_ms();
        bool have = counter_read(a, key, window_ms, &c, &rev);
        enum ch_status st;

        if (!have || c.n == 0)
            c.start = now, c.n = 0;
        if (max > 0 && delta > 0 && c.n >= max) {
            int64_t end = c.start + window_ms;
            if (retry_s)
                *retry_s = end > now ? (end - now + 999) / 1000 : 1;
            return false;
        }
        c.n += delta;
        if (c.n < 0)
            c.n = 0;
        snprintf(buf, sizeof buf, "%lld %lld", c.n, c.start);
        st = have ? store_kv_update(a->o.store, STORE_B_THROTTLE, key, buf, strlen(buf), rev, NULL, NULL)
                  : store_kv_create(a->o.store, STORE_B_THROTTLE, key, buf, strlen(buf), NULL, NULL);
        if (st != CH_ECONFLICT && st != CH_EEXIST)
            return true; /* done (or NATS failed: not locked) */
    }
    return true;
}

struct attempt {
    char pkey[200], ikey[80], akey[80];
};

/* Before checking a password for the account with login key lkey: count the attempt, or refuse it (429, with
 * *retry_after_s) when its address is locked; then wait out the account's slow-down. */
static enum ch_status
attempt_begin(struct accounts *a, const char *lkey, const char *client_ip, struct attempt *t, int64_t *retry_after_s,
              struct ch_err *err)
{
    struct window_count fails = { 0, 0 };
    int64_t retry = 0;

    ip_key(client_ip ? client_ip : "unknown", t->ikey, sizeof t->ikey);
    snprintf(t->pkey, sizeof t->pkey, "p.%s.%s", lkey, t->ikey + 2);
    snprintf(t->akey, sizeof t->akey, "a.%s", lkey);
    if (a->o.login_max_failures > 0 && !counter_add(a, t->pkey, a->o.login_lockout_ms, 1, a->o.login_max_failures, &retry)) {
        *retry_after_s = retry;
        return ch_err_set(err, CH_ELIMIT, NULL,
                          "too many failed attempts for this account from your address; try again in %" PRId64
                          " seconds",
                          retry);
    }
    if (a->o.login_max_failures_per_ip > 0 && !counter_add(a, t->ikey, a->o.login_lockout_ms, 1, a->o.login_max_failures_per_ip, &retry)) {
        counter_add(a, t->pkey, a->o.login_lockout_ms, -1, 0, NULL);
        *retry_after_s = retry;
        return ch_err_set(err, CH_ELIMIT, NULL,
                          "too many failed attempts from your address; try again in %" PRId64 " seconds", retry);
    }
    uint64_t rev;
    if (a->o.login_max_failures > 0 && counter_read(a, t->akey, a->o.login_lockout_ms, &fails, &rev) && fails.n > a->o.login_max_failures) {
        long long ms = (fails.n - a->o.login_max_failures) * 100;
        nanosleep(&(struct timespec){ ms >= 2000 ? 2 : 0, (long)(ms >= 2000 ? 0 : ms) * 1000000L }, NULL);
    }
    return CH_OK;
}

/* After the check: a failure counts against the account; a success clears the pair and gives the address its
 * attempt back. */
static void
attempt_end(struct accounts *a, const struct attempt *t, bool ok)
{
    if (!ok) {
        if (a->o.login_max_failures > 0)
            counter_add(a, t->akey, a->o.login_lockout_ms, 1, 0, NULL);
        return;
    }
    store_kv_purge(a->o.store, STORE_B_THROTTLE, t->pkey, NULL);
    if (a->o.login_max_failures_per_ip > 0)
        counter_add(a, t->ikey, a->o.login_lockout_ms, -1, 0, NULL);
}

/* ---- registrations: limited per address and overall (counters r.<address> and r.all, like the above) ---- */

enum ch_status
accounts_register(struct accounts *a, const char *login, const char *password, const char *display,
                  const char *client_ip, int64_t *retry_after_s, struct user *out, struct ch_err *err)
{
    char ikey[80], rkey[90];
    int64_t retry = 0, win = a->o.register_window_ms;
    enum ch_status st;

    ip_key(client_ip ? client_ip : "unknown", ikey, sizeof ikey);
    snprintf(rkey, sizeof rkey, "r.%s", ikey + 2);
    /* taken before the password is hashed (the expensive part), given back when the account is not created */
    if (a->o.register_max_per_ip > 0 && !counter_add(a, rkey, win, 1, a->o.register_max_per_ip, &retry)) {
        *retry_after_s = retry;
        return ch_err_set(err, CH_ELIMIT, NULL,
                          "too many new accounts from your address; try again in %" PRId64 " seconds", retry);
    }
    if (a->o.register_max > 0 && !counter_add(a, "r.all", win, 1, a->o.register_max, &retry)) {
        if (a->o.register_max_per_ip > 0)
            counter_add(a, rkey, win, -1, 0, NULL);
        *retry_after_s = retry;
        return ch_err_set(err, CH_ELIMIT, NULL,
                          "this server takes no more new accounts for now; try again in %" PRId64 " seconds", retry);
    }
    st = create_account(a, login, password, display, false, NULL, -1, out, err);
    if (st != CH_OK) {
        if (a->o.register_max_per_ip > 0)
            counter_add(a, rkey, win, -1, 0, NULL);
        if (a->o.register_max > 0)
            counter_add(a, "r.all", win, -1, 0, NULL);
    }
    return st;
}

enum ch_status
accounts_login(struct accounts *a, const char *login, const char *password, const char *client_ip, struct user *out,
               int64_t *retry_after_s, struct ch_err *err)
{
    char norm[USER_LOGIN_MAX + 1], lkey[USER_LOGIN_MAX + 1];
    struct attempt t;
    struct user u;
    bool known, ok = false;
    enum ch_status st;

    if ((st = user_login_normalize("login", login, norm, err)) != CH_OK)
        return st;
    if (!*password)
        return ch_err_set(err, CH_EINVAL, "password", "required");
    if (strlen(password) > USER_PASSWORD_MAX)
        return ch_err_set(err, CH_EINVAL, "password", "must be at most %d bytes", USER_PASSWORD_MAX);
    user_login_key(norm, lkey);
    if ((st = attempt_begin(a, lkey, client_ip, &t, retry_after_s, err)) != CH_OK)
        return st;
    st = accounts_get_by_login(a, norm, &u, err);
    if (st != CH_OK && st != CH_ENOTFOUND)
        return st;
    known = st == CH_OK && !u.is_bot && u.password_hash[0];
    /* unknown logins verify against a dummy hash so both cases take the same time */
    if ((st = verify_password(a, known ? u.password_hash : a->dummy_hash, password, &ok, err)) != CH_OK)
        return st;
    attempt_end(a, &t, known && ok);
    if (!known || !ok) {
        explicit_bzero(&u, sizeof u);
        metrics_inc(MET_LOGIN_FAILURES, NULL, NULL);
        return ch_err_set(err, CH_EAUTH, NULL, "invalid login or password");
    }
    if (u.disabled) {
        explicit_bzero(&u, sizeof u);
        return ch_err_set(err, CH_EPERM, NULL, "this account has been disabled");
    }
    if (crypto_pwhash_needs_rehash(u.password_hash, a->o.cost)) {
        /* auth.password_hash changed since this hash was made: store the just-verified password at the new cost */
        char h[CRYPTO_PWHASH_LEN];
        if (hash_password(a, password, h, NULL) == CH_OK && modify_user(a, u.id, set_hash, h, &u, NULL) == CH_OK) {
        }
        explicit_bzero(h, sizeof h);
    }
    *out = u;
    explicit_bzero(&u, sizeof u);
    return CH_OK;
}

/* ---- credentials ---- */

static void
cred_key(const char *uid, char kind, const char *verifier, char *out, size_t len)
{
    snprintf(out, len, "%s.%c.%s", uid, kind, verifier);
}

enum ch_status
accounts_issue(struct accounts *a, const struct user *u, char kind, char **value, int64_t *expires_ms,
               struct ch_err *err)
{
    unsigned char secret[CRYPTO_TOKEN_SECRET];
    char verifier[CRYPTO_VERIFIER_HEX], key[200], rec[200];
    int64_t now = clock_wall_ms(), exp = kind == CRED_APIKEY ? 0 : now + a->o.token_ttl_ms;
    enum ch_status st;
    char *v;

    crypto_token_secret(secret);
    crypto_token_verifier(a->keys, kind, u->id, secret, verifier);
    cred_key(u->id, kind, verifier, key, sizeof key);
    snprintf(rec, sizeof rec, "{\"kind\":\"%c\",\"userId\":\"%s\",\"createdAt\":\"%" PRId64 "\",\"expiresAt\":\"%" PRId64
             "\"}", kind, u->id, now, exp);
    if ((st = store_kv_create(a->o.store, STORE_B_TOKENS, key, rec, strlen(rec), NULL, err)) != CH_OK) {
        explicit_bzero(secret, sizeof secret);
        return st == CH_EEXIST ? ch_err_set(err, CH_EINTERNAL, NULL, "credential collision") : st;
    }
    v = kind == CRED_SESSION ? crypto_cookie_seal(a->keys, u->id, secret, exp / 1000)
                             : crypto_bearer_format(kind, u->id, secret);
    explicit_bzero(secret, sizeof secret);
    if (!v) {
        store_kv_purge(a->o.store, STORE_B_TOKENS, key, NULL);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    *value = v;
    if (expires_ms)
        *expires_ms = exp;
    return CH_OK;
}

/* Look up a credential (kind, uid, secret) and its user. */
static enum ch_status
resolve(struct accounts *a, char kind, const char *uid, const unsigned char secret[CRYPTO_TOKEN_SECRET],
        struct principal *p, struct ch_err *err)
{
    char verifier[CRYPTO_VERIFIER_HEX], key[200], *v = NULL;
    enum ch_status st;
    cJSON *rec;
    int64_t exp = 0;
    uint64_t drops;

    crypto_token_verifier(a->keys, kind, uid, secret, verifier);
    cred_key(uid, kind, verifier, key, sizeof key);
    if (cache_hit(a, key))
        goto known;
    drops = cache_drops(a);
    st = store_kv_get(a->o.store, STORE_B_TOKENS, key, &v, NULL, NULL, err);
    if (st == CH_ENOTFOUND)
        return ch_err_set(err, CH_EAUTH, NULL, "session expired or revoked; log in again");
    if (st != CH_OK)
        return st;
    rec = cJSON_Parse(v);
    free(v);
    if (rec) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(rec, "expiresAt");
        exp = cJSON_IsString(e) ? strtoll(e->valuestring, NULL, 10) : 0;
        cJSON_Delete(rec);
    }
    if (exp && exp <= clock_wall_ms()) {
        store_kv_purge(a->o.store, STORE_B_TOKENS, key, NULL);
        return ch_err_set(err, CH_EAUTH, NULL, "session expired; log in again");
    }
    cache_put(a, key, exp, drops);
known:
    if ((!a->cache || !a->cache(a->cache_ctx, uid, &p->user)) && (st = accounts_get(a, uid, &p->user, err)) != CH_OK)
        return st == CH_ENOTFOUND ? ch_err_set(err, CH_EAUTH, NULL, "unknown user") : st;
    if (p->user.disabled || p->user.deleted)
        return ch_err_set(err, CH_EAUTH, NULL, "this account has been disabled");
    p->kind = kind;
    snprintf(p->verifier, sizeof p->verifier, "%s", verifier);
    return CH_OK;
}

enum ch_status
accounts_auth_cookie(struct accounts *a, const char *cookie, struct principal *p, struct ch_err *err)
{
    char uid[65];
    unsigned char secret[CRYPTO_TOKEN_SECRET];
    enum ch_status st;

    if (crypto_cookie_open(a->keys, cookie, clock_wall_ms() / 1000, uid, secret, NULL) != CH_OK)
        return ch_err_set(err, CH_EAUTH, NULL, "invalid or expired session cookie; log in again");
    st = resolve(a, CRED_SESSION, uid, secret, p, err);
    explicit_bzero(secret, sizeof secret);
    return st;
}

enum ch_status
accounts_auth_bearer(struct accounts *a, const char *bearer, struct principal *p, struct ch_err *err)
{
    char uid[65], kind;
    unsigned char secret[CRYPTO_TOKEN_SECRET];
    enum ch_status st;

    if (crypto_bearer_parse(bearer, &kind, uid, secret) != CH_OK || (kind != CRED_TOKEN && kind != CRED_APIKEY))
        return ch_err_set(err, CH_EAUTH, NULL, "malformed bearer token");
    st = resolve(a, kind, uid, secret, p, err);
    explicit_bzero(secret, sizeof secret);
    return st;
}

enum ch_status
accounts_revoke(struct accounts *a, const struct principal *p, struct ch_err *err)
{
    char key[200];

    enum ch_status st;
    char *keys[1] = { key };

    cred_key(p->user.id, p->kind, p->verifier, key, sizeof key);
    if ((st = store_kv_purge(a->o.store, STORE_B_TOKENS, key, err)) == CH_OK)
        revoke_fence(a, keys, 1);
    return st;
}

enum ch_status
accounts_revoke_all(struct accounts *a, const char *uid, const char *except, bool apikeys, struct ch_err *err)
{
    char filter[100], **keys = NULL;
    size_t n = 0;
    enum ch_status st;

    if (!id_valid(uid))
        return ch_err_set(err, CH_ENOTFOUND, NULL, "no such user");
    snprintf(filter, sizeof filter, "%s.*.*", uid);
    if ((st = store_kv_keys(a->o.store, STORE_B_TOKENS, filter, &keys, &n, err)) != CH_OK)
        return st;
    size_t done = 0;
    for (size_t i = 0; i < n && st == CH_OK; i++) {
        const char *kind = keys[i] + strlen(uid) + 1, *ver = kind + 2;
        if ((except && strcmp(ver, except) == 0) || (!apikeys && *kind == CRED_APIKEY))
            continue;
        if ((st = store_kv_purge(a->o.store, STORE_B_TOKENS, keys[i], err)) == CH_OK) {
            char *t = keys[done]; /* the removed ones, in front, for the fence */
            keys[done++] = keys[i];
            keys[i] = t;
        }
    }
    revoke_fence(a, keys, done);
    store_kv_keys_free(keys);
    return st;
}

/* ---- listing and profile ---- */

enum ch_status
accounts_list(struct accounts *a, const char *after, size_t limit, bool include_disabled, struct user **out,
              size_t *n, char next[ID_MAX + 1], struct ch_err *err)
{
    char **keys = NULL;
    size_t nk = 0, cnt = 0, i = 0;
    struct user *v;
    enum ch_status st;

    next[0] = '\0';
    if ((st = store_kv_keys(a->o.store, STORE_B_USERS, ">", &keys, &nk, err)) != CH_OK)
        return st;
    if (!(v = calloc(limit ? limit : 1, sizeof *v))) {
        store_kv_keys_free(keys);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    while (i < nk && after && *after && strcmp(keys[i], after) <= 0)
        i++;
    for (; i < nk && cnt < limit; i++) {
        st = accounts_get(a, keys[i], &v[cnt], err);
        if (st == CH_ENOTFOUND)
            continue;
        if (st != CH_OK)
            break;
        explicit_bzero(v[cnt].password_hash, sizeof v[cnt].password_hash);
        if (v[cnt].deleted || (v[cnt].disabled && !include_disabled))
            continue;
        cnt++;
    }
    if (st == CH_ENOTFOUND)
        st = CH_OK;
    if (st == CH_OK && cnt == limit && i < nk)
        snprintf(next, ID_MAX + 1, "%s", v[cnt - 1].id);
    store_kv_keys_free(keys);
    if (st != CH_OK) {
        free(v);
        return st;
    }
    *out = v;
    *n = cnt;
    return CH_OK;
}

enum ch_status
accounts_has_owner(struct accounts *a, bool *yes, struct ch_err *err)
{
    char *v = NULL;
    enum ch_status st = store_kv_get(a->o.store, STORE_B_META, "owner", &v, NULL, NULL, err);

    free(v);
    *yes = st == CH_OK;
    return st == CH_ENOTFOUND ? CH_OK : st;
}

static enum ch_status
set_display(struct user *u, void *ctx, struct ch_err *err)
{
    (void)err;
    snprintf(u->display_name, sizeof u->display_name, "%s", (const char *)ctx);
    return CH_OK;
}

enum ch_status
accounts_update_profile(struct accounts *a, const char *uid, const char *display, struct user *out,
                        struct ch_err *err)
{
    char name[USER_NAME_MAX_BYTES + 1];
    enum ch_status st;

    if ((st = user_display_name_check("displayName", display, name, err)) != CH_OK)
        return st;
    return modify_user(a, uid, set_display, name, out, err);
}

struct status_set {
    const char *emoji, *text;
    int64_t expires;
};

static enum ch_status
set_status(struct user *u, void *ctx, struct ch_err *err)
{
    const struct status_set *ss = ctx;

    (void)err;
    snprintf(u->status_emoji, sizeof u->status_emoji, "%s", ss->emoji ? ss->emoji : "");
    snprintf(u->status_text, sizeof u->status_text, "%s", ss->emoji ? ss->text : "");
    u->status_expires = ss->emoji ? ss->expires : 0;
    return CH_OK;
}

enum ch_status
accounts_set_custom_status(struct accounts *a, const char *uid, const char *emoji, const char *text,
                           int64_t expires_ms, struct user *out, struct ch_err *err)
{
    char e[USER_STATUS_EMOJI_MAX_BYTES + 1], t[USER_STATUS_TEXT_MAX_BYTES + 1];
    struct status_set ss = { NULL, NULL, 0 };
    enum ch_status st;

    if (emoji) {
        if ((st = utf8_clean_text("emoji", emoji, USER_STATUS_EMOJI_MAX_CHARS, USER_STATUS_EMOJI_MAX_BYTES, false,
                                  false, e, sizeof e, err)) != CH_OK ||
            (st = utf8_clean_text("text", text ? text : "", USER_STATUS_TEXT_MAX_CHARS, USER_STATUS_TEXT_MAX_BYTES,
                                  false, false, t, sizeof t, err)) != CH_OK)
            return st;
        for (const char *p = e; *p; p++)
            if ((unsigned char)*p <= 0x20)
                return ch_err_set(err, CH_EINVAL, "emoji", "must not contain spaces");
        if (expires_ms && expires_ms <= clock_wall_ms())
            return ch_err_set(err, CH_EINVAL, "expiresAt", "must be in the future");
        ss = (struct status_set){ e, t, expires_ms };
    }
    return modify_user(a, uid, set_status, &ss, out, err);
}

static enum ch_status
set_presence(struct user *u, void *ctx, struct ch_err *err)
{
    (void)err;
    snprintf(u->presence, sizeof u->presence, "%s", (const char *)ctx);
    return CH_OK;
}

enum ch_status
accounts_set_presence(struct accounts *a, const char *uid, const char *presence, struct user *out,
                      struct ch_err *err)
{
    if (strcmp(presence, "away") != 0 && strcmp(presence, "dnd") != 0 && *presence)
        return ch_err_set(err, CH_EINVAL, "status", "must be online, away or dnd");
    return modify_user(a, uid, set_presence, (void *)presence, out, err);
}

struct avatar_swap {
    const char *next;
    char *old;
};

static enum ch_status
set_avatar(struct user *u, void *ctx, struct ch_err *err)
{
    struct avatar_swap *sw = ctx;

    (void)err;
    snprintf(sw->old, ID_MAX + 1, "%s", u->avatar);
    snprintf(u->avatar, sizeof u->avatar, "%s", sw->next ? sw->next : "");
    return CH_OK;
}

enum ch_status
accounts_set_avatar(struct accounts *a, const char *uid, const char *avatar_id, char old[ID_MAX + 1],
                    struct user *out, struct ch_err *err)
{
    struct avatar_swap sw = { avatar_id, old };

    old[0] = '\0';
    if (avatar_id && !id_valid(avatar_id))
        return ch_err_set(err, CH_EINVAL, "avatar", "not a valid id");
    return modify_user(a, uid, set_avatar, &sw, out, err);
}

enum ch_status
accounts_set_password(struct accounts *a, const char *uid, const char *password, struct ch_err *err)
{
    char h[CRYPTO_PWHASH_LEN];
    enum ch_status st;

    if ((st = user_password_check("password", password, err)) != CH_OK ||
        (st = hash_password(a, password, h, err)) != CH_OK)
        return st;
    st = modify_user(a, uid, set_hash, h, NULL, err);
    explicit_bzero(h, sizeof h);
    if (st == CH_OK)
        st = accounts_revoke_all(a, uid, NULL, false, err);
    return st;
}

enum ch_status
accounts_change_password(struct accounts *a, const struct principal *p, const char *current, const char *next,
                         const char *client_ip, int64_t *retry_after_s, struct ch_err *err)
{
    struct user u;
    struct attempt t;
    char h[CRYPTO_PWHASH_LEN], lkey[USER_LOGIN_MAX + 1];
    bool ok = false;
    enum ch_status st;

    if (!*current)
        return ch_err_set(err, CH_EINVAL, "currentPassword", "required");
    if ((st = user_password_check("newPassword", next, err)) != CH_OK)
        return st;
    if ((st = accounts_get(a, p->user.id, &u, err)) != CH_OK)
        return st;
    if (u.is_bot || !u.password_hash[0])
        return ch_err_set(err, CH_ECONFLICT, NULL, "this account has no password");
    /* a stolen session guessing the password it lacks is throttled like a login (same counters) */
    user_login_key(u.login, lkey);
    if ((st = attempt_begin(a, lkey, client_ip, &t, retry_after_s, err)) != CH_OK) {
        explicit_bzero(&u, sizeof u);
        return st;
    }
    if ((st = verify_password(a, u.password_hash, current, &ok, err)) != CH_OK)
        return st;
    explicit_bzero(&u, sizeof u);
    attempt_end(a, &t, ok);
    if (!ok)
        return ch_err_set(err, CH_EPERM, "currentPassword", "does not match");
    if ((st = hash_password(a, next, h, err)) != CH_OK)
        return st;
    st = modify_user(a, p->user.id, set_hash, h, NULL, err);
    explicit_bzero(h, sizeof h);
    /* every other session and token of this user stops working, on every process */
    if (st == CH_OK)
        st = accounts_revoke_all(a, p->user.id, p->verifier, false, err);
    return st;
}

/* ---- bots ---- */

enum ch_status
accounts_create_bot(struct accounts *a, const char *creator, const char *login, const char *display,
                    struct user *out, char **api_key, struct ch_err *err)
{
    enum ch_status st = create_account(a, login, NULL, display, true, creator, ROLE_MEMBER, out, err);

    if (st != CH_OK)
        return st;
    return accounts_issue(a, out, CRED_APIKEY, api_key, NULL, err);
}

enum ch_status
accounts_rotate_bot_key(struct accounts *a, const char *bot_id, char **api_key, struct ch_err *err)
{
    struct user u;
    char filter[100], **keys = NULL;
    size_t n = 0;
    enum ch_status st;

    if ((st = accounts_get(a, bot_id, &u, err)) != CH_OK)
        return st;
    if (!u.is_bot)
        return ch_err_set(err, CH_EINVAL, "userId", "not a bot");
    /* issue first, then revoke the others: a failure in between leaves the bot with a working key */
    char *fresh = NULL;
    if ((st = accounts_issue(a, &u, CRED_APIKEY, &fresh, NULL, err)) != CH_OK)
        return st;
    snprintf(filter, sizeof filter, "%s.b.*", u.id);
    if ((st = store_kv_keys(a->o.store, STORE_B_TOKENS, filter, &keys, &n, err)) == CH_OK) {
        char fresh_ver[CRYPTO_VERIFIER_HEX], kind, uid[65];
        unsigned char secret[CRYPTO_TOKEN_SECRET];
        crypto_bearer_parse(fresh, &kind, uid, secret);
        crypto_token_verifier(a->keys, CRED_APIKEY, uid, secret, fresh_ver);
        explicit_bzero(secret, sizeof secret);
        size_t done = 0;
        for (size_t i = 0; i < n && st == CH_OK; i++)
            if (strcmp(keys[i] + strlen(u.id) + 3, fresh_ver) != 0 &&
                (st = store_kv_purge(a->o.store, STORE_B_TOKENS, keys[i], err)) == CH_OK) {
                char *t = keys[done]; /* the removed ones, in front, for the fence */
                keys[done++] = keys[i];
                keys[i] = t;
            }
        /* like any revocation: every running process forgets the old keys before the new one is handed out */
        revoke_fence(a, keys, done);
        store_kv_keys_free(keys);
    }
    if (st != CH_OK) {
        explicit_bzero(fresh, strlen(fresh));
        free(fresh);
        return st;
    }
    *api_key = fresh;
    return CH_OK;
}

/* ---- roles ---- */

static bool
is_staff(const struct user *u)
{
    return u->role == ROLE_ADMIN || u->role == ROLE_OWNER;
}

static enum ch_status
count_owners(struct accounts *a, size_t *owners, struct ch_err *err)
{
    char after[ID_MAX + 1] = "", next[ID_MAX + 1];
    enum ch_status st;

    *owners = 0;
    do {
        struct user *v = NULL;
        size_t n = 0;
        if ((st = accounts_list(a, after, 200, false, &v, &n, next, err)) != CH_OK)
            return st;
        for (size_t i = 0; i < n; i++)
            *owners += v[i].role == ROLE_OWNER;
        free(v);
        snprintf(after, sizeof after, "%s", next);
    } while (next[0]);
    return CH_OK;
}

struct role_change {
    enum user_role role;
};

static enum ch_status
apply_role(struct user *u, void *ctx, struct ch_err *err)
{
    (void)err;
    u->role = ((struct role_change *)ctx)->role;
    return CH_OK;
}

/* Common permission rule for changing target: actor is staff, not the target, and only owners touch admins and
 * owners. */
static enum ch_status
may_manage(const struct user *actor, const struct user *target, struct ch_err *err)
{
    if (!actor)
        return CH_OK;
    if (!is_staff(actor))
        return ch_err_set(err, CH_EPERM, NULL, "only admins and owners may do this");
    if (strcmp(actor->id, target->id) == 0)
        return ch_err_set(err, CH_EPERM, "userId", "you cannot do this to your own account");
    if (is_staff(target) && actor->role != ROLE_OWNER)
        return ch_err_set(err, CH_EPERM, "userId", "only an owner may change an admin or owner");
    return CH_OK;
}

enum ch_status
accounts_set_role(struct accounts *a, const struct user *actor, const char *uid, enum user_role role,
                  struct user *out, struct ch_err *err)
{
    struct user t;
    struct role_change rc = { role };
    enum ch_status st;
    size_t owners;

    if ((st = accounts_get(a, uid, &t, err)) != CH_OK)
        return st;
    if ((st = may_manage(actor, &t, err)) != CH_OK)
        return st;
    if (role == ROLE_OWNER && actor && actor->role != ROLE_OWNER)
        return ch_err_set(err, CH_EPERM, "role", "only an owner may make someone an owner");
    if (role == ROLE_OWNER && t.is_bot)
        return ch_err_set(err, CH_EINVAL, "role", "a bot cannot be an owner");
    if (t.role == ROLE_OWNER && role != ROLE_OWNER) {
        if ((st = count_owners(a, &owners, err)) != CH_OK)
            return st;
        if (owners <= 1)
            return ch_err_set(err, CH_ECONFLICT, "role", "the last owner cannot be demoted; make someone else an "
                                                         "owner first");
    }
    return modify_user(a, uid, apply_role, &rc, out, err);
}

static enum ch_status
apply_disabled(struct user *u, void *ctx, struct ch_err *err)
{
    (void)err;
    u->disabled = *(bool *)ctx;
    return CH_OK;
}

enum ch_status
accounts_set_disabled(struct accounts *a, const struct user *actor, const char *uid, bool disabled, struct user *out,
                      struct ch_err *err)
{
    struct user t;
    enum ch_status st;

    if ((st = accounts_get(a, uid, &t, err)) != CH_OK)
        return st;
    if ((st = may_manage(actor, &t, err)) != CH_OK)
        return st;
    if ((st = modify_user(a, uid, apply_disabled, &disabled, out, err)) != CH_OK)
        return st;
    /* a disabled user's sessions, tokens and API keys die everywhere */
    return disabled ? accounts_revoke_all(a, uid, NULL, true, err) : CH_OK;
}
