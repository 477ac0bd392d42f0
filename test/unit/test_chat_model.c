/* SPDX-License-Identifier: MIT */
/* The chat read model, fed events directly (no NATS): timelines, threads, reactions, tombstones, erasure, replays
 * where erased snapshots are missing, and malformed events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "chat/chat_int.h"

static void
ev(struct chat_model *m, uint64_t seq, const char *subject, const char *json)
{
    chat_model_apply(m, seq, subject, json, strlen(json), 1000 + (int64_t)seq, NULL);
}

#define ROOM "chatto.ev.r1.room"
#define MSG(id) "chatto.ev.r1.msg." id

static struct chat_model *
room_with_members(void)
{
    struct chat_model *m = chat_model_new(1 << 20);
    ev(m, 1, ROOM,
       "{\"type\":\"room.created\",\"id\":\"e1\",\"actor\":\"alice\",\"room\":{\"id\":\"r1\",\"name\":\"R\","
       "\"visibility\":\"public\"},\"members\":[{\"user\":\"alice\",\"role\":\"owner\"}]}");
    ev(m, 2, "chatto.ev.r1.mem.bob", "{\"type\":\"member.joined\",\"id\":\"e2\",\"actor\":\"bob\",\"user\":\"bob\"}");
    return m;
}

static void
test_room_members_and_timeline(void **state)
{
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    (void)state;
    assert_non_null(r);
    assert_string_equal(r->name, "R");
    assert_int_equal(model_member(r, "alice")->role, RROLE_OWNER);
    assert_non_null(model_member(r, "bob"));
    assert_int_equal(r->ntl, 2);
    assert_int_equal(r->tl[0]->kind, IT_ROOM_CREATED);
    assert_int_equal(r->tl[1]->kind, IT_JOINED);
    /* a duplicate join (two processes raced) changes nothing */
    ev(m, 3, "chatto.ev.r1.mem.bob", "{\"type\":\"member.joined\",\"id\":\"e3\",\"actor\":\"bob\",\"user\":\"bob\"}");
    assert_int_equal(r->ntl, 2);
    ev(m, 4, "chatto.ev.r1.mem.bob", "{\"type\":\"member.left\",\"id\":\"e4\",\"actor\":\"bob\",\"user\":\"bob\"}");
    assert_null(model_member(r, "bob"));
    assert_int_equal(r->tl[2]->kind, IT_LEFT);
    assert_int_equal(chat_model_applied(m), 4);
    chat_model_free(m);
}

static void
test_messages_edits_deletes_and_erasure_backlog(void **state)
{
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    uint64_t *er = NULL;
    size_t n = 0;
    (void)state;
    ev(m, 3, MSG("m1"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"body\":\"hi @bob\",\"mentions\":[\"bob\"]}}");
    struct chat_msg *msg = model_msg(r, "m1");
    assert_non_null(msg);
    assert_int_equal(msg->pos, 3);
    char *b = body_cache_dup(m->bodies, msg->body_seqs[msg->nbody - 1]);
    assert_string_equal(b, "hi @bob");
    free(b);
    assert_int_equal(r->mentioned.n, 1);
    ev(m, 4, MSG("m1"), "{\"type\":\"msg.edited\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"pos\":3,\"editedAt\":9,\"body\":\"hello\",\"mentions\":[]}}");
    b = body_cache_dup(m->bodies, msg->body_seqs[msg->nbody - 1]);
    assert_string_equal(b, "hello");
    free(b);
    assert_int_equal(msg->edited_at, 9);
    assert_int_equal(msg->pos, 3);
    assert_int_equal(msg->nbody, 2);
    assert_int_equal(r->mentioned.n, 0);
    ev(m, 5, MSG("m1"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"x\"}");
    assert_int_equal(msg->nreactions, 1);
    ev(m, 6, MSG("m1"), "{\"type\":\"msg.deleted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"pos\":3,\"deletedAt\":10}}");
    assert_int_equal(msg->nbody, 0);
    assert_null(body_cache_dup(m->bodies, 3)); /* both snapshots' bodies are out of memory */
    assert_null(body_cache_dup(m->bodies, 4));
    assert_int_equal(msg->deleted_at, 10);
    assert_int_equal(msg->nreactions, 0);
    assert_int_equal(msg->last_seq, 6);
    chat_model_take_erasures(m, &er, &n);
    assert_int_equal(n, 2); /* both snapshots that held the body */
    assert_int_equal(er[0], 3);
    assert_int_equal(er[1], 4);
    free(er);
    assert_int_equal(r->ntl, 3); /* the tombstone keeps its place */
    assert_ptr_equal(r->tl[2]->msg, msg);
    chat_model_free(m);
}

static void
test_body_cache_is_bounded_and_forgets_dropped_bodies(void **state)
{
    struct body_cache_stats st;
    char body[100], *b;
    (void)state;
    struct body_cache *bc = body_cache_new(4096);
    assert_non_null(bc);
    for (uint64_t seq = 1; seq <= 1000; seq++) {
        snprintf(body, sizeof body, "body number %llu", (unsigned long long)seq);
        body_cache_put(bc, seq, body, strlen(body));
    }
    body_cache_stats(bc, &st);
    assert_true(st.bytes <= 4096);
    assert_true(st.entries > 10 && st.entries < 100);
    assert_null(body_cache_dup(bc, 1)); /* the oldest went first */
    b = body_cache_dup(bc, 1000);
    assert_string_equal(b, "body number 1000");
    free(b);
    /* a use makes an entry recent: the newest puts evict others first */
    uint64_t oldest = 1000 - st.entries + 1;
    assert_true(body_cache_add_to(bc, oldest, NULL, NULL));
    char mid[200];
    memset(mid, 'm', sizeof mid);
    body_cache_put(bc, 1001, mid, sizeof mid); /* more than any slack: evicts */
    assert_true(body_cache_add_to(bc, oldest, NULL, NULL));
    assert_false(body_cache_add_to(bc, oldest + 1, NULL, NULL));
    /* a drop forgets and moves the generation: a fetch that raced with it is not kept */
    uint64_t gen = body_cache_gen(bc);
    body_cache_drop(bc, 1000);
    assert_null(body_cache_dup(bc, 1000));
    assert_false(body_cache_put_if(bc, gen, 1000, "deleted", 7));
    assert_null(body_cache_dup(bc, 1000));
    assert_true(body_cache_put_if(bc, body_cache_gen(bc), 1002, "fresh", 5));
    cJSON *o = cJSON_CreateObject();
    assert_true(body_cache_add_to(bc, 1002, o, "body"));
    assert_string_equal(cJSON_GetObjectItem(o, "body")->valuestring, "fresh");
    cJSON_Delete(o);
    /* a body larger than the whole cache is not kept; a cache of 0 keeps nothing */
    char big[5000];
    memset(big, 'a', sizeof big);
    body_cache_put(bc, 2000, big, sizeof big);
    assert_null(body_cache_dup(bc, 2000));
    body_cache_free(bc);
    bc = body_cache_new(0);
    body_cache_put(bc, 1, "x", 1);
    assert_null(body_cache_dup(bc, 1));
    body_cache_free(bc);
}

/* Everything a view shows of room r1, as one string (tl items, members, thread replies, pins). */
static char *
render_r1(struct chat_model *m)
{
    struct chat_room *r = model_room(m, "r1");
    cJSON *o = cJSON_CreateObject(), *tl = cJSON_AddArrayToObject(o, "tl"), *mem = cJSON_AddArrayToObject(o, "mem");
    size_t it = 0;
    const char *key;
    void *val;

    cJSON_AddItemToObject(o, "room", view_room(r));
    for (size_t i = 0; i < r->ntl; i++)
        cJSON_AddItemToArray(tl, view_item(m, r->tl[i], "r1", "bob", NULL));
    while (map_next(r->members, &it, &key, &val)) {
        const struct chat_member *cm = val;
        char line[200];
        snprintf(line, sizeof line, "%s %d %lld %llu %llu", cm->user, (int)cm->role, (long long)cm->joined_at,
                 (unsigned long long)cm->last_read, (unsigned long long)cm->seq);
        cJSON_AddItemToArray(mem, cJSON_CreateString(line));
    }
    const struct seqlist *l = map_get(r->threads, "m1");
    for (size_t i = 0; l && i < l->n; i++)
        cJSON_AddItemToArray(tl, view_message(m, l->v[i], "r1", "alice", NULL));
    for (size_t i = 0; i < r->npins; i++)
        cJSON_AddItemToArray(tl, cJSON_CreateString(r->pins[i].msg->id));
    cJSON_AddNumberToObject(o, "mentioned", (double)r->mentioned.n);
    cJSON_AddNumberToObject(o, "pin_seq", (double)r->pin_seq);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *
render_r1_with(struct chat_model *m, struct body_cache *bodies)
{
    struct body_cache *own = m->bodies;
    m->bodies = bodies; /* a loaded snapshot has no bodies: show the original's */
    char *s = render_r1(m);
    m->bodies = own;
    return s;
}

static void
test_snapshot_round_trip_and_damage(void **state)
{
    (void)state;
    struct chat_model *m = room_with_members(), *back = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    uint64_t seq = 0, seq2 = 0;
    struct ch_err err = { 0 };

    ev(m, 3, MSG("m1"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"body\":\"hi @bob\",\"mentions\":[\"bob\"]}}");
    ev(m, 4, MSG("m2"), "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"m2\",\"author\":\"bob\","
                        "\"createdAt\":6,\"body\":\"reply\",\"threadRoot\":\"m1\"}}");
    ev(m, 5, MSG("m1"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"+1\"}");
    ev(m, 6, MSG("m1"), "{\"type\":\"msg.pinned\",\"actor\":\"alice\",\"msgId\":\"m1\"}");
    ev(m, 7, MSG("m3"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m3\",\"author\":\"alice\","
                        "\"createdAt\":8,\"body\":\"x\",\"attachments\":[{\"id\":\"f1\",\"filename\":\"a.png\"}]}}");
    ev(m, 8, MSG("m3"), "{\"type\":\"msg.edited\",\"actor\":\"alice\",\"msg\":{\"id\":\"m3\",\"author\":\"alice\","
                        "\"createdAt\":8,\"pos\":7,\"editedAt\":9,\"body\":\"y\"}}");
    ev(m, 9, MSG("m4"), "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"m4\",\"author\":\"bob\","
                        "\"createdAt\":10,\"body\":\"gone\"}}");
    ev(m, 10, MSG("m4"), "{\"type\":\"msg.deleted\",\"actor\":\"bob\",\"msg\":{\"id\":\"m4\",\"author\":\"bob\","
                         "\"createdAt\":10,\"pos\":9,\"deletedAt\":11}}");
    ev(m, 11, ROOM, "{\"type\":\"room.updated\",\"id\":\"e11\",\"actor\":\"alice\",\"name\":\"Renamed\"}");
    chat_model_read(m, "bob.r1", "4", 1, 1);

    assert_int_equal(snapshot_encode(m, &buf, &len, &seq, &err), CH_OK);
    assert_int_equal(seq, 11);
    assert_int_equal(snapshot_decode(buf, len, &back, &seq2, &err), CH_OK);
    assert_int_equal(seq2, 11);
    char *a = render_r1(m), *b = render_r1_with(back, m->bodies);
    assert_string_equal(a, b);
    free(b);
    /* the copy keeps applying events as the original does */
    const char *more[] = {
        "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"m5\",\"author\":\"bob\",\"createdAt\":12,"
        "\"body\":\"r2\",\"threadRoot\":\"m1\"}}",
        "{\"type\":\"reaction.removed\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"+1\"}",
    };
    ev(m, 12, MSG("m5"), more[0]);
    ev(back, 12, MSG("m5"), more[0]);
    ev(m, 13, MSG("m1"), more[1]);
    ev(back, 13, MSG("m1"), more[1]);
    free(a);
    a = render_r1(m);
    b = render_r1_with(back, m->bodies);
    assert_string_equal(a, b);
    free(a);
    free(b);
    chat_model_free(back);

    /* damage: every truncation is refused, and random bytes never crash it */
    for (size_t n = 0; n < len; n++) {
        back = NULL;
        assert_int_not_equal(snapshot_decode(buf, n, &back, &seq2, &err), CH_OK);
        assert_null(back);
    }
    srand(7);
    for (int k = 0; k < 2000; k++) {
        unsigned char *c = malloc(len);
        memcpy(c, buf, len);
        for (int f = 0; f < 1 + k % 4; f++)
            c[44 + (size_t)rand() % (len - 48)] = (unsigned char)rand();
        back = NULL;
        if (snapshot_decode(c, len, &back, &seq2, &err) == CH_OK)
            chat_model_free(back);
        free(c);
    }
    free(buf);
    chat_model_free(m);
}

static void
test_attachments_are_shown_and_dropped_with_the_message(void **state)
{
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    (void)state;
    ev(m, 3, MSG("m1"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"body\":\"\",\"mentions\":[],\"attachments\":[{\"id\":\"f1\","
                        "\"filename\":\"a.png\",\"contentType\":\"image/png\",\"size\":12,\"width\":3,\"height\":4}]}}");
    struct chat_msg *msg = model_msg(r, "m1");
    assert_non_null(msg->attachments);
    /* no URL hook set: the bare path (the session cookie or a bearer token opens it) */
    cJSON *v = view_message(m, msg, "r1", "bob", NULL), *a = cJSON_GetArrayItem(cJSON_GetObjectItem(v, "attachments"), 0);
    assert_string_equal(cJSON_GetObjectItem(a, "filename")->valuestring, "a.png");
    assert_string_equal(cJSON_GetObjectItem(a, "size")->valuestring, "12");
    assert_int_equal(cJSON_GetObjectItem(a, "width")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "assetUrl"), "url")->valuestring, "/assets/files/f1");
    cJSON_Delete(v);
    ev(m, 4, MSG("m1"), "{\"type\":\"msg.deleted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"pos\":3,\"deletedAt\":10}}");
    assert_null(msg->attachments);
    v = view_message(m, msg, "r1", "bob", NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "attachments")), 0);
    cJSON_Delete(v);
    chat_model_free(m);
}

static void
test_replay_after_erasure_keeps_positions(void **state)
{
    /* the first snapshot (seq 3) was erased by an edit; the replay sees a reaction before the edit snapshot */
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    (void)state;
    ev(m, 4, MSG("m0"), "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"m0\",\"author\":\"bob\","
                        "\"createdAt\":6,\"body\":\"later\"}}");
    ev(m, 5, MSG("m1"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"y\"}");
    assert_null(model_msg(r, "m1")); /* a placeholder only */
    ev(m, 6, MSG("m1"), "{\"type\":\"msg.edited\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"pos\":3,\"editedAt\":9,\"body\":\"edited\"}}");
    struct chat_msg *msg = model_msg(r, "m1");
    assert_non_null(msg);
    assert_int_equal(msg->nreactions, 1);
    /* ordered by original position: created(1) joined(2) m1(3) m0(4) */
    assert_int_equal(r->ntl, 4);
    assert_ptr_equal(r->tl[2]->msg, msg);
    assert_string_equal(r->tl[3]->msg->id, "m0");
    /* a tombstone without any snapshot (all erased) still places the message */
    ev(m, 7, MSG("m9"), "{\"type\":\"msg.deleted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m9\",\"author\":\"bob\","
                        "\"createdAt\":1,\"pos\":2,\"deletedAt\":11}}");
    assert_int_equal(r->ntl, 5);
    assert_string_equal(r->tl[2]->msg->id, "m9");
    chat_model_free(m);
}

static void
test_threads_count_live_replies(void **state)
{
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    (void)state;
    ev(m, 3, MSG("root"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"root\",\"author\":\"alice\","
                          "\"createdAt\":5,\"body\":\"q\"}}");
    ev(m, 4, MSG("r1a"), "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"r1a\",\"author\":\"bob\","
                         "\"createdAt\":6,\"body\":\"a\",\"threadRoot\":\"root\"}}");
    ev(m, 5, MSG("r1b"), "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"r1b\",\"author\":\"bob\","
                         "\"createdAt\":7,\"body\":\"b\",\"threadRoot\":\"root\"}}");
    struct chat_msg *root = model_msg(r, "root");
    assert_int_equal(root->reply_count, 2);
    assert_int_equal(root->last_reply_at, 7);
    assert_int_equal(r->ntl, 3); /* replies are not in the timeline */
    ev(m, 6, MSG("r1b"), "{\"type\":\"msg.deleted\",\"actor\":\"bob\",\"msg\":{\"id\":\"r1b\",\"author\":\"bob\","
                         "\"createdAt\":7,\"pos\":5,\"threadRoot\":\"root\",\"deletedAt\":8}}");
    assert_int_equal(root->reply_count, 1);
    assert_int_equal(root->last_reply_at, 6);
    /* an edit changes neither; a deleted reply deleted again (a replayed tombstone) counts once */
    ev(m, 7, MSG("r1a"), "{\"type\":\"msg.edited\",\"actor\":\"bob\",\"msg\":{\"id\":\"r1a\",\"author\":\"bob\","
                         "\"createdAt\":6,\"pos\":4,\"body\":\"a2\",\"threadRoot\":\"root\",\"editedAt\":9}}");
    ev(m, 8, MSG("r1b"), "{\"type\":\"msg.deleted\",\"actor\":\"bob\",\"msg\":{\"id\":\"r1b\",\"author\":\"bob\","
                         "\"createdAt\":7,\"pos\":5,\"threadRoot\":\"root\",\"deletedAt\":8}}");
    assert_int_equal(root->reply_count, 1);
    assert_int_equal(root->last_reply_at, 6);
    chat_model_free(m);
}

static void
test_reactions_add_remove_idempotent(void **state)
{
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    (void)state;
    ev(m, 3, MSG("m1"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m1\",\"author\":\"alice\","
                        "\"createdAt\":5,\"body\":\"x\"}}");
    ev(m, 4, MSG("m1"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"+1\"}");
    ev(m, 5, MSG("m1"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"+1\"}");
    ev(m, 6, MSG("m1"), "{\"type\":\"reaction.added\",\"actor\":\"alice\",\"msgId\":\"m1\",\"emoji\":\"+1\"}");
    struct chat_msg *msg = model_msg(r, "m1");
    assert_int_equal(msg->nreactions, 1);
    assert_int_equal(msg->reactions[0].n, 2);
    ev(m, 7, MSG("m1"), "{\"type\":\"reaction.removed\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"+1\"}");
    ev(m, 8, MSG("m1"), "{\"type\":\"reaction.removed\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"+1\"}");
    assert_int_equal(msg->reactions[0].n, 1);
    ev(m, 9, MSG("m1"), "{\"type\":\"reaction.removed\",\"actor\":\"alice\",\"msgId\":\"m1\",\"emoji\":\"+1\"}");
    assert_int_equal(msg->nreactions, 0);
    cJSON *v = view_message(m, msg, "r1", "alice", NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "reactions")), 0);
    cJSON_Delete(v);
    chat_model_free(m);
}

static void
test_malformed_events_are_counted_and_skipped(void **state)
{
    struct chat_model *m = room_with_members();
    (void)state;
    ev(m, 3, "chatto.ev.r1.msg.x", "not json");
    ev(m, 4, "chatto.ev..room", "{\"type\":\"room.created\"}");
    ev(m, 5, "other.subject", "{\"type\":\"msg.posted\"}");
    ev(m, 6, "chatto.ev.r1.msg.x", "{\"type\":\"who.knows\"}");
    ev(m, 7, "chatto.ev.r*.room", "{\"type\":\"room.created\"}");
    ev(m, 8, MSG("m1"), "{\"type\":\"msg.posted\",\"msg\":{\"id\":\"bad.id\"}}");
    assert_true(atomic_load(&m->bad_events) >= 5);
    assert_int_equal(chat_model_applied(m), 8);
    assert_int_equal(model_room(m, "r1")->ntl, 2);
    chat_model_free(m);
}

static void
test_users_directory_and_read_positions(void **state)
{
    struct chat_model *m = room_with_members();
    const char *u = "{\"id\":\"bob\",\"login\":\"bob\",\"displayName\":\"Bob\",\"role\":\"member\","
                    "\"passwordHash\":\"$argon2id$secret\"}";
    (void)state;
    chat_model_user(m, "bob", u, strlen(u), 1);
    chat_model_user(m, NULL, NULL, 0, 0);
    const struct user *b = model_user(m, "bob");
    assert_non_null(b);
    assert_string_equal(b->display_name, "Bob");
    assert_string_equal(b->password_hash, ""); /* never kept in memory */
    assert_string_equal(map_get(m->logins, "bob"), "bob");
    chat_model_read(m, "bob.r1", "7", 1, 3);
    assert_int_equal(model_member(model_room(m, "r1"), "bob")->last_read, 7);
    chat_model_read(m, "bob.r1", "5", 1, 4); /* never backwards */
    assert_int_equal(model_member(model_room(m, "r1"), "bob")->last_read, 7);
    /* a read position that arrives before the membership is kept for it */
    chat_model_read(m, "carol.r1", "9", 1, 5);
    ev(m, 3, "chatto.ev.r1.mem.carol", "{\"type\":\"member.added\",\"actor\":\"alice\",\"user\":\"carol\"}");
    assert_int_equal(model_member(model_room(m, "r1"), "carol")->last_read, 9);
    assert_true(chat_model_wait_reads(m, 5, 10));
    assert_false(chat_model_wait_reads(m, 6, 10));
    chat_model_free(m);
}

/* Posts the stream orders after their author left, or after the room was archived, are refused the same way on
 * every process: invisible, their later events ignored, their bytes erased. */
static void
test_posts_after_leaving_or_archiving_are_refused(void **state)
{
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    uint64_t *er = NULL;
    size_t n = 0;
    (void)state;
    ev(m, 3, "chatto.ev.r1.mem.bob", "{\"type\":\"member.left\",\"id\":\"e3\",\"actor\":\"bob\",\"user\":\"bob\"}");
    ev(m, 4, MSG("m1"), "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"m1\",\"author\":\"bob\","
                        "\"createdAt\":5,\"body\":\"too late\"}}");
    assert_null(model_msg(r, "m1"));
    assert_true(((struct chat_msg *)map_get(r->msgs, "m1"))->refused);
    ev(m, 5, MSG("m1"), "{\"type\":\"msg.edited\",\"actor\":\"bob\",\"msg\":{\"id\":\"m1\",\"author\":\"bob\","
                        "\"createdAt\":5,\"pos\":4,\"editedAt\":9,\"body\":\"still\"}}");
    assert_null(model_msg(r, "m1"));
    /* alice, still a member, posts; then the room is archived and her next post is refused */
    ev(m, 6, MSG("m2"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m2\",\"author\":\"alice\","
                        "\"createdAt\":6,\"body\":\"fine\"}}");
    assert_non_null(model_msg(r, "m2"));
    ev(m, 7, ROOM, "{\"type\":\"room.archived\",\"id\":\"e7\",\"actor\":\"alice\"}");
    ev(m, 8, MSG("m3"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"m3\",\"author\":\"alice\","
                        "\"createdAt\":8,\"body\":\"archived\"}}");
    assert_null(model_msg(r, "m3"));
    chat_model_take_erasures(m, &er, &n);
    assert_int_equal(n, 3);
    assert_int_equal(er[0], 4);
    assert_int_equal(er[1], 5);
    assert_int_equal(er[2], 8);
    free(er);
    chat_model_free(m);
}

/* The cold timeline (core.resident_messages): plain messages past the window leave memory, keep their place and
 * author (unread counts), and come back before anything is applied to them; snapshots keep them. */
static void
post_json(char *buf, size_t len, int i)
{
    snprintf(buf, len,
             "{\"type\":\"msg.posted\",\"actor\":\"%s\",\"msg\":{\"id\":\"m%d\",\"author\":\"%s\",\"createdAt\":%d,"
             "\"body\":\"body %d\"}}",
             i % 2 ? "alice" : "bob", i, i % 2 ? "alice" : "bob", 100 + i, i);
}

static size_t
resident_msgs(const struct chat_room *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->ntl; i++)
        n += r->tl[i]->kind == IT_MSG;
    return n;
}

/* core.resident_idle_after: a room quiet for that long keeps one page in memory, an active one the whole window. */
static void
test_cold_idle_room(void **state)
{
    (void)state;
    struct chat_model *m = room_with_members();
    struct chat_room *r = model_room(m, "r1");
    char json[256], subj[64];

    chat_model_set_resident(m, 200);
    for (int i = 1; i <= 300; i++) { /* (createdAt 101..400: long ago) */
        post_json(json, sizeof json, i);
        snprintf(subj, sizeof subj, "chatto.ev.r1.msg.m%d", i);
        ev(m, (uint64_t)i + 2, subj, json);
    }
    assert_true(resident_msgs(r) >= 200 && resident_msgs(r) <= 200 + 50);
    /* once the process counts a room as idle after a while, the eraser's sweep shrinks it to a page */
    chat_model_set_idle(m, 60000);
    chat_model_sweep(m);
    assert_int_equal(resident_msgs(r), MODEL_IDLE_WINDOW);
    assert_int_equal(resident_msgs(r) + r->cold.n, 300);
    /* a new message wakes it up: it grows back to the window as messages come (nothing comes back by itself) */
    snprintf(json, sizeof json,
             "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"now\",\"author\":\"bob\","
             "\"createdAt\":%lld,\"body\":\"awake\"}}", (long long)clock_wall_ms());
    ev(m, 1000, MSG("now"), json);
    chat_model_sweep(m);
    assert_int_equal(resident_msgs(r), MODEL_IDLE_WINDOW + 1);
    assert_int_equal(resident_msgs(r) + r->cold.n, 301);
    chat_model_free(m);
}

/* A thread quiet for core.resident_idle_after keeps no plain reply in memory: their places and authors only; an
 * event about one brings it back first; a snapshot keeps them. */
static void
test_cold_thread_replies(void **state)
{
    (void)state;
    struct chat_model *m = room_with_members(), *back = NULL;
    struct chat_room *r = model_room(m, "r1");
    char json[320], subj[64], need[ID_MAX + 1];

    chat_model_set_resident(m, 10);
    chat_model_set_idle(m, 60000);
    ev(m, 3, MSG("root"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"root\",\"author\":"
                          "\"alice\",\"createdAt\":100,\"body\":\"a thread\"}}");
    for (int i = 1; i <= 30; i++) { /* seq = i + 3; replies long ago */
        snprintf(json, sizeof json,
                 "{\"type\":\"msg.posted\",\"actor\":\"%s\",\"msg\":{\"id\":\"x%d\",\"author\":\"%s\","
                 "\"createdAt\":%d,\"body\":\"reply %d\",\"threadRoot\":\"root\"}}",
                 i % 3 ? "bob" : "alice", i, i % 3 ? "bob" : "alice", 100 + i, i);
        snprintf(subj, sizeof subj, "chatto.ev.r1.msg.x%d", i);
        ev(m, (uint64_t)i + 3, subj, json);
    }
    ev(m, 40, MSG("x7"), "{\"type\":\"msg.pinned\",\"actor\":\"bob\",\"msgId\":\"x7\"}");
    ev(m, 41, MSG("x8"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"x8\",\"emoji\":\"+1\"}");
    struct seqlist *l = map_get(r->threads, model_msg(r, "root")->id);
    assert_non_null(l);
    assert_int_equal(l->n, 30);
    chat_model_sweep(m);
    assert_int_equal(l->n, 1); /* x7 is pinned: it stays */
    assert_int_equal(l->cold.n, 29);
    assert_int_equal(r->thread_cold, 29);
    assert_null(model_msg(r, "x1"));
    assert_non_null(model_msg(r, "x7"));
    assert_null(model_msg(r, "x8")); /* reacted to: out too, rich */
    size_t k8 = cold_list_after(&l->cold, 10);
    assert_int_equal(cold_list_pos(&l->cold, k8), 11);
    assert_true(cold_list_rich(&l->cold, k8));
    assert_false(cold_list_rich(&l->cold, 0));
    assert_true(l->settled); /* (x7 cannot leave) */
    /* unpinned, x7 may leave too: the next pass looks again */
    ev(m, 42, MSG("x7"), "{\"type\":\"msg.unpinned\",\"actor\":\"bob\",\"msgId\":\"x7\"}");
    assert_false(l->settled);
    assert_int_equal(model_msg(r, "root")->reply_count, 30);
    for (size_t i = 1; i < l->cold.n; i++)
        assert_true(cold_list_pos(&l->cold, i - 1) < cold_list_pos(&l->cold, i));
    assert_int_equal(cold_list_pos(&l->cold, 0), 4); /* x1 */
    /* an event about a cold reply waits for it to come back */
    const char *react = "{\"type\":\"reaction.added\",\"actor\":\"alice\",\"msgId\":\"x2\",\"emoji\":\"+1\"}";
    assert_false(chat_model_apply(m, 41, MSG("x2"), react, strlen(react), 1, need));
    assert_string_equal(need, "x2");
    snprintf(json, sizeof json,
             "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"x2\",\"author\":\"bob\","
             "\"createdAt\":102,\"body\":\"reply 2\",\"threadRoot\":\"root\"}}");
    assert_true(chat_model_restore(m, 5, MSG("x2"), json, strlen(json), NULL, 0));
    assert_false(chat_model_restore(m, 5, MSG("x2"), json, strlen(json), NULL, 0)); /* once */
    assert_int_equal(l->cold.n, 28);
    assert_int_equal(r->thread_cold, 28);
    struct chat_msg *x2 = model_msg(r, "x2");
    assert_non_null(x2);
    assert_string_equal(x2->thread_root, "root");
    assert_int_equal(l->n, 2);
    assert_true(l->v[0] == x2 && l->v[1] == model_msg(r, "x7"));
    assert_true(chat_model_apply(m, 41, MSG("x2"), react, strlen(react), 1, need));
    assert_int_equal(x2->nreactions, 1);
    /* a rich reply comes back with its reaction */
    snprintf(json, sizeof json,
             "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"x8\",\"author\":\"bob\","
             "\"createdAt\":108,\"body\":\"reply 8\",\"threadRoot\":\"root\"}}");
    bool one = false;
    assert_int_equal(chat_model_cold_last(m, 11, MSG("x8"), json, strlen(json), &one), 41);
    assert_true(one);
    const char *react8 = "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"x8\",\"emoji\":\"+1\"}";
    struct chat_event_ref later8[] = { { 41, react8, strlen(react8) } };
    assert_true(chat_model_restore(m, 11, MSG("x8"), json, strlen(json), later8, 1));
    assert_non_null(model_msg(r, "x8"));
    assert_int_equal(model_msg(r, "x8")->nreactions, 1);
    assert_int_equal(l->cold.n, 27);
    assert_int_equal(r->thread_cold, 27);

    /* a snapshot keeps the cold replies */
    unsigned char *buf = NULL;
    size_t len = 0;
    uint64_t seq = 0, seq2 = 0;
    struct ch_err err = { 0 };
    assert_int_equal(snapshot_encode(m, &buf, &len, &seq, &err), CH_OK);
    assert_int_equal(snapshot_decode(buf, len, &back, &seq2, &err), CH_OK);
    struct chat_room *r2 = model_room(back, "r1");
    struct seqlist *l2 = map_get(r2->threads, model_msg(r2, "root")->id);
    assert_non_null(l2);
    assert_int_equal(r2->thread_cold, 27);
    assert_int_equal(l2->cold.n, 27);
    assert_int_equal(l2->n, 3);
    for (size_t i = 0; i < l->cold.n; i++) {
        assert_int_equal(cold_list_pos(&l2->cold, i), cold_list_pos(&l->cold, i));
        assert_string_equal(back->authors[l2->cold.author[i]], m->authors[l->cold.author[i]]);
        assert_int_equal(cold_list_rich(&l2->cold, i), cold_list_rich(&l->cold, i));
        assert_int_equal(cold_list_last(&l2->cold, i), cold_list_last(&l->cold, i));
    }
    chat_model_free(back);
    free(buf);
    /* a thread all of whose replies are cold: the loader makes its list */
    ev(m, 50, MSG("root2"), "{\"type\":\"msg.posted\",\"actor\":\"alice\",\"msg\":{\"id\":\"root2\",\"author\":"
                            "\"alice\",\"createdAt\":200,\"body\":\"another\"}}");
    for (int i = 1; i <= 3; i++) {
        snprintf(json, sizeof json,
                 "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"y%d\",\"author\":\"bob\","
                 "\"createdAt\":%d,\"body\":\"y %d\",\"threadRoot\":\"root2\"}}", i, 200 + i, i);
        snprintf(subj, sizeof subj, "chatto.ev.r1.msg.y%d", i);
        ev(m, (uint64_t)i + 50, subj, json);
    }
    m->threads_swept_ms = 0;
    chat_model_sweep(m);
    assert_int_equal(r->thread_cold, 28 + 3);
    assert_int_equal(snapshot_encode(m, &buf, &len, &seq, &err), CH_OK);
    assert_int_equal(snapshot_decode(buf, len, &back, &seq2, &err), CH_OK);
    r2 = model_room(back, "r1");
    l2 = map_get(r2->threads, model_msg(r2, "root2")->id);
    assert_non_null(l2);
    assert_int_equal(l2->n, 0);
    assert_int_equal(l2->cold.n, 3);
    assert_int_equal(r2->thread_cold, 31);
    chat_model_free(back);
    free(buf);
    chat_model_free(m);
}

static void
test_cold_timeline(void **state)
{
    (void)state;
    struct chat_model *m = room_with_members(), *back = NULL;
    struct chat_room *r = model_room(m, "r1");
    char json[256], subj[64], need[ID_MAX + 1];
    size_t alice = 0;

    chat_model_set_resident(m, 10);
    for (int i = 1; i <= 200; i++) { /* seq = i + 2 */
        post_json(json, sizeof json, i);
        snprintf(subj, sizeof subj, "chatto.ev.r1.msg.m%d", i);
        ev(m, (uint64_t)i + 2, subj, json);
        alice += i % 2;
        if (i == 5)
            ev(m, 1000, MSG("m5"), "{\"type\":\"msg.pinned\",\"actor\":\"bob\",\"msgId\":\"m5\"}");
        if (i == 6)
            ev(m, 1001, MSG("m6"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m6\",\"emoji\":\"+1\"}");
        if (i == 7)
            ev(m, 1002, MSG("m7"), "{\"type\":\"msg.edited\",\"actor\":\"alice\",\"msg\":{\"id\":\"m7\",\"author\":"
                                   "\"alice\",\"createdAt\":107,\"editedAt\":500,\"pos\":9,\"body\":\"body 7, edited\"}}");
        if (i == 10)
            ev(m, 1003, MSG("m10"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m10\",\"emoji\":\"x\"}");
        if (i == 12) {
            ev(m, 1004, MSG("m12"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m12\",\"emoji\":\"x\"}");
            ev(m, 1005, MSG("m12"), "{\"type\":\"reaction.removed\",\"actor\":\"bob\",\"msgId\":\"m12\",\"emoji\":\"x\"}");
        }
        if (i == 14) { /* edited, then reacted to: no one event holds all of it */
            ev(m, 1006, MSG("m14"), "{\"type\":\"msg.edited\",\"actor\":\"bob\",\"msg\":{\"id\":\"m14\",\"author\":"
                                    "\"bob\",\"createdAt\":114,\"editedAt\":600,\"pos\":16,\"body\":\"14!\"}}");
            ev(m, 1007, MSG("m14"), "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m14\",\"emoji\":\"x\"}");
        }
    }
    /* everything is somewhere, once, in order */
    size_t msgs = 0;
    for (size_t i = 0; i < r->ntl; i++)
        msgs += r->tl[i]->kind == IT_MSG;
    assert_int_equal(msgs + r->cold.n, 200);
    assert_true(r->cold.n >= 200 - 10 - 64 - 1);
    for (size_t i = 1; i < r->cold.n; i++)
        assert_true(model_cold_pos(r, i - 1) < model_cold_pos(r, i));
    assert_null(model_msg(r, "m1"));
    assert_non_null(model_msg(r, "m5")); /* pinned: kept */
    assert_non_null(model_msg(r, "m200"));
    assert_int_equal(model_cold_pos(r, 0), 3); /* m1 */
    /* reacted to, edited: out of memory too, as rich entries; plain ones are not rich */
    assert_null(model_msg(r, "m6"));
    assert_null(model_msg(r, "m7"));
    assert_non_null(model_msg(r, "m14")); /* (edited and reacted to: kept) */
    size_t k6 = model_cold_after(r, 7);
    assert_int_equal(model_cold_pos(r, k6), 8);
    assert_true(cold_list_rich(&r->cold, k6));
    assert_false(cold_list_rich(&r->cold, 0));
    post_json(json, sizeof json, 6);
    bool one = false;
    assert_int_equal(chat_model_cold_last(m, 8, MSG("m6"), json, strlen(json), &one), 1001);
    assert_true(one); /* (its only event after the post) */
    post_json(json, sizeof json, 1);
    assert_int_equal(chat_model_cold_last(m, 3, MSG("m1"), json, strlen(json), &one), 0);
    post_json(json, sizeof json, 12);
    assert_int_equal(chat_model_cold_last(m, 14, MSG("m12"), json, strlen(json), &one), 1005);
    assert_false(one); /* (a reaction taken back before it) */
    /* an edited one: its last edit replaced the post (erased), and is all there is of it */
    const char *edit7 = "{\"type\":\"msg.edited\",\"actor\":\"alice\",\"msg\":{\"id\":\"m7\",\"author\":"
                        "\"alice\",\"createdAt\":107,\"editedAt\":500,\"pos\":9,\"body\":\"body 7, edited\"}}";
    assert_int_equal(chat_model_cold_last(m, 1002, MSG("m7"), edit7, strlen(edit7), &one), 1002);
    assert_true(one);
    assert_true(chat_model_restore(m, 1002, MSG("m7"), edit7, strlen(edit7), NULL, 0));
    struct chat_msg *m7 = model_msg(r, "m7");
    assert_non_null(m7);
    assert_int_equal(m7->pos, 9);
    assert_int_equal(m7->edited_at, 500);
    assert_int_equal(m7->nbody, 1);
    assert_int_equal(m7->body_seqs[0], 1002); /* the body shown: the edit's */
    assert_int_equal(m7->last_seq, 1002);
    assert_int_equal(r->tl[model_tl_after(r, 8)]->msg, m7);
    /* unread: bob has read nothing and alice wrote the odd ones */
    struct chat_member *bob = model_member(r, "bob");
    size_t unread, mentions;
    chat_unread_counts(m, r, bob, &unread, &mentions);
    assert_int_equal(unread, alice);
    bob->last_read = 3 + 99; /* up to m100 */
    chat_unread_counts(m, r, bob, &unread, &mentions);
    assert_int_equal(unread, 50);
    bob->last_read = 0;

    /* an event about a cold message is not applied before it is back */
    const char *react = "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m1\",\"emoji\":\"+1\"}";
    assert_false(chat_model_apply(m, 2000, MSG("m1"), react, strlen(react), 1, need));
    assert_string_equal(need, "m1");
    const char *reply = "{\"type\":\"msg.posted\",\"actor\":\"bob\",\"msg\":{\"id\":\"x1\",\"author\":\"bob\","
                        "\"createdAt\":5,\"body\":\"re\",\"threadRoot\":\"m3\"}}";
    assert_false(chat_model_apply(m, 2000, MSG("x1"), reply, strlen(reply), 1, need));
    assert_string_equal(need, "m3");
    size_t cold = r->cold.n;
    post_json(json, sizeof json, 1);
    assert_false(chat_model_restore(m, 9999, MSG("m1"), json, strlen(json), NULL, 0)); /* no cold message there */
    assert_true(chat_model_restore(m, 3, MSG("m1"), json, strlen(json), NULL, 0));
    assert_false(chat_model_restore(m, 3, MSG("m1"), json, strlen(json), NULL, 0)); /* once */
    assert_int_equal(r->cold.n, cold - 1);
    struct chat_msg *m1 = model_msg(r, "m1");
    assert_non_null(m1);
    assert_int_equal(m1->pos, 3);
    assert_string_equal(m1->author, "alice");
    assert_int_equal(r->tl[model_tl_after(r, 2)]->msg, m1);
    assert_true(chat_model_apply(m, 2000, MSG("m1"), react, strlen(react), 1, need));
    assert_int_equal(m1->nreactions, 1);
    chat_unread_counts(m, r, bob, &unread, &mentions);
    assert_int_equal(unread, alice); /* the same, wherever m1 is */

    /* a rich one comes back from its post and the later events on its subject the model had applied, quietly */
    const char *react6 = "{\"type\":\"reaction.added\",\"actor\":\"bob\",\"msgId\":\"m6\",\"emoji\":\"+1\"}";
    const char *late6 = "{\"type\":\"reaction.added\",\"actor\":\"alice\",\"msgId\":\"m6\",\"emoji\":\"+1\"}";
    struct chat_event_ref later6[] = { { 1001, react6, strlen(react6) }, { 900000, late6, strlen(late6) } };
    post_json(json, sizeof json, 6);
    assert_true(chat_model_restore(m, 8, MSG("m6"), json, strlen(json), later6, 2));
    struct chat_msg *m6 = model_msg(r, "m6");
    assert_non_null(m6);
    assert_int_equal(m6->nreactions, 1);
    assert_int_equal(m6->reactions[0].n, 1); /* (not the event the model has not applied yet) */
    assert_string_equal(m6->reactions[0].users[0], "bob");
    assert_int_equal(m6->last_seq, 1001);
    chat_unread_counts(m, r, bob, &unread, &mentions);
    assert_int_equal(unread, alice);

    /* a snapshot keeps the cold timeline */
    unsigned char *buf = NULL;
    size_t len = 0;
    uint64_t seq = 0, seq2 = 0;
    struct ch_err err = { 0 };
    assert_int_equal(snapshot_encode(m, &buf, &len, &seq, &err), CH_OK);
    assert_int_equal(snapshot_decode(buf, len, &back, &seq2, &err), CH_OK);
    struct chat_room *r2 = model_room(back, "r1");
    assert_int_equal(r2->cold.n, r->cold.n);
    for (size_t i = 0; i < r->cold.n; i++) {
        assert_int_equal(model_cold_pos(r2, i), model_cold_pos(r, i));
        assert_string_equal(back->authors[r2->cold.author[i]], m->authors[r->cold.author[i]]);
        assert_int_equal(cold_list_rich(&r2->cold, i), cold_list_rich(&r->cold, i));
        assert_int_equal(cold_list_last(&r2->cold, i), cold_list_last(&r->cold, i));
        assert_int_equal(cold_list_one(&r2->cold, i), cold_list_one(&r->cold, i));
    }
    assert_true(cold_list_rich(&r2->cold, model_cold_after(r2, 11))); /* m10, still out */
    assert_int_equal(model_msg(r2, "m7")->nlater, 1); /* (its edit: kept by the snapshot) */
    chat_unread_counts(back, r2, model_member(r2, "bob"), &unread, &mentions);
    assert_int_equal(unread, alice);
    /* a model that keeps fewer evicts what a snapshot brings */
    struct chat_model *small = chat_model_new(1 << 20);
    chat_model_set_resident(small, 1);
    r2->evict_kept = 0;
    chat_model_adopt(small, back, seq2);
    struct chat_room *r3 = model_room(small, "r1");
    msgs = 0;
    for (size_t i = 0; i < r3->ntl; i++)
        msgs += r3->tl[i]->kind == IT_MSG;
    assert_int_equal(msgs + r3->cold.n, 200);
    chat_model_free(small);
    chat_model_free(back);
    free(buf);
    chat_model_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_room_members_and_timeline),
        cmocka_unit_test(test_body_cache_is_bounded_and_forgets_dropped_bodies),
        cmocka_unit_test(test_snapshot_round_trip_and_damage),
        cmocka_unit_test(test_messages_edits_deletes_and_erasure_backlog),
        cmocka_unit_test(test_attachments_are_shown_and_dropped_with_the_message),
        cmocka_unit_test(test_replay_after_erasure_keeps_positions),
        cmocka_unit_test(test_threads_count_live_replies),
        cmocka_unit_test(test_reactions_add_remove_idempotent),
        cmocka_unit_test(test_malformed_events_are_counted_and_skipped),
        cmocka_unit_test(test_users_directory_and_read_positions),
        cmocka_unit_test(test_posts_after_leaving_or_archiving_are_refused),
        cmocka_unit_test(test_cold_timeline),
        cmocka_unit_test(test_cold_idle_room),
        cmocka_unit_test(test_cold_thread_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
