/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What Chatto needs of LiveKit, the media server that carries calls: its access tokens (JWT, HS256, signed with
 * the API key's secret: libsodium's HMAC-SHA-256), the check of its signed webhooks (an Authorization JWT whose
 * "sha256" claim is the base64 SHA-256 of the body), the deterministic room names every process derives for a
 * call, and a client of its RoomService Twirp API (ListRooms, ListParticipants) for reconciliation, over libcurl.
 *
 * Pure functions, except lk_rooms_list and lk_participants_list (one HTTP round trip each). Any thread after
 * crypto_init(). Results are the caller's (free() / cJSON_Delete / lk_list_free).
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define LK_TOKEN_TTL_S 300 /* a call token is good for 5 minutes (a connection outlives it) */
#define LK_ROOM_NAME_MAX 256

/* ---- tokens (token.c) ---- */

/* A LiveKit access token: iss = key, sub = jti = identity, name, metadata (may be NULL), the "video" grant (taken:
 * e.g. {roomJoin: true, room}), nbf = now, exp = now + ttl_s. NULL on out-of-memory. */
char *lk_token_mint(const char *key, const char *secret, const char *identity, const char *name,
                    const char *metadata, cJSON *video, int64_t now_s, int64_t ttl_s);
/* Verify a JWT as LiveKit does: HS256 only, signature under secret, iss == key, nbf <= now < exp (exp required).
 * The claims on success (caller's); CH_EAUTH with a reason otherwise. */
enum ch_status lk_token_verify(const char *jwt, const char *key, const char *secret, int64_t now_s, cJSON **claims,
                               struct ch_err *err);

/* ---- webhooks (webhook.c) ---- */

/* A webhook event as Chatto uses it (LiveKit's WebhookEvent, JSON, either field spelling). */
struct lk_event {
    char id[128];        /* the event id (LiveKit retries with the same one) */
    char event[48];      /* "participant_joined", "participant_left", "room_finished", ... */
    char room[LK_ROOM_NAME_MAX + 1];
    char identity[128];  /* participant.identity ("" if none) */
    char metadata[1024]; /* participant.metadata ("" if none or too long) */
    int disconnect_reason; /* participant_left: DUPLICATE_IDENTITY (2) is a handoff, not a leave */
};
/* Check the Authorization header against body with the webhook key and secret (CH_EAUTH with a reason), then
 * parse the body (CH_EINVAL if it is not a webhook event). */
enum ch_status lk_webhook_receive(const char *auth, const char *body, size_t len, const char *key, const char *secret,
                                  int64_t now_s, struct lk_event *ev, struct ch_err *err);

/* ---- room names (names.c): [<server_id>.]<space>_<roomId>@<callId>, space "server" (rooms) or "DM" ---- */

/* Into buf (LK_ROOM_NAME_MAX + 1); CH_EINVAL if a part would make it ambiguous or too long. */
enum ch_status lk_room_name(const char *server_id, bool dm, const char *room_id, const char *call_id, char *buf,
                            size_t len, struct ch_err *err);
/* Take a LiveKit room name apart: true if it belongs to server_id (its prefix is exactly that; "" means no
 * prefix), with the Chatto room and call ids (call_id "" for a name without "@"). */
bool lk_room_parse(const char *name, const char *server_id, char room_id[65], char call_id[65]);

/* ---- RoomService (roomsvc.c) ---- */

struct lk_participant {
    char identity[128];
    char metadata[1024];
};
struct lk_list {
    char (*rooms)[LK_ROOM_NAME_MAX + 1]; /* lk_rooms_list */
    struct lk_participant *participants;  /* lk_participants_list */
    size_t n;
};
/* url: LiveKit's ws(s):// or http(s):// URL (ws becomes http). timeout_ms bounds the whole request. CH_EUNAVAIL
 * when LiveKit cannot be reached or answers an error. */
enum ch_status lk_rooms_list(const char *url, const char *key, const char *secret, int64_t timeout_ms,
                             struct lk_list *out, struct ch_err *err);
/* CH_ENOTFOUND when LiveKit says the room does not exist. */
enum ch_status lk_participants_list(const char *url, const char *key, const char *secret, const char *room,
                                    int64_t timeout_ms, struct lk_list *out, struct ch_err *err);
void lk_list_free(struct lk_list *l);
