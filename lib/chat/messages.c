/* SPDX-License-Identifier: MIT */
/*
 * Messages: post (idempotency keys map to a stable message id and a stream message id), edit within the edit
 * window, delete (tombstone first, then erase every stored copy of the body), get, and @mention parsing against
 * the directory's logins. Message events go on the message's subject (store/subject.h); edits and deletes
 * expect the message's last sequence. HTTP worker threads.
 */
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"
#include "store/subject.h"

#define BODY_MAX 10000
#define ASSET_IDS_MAX 32
#define MENTIONS_DIRECT_MAX 50 /* distinct @login mentions resolved per message */

/* ---- validation and mentions ---- */

static enum ch_status
check_body(const char *body, bool files, struct ch_err *err)
{
    size_t n = strlen(body);

    if (n == 0 && files)
        return CH_OK; /* files alone are a message */
    if (n == 0)
        return ch_err_set(err, CH_EINVAL, "body", "must not be empty");
    if (n > BODY_MAX)
        return ch_err_set(err, CH_EINVAL, "body", "must be at most %d bytes, got %zu", BODY_MAX, n);
    if (!utf8_valid(body, n))
        return ch_err_set(err, CH_EINVAL, "body", "not valid UTF-8");
    bool blank = true;
    for (const char *p = body; *p && blank; p++)
        blank = isspace((unsigned char)*p);
    if (blank && !files)
        return ch_err_set(err, CH_EINVAL, "body", "must not be blank");
    return CH_OK;
}

void
chat_scan_mentions(const char *body, void (*fn)(void *ctx, const char *name, size_t len), void *ctx)
{
    const char *p = body, *fence = NULL; /* the fence that opened the code block we are in ("```" or "~~~") */
    size_t fence_len = 0;

    while (*p) {
        const char *eol = strchr(p, '\n'), *q = p;
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        int indent = 0;

        while (indent < 4 && q < p + len && *q == ' ')
            q++, indent++;
        /* a fence line opens or closes a code block: nothing inside counts */
        if (indent < 4 && (q[0] == '`' || q[0] == '~') && q + 2 < p + len && q[1] == q[0] && q[2] == q[0]) {
            size_t run = 0;
            while (q + run < p + len && q[run] == q[0])
                run++;
            if (!fence) {
                fence = q;
                fence_len = run;
            } else if (q[0] == fence[0] && run >= fence_len) {
                fence = NULL;
            }
        } else if (!fence && !(indent < 4 && q < p + len && *q == '>')) { /* quotes do not ping either */
            for (const char *c = p; c < p + len; c++) {
                if (*c == '`') { /* an inline code span: skip to the closing run of the same length */
                    size_t run = 0;
                    while (c + run < p + len && c[run] == '`')
                        run++;
                    const char *close = NULL;
                    for (const char *d = c + run; d < p + len && !close; d++) {
                        size_t r2 = 0;
                        while (d + r2 < p + len && d[r2] == '`')
                            r2++;
                        if (r2 == run)
                            close = d;
                        else if (r2)
                            d += r2 - 1;
                    }
                    c = close ? close + run - 1 : c + run - 1;
                    continue;
                }
                if (*c != '@' || (c > p && (isalnum((unsigned char)c[-1]) || strchr("_.-@", c[-1]))))
                    continue;
                size_t k = 0;
                while (c + 1 + k < p + len && (isalnum((unsigned char)c[1 + k]) || strchr("_.-", c[1 + k])))
                    k++;
                while (k > 0 && (c[k] == '.' || c[k] == '-'))
                    k--; /* "@bob." ends a sentence */
                if (k > 0)
                    fn(ctx, c + 1, k);
                c += k;
            }
        }
        p += len;
        if (*p == '\n')
            p++;
    }
}

/* What a body mentions, resolved when it is posted: user ids (direct, and @here's audience), and @all. */
struct mentions {
    char (*ids)[65];
    size_t n, cap;
    bool all, here;
    size_t direct, unknown;
    struct chat *c;
};

static void
mentions_free(struct mentions *m)
{
    free(m->ids);
    memset(m, 0, sizeof *m);
}

static void
mentions_add(struct mentions *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->ids[i], id))
            return;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        char (*v)[65] = realloc(m->ids, cap * sizeof *v);
        if (!v)
            return;
        m->ids = v;
        m->cap = cap;
    }
    snprintf(m->ids[m->n++], 65, "%s", id);
}

/* One @name the scanner found. Model read-locked. */
static void
mention_name(void *ctx, const char *name, size_t len)
{
    struct mentions *m = ctx;
    char login[USER_LOGIN_MAX + 1];

    if (len > USER_LOGIN_MAX)
        return;
    for (size_t i = 0; i < len; i++)
        login[i] = (char)tolower((unsigned char)name[i]);
    login[len] = '\0';
    if (!strcmp(login, "all")) {
        m->all = true;
        return;
    }
    if (!strcmp(login, "here")) {
        m->here = true;
        return;
    }
    const char *id = map_get(m->c->m->logins, login);
    if (!id) {
        m->unknown++;
        return;
    }
    if (m->direct < MENTIONS_DIRECT_MAX) {
        size_t before = m->n;
        mentions_add(m, id);
        m->direct += m->n > before;
    }
}

/* Resolve body's mentions for a post by author in r: @login against known logins, @here against who is not
 * offline now, @all as a flag (every member then). Model read-locked. */
static void
resolve_mentions(struct chat *c, const struct chat_room *r, const char *author, const char *body,
                 struct mentions *m)
{
    memset(m, 0, sizeof *m);
    m->c = c;
    chat_scan_mentions(body, mention_name, m);
    if (m->here && !m->all && c->presence.online) {
        size_t it = 0;
        const char *key;
        void *val;
        while (map_next(r->members, &it, &key, &val)) {
            const struct chat_member *cm = val;
            if (strcmp(cm->user, author) != 0 && c->presence.online(c->presence.ctx, cm->user))
                mentions_add(m, cm->user);
        }
    }
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
             const char *thread_root, const char *in_reply_to, const struct mentions *mn, const char *attachments)
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
    for (size_t i = 0; i < mn->n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(mn->ids[i]));
    if (mn->direct < mn->n) /* the first ones are @login mentions, the rest @here's audience */
        cJSON_AddNumberToObject(msg, "mentionsDirect", (double)mn->direct);
    if (mn->all)
        cJSON_AddBoolToObject(msg, "mentionsAll", true);
    if (mn->here)
        cJSON_AddBoolToObject(msg, "mentionsHere", true);
    if (attachments && (arr = cJSON_Parse(attachments)))
        cJSON_AddItemToObject(msg, "attachments", arr); /* every snapshot carries the files on */
}

/* The ids in a snapshot's attachments array (caller frees the array; the strings are in ids_buf). */
static size_t
attachment_ids(const char *json, char (*ids)[ID_MAX + 1], size_t max)
{
    cJSON *a = json ? cJSON_Parse(json) : NULL, *it;
    size_t n = 0;

    cJSON_ArrayForEach(it, a) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (n < max && cJSON_IsString(id) && id_valid(id->valuestring))
            snprintf(ids[n++], ID_MAX + 1, "%s", id->valuestring);
    }
    cJSON_Delete(a);
    return n;
}

void
chat_set_presence_hook(struct chat *c, const struct chat_presence_hook *h)
{
    c->presence = *h;
}

void
chat_set_asset_hooks(struct chat *c, const struct chat_asset_hooks *h)
{
    c->m->assets = *h;
}

enum ch_status
chat_message_out(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, cJSON **out,
                 struct ch_err *err)
{
    struct body_fill bf = { 0 };
    enum ch_status st;

    if ((st = chat_msg_ensure(c, room_id, msg_id, err)) != CH_OK)
        return st;
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    struct chat_msg *msg = model_msg(r, msg_id);
    *out = msg ? view_wrap("message", view_message(c->m, msg, room_id, who->id, &bf)) : NULL;
    pthread_rwlock_unlock(&c->m->lock);
    return chat_bodies_finish(c, &bf, *out ? CH_OK : ch_err_set(err, CH_ENOTFOUND, "eventId", "no such message"),
                              out, err);
}

/* May who post this in room_id, per this process's model? Also resolves the mentions; *unknown counts @names
 * that match nobody (such a user may have registered a moment ago through another process). */
static enum ch_status
post_check(struct chat *c, const struct user *who, const char *room_id, const char *body, const char *thread_root,
           const char *in_reply_to, struct mentions *mn, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

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
        resolve_mentions(c, r, who->id, body, mn);
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}

enum ch_status
chat_post(struct chat *c, const struct user *who, const char *room_id, const char *body,
          const char *const *asset_ids, size_t nassets, const char *thread_root, const char *in_reply_to,
          const char *idem_key, cJSON **out, struct ch_err *err)
{
    struct chat_room *r;
    char id[ID_LEN + 1], subject[STORE_SUBJECT_MAX], msgid[200];
    struct mentions mn = { 0 };
    enum ch_status st;
    const struct chat_asset_hooks *hk = &c->m->assets;
    char *att = NULL;

    if (nassets && (!hk->claim || !hk->unclaim))
        return ch_err_set(err, CH_ECONFLICT, "attachmentAssetIds", "attachments are not available on this server");
    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = check_body(body, nassets > 0, err)) != CH_OK ||
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
    /* the thread's root and the message answered must be in memory (the cold timeline: cold.c) */
    if ((st = chat_msg_ensure(c, room_id, thread_root, err)) != CH_OK ||
        (st = chat_msg_ensure(c, room_id, in_reply_to, err)) != CH_OK)
        return st;
    /* Validate against this process's model first; only when that fails, catch up with the stream and validate
     * again (a room or a membership made a moment ago through another process). A model that trails the stream
     * can only be too permissive about a membership that just ended: the stream order settles that below. */
    for (int pass = 0;; pass++) {
        mentions_free(&mn);
        if (pass == 1 && (st = sync_events(c, err)) != CH_OK)
            return st;
        st = post_check(c, who, room_id, body, thread_root, in_reply_to, &mn, err);
        if ((st == CH_OK && !mn.unknown) || pass == 1)
            break;
    }
    if (st != CH_OK) {
        mentions_free(&mn);
        return st;
    }
    if (idem_key)
        idem_id(who->id, idem_key, id);
    else
        id_new(id);
    if (store_subject_event_message(subject, sizeof subject, room_id, id) != CH_OK) {
        mentions_free(&mn);
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    }
    if (nassets) {
        /* the files become this message's before it is written (a retry with the same key claims them again) */
        cJSON *arr = NULL;
        if ((st = hk->claim(hk->ctx, who->id, room_id, id, asset_ids, nassets, &arr, err)) != CH_OK) {
            mentions_free(&mn);
            return st;
        }
        att = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
        if (!att) {
            hk->unclaim(hk->ctx, id, asset_ids, nassets);
            mentions_free(&mn);
            return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        }
    }
    cJSON *ev = chat_event_new("msg.posted", who), *msg = cJSON_AddObjectToObject(ev, "msg");
    add_snapshot(msg, id, who->id, clock_wall_ms(), body, thread_root, in_reply_to, &mn, att);
    free(att);
    snprintf(msgid, sizeof msgid, "post:%s:%s", who->id, idem_key ? idem_key : id);
    struct store_pub_opts po = { .msg_id = msgid, .expect_none = true };
    st = chat_append(c, subject, ev, &po, NULL, NULL, err);
    /* a retry that finds its message already there (the subject has it) is success too, once this process's model
     * has caught up with it: the first attempt may have been stored through a moment this model has not seen */
    if (st == CH_ECONFLICT && idem_key)
        st = sync_events(c, err);
    if (st != CH_OK) {
        if (nassets && st != CH_EUNAVAIL) /* (unavailable: it may have been written; the janitor settles it) */
            hk->unclaim(hk->ctx, id, asset_ids, nassets);
        mentions_free(&mn);
        return st;
    }
    /* the stream order may have refused it: the author left (or was removed) or the room was archived first */
    pthread_rwlock_rdlock(&c->m->lock);
    r = model_room(c->m, room_id);
    struct chat_msg *posted = r ? map_get(r->msgs, id) : NULL;
    if (posted && posted->refused)
        st = r->archived ? ch_err_set(err, CH_ECONFLICT, "roomId", "the room is archived (read-only)")
                         : ch_err_set(err, CH_EPERM, "roomId", "join the room first");
    pthread_rwlock_unlock(&c->m->lock);
    if (st != CH_OK) {
        if (nassets) /* refused by the stream order: the files were never shown; erase them with it */
            hk->erase(hk->ctx, asset_ids, nassets);
        mentions_free(&mn);
        return st;
    }
    /* (who it notifies is worked out from the stream by the notifiers: notify.c) */
    if (thread_root && *thread_root) {
        /* a reply follows the thread for its author, the root's author and whoever it mentions */
        const char **uids = malloc((mn.n + 2) * sizeof *uids);
        char root_author[ID_MAX + 1] = "";
        size_t k = 0;
        pthread_rwlock_rdlock(&c->m->lock);
        struct chat_room *rr = model_room(c->m, room_id);
        struct chat_msg *root = rr ? model_msg(rr, thread_root) : NULL;
        if (root)
            snprintf(root_author, sizeof root_author, "%s", root->author);
        pthread_rwlock_unlock(&c->m->lock);
        if (uids) {
            uids[k++] = who->id;
            if (root_author[0] && strcmp(root_author, who->id) != 0)
                uids[k++] = root_author;
            for (size_t i = 0; i < mn.n; i++)
                uids[k++] = mn.ids[i];
            chat_thread_autofollow(c, room_id, thread_root, uids, k);
            free(uids);
        }
    }
    mentions_free(&mn);
    return chat_message_out(c, who, room_id, id, out, err);
}

/* Read a message under lock for a change: its room, state and subject sequence. */
struct msg_state {
    uint64_t last_seq, pos;
    int64_t created_at;
    char author[ID_MAX + 1], thread_root[ID_MAX + 1], in_reply_to[ID_MAX + 1];
    char *attachments; /* a copy of the message's (caller frees) */
    struct mentions mentions; /* a copy of the message's (edits keep them: mentions are resolved once) */
    uint64_t *body_seqs;
    size_t nbody;
    bool can_moderate;
};

static void
msg_state_free(struct msg_state *s)
{
    free(s->body_seqs);
    free(s->attachments);
    mentions_free(&s->mentions);
    s->body_seqs = NULL;
    s->attachments = NULL;
}

static enum ch_status
msg_for_change(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, bool for_delete,
               struct msg_state *s, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    memset(s, 0, sizeof *s);
    if ((st = sync_events(c, err)) != CH_OK || (st = chat_msg_ensure(c, room_id, msg_id, err)) != CH_OK)
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
            snprintf(s->author, sizeof s->author, "%s", msg->author);
            snprintf(s->thread_root, sizeof s->thread_root, "%s", msg->thread_root);
            snprintf(s->in_reply_to, sizeof s->in_reply_to, "%s", msg->in_reply_to);
            s->can_moderate = chat_room_admin(cm, who);
            s->attachments = msg->attachments ? strdup(msg->attachments) : NULL;
            memset(&s->mentions, 0, sizeof s->mentions);
            for (size_t i = 0; i < msg->nmentions; i++)
                mentions_add(&s->mentions, msg->mentions[i]);
            s->mentions.all = msg->mention_all;
            s->mentions.here = msg->mention_here;
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
        (st = check_body(body, true, err)) != CH_OK) /* (empty only if the message has files: checked below) */
        return st;
    if (store_subject_event_message(subject, sizeof subject, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot name the event's subject");
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        if ((st = msg_for_change(c, who, room_id, msg_id, true, &s, err)) != CH_OK)
            return st;
        if (strcmp(s.author, who->id) != 0) {
            msg_state_free(&s);
            return ch_err_set(err, CH_EPERM, "eventId", "only the author may edit a message");
        }
        if (!body[0] && !s.attachments) {
            msg_state_free(&s);
            return ch_err_set(err, CH_EINVAL, "body", "must not be empty");
        }
        if (!chat_is_staff(who) && c->edit_window_ms > 0 && clock_wall_ms() - s.created_at > c->edit_window_ms) {
            msg_state_free(&s);
            return ch_err_set(err, CH_ECONFLICT, "eventId", "messages can only be edited for %" PRId64
                              " minutes after posting", c->edit_window_ms / 60000);
        }
        /* mentions were resolved when it was posted: an edit neither adds pings nor takes them back (upstream) */
        cJSON *ev = chat_event_new("msg.edited", who), *msg = cJSON_AddObjectToObject(ev, "msg");
        add_snapshot(msg, msg_id, s.author, s.created_at, body, s.thread_root, s.in_reply_to, &s.mentions,
                     s.attachments);
        cJSON_AddNumberToObject(msg, "pos", (double)s.pos);
        cJSON_AddNumberToObject(msg, "editedAt", (double)clock_wall_ms());
        struct store_pub_opts po = { .expect_subject_seq = s.last_seq };
        st = chat_append(c, subject, ev, &po, NULL, NULL, err);
        if (st == CH_OK) /* the previous versions' bodies go (the edit's own snapshot keeps the new one) */
            for (size_t i = 0; i < s.nbody; i++)
                store_erase(c->store, STORE_S_EVENTS, s.body_seqs[i], NULL);
        msg_state_free(&s);
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
            msg_state_free(&s);
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
        if (st == CH_OK) { /* the tombstone is durable: now destroy every stored copy of the body, and the files */
            for (size_t i = 0; i < s.nbody; i++)
                store_erase(c->store, STORE_S_EVENTS, s.body_seqs[i], NULL);
            char ids[ASSET_IDS_MAX][ID_MAX + 1];
            size_t n = attachment_ids(s.attachments, ids, ASSET_IDS_MAX);
            const char *p[ASSET_IDS_MAX];
            for (size_t i = 0; i < n; i++)
                p[i] = ids[i];
            if (n && c->m->assets.erase)
                c->m->assets.erase(c->m->assets.ctx, p, n);
        }
        msg_state_free(&s);
        if (st != CH_ECONFLICT)
            break;
    }
    return st;
}

enum ch_status
chat_get_message(struct chat *c, const struct user *who, const char *room_id, const char *msg_id, cJSON **out,
                 struct ch_err *err)
{
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = id_check("eventId", msg_id, err)) != CH_OK ||
        (st = sync_events(c, err)) != CH_OK || (st = chat_room_check(c, room_id, who, false, err)) != CH_OK)
        return st;
    return chat_message_out(c, who, room_id, msg_id, out, err);
}

enum ch_status
chat_get_messages(struct chat *c, const struct user *who, const char *room_id, const char *const *ids, size_t n,
                  cJSON **out, struct ch_err *err)
{
    struct body_fill bf = { 0 };
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
    for (size_t i = 0; i < n; i++)
        if ((st = chat_msg_ensure(c, room_id, ids[i], err)) != CH_OK)
            return st;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "messages");
        for (size_t i = 0; i < n; i++) {
            struct chat_msg *msg = model_msg(r, ids[i]);
            if (msg)
                cJSON_AddItemToArray(arr, view_message(c->m, msg, room_id, who->id, &bf));
        }
        *out = o;
    }
    pthread_rwlock_unlock(&c->m->lock);
    return chat_bodies_finish(c, &bf, st, out, err);
}

/* ---- the room's files ---- */

static int
newest_first(const void *a, const void *b)
{
    const struct chat_msg *x = *(struct chat_msg *const *)a, *y = *(struct chat_msg *const *)b;
    return x->pos < y->pos ? 1 : x->pos > y->pos ? -1 : 0;
}

enum ch_status
chat_list_attachments(struct chat *c, const struct user *who, const char *room_id, int limit, int offset,
                      cJSON **out, struct ch_err *err)
{
    struct chat_room *r;
    struct chat_member *cm;
    enum ch_status st;

    if ((st = id_check("roomId", room_id, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK)
        return st;
    if (limit <= 0)
        limit = 50;
    pthread_rwlock_rdlock(&c->m->lock);
    if ((st = chat_room_access(c, room_id, who, true, &r, &cm, err)) == CH_OK) {
        struct chat_msg **v = NULL;
        size_t n = 0, cap = 0, it = 0, total = 0, emitted = 0;
        const char *key;
        void *val;
        while (map_next(r->msgs, &it, &key, &val)) {
            struct chat_msg *msg = val;
            if (!msg->known || msg->refused || msg->deleted_at || !msg->attachments)
                continue;
            if (n == cap) {
                struct chat_msg **nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
                if (!nv)
                    break;
                v = nv;
            }
            v[n++] = msg;
        }
        if (n)
            qsort(v, n, sizeof *v, newest_first);
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "attachments");
        for (size_t i = 0; i < n; i++) {
            cJSON *files = cJSON_CreateArray(), *f;
            view_attachments(c->m, files, v[i]->attachments, who->id);
            cJSON_ArrayForEach(f, files) {
                if (total++ < (size_t)offset || emitted >= (size_t)limit)
                    continue;
                cJSON *item = cJSON_CreateObject();
                cJSON_AddItemReferenceToObject(item, "attachment", f);
                cJSON_AddStringToObject(item, "messageEventId", v[i]->id);
                if (v[i]->thread_root[0])
                    cJSON_AddStringToObject(item, "threadRootEventId", v[i]->thread_root);
                json_add_time(item, "createdAt", v[i]->created_at);
                cJSON_AddItemToArray(arr, cJSON_Duplicate(item, true));
                cJSON_Delete(item);
                emitted++;
            }
            cJSON_Delete(files);
        }
        free(v);
        view_add_page(o, total, (size_t)offset, emitted);
        *out = o;
    }
    pthread_rwlock_unlock(&c->m->lock);
    return st;
}
