/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The storage layer: the only code that talks to NATS (and the only code that includes <nats/nats.h>).
 * It owns the connection, the JetStream context, the bootstrap of every stream and bucket Chatto needs
 * (idempotent, with nats.replicas replicas, safe for several processes racing at start-up) and readiness.
 *
 * Threads: store_open/store_shutdown/store_close on the main thread; everything else from any thread. nats.c
 * runs its own connection and callback threads; "store-keeper" bootstraps once connected and subscribes
 * followers; "store-health" asks JetStream a few times a second so that store_ready() never has to.
 *
 * Locking rule: no lock of ours is held across a NATS call (a request, a publish, a subscribe). A caller that
 * must not be held up while NATS stalls (/healthz, /readyz, the WebSocket loop, nats.c's callbacks) takes, at
 * most, a mutex that is only ever held for copying a few fields. Work that needs NATS and is shared (attaching a
 * follower) is claimed under the lock, done without it, and its result stored under it again; whoever must
 * wait for it (store_follower_stop) waits on a condition variable, not on the NATS call. store_connected() reads
 * an atomic flag kept by the connection callbacks: nats.c's own status call takes the connection's mutex, which a
 * socket write to a stalled server can hold for seconds.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct store;

/* KV buckets Chatto creates (stream KV_<name>), all with nats.replicas replicas. */
enum store_bucket {
    STORE_B_META,     /* installation identity, counters, secret fingerprints */
    STORE_B_USERS,    /* <userId> -> user record (JSON) */
    STORE_B_LOGINS,   /* <login, '.' as '='> -> userId; created atomically, so logins are unique */
    STORE_B_TOKENS,   /* <userId>.<verifier> -> credential record (sessions, bearer tokens, bot API keys) */
    STORE_B_THROTTLE, /* failed-login counters, kept for a day */
    STORE_B_READS,    /* <userId>.<roomId> -> last read position */
    STORE_B_ROOMNAMES,/* <hash of the case-folded name> -> roomId; created atomically, so names are unique */
    STORE_B_DMS,      /* <hash of the sorted participant ids> -> roomId; one DM per set of users */
    STORE_B_PROCS,    /* <process> -> fingerprints of its must-match settings, refreshed while it runs */
    STORE_B_UPLOADS,  /* <uploadId> -> an upload session (resumable from any process) */
    STORE_B_ASSETS,   /* <assetId> -> an uploaded file: room, owner, name, type, size, digest, state */
    STORE_B_FOLLOWS,  /* <user>.<room>.<threadRoot> -> followed or not, and the thread's read position */
    STORE_B_NOTIFS,   /* <user>.<notificationId> -> one notification (kept 90 days) */
    STORE_B_NOTIFPOLICY, /* <user> -> notification policy overrides, server-wide and per room */
    STORE_B_PUSHSUBS, /* <user>.<hash of the endpoint> -> one browser's Web Push subscription */
    STORE_B_LEASES,   /* <worker> -> which process runs that singleton worker, until when (compare-and-set) */
    STORE_B_COUNT
};

/* A setting every process on one NATS must share (only a fingerprint of the value leaves the process). */
struct store_setting {
    const char *name;  /* "webserver.cookie_signing_secret" */
    const char *value;
};

enum store_auth { STORE_AUTH_NONE, STORE_AUTH_TOKEN, STORE_AUTH_USERPASS, STORE_AUTH_NKEY, STORE_AUTH_CREDENTIALS };

struct store_opts {
    const char *const *urls; /* NULL-terminated; e.g. { "nats://127.0.0.1:4222", NULL } */
    enum store_auth auth;
    const char *token;            /* STORE_AUTH_TOKEN */
    const char *username;         /* STORE_AUTH_USERPASS */
    const char *password;
    const char *nkey_seed;        /* STORE_AUTH_NKEY: "SU..." or a path to a file holding it */
    const char *credentials_file; /* STORE_AUTH_CREDENTIALS */
    const char *ca_cert;          /* optional PEM file */
    int replicas;                 /* for every stream and bucket we create */
    int64_t asset_cache_ttl_ms;   /* > 0: create the object store ASSET_CACHE with this max age (else not used) */
    int64_t snapshot_ttl_ms;      /* > 0: create PROJECTION_SNAPSHOTS with this max age (else not used) */
    int64_t request_timeout_ms;   /* JetStream API and publish deadline */
    int64_t reconnect_wait_ms;
    const char *name;             /* connection name shown by nats-server */
    /* an operator command (chatto user, backup, restore), not a server: it never migrates an older store layout
     * (that is a server's job, under its lease; layout.c) but refuses it, and never joins the process registry */
    bool operator_command;
    /* must-match settings; with none (CLI commands) the process does not join the process registry */
    const struct store_setting *settings;
    size_t nsettings;
};

/* Parse an auth method name ("none", "token", ...); -1 if unknown. */
int store_auth_parse(const char *s);

/* Create the connection and start connecting in the background: this returns CH_OK even while NATS is down
 * (the process stays up and not ready; nats.c keeps retrying forever). Errors are configuration problems
 * (bad seed, unreadable CA file). *out is the caller's, freed with store_close(). */
enum ch_status store_open(const struct store_opts *o, struct store **out, struct ch_err *err);

/* True (with the reason) when this process must stop: the store has a layout newer than this binary knows
 * (layout.c), or one of its must-match settings differs from a running
 * process's on the same NATS. Checked at every (re)bootstrap; the app exits with status 2. */
bool store_fatal(struct store *st, char *reason, size_t len);

/* Begin shutting down (main thread, once everything that needs NATS to finish has finished): leave the process
 * registry, flush and close the connection (at once when NATS is down or stalled, else within drain_ms) and stop
 * the store's threads. Calls still waiting on NATS return at once (CH_EUNAVAIL); later ones fail the same way.
 * Followers, watchers and subscriptions still need their owners' stop calls. Idempotent; accepts NULL. */
void store_shutdown(struct store *st, int64_t drain_ms);
/* True once store_shutdown() has begun. Any thread. */
bool store_closing(struct store *st);
/* store_shutdown() if not done yet, then free. Every follower, watcher and subscription must be stopped first.
 * Accepts NULL. */
void store_close(struct store *st);

/* Initialise nats.c (call once, first, before any other store function). */
void store_library_init(void);

/* Release nats.c's global resources; call once at exit after every store_close(). */
void store_library_shutdown(void);

/* Release what nats.c keeps per thread; a thread of ours that called the store calls this before it exits. */
void store_thread_exit(void);

/* True when connected, bootstrapped, and a live JetStream check of every stream and bucket answered (cached for
 * up to one second). Otherwise false with a short reason for /readyz. */
bool store_ready(struct store *st, char *reason, size_t len);

/* True while the connection is up. Takes no lock and makes no NATS call. */
bool store_connected(struct store *st);
/* True while the connection is up and JetStream answered the health thread's latest request in time (no stall):
 * worth making an optional call (a courtesy cleanup at shutdown). No NATS call; a short internal lock. */
bool store_answering(struct store *st);

/* Connect to url afresh (token auth if token is non-empty), ask JetStream for account info, disconnect.
 * CH_OK only if JetStream answered within timeout_ms. Used by the supervisor to probe its child. */
enum ch_status store_probe_url(const char *url, const char *token, int64_t timeout_ms, struct ch_err *err);

/* This installation's identity, created once by the first process that bootstrapped the store and shared by all.
 * Borrowed strings; CH_EUNAVAIL until bootstrapped. */
enum ch_status store_server_identity(struct store *st, char *id, size_t idlen, int64_t *created_ms);

/* ---- layout version (layout.c) ----
 * The layout of the store (which streams and buckets exist, with which subjects and settings, and the format of
 * what is stored in them) has a version, kept in chatto_meta as "layout_version". THE RULE: every change to that
 * layout (a stream or bucket added, removed or reconfigured, a subject renamed, a stored record or event read
 * differently) bumps STORE_LAYOUT_VERSION and adds the step from the previous version to migrations[] in
 * layout.c (idempotent: it may run again after a crash), with an integration test that migrates a store of the
 * previous layout (test/integration/26_layout_test.py). Layouts: 1 = 0.1.0 (no version key), 2 = 0.2.0.
 * At bootstrap a fresh store gets the current version; an older one is migrated step by step by one process
 * (the lease "layout") while the others wait; a newer one makes the process refuse to serve (store_fatal). */
#define STORE_LAYOUT_VERSION 2

/* Streams Chatto creates (besides the KV buckets' own), all with nats.replicas replicas. */
enum store_stream {
    STORE_S_EVENTS, /* CHATTO_EVENTS: the append-only source of truth of rooms and messages, chatto.ev.> */
    STORE_S_ASSETS, /* OBJ_SERVER_ASSETS: the object store of attachments (objects.c) */
    STORE_S_ASSET_CACHE, /* OBJ_ASSET_CACHE: resized images, aged out (only with core.assets.cache.enabled) */
    STORE_S_SNAPSHOTS,   /* OBJ_PROJECTION_SNAPSHOTS: read-model snapshots, aged out (core.projection_snapshots) */
    STORE_S_COUNT
};

/* Name of bucket b ("chatto_meta"). */
const char *store_bucket_name(enum store_bucket b);

/* ---- key/value (kv.c). Keys must be valid NATS KV keys ([A-Za-z0-9_=/-] and '.' separators); anything else is
 * CH_EINVAL before NATS is asked. Values are bytes. Writes return only after JetStream acknowledged them. ---- */

/* *val (NUL-terminated for convenience, caller frees) and its revision; CH_ENOTFOUND if absent or deleted. */
enum ch_status store_kv_get(struct store *st, enum store_bucket b, const char *key, char **val, size_t *len,
                            uint64_t *rev, struct ch_err *err);
/* Create key only if absent: CH_EEXIST if it exists. */
enum ch_status store_kv_create(struct store *st, enum store_bucket b, const char *key, const void *val, size_t len,
                               uint64_t *rev, struct ch_err *err);
/* Replace key only if its revision is still last_rev: CH_ECONFLICT otherwise (re-read and retry). */
enum ch_status store_kv_update(struct store *st, enum store_bucket b, const char *key, const void *val, size_t len,
                               uint64_t last_rev, uint64_t *rev, struct ch_err *err);
/* Unconditional write. */
enum ch_status store_kv_put(struct store *st, enum store_bucket b, const char *key, const void *val, size_t len,
                            uint64_t *rev, struct ch_err *err);
/* Remove key and its history (absent is fine). */
enum ch_status store_kv_purge(struct store *st, enum store_bucket b, const char *key, struct ch_err *err);
/* Keys matching a subject filter ("u123.*", ">" for all), sorted. *keys is NULL-terminated, freed with
 * store_kv_keys_free(). */
enum ch_status store_kv_keys(struct store *st, enum store_bucket b, const char *filter, char ***keys, size_t *n,
                             struct ch_err *err);
void store_kv_keys_free(char **keys);
/* True if key is acceptable as a KV key. */
bool store_kv_key_valid(const char *key);

/* ---- streams (events.c) ---- */

const char *store_stream_name(enum store_stream s);
/* False for a stream this process was not configured to use (ASSET_CACHE without a TTL). */
bool store_stream_used(const struct store *st, enum store_stream s);

struct store_pub_opts {
    const char *msg_id;            /* Nats-Msg-Id: a retry with the same id within the window is stored once */
    bool expect_none;              /* the subject must have no message yet */
    uint64_t expect_subject_seq;   /* if > 0: the subject's last message must have this sequence */
};

/* Append data to subject (a subject of one of our streams; every token validated). Returns after JetStream
 * acknowledged it, with its sequence; *dup is set when it was a duplicate of an earlier publish with the same
 * msg_id (then *seq is the original's). CH_ECONFLICT when an expectation failed, CH_EUNAVAIL when JetStream did
 * not answer in time (the write may or may not have happened: retry with the same msg_id). */
enum ch_status store_publish(struct store *st, const char *subject, const void *data, size_t len,
                             const struct store_pub_opts *o, uint64_t *seq, bool *dup, struct ch_err *err);

/* The last sequence of a stream (0 if empty), as its leader knows it: one round trip, more while a clustered stream
 * answers without a leader or has just changed leader (events.c, leader_last_seq). */
enum ch_status store_last_seq(struct store *st, enum store_stream s, uint64_t *seq, struct ch_err *err);

/* One message of a stream by sequence: its subject and data (the caller frees both; data is NUL-terminated). A
 * direct get first (any replica answers); a replica that does not have it yet is overruled by the leader, so
 * CH_ENOTFOUND means the message is gone (erased, or never there). */
enum ch_status store_get(struct store *st, enum store_stream s, uint64_t seq, char **subject, char **data,
                         size_t *len, struct ch_err *err);

/* Many messages by sequence at once: every direct get is sent before the first answer is awaited (one round trip
 * for all), and those a replica did not have are asked of the leader one by one. fn(ctx, i, subject, data, len)
 * for each seqs[i] found (data NUL-terminated, borrowed for the call), in any order; one that is gone is left
 * out. An error when NATS did not answer for all of them. */
typedef void (*store_got_fn)(void *ctx, size_t i, const char *subject, const char *data, size_t len);
enum ch_status store_get_many(struct store *st, enum store_stream s, const uint64_t *seqs, size_t n, store_got_fn fn,
                              void *ctx, struct ch_err *err);

/* The first message a stream holds on subject (a literal subject) at sequence from or later (from 1: its first):
 * its sequence and data (the caller frees it; NUL-terminated). A direct get first; when no replica has one, the
 * leader is asked, so CH_ENOTFOUND means there is none (never written, erased, or none after from yet). */
enum ch_status store_get_next(struct store *st, enum store_stream s, const char *subject, uint64_t from,
                              uint64_t *seq, char **data, size_t *len, struct ch_err *err);

/* Securely erase one message: JetStream overwrites its bytes on disk (unlike a plain delete). Absent is fine. */
enum ch_status store_erase(struct store *st, enum store_stream s, uint64_t seq, struct ch_err *err);

/* A follower receives every message of a stream in order, from the first, then live, on a nats.c thread.
 * It is (re)subscribed by the store once the stream exists, and survives reconnects. */
struct store_follower;
typedef void (*store_follow_fn)(void *ctx, uint64_t seq, const char *subject, const char *data, size_t len,
                                int64_t unix_ms);
enum ch_status store_follow(struct store *st, enum store_stream s, store_follow_fn fn, void *ctx,
                            struct store_follower **out, struct ch_err *err);
/* The same, from sequence start_seq on (a consumer that keeps its own position: the search index). */
enum ch_status store_follow_from(struct store *st, enum store_stream s, uint64_t start_seq, store_follow_fn fn,
                                 void *ctx, struct store_follower **out, struct ch_err *err);
/* The same from sequence 1, except that prepare(ctx) runs once before the first subscription, on the store's keeper
 * thread with no lock held and NATS connected: a non-zero answer is the sequence to start from instead (the chat
 * model loads a snapshot there and follows its tail). */
typedef uint64_t (*store_follow_prepare_fn)(void *ctx);
enum ch_status store_follow_prepared(struct store *st, enum store_stream s, store_follow_prepare_fn prepare,
                                     store_follow_fn fn, void *ctx, struct store_follower **out, struct ch_err *err);
/* The stream's last sequence when the follower subscribed (what "caught up" means), 0 before that. */
uint64_t store_follower_target(struct store_follower *f);
/* The same, known before the subscription's first message arrives (0 before the first subscription is being
 * made): what a callback compares a sequence with to tell the replay of history from news. */
uint64_t store_follower_replay_end(struct store_follower *f);
/* Events in the stream after the last one delivered to fn (the server's count when it sent that one): the lag. */
uint64_t store_follower_pending(struct store_follower *f);
/* True once the follower is subscribed (its target is then meaningful). */
bool store_follower_attached(struct store_follower *f);
/* Unsubscribe and free (call before store_close). Accepts NULL. */
void store_follower_stop(struct store_follower *f);

/* A durable consumer of an earlier release that kept a work position (work.c): where it had got to (every message
 * at or below *ack_floor was done) and remove it. CH_ENOTFOUND if there is none. NATS round trips. */
enum ch_status store_consumer_retire(struct store *st, enum store_stream s, const char *durable, uint64_t *ack_floor,
                                     struct ch_err *err);

/* A KV watcher: fn(key, value, rev) for every current entry, then fn(NULL, ...) once ("initial values done"),
 * then live updates; deleted entries come with value NULL. Runs on a thread of its own. */
struct store_watch;
typedef void (*store_watch_fn)(void *ctx, const char *key, const char *val, size_t len, uint64_t rev);
enum ch_status store_kv_watch(struct store *st, enum store_bucket b, const char *filter, store_watch_fn fn,
                              void *ctx, struct store_watch **out, struct ch_err *err);
void store_kv_watch_stop(struct store_watch *w);
/* The last revision in bucket b (the KV stream's last sequence), for read-your-writes waits. */
enum ch_status store_kv_last_rev(struct store *st, enum store_bucket b, uint64_t *rev, struct ch_err *err);

/* ---- object stores (objects.c): the standard NATS object-store layout, so any NATS client's object-store API
 * reads what we write and we read what it writes. Bucket B is stream OBJ_B; an object's bytes are messages on
 * $O.B.C.<nuid> in order, its description one JSON message on $O.B.M.<base64url(name)> (rolled up: the last one
 * counts) with the SHA-256 digest, size and chunk count. An object becomes visible when its description is
 * written, so a half-written object is never served. Every call is one or a few JetStream round trips. ---- */

#define STORE_OBJ_ASSETS "SERVER_ASSETS" /* attachments, as upstream names the bucket */
#define STORE_OBJ_ASSET_CACHE "ASSET_CACHE" /* resized images (upstream's name too) */
#define STORE_OBJ_SNAPSHOTS "PROJECTION_SNAPSHOTS" /* read-model snapshots (upstream's name too) */
#define STORE_OBJ_NUID_LEN 22
#define STORE_OBJ_NAME_MAX 255
#define STORE_OBJ_CHUNK_MAX (1024u * 1024u) /* nats-server's default max_payload */

struct store_obj_info {
    char name[STORE_OBJ_NAME_MAX + 1];
    char nuid[STORE_OBJ_NUID_LEN + 1]; /* names the chunk subject */
    uint64_t size;
    uint64_t chunks;
    uint64_t max_chunk_size;
    unsigned char sha256[32];
    int64_t mtime_ms;
    bool deleted;
    uint64_t revision; /* stream sequence of the description */
};

/* A fresh object id (22 characters of [0-9A-Za-z], like the NUIDs NATS clients use). */
void store_obj_nuid(char out[STORE_OBJ_NUID_LEN + 1]);

/* Append one chunk to the object being written under nuid. after_seq is the sequence of its previous chunk (0 for
 * the first): JetStream refuses the append with CH_ECONFLICT if any other chunk was appended since, so two
 * writers can never interleave. offset (the chunk's first byte in the object) travels in a header that object
 * readers ignore. *seq is the chunk's sequence. */
enum ch_status store_obj_put_chunk(struct store *st, enum store_stream s, const char *nuid, const void *data,
                                   size_t len, uint64_t after_seq, uint64_t offset, uint64_t *seq, struct ch_err *err);
/* The chunk after sequence after_seq (0: the first) of nuid: its bytes (caller frees), length and sequence.
 * CH_ENOTFOUND when there is none. */
enum ch_status store_obj_next_chunk(struct store *st, enum store_stream s, const char *nuid, uint64_t after_seq,
                                    char **data, size_t *len, uint64_t *seq, struct ch_err *err);
/* The last chunk of nuid (read through the stream leader): its sequence, length and offset header (UINT64_MAX if
 * it has none). CH_ENOTFOUND if nuid has no chunk. */
enum ch_status store_obj_last_chunk(struct store *st, enum store_stream s, const char *nuid, uint64_t *seq,
                                    size_t *len, uint64_t *offset, struct ch_err *err);
/* Publish the description that makes an object visible (or, with info->deleted, gone); content_type may be
 * NULL. info->revision is set. */
enum ch_status store_obj_put_info(struct store *st, enum store_stream s, struct store_obj_info *info,
                                  const char *content_type, struct ch_err *err);
/* The object's description; CH_ENOTFOUND if it was never written or is deleted. */
enum ch_status store_obj_get_info(struct store *st, enum store_stream s, const char *name,
                                  struct store_obj_info *info, struct ch_err *err);
/* Securely erase every chunk of nuid (their bytes are overwritten on disk), then purge what is left. */
enum ch_status store_obj_erase_chunks(struct store *st, enum store_stream s, const char *nuid, struct ch_err *err);
/* Mark the object deleted and erase its chunks. Absent is fine. */
enum ch_status store_obj_delete(struct store *st, enum store_stream s, const char *name, struct ch_err *err);
/* Write a whole object from memory in chunks of chunk_size and describe it (small objects: avatars, tests). */
enum ch_status store_obj_put(struct store *st, enum store_stream s, const char *name, const char *content_type,
                             const void *data, size_t len, size_t chunk_size, struct store_obj_info *info,
                             struct ch_err *err);

/* Reads an object's chunks in order and checks its digest at the end: store_obj_read() gives the next chunk
 * (caller frees) until *len is 0 at the end; CH_EINTERNAL if the bytes do not match the digest or size. */
struct store_obj_reader;
enum ch_status store_obj_reader_open(struct store *st, enum store_stream s, const struct store_obj_info *info,
                                     struct store_obj_reader **out, struct ch_err *err);
enum ch_status store_obj_read(struct store_obj_reader *r, char **data, size_t *len, struct ch_err *err);
void store_obj_reader_close(struct store_obj_reader *r);

/* ---- core NATS (ephemeral: typing indicators) ---- */

/* Fire-and-forget publish on a subject (validated like store_publish). */
enum ch_status store_core_publish(struct store *st, const char *subject, const void *data, size_t len,
                                  struct ch_err *err);
/* Subscribe to a subject pattern (may end in ">"); fn runs on a nats.c thread. Re-established after reconnects by
 * nats.c. Free with store_core_unsubscribe(). */
struct store_sub;
/* reply: the message's reply subject (answer with store_core_reply), or NULL. */
typedef void (*store_sub_fn)(void *ctx, const char *subject, const char *reply, const char *data, size_t len);
enum ch_status store_core_subscribe(struct store *st, const char *subject, store_sub_fn fn, void *ctx,
                                    struct store_sub **out, struct ch_err *err);
/* The same as one member of a queue group: each message goes to one member only (NATS request/reply services). */
enum ch_status store_core_queue_subscribe(struct store *st, const char *subject, const char *queue, store_sub_fn fn,
                                          void *ctx, struct store_sub **out, struct ch_err *err);
void store_core_unsubscribe(struct store_sub *s);
/* One request, one answer (*reply NUL-terminated, caller frees): CH_EUNAVAIL when nobody subscribes to subject or
 * no answer came within timeout_ms. The caller's thread waits; hold no lock. */
enum ch_status store_core_request(struct store *st, const char *subject, const void *data, size_t len,
                                  int64_t timeout_ms, char **reply, size_t *rlen, struct ch_err *err);
/* Answer a message that came with a reply subject. */
enum ch_status store_core_reply(struct store *st, const char *reply, const void *data, size_t len, struct ch_err *err);
/* Publish data on subject as a request to many, and collect answers until want of them came or timeout_ms
 * passed; *got says how many did. CH_OK either way, unless the publish itself failed. The caller's thread waits. */
enum ch_status store_core_gather(struct store *st, const char *subject, const void *data, size_t len, int want,
                                 int64_t timeout_ms, int *got, struct ch_err *err);
/* How many processes are registered as running on this NATS (the process registry; one round trip). */
enum ch_status store_procs_count(struct store *st, int *n, struct ch_err *err);

/* ---- leases (lease.c): one process at a time runs a singleton worker ---- */
/* Take or keep the lease name for holder (ids: KV-key characters) until ttl_ms from now: *held says whether holder
 * has it afterwards. A compare-and-set on the chatto_leases entry ({holder, until}), so two processes never both
 * win the same round; an absent or expired lease is taken, a live one of another holder is left alone. Wall-clock
 * expiry: processes' clocks must agree to well within ttl_ms. */
enum ch_status store_lease_acquire(struct store *st, const char *name, const char *holder, int64_t ttl_ms,
                                   bool *held, struct ch_err *err);
/* Give the lease up if holder has it (at shutdown, so that another process takes over at once). */
void store_lease_release(struct store *st, const char *name, const char *holder);
/* The lease `chatto restore` holds (and renews) while it rewrites the streams: while it is live, every bootstrap
 * (servers and operator commands alike) waits, so nothing is made, joined or read half-way through a restore. */
#define STORE_RESTORE_LEASE "restore"
#define STORE_RESTORE_LEASE_MS 120000

/* ---- backup and restore (dump.c): whole streams, for `chatto backup` and `chatto restore` only ---- */

enum store_res_kind { STORE_RES_EVENTS, STORE_RES_KV, STORE_RES_OBJECTS };

/* One stream Chatto owns. */
struct store_res {
    const char *stream;      /* the JetStream stream ("CHATTO_EVENTS", "KV_chatto_users", "OBJ_SERVER_ASSETS") */
    enum store_res_kind kind;
    bool is_volatile;        /* a cache or the state of the processes of the moment: never backed up */
    const char *gap_subject; /* events and object stores: where a placeholder fills an erased sequence */
    int bucket;              /* enum store_bucket for KV, else -1 */
    const char *subject_prefix; /* every subject starts with it: "chatto.ev.", "$KV.<bucket>.", "$O.<bucket>." */
};

/* Every stream Chatto owns, in backup order: CHATTO_EVENTS, the KV buckets, the object stores. Borrowed
 * constants. Returns how many were written into out (at most max). */
size_t store_resources(struct store_res *out, size_t max);

struct store_stream_state {
    bool exists;
    uint64_t first_seq, last_seq, msgs, bytes;
    int replicas;
    int64_t max_age_ns, max_msgs_per_subject, duplicates_ns;
    char subjects[256];
};
/* A stream's state and configuration (exists false, CH_OK, if there is no such stream). One round trip. */
enum ch_status store_stream_state(struct store *st, const char *stream, struct store_stream_state *out,
                                  struct ch_err *err);

/* A message as stored (borrowed for the callback's duration). hdr: "Name: value\r\n" lines. */
struct store_raw_msg {
    uint64_t seq;
    int64_t time_ns;
    const char *subject;
    const char *hdr;
    size_t hdr_len;
    const void *data;
    size_t len;
    bool after_cut; /* KV only: the key's value at the cut is gone; this is its first later one */
};
typedef enum ch_status (*store_dump_fn)(void *ctx, const struct store_raw_msg *m, struct ch_err *err);

/* Hand every message of r with a sequence up to cut to fn, in order (an ordered consumer; erased messages are not
 * there). For a KV bucket, one message per key: its latest value at the cut, or for a key changed since, its
 * first later value (history 1: the old one is gone); delete and purge markers are left out. fn's error stops it. */
enum ch_status store_dump(struct store *st, const struct store_res *r, uint64_t cut, store_dump_fn fn, void *ctx,
                          struct ch_err *err);

/* Delete r's stream if it exists and create it empty with this process's settings (nats.replicas). */
enum ch_status store_stream_reset(struct store *st, const struct store_res *r, struct ch_err *err);
/* (Re)create one stream of ours by name, with our settings; waits for a cluster to make it. */
enum ch_status store_stream_create(struct store *st, const char *stream, struct ch_err *err);

/* Writing streams back (a restore): messages are published asynchronously, many in flight; every call may report
 * an earlier message's refusal. store_replayer_finish waits for the last acknowledgement. */
struct store_replayer;
enum ch_status store_replayer_new(struct store *st, struct store_replayer **out, struct ch_err *err);
/* Write m back into r's (fresh) stream. Events and object stores keep their sequences: *next is the sequence the
 * stream will give next (1 for a fresh stream); a gap before m->seq (an erased message) is filled with a
 * placeholder on r->gap_subject, deleted by store_replayer_finish; JetStream refuses anything numbered otherwise
 * (CH_ECONFLICT). KV entries are simply written. Nats-* headers are not written back. */
enum ch_status store_replay(struct store_replayer *rp, const struct store_res *r, uint64_t *next,
                            const struct store_raw_msg *m, struct ch_err *err);
/* Fill the gap up to and including sequence upto (the archive's cut: new messages then come after it). */
enum ch_status store_replay_fill(struct store_replayer *rp, const struct store_res *r, uint64_t *next, uint64_t upto,
                                 struct ch_err *err);
/* Wait until every message was acknowledged, then delete the placeholders. The first refusal, if any. */
enum ch_status store_replayer_finish(struct store_replayer *rp, struct ch_err *err);
void store_replayer_free(struct store_replayer *rp);
