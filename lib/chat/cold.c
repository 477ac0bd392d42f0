/* SPDX-License-Identifier: MIT */
/*
 * The cold timeline (core.resident_messages): a room keeps its newest top-level messages in memory, and of the older
 * ones that may leave it (model.c, msg_coldable) only their positions and authors. A plain one is shown from its
 * post, read from the stream by sequence; a rich one (reacted to, pinned once, edited) is brought back into memory
 * from the events its subject still holds before it is shown (an edited one from its last edit, which erased the
 * post); whatever needs more of either (an event about it, a command naming it) brings it back first. HTTP worker
 * threads and the follower thread; no lock held across NATS.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"
#include "store/subject.h"

/* Later events read to bring back one rich message. It left memory with at most COLD_RICH_EVENTS (model.c) of them
 * as its state showed them; reactions taken back and pins undone add to that. */
#define RESTORE_LATER_MAX 1000

struct later {
    struct chat_event_ref *v;
    size_t n, cap;
};

static void
later_free(struct later *l)
{
    for (size_t i = 0; i < l->n; i++) {
        explicit_bzero((char *)l->v[i].data, l->v[i].len);
        free((char *)l->v[i].data);
    }
    free(l->v);
}

static enum ch_status
later_add(struct later *l, uint64_t seq, char *data, size_t len, struct ch_err *err)
{
    if (l->n == RESTORE_LATER_MAX) {
        explicit_bzero(data, len);
        free(data);
        return ch_err_set(err, CH_EUNAVAIL, NULL, "an old message has too many events to show (over %d)",
                          RESTORE_LATER_MAX);
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct chat_event_ref *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            explicit_bzero(data, len);
            free(data);
            return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = (struct chat_event_ref){ seq, data, len };
    return CH_OK;
}

/* The events on subject after seq up to last, in stream order. The only one (one): read by its sequence, like a
 * post. Else the next one on the subject each time (one round trip each), never past last: to learn there is no
 * next one, the server would read every block after it. */
static enum ch_status
later_read(struct chat *c, const char *subject, uint64_t seq, uint64_t last, bool one, struct later *l,
           struct ch_err *err)
{
    enum ch_status st;

    if (one) {
        char *subj = NULL, *data = NULL;
        size_t len = 0;
        st = store_get(c->store, STORE_S_EVENTS, last, &subj, &data, &len, err);
        bool ours = st == CH_OK && !strcmp(subj, subject);
        free(subj);
        if (ours)
            return later_add(l, last, data, len, err);
        if (data) {
            explicit_bzero(data, len);
            free(data);
        }
        if (st != CH_OK && st != CH_ENOTFOUND)
            return st;
        /* (not what it was: read them one by one) */
    }
    for (uint64_t from = seq + 1; from <= last;) {
        uint64_t got = 0;
        char *data = NULL;
        size_t len = 0;
        st = store_get_next(c->store, STORE_S_EVENTS, subject, from, &got, &data, &len, err);
        if (st == CH_ENOTFOUND)
            return CH_OK;
        if (st != CH_OK || (st = later_add(l, got, data, len, err)) != CH_OK)
            return st;
        from = got + 1;
    }
    return CH_OK;
}

enum ch_status
chat_cold_restore_post(struct chat *c, uint64_t seq, const char *subject, const char *data, size_t len,
                       const struct chat_event_ref *last_ev, struct ch_err *err)
{
    struct later l = { 0 };
    enum ch_status st = CH_OK;
    bool one = false;
    uint64_t last = chat_model_cold_last(c->m, seq, subject, data, len, &one);

    if (last > seq && one && last_ev && last_ev->seq == last) /* (read with the page's posts) */
        chat_model_restore(c->m, seq, subject, data, len, last_ev, 1);
    else if (last <= seq || (st = later_read(c, subject, seq, last, one, &l, err)) == CH_OK)
        chat_model_restore(c->m, seq, subject, data, len, l.v, l.n);
    later_free(&l);
    return st;
}

enum ch_status
chat_cold_restore(struct chat *c, const char *room_id, const char *msg_id, struct ch_err *err)
{
    char subject[STORE_SUBJECT_MAX], *data = NULL;
    uint64_t seq = 0;
    size_t len = 0;
    enum ch_status st;

    if (store_subject_event_message(subject, sizeof subject, room_id, msg_id) != CH_OK)
        return ch_err_set(err, CH_EINVAL, "eventId", "not a message id");
    if ((st = store_get_next(c->store, STORE_S_EVENTS, subject, 1, &seq, &data, &len, err)) != CH_OK)
        return st;
    st = chat_cold_restore_post(c, seq, subject, data, len, NULL, err);
    explicit_bzero(data, len);
    free(data);
    return st;
}

enum ch_status
chat_msg_ensure(struct chat *c, const char *room_id, const char *msg_id, struct ch_err *err)
{
    bool cold = false;

    if (!room_id || !msg_id || !*msg_id || !id_valid(room_id) || !id_valid(msg_id))
        return CH_OK;
    pthread_rwlock_rdlock(&c->m->lock);
    struct chat_room *r = model_room(c->m, room_id);
    struct chat_msg *msg = model_msg(r, msg_id);
    if (msg && c->m->resident) /* (it must not leave memory before the caller looks it up) */
        atomic_store_explicit(&msg->held_until, model_hold_until(false), memory_order_relaxed);
    cold = r && (r->cold.n || r->thread_cold) && !msg;
    pthread_rwlock_unlock(&c->m->lock);
    if (!cold)
        return CH_OK;
    enum ch_status st = chat_cold_restore(c, room_id, msg_id, err);
    return st == CH_ENOTFOUND ? CH_OK : st; /* (never posted, or erased: the caller says it is not there) */
}

/* The timeline item of a cold message, from its post (the stream message at its position): what view_item shows of
 * a plain message, with its author added to users (may be NULL). NULL if data is not such a post. Model read-locked
 * (users are looked up). */
cJSON *
chat_cold_view(const struct chat_model *m, const char *room_id, uint64_t pos, const char *data, size_t len,
               const char *viewer, cJSON *users)
{
    cJSON *ev = cJSON_ParseWithLength(data, len), *o = NULL;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(ev, "msg");
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
    const char *author = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "author"));
    const char *reply = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "inReplyTo"));
    const char *root = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "threadRoot"));
    const char *body = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "body"));
    struct chat_msg *msg;

    if (!type || strcmp(type, "msg.posted") || !id || !id_valid(id) || !author || !id_valid(author) ||
        !(msg = calloc(1, sizeof *msg + strlen(id) + 1))) {
        cJSON_Delete(ev);
        return NULL;
    }
    memcpy(msg->id, id, strlen(id) + 1);
    msg->author = author;
    msg->thread_root = root && id_valid(root) ? root : ""; /* (a reply of a quiet thread) */
    msg->in_reply_to = reply && id_valid(reply) ? reply : "";
    msg->pos = pos;
    msg->known = true;
    msg->created_at = json_int64_or(j, "createdAt", 0); /* (plain: no files, mentions or thread to show) */
    struct chat_item it = { .pos = pos, .kind = IT_MSG, .id = msg->id, .actor = author, .subject_user = "",
                            .at = msg->created_at, .msg = msg };
    o = view_item(m, &it, room_id, viewer, NULL);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "messagePosted"), "message");
    cJSON_AddStringToObject(v, "body", body ? body : "");
    if (users)
        view_include_user(m, users, author);
    free(msg);
    cJSON_Delete(ev);
    return o;
}
