/* SPDX-License-Identifier: MIT */
/*
 * A socket's outgoing WebSocket bytes (see realtime.h): whole server frames (RFC 6455 5.2, unmasked) gathered
 * until the socket takes them, so several frames for one socket leave in one send(). It knows where frames begin,
 * so a close can go ahead of frames not yet begun. Sized to what waits and freed once empty: an idle socket holds
 * no buffer. Pure; one thread per buffer (ws-loop).
 */
#include <stdlib.h>
#include <string.h>

#include "realtime/realtime.h"

/* The length of the whole frame that starts at p (its header is there: frames are appended whole). */
static size_t
frame_size(const unsigned char *p)
{
    size_t len7 = p[1] & 0x7f, plen = len7, hl = 2;

    if (len7 == 126) {
        plen = (size_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (len7 == 127) {
        plen = 0;
        for (int k = 0; k < 8; k++)
            plen = plen << 8 | p[2 + k];
        hl = 10;
    }
    return hl + plen;
}

static bool
reserve(struct rt_wsout *o, size_t more)
{
    size_t need = o->len + more, cap;
    char *p;

    if (need <= o->cap)
        return true;
    /* the first frame gets what it needs (rounded up), not a page: a burst to every socket holds one at each;
     * growing doubles */
    if (!o->cap)
        cap = (need + 63) & ~(size_t)63;
    else
        for (cap = o->cap; cap < need; cap *= 2)
            ;
    if (!(p = realloc(o->buf, cap)))
        return false;
    o->buf = p;
    o->cap = cap;
    return true;
}

bool
rt_wsout_frame(struct rt_wsout *o, unsigned opcode, const void *data, size_t len)
{
    unsigned char h[10];
    size_t hl;

    h[0] = (unsigned char)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        h[1] = (unsigned char)len;
        hl = 2;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int k = 0; k < 8; k++)
            h[2 + k] = (unsigned char)((uint64_t)len >> (56 - 8 * k));
        hl = 10;
    }
    if (!reserve(o, hl + len))
        return false;
    memcpy(o->buf + o->len, h, hl);
    if (len)
        memcpy(o->buf + o->len + hl, data, len);
    o->len += hl + len;
    return true;
}

bool
rt_wsout_append(struct rt_wsout *o, const void *data, size_t len)
{
    if (!reserve(o, len))
        return false;
    memcpy(o->buf + o->len, data, len);
    o->len += len;
    return true;
}

void
rt_wsout_consumed(struct rt_wsout *o, size_t n)
{
    size_t end = o->head; /* the end of the last frame that has begun going out */

    if (n > o->len)
        n = o->len;
    while (end < n)
        end += frame_size((const unsigned char *)o->buf + end);
    o->head = end - n;
    o->len -= n;
    if (!o->len) {
        rt_wsout_free(o); /* idle sockets keep no buffer */
        return;
    }
    memmove(o->buf, o->buf + n, o->len);
}

void
rt_wsout_drop_unsent(struct rt_wsout *o)
{
    o->len = o->head;
    if (!o->len)
        rt_wsout_free(o);
}

void
rt_wsout_free(struct rt_wsout *o)
{
    free(o->buf);
    o->buf = NULL;
    o->len = o->cap = o->head = 0;
}
