/* SPDX-License-Identifier: MIT */
/*
 * The one computation of the WebSocket opening handshake (RFC 6455 4.2.2): Sec-WebSocket-Accept is the base64 of
 * SHA-1(key + the protocol's GUID), for a key that is 16 bytes in base64. Pure; any thread.
 */
#include <nettle/sha1.h>
#include <sodium.h>
#include <string.h>

#include "realtime/realtime.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

bool
rt_ws_accept(const char *key, char accept[29])
{
    unsigned char raw[32], digest[SHA1_DIGEST_SIZE];
    size_t rawlen = 0;
    struct sha1_ctx sha;

    if (!key || strlen(key) != 24 ||
        sodium_base642bin(raw, sizeof raw, key, strlen(key), NULL, &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        rawlen != 16)
        return false;
    sha1_init(&sha);
    sha1_update(&sha, strlen(key), (const uint8_t *)key);
    sha1_update(&sha, strlen(WS_GUID), (const uint8_t *)WS_GUID);
    sha1_digest(&sha, sizeof digest, digest);
    sodium_bin2base64(accept, 29, digest, sizeof digest, sodium_base64_VARIANT_ORIGINAL);
    return true;
}
