/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: WebSocket frames sent to a whole running server (harness_server.h) after a real opening
 * handshake: wslay's frame parser and our callbacks and limits (control frames, fragmentation, message size,
 * masking), then the realtime protocol (hello with or without a token, resume cursors, presence, typing, pings).
 *
 * Input: byte 0 holds flags — bit 0: the upgrade carries the bearer token (else a hello must), bit 1: the rest
 * is sent as it is (raw frames, masked or not, whatever the fuzzer made). Otherwise the rest is a list of frames,
 * each <b0> <len> [<len16 hi> <len16 lo>] <payload>: b0 is the frame's first byte (FIN, RSV, opcode); len 255
 * means a 16-bit length follows. The harness masks each frame (a zero key, so payloads read as written) and ends
 * with a close frame. "@T" and the other fixture names are replaced in payloads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct buf {
    char *p;
    size_t n, cap;
};

static void
put(struct buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 256;
        char *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void
frame(struct buf *b, uint8_t b0, const char *payload, size_t n)
{
    uint8_t h[8];
    size_t hl = 0;
    static const uint8_t key[4] = { 0, 0, 0, 0 };

    h[hl++] = b0;
    if (n < 126) {
        h[hl++] = (uint8_t)(0x80 | n);
    } else {
        h[hl++] = 0x80 | 126;
        h[hl++] = (uint8_t)(n >> 8);
        h[hl++] = (uint8_t)n;
    }
    put(b, h, hl);
    put(b, key, 4);
    put(b, payload, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char resp[1 << 16];
    const struct fuzz_server *s;
    struct buf b = { 0 };
    char head[1024];

    if (size < 1)
        return 0;
    s = fuzz_server();
    bool authed = data[0] & 1, raw = data[0] & 2;
    int n = snprintf(head, sizeof head,
                     "GET /api/realtime HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     authed ? "Authorization: Bearer " : "", authed ? s->token : "", authed ? "\r\n" : "");
    put(&b, head, (size_t)n);
    if (raw) {
        size_t len;
        char *rest = fuzz_expand(data + 1, size - 1, &len);
        if (rest) {
            put(&b, rest, len);
            free(rest);
        }
    } else {
        size_t i = 1;
        while (i + 2 <= size) {
            uint8_t b0 = data[i];
            size_t len = data[i + 1];
            i += 2;
            if (len == 255) {
                if (i + 2 > size)
                    break;
                len = (size_t)data[i] << 8 | data[i + 1];
                i += 2;
            }
            if (len > size - i)
                len = size - i;
            size_t elen;
            char *payload = fuzz_expand(data + i, len, &elen);
            if (payload) {
                frame(&b, b0, payload, elen);
                free(payload);
            }
            i += len;
        }
        frame(&b, 0x88, "\x03\xe8", 2); /* close 1000 */
    }
    fuzz_exchange(b.p, b.n, resp, sizeof resp, 200, 10000, !raw, fuzz_ws_closed);
    free(b.p);
    return 0;
}
