/* SPDX-License-Identifier: MIT */
/*
 * The chat core's lifetime and its feeds: chat_new starts the read model's follower on CHATTO_EVENTS, the two KV
 * watchers (users, read positions) and the eraser; chat_free stops them. The feed callbacks only hand what they
 * get to the model (model.c). Also readiness, the realtime listener and the directory lookup.
 *
 * The commands live beside this file, one concern each: rooms.c dms.c messages.c reactions.c history.c reads.c
 * realtime.c, on top of sync.c (read-your-writes), append.c (the write path) and access.c (who may do what).
 * Subjects: one per room, member and message (store/subject.h builds them).
 * Still here, until they move into files of their own: messages, reactions, history, reads, realtime.
 *
 * Threads: chat_new/chat_free on the main thread; the callbacks on the store's follower and watcher threads;
 * the rest on HTTP worker threads.
 */
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"
#include "store/subject.h"

/* ---- feeding the model ---- */

static void
on_event(void *ctx, uint64_t seq, const char *subject, const char *data, size_t len, int64_t ms)
{
    chat_model_apply(((struct chat *)ctx)->m, seq, subject, data, len, ms);
}

static void
on_user(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    chat_model_user(((struct chat *)ctx)->m, key, val, len, rev);
}

static void
on_read(void *ctx, const char *key, const char *val, size_t len, uint64_t rev)
{
    chat_model_read(((struct chat *)ctx)->m, key, val, len, rev);
}

enum ch_status
chat_new(const struct chat_opts *o, struct chat **out, struct ch_err *err)
{
    struct chat *c = calloc(1, sizeof *c);
    enum ch_status st;

    if (!c || !(c->m = chat_model_new())) {
        free(c);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    c->store = o->store;
    c->edit_window_ms = o->edit_window_ms;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    sync_init(c);
    if ((st = store_kv_watch(c->store, STORE_B_USERS, ">", on_user, c, &c->users_w, err)) != CH_OK ||
        (st = store_kv_watch(c->store, STORE_B_READS, ">", on_read, c, &c->reads_w, err)) != CH_OK ||
        (st = store_follow(c->store, STORE_S_EVENTS, on_event, c, &c->follower, err)) != CH_OK) {
        chat_free(c);
        return st;
    }
    if ((st = eraser_start(c, err)) != CH_OK) {
        chat_free(c);
        return st;
    }
    *out = c;
    return CH_OK;
}

void
chat_free(struct chat *c)
{
    if (!c)
        return;
    eraser_stop(c);
    store_follower_stop(c->follower);
    store_kv_watch_stop(c->users_w);
    store_kv_watch_stop(c->reads_w);
    chat_model_free(c->m);
    sync_destroy(c);
    free(c);
}

void
chat_set_listener(struct chat *c, chat_listener_fn fn, void *ctx)
{
    pthread_rwlock_wrlock(&c->m->lock);
    c->m->listener = fn;
    c->m->listener_ctx = ctx;
    pthread_rwlock_unlock(&c->m->lock);
}

bool
chat_ready(struct chat *c, char *reason, size_t len)
{
    if (!store_follower_attached(c->follower)) {
        snprintf(reason, len, "read model not subscribed yet");
        return false;
    }
    uint64_t target = store_follower_target(c->follower), applied = chat_model_applied(c->m);
    if (applied < target) {
        snprintf(reason, len, "replaying history (%" PRIu64 " of %" PRIu64 ")", applied, target);
        return false;
    }
    pthread_mutex_lock(&c->m->mu);
    bool loaded = c->m->users_loaded && c->m->reads_loaded;
    pthread_mutex_unlock(&c->m->mu);
    if (!loaded) {
        snprintf(reason, len, "loading users and read positions");
        return false;
    }
    return true;
}

bool
chat_lookup_user(struct chat *c, const char *uid, struct user *out)
{
    const struct user *u;
    bool found;

    pthread_rwlock_rdlock(&c->m->lock);
    u = model_user(c->m, uid);
    if ((found = u != NULL))
        *out = *u;
    pthread_rwlock_unlock(&c->m->lock);
    return found;
}

/* ==== messages ==== */

#define BODY_MAX 10000

/* ---- validation and mentions ---- */

static enum ch_status
check_body(const char *body, struct ch_err *err)
{
    size_t n = strlen(body);

    if (n == 0)
        return ch_err_set(err, CH_EINVAL, "body", "must not be empty");
    if (n > BODY_MAX)
        return ch_err_set(err, CH_EINVAL, "body", "must be at most %d bytes, got %zu", BODY_MAX, n);
    if (!utf8_valid(body, n))
        return ch_err_set(err, CH_EINVAL, "body", "not valid UTF-8");
    bool blank = true;
    for (const char *p = body; *p && blank; p++)
        blank = isspace((unsigned char)*p);
    if (blank)
        return ch_err_set(err, CH_EINVAL, "body", "must not be blank");
    return CH_OK;
}

/* The user ids @mentioned in body; *unknown counts @names that match no user (yet). Model read-locked. */
static size_t
parse_mentions(struct chat *c, const char *body, char (*out)[65], size_t max, size_t *unknown)
{
    size_t n = 0;

    for (const char *p = body; *p && n < max; p++) {
        char login[USER_LOGIN_MAX + 2];
        size_t k = 0;

        if (*p != '@' || (p > body && (isalnum((unsigned char)p[-1]) || strchr("_.-", p[-1]))))
            continue;
        for (const char *q = p + 1; *q && (isalnum((unsigned char)*q) || strchr("_.-", *q)) && k <= USER_LOGIN_MAX;
             q++)
            login[k++] = (char)tolower((unsigned char)*q);
        while (k > 0 && (login[k - 1] == '.' || login[k - 1] == '-'))
            k--; /* "@bob." ends a sentence */
        if (k == 0 || k > USER_LOGIN_MAX)
            continue;
        login[k] = '\0';
        const char *id = map_get(c->m->logins, login);
        if (!id) {
            (*unknown)++;
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = !strcmp(out[i], id);
        if (!dup)
            snprintf(out[n++], 65, "%s", id);
    }
    return n;
}

size_t
chat_parse_mentions(struct chat *c, const char *body, char (*out)[65], size_t max)
{
    size_t unknown = 0;

    return parse_mentions(c, body, out, max, &unknown);
}

/* ---- messages ---- */

/* The message id for an idempotency key: the same key from the same user always names the same message. */
static void
idem_id(const char *uid, const char *key, char out[ID_LEN + 1])
{
    static const char alpha[] = "0123456789abcdefghjkmnpqrstvwxyz";
    unsigned char h[ID_LEN];
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)uid, strlen(uid));
    crypto_generichash_update(&st, (const unsigned char *)":", 1);
    crypto_generichash_update(&st, (const unsigned char *)key, strlen(key));
    crypto_generichash_final(&st, h, sizeof h);
    for (int i = 0; i < ID_LEN; i++)
        out[i] = alpha[h[i] & 31];
    out[ID_LEN] = '\0';
}

static void
add_snapshot(cJSON *msg, const char *id, const char *author, int64_t created, const char *body,
             const char *thread_root, const char *in_reply_to, char (*mentions)[65], size_t nm)
{
    cJSON *arr;

    cJSON_AddStringToObject(msg, "id", id);
    cJSON_AddStringToObject(msg, "author", author);
    cJSON_AddNumberToObject(msg, "createdAt", (double)created);
    cJSON_AddStringToObject(msg, "body", body);
    if (thread_root && *thread_root)
        cJSON_AddStringToObject(msg, "threadRoot", thread_root);
    if (in_reply_to && *in_reply_to)
        cJSON_AddStringToObject(msg, "inReplyTo", in_reply_to);
    arr = cJSON_AddArrayToObject(msg, "mentions");
    for (size_t i = 0; i < nm; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(mentions[i]));
}

enum ch_status
chat_message_out(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, cJSON **out,
                 struct ch_err *err)
{
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    struct chat_msg *msg = model_msg(r, msg_id);
    *out = msg ? view_wrap("message", view_message(msg, room_id, who->id)) : NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return *out ? CH_OK : ch_err_set(err, CH_ENOTFOUND, "eventId", "no such message");
}

/* May who post this in room_id, per this process's model? Also resolves the mentions; *unknown counts @names
 * that match nobody (such a user may have registered a moment ago through another process). */
static enum ch_status
post_check(struct chat *c, const struct user *who, const char *room_id, const char *body, const char *thread_root,
           const char *in_reply_to, char (*mentions)[65], size_t *nm, size_t *unknown, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    *unknown = 0;
    pthread_rwlock_rdlock(&c->m->lock);
    st = chat_room_access(c, room_id, who, true, &r, &cm, err);
    if (st == CH_OK && r->archived)
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
    if (st == CH_OK && thread_root && *thread_root) {
        struct chat_msg *root = model_msg(r, thread_root);
        if (!root || root->deleted_at)
            st = ch_err_set(err, CH_ENOTFOUND, "threadRootEventId", "no such message in this room");
        else if (root->thread_root[0])
            st = ch_err_set(err, CH_EINVAL, "threadRootEventId", "replies cannot start threads; use the root");
    }
    if (st == CH_OK && in_reply_to && *in_reply_to && !model_msg(r, in_reply_to))
        st = ch_err_set(err, CH_ENOTFOUND, "inReplyTo", "no such message in this room");
    if (st == CH_OK)
        *nm = parse_mentions(c, body, mentions, 50, unknown);
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_post(struct chat *c, const struct user *who, const char *room_id, const char *body, const char *thread_root,
          const char *in_reply_to, const char *idem_key, cJSON **out, struct ch_err *err)
{
    struct chat_room *r;
    char mentions[50][65], id[ID_LEN + 1], subject[STORE_SUBJECT_MAX], msgid[200];
    size_t nm = 0;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = check_body(body, err)) != CH_OK ||
        (st = chat_id_or_empty("threadRootEventId", thread_root, err)) != CH_OK ||
        (st = chat_id_or_empty("inReplyTo", in_reply_to, err)) != CH_OK)
        return st;
    if (idem_key) {
        size_t n = strlen(idem_key);
        bool ok = n >= 1 && n <= 128;
        for (size_t i = 0; ok && i < n; i++)
            ok = idem_key[i] > 0x20 && idem_key[i] < 0x7f;
        if (!ok)
            return ch_err_set(err, CH_EINVAL, "Idempotency-Key", "must be 1-128 printable ASCII characters");
    }
    /* Validate against this process's model first; only when that fails, catch up with the stream and validate
     * again (a room or a membership made a moment ago through another process). A model that trails the stream
     * can only be too permissive about a membership that just ended: the stream order settles that below. */
    for (int pass = 0;; pass++) {
        size_t unknown = 0;
        if (pass == 1 && (st = sync_events(c, err)) != CH_OK)
            return st;
        st = post_check(c, who, room_id, body, thread_root, in_reply_to, mentions, &nm, &unknown, err);
        if ((st == CH_OK && !unknown) || pass == 1)
            break;
    }
    if (st != CH_OK)
        return st;
    if (idem_key)
        idem_id(who->id, idem_key, id);
    else
        id_new(id);
    if (store_subject_event_message(subject, sizeof subject, room_id, id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    cJSON *ev = chat_event_new("msg.posted", who), *msg = cJSON_AddObjectToObject(ev, "msg");
    add_snapshot(msg, id, who->id, clock_wall_ms(), body, thread_root, in_reply_to, mentions, nm);
    snprintf(msgid, sizeof msgid, "post:%s:%s", who->id, idem_key ? idem_key : id);
    struct store_pub_opts po = { .msg_id = msgid, .expect_none = true };
    st = chat_append(c, subject, ev, &po, NULL, NULL, err);
    /* a retry after the duplicate window finds its message already there: that is success too */
    if (st == CH_ECONFLICT && idem_key)
        st = CH_OK;
    if (st != CH_OK)
        return st;
    /* the stream order may have refused it: the author left (or was removed) or the room was archived first */
    pthread_rwlock_rdlock(&c->m->lock);
    r = model_room(c->m, room_id);
    struct chat_msg *posted = r ? map_get(r->msgs, id) : NULL;
    if (posted && posted->refused)
        st = r->archived ? ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)")
                         : ch_err_set(err, CH_EPERM, "roomId", "join the room first");
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK)
        return st;
    return chat_message_out(c, who, room_id, id, out, err);
}

/* Read a message under lock for a change: its room, state and subject sequence. */
struct msg_state {
    uint64_t last_seq, pos;
    int64_t created_at;
    char author[ID_MAX + 1], thread_root[ID_MAX + 1], in_reply_to[ID_MAX + 1];
    uint64_t *body_seqs;
    size_t nbody;
    bool can_moderate;
};

static enum ch_status
msg_for_change(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, bool for_delete,
               struct msg_state *s, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    memset(s, 0, sizeof *s);
    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct chat_msg *msg = model_msg(r, msg_id);
        if (!msg || msg->deleted_at) {
            st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such message");
        } else if (r->archived) {
            st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
        } else {
            s->last_seq = msg->last_seq;
            s->pos = msg->pos;
            s->created_at = msg->created_at;
            memcpy(s->author, msg->author, sizeof s->author);
            memcpy(s->thread_root, msg->thread_root, sizeof s->thread_root);
            memcpy(s->in_reply_to, msg->in_reply_to, sizeof s->in_reply_to);
            s->can_moderate = chat_room_admin(cm, who);
            if (for_delete && msg->nbody && (s->body_seqs = malloc(msg->nbody * sizeof *s->body_seqs))) {
                memcpy(s->body_seqs, msg->body_seqs, msg->nbody * sizeof *s->body_seqs);
                s->nbody = msg->nbody;
            }
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_edit(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, const char *body,
          cJSON **out, struct ch_err *err)
{
    struct msg_state s;
    enum ch_status st;
    char subject[STORE_SUBJECT_MAX];

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", msg_id, err)) != CH_OK ||
        (st = check_body(body, err)) != CH_OK)
        return st;
    if (store_subject_event_message(subject, sizeof subject, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        char mentions[50][65];
        size_t nm;
        if ((st = msg_for_change(c, who, room_id, msg_id, true, &s, err)) != CH_OK)
            return st;
        if (strcmp(s.author, who->id) != 0) {
            free(s.body_seqs);
            return ch_err_set(err, CH_EPERM, "eventId", "only the author may edit a message");
        }
        if (!chat_is_staff(who) && c->edit_window_ms > 0 && clock_wall_ms() - s.created_at > c->edit_window_ms) {
            free(s.body_seqs);
            return ch_err_set(err, CH_ECONFLICT, "eventId", "messages can only be edited for %" PRId64
                              " minutes after posting", c->edit_window_ms / 60000);
        }
        pthread_rwlock_rdlock(&c->m->lock);
        nm = chat_parse_mentions(c, body, mentions, 50);
        pthread_rwlock_unlock(&c->m->lock);
        cJSON *ev = chat_event_new("msg.edited", who), *msg = cJSON_AddObjectToObject(ev, "msg");
        add_snapshot(msg, msg_id, s.author, s.created_at, body, s.thread_root, s.in_reply_to, mentions, nm);
        cJSON_AddNumberToObject(msg, "pos", (double)s.pos);
        cJSON_AddNumberToObject(msg, "editedAt", (double)clock_wall_ms());
        struct store_pub_opts po = { .expect_subject_seq = s.last_seq };
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st == CH_OK) /* the previous versions' bodies go (the edit's own snapshot keeps the new one) */
            for (size_t i = 0; i < s.nbody; i++)
                store_erase(c->store, STORE_S_EVENTS, s.body_seqs[i], NULL);
        free(s.body_seqs);
        if (st != CH_ECONFLICT)
            break;
    }
    if (st != CH_OK)
        return st;
    return chat_message_out(c, who, room_id, msg_id, out, err);
}

enum ch_status
chat_delete(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, struct ch_err *err)
{
    struct msg_state s;
    enum ch_status st;
    char subject[STORE_SUBJECT_MAX];

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", msg_id, err)) != CH_OK)
        return st;
    if (store_subject_event_message(subject, sizeof subject, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        if ((st = msg_for_change(c, who, room_id, msg_id, true, &s, err)) != CH_OK)
            return st;
        if (strcmp(s.author, who->id) != 0 && !s.can_moderate) {
            free(s.body_seqs);
            return ch_err_set(err, CH_EPERM, "eventId", "only the author or a room admin may delete a message");
        }
        cJSON *ev = chat_event_new("msg.deleted", who), *msg = cJSON_AddObjectToObject(ev, "msg");
        cJSON_AddStringToObject(msg, "id", msg_id);
        cJSON_AddStringToObject(msg, "author", s.author);
        cJSON_AddNumberToObject(msg, "createdAt", (double)s.created_at);
        cJSON_AddNumberToObject(msg, "pos", (double)s.pos);
        cJSON_AddNumberToObject(msg, "deletedAt", (double)clock_wall_ms());
        if (s.thread_root[0])
            cJSON_AddStringToObject(msg, "threadRoot", s.thread_root);
        if (s.in_reply_to[0])
            cJSON_AddStringToObject(msg, "inReplyTo", s.in_reply_to);
        struct store_pub_opts po = { .expect_subject_seq = s.last_seq };
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st == CH_OK) /* the tombstone is durable: now destroy every stored copy of the body */
            for (size_t i = 0; i < s.nbody; i++)
                store_erase(c->store, STORE_S_EVENTS, s.body_seqs[i], NULL);
        free(s.body_seqs);
        if (st != CH_ECONFLICT)
            break;
    }
    return st;
}

enum ch_status
chat_get_message(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, cJSON **out,
                 struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", msg_id, err)) != CH_OK ||
        (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    st = chat_room_access(c, room_id, who, true, &r, &cm, err);
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK)
        return st;
    return chat_message_out(c, who, room_id, msg_id, out, err);
}

enum ch_status
chat_get_messages(struct chat *c, const struct user *who, const char *room_id, const char *const *ids, size_t n,
                  cJSON **out, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if ((st = id_check("eventIds", ids[i], err)) != CH_OK)
            return st;
    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "messages");
        for (size_t i = 0; i < n; i++) {
            struct chat_msg *msg = model_msg(r, ids[i]);
            if (msg)
                cJSON_AddItemToArray(arr, view_message(msg, room_id, who->id));
        }
        *out = o;
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

/* ==== reactions ==== */

#define MAX_REACTIONS_PER_USER 20

static enum ch_status
check_emoji(const char *e, struct ch_err *err)
{
    size_t n = strlen(e);

    if (n == 0)
        return ch_err_set(err, CH_EINVAL, "emoji", "required");
    if (n > EMOJI_MAX_BYTES)
        return ch_err_set(err, CH_EINVAL, "emoji", "must be at most %d bytes", EMOJI_MAX_BYTES);
    if (!utf8_valid(e, n))
        return ch_err_set(err, CH_EINVAL, "emoji", "not valid UTF-8");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)e[i] <= 0x20 || e[i] == 0x7f)
            return ch_err_set(err, CH_EINVAL, "emoji", "must not contain spaces or control characters");
    return CH_OK;
}

enum ch_status
chat_react(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, const char *emoji,
           bool add, cJSON **out, struct ch_err *err)
{
    enum ch_status st;
    char subject[STORE_SUBJECT_MAX];

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", msg_id, err)) != CH_OK ||
        (st = check_emoji(emoji, err)) != CH_OK)
        return st;
    if (store_subject_event_message(subject, sizeof subject, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        struct chat_room *r;
        struct chat_member *cm;
        uint64_t expect = 0;
        bool noop = false;

        if ((st = sync_events(c, err)) != CH_OK)
            return st;
        pthread_rwlock_rdlock(&c->m->lock);
        if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
            struct chat_msg *msg = model_msg(r, msg_id);
            size_t mine = 0;
            bool have = false;
            if (!msg || msg->deleted_at)
                st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such message");
            else if (r->archived)
                st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
            else {
                for (size_t i = 0; i < msg->nreactions; i++)
                    for (size_t j = 0; j < msg->reactions[i].n; j++)
                        if (!strcmp(msg->reactions[i].users[j], who->id)) {
                            mine++;
                            have |= !strcmp(msg->reactions[i].emoji, emoji);
                        }
                noop = add == have;
                if (add && !have && mine >= MAX_REACTIONS_PER_USER)
                    st = ch_err_set(err, CH_ELIMIT, "emoji", "at most %d different reactions per message",
                                    MAX_REACTIONS_PER_USER);
                expect = msg->last_seq;
            }
        }
        pthread_rwlock_unlock(&c->m->lock);
        if (st != CH_OK)
            return st;
        if (noop)
            break;
        cJSON *ev = chat_event_new(add ? "reaction.added" : "reaction.removed", who);
        cJSON_AddStringToObject(ev, "msgId", msg_id);
        cJSON_AddStringToObject(ev, "emoji", emoji);
        struct store_pub_opts po = { .expect_subject_seq = expect };
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st != CH_ECONFLICT)
            break;
    }
    if (st != CH_OK)
        return st;
    return chat_message_out(c, who, room_id, msg_id, out, err);
}

/* ==== history ==== */

static enum ch_status
parse_cursor(const char *field, const char *s, uint64_t *out, struct ch_err *err)
{
    char *end = NULL;

    if (!s || !*s)
        return CH_OK;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || !isdigit((unsigned char)*s))
        return ch_err_set(err, CH_EINVAL, field, "not a cursor this server issued");
    *out = v;
    return CH_OK;
}

/* Render items [from, to) of a position-sorted sequence as a page. get(i) returns the item's position and view. */
struct pager {
    const struct chat_model *m;
    const struct chat_room *r;
    const char *viewer;
    const struct chat_item *const *items; /* timeline, or NULL */
    const struct seqlist *replies;        /* thread, or NULL */
    size_t n;
};

static uint64_t
pager_pos(const struct pager *p, size_t i)
{
    return p->items ? p->items[i]->pos : p->replies->v[i]->pos;
}

static cJSON *
pager_page(const struct pager *p, size_t from, size_t to)
{
    cJSON *page = cJSON_CreateObject(), *events = cJSON_AddArrayToObject(page, "events");
    cJSON *users = cJSON_AddObjectToObject(cJSON_AddObjectToObject(page, "includes"), "users");

    for (size_t i = from; i < to; i++) {
        if (p->items) {
            const struct chat_item *it = p->items[i];
            cJSON_AddItemToArray(events, view_item(it, p->r->id, p->viewer));
            view_include_user(p->m, users, it->actor);
            if (it->subject_user[0])
                view_include_user(p->m, users, it->subject_user);
        } else {
            const struct chat_msg *msg = p->replies->v[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "id", msg->id);
            json_add_time(e, "createdAt", msg->created_at);
            cJSON_AddStringToObject(e, "actorId", msg->author);
            json_add_int64_str(e, "cursor", (int64_t)msg->pos);
            cJSON_AddItemToObject(cJSON_AddObjectToObject(e, "messagePosted"), "message",
                                  view_message(msg, p->r->id, p->viewer));
            cJSON_AddItemToArray(events, e);
            view_include_user(p->m, users, msg->author);
        }
    }
    if (to > from) {
        json_add_int64_str(page, "startCursor", (int64_t)pager_pos(p, from));
        json_add_int64_str(page, "endCursor", (int64_t)pager_pos(p, to - 1));
    } else {
        cJSON_AddStringToObject(page, "startCursor", "");
        cJSON_AddStringToObject(page, "endCursor", "");
    }
    cJSON_AddBoolToObject(page, "hasOlder", from > 0);
    cJSON_AddBoolToObject(page, "hasNewer", to < p->n);
    return page;
}

static size_t
pager_after(const struct pager *p, uint64_t pos)
{
    return p->items ? model_tl_after(p->r, pos) : seqlist_after(p->replies, pos);
}

/* [from, to) for before/after/newest. */
static void
pager_window(const struct pager *p, bool has_before, uint64_t before, bool has_after, uint64_t after, size_t limit,
             size_t *from, size_t *to)
{
    if (has_after) {
        *from = pager_after(p, after);
        *to = *from + limit < p->n ? *from + limit : p->n;
    } else {
        *to = has_before ? (before ? pager_after(p, before - 1) : 0) : p->n;
        *from = *to > limit ? *to - limit : 0;
    }
}

static enum ch_status
check_limit(int limit, size_t *out, struct ch_err *err)
{
    if (limit == 0)
        limit = 50;
    if (limit < 1 || limit > 100)
        return ch_err_set(err, CH_EINVAL, "limit", "must be between 1 and 100");
    *out = (size_t)limit;
    return CH_OK;
}

enum ch_status
chat_room_events(struct chat *c, const struct user *who, const char *room_id, const char *before, const char *after,
                 int limit_in, cJSON **out, struct ch_err *err)
{
    uint64_t b = 0, a = 0;
    size_t limit = 50, from, to;
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = check_limit(limit_in, &limit, err)) != CH_OK ||
        (st = parse_cursor("before", before, &b, err)) != CH_OK || (st = parse_cursor("after", after, &a, err)) != CH_OK)
        return st;
    if (before && *before && after && *after)
        return ch_err_set(err, CH_EINVAL, "before", "give before or after, not both");
    if ((st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct pager p = { .m = c->m, .r = r, .viewer = who->id, .items = (const struct chat_item *const *)r->tl,
                           .n = r->ntl };
        pager_window(&p, before && *before, b, after && *after, a, limit, &from, &to);
        *out = cJSON_CreateObject();
        cJSON_AddStringToObject(*out, "roomId", room_id);
        cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_room_events_around(struct chat *c, const struct user *who, const char *room_id, const char *event,
                        int limit_in, cJSON **out, struct ch_err *err)
{
    size_t limit = 50, idx = SIZE_MAX;
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", event, err)) != CH_OK ||
        (st = check_limit(limit_in, &limit, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct chat_msg *msg = model_msg(r, event);
        if (msg && !msg->thread_root[0]) {
            size_t i = model_tl_after(r, msg->pos - 1);
            if (i < r->ntl && r->tl[i]->pos == msg->pos)
                idx = i;
        }
        for (size_t i = 0; idx == SIZE_MAX && i < r->ntl; i++)
            if (!strcmp(r->tl[i]->id, event))
                idx = i;
        if (idx == SIZE_MAX) {
            st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such event in this room's timeline");
        } else {
            struct pager p = { .m = c->m, .r = r, .viewer = who->id, .items = (const struct chat_item *const *)r->tl,
                               .n = r->ntl };
            size_t from = idx > limit / 2 ? idx - limit / 2 : 0, to = from + limit < r->ntl ? from + limit : r->ntl;
            *out = cJSON_CreateObject();
            cJSON_AddStringToObject(*out, "roomId", room_id);
            cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_thread(struct chat *c, const struct user *who, const char *room_id, const char *root_id, const char *before,
            const char *after, int limit_in, cJSON **out, struct ch_err *err)
{
    uint64_t b = 0, a = 0;
    size_t limit = 50, from, to;
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    static const struct seqlist empty;

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = id_check("threadRootEventId", root_id, err)) != CH_OK ||
        (st = check_limit(limit_in, &limit, err)) != CH_OK || (st = parse_cursor("before", before, &b, err)) != CH_OK ||
        (st = parse_cursor("after", after, &a, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct chat_msg *root = model_msg(r, root_id);
        const struct seqlist *l = map_get(r->threads, root_id);
        if (!root || root->thread_root[0]) {
            st = ch_err_set(err, CH_ENOTFOUND, "threadRootEventId", "no such thread in this room");
        } else {
            struct pager p = { .m = c->m, .r = r, .viewer = who->id, .replies = l ? l : &empty, .n = l ? l->n : 0 };
            pager_window(&p, before && *before, b, after && *after, a, limit, &from, &to);
            *out = cJSON_CreateObject();
            cJSON_AddItemToObject(*out, "root", view_message(root, room_id, who->id));
            cJSON_AddItemToObject(*out, "page", pager_page(&p, from, to));
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

/* ==== reads ==== */

/* Unread messages (by others, top level) and mentions of uid after the member's read position. */
void
chat_unread_counts(const struct chat_room *r, const struct chat_member *cm, size_t *unread, size_t *mentions)
{
    *unread = *mentions = 0;
    for (size_t i = model_tl_after(r, cm->last_read); i < r->ntl; i++) {
        const struct chat_msg *msg = r->tl[i]->msg;
        if (r->tl[i]->kind == IT_MSG && !msg->deleted_at && strcmp(msg->author, cm->user) != 0)
            (*unread)++;
    }
    for (size_t i = seqlist_after(&r->mentioned, cm->last_read); i < r->mentioned.n; i++) {
        const struct chat_msg *msg = r->mentioned.v[i];
        if (msg->deleted_at || !strcmp(msg->author, cm->user))
            continue;
        for (size_t j = 0; j < msg->nmentions; j++)
            if (!strcmp(msg->mentions[j], cm->user)) {
                (*mentions)++;
                break;
            }
    }
}

enum ch_status
chat_mark_read(struct chat *c, const struct user *who, const char *room_id, const char *event, cJSON **out,
               struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;
    uint64_t pos = 0, rev = 0;
    char key[2 * ID_MAX + 2], val[32];

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = chat_id_or_empty("eventId", event, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        if (event && *event) {
            struct chat_msg *msg = model_msg(r, event);
            if (msg)
                pos = msg->pos;
            for (size_t i = 0; !pos && i < r->ntl; i++)
                if (!strcmp(r->tl[i]->id, event))
                    pos = r->tl[i]->pos;
            if (!pos)
                st = ch_err_set(err, CH_ENOTFOUND, "eventId", "no such event in this room");
        } else {
            pos = chat_model_applied(c->m); /* positions are stream sequences: everything so far */
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK)
        return st;
    snprintf(key, sizeof key, "%s.%s", who->id, room_id);
    snprintf(val, sizeof val, "%" PRIu64, pos);
    /* only ever forward, even when two devices race */
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        char *cur = NULL;
        uint64_t cur_rev = 0;
        st = store_kv_get(c->store, STORE_B_READS, key, &cur, NULL, &cur_rev, err);
        if (st == CH_OK && strtoull(cur, NULL, 10) >= pos) {
            free(cur);
            rev = cur_rev;
            break;
        }
        free(cur);
        if (st == CH_OK)
            st = store_kv_update(c->store, STORE_B_READS, key, val, strlen(val), cur_rev, &rev, err);
        else if (st == CH_ENOTFOUND)
            st = store_kv_create(c->store, STORE_B_READS, key, val, strlen(val), &rev, err);
        if (st != CH_ECONFLICT && st != CH_EEXIST)
            break;
    }
    if (st != CH_OK)
        return st;
    if (!chat_model_wait_reads(c->m, rev, c->timeout_ms))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "stored, but this server has not caught up yet; retry");
    pthread_rwlock_rdlock(&c->m->lock);
    r = model_room(c->m, room_id);
    cm = model_member(r, who->id);
    *out = cJSON_CreateObject();
    if (cm) {
        size_t unread, mentions;
        chat_unread_counts(r, cm, &unread, &mentions);
        json_add_int64_str(*out, "lastReadCursor", (int64_t)cm->last_read);
        cJSON_AddNumberToObject(*out, "unreadCount", (double)unread);
        cJSON_AddNumberToObject(*out, "mentionCount", (double)mentions);
    }
    pthread_rwlock_unlock(&c->m->lock);
    return CH_OK;
}

/* ==== realtime ==== */

bool
chat_room_member_ids(struct chat *c, const char *room_id, char (**ids)[65], size_t *n)
{
    bool ok = false;

    *ids = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    if (r) {
        size_t it = 0, k = 0;
        const char *key;
        *ids = calloc(map_len(r->members) + 1, sizeof **ids);
        if (*ids) {
            while (map_next(r->members, &it, &key, NULL))
                snprintf((*ids)[k++], 65, "%s", key);
            *n = k;
            ok = true;
        }
    }
    pthread_rwlock_unlock(&c->m->lock);
    return ok;
}

bool
chat_is_member(struct chat *c, const char *room_id, const char *uid)
{
    pthread_rwlock_rdlock(&c->m->lock);
    bool v = model_member(model_room(c->m, room_id), uid) != NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return v;
}

enum ch_status
chat_check_typing(struct chat *c, const struct user *who, const char *room_id, const char *thread_root,
                  struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK ||
        (st = chat_id_or_empty("threadRootEventId", thread_root, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK && r->archived)
        st = ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)");
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

uint64_t
chat_applied(struct chat *c)
{
    return chat_model_applied(c->m);
}

uint64_t
chat_replay_target(struct chat *c)
{
    return store_follower_target(c->follower);
}
