/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Internals of lib/chat, shared by its files and by nobody else (chat.h is the public API): the in-memory read
 * model built from the CHATTO_EVENTS stream (model.c), its JSON views (view.c), struct chat and its lifetime
 * (chat.c), and what the command files (rooms.c dms.c messages.c reactions.c history.c reads.c realtime.c) share:
 * read-your-writes syncs (sync.c), the write path (append.c), access rules (access.c) and the eraser (eraser.c).
 *
 * Locking: struct chat_model has one rwlock. The follower thread applies events under the write lock; queries
 * take the read lock; nothing takes it across a NATS request. `applied` (events), `users_rev` and `reads_rev`
 * advance after each apply and are signalled on `cv` for read-your-writes waits.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/ids.h"
#include "base/map.h"
#include "chat/chat.h"
#include "model/user.h"
#include "store/store.h"

#define ROOM_NAME_MAX_CHARS 80
#define ROOM_NAME_MAX_BYTES 320
#define ROOM_DESC_MAX_CHARS 500
#define ROOM_DESC_MAX_BYTES 2000
#define EMOJI_MAX_BYTES 32

enum room_vis { VIS_PUBLIC = 0, VIS_PRIVATE, VIS_DM };
enum room_role { RROLE_MEMBER = 0, RROLE_ADMIN, RROLE_OWNER };

/* Ids a message or item refers to (authors, actors, thread roots, reactors, mentioned users) are interned: one
 * copy per distinct id in the model (model_intern), never freed before the model; "" when absent. A message or an
 * item holds 8 bytes per reference instead of 65. */

struct chat_reaction {
    char emoji[EMOJI_MAX_BYTES + 1];
    const char **users; /* interned */
    size_t n;
};

struct chat_msg {
    const char *author; /* interned */
    uint64_t pos; /* timeline position: the sequence of the message's first snapshot */
    int64_t created_at, edited_at, deleted_at;
    const char *thread_root; /* interned; "" if not a reply in a thread */
    const char *in_reply_to; /* interned; "" if none */
    const char **mentions;   /* interned; resolved at post time: direct mentions and @here's audience */
    size_t nmentions;
    bool mention_all, mention_here; /* @all (every member when it was posted), @here */
    bool pinned;                    /* in its room's pins */
    uint8_t nlater; /* events applied on its subject after the post (saturating; UINT8_MAX also when unknown) */
    bool touched;   /* of them, one was not an edit (a reaction, a pin; also when unknown) */
    char *attachments; /* the files, as the snapshot's JSON array of {id, filename, contentType, size, width,
                        * height}; NULL if none (or once deleted) */
    struct chat_reaction *reactions;
    size_t nreactions;
    uint64_t *body_seqs; /* stream messages that hold a body of this message (erased when it is deleted), the
                          * current one last; while there is one, &body_one. The body itself is in the body cache
                          * (bodies.c) or fetched from the stream by the last one */
    size_t nbody;
    uint64_t body_one;
    uint32_t reply_count; /* as a thread root: live replies */
    int64_t last_reply_at;
    uint64_t last_seq; /* last event on the message's subject (compare-and-set for edits and deletes) */
    bool known;        /* a snapshot or tombstone was applied (reactions may arrive first during a replay) */
    bool refused;      /* a post the stream order makes invalid (author no longer a member, room archived):
                        * every process ignores it and its later events; its bytes are erased */
    _Atomic uint32_t held_until; /* a command needs it (chat_msg_ensure) or it was brought back from the cold
                                  * timeline: kept in memory until then (monotonic seconds), even while posts pour
                                  * in (set under either lock) */
    char id[];         /* allocated to its length */
};

enum item_kind {
    IT_MSG,
    IT_ROOM_CREATED,
    IT_ROOM_UPDATED,
    IT_ROOM_ARCHIVED,
    IT_ROOM_UNARCHIVED,
    IT_JOINED,
    IT_LEFT,
    IT_CALL_STARTED,
    IT_CALL_ENDED
};

/* One entry of a room's timeline (messages and room events, not thread replies). */
struct chat_item {
    uint64_t pos;
    enum item_kind kind;
    const char *id;           /* IT_MSG: the message's own; else interned */
    const char *actor;        /* interned */
    const char *subject_user; /* interned; joined/left: who; call started/ended: the call's id; else "" */
    int64_t at;
    struct chat_msg *msg; /* IT_MSG; owned by the room's msgs map */
};

struct chat_member {
    char user[ID_MAX + 1];
    enum room_role role;
    int64_t joined_at;
    uint64_t last_read; /* position read up to */
    uint64_t seq;       /* last event on this member's subject */
};

/* Messages out of memory (core.resident_messages): positions (the stream sequence of their post), sorted, as
 * offsets from base (one that does not fit stays in memory); their authors as indexes of the model's author table,
 * for unread counts. 8 bytes each. A rich one, whose post is not all there is (reactions, a pin undone came after
 * it: model.c msg_coldable), is brought back from the events on its subject up to the last one, which `later`
 * holds (its distance from the post, with COLD_LATER_ONE when it is the only one; 0 for a plain one): once a list
 * has one, 4 bytes more each. */
struct cold_list {
    uint64_t base;
    uint32_t *off;
    uint32_t *author;
    uint32_t *later; /* NULL until a rich entry comes */
    size_t n, cap;
};
#define COLD_LATER_ONE 0x80000000u

struct seqlist {
    struct chat_msg **v; /* sorted by pos */
    size_t n, cap;
    /* a thread's replies only: the plain ones of a quiet thread out of memory (cold), disjoint from v; settled
     * once an eviction pass left nothing it could move (until a reply comes or one is brought back) */
    struct cold_list cold;
    bool settled;
};

#define PINS_MAX 100 /* pinned messages per room */
struct chat_pin {
    struct chat_msg *msg; /* owned by the room's msgs map */
    int64_t at;
    char by[ID_MAX + 1];
};

#define CALL_PARTS_MAX 500 /* people in one call */
struct chat_call_part {
    char user[ID_MAX + 1];
    int64_t joined_at;
};
/* A room's call (calls.c writes its facts; model.c applies them). id "" when no call is active. */
struct chat_call {
    char id[ID_MAX + 1];
    char started_by[ID_MAX + 1];
    int64_t started_at;
    struct chat_call_part *parts;
    size_t nparts;
};

struct chat_room {
    char id[ID_MAX + 1];
    char name[ROOM_NAME_MAX_BYTES + 1];
    char description[ROOM_DESC_MAX_BYTES + 1];
    enum room_vis vis;
    bool archived;
    bool exists; /* room.created applied */
    int64_t created_at;
    char created_by[ID_MAX + 1];
    char dm_key[65];
    uint64_t room_seq; /* last event on the room subject */
    struct map *members; /* user id -> chat_member */
    struct map *msgs;    /* msg id -> chat_msg */
    struct map *threads; /* root id -> struct seqlist of replies */
    struct seqlist mentioned; /* messages with mentions (timeline and threads) */
    struct chat_item **tl;
    size_t ntl, captl;
    int64_t last_activity; /* ms of the newest message */
    struct chat_pin *pins; /* in pin order (the newest last) */
    size_t npins;
    uint64_t pin_seq; /* the last pin event applied (ListPinnedMessages' latestPinMarker) */
    struct chat_call call;
    uint64_t call_seq; /* last event on the room's call subject (compare-and-set for call facts) */
    /* The cold timeline (core.resident_messages): plain top-level messages no longer in memory (model_cold_pos
     * reads a position); cold thread replies are in their thread's seqlist, thread_cold counts them */
    struct cold_list cold;
    size_t thread_cold;
    size_t evict_kept; /* timeline items before the resident window the last eviction pass had to keep ... */
    size_t evict_held; /* ... of them, those only held for a moment (held_until): a sweep looks again */
    size_t evict_scan; /* the timeline items before this one are kept for good: a pass starts here */
};

/* bodies.c: message bodies, a bounded cache by stream sequence (the model holds none). Any thread. */
struct body_cache;
struct body_cache_stats {
    size_t bytes, entries, max; /* (hits and fetches are metrics: chatto_message_body_*) */
};
struct body_cache *body_cache_new(size_t max_bytes);
void body_cache_free(struct body_cache *bc);
/* Keep a copy of body (the snapshot at seq), the least recently used out first; bodies over the limit are not kept. */
void body_cache_put(struct body_cache *bc, uint64_t seq, const char *body, size_t len);
/* The same, unless a drop happened since gen was read (then false, nothing kept). */
bool body_cache_put_if(struct body_cache *bc, uint64_t gen, uint64_t seq, const char *body, size_t len);
/* Add {name: body} to o when seq is cached (o NULL: only look). */
bool body_cache_add_to(struct body_cache *bc, uint64_t seq, cJSON *o, const char *name);
/* A copy of the cached body (caller frees), NULL on a miss. */
char *body_cache_dup(struct body_cache *bc, uint64_t seq);
/* Forget seq's body, zeroing its bytes, and move the drop generation (model write-locked: deletes). */
void body_cache_drop(struct body_cache *bc, uint64_t seq);
uint64_t body_cache_gen(struct body_cache *bc);
size_t body_cache_max(const struct body_cache *bc); /* its size limit (read-only) */
void body_cache_stats(struct body_cache *bc, struct body_cache_stats *out);

/* Bodies a view could not take from the cache: rendered under the model lock, fetched after it (chat_bodies_fill). */
struct body_want {
    cJSON *obj; /* a Message view: gets "body" */
    uint64_t seq;
};
struct body_fill {
    struct body_want *v;
    size_t n, cap;
    uint64_t gen; /* the cache's drop generation when the first was wanted (model read-locked) */
    bool failed;  /* out of memory */
};
/* Model read-locked. */
void body_fill_want(struct body_fill *f, struct body_cache *bc, cJSON *obj, uint64_t seq);
void body_fill_free(struct body_fill *f);

struct chat_model {
    pthread_rwlock_t lock;
    struct body_cache *bodies; /* set at creation, read-only after */
    struct map *rooms;   /* id -> chat_room */
    struct map *dms;     /* dm key -> room id (borrowed from the room) */
    struct map *users;   /* id -> struct user (password hash cleared) */
    struct map *logins;  /* login -> user id (borrowed) */
    struct map *pending_reads; /* "uid.room" -> uint64 pos, for reads seen before the member */
    struct map *interned;      /* id -> its one copy (model_intern) */
    size_t resident;           /* top-level messages per room kept in memory at least (0: all); set before use */
    int64_t idle_ms;           /* ... in a room with a new one in this long; MODEL_IDLE_WINDOW in the others; and
                                * a thread without a reply for this long keeps no plain reply in memory */
    int64_t threads_swept_ms;  /* when the sweep last looked at threads (the eraser thread only) */
    const char **authors;      /* the author table of cold timelines: interned ids ... */
    size_t nauthors, capauthors;
    struct map *author_ix;     /* ... and interned id -> its index + 1 */

    /* seqs of bodies that belong to deleted messages and may still be on disk (a deleter crashed before erasing) */
    uint64_t *erase;
    size_t nerase, caperase;

    pthread_mutex_t mu; /* guards the progress fields and the waiters */
    pthread_cond_t cv;  /* (unused by waits: each waiter has its own, so an apply wakes only those it satisfies) */
    struct model_waiter *waiters;
    uint64_t applied, users_rev, reads_rev;
    uint64_t state_seq; /* the last event applied to the state (under the write lock; read under either) */
    bool quiet;         /* a restore replays old events of a message: nobody's news (under the write lock) */
    bool users_loaded, reads_loaded;

    chat_listener_fn listener;
    void *listener_ctx;
    _Atomic uint64_t replay_target; /* the follower's start-up target (chat.c sets it; 0 until attached) */
    atomic_bool live;               /* an event past the replay was applied (model.c news(), under the lock) */
    struct chat_asset_hooks assets; /* set once before the follower starts; read-only after */
    atomic_ulong bad_events;
};

/* cache_bytes: the body cache's size (core.cache_size). */
struct chat_model *chat_model_new(size_t cache_bytes);
void chat_model_free(struct chat_model *m);
/* Apply one event of the stream (follower thread). With need (ID_MAX + 1 bytes) given, an event about a message of
 * the cold timeline (an edit, a delete, a reaction, a pin, a reply to it) is not applied: false, and need names
 * the message, to bring back with chat_model_restore before applying the event again (need NULL: apply anyway). */
bool chat_model_apply(struct chat_model *m, uint64_t seq, const char *subject, const char *data, size_t len,
                      int64_t ms, char *need);
/* An event read back from the stream. */
struct chat_event_ref {
    uint64_t seq;
    const char *data;
    size_t len;
};
/* Bring a message of the cold timeline back into memory from the first event on its subject still in the stream
 * (at seq: its post, or an edit when that erased the post: a whole snapshot with the post's position) and, for a
 * rich one, the later events on its subject (in stream order; those the model has not applied yet are skipped: the
 * follower applies them): true if it was cold and now is not. Any thread; takes the write lock. */
bool chat_model_restore(struct chat_model *m, uint64_t seq, const char *subject, const char *data, size_t len,
                        const struct chat_event_ref *later, size_t nlater);
/* Keep resident top-level messages per room in memory (0: all); before the model is used. */
void chat_model_set_resident(struct chat_model *m, size_t resident);
/* A room without a new top-level message for idle_ms keeps only MODEL_IDLE_WINDOW of them (0: never shrinks). */
void chat_model_set_idle(struct chat_model *m, int64_t idle_ms);
#define MODEL_IDLE_WINDOW 50 /* one page of the web client */
/* Until when a message used now (for_long: brought back from the cold timeline) stays in memory (held_until). */
uint32_t model_hold_until(bool for_long);
/* Move what may leave memory to the cold timelines, in rooms no post has visited since their messages' holds
 * ended (the eraser thread, every few seconds). */
void chat_model_sweep(struct chat_model *m);
/* The position of r's cold timeline entry i. */
static inline uint64_t
model_cold_pos(const struct chat_room *r, size_t i)
{
    return r->cold.base + r->cold.off[i];
}
/* Index of the first cold timeline entry with pos > p (binary search). */
size_t model_cold_after(const struct chat_room *r, uint64_t p);
/* The same for any cold list (a thread's). */
static inline uint64_t
cold_list_pos(const struct cold_list *c, size_t i)
{
    return c->base + c->off[i];
}
size_t cold_list_after(const struct cold_list *c, uint64_t p);
/* Whether entry i's post alone does not show it (rich), and the last event on its subject (its post's if plain). */
static inline bool
cold_list_rich(const struct cold_list *c, size_t i)
{
    return c->later && c->later[i];
}
static inline uint64_t
cold_list_last(const struct cold_list *c, size_t i)
{
    return cold_list_pos(c, i) + (c->later ? c->later[i] & ~COLD_LATER_ONE : 0);
}
/* ... and whether that last one is the only event after the post. */
static inline bool
cold_list_one(const struct cold_list *c, size_t i)
{
    return c->later && (c->later[i] & COLD_LATER_ONE);
}
/* The last event on the subject of the cold entry at seq (in its room's timeline, or of the thread its post data
 * names) when it is rich, else 0; *one: it is the only event after the post. Takes the read lock. */
uint64_t chat_model_cold_last(struct chat_model *m, uint64_t seq, const char *subject, const char *data, size_t len,
                              bool *one);
/* Append to a thread's cold replies (the snapshot loader: in order; base is the root's position; later as in
 * struct cold_list). */
bool model_thread_cold_append(struct chat_room *r, struct seqlist *l, uint64_t base, uint64_t pos, uint32_t author,
                              uint32_t later);
/* The author table index of an interned id, UINT32_MAX if it has none (no cold message by them). */
uint32_t model_author_find(const struct chat_model *m, const char *id);
/* ... and the same, adding it (write lock); UINT32_MAX when out of memory. */
uint32_t model_author_index(struct chat_model *m, const char *interned);
/* Append to r's cold timeline (the snapshot loader: in order). */
bool model_cold_append(struct chat_room *r, uint64_t pos, uint32_t author, uint32_t later);
/* Users directory and read positions (watcher threads). id/key NULL = "initial values done". */
void chat_model_user(struct chat_model *m, const char *id, const char *json, size_t len, uint64_t rev);
void chat_model_read(struct chat_model *m, const char *key, const char *val, size_t len, uint64_t rev);
/* Wait until the events (resp. users, reads) applied reach at least seq; false on timeout. */
bool chat_model_wait(struct chat_model *m, uint64_t seq, int64_t timeout_ms);
bool chat_model_wait_users(struct chat_model *m, uint64_t rev, int64_t timeout_ms);
bool chat_model_wait_reads(struct chat_model *m, uint64_t rev, int64_t timeout_ms);
uint64_t chat_model_applied(struct chat_model *m);
/* Take the erase backlog (caller frees *v). */
void chat_model_take_erasures(struct chat_model *m, uint64_t **v, size_t *n);

/* Builders for the model's owner and the snapshot loader (write lock, or a model nobody else sees yet). */
struct chat_room *model_room_get_or_new(struct chat_model *m, const char *id);
struct chat_msg *model_msg_get_or_new(struct chat_room *r, const char *id);
struct chat_item *model_tl_insert(struct chat_room *r, uint64_t pos, enum item_kind kind);
bool model_seqlist_insert(struct seqlist *l, struct chat_msg *msg);
/* Append without keeping the order (a loader that sorts afterwards). */
bool model_seqlist_append(struct seqlist *l, struct chat_msg *msg);
/* Take over from's rooms (a snapshot's state up to event seq) into m, which has applied no event yet: read
 * positions that arrived meanwhile are applied, waiters woken. from is left empty (free it). */
void chat_model_adopt(struct chat_model *m, struct chat_model *from, uint64_t seq);

/* snapshot.c: read-model snapshots in the object store PROJECTION_SNAPSHOTS. */
/* The model's state in the snapshot format (model read-locked): *seq is the last event it holds. */
enum ch_status snapshot_encode(struct chat_model *m, unsigned char **out, size_t *len, uint64_t *seq,
                               struct ch_err *err);
/* A model from the snapshot format (a new model, no bodies cached); *seq its last event. */
enum ch_status snapshot_decode(const unsigned char *buf, size_t len, struct chat_model **out, uint64_t *seq,
                               struct ch_err *err);

/* Lookups; caller holds the lock. */
struct chat_room *model_room(struct chat_model *m, const char *id);
struct chat_member *model_member(struct chat_room *r, const char *uid);
struct chat_msg *model_msg(struct chat_room *r, const char *id);
/* The model's one copy of id ("" for NULL, empty or invalid ids); NULL only when out of memory. Write lock. */
const char *model_intern(struct chat_model *m, const char *id);
const struct user *model_user(struct chat_model *m, const char *id);
/* Index of the first timeline item with pos > p (binary search). */
size_t model_tl_after(const struct chat_room *r, uint64_t p);
size_t seqlist_after(const struct seqlist *l, uint64_t p);

/* Views (view.c); caller holds the lock. `viewer` decides hasReacted. */
cJSON *view_room(const struct chat_room *r);
/* A body that is not cached is added to bf for chat_bodies_fill (bf NULL: left out). */
cJSON *view_message(const struct chat_model *m, const struct chat_msg *msg, const char *room_id, const char *viewer,
                    struct body_fill *bf);
cJSON *view_item(const struct chat_model *m, const struct chat_item *it, const char *room_id, const char *viewer,
                 struct body_fill *bf);
cJSON *view_user(const struct chat_model *m, const char *id);
/* upstream's ActiveCall {room, callId, participants: [{user, joinedAt, callId}]} (plus startedAt, startedBy);
 * NULL when r has no active call. */
cJSON *view_call(const struct chat_model *m, const struct chat_room *r);
/* MessageAttachment views of a snapshot's attachments JSON into arr, with URLs for viewer. */
void view_attachments(const struct chat_model *m, cJSON *arr, const char *json, const char *viewer);
/* Add users {id: User} for ids to includes (deduplicated). */
void view_include_user(const struct chat_model *m, cJSON *users, const char *id);

const char *room_role_str(enum room_role r);
/* {name: v}; takes v. */
cJSON *view_wrap(const char *name, cJSON *v);
/* Add upstream's PageInfo {totalCount, hasMore} to o for shown items from offset out of total. */
void view_add_page(cJSON *o, size_t total, size_t offset, size_t shown);

/* ---- struct chat and what the command files share ---- */

struct store_follower;
struct store_pub_opts;
struct store_watch;

/* Attempts of a compare-and-set write (expected subject sequence or KV revision) before the loss is returned. */
#define CAS_RETRIES 10

/* Coalesces "what is the last sequence?" requests: a caller needs an answer to a request sent after it arrived,
 * so it waits for the next round to start; everyone waiting shares that round's single NATS request. */
struct syncer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t started, done; /* rounds */
    bool busy;
    uint64_t result;
    enum ch_status status;
    struct ch_err err;
};

struct notif_event; /* notify.c */

struct chat {
    struct syncer sync_ev, sync_reads, sync_users;
    struct store *store;
    struct chat_model *m;
    struct store_follower *follower;
    struct store_watch *users_w, *reads_w;
    int64_t edit_window_ms, timeout_ms;
    struct chat_presence_hook presence; /* set once at start-up */
    struct pusher *pusher;              /* Web Push (webpush.c); NULL while off. Set once at start-up */
    struct {
        pthread_t thread;
        pthread_mutex_t mu; /* guards stop and the feed */
        pthread_cond_t cv;
        bool stop, running, inited;
        bool pull; /* set before the thread starts: may deliver (else only make sure the position exists) */
        atomic_bool consumer; /* the notifier's position exists (ready: what is posted from now on is notified) */
        /* the feed (notify.c): while this process holds the lease "notifier", the follower hands it the message
         * events that may notify, from fed_from on; fed_upto is the last event the follower passed */
        atomic_bool armed; /* chat_start_notifications: the pusher (if any) is set; deliver from now on */
        atomic_bool feeding;
        struct notif_event *fed;
        size_t fed_head, fed_n, fed_cap;
        uint64_t fed_from, fed_upto;
        uint64_t fed_drops; /* times the feed overflowed */
    } notifier;
    struct {
        pthread_t thread;
        pthread_mutex_t mu; /* guards stop */
        pthread_cond_t cv;
        bool stop;
        bool running; /* main thread only (eraser_start/eraser_stop) */
    } eraser;
    struct {
        bool enabled;          /* set before the follower starts; read-only after */
        uint64_t every;        /* events between snapshots */
        int64_t retention_ms;  /* the object store's age limit */
        char holder[160];      /* this process, for the lease */
        pthread_t thread;
        pthread_mutex_t mu;    /* guards the fields below (chat_new/chat_free make and destroy it: the loader
                                * uses it on the keeper thread, before the writer starts and until the follower
                                * stopped) */
        pthread_cond_t cv;
        bool stop, running;
        bool known;            /* last_seq/last_ms say what the store holds (or held when we wrote) */
        uint64_t last_seq;     /* the newest snapshot's event (0: none) */
        int64_t last_ms;       /* ... and when it was written */
    } snap;
};

/* notify.c: notifications. Causes, strongest first (one entry per person: the strongest cause that reached them and
 * that their policy does not turn off). */
enum notif_cause { NC_MENTION, NC_DM, NC_HERE, NC_ALL, NC_REPLY, NC_THREAD, NC_REACTION, NC_COUNT };
struct notif_job {
    char room[ID_MAX + 1], event[ID_MAX + 1], root[ID_MAX + 1], actor[ID_MAX + 1];
    char emoji[EMOJI_MAX_BYTES + 1];
    char preview[420]; /* at most 100 characters of the body */
    int64_t at;        /* the event's time (the entries' ids follow it) */
    struct {
        char uid[ID_MAX + 1];
        unsigned causes; /* 1 << enum notif_cause, each cause that reached them */
    } *to;
    size_t n, cap;
};
struct notif_job *notif_job_new(const char *room, const char *event, const char *thread_root, const char *actor,
                                int64_t at, const char *body, const char *emoji);
/* Set the job's preview: at most 100 characters of body, one line. */
void notif_job_preview(struct notif_job *j, const char *body);
/* Add a recipient and a cause that reached them (the actor is skipped). */
void notif_job_add(struct notif_job *j, const char *uid, int cause);
void notif_job_free(struct notif_job *j);
enum ch_status notifier_start(struct chat *c, struct ch_err *err);
void notifier_stop(struct chat *c);
void notifier_destroy(struct chat *c); /* after the follower stopped */
/* Follower thread, after the model applied the event: hand it to the notifier if this process is the one. */
void notifier_feed(struct chat *c, uint64_t seq, const char *subject, const char *data, size_t len, int64_t ms);

/* policy.c: delivery modes per signal class (upstream's NotificationDeliveryMode; NM_INHERIT only in overrides). */
enum notif_mode { NM_INHERIT = 0, NM_OFF, NM_SILENT, NM_ALERT };
enum notif_class { NK_DM, NK_MENTION, NK_REPLY, NK_ROLE, NK_HERE, NK_ALL, NK_THREAD, NK_ROOM, NK_REACTION, NK_COUNT };
/* uid's effective mode per class in room (NULL: server-wide); the product defaults if the policy cannot be read.
 * Makes a NATS request: notifier thread. */
void notif_policy_modes(struct chat *c, const char *uid, const char *room, enum notif_mode out[NK_COUNT]);

/* webpush.c: Web Push. Queue one push for each of uid's subscribed browsers (payload is JSON, taken; at: when the
 * activity happened, for the delivery window). A no-op when push is off. */
void pusher_enqueue(struct chat *c, const char *uid, char *payload, int64_t at);
void pusher_stop(struct chat *c);

/* threads.c: uids follow the thread room/root unless they unfollowed it on purpose (best effort). */
void chat_thread_autofollow(struct chat *c, const char *room, const char *root, const char *const *uids, size_t n);

/* sync.c: initialise / destroy the three syncers (chat_new / chat_free). */
void sync_init(struct chat *c);
void sync_destroy(struct chat *c);
/* Everything acknowledged before the call (events; read positions; users) is in our model on CH_OK;
 * CH_EUNAVAIL when the model does not catch up within timeout_ms. Never with the model lock held. */
enum ch_status sync_events(struct chat *c, struct ch_err *err);
enum ch_status sync_reads(struct chat *c, struct ch_err *err);
enum ch_status sync_users(struct chat *c, struct ch_err *err);

/* snapshot.c: the follower's prepare hook that loads the newest snapshot (NULL when snapshots are off); start and
 * stop the thread that writes them (chat_new/chat_free). */
store_follow_prepare_fn snapshot_loader(struct chat *c);
enum ch_status snapshot_start(struct chat *c, struct ch_err *err);
void snapshot_stop(struct chat *c);

/* eraser.c: start the eraser thread (chat_new) / stop and join it (chat_free; fine if it never started). */
enum ch_status eraser_start(struct chat *c, struct ch_err *err);
void eraser_stop(struct chat *c);

/* append.c: a new event {type, id, actor, at} (the caller's; chat_append consumes it). who may be NULL. */
cJSON *chat_event_new(const char *type, const struct user *who);
/* Publish ev (consumed) on subject with o's expectations, then wait until our model applied it. *seq (may be
 * NULL) is its stream sequence. CH_ECONFLICT when an expectation failed (re-read and retry). */
enum ch_status chat_append(struct chat *c, const char *subject, cJSON *ev, const struct store_pub_opts *o,
                           uint64_t *seq, bool *dup, struct ch_err *err);

/* access.c (model read-locked for the room lookups). */
/* A server admin or owner. */
bool chat_is_staff(const struct user *u);
/* The room (and who's membership, NULL if none) if who may see it: CH_ENOTFOUND for a missing room or a private
 * one who is not in; CH_EPERM if must_be_member and who is not in. */
enum ch_status chat_room_access(struct chat *c, const char *room_id, const struct user *who, bool must_be_member,
                                struct chat_room **r, struct chat_member **cm, struct ch_err *err);
/* The verdict alone: chat_room_access with must_be_member under the model's read lock (the caller holds no lock);
 * with to_post, also CH_ECONFLICT for an archived room. */
enum ch_status chat_room_check(struct chat *c, const char *room_id, const struct user *who, bool to_post,
                               struct ch_err *err);
/* Staff, or an admin or owner of the room. */
bool chat_room_admin(const struct chat_member *cm, const struct user *who);
/* id_check, except that NULL or "" is fine (an optional id). */
enum ch_status chat_id_or_empty(const char *field, const char *v, struct ch_err *err);

/* calls.c: someone who left (or was removed from) a room leaves its call too (best effort, logged). */
void chat_call_drop(struct chat *c, const char *room, const char *uid);

/* bodies.c: the body of message msg_id in room_id as the snapshot at seq holds it (caller frees); CH_ENOTFOUND when
 * it was erased. One NATS round trip: no lock held. */
enum ch_status chat_body_fetch(struct chat *c, uint64_t seq, const char *room_id, const char *msg_id, char **body,
                               struct ch_err *err);
/* Fetch every body f wants into its view (one gone since is left out), keep them in the cache unless a delete
 * happened meanwhile, and empty f. No lock held. */
enum ch_status chat_bodies_fill(struct chat *c, struct body_fill *f, struct ch_err *err);
/* Bring the body at seq into the cache unless it is there (best effort; gen as read under the model lock). */
void chat_body_warm(struct chat *c, uint64_t gen, uint64_t seq, const char *room_id, const char *msg_id);
/* The end of a read that rendered *out under the lock with st: on CH_OK fill the bodies (on failure *out is freed
 * and NULL), else only free f. Returns the status to answer with. */
enum ch_status chat_bodies_finish(struct chat *c, struct body_fill *f, enum ch_status st, cJSON **out,
                                  struct ch_err *err);

/* cold.c: the cold timeline. Bring msg_id of room_id back into memory from its post, and a rich one from the later
 * events on its subject too (CH_ENOTFOUND: no post on its subject). NATS round trips: no lock held. */
enum ch_status chat_cold_restore(struct chat *c, const char *room_id, const char *msg_id, struct ch_err *err);
/* The same, with its post (at seq on subject) read already (a page's), and maybe its last event (last_ev, NULL if
 * not: read here when needed). */
enum ch_status chat_cold_restore_post(struct chat *c, uint64_t seq, const char *subject, const char *data, size_t len,
                                      const struct chat_event_ref *last_ev, struct ch_err *err);
/* Before a command looks msg_id up in the model: bring it back if it is on the cold timeline (CH_OK also when it is
 * not there at all: the lookup then says so); either way it stays in memory for a while. No lock held. */
enum ch_status chat_msg_ensure(struct chat *c, const char *room_id, const char *msg_id, struct ch_err *err);
/* The timeline item (view_item's shape) of the cold message posted at pos, from that post's event data; its author
 * is added to users (may be NULL). NULL if data is not a post. Model read-locked. */
cJSON *chat_cold_view(const struct chat_model *m, const char *room_id, uint64_t pos, const char *data, size_t len,
                      const char *viewer, cJSON *users);

/* rooms.c: hex BLAKE2b-256 of s (room-name and DM keys). */
void chat_hash_hex(const char *s, char out[65]);
/* messages.c: {message} as who sees it, from the model as it is (no sync); CH_ENOTFOUND if it is gone. */
enum ch_status chat_message_out(struct chat *c, const struct user *who, const char *room_id, const char *msg_id,
                                cJSON **out, struct ch_err *err);
/* reads.c: unread messages (by others, top level) and mentions of cm's user after cm's read position.
 * Model read-locked. */
void chat_unread_counts(const struct chat_model *m, const struct chat_room *r, const struct chat_member *cm,
                        size_t *unread, size_t *mentions);
