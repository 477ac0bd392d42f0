/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The chat core: rooms, direct messages, messages, threads, reactions, history and read state. Writes append
 * events to the CHATTO_EVENTS stream (optimistic concurrency through expected subject sequences); every process
 * keeps a read model fed by an ordered consumer and answers reads from memory. A read first learns the stream's
 * last sequence and waits until the local model has applied it, so a write acknowledged by any process is seen
 * by the next read on every process.
 *
 * All functions are thread-safe (HTTP worker threads). Results are cJSON trees owned by the caller.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "model/user.h"

struct store;
struct chat;

/* A change the model applied, for realtime delivery. payload is a complete frame body (owned by the model,
 * valid during the call); audience lists the user ids that may see it. Called on the follower thread with the
 * model locked: copy what you need and return quickly. */
struct chat_change {
    uint64_t seq;
    const char *room_id;
    const char *type;
    const cJSON *payload;
    const char *const *audience;
    size_t naudience;
};
typedef void (*chat_listener_fn)(void *ctx, const struct chat_change *c);

struct chat_opts {
    struct store *store;
    int64_t edit_window_ms;
    int64_t timeout_ms; /* read-your-writes waits */
    size_t cache_bytes; /* message bodies kept in memory (core.cache_size) */
    size_t resident_messages; /* top-level messages per room kept in memory (core.resident_messages; 0: all) */
    int64_t resident_idle_ms; /* ... a page of them in a room quiet this long (core.resident_idle_after; 0: never) */
    /* read-model snapshots (core.projection_snapshots): start from the newest, and write them (one process at a
     * time, named holder) every snapshot_events events; the store ages them out after snapshot_retention_ms */
    bool snapshots;
    uint64_t snapshot_events;
    int64_t snapshot_retention_ms;
    /* this process in the leases it takes (snapshots, notifications): the same for a process that restarts in its
     * place (host and port), so that one takes its predecessor's leases at once instead of waiting them out */
    const char *holder;
    bool no_notifier;   /* leave delivering notifications to the other processes */
};

enum ch_status chat_new(const struct chat_opts *o, struct chat **out, struct ch_err *err);

/* How messages reach files (lib/assets provides them; lib/chat does not know it): claim files for a new message
 * (all or nothing), give them back when the message was not written after all, erase them with their message, and
 * the URLs a viewer fetches one and its thumbnail with (viewer NULL: the bare path, for frames many users share). */
struct chat_asset_hooks {
    enum ch_status (*claim)(void *ctx, const char *uid, const char *room, const char *msg_id, const char *const *ids,
                            size_t n, cJSON **attachments, struct ch_err *err);
    void (*unclaim)(void *ctx, const char *msg_id, const char *const *ids, size_t n);
    void (*erase)(void *ctx, const char *const *ids, size_t n);
    void (*url)(void *ctx, const char *asset_id, const char *viewer, char *buf, size_t len, int64_t *expires_ms);
    /* the thumbnail's URL; false if the file has none (not an image that can be resized) */
    bool (*thumb_url)(void *ctx, const char *asset_id, const char *content_type, int width, int height,
                      const char *viewer, char *buf, size_t len, int64_t *expires_ms);
    void *ctx;
};
/* Web Push (webpush.c). Start sending: alerting notifications written by this process are pushed to the person's
 * subscribed browsers with vapid (the caller's, alive until chat_free) and subject (VAPID "sub"). allow_loopback
 * is for tests only (push_config). Once, at start-up; without it push is off and the push methods answer so. */
struct push_vapid;
enum ch_status chat_push_start(struct chat *c, const struct push_vapid *vapid, const char *subject,
                               bool allow_loopback, struct ch_err *err);
bool chat_push_enabled(const struct chat *c);
/* Everything notifications use is in place (push above, once, if at all): this process may now take the notifier's
 * lease and deliver. Until then it only makes sure the notifier's position exists. Once, at start-up. */
void chat_start_notifications(struct chat *c);
/* The VAPID public key browsers subscribe with (applicationServerKey); NULL when push is off. */
const char *chat_push_public_key(const struct chat *c);

/* Set once, before anything is posted (chat_new's caller, at start-up). */
void chat_set_asset_hooks(struct chat *c, const struct chat_asset_hooks *h);
void chat_free(struct chat *c);
/* Sizes of the read model and how far it trails the stream (metrics). Takes the model's read lock briefly. */
struct chat_stats {
    size_t rooms, messages, users;
    size_t cold; /* of the messages, those on the cold timeline (not in memory) */
    uint64_t lag; /* events not yet applied */
    size_t body_bytes, bodies; /* message bodies in memory */
};
void chat_stats(struct chat *c, struct chat_stats *out);
/* True once the read model has replayed the stream up to where it was when we subscribed. */
bool chat_ready(struct chat *c, char *reason, size_t len);
void chat_set_listener(struct chat *c, chat_listener_fn fn, void *ctx);

/* The caller of every operation below is `who` (an authenticated user). */

/* Rooms. visibility: "public" or "private". Each returns {room} where noted. */
enum ch_status chat_create_room(struct chat *c, const struct user *who, const char *name, const char *description,
                                const char *visibility, cJSON **out, struct ch_err *err);
enum ch_status chat_update_room(struct chat *c, const struct user *who, const char *room, const char *name,
                                const char *description, cJSON **out, struct ch_err *err);
enum ch_status chat_set_archived(struct chat *c, const struct user *who, const char *room, bool archived,
                                 cJSON **out, struct ch_err *err);
enum ch_status chat_join(struct chat *c, const struct user *who, const char *room, cJSON **out, struct ch_err *err);
enum ch_status chat_leave(struct chat *c, const struct user *who, const char *room, struct ch_err *err);
enum ch_status chat_add_member(struct chat *c, const struct user *who, const char *room, const char *user,
                               struct ch_err *err);
enum ch_status chat_remove_member(struct chat *c, const struct user *who, const char *room, const char *user,
                                  struct ch_err *err);
enum ch_status chat_list_members(struct chat *c, const struct user *who, const char *room, cJSON **out,
                                 struct ch_err *err);
/* {rooms: [{room, joined, unreadCount, mentionCount, memberCount, lastActivityAt}]}: joined rooms and DMs, and
 * the public rooms the user could join. */
enum ch_status chat_list_rooms(struct chat *c, const struct user *who, cJSON **out, struct ch_err *err);
/* The one DM for exactly {who} ∪ ids, created if needed (even when two processes race). */
enum ch_status chat_start_dm(struct chat *c, const struct user *who, const char *const *ids, size_t n, cJSON **out,
                             struct ch_err *err);

/* Messages. idem_key (may be NULL) makes a retried post store once. Each returns {message}. */
/* body may be empty when files are attached (asset_ids: files the author uploaded to room, at most 10). */
enum ch_status chat_post(struct chat *c, const struct user *who, const char *room, const char *body,
                         const char *const *asset_ids, size_t nassets, const char *thread_root,
                         const char *in_reply_to, const char *idem_key, cJSON **out, struct ch_err *err);
enum ch_status chat_edit(struct chat *c, const struct user *who, const char *room, const char *msg, const char *body,
                         cJSON **out, struct ch_err *err);
enum ch_status chat_delete(struct chat *c, const struct user *who, const char *room, const char *msg,
                           struct ch_err *err);
enum ch_status chat_get_message(struct chat *c, const struct user *who, const char *room, const char *msg,
                                cJSON **out, struct ch_err *err);
/* {messages: [...]} for the ids found (missing ids are skipped). */
enum ch_status chat_get_messages(struct chat *c, const struct user *who, const char *room, const char *const *ids,
                                 size_t n, cJSON **out, struct ch_err *err);
enum ch_status chat_react(struct chat *c, const struct user *who, const char *room, const char *msg,
                          const char *emoji, bool add, cJSON **out, struct ch_err *err);

/* History: {page: {events, startCursor, endCursor, hasOlder, hasNewer, includes: {users}}}. With neither before
 * nor after: the newest page. limit 1..100. */
enum ch_status chat_room_events(struct chat *c, const struct user *who, const char *room, const char *before,
                                const char *after, int limit, cJSON **out, struct ch_err *err);
enum ch_status chat_room_events_around(struct chat *c, const struct user *who, const char *room, const char *event,
                                       int limit, cJSON **out, struct ch_err *err);
/* A thread's replies, oldest first, paged like history: {root, page}. */
enum ch_status chat_thread(struct chat *c, const struct user *who, const char *room, const char *root,
                           const char *before, const char *after, int limit, cJSON **out, struct ch_err *err);

/* Read state: up to event (a message id) or, when NULL, everything. Never moves backwards. */
enum ch_status chat_mark_read(struct chat *c, const struct user *who, const char *room, const char *event,
                              cJSON **out, struct ch_err *err);

/* ListRoomAttachments: the files of the room's live messages (timeline and threads), newest first, as
 * {attachments: [{attachment, messageEventId, threadRootEventId, createdAt}], page: {totalCount, hasMore}}. */
enum ch_status chat_list_attachments(struct chat *c, const struct user *who, const char *room, int limit,
                                     int offset, cJSON **out, struct ch_err *err);

/* The public #general room exists (created once, whoever gets there first) and user joins it. */
enum ch_status chat_join_general(struct chat *c, const struct user *who, struct ch_err *err);

/* Member ids of a room (array freed with free()); false if there is no such room. Reads the model as it is (no
 * sync): for realtime fan-out, which runs on the stream's own order. */
bool chat_room_member_ids(struct chat *c, const char *room, char (**ids)[65], size_t *n);
/* Whether uid may see room now (a member). */
bool chat_is_member(struct chat *c, const char *room, const char *uid);
/* CH_OK if user uid is a member of room now, after catching up with every event acknowledged before the call (so a
 * join or a removal a moment ago counts); with to_post, also that the room is not archived. CH_ENOTFOUND for a
 * room uid may not see, CH_EPERM for a public room uid has not joined. For files: uploads and downloads. */
enum ch_status chat_check_member(struct chat *c, const char *uid, const char *room, bool to_post,
                                 struct ch_err *err);
/* For UpdateTypingIndicator: CH_OK if who may type in room (member of a room that is not archived). */
enum ch_status chat_check_typing(struct chat *c, const struct user *who, const char *room, const char *thread_root,
                                 struct ch_err *err);
/* The last event sequence this process applied (a realtime client's starting cursor). */
uint64_t chat_applied(struct chat *c);
/* The stream's last sequence when the read model subscribed: changes up to it are the start-up replay. */
uint64_t chat_replay_target(struct chat *c);

/* The directory's copy of a user (no password hash); false if not (yet) known. */
bool chat_lookup_user(struct chat *c, const char *uid, struct user *out);

/* Pin (or unpin) a message of a room: room admins and owners; not in DMs or archived rooms. Pinning returns
 * {pinnedMessage: {message, pinnedBy, pinnedAt}} (also when it was pinned already), unpinning {deleted: true}. */
enum ch_status chat_pin(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, bool pin,
                        cJSON **out, struct ch_err *err);
/* {pinnedMessages: [...newest pin first], page: {totalCount, hasMore}, latestPinMarker}. */
enum ch_status chat_list_pins(struct chat *c, const struct user *who, const char *room_id, int limit, int offset,
                              cJSON **out, struct ch_err *err);

/* Notifications (notify.c), upstream's shapes: {occurrences: [...newest first], page, unreadCount};
 * {occurrence}; delete one (absent is fine) or all of them (*deleted says how many). */
enum ch_status chat_list_notifications(struct chat *c, const struct user *who, int limit, int offset, cJSON **out,
                                       struct ch_err *err);
enum ch_status chat_mark_notification_read(struct chat *c, const struct user *who, const char *id, cJSON **out,
                                           struct ch_err *err);
enum ch_status chat_delete_notification(struct chat *c, const struct user *who, const char *id, struct ch_err *err);
enum ch_status chat_delete_all_notifications(struct chat *c, const struct user *who, size_t *deleted,
                                             struct ch_err *err);

/* Notification policies (policy.c), upstream's shapes: {roomId?, policy: {overrides, effective}} for the server
 * scope (room_id NULL or "") or a room the caller is a member of. The update sets or clears (inherit) the classes
 * named in mask (nmask 0: the classes present in overrides) to overrides' values
 * ("NOTIFICATION_DELIVERY_MODE_OFF|SILENT|ALERT"; lowerCamel or snake_case class names); errors name the field. */
enum ch_status chat_get_notification_policy(struct chat *c, const struct user *who, const char *room_id, cJSON **out,
                                            struct ch_err *err);
enum ch_status chat_update_notification_policy(struct chat *c, const struct user *who, const char *room_id,
                                               const cJSON *overrides, const char *const *mask, size_t nmask,
                                               cJSON **out, struct ch_err *err);

/* Web Push subscriptions (webpush.c): store a browser's (checked as push_subscription_check does; at most 16 per
 * account, the longest unrefreshed goes; an endpoint moves from any other account), remove one (absent is fine),
 * and send the caller a test push (one per 10 s per account: CH_ELIMIT; none subscribed or push off:
 * CH_ECONFLICT; no push service took it: CH_EUNAVAIL). */
struct chat_push_sub {
    const char *endpoint, *p256dh, *auth;
    const char *user_agent, *client_host; /* optional */
};
enum ch_status chat_push_subscribe(struct chat *c, const struct user *who, const struct chat_push_sub *sub,
                                   struct ch_err *err);
enum ch_status chat_push_unsubscribe(struct chat *c, const struct user *who, const char *endpoint,
                                     struct ch_err *err);
enum ch_status chat_push_test(struct chat *c, const struct user *who, bool *sent, struct ch_err *err);

/* Followed threads (threads.c): follow or unfollow on purpose ({following}); mark read up to a reply or all of it
 * ({unreadCount: 0}); the followed threads, newest reply first, with unread counts
 * ({threads: [{roomId, threadRootEventId, rootMessage, replyCount, unreadCount, lastActivityAt}],
 *   unreadThreadCount, page}). */
enum ch_status chat_follow_thread(struct chat *c, const struct user *who, const char *room, const char *root,
                                  bool follow, cJSON **out, struct ch_err *err);
enum ch_status chat_mark_thread_read(struct chat *c, const struct user *who, const char *room, const char *root,
                                     const char *event, cJSON **out, struct ch_err *err);
enum ch_status chat_list_followed_threads(struct chat *c, const struct user *who, int limit, int offset,
                                          cJSON **out, struct ch_err *err);

/* Calls (calls.c): a room's call, as facts on its call subject. Joining starts a call with a fresh id when none is
 * active (*started), else adds the caller (already in: nothing changes); leaving removes the caller and ends the
 * call with its last participant. Any room member may; archived rooms start no call. */
enum ch_status chat_call_join(struct chat *c, const struct user *who, const char *room, bool *started,
                              char call_id[65], struct ch_err *err);
enum ch_status chat_call_leave(struct chat *c, const struct user *who, const char *room, bool *left,
                               struct ch_err *err);
/* {call: ActiveCall} for a member of room (CH_ENOTFOUND when no call is active); {participants: [...]} (empty
 * without a call); {calls: [...]} for the rooms named (ids NULL: every room who is a member of). */
enum ch_status chat_call_get(struct chat *c, const struct user *who, const char *room, cJSON **out,
                             struct ch_err *err);
enum ch_status chat_call_participants(struct chat *c, const struct user *who, const char *room, cJSON **out,
                                      struct ch_err *err);
enum ch_status chat_call_list(struct chat *c, const struct user *who, const char *const *ids, size_t n, cJSON **out,
                              struct ch_err *err);
/* What a call token needs: who must be a member of room and a participant of its active call (CH_ECONFLICT
 * otherwise: no call, or not joined). */
struct chat_call_access {
    char call_id[65];
    bool dm;
    struct user user; /* the caller as the directory knows them (no password hash) */
};
enum ch_status chat_call_access(struct chat *c, const struct user *who, const char *room,
                                struct chat_call_access *out, struct ch_err *err);
/* What LiveKit observed (webhooks, reconciliation), for call call_id of room: a participant joined (recorded only
 * for a room member not yet in that call) or left, or the room finished (the call ends). Facts for a call that is
 * not the active one change nothing. msg_id (may be NULL) deduplicates a retried webhook in JetStream.
 * *recorded says whether a fact was written. */
enum chat_call_obs { CHAT_CALL_JOINED, CHAT_CALL_LEFT, CHAT_CALL_FINISHED };
enum ch_status chat_call_observe(struct chat *c, const char *room, const char *call_id, const char *uid,
                                 enum chat_call_obs what, const char *msg_id, bool *recorded, struct ch_err *err);
/* Every active call (for reconciliation), after catching up; free with chat_call_snapshot_free. */
struct chat_call_snap {
    char room[65], call_id[65];
    bool dm;
    int64_t started_at;
    struct {
        char user[65];
        int64_t joined_at;
    } *parts;
    size_t nparts;
};
enum ch_status chat_call_snapshot(struct chat *c, struct chat_call_snap **out, size_t *n, struct ch_err *err);
void chat_call_snapshot_free(struct chat_call_snap *s, size_t n);

/* Call fn for every @name in a Markdown body that can ping: not inside code (fenced blocks, inline spans) nor in
 * a quote (lines starting with '>'). name is not NUL-terminated; trailing '.' and '-' are not part of it. Pure. */
void chat_scan_mentions(const char *body, void (*fn)(void *ctx, const char *name, size_t len), void *ctx);

/* Who is not offline, for @here (the realtime domain knows; lib/chat does not). Set once at start-up. */
struct chat_presence_hook {
    bool (*online)(void *ctx, const char *uid); /* online, away or do-not-disturb: not offline */
    void *ctx;
};
void chat_set_presence_hook(struct chat *c, const struct chat_presence_hook *h);

/* Message search (search.c; the index itself is lib/search). The rooms a query may cover: the caller's rooms now
 * (joined rooms, private rooms and DMs they are in; never anybody else's, whatever their role), narrowed by in:
 * names (each must name one of them: CH_EINVAL otherwise) and roomId; the authors from from: logins (CH_EINVAL for
 * an unknown login) intersected with authorId. empty: the narrowing leaves nothing to search. */
struct chat_search_scope {
    char (*rooms)[65];
    char (*authors)[65];
    size_t nrooms, nauthors;
    bool empty;
};
enum ch_status chat_search_scope(struct chat *c, const struct user *who, const char *const *room_names, size_t nnames,
                                 const char *room_id, const char *const *logins, size_t nlogins, const char *author_id,
                                 struct chat_search_scope *out, struct ch_err *err);
void chat_search_scope_free(struct chat_search_scope *s);
/* Filters re-checked on every hit (exclusive time bounds in ms, 0 = none). */
struct chat_search_filter {
    int64_t after_ms, before_ms;
    bool has_attachment, is_thread;
};
/* Append to results (at most max) the hits (a provider's {messageId, roomId, bodySeq, score, snippet}) that who may
 * see now and that still are what the index matched, as {message, relevanceScore, snippet, roomId, roomName,
 * directMessage, eventId, threadRootEventId, cursor} (cursor: a GetRoomEvents cursor at the message); their authors
 * go to users (an includes map). *taken: how many were appended. */
enum ch_status chat_search_hydrate(struct chat *c, const struct user *who, const cJSON *hits,
                                   const struct chat_search_scope *s, const struct chat_search_filter *f, size_t max,
                                   cJSON *results, cJSON *users, size_t *taken, struct ch_err *err);
