/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Accounts: registration, login with throttling, credentials (browser sessions, bearer tokens, bot API keys),
 * roles and the profile. Everything durable is in NATS (lib/store); a struct accounts holds only derived keys
 * and limits, so every process answers the same. Thread-safe: called from HTTP worker threads.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "crypto/crypto.h"
#include "model/user.h"

struct store;
struct accounts;

/* Credential kinds (the first letter in bearer strings and verifier MACs). */
#define CRED_SESSION 's'
#define CRED_TOKEN 't'
#define CRED_APIKEY 'b'

struct accounts_opts {
    struct store *store;
    const char *core_secret;
    const char *cookie_signing_secret;
    const char *cookie_encryption_secret; /* "" = sign only */
    enum crypto_pwcost cost;
    int max_concurrent_hashes;
    int64_t token_ttl_ms;
    int64_t max_users; /* 0 = no cap; bots do not count */
    int login_max_failures;
    int login_max_failures_per_ip;
    int64_t login_lockout_ms;
    int register_max_per_ip, register_max; /* per register_window_ms; 0 = no limit */
    int64_t register_window_ms;
};

/* Who is calling: the user and the credential they used (so logout revokes exactly that one). */
struct principal {
    struct user user;
    char kind; /* CRED_* */
    char verifier[CRYPTO_VERIFIER_HEX];
};

enum ch_status accounts_new(const struct accounts_opts *o, struct accounts **out, struct ch_err *err);

/* An in-memory user directory (the chat read model) to consult before NATS when resolving credentials: the
 * credential itself is always checked in NATS (so revocation is immediate everywhere); the user record may come
 * from the directory, which follows the users bucket within milliseconds. fn returns true if it filled *out. */
typedef bool (*accounts_user_cache_fn)(void *ctx, const char *uid, struct user *out);
void accounts_set_user_cache(struct accounts *a, accounts_user_cache_fn fn, void *ctx);
void accounts_free(struct accounts *a);

/* Serving processes (not CLI commands) keep the credentials they verified, so a request costs no NATS round
 * trip for its token: this starts the cache, the watch that drops revoked credentials from it, and the answer
 * to other processes' revocations (see accounts_revoke). Call once, after the store is open. */
enum ch_status accounts_start_cache(struct accounts *a, struct ch_err *err);
/* Called (on a watcher thread) with the key "<uid>.<kind>.<verifier>" of every credential removed, e.g. to end its
 * WebSockets. Set before accounts_start_cache; fn must return quickly. */
typedef void (*accounts_revoked_fn)(void *ctx, const char *cred_key);
void accounts_on_revoked(struct accounts *a, accounts_revoked_fn fn, void *ctx);
/* Stop the watch and the revocation answers (after this the revoked callback is never called). Main thread;
 * accounts_free does it too. */
void accounts_stop_cache(struct accounts *a);

/* Register (or fail with CH_EEXIST "login taken", CH_ELIMIT at limits.max_users). The first account becomes the
 * owner. password is checked and hashed here. */
enum ch_status accounts_register(struct accounts *a, const char *login, const char *password, const char *display,
                                 const char *client_ip, int64_t *retry_after_s, struct user *out, struct ch_err *err);
/* Check a login: CH_EAUTH with one generic message for unknown users and wrong passwords (same work either way),
 * CH_ELIMIT with *retry_after_s while throttled, CH_EPERM for disabled accounts. */
enum ch_status accounts_login(struct accounts *a, const char *login, const char *password, const char *client_ip,
                              struct user *out, int64_t *retry_after_s, struct ch_err *err);

/* Issue a credential for u: CRED_SESSION returns a cookie value, CRED_TOKEN and CRED_APIKEY a bearer string.
 * Caller frees *value. API keys do not expire; the others live auth.token_ttl. */
enum ch_status accounts_issue(struct accounts *a, const struct user *u, char kind, char **value, int64_t *expires_ms,
                              struct ch_err *err);
/* Resolve a session cookie value or an "Authorization: Bearer" value. CH_EAUTH when unknown, revoked, expired,
 * tampered with, or the user is disabled. */
enum ch_status accounts_auth_cookie(struct accounts *a, const char *cookie, struct principal *p, struct ch_err *err);
enum ch_status accounts_auth_bearer(struct accounts *a, const char *bearer, struct principal *p, struct ch_err *err);
/* Revoke the credential p used. Revocations take effect on every process before they return: each running
 * process is asked to forget the credential and answers (up to 2 s for one that does not; its cache then
 * forgets it when its watch sees the removal, and never keeps an entry longer than a minute). */
enum ch_status accounts_revoke(struct accounts *a, const struct principal *p, struct ch_err *err);
/* Revoke every credential of uid except the one with verifier except (NULL = all); API keys only if apikeys. */
enum ch_status accounts_revoke_all(struct accounts *a, const char *uid, const char *except, bool apikeys,
                                   struct ch_err *err);

enum ch_status accounts_get(struct accounts *a, const char *uid, struct user *out, struct ch_err *err);
enum ch_status accounts_get_by_login(struct accounts *a, const char *login, struct user *out, struct ch_err *err);
/* Users ordered by id (creation), after the id `after` ("" = from the start); at most limit; *next is the id to
 * continue from ("" when done). Disabled users are skipped unless include_disabled. Caller frees *out. */
enum ch_status accounts_list(struct accounts *a, const char *after, size_t limit, bool include_disabled,
                             struct user **out, size_t *n, char next[ID_MAX + 1], struct ch_err *err);

/* Whether the server has an owner yet (the first account registered becomes it). */
enum ch_status accounts_has_owner(struct accounts *a, bool *yes, struct ch_err *err);

enum ch_status accounts_update_profile(struct accounts *a, const char *uid, const char *display, struct user *out,
                                       struct ch_err *err);
/* Needs the current password (its guesses are throttled like logins, by client_ip: CH_ELIMIT with
 * *retry_after_s); revokes every other session and token of the user. */
enum ch_status accounts_change_password(struct accounts *a, const struct principal *p, const char *current,
                                        const char *next, const char *client_ip, int64_t *retry_after_s,
                                        struct ch_err *err);
/* Operator reset (no current password); revokes every session and token. */
/* Set uid's custom status (emoji 1-16 characters, text 1-100, expires_ms 0 or in the future) or clear it (emoji
 * NULL). Fields are named as upstream's UpdateCustomStatusRequest (emoji, text, expiresAt). */
enum ch_status accounts_set_custom_status(struct accounts *a, const char *uid, const char *emoji, const char *text,
                                          int64_t expires_ms, struct user *out, struct ch_err *err);
/* uid's chosen presence, kept across devices: "away", "dnd", or "" (automatic: online while active). */
enum ch_status accounts_set_presence(struct accounts *a, const char *uid, const char *presence, struct user *out,
                                     struct ch_err *err);
/* Set (avatar_id) or clear (NULL) uid's avatar; *old is the one it replaced ("" for none), for the caller to erase. */
enum ch_status accounts_set_avatar(struct accounts *a, const char *uid, const char *avatar_id, char old[ID_MAX + 1],
                                   struct user *out, struct ch_err *err);
enum ch_status accounts_set_password(struct accounts *a, const char *uid, const char *password, struct ch_err *err);

/* Create a bot owned by creator; returns the show-once API key. */
enum ch_status accounts_create_bot(struct accounts *a, const char *creator, const char *login, const char *display,
                                   struct user *out, char **api_key, struct ch_err *err);
/* Replace a bot's API key (the old one stops working everywhere). */
enum ch_status accounts_rotate_bot_key(struct accounts *a, const char *bot_id, char **api_key, struct ch_err *err);

/* Role and disable rules are enforced here: actor must be admin or owner; only an owner grants or removes owner
 * and may change an admin; nobody changes their own role or disables themselves; the last owner stays. actor may
 * be NULL for the operator (command line), which may do anything. */
enum ch_status accounts_set_role(struct accounts *a, const struct user *actor, const char *uid, enum user_role role,
                                 struct user *out, struct ch_err *err);
enum ch_status accounts_set_disabled(struct accounts *a, const struct user *actor, const char *uid, bool disabled,
                                     struct user *out, struct ch_err *err);
/* Operator creation (command line): any role, counts toward limits like registration. */
enum ch_status accounts_create_user(struct accounts *a, const char *login, const char *password, const char *display,
                                    enum user_role role, struct user *out, struct ch_err *err);
