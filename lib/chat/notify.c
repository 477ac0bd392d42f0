/* SPDX-License-Identifier: MIT */
/*
 * In-app notifications (upstream's NotificationService: ListNotificationOccurrences, MarkNotificationRead,
 * DeleteNotificationOccurrence, DeleteAllNotificationOccurrences). One entry per person a message (or a reaction)
 * reaches, with the strongest cause that reached them: a direct mention, a direct message, @here, @all, a reply to
 * their message or thread, activity in a thread they follow, a reaction to their message; never the author.
 * Entries live 90 days in the KV bucket chatto_notifications as <user>.<id>, the same on every device and process;
 * ids are time-ordered and derived from the event and the person, so a retried post writes each entry once.
 *
 * Who an event reaches is worked out from the event stream, not where it was posted: one process at a time (the
 * holder of the lease "notifier"; any process with chat.notification_worker = true may take it) gets every post
 * and reaction from its read model's follower once the model has applied it, works out who it reaches and by which
 * causes (the mentions were resolved when it was posted and travel in the event), adds the followers of the
 * thread, picks for each person the strongest cause their policy does not turn off (policy.c), writes the entries
 * and tells every process's sockets of each person (core NATS chatto.rt.notify.<user>). Its position in the stream
 * is kept in chatto_leases, so a successor (when it stops, or once a crashed holder's lease lapses) goes on from
 * there; what it does twice is found (KV create) and skipped. An entry
 * whose mode is alert, for someone not in Do-Not-Disturb, is also pushed to their browsers (webpush.c) by the
 * process that created it, so each push leaves once. No lock held across NATS.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/utf8.h"
#include "chat/chat_int.h"
#include "json/json.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "store/subject.h"

#define NOTIF_TTL_MS (90LL * 86400 * 1000)
#define NOTIF_LIST_MAX 500
#define NOTIF_PREVIEW_CHARS 100
#define NOTIF_LEASE "notifier"              /* the process that delivers notifications */
#define NOTIF_LEASE_MS 15000                /* its lease: renewed every third of it; a dead holder's lapses */
#define NOTIF_POSITION "notifier-position"  /* in chatto_leases: the last event the notifier is done with */
#define NOTIF_SAVE_MS 1000                  /* the position is written at most this often */
#define NOTIF_TOUCH_MS (10 * 60 * 1000)     /* and at least this often (chatto_leases' entries age out) */
#define NOTIF_FEED_MAX 4096                 /* fed events waiting; past that they are read from the stream */
#define NOTIF_CATCHUP 256                   /* events read from the stream in one round trip */
#define NOTIF_DURABLE "chatto_notifier"     /* the shared consumer of releases up to 0.2 (retired) */

static const struct {
    const char *code, *signal;
    bool important;
    enum notif_class policy; /* the signal class whose delivery mode applies */
} causes[NC_COUNT] = {
    [NC_MENTION] = { "mention", "directMentionReceived", true, NK_MENTION },
    [NC_DM] = { "dm", "directMessageReceived", true, NK_DM },
    [NC_HERE] = { "here", "hereMentionReceived", true, NK_HERE },
    [NC_ALL] = { "all", "allMentionReceived", true, NK_ALL },
    [NC_REPLY] = { "reply", "replyReceived", true, NK_REPLY },
    [NC_THREAD] = { "thread", "followedThreadActivity", false, NK_THREAD },
    [NC_REACTION] = { "reaction", "reactionReceived", false, NK_REACTION },
};

static int
cause_of(const char *code)
{
    for (int i = 0; i < NC_COUNT; i++)
        if (code && !strcmp(causes[i].code, code))
            return i;
    return -1;
}

/* ---- building a job ---- */

struct notif_job *
notif_job_new(const char *room, const char *event, const char *thread_root, const char *actor, int64_t at,
              const char *body, const char *emoji)
{
    struct notif_job *j = calloc(1, sizeof *j);

    if (!j)
        return NULL;
    snprintf(j->room, sizeof j->room, "%s", room);
    snprintf(j->event, sizeof j->event, "%s", event);
    snprintf(j->root, sizeof j->root, "%s", thread_root ? thread_root : "");
    snprintf(j->actor, sizeof j->actor, "%s", actor);
    snprintf(j->emoji, sizeof j->emoji, "%s", emoji ? emoji : "");
    j->at = at;
    notif_job_preview(j, body);
    return j;
}

void
notif_job_preview(struct notif_job *j, const char *body)
{
    /* a preview of at most 100 characters, cut on a character boundary, one line */
    size_t bytes = 0, chars = 0, n = body ? strlen(body) : 0;
    while (bytes < n && chars < NOTIF_PREVIEW_CHARS && bytes < sizeof j->preview - 5) {
        size_t k = 1;
        while (bytes + k < n && ((unsigned char)body[bytes + k] & 0xC0) == 0x80)
            k++;
        memcpy(j->preview + bytes, body + bytes, k);
        bytes += k;
        chars++;
    }
    j->preview[bytes] = '\0';
    for (char *p = j->preview; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

void
notif_job_add(struct notif_job *j, const char *uid, int cause)
{
    if (!uid || !*uid || !strcmp(uid, j->actor))
        return; /* never the author */
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->to[i].uid, uid)) {
            j->to[i].causes |= 1u << cause;
            return;
        }
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 8;
        void *v = realloc(j->to, cap * sizeof *j->to);
        if (!v)
            return;
        j->to = v;
        j->cap = cap;
    }
    snprintf(j->to[j->n].uid, sizeof j->to[j->n].uid, "%s", uid);
    j->to[j->n].causes = 1u << cause;
    j->n++;
}

void
notif_job_free(struct notif_job *j)
{
    if (!j)
        return;
    free(j->to);
    free(j);
}

/* ---- the notifier thread ---- */

/* The id of the entry for uid: the event's time (so ids sort by age) and a hash of what it is about. */
static void
notif_id(const struct notif_job *j, const char *uid, char out[ID_LEN + 1])
{
    static const char alpha[] = "0123456789abcdefghjkmnpqrstvwxyz";
    unsigned char h[ID_LEN];
    crypto_generichash_state st;

    id_new_at(j->at, out); /* the first 9 characters are the time */
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)j->event, strlen(j->event));
    crypto_generichash_update(&st, (const unsigned char *)"|", 1);
    crypto_generichash_update(&st, (const unsigned char *)uid, strlen(uid));
    crypto_generichash_update(&st, (const unsigned char *)"|", 1);
    crypto_generichash_update(&st, (const unsigned char *)j->emoji, strlen(j->emoji));
    crypto_generichash_final(&st, h, sizeof h);
    for (int i = 9; i < ID_LEN; i++)
        out[i] = alpha[h[i] & 31];
    out[ID_LEN] = '\0';
}

/* Everyone following the thread (read from chatto_follows). */
static void
add_followers(struct chat *c, struct notif_job *j)
{
    char filter[2 * ID_MAX + 8], **keys = NULL;
    size_t n = 0;

    snprintf(filter, sizeof filter, "*.%s.%s", j->room, j->root);
    if (store_kv_keys(c->store, STORE_B_FOLLOWS, filter, &keys, &n, NULL) != CH_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        char *v = NULL, uid[ID_MAX + 1];
        size_t len = 0;
        uint64_t rev;
        const char *dot = strchr(keys[i], '.');
        if (!dot || store_kv_get(c->store, STORE_B_FOLLOWS, keys[i], &v, &len, &rev, NULL) != CH_OK)
            continue;
        cJSON *o = cJSON_ParseWithLength(v, len);
        free(v);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "f"))) {
            snprintf(uid, sizeof uid, "%.*s", (int)(dot - keys[i]), keys[i]);
            notif_job_add(j, uid, NC_THREAD);
        }
        cJSON_Delete(o);
    }
    store_kv_keys_free(keys);
}

/* The cause uid's entry is made for: the strongest that reached them whose mode is not off (-1: none), and whether
 * it may interrupt (alert, and the person not in Do-Not-Disturb). */
static int
pick_cause(struct chat *c, const struct notif_job *j, size_t i, bool *alert)
{
    enum notif_mode modes[NK_COUNT];

    notif_policy_modes(c, j->to[i].uid, j->room, modes);
    for (int k = 0; k < NC_COUNT; k++) {
        if (!(j->to[i].causes & (1u << k)) || modes[causes[k].policy] == NM_OFF)
            continue;
        *alert = modes[causes[k].policy] == NM_ALERT;
        if (*alert) {
            pthread_rwlock_rdlock(&c->m->lock);
            const struct user *u = model_user(c->m, j->to[i].uid);
            if (u && !strcmp(u->presence, "dnd"))
                *alert = false; /* Do-Not-Disturb keeps the entry, not the sound or the push */
            pthread_rwlock_unlock(&c->m->lock);
        }
        return k;
    }
    return -1;
}

/* What a push says of entry e (an occurrence view): title, a preview of at most 100 characters, where to go. */
static char *
push_payload(struct chat *c, const struct notif_job *j, int cause, const char *id)
{
    char title[USER_NAME_MAX_BYTES + ROOM_NAME_MAX_BYTES + EMOJI_MAX_BYTES + 64];
    char actor[USER_NAME_MAX_BYTES + 1] = "Someone", room[ROOM_NAME_MAX_BYTES + 2] = "";
    bool dm = false;

    pthread_rwlock_rdlock(&c->m->lock);
    const struct user *u = model_user(c->m, j->actor);
    if (u && u->display_name[0])
        snprintf(actor, sizeof actor, "%s", u->display_name);
    else if (u)
        snprintf(actor, sizeof actor, "%s", u->login);
    struct chat_room *r = model_room(c->m, j->room);
    if (r) {
        dm = r->vis == VIS_DM;
        snprintf(room, sizeof room, "#%s", r->name);
    }
    pthread_rwlock_unlock(&c->m->lock);
    switch (cause) {
    case NC_MENTION: snprintf(title, sizeof title, dm ? "%s mentioned you" : "%s mentioned you in %s", actor, room); break;
    case NC_HERE: snprintf(title, sizeof title, "%s notified @here in %s", actor, room); break;
    case NC_ALL: snprintf(title, sizeof title, "%s notified @all in %s", actor, room); break;
    case NC_REPLY: snprintf(title, sizeof title, dm ? "%s replied to you" : "%s replied to you in %s", actor, room); break;
    case NC_THREAD: snprintf(title, sizeof title, "%s replied in a thread in %s", actor, room); break;
    case NC_REACTION: snprintf(title, sizeof title, "%s reacted %s to your message", actor, j->emoji); break;
    default: snprintf(title, sizeof title, "%s", actor); break; /* a direct message: who wrote it */
    }
    cJSON *o = cJSON_CreateObject();
    char url[ID_MAX + 16];
    snprintf(url, sizeof url, "/#/room/%s", j->room);
    cJSON_AddStringToObject(o, "title", title);
    cJSON_AddStringToObject(o, "body", j->preview);
    cJSON_AddStringToObject(o, "url", url);
    cJSON_AddStringToObject(o, "tag", j->room); /* one notification per room on screen, the newest */
    cJSON_AddStringToObject(o, "notificationId", id);
    cJSON_AddStringToObject(o, "roomId", j->room);
    cJSON_AddStringToObject(o, "eventId", j->event);
    cJSON_AddStringToObject(o, "cause", causes[cause].code);
    char *s = json_print(o, NULL);
    cJSON_Delete(o);
    return s;
}

static cJSON *occurrence(struct chat *c, const cJSON *e);

/* Write the job's entries, tell the sockets, queue the pushes. False if an entry could not be written (the event
 * is then handed out again; what was written is found and skipped next time). */
static bool
deliver(struct chat *c, struct notif_job *j)
{
    bool all = true;

    if (j->root[0] && !j->emoji[0])
        add_followers(c, j);
    for (size_t i = 0; i < j->n; i++) {
        char id[ID_LEN + 1], key[ID_MAX + ID_LEN + 2], subject[STORE_SUBJECT_MAX];
        struct ch_err e = { 0 };
        bool alert = false;
        int cause = pick_cause(c, j, i, &alert);
        if (cause < 0)
            continue; /* every cause that reached them is off */
        notif_id(j, j->to[i].uid, id);
        snprintf(key, sizeof key, "%s.%s", j->to[i].uid, id);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "cause", causes[cause].code);
        cJSON_AddBoolToObject(o, "alert", alert);
        cJSON_AddStringToObject(o, "room", j->room);
        cJSON_AddStringToObject(o, "event", j->event);
        if (j->root[0])
            cJSON_AddStringToObject(o, "root", j->root);
        cJSON_AddStringToObject(o, "actor", j->actor);
        json_add_int64_str(o, "at", j->at);
        cJSON_AddStringToObject(o, "preview", j->preview);
        if (j->emoji[0])
            cJSON_AddStringToObject(o, "emoji", j->emoji);
        char *s = json_print(o, NULL);
        enum ch_status st = s ? store_kv_create(c->store, STORE_B_NOTIFS, key, s, strlen(s), NULL, &e) : CH_ENOMEM;
        free(s);
        if (st != CH_OK) {
            cJSON_Delete(o);
            if (st == CH_EEXIST)
                continue; /* a retry of the same post: written and told already */
            log_warn("chat: notification for %s not written: %s", j->to[i].uid, e.msg);
            all = false;
            continue;
        }
        metrics_inc(MET_NOTIFICATIONS, NULL, NULL);
        /* every process's sockets of this person hear of it (the view of the entry just written, not read back) */
        pthread_rwlock_rdlock(&c->m->lock);
        cJSON *frame = cJSON_CreateObject(), *occ = occurrence(c, o);
        pthread_rwlock_unlock(&c->m->lock);
        cJSON_Delete(o);
        if (occ) {
            cJSON_AddStringToObject(frame, "type", "notification.created");
            cJSON_AddItemToObject(frame, "occurrence", occ);
            char *f = json_print(frame, NULL);
            if (f && store_subject_notify(subject, sizeof subject, j->to[i].uid) == CH_OK)
                store_core_publish(c->store, subject, f, strlen(f), NULL);
            free(f);
        }
        cJSON_Delete(frame);
        /* this process wrote the entry (a retry finds it and stops above), so this process alone pushes it */
        if (alert && c->pusher)
            pusher_enqueue(c, j->to[i].uid, push_payload(c, j, cause, id), j->at);
    }
    return all;
}

/* Who a new message reaches and by which causes, from the stored event (its mentions were resolved when it was
 * posted: direct ones first, then @here's audience) and the read model. NULL if it reaches nobody. Model
 * read-locked. */
static struct notif_job *
job_for_post(struct chat *c, const char *room_id, const cJSON *ev)
{
    const cJSON *snap = cJSON_GetObjectItemCaseSensitive(ev, "msg"), *ids = cJSON_GetObjectItemCaseSensitive(snap, "mentions");
    struct chat_room *r = model_room(c->m, room_id);
    struct chat_msg *msg = r ? model_msg(r, json_str_or(snap, "id", "")) : NULL;
    struct notif_job *j;
    int n = cJSON_GetArraySize(ids);
    int direct = (int)json_int64_or(snap, "mentionsDirect", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(snap, "mentionsHere")) ? 0 : n);
    const char *key;
    void *val;
    size_t it = 0;

    if (!msg || !msg->known || msg->refused || msg->deleted_at ||
        !(j = notif_job_new(room_id, msg->id, msg->thread_root, msg->author, msg->created_at,
                            json_str_or(snap, "body", NULL), NULL)))
        return NULL;
    for (int i = 0; i < n; i++) {
        const cJSON *id = cJSON_GetArrayItem(ids, i);
        if (cJSON_IsString(id) && model_member(r, id->valuestring))
            notif_job_add(j, id->valuestring, i < direct ? NC_MENTION : NC_HERE);
    }
    if (r->vis == VIS_DM)
        while (map_next(r->members, &it, &key, &val))
            notif_job_add(j, ((const struct chat_member *)val)->user, NC_DM);
    it = 0;
    if (msg->mention_all)
        while (map_next(r->members, &it, &key, &val))
            notif_job_add(j, ((const struct chat_member *)val)->user, NC_ALL);
    struct chat_msg *q = msg->in_reply_to[0] ? model_msg(r, msg->in_reply_to) : NULL;
    if (q && !q->deleted_at && model_member(r, q->author))
        notif_job_add(j, q->author, NC_REPLY);
    struct chat_msg *root = msg->thread_root[0] ? model_msg(r, msg->thread_root) : NULL;
    if (root && !root->deleted_at && model_member(r, root->author))
        notif_job_add(j, root->author, NC_REPLY);
    if (!j->n && !j->root[0]) { /* most posts: nobody to tell (a reply may still reach the thread's followers) */
        notif_job_free(j);
        return NULL;
    }
    return j;
}

/* A reaction added: its message's author hears of it, if it is still there. Model read-locked. The preview is
 * the message's body when it is cached; else *body_seq says which snapshot to fetch it from (after the lock). */
static struct notif_job *
job_for_reaction(struct chat *c, const char *room_id, const cJSON *ev, int64_t at, uint64_t *body_seq)
{
    const char *actor = json_str_or(ev, "actor", ""), *emoji = json_str_or(ev, "emoji", "");
    struct chat_room *r = model_room(c->m, room_id);
    struct chat_msg *msg = r ? model_msg(r, json_str_or(ev, "msgId", "")) : NULL;
    bool present = false;
    struct notif_job *j;

    if (!msg || !msg->known || msg->refused || msg->deleted_at || !model_member(r, msg->author))
        return NULL;
    for (size_t i = 0; i < msg->nreactions && !present; i++)
        if (!strcmp(msg->reactions[i].emoji, emoji))
            for (size_t k = 0; k < msg->reactions[i].n && !present; k++)
                present = !strcmp(msg->reactions[i].users[k], actor);
    if (!present)
        return NULL; /* taken back already */
    uint64_t seq = msg->nbody ? msg->body_seqs[msg->nbody - 1] : 0;
    char *body = seq ? body_cache_dup(c->m->bodies, seq) : NULL;
    j = notif_job_new(room_id, msg->id, msg->thread_root, actor, at, body, emoji);
    *body_seq = j && seq && !body ? seq : 0;
    free(body);
    if (!j)
        return NULL;
    notif_job_add(j, msg->author, NC_REACTION);
    if (!j->n) {
        notif_job_free(j);
        return NULL;
    }
    return j;
}

/* Whether the post msg_id could reach anyone: most posts (no mention, not a DM, not a reply) cannot, and cost no
 * more than this look. Model read-locked. */
static bool
post_may_notify(struct chat *c, const char *room_id, const char *msg_id)
{
    struct chat_room *r = model_room(c->m, room_id);
    struct chat_msg *msg = r ? model_msg(r, msg_id) : NULL;

    return msg && msg->known && !msg->refused && !msg->deleted_at &&
           (msg->nmentions || msg->mention_all || r->vis == VIS_DM || msg->in_reply_to[0] || msg->thread_root[0]);
}

/* A post or a reaction on its way to the notifier. */
struct notif_event {
    uint64_t seq;
    int64_t unix_ms; /* when it was stored; 0 if not known */
    char *subject, *data;
    size_t len;
};

static const char posted_tag[] = "\"type\":\"msg.posted\"", reacted_tag[] = "\"type\":\"reaction.added\"";

/* An event that may notify someone: a post or a reaction. Told without parsing the event: its type is found as we
 * write it (json_print: no spaces). */
static bool
may_notify(const char *subject, const char *data, size_t len, struct store_event_subject *subj, bool *posted)
{
    if (!store_subject_event_parse(subject, subj) || subj->kind != STORE_EV_MESSAGE)
        return false;
    *posted = memmem(data, len, posted_tag, sizeof posted_tag - 1) != NULL;
    return *posted || memmem(data, len, reacted_tag, sizeof reacted_tag - 1) != NULL;
}

/* One event of the stream: true when done with it (notified, or nothing to do), false to have it again later.
 * Every message event of the server passes here once, so the common case (an edit, a post that reaches nobody)
 * is decided without parsing the event. */
static bool
handle_event(struct chat *c, const struct notif_event *m)
{
    struct store_event_subject subj;
    struct notif_job *j = NULL;
    bool posted = false, may = true;

    if (!may_notify(m->subject, m->data, m->len, &subj, &posted))
        return true;
    /* who it reaches is read from this process's model, which must have applied the event first */
    if (!chat_model_wait(c->m, m->seq, 5000))
        return false;
    /* a worker far behind may find the message (a post, or the one a reaction is to) out of memory by now */
    chat_msg_ensure(c, subj.room, subj.id, NULL);
    if (posted) { /* ... and the one a post answers */
        if (memmem(m->data, m->len, "\"inReplyTo\"", 11)) {
            cJSON *ev = cJSON_ParseWithLength(m->data, m->len);
            chat_msg_ensure(c, subj.room,
                            json_str_or(cJSON_GetObjectItemCaseSensitive(ev, "msg"), "inReplyTo", NULL), NULL);
            cJSON_Delete(ev);
        }
        pthread_rwlock_rdlock(&c->m->lock);
        may = post_may_notify(c, subj.room, subj.id);
        pthread_rwlock_unlock(&c->m->lock);
    }
    if (!may)
        return true;
    cJSON *ev = cJSON_ParseWithLength(m->data, m->len);
    int64_t at = json_int64_or(ev, "at", 0);
    pthread_rwlock_rdlock(&c->m->lock);
    uint64_t body_seq = 0;
    j = posted ? job_for_post(c, subj.room, ev)
               : job_for_reaction(c, subj.room, ev, at ? at : m->unix_ms ? m->unix_ms : clock_wall_ms(), &body_seq);
    pthread_rwlock_unlock(&c->m->lock);
    cJSON_Delete(ev);
    char *body = NULL;
    if (j && body_seq && chat_body_fetch(c, body_seq, j->room, j->event, &body, NULL) == CH_OK) {
        notif_job_preview(j, body);
        free(body);
    }
    bool done = !j || deliver(c, j);
    notif_job_free(j);
    return done;
}

/* ---- the worker ----
 *
 * One process at a time delivers notifications: the one holding the lease NOTIF_LEASE. Its position (the last
 * event it is done with) is kept in chatto_leases as NOTIF_POSITION and written at most once a second, so a
 * successor (after a crash: once the lease lapses) starts there and does again at most a second of events, which
 * is harmless: entries are created once (their ids come from the event and the person) and pushed only by the
 * process that created them. While it holds the lease, the model's follower hands it every post and reaction it
 * applies (notifier_feed): no consumer of its own, no acknowledgement per event. What came before the feed (from
 * the position to where the follower was when the lease was taken) and what the feed had to drop (over
 * NOTIF_FEED_MAX waiting) is read from the stream by sequence. */

static void
notif_event_clear(struct notif_event *e)
{
    if (e->data)
        sodium_memzero(e->data, e->len);
    free(e->subject);
    free(e->data);
    memset(e, 0, sizeof *e);
}

/* Fill e with copies of the event (false: out of memory, e cleared). */
static bool
notif_event_set(struct notif_event *e, uint64_t seq, int64_t ms, const char *subject, const char *data, size_t len)
{
    *e = (struct notif_event){ .seq = seq, .unix_ms = ms, .subject = strdup(subject), .data = malloc(len + 1),
                               .len = len };
    if (!e->subject || !e->data) {
        notif_event_clear(e);
        return false;
    }
    memcpy(e->data, data, len);
    e->data[len] = '\0';
    return true;
}

/* notifier.mu held */
static void
feed_clear(struct chat *c)
{
    for (size_t i = c->notifier.fed_head; i < c->notifier.fed_n; i++)
        notif_event_clear(&c->notifier.fed[i]);
    c->notifier.fed_head = c->notifier.fed_n = 0;
}

void
notifier_feed(struct chat *c, uint64_t seq, const char *subject, const char *data, size_t len, int64_t ms)
{
    struct store_event_subject subj;
    bool posted;

    if (!atomic_load(&c->notifier.feeding))
        return;
    bool want = may_notify(subject, data, len, &subj, &posted);
    if (want && posted) { /* most posts reach nobody: the model just applied it and says so */
        pthread_rwlock_rdlock(&c->m->lock);
        want = post_may_notify(c, subj.room, subj.id);
        pthread_rwlock_unlock(&c->m->lock);
    }
    pthread_mutex_lock(&c->notifier.mu);
    if (!atomic_load(&c->notifier.feeding) || seq < c->notifier.fed_from) {
        pthread_mutex_unlock(&c->notifier.mu); /* (before the feed: the worker reads it from the stream) */
        return;
    }
    if (want) {
        if (c->notifier.fed_n == c->notifier.fed_cap && c->notifier.fed_head) { /* move the waiting ones down */
            memmove(c->notifier.fed, c->notifier.fed + c->notifier.fed_head,
                    (c->notifier.fed_n - c->notifier.fed_head) * sizeof *c->notifier.fed);
            c->notifier.fed_n -= c->notifier.fed_head;
            c->notifier.fed_head = 0;
        }
        struct notif_event e = { 0 };
        if (c->notifier.fed_n == c->notifier.fed_cap || !notif_event_set(&e, seq, ms, subject, data, len)) {
            /* too much waiting (or no memory): drop what waits; the worker reads from the stream instead */
            notif_event_clear(&e);
            feed_clear(c);
            c->notifier.fed_from = seq + 1;
            c->notifier.fed_drops++;
        } else {
            c->notifier.fed[c->notifier.fed_n++] = e;
        }
    }
    c->notifier.fed_upto = seq;
    if (want) /* (events that notify nobody only move the position: the worker sees that on its next turn) */
        pthread_cond_signal(&c->notifier.cv);
    pthread_mutex_unlock(&c->notifier.mu);
}

/* Start the feed from the event after the last one the model applied: the worker reads up to there from the
 * stream. The follower applies before it feeds, so an event is either applied before this (read from the stream)
 * or fed after it, never both and never neither. */
static bool
feed_start(struct chat *c)
{
    pthread_mutex_lock(&c->notifier.mu);
    /* test hook: a smaller feed, so that tests see it overflow (never set in production) */
    const char *t = getenv("CHATTO_TEST_NOTIFIER_FEED_MAX");
    size_t cap = t && atoi(t) > 0 ? (size_t)atoi(t) : NOTIF_FEED_MAX;
    if (!c->notifier.fed && !(c->notifier.fed = calloc(cap, sizeof *c->notifier.fed))) {
        pthread_mutex_unlock(&c->notifier.mu);
        return false;
    }
    c->notifier.fed_cap = cap;
    c->notifier.fed_from = chat_model_applied(c->m) + 1;
    c->notifier.fed_upto = c->notifier.fed_from - 1;
    atomic_store(&c->notifier.feeding, true);
    pthread_mutex_unlock(&c->notifier.mu);
    return true;
}

static void
feed_stop(struct chat *c)
{
    pthread_mutex_lock(&c->notifier.mu);
    atomic_store(&c->notifier.feeding, false);
    feed_clear(c);
    free(c->notifier.fed);
    c->notifier.fed = NULL;
    c->notifier.fed_cap = 0;
    pthread_mutex_unlock(&c->notifier.mu);
}

static enum ch_status
position_read(struct chat *c, uint64_t *pos, uint64_t *rev, struct ch_err *err)
{
    char *v = NULL;
    size_t len = 0;
    enum ch_status st = store_kv_get(c->store, STORE_B_LEASES, NOTIF_POSITION, &v, &len, rev, err);

    if (st != CH_OK)
        return st;
    cJSON *o = cJSON_ParseWithLength(v, len);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "seq");
    bool ok = cJSON_IsString(s) && s->valuestring[0];
    *pos = ok ? strtoull(s->valuestring, NULL, 10) : 0;
    cJSON_Delete(o);
    free(v);
    return ok ? CH_OK : ch_err_set(err, CH_EINTERNAL, NULL, "%s in chatto_leases is malformed", NOTIF_POSITION);
}

static enum ch_status
position_write(struct chat *c, uint64_t pos, bool create, uint64_t rev, struct ch_err *err)
{
    char v[64];
    int n = snprintf(v, sizeof v, "{\"seq\":\"%" PRIu64 "\"}", pos);

    if (create)
        return store_kv_create(c->store, STORE_B_LEASES, NOTIF_POSITION, v, (size_t)n, NULL, err);
    if (rev)
        return store_kv_update(c->store, STORE_B_LEASES, NOTIF_POSITION, v, (size_t)n, rev, NULL, err);
    return store_kv_put(c->store, STORE_B_LEASES, NOTIF_POSITION, v, (size_t)n, NULL, err);
}

/* Make sure the position exists (every process, notifying or not, before it is ready: what is posted from then on
 * will be notified). A new one starts where the shared consumer of earlier releases had got to, or else at the
 * end of the stream (like that consumer: never with the history). */
static enum ch_status
position_init(struct chat *c, struct ch_err *err)
{
    uint64_t pos = 0, rev = 0;
    enum ch_status st = position_read(c, &pos, &rev, err);

    if (st != CH_ENOTFOUND)
        return st;
    if ((st = store_consumer_retire(c->store, STORE_S_EVENTS, NOTIF_DURABLE, &pos, err)) == CH_OK)
        log_info("chat: notifications go on from event %" PRIu64 ", where the consumer %s of an earlier release "
                 "had got to (removed)", pos, NOTIF_DURABLE);
    else if (st != CH_ENOTFOUND || (st = store_last_seq(c->store, STORE_S_EVENTS, &pos, err)) != CH_OK)
        return st;
    /* another process may have made it meanwhile, perhaps further on (it found the old consumer gone because we
     * had just removed it): the lower of the two stands, so nothing in between goes unnotified */
    for (int tries = 0; tries < 5; tries++) {
        uint64_t theirs = 0;
        if ((st = position_write(c, pos, true, 0, err)) != CH_EEXIST)
            return st;
        if ((st = position_read(c, &theirs, &rev, err)) != CH_OK || theirs <= pos)
            return st;
        if ((st = position_write(c, pos, false, rev, err)) != CH_ECONFLICT)
            return st;
    }
    return CH_OK;
}

/* The position lives in chatto_leases, whose entries age out after an hour: whoever is not writing it rewrites it
 * as it is now and then (compare-and-set: never over a newer one). */
static void
position_touch(struct chat *c)
{
    uint64_t pos = 0, rev = 0;

    if (position_read(c, &pos, &rev, NULL) == CH_OK)
        position_write(c, pos, false, rev, NULL);
}

struct caught {
    struct notif_event *v;
    bool failed;
};

static void
on_caught(void *arg, size_t i, const char *subject, const char *data, size_t len)
{
    struct caught *x = arg;
    struct store_event_subject subj;
    bool posted;

    if (may_notify(subject, data, len, &subj, &posted) &&
        !notif_event_set(&x->v[i], x->v[i].seq, 0, subject, data, len))
        x->failed = true;
}

/* Events from+1 .. to (at most NOTIF_CATCHUP of them) read from the stream and handled; true if all were done. */
static bool
catch_up(struct chat *c, uint64_t from, uint64_t to)
{
    size_t n = (size_t)(to - from + 1);
    uint64_t *seqs = malloc(n * sizeof *seqs);
    struct caught x = { .v = calloc(n, sizeof *x.v) };
    bool ok = seqs && x.v;

    for (size_t i = 0; ok && i < n; i++) {
        seqs[i] = from + i;
        x.v[i].seq = from + i;
    }
    /* (an event that is gone was erased: a deleted message's, nothing to notify) */
    if (ok && (store_get_many(c->store, STORE_S_EVENTS, seqs, n, on_caught, &x, NULL) != CH_OK || x.failed))
        ok = false;
    for (size_t i = 0; ok && i < n; i++)
        if (x.v[i].data && !handle_event(c, &x.v[i]))
            ok = false;
    for (size_t i = 0; x.v && i < n; i++)
        notif_event_clear(&x.v[i]);
    free(x.v);
    free(seqs);
    return ok;
}

/* Do what is waiting after *pos: from the stream what came before the feed, else the fed events. Returns 1 if it
 * moved on, 0 if there was nothing to do, -1 if something failed (try again later). */
static int
work_step(struct chat *c, uint64_t *pos)
{
    pthread_mutex_lock(&c->notifier.mu);
    uint64_t from = c->notifier.fed_from;
    pthread_mutex_unlock(&c->notifier.mu);
    if (*pos + 1 < from) {
        uint64_t to = from - 1 - *pos > NOTIF_CATCHUP ? *pos + NOTIF_CATCHUP : from - 1;
        if (!catch_up(c, *pos + 1, to))
            return -1;
        *pos = to;
        return 1;
    }
    int moved = 0;
    for (;;) {
        struct notif_event e;
        pthread_mutex_lock(&c->notifier.mu);
        if (c->notifier.fed_from > *pos + 1) { /* the feed dropped what waited: to the stream */
            pthread_mutex_unlock(&c->notifier.mu);
            return 1;
        }
        if (c->notifier.fed_head == c->notifier.fed_n) {
            if (c->notifier.fed_upto > *pos) { /* passed events that notify nobody */
                *pos = c->notifier.fed_upto;
                moved = 1;
            }
            pthread_mutex_unlock(&c->notifier.mu);
            return moved;
        }
        e = c->notifier.fed[c->notifier.fed_head++];
        pthread_mutex_unlock(&c->notifier.mu);
        if (e.seq > *pos && !handle_event(c, &e)) {
            pthread_mutex_lock(&c->notifier.mu);
            if (c->notifier.fed_head && c->notifier.fed_from <= e.seq) /* back in front, for the next try */
                c->notifier.fed[--c->notifier.fed_head] = e;
            else
                notif_event_clear(&e);
            pthread_mutex_unlock(&c->notifier.mu);
            return -1;
        }
        if (e.seq > *pos)
            *pos = e.seq;
        notif_event_clear(&e);
        moved = 1;
    }
}

static bool
notifier_stopping(struct chat *c)
{
    pthread_mutex_lock(&c->notifier.mu);
    bool stop = c->notifier.stop;
    pthread_mutex_unlock(&c->notifier.mu);
    return stop;
}

/* Sleep ms unless asked to stop (or, while feeding, until an event is fed). */
static void
notifier_pause(struct chat *c, int64_t ms)
{
    struct timespec until = clock_deadline(ms > 0 ? ms : 1);
    pthread_mutex_lock(&c->notifier.mu);
    if (!c->notifier.stop)
        pthread_cond_timedwait(&c->notifier.cv, &c->notifier.mu, &until);
    pthread_mutex_unlock(&c->notifier.mu);
}

static void *
notifier_main(void *arg)
{
    struct chat *c = arg;
    int64_t warned_ms = 0, renew_at = 0, saved_at = 0, touched_at = clock_mono_ms(), drops_logged = -60000;
    uint64_t pos = 0, saved = 0, drops_seen = 0;
    bool held = false;

    pthread_setname_np(pthread_self(), "chat-notifier");
    while (!notifier_stopping(c)) {
        struct ch_err e = { 0 };
        if (store_connected(c->store) && position_init(c, &e) == CH_OK)
            break;
        if (e.status != CH_EUNAVAIL && e.msg[0] && clock_mono_ms() - warned_ms > 60000) {
            warned_ms = clock_mono_ms();
            log_warn("chat: notifications wait for storage: %s", e.msg);
        }
        notifier_pause(c, 100);
    }
    atomic_store(&c->notifier.consumer, true);
    if (!c->notifier.pull)
        log_info("chat: notifications are left to other processes (chat.notification_worker = false)");
    while (!notifier_stopping(c)) {
        int64_t now = clock_mono_ms();
        if (c->notifier.pull && !atomic_load(&c->notifier.armed)) {
            notifier_pause(c, 100); /* (the app is still setting up what delivery uses: Web Push) */
            continue;
        }
        if (c->notifier.pull && now >= renew_at) {
            bool h = false;
            if (store_lease_acquire(c->store, NOTIF_LEASE, c->snap.holder, NOTIF_LEASE_MS, &h, NULL) != CH_OK)
                h = held; /* NATS not answering: go on as we were (the lease lapses if this lasts) */
            renew_at = now + NOTIF_LEASE_MS / 3;
            if (h && !held) {
                uint64_t rev;
                struct ch_err e = { 0 };
                if (position_read(c, &pos, &rev, &e) != CH_OK || !feed_start(c)) {
                    log_warn("chat: cannot start delivering notifications: %s", e.msg[0] ? e.msg : "out of memory");
                    store_lease_release(c->store, NOTIF_LEASE, c->snap.holder);
                    h = false;
                    renew_at = now + 1000;
                } else {
                    saved = pos;
                    saved_at = now;
                    log_info("chat: delivering notifications from event %" PRIu64 " (lease %s)", pos, NOTIF_LEASE);
                }
            } else if (!h && held) {
                feed_stop(c);
                log_info("chat: another process delivers notifications now (lease %s)", NOTIF_LEASE);
            }
            held = h;
        }
        if (!held) {
            if (now - touched_at >= NOTIF_TOUCH_MS) {
                position_touch(c);
                touched_at = now;
            }
            notifier_pause(c, c->notifier.pull ? renew_at - now : NOTIF_TOUCH_MS);
            continue;
        }
        int r = work_step(c, &pos);
        now = clock_mono_ms();
        pthread_mutex_lock(&c->notifier.mu);
        uint64_t drops = c->notifier.fed_drops;
        pthread_mutex_unlock(&c->notifier.mu);
        if (drops != drops_seen && now - drops_logged >= 60000) {
            log_warn("chat: notifications fell more than %zu events behind the model; reading them from the stream",
                     c->notifier.fed_cap);
            drops_seen = drops;
            drops_logged = now;
        }
        if ((pos != saved && now - saved_at >= NOTIF_SAVE_MS) || now - saved_at >= NOTIF_TOUCH_MS) {
            if (position_write(c, pos, false, 0, NULL) == CH_OK)
                saved = pos;
            saved_at = now; /* (failed: tried again a second later) */
        }
        if (r == 0)
            notifier_pause(c, renew_at - now < NOTIF_SAVE_MS ? renew_at - now : NOTIF_SAVE_MS);
        else if (r < 0)
            notifier_pause(c, 1000);
    }
    if (held) { /* (what was fed and not done yet is the successor's: it goes on from this position) */
        feed_stop(c);
        position_write(c, pos, false, 0, NULL);
        store_lease_release(c->store, NOTIF_LEASE, c->snap.holder);
    }
    store_thread_exit();
    return NULL;
}

void
chat_start_notifications(struct chat *c)
{
    pthread_mutex_lock(&c->notifier.mu);
    atomic_store(&c->notifier.armed, true);
    pthread_cond_signal(&c->notifier.cv);
    pthread_mutex_unlock(&c->notifier.mu);
}

enum ch_status
notifier_start(struct chat *c, struct ch_err *err)
{
    pthread_mutex_init(&c->notifier.mu, NULL);
    pthread_cond_init(&c->notifier.cv, NULL);
    c->notifier.inited = true;
    if (pthread_create(&c->notifier.thread, NULL, notifier_main, c) != 0)
        return ch_err_set(err, CH_ENOMEM, NULL, "cannot start the notifier thread");
    c->notifier.running = true;
    return CH_OK;
}

void
notifier_stop(struct chat *c)
{
    if (!c->notifier.running)
        return;
    pthread_mutex_lock(&c->notifier.mu);
    c->notifier.stop = true;
    pthread_cond_signal(&c->notifier.cv);
    pthread_mutex_unlock(&c->notifier.mu);
    pthread_join(c->notifier.thread, NULL);
    c->notifier.running = false;
    feed_stop(c); /* (the follower may still call notifier_feed: it finds the feed off; the mutex stays) */
}

void
notifier_destroy(struct chat *c)
{
    if (!c->notifier.inited)
        return;
    pthread_mutex_destroy(&c->notifier.mu);
    pthread_cond_destroy(&c->notifier.cv);
    c->notifier.inited = false;
}

/* ---- reading ---- */

static enum ch_status
load_entry(struct chat *c, const char *key, cJSON **o, uint64_t *rev, struct ch_err *err)
{
    char *v = NULL;
    size_t len = 0;
    enum ch_status st;

    if ((st = store_kv_get(c->store, STORE_B_NOTIFS, key, &v, &len, rev, err)) != CH_OK)
        return st;
    *o = cJSON_ParseWithLength(v, len);
    free(v);
    return *o ? CH_OK : ch_err_set(err, CH_EINTERNAL, NULL, "notification %s is corrupt", key);
}

/* upstream's NotificationOccurrence from a stored entry; NULL if the entry is malformed. Model read-locked. */
static cJSON *
occurrence(struct chat *c, const cJSON *e)
{
    const char *id = json_str_or(e, "id", ""), *room = json_str_or(e, "room", "");
    int cause = cause_of(json_str_or(e, "cause", NULL));
    int64_t at = json_int64_or(e, "at", 0);
    cJSON *o, *sig, *kind, *msg, *rs;

    if (cause < 0 || !*id || !*room)
        return NULL;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    json_add_time(o, "createdAt", at);
    cJSON_AddItemToObject(o, "actor", view_user(c->m, json_str_or(e, "actor", "")));
    sig = cJSON_AddObjectToObject(o, "signal");
    kind = cJSON_AddObjectToObject(sig, causes[cause].signal);
    msg = cJSON_AddObjectToObject(kind, "message");
    rs = cJSON_AddObjectToObject(msg, "room");
    struct chat_room *r = model_room(c->m, room);
    cJSON_AddStringToObject(rs, "id", room);
    if (r) {
        cJSON_AddStringToObject(rs, "name", r->name);
        cJSON_AddBoolToObject(rs, "isDm", r->vis == VIS_DM);
    }
    cJSON_AddStringToObject(msg, "eventId", json_str_or(e, "event", ""));
    if (*json_str_or(e, "root", ""))
        cJSON_AddStringToObject(msg, "threadRootEventId", json_str_or(e, "root", ""));
    if (*json_str_or(e, "emoji", ""))
        cJSON_AddStringToObject(kind, "emoji", json_str_or(e, "emoji", ""));
    cJSON_AddBoolToObject(o, "unread", !json_int64_or(e, "read", 0));
    json_add_time(o, "expiresAt", at + NOTIF_TTL_MS);
    cJSON_AddStringToObject(o, "attentionLevel", causes[cause].important ? "NOTIFICATION_ATTENTION_LEVEL_IMPORTANT"
                                                                         : "NOTIFICATION_ATTENTION_LEVEL_AMBIENT");
    /* ours: whether it may sound or push (its policy said alert and the person was not in Do-Not-Disturb) */
    cJSON_AddBoolToObject(o, "alert", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "alert")));
    cJSON_AddStringToObject(o, "preview", json_str_or(e, "preview", "")); /* ours: the inbox shows it */
    return o;
}

enum ch_status
chat_list_notifications(struct chat *c, const struct user *who, int limit, int offset, cJSON **out,
                        struct ch_err *err)
{
    char filter[ID_MAX + 4], **keys = NULL;
    size_t n = 0, unread = 0, shown = 0, total = 0;
    enum ch_status st;
    cJSON **entries;

    if (limit <= 0)
        limit = 50;
    snprintf(filter, sizeof filter, "%s.*", who->id);
    if ((st = store_kv_keys(c->store, STORE_B_NOTIFS, filter, &keys, &n, err)) != CH_OK)
        return st;
    /* newest first: ids sort by time, and the keys come sorted */
    size_t first = n > NOTIF_LIST_MAX ? n - NOTIF_LIST_MAX : 0;
    entries = calloc(n - first + 1, sizeof *entries);
    if (!entries) {
        store_kv_keys_free(keys);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = n; i > first; i--) {
        uint64_t rev;
        if (load_entry(c, keys[i - 1], &entries[n - i], &rev, NULL) != CH_OK)
            entries[n - i] = NULL;
    }
    store_kv_keys_free(keys);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "occurrences");
    pthread_rwlock_rdlock(&c->m->lock);
    for (size_t i = 0; i < n - first; i++) {
        cJSON *occ = entries[i] ? occurrence(c, entries[i]) : NULL;
        cJSON_Delete(entries[i]);
        if (!occ)
            continue;
        unread += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(occ, "unread"));
        if (total++ < (size_t)offset || shown >= (size_t)limit) {
            cJSON_Delete(occ);
            continue;
        }
        cJSON_AddItemToArray(arr, occ);
        shown++;
    }
    pthread_rwlock_unlock(&c->m->lock);
    free(entries);
    view_add_page(o, total, (size_t)offset, shown);
    cJSON_AddNumberToObject(o, "unreadCount", (double)unread);
    *out = o;
    return CH_OK;
}

static enum ch_status
entry_key(const struct user *who, const char *id, char *key, size_t len, struct ch_err *err)
{
    if (!id || !id_valid(id) || (size_t)snprintf(key, len, "%s.%s", who->id, id) >= len)
        return ch_err_set(err, CH_EINVAL, "notificationId", "not a valid id");
    return CH_OK;
}

enum ch_status
chat_mark_notification_read(struct chat *c, const struct user *who, const char *id, cJSON **out,
                            struct ch_err *err)
{
    char key[2 * ID_MAX + 2];
    enum ch_status st;

    if ((st = entry_key(who, id, key, sizeof key, err)) != CH_OK)
        return st;
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        cJSON *e = NULL;
        uint64_t rev = 0;
        if ((st = load_entry(c, key, &e, &rev, err)) != CH_OK)
            return st == CH_ENOTFOUND ? ch_err_set(err, CH_ENOTFOUND, "notificationId", "no such notification") : st;
        if (!json_int64_or(e, "read", 0)) {
            cJSON_DeleteItemFromObjectCaseSensitive(e, "read");
            json_add_int64_str(e, "read", clock_wall_ms());
            char *s = json_print(e, NULL);
            st = s ? store_kv_update(c->store, STORE_B_NOTIFS, key, s, strlen(s), rev, NULL, err) : CH_ENOMEM;
            free(s);
        }
        if (st == CH_OK) {
            pthread_rwlock_rdlock(&c->m->lock);
            cJSON *occ = occurrence(c, e);
            pthread_rwlock_unlock(&c->m->lock);
            cJSON_Delete(e);
            *out = cJSON_CreateObject();
            cJSON_AddItemToObject(*out, "occurrence", occ ? occ : cJSON_CreateNull());
            return CH_OK;
        }
        cJSON_Delete(e);
        if (st != CH_ECONFLICT)
            return st;
    }
    return ch_err_set(err, CH_EUNAVAIL, NULL, "the notification kept changing; try again");
}

enum ch_status
chat_delete_notification(struct chat *c, const struct user *who, const char *id, struct ch_err *err)
{
    char key[2 * ID_MAX + 2];
    enum ch_status st;

    if ((st = entry_key(who, id, key, sizeof key, err)) != CH_OK)
        return st;
    return store_kv_purge(c->store, STORE_B_NOTIFS, key, err);
}

enum ch_status
chat_delete_all_notifications(struct chat *c, const struct user *who, size_t *deleted, struct ch_err *err)
{
    char filter[ID_MAX + 4], **keys = NULL;
    size_t n = 0;
    enum ch_status st;

    *deleted = 0;
    snprintf(filter, sizeof filter, "%s.*", who->id);
    if ((st = store_kv_keys(c->store, STORE_B_NOTIFS, filter, &keys, &n, err)) != CH_OK)
        return st;
    for (size_t i = 0; i < n && st == CH_OK; i++)
        if ((st = store_kv_purge(c->store, STORE_B_NOTIFS, keys[i], err)) == CH_OK)
            (*deleted)++;
    store_kv_keys_free(keys);
    return st;
}
