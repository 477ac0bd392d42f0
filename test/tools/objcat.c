/* SPDX-License-Identifier: MIT */
/*
 * objcat: the object-store code of lib/store as a command, for the interoperability tests: read an object that
 * any NATS client wrote (its bytes to stdout, digest checked), or write stdin as one (in chunks of CHUNK bytes).
 *   objcat NATS_URL TOKEN get NAME
 *   objcat NATS_URL TOKEN put NAME CHUNK < data
 * and runs the assets janitor's pass once with the clock moved ahead (uploads and unattached files expire):
 *   objcat NATS_URL TOKEN janitor AHEAD_MS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assets/assets.h"
#include "base/clock.h"
#include "crypto/crypto.h"
#include "store/store.h"

static int
fail(const char *what, const struct ch_err *err)
{
    fprintf(stderr, "objcat: %s: %s\n", what, err ? err->msg : "");
    return 1;
}

int
main(int argc, char **argv)
{
    struct ch_err err = { 0 };
    struct store *st = NULL;
    struct store_obj_info info;
    char reason[200];
    int rc = 0;

    if (argc < 5 || (strcmp(argv[3], "get") && strcmp(argv[3], "put") && strcmp(argv[3], "janitor")) ||
        (!strcmp(argv[3], "put") && argc < 6)) {
        fprintf(stderr, "usage: objcat NATS_URL TOKEN get NAME | put NAME CHUNK < data | janitor AHEAD_MS\n");
        return 2;
    }
    crypto_init();
    store_library_init();
    const char *urls[] = { argv[1], NULL };
    struct store_opts o = { .urls = urls, .auth = *argv[2] ? STORE_AUTH_TOKEN : STORE_AUTH_NONE, .token = argv[2],
                            .replicas = 1, .request_timeout_ms = 5000, .reconnect_wait_ms = 200, .name = "objcat" };
    if (store_open(&o, &st, &err) != CH_OK)
        return fail("connect", &err);
    for (int i = 0; i < 200 && !store_ready(st, reason, sizeof reason); i++)
        nanosleep(&(struct timespec){ 0, 50 * 1000000L }, NULL);
    if (!strcmp(argv[3], "janitor")) {
        struct assets *a = NULL;
        struct assets_opts ao = { .store = st, .signing_secret = "janitor", .max_upload = 1 };
        if (assets_new(&ao, &a, &err) != CH_OK)
            rc = fail("assets", &err);
        else
            assets_janitor_pass(a, clock_wall_ms() + atoll(argv[4]));
        assets_free(a);
    } else if (!strcmp(argv[3], "get")) {
        struct store_obj_reader *r = NULL;
        if (store_obj_get_info(st, STORE_S_ASSETS, argv[4], &info, &err) != CH_OK ||
            store_obj_reader_open(st, STORE_S_ASSETS, &info, &r, &err) != CH_OK) {
            rc = fail("get", &err);
        } else {
            for (;;) {
                char *data = NULL;
                size_t len = 0;
                if (store_obj_read(r, &data, &len, &err) != CH_OK) {
                    rc = fail("read", &err);
                    break;
                }
                if (len == 0)
                    break;
                fwrite(data, 1, len, stdout);
                free(data);
            }
        }
        store_obj_reader_close(r);
    } else {
        size_t cap = 1 << 20, len = 0, n;
        char *buf = malloc(cap);
        while (buf && (n = fread(buf + len, 1, cap - len, stdin)) > 0) {
            len += n;
            if (len == cap && !(buf = realloc(buf, cap *= 2)))
                break;
        }
        if (!buf || store_obj_put(st, STORE_S_ASSETS, argv[4], "application/octet-stream", buf, len,
                                  (size_t)atol(argv[5]), &info, &err) != CH_OK)
            rc = fail("put", &err);
        free(buf);
    }
    fflush(stdout);
    store_shutdown(st, 1000);
    store_close(st);
    store_library_shutdown();
    return rc;
}
