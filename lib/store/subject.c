/* SPDX-License-Identifier: MIT */
/*
 * NATS subjects: the one place that spells them (subject.h has the layout). Builds them from validated ids and
 * parses event subjects back. Pure string work: no NATS, no state, no allocation; any thread.
 */
#include "store/subject.h"

#include <stdio.h>
#include <string.h>

#define EVENTS "chatto.ev."
#define TYPING "chatto.rt.typing."

/* The kind token after the room, and whether an id follows it. Indexed by enum store_event_kind. */
static const struct {
    const char *token;
    bool has_id;
} kinds[] = {
    [STORE_EV_ROOM] = { "room", false },
    [STORE_EV_MEMBER] = { "mem", true },
    [STORE_EV_CALL] = { "call", false },
    [STORE_EV_MESSAGE] = { "msg", true },
};

/* snprintf's result as a status: a subject cut short must never reach NATS, so the buffer is emptied. */
static enum ch_status
fitted(char *buf, size_t len, int n)
{
    if (n >= 0 && (size_t)n < len)
        return CH_OK;
    if (len > 0)
        buf[0] = '\0';
    return CH_EINVAL;
}

static enum ch_status
event_subject(char *buf, size_t len, const char *room, enum store_event_kind kind, const char *id)
{
    if (!id_valid(room) || (kinds[kind].has_id && !id_valid(id)))
        return fitted(buf, len, -1);
    if (kinds[kind].has_id)
        return fitted(buf, len, snprintf(buf, len, EVENTS "%s.%s.%s", room, kinds[kind].token, id));
    return fitted(buf, len, snprintf(buf, len, EVENTS "%s.%s", room, kinds[kind].token));
}

enum ch_status
store_subject_event_room(char *buf, size_t len, const char *room)
{
    return event_subject(buf, len, room, STORE_EV_ROOM, NULL);
}

enum ch_status
store_subject_event_member(char *buf, size_t len, const char *room, const char *user)
{
    return event_subject(buf, len, room, STORE_EV_MEMBER, user);
}

enum ch_status
store_subject_event_message(char *buf, size_t len, const char *room, const char *msg)
{
    return event_subject(buf, len, room, STORE_EV_MESSAGE, msg);
}

enum ch_status
store_subject_event_call(char *buf, size_t len, const char *room)
{
    return event_subject(buf, len, room, STORE_EV_CALL, NULL);
}

enum ch_status
store_subject_typing(char *buf, size_t len, const char *room)
{
    if (!id_valid(room))
        return fitted(buf, len, -1);
    return fitted(buf, len, snprintf(buf, len, TYPING "%s", room));
}

#define NOTIFY "chatto.rt.notify."

enum ch_status
store_subject_notify(char *buf, size_t len, const char *user)
{
    if (!id_valid(user))
        return fitted(buf, len, -1);
    return fitted(buf, len, snprintf(buf, len, NOTIFY "%s", user));
}

#define PRESENCE "chatto.rt.presence."

enum ch_status
store_subject_presence(char *buf, size_t len, const char *process)
{
    if (!id_valid(process))
        return fitted(buf, len, -1);
    return fitted(buf, len, snprintf(buf, len, PRESENCE "p.%s", process));
}

enum ch_status
store_subject_presence_resync(char *buf, size_t len, const char *process)
{
    if (!id_valid(process))
        return fitted(buf, len, -1);
    return fitted(buf, len, snprintf(buf, len, PRESENCE "resync.%s", process));
}

bool
store_subject_presence_parse(const char *subject, const char **kind, char out[ID_MAX + 1])
{
    const char *p;

    if (!subject || strncmp(subject, PRESENCE, strlen(PRESENCE)) != 0)
        return false;
    p = subject + strlen(PRESENCE);
    if (!strncmp(p, "p.", 2)) {
        *kind = "p";
        p += 2;
    } else if (!strncmp(p, "resync.", 7)) {
        *kind = "resync";
        p += 7;
    } else {
        return false;
    }
    if (!id_valid(p))
        return false;
    snprintf(out, ID_MAX + 1, "%s", p);
    return true;
}

/* The token at *p (up to the next '.' or the end) into out if it is a valid id; *p then points after it. */
static bool
take_id(const char **p, char out[ID_MAX + 1])
{
    size_t n = strcspn(*p, ".");

    if (n == 0 || n > ID_MAX)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return id_valid(out);
}

bool
store_subject_event_parse(const char *subject, struct store_event_subject *out)
{
    struct store_event_subject v = { 0 };
    const char *p = subject;
    size_t n;

    if (!p || strncmp(p, EVENTS, strlen(EVENTS)) != 0)
        return false;
    p += strlen(EVENTS);
    if (!take_id(&p, v.room) || *p++ != '.')
        return false;
    n = strcspn(p, ".");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (strlen(kinds[k].token) != n || strncmp(p, kinds[k].token, n) != 0)
            continue;
        p += n;
        if (kinds[k].has_id && (*p++ != '.' || !take_id(&p, v.id)))
            return false;
        if (*p)
            return false; /* anything after the last part */
        v.kind = (enum store_event_kind)k;
        *out = v;
        return true;
    }
    return false;
}
