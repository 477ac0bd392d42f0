/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the JSON request of every Connect method, decoded and acted on by a whole running server
 * (harness_server.h) as the fuzz user, who owns the server, a room, a message and a DM. The first byte picks
 * the method (from the server's own method tables), the rest is the body; "@R", "@E", "@U", "@D" name the
 * fixtures so inputs reach past the lookups. Every answer must be a Connect status, never a 500 or a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "harness_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct api_method *const tables[] = { discovery_methods, users_methods, admin_methods, rooms_methods,
                                                   messages_methods, notifications_methods, calls_methods, NULL };

static const struct api_method *
method(unsigned i)
{
    size_t n = 0;
    for (const struct api_method *const *t = tables; *t; t++)
        for (const struct api_method *m = *t; m->service; m++)
            n++;
    i %= (unsigned)n;
    for (const struct api_method *const *t = tables; *t; t++)
        for (const struct api_method *m = *t; m->service; m++)
            if (!i--)
                return m;
    return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char resp[1 << 16];
    char name[160];
    size_t len;

    if (size < 1)
        return 0;
    fuzz_server();
    const struct api_method *m = method(data[0]);
    snprintf(name, sizeof name, "%s/%s", m->service, m->method);
    char *body = fuzz_expand(data + 1, size - 1, &len);
    if (!body)
        return 0;
    /* the one way an input could lock the harness out for good: changing the fuzz user's password (which ends
     * its other sessions); UpdatePassword is still fuzzed with every other current password */
    if (!strcmp(m->method, "UpdatePassword") && memmem(body, len, "correct horse battery", 21)) {
        free(body);
        return 0;
    }
    int status = fuzz_connect_call(name, body, len, resp, sizeof resp);
    if (status >= 500 && status != 503 && status != 507) {
        fprintf(stderr, "harness: %s answered %d: %.500s\n", name, status, resp);
        abort();
    }
    free(body);
    return 0;
}
