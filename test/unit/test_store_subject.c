/* SPDX-License-Identifier: MIT */
/* lib/store/subject: building NATS subjects from ids and taking event subjects apart (no NATS needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "store/subject.h"

#define ID64 "0123456789012345678901234567890123456789012345678901234567890123"
#define ID65 ID64 "4"

enum which { ROOM, MEMBER, MESSAGE, TYPING };

static enum ch_status
build(enum which w, char *buf, size_t len, const char *room, const char *id)
{
    switch (w) {
    case ROOM:
        return store_subject_event_room(buf, len, room);
    case MEMBER:
        return store_subject_event_member(buf, len, room, id);
    case MESSAGE:
        return store_subject_event_message(buf, len, room, id);
    case TYPING:
        return store_subject_typing(buf, len, room);
    }
    return CH_EINTERNAL;
}

static void
test_subject_builders(void **state)
{
    static const struct {
        enum which w;
        const char *room, *id;
        size_t len; /* 0: STORE_SUBJECT_MAX */
        enum ch_status want;
        const char *subject; /* expected on CH_OK */
    } cases[] = {
        { ROOM, "r1", NULL, 0, CH_OK, "chatto.ev.r1.room" },
        { ROOM, "general", NULL, 0, CH_OK, "chatto.ev.general.room" },
        { MEMBER, "r1", "bob", 0, CH_OK, "chatto.ev.r1.mem.bob" },
        { MESSAGE, "r1", "01hx-Z_9", 0, CH_OK, "chatto.ev.r1.msg.01hx-Z_9" },
        { TYPING, "r1", NULL, 0, CH_OK, "chatto.rt.typing.r1" },
        { MESSAGE, ID64, ID64, 0, CH_OK, "chatto.ev." ID64 ".msg." ID64 }, /* the longest fits the max */
        /* ids that would change the subject's shape or reach a wildcard */
        { ROOM, "", NULL, 0, CH_EINVAL, NULL },
        { ROOM, NULL, NULL, 0, CH_EINVAL, NULL },
        { ROOM, "a.b", NULL, 0, CH_EINVAL, NULL },
        { ROOM, "*", NULL, 0, CH_EINVAL, NULL },
        { ROOM, ">", NULL, 0, CH_EINVAL, NULL },
        { ROOM, "a b", NULL, 0, CH_EINVAL, NULL },
        { ROOM, ID65, NULL, 0, CH_EINVAL, NULL },
        { MEMBER, "r1", "", 0, CH_EINVAL, NULL },
        { MEMBER, "r1", NULL, 0, CH_EINVAL, NULL },
        { MEMBER, "r1", "bob.x", 0, CH_EINVAL, NULL },
        { MEMBER, "r.1", "bob", 0, CH_EINVAL, NULL },
        { MESSAGE, "r1", "m>", 0, CH_EINVAL, NULL },
        { MESSAGE, "r1", ID65, 0, CH_EINVAL, NULL },
        { TYPING, "r1.x", NULL, 0, CH_EINVAL, NULL },
        { TYPING, "", NULL, 0, CH_EINVAL, NULL },
        /* truncation: exactly enough, one byte short, nothing */
        { ROOM, "r1", NULL, sizeof "chatto.ev.r1.room", CH_OK, "chatto.ev.r1.room" },
        { ROOM, "r1", NULL, sizeof "chatto.ev.r1.room" - 1, CH_EINVAL, NULL },
        { MEMBER, "r1", "bob", sizeof "chatto.ev.r1.mem.bob" - 1, CH_EINVAL, NULL },
        { MESSAGE, "r1", "m1", 10, CH_EINVAL, NULL },
        { TYPING, "r1", NULL, sizeof "chatto.rt.typing.r1" - 1, CH_EINVAL, NULL },
        { ROOM, "r1", NULL, 1, CH_EINVAL, NULL },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[STORE_SUBJECT_MAX + 8];
        size_t len = cases[i].len ? cases[i].len : STORE_SUBJECT_MAX;
        memset(buf, 'X', sizeof buf);
        enum ch_status st = build(cases[i].w, buf, len, cases[i].room, cases[i].id);
        if (st != cases[i].want)
            fail_msg("case %zu: status %d, want %d", i, st, cases[i].want);
        if (st == CH_OK && strcmp(buf, cases[i].subject) != 0)
            fail_msg("case %zu: built \"%s\", want \"%s\"", i, buf, cases[i].subject);
        if (st != CH_OK && buf[0] != '\0')
            fail_msg("case %zu: a failed build left \"%.*s\" in the buffer", i, (int)len, buf);
    }
    /* len 0 writes nothing at all */
    char one = 'X';
    assert_int_equal(store_subject_event_room(&one, 0, "r1"), CH_EINVAL);
    assert_int_equal(one, 'X');
}

static void
test_subject_event_parse(void **state)
{
    static const struct {
        const char *subject;
        bool ok;
        enum store_event_kind kind;
        const char *room, *id;
    } cases[] = {
        { "chatto.ev.r1.room", true, STORE_EV_ROOM, "r1", "" },
        { "chatto.ev.general.room", true, STORE_EV_ROOM, "general", "" },
        { "chatto.ev.r1.mem.bob", true, STORE_EV_MEMBER, "r1", "bob" },
        { "chatto.ev.r1.msg.01hx-Z_9", true, STORE_EV_MESSAGE, "r1", "01hx-Z_9" },
        { "chatto.ev." ID64 ".msg." ID64, true, STORE_EV_MESSAGE, ID64, ID64 },
        { "chatto.ev.room.room", true, STORE_EV_ROOM, "room", "" },
        { "chatto.ev.msg.mem.msg", true, STORE_EV_MEMBER, "msg", "msg" },
        { "chatto.ev.r1.call", true, STORE_EV_CALL, "r1", "" },
        { "chatto.ev.r1.call.c1", false, 0, NULL, NULL },
        /* wrong prefix or stream */
        { "", false, 0, NULL, NULL },
        { "chatto.ev", false, 0, NULL, NULL },
        { "chatto.ev.", false, 0, NULL, NULL },
        { "chatto.rt.typing.r1", false, 0, NULL, NULL },
        { "Chatto.ev.r1.room", false, 0, NULL, NULL },
        { "xchatto.ev.r1.room", false, 0, NULL, NULL },
        /* bad room */
        { "chatto.ev..room", false, 0, NULL, NULL },
        { "chatto.ev.r*.room", false, 0, NULL, NULL },
        { "chatto.ev.>", false, 0, NULL, NULL },
        { "chatto.ev." ID65 ".room", false, 0, NULL, NULL },
        /* missing, unknown or malformed kind */
        { "chatto.ev.r1", false, 0, NULL, NULL },
        { "chatto.ev.r1.", false, 0, NULL, NULL },
        { "chatto.ev.r1.rooms", false, 0, NULL, NULL },
        { "chatto.ev.r1.roo", false, 0, NULL, NULL },
        { "chatto.ev.r1.reaction.x", false, 0, NULL, NULL },
        { "chatto.ev.r1.room.x", false, 0, NULL, NULL },
        { "chatto.ev.r1.room.", false, 0, NULL, NULL },
        /* bad or missing ids */
        { "chatto.ev.r1.mem", false, 0, NULL, NULL },
        { "chatto.ev.r1.mem.", false, 0, NULL, NULL },
        { "chatto.ev.r1.msg", false, 0, NULL, NULL },
        { "chatto.ev.r1.msg.m*", false, 0, NULL, NULL },
        { "chatto.ev.r1.msg.m 1", false, 0, NULL, NULL },
        { "chatto.ev.r1.msg." ID65, false, 0, NULL, NULL },
        { "chatto.ev.r1.mem.bob.x", false, 0, NULL, NULL },
        { "chatto.ev.r1.mem.bob.", false, 0, NULL, NULL },
        { "chatto.ev.r1.mem.u.msg.m1", false, 0, NULL, NULL },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct store_event_subject s;
        memset(&s, 0x5a, sizeof s);
        bool ok = store_subject_event_parse(cases[i].subject, &s);
        if (ok != cases[i].ok)
            fail_msg("case %zu \"%s\": parsed %d, want %d", i, cases[i].subject, ok, cases[i].ok);
        if (!ok) {
            if (s.room[0] != 0x5a || s.id[0] != 0x5a)
                fail_msg("case %zu \"%s\": out written on failure", i, cases[i].subject);
            continue;
        }
        assert_int_equal(s.kind, cases[i].kind);
        assert_string_equal(s.room, cases[i].room);
        assert_string_equal(s.id, cases[i].id);
    }
    assert_false(store_subject_event_parse(NULL, &(struct store_event_subject){ 0 }));
}

static void
test_subject_round_trip(void **state)
{
    char buf[STORE_SUBJECT_MAX];
    struct store_event_subject s;
    (void)state;
    assert_int_equal(store_subject_event_member(buf, sizeof buf, "room-1", "user_2"), CH_OK);
    assert_true(store_subject_event_parse(buf, &s));
    assert_int_equal(s.kind, STORE_EV_MEMBER);
    assert_string_equal(s.room, "room-1");
    assert_string_equal(s.id, "user_2");
    /* the wildcards cover what the builders make */
    assert_int_equal(strncmp(buf, STORE_SUBJECT_EVENTS_ALL, strlen(STORE_SUBJECT_EVENTS_ALL) - 1), 0);
    assert_int_equal(store_subject_typing(buf, sizeof buf, "room-1"), CH_OK);
    assert_int_equal(strncmp(buf, STORE_SUBJECT_TYPING_ALL, strlen(STORE_SUBJECT_TYPING_ALL) - 1), 0);
    assert_false(store_subject_event_parse(buf, &s));
}

static void
test_subject_call(void **state)
{
    char buf[STORE_SUBJECT_MAX];
    struct store_event_subject s;

    (void)state;
    assert_int_equal(store_subject_event_call(buf, sizeof buf, "room-1"), CH_OK);
    assert_string_equal(buf, "chatto.ev.room-1.call");
    assert_true(store_subject_event_parse(buf, &s));
    assert_int_equal(s.kind, STORE_EV_CALL);
    assert_string_equal(s.room, "room-1");
    assert_int_equal(store_subject_event_call(buf, sizeof buf, "a.b"), CH_EINVAL);
    assert_string_equal(buf, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_builders),
        cmocka_unit_test(test_subject_event_parse),
        cmocka_unit_test(test_subject_round_trip),
        cmocka_unit_test(test_subject_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
