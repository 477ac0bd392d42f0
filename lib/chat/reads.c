/* SPDX-License-Identifier: MIT */
/*
 * Read state: mark a room read up to an event (or everything), stored in chatto_reads as <user>.<room> and only
 * ever moved forward, even when two devices race; and the unread and mention counts derived from it. HTTP worker
 * threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "json/json.h"
#include "store/store.h"

/* Unread messages (by others, top level) and mentions of uid after the member's read position. */
void
chat_unread_counts(const struct chat_model *m, const struct chat_room *r, const struct chat_member *cm,
                   size_t *unread, size_t *mentions)
{
    *unread = *mentions = 0;
    /* the cold timeline holds no message deleted or mentioning anyone (model.c, msg_coldable) */
    size_t k = model_cold_after(r, cm->last_read);
    if (k < r->cold.n) {
        uint32_t me = model_author_find(m, cm->user);
        for (; k < r->cold.n; k++)
            *unread += r->cold.author[k] != me;
    }
    for (size_t i = model_tl_after(r, cm->last_read); i < r->ntl; i++) {
        const struct chat_msg *msg = r->tl[i]->msg;
        if (r->tl[i]->kind == IT_MSG && !msg->deleted_at && strcmp(msg->author, cm->user) != 0)
            (*unread)++;
    }
    for (size_t i = seqlist_after(&r->mentioned, cm->last_read); i < r->mentioned.n; i++) {
        const struct chat_msg *msg = r->mentioned.v[i];
        if (msg->deleted_at || !strcmp(msg->author, cm->user))
            continue;
        if (msg->mention_all && msg->created_at >= cm->joined_at) { /* @all: everyone who was a member */
            (*mentions)++;
            continue;
        }
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
        (st = chat_id_or_empty("eventId", event, err)) != CH_OK || (st = sync_events(c, err)) != CH_OK ||
        (st = chat_msg_ensure(c, room_id, event, err)) != CH_OK)
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
        chat_unread_counts(c->m, r, cm, &unread, &mentions);
        json_add_int64_str(*out, "lastReadCursor", (int64_t)cm->last_read);
        cJSON_AddNumberToObject(*out, "unreadCount", (double)unread);
        cJSON_AddNumberToObject(*out, "mentionCount", (double)mentions);
    }
    pthread_rwlock_unlock(&c->m->lock);
    return CH_OK;
}
