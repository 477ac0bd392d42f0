/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Every NATS subject Chatto publishes or subscribes to is spelled here and built or parsed only by these
 * functions; nobody else pastes ids into subjects. The layout:
 *
 *   chatto.ev.<room>.room            CHATTO_EVENTS: room created, updated, archived, unarchived
 *   chatto.ev.<room>.mem.<user>      CHATTO_EVENTS: a member joined, left, was added or removed
 *   chatto.ev.<room>.msg.<message>   CHATTO_EVENTS: a message posted, edited, deleted; its reactions
 *   chatto.ev.<room>.call            CHATTO_EVENTS: the room's call started, joined, left, ended
 *   chatto.rt.typing.<room>          core NATS (not stored): typing indicators
 *   chatto.rt.presence.p.<process>   core NATS: one process's presence announcements (summaries and changes)
 *   chatto.rt.presence.resync.<process>  core NATS: ask that process for a full summary
 *   chatto.rt.presence.hello         core NATS: a process started; everyone sends a full summary
 *   chatto.rt.revoked                core NATS request to all: forget these credentials (answered by each)
 *
 * Every id must pass id_valid() (no '.', '*', '>' or whitespace), so a subject always splits back into the
 * parts it was built from. Builders write a NUL-terminated subject into the caller's buffer, like snprintf, and
 * return CH_EINVAL with buf set to "" when an id is invalid or the subject does not fit in len bytes
 * (STORE_SUBJECT_MAX always fits). Pure; any thread. Deliberately free of <nats/nats.h>: lib/chat and server/
 * include it.
 */
#include <stdbool.h>
#include <stddef.h>

#include "base/ids.h"
#include "base/status.h"

/* Wildcards: constants, so that static tables (the stream configs in bootstrap.c) can hold them. */
#define STORE_SUBJECT_EVENTS_ALL "chatto.ev.>"        /* the CHATTO_EVENTS stream's subjects */
#define STORE_SUBJECT_TYPING_ALL "chatto.rt.typing.>" /* every room's typing indicators */
#define STORE_SUBJECT_NOTIFY_ALL "chatto.rt.notify.>" /* new notifications, for their user's sockets */
#define STORE_SUBJECT_PRESENCE_ALL "chatto.rt.presence.>" /* every presence announcement and request */
#define STORE_SUBJECT_PRESENCE_HELLO "chatto.rt.presence.hello"
#define STORE_SUBJECT_REVOKED "chatto.rt.revoked" /* credentials removed: every process forgets them and says so */

/* A buffer of this many bytes holds any subject the builders make ("chatto.ev.<room>.msg.<id>" and its NUL). */
#define STORE_SUBJECT_MAX (sizeof "chatto.ev..msg." + 2 * ID_MAX)

enum store_event_kind {
    STORE_EV_ROOM,    /* chatto.ev.<room>.room */
    STORE_EV_MEMBER,  /* chatto.ev.<room>.mem.<user> */
    STORE_EV_MESSAGE, /* chatto.ev.<room>.msg.<message> */
    STORE_EV_CALL,    /* chatto.ev.<room>.call */
};

/* An event subject taken apart (a plain value). */
struct store_event_subject {
    enum store_event_kind kind;
    char room[ID_MAX + 1];
    char id[ID_MAX + 1]; /* the member's user id or the message id; "" for STORE_EV_ROOM */
};

/* chatto.ev.<room>.room: the room's own events (compare-and-set on the room's state). */
enum ch_status store_subject_event_room(char *buf, size_t len, const char *room);
/* chatto.ev.<room>.mem.<user>: one membership's events. */
enum ch_status store_subject_event_member(char *buf, size_t len, const char *room, const char *user);
/* chatto.ev.<room>.msg.<message>: one message's events, reactions included. */
enum ch_status store_subject_event_message(char *buf, size_t len, const char *room, const char *msg);
/* chatto.ev.<room>.call: the room's call facts (compare-and-set on the call's state). */
enum ch_status store_subject_event_call(char *buf, size_t len, const char *room);
/* chatto.rt.typing.<room>. */
enum ch_status store_subject_typing(char *buf, size_t len, const char *room);
/* chatto.rt.notify.<user>: a new notification of that user, for every process's sockets of theirs. */
enum ch_status store_subject_notify(char *buf, size_t len, const char *user);

/* chatto.rt.presence.p.<process> (process: an id, e.g. a sanitised host and pid). */
enum ch_status store_subject_presence(char *buf, size_t len, const char *process);
/* chatto.rt.presence.resync.<process>. */
enum ch_status store_subject_presence_resync(char *buf, size_t len, const char *process);
/* The process a presence subject names: "p" (announcement) or "resync" into *kind (borrowed constant), the
 * process into out. False for anything else (the hello subject included). */
bool store_subject_presence_parse(const char *subject, const char **kind, char out[ID_MAX + 1]);

/* Take an event subject apart. True only for exactly one of the event forms above with valid ids;
 * *out is written only then. */
bool store_subject_event_parse(const char *subject, struct store_event_subject *out);
