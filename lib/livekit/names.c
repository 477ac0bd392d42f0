/* SPDX-License-Identifier: MIT */
/*
 * Deterministic LiveKit room names, as upstream Chatto spells them: "[<server_id>.]<space>_<roomId>@<callId>",
 * space being "server" for rooms and "DM" for direct messages. Every process derives the same name for the same
 * call, and the webhook handler tells its own rooms from another server's by the prefix. Ids never contain '.',
 * '_' is allowed in room ids (the space token has none, so the first '_' splits), '@' in neither. Pure.
 */
#include <stdio.h>
#include <string.h>

#include "base/ids.h"
#include "livekit/livekit.h"

enum ch_status
lk_room_name(const char *server_id, bool dm, const char *room_id, const char *call_id, char *buf, size_t len,
             struct ch_err *err)
{
    int n;

    buf[0] = '\0';
    if (strchr(server_id, '.') || strchr(server_id, '@'))
        return ch_err_set(err, CH_EINVAL, "livekit.server_id", "must not contain '.' or '@'");
    if (!id_valid(room_id) || !id_valid(call_id))
        return ch_err_set(err, CH_EINVAL, "roomId", "not a valid id");
    n = snprintf(buf, len, "%s%s%s_%s@%s", server_id, *server_id ? "." : "", dm ? "DM" : "server", room_id, call_id);
    if (n < 0 || (size_t)n >= len || (size_t)n > LK_ROOM_NAME_MAX) {
        buf[0] = '\0';
        return ch_err_set(err, CH_EINVAL, "livekit.server_id", "too long for a LiveKit room name");
    }
    return CH_OK;
}

bool
lk_room_parse(const char *name, const char *server_id, char room_id[65], char call_id[65])
{
    const char *dot = strchr(name, '.'), *rest, *us, *at;
    size_t sl = strlen(server_id);

    room_id[0] = call_id[0] = '\0';
    if (*server_id) {
        if (!dot || (size_t)(dot - name) != sl || strncmp(name, server_id, sl))
            return false;
        rest = dot + 1;
    } else {
        if (dot)
            return false; /* another server's (prefixed) room */
        rest = name;
    }
    if (!(us = strchr(rest, '_')))
        return false;
    if (strncmp(rest, "server_", 7) && strncmp(rest, "DM_", 3))
        return false;
    at = strrchr(us + 1, '@');
    size_t rl = at ? (size_t)(at - us - 1) : strlen(us + 1);
    if (rl == 0 || rl > 64 || (at && (strlen(at + 1) == 0 || strlen(at + 1) > 64)))
        return false;
    memcpy(room_id, us + 1, rl);
    room_id[rl] = '\0';
    if (at)
        snprintf(call_id, 65, "%s", at + 1);
    if (!id_valid(room_id) || (call_id[0] && !id_valid(call_id))) {
        room_id[0] = call_id[0] = '\0';
        return false;
    }
    return true;
}
