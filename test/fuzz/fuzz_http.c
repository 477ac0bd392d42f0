/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: raw bytes on an HTTP connection to a whole running server (harness_server.h): libmicrohttpd's
 * parser and everything of ours before a handler — framing checks, body caps (chunked or not), routing, content
 * types, origin checks, proxy headers, session cookies and bearer credentials — then the handlers themselves,
 * the account flows (form and JSON) and the WebSocket upgrade. "@T" in the input becomes a valid token.
 * A crash or sanitizer report anywhere in the server is a finding; so is a server that stops answering.
 */
#include <stdint.h>
#include <stdlib.h>

#include "harness_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char resp[1 << 16];
    size_t len;

    fuzz_server();
    char *req = fuzz_expand(data, size, &len);
    if (req) {
        fuzz_exchange(req, len, resp, sizeof resp, 50, 100, false, fuzz_ws_closed);
        free(req);
    }
    return 0;
}
