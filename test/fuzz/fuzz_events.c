/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: event application to the chat read model. Every process follows the CHATTO_EVENTS stream and
 * the users and reads buckets; whatever bytes arrive there (a bug elsewhere, a hand-edited stream, a newer
 * version) must never crash or corrupt a follower. Then every view a client can ask for is built from the
 * result, so what a bad event leaves behind is exercised too.
 *
 * Input: records separated by '\n'. A record is "<kind><key> <payload>": kind 'E' is an event (key = subject),
 * 'U' a user record (key = user id), 'R' a read marker (key = "uid.room"). The payload is the record's bytes.
 *
 * The model keeps 2 messages per room in memory (core.resident_messages), and counts every thread quiet after a
 * millisecond (core.resident_idle_after; swept after every event), so the cold timeline and cold thread replies are
 * exercised: an event about a cold message brings it back from the earlier events on its subject the stream would
 * still hold (an edit erases the versions before it), as the follower does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "store/subject.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
views(struct chat_model *m)
{
    size_t it = 0;
    const char *key;
    void *val;

    while (map_next(m->rooms, &it, &key, &val)) {
        struct chat_room *r = val;
        cJSON_Delete(view_room(r));
        for (size_t i = 0; i < r->ntl; i++)
            cJSON_Delete(view_item(m, r->tl[i], r->id, "u1", NULL));
        size_t mit = 0;
        const char *uid;
        void *mv;
        while (map_next(r->members, &mit, &uid, &mv)) {
            size_t unread, mentions;
            chat_unread_counts(m, r, mv, &unread, &mentions);
            cJSON_Delete(view_user(m, uid));
        }
        size_t tit = 0;
        const char *root;
        void *tv;
        while (map_next(r->threads, &tit, &root, &tv)) {
            struct seqlist *l = tv;
            for (size_t i = seqlist_after(l, 0); i < l->n; i++)
                cJSON_Delete(view_message(m, l->v[i], r->id, "u2", NULL));
        }
        (void)model_tl_after(r, r->ntl ? r->tl[r->ntl / 2]->pos : 0);
    }
    /* whatever the events made of the model, its snapshot reads back (a round trip never fails) */
    unsigned char *snap = NULL;
    size_t len = 0;
    uint64_t seq = 0, seq2 = 0;
    struct chat_model *back = NULL;
    if (snapshot_encode(m, &snap, &len, &seq, NULL) == CH_OK) {
        if (snapshot_decode(snap, len, &back, &seq2, NULL) != CH_OK || seq2 != seq)
            abort();
        chat_model_free(back);
        free(snap);
    }
    uint64_t *erase = NULL;
    size_t n = 0;
    chat_model_take_erasures(m, &erase, &n);
    free(erase);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chat_model *m = chat_model_new(1 << 20);
    const char *p = (const char *)data, *end = p + size;
    uint64_t seq = 0, rev = 0;
    struct {
        char *subject;
        const char *data;
        size_t len;
    } *seen = calloc(size + 1, sizeof *seen); /* the events so far, by seq - 1 (the stream) */

    if (!m || !seen) {
        chat_model_free(m);
        free(seen);
        return 0;
    }
    chat_model_set_resident(m, 2);
    chat_model_set_idle(m, 1);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *rec_end = nl ? nl : end;
        const char *sp = memchr(p, ' ', (size_t)(rec_end - p));
        if (sp && sp > p) {
            char kind = p[0];
            size_t klen = (size_t)(sp - p - 1);
            char *key = strndup(p + 1, klen);
            const char *payload = sp + 1;
            size_t plen = (size_t)(rec_end - payload);
            if (key && !memchr(p + 1, '\0', klen)) {
                if (kind == 'E') {
                    char need[ID_MAX + 1];
                    seq++;
                    seen[seq - 1].subject = strdup(key);
                    seen[seq - 1].data = payload;
                    seen[seq - 1].len = plen;
                    if (!chat_model_apply(m, seq, key, payload, plen, 1700000000000 + (int64_t)seq * 1000, need)) {
                        struct store_event_subject s;
                        char subj[STORE_SUBJECT_MAX];
                        if (store_subject_event_parse(key, &s) &&
                            store_subject_event_message(subj, sizeof subj, s.room, need) == CH_OK)
                        {
                            /* what the stream still holds on its subject (an edit erased the versions before it):
                             * the first as the base, the others after it, as cold.c reads them */
                            struct chat_event_ref *evs = calloc(seq, sizeof *evs);
                            size_t n = 0;
                            for (uint64_t i = 0; evs && i + 1 < seq; i++) {
                                if (!seen[i].subject || strcmp(seen[i].subject, subj))
                                    continue;
                                if (memmem(seen[i].data, seen[i].len, "\"msg.edited\"", 12))
                                    for (size_t k = n; k-- > 0;)
                                        if (memmem(evs[k].data, evs[k].len, "\"msg.edited\"", 12) ||
                                            memmem(evs[k].data, evs[k].len, "\"msg.posted\"", 12)) {
                                            memmove(evs + k, evs + k + 1, (n - k - 1) * sizeof *evs);
                                            n--;
                                        }
                                evs[n++] = (struct chat_event_ref){ i + 1, seen[i].data, seen[i].len };
                            }
                            if (n)
                                chat_model_restore(m, evs[0].seq, subj, evs[0].data, evs[0].len, evs + 1, n - 1);
                            free(evs);
                        }
                        chat_model_apply(m, seq, key, payload, plen, 1700000000000 + (int64_t)seq * 1000, NULL);
                    }
                    chat_model_sweep(m);
                }
                else if (kind == 'U')
                    chat_model_user(m, key, payload, plen, ++rev);
                else if (kind == 'R')
                    chat_model_read(m, key, payload, plen, ++rev);
            }
            free(key);
        }
        p = rec_end + (nl ? 1 : 0);
    }
    views(m);
    chat_model_free(m);
    for (uint64_t i = 0; i < seq; i++)
        free(seen[i].subject);
    free(seen);
    return 0;
}
