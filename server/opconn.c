/* SPDX-License-Identifier: MIT */
/* The NATS connection of the operator commands (see opconn.h). Main thread only. */
#include "opconn.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "store/store.h"
#include "supervisor.h"

struct opconn {
    struct sup *sup;
    struct store *store;
    int lock_fd;
    char url[512];
};

void
opconn_close(struct opconn *c)
{
    if (!c)
        return;
    store_close(c->store);
    sup_stop(c->sup);
    store_library_shutdown();
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    free(c);
}

struct store *
opconn_store(struct opconn *c)
{
    return c->store;
}

bool
opconn_own_child(const struct opconn *c)
{
    return c->sup != NULL;
}

int
opconn_open(struct cfg *cfg, bool need_stopped, struct opconn **out)
{
    struct store_opts so;
    struct ch_err err = { 0 };
    struct opconn *c = calloc(1, sizeof *c);
    const char *urls[2] = { NULL, NULL };
    char reason[200] = "", bin[PATH_MAX];

    *out = NULL;
    if (!c) {
        fprintf(stderr, "chatto: out of memory\n");
        return 1;
    }
    c->lock_fd = -1;
    urls[0] = c->url;
    store_library_init();
    app_store_opts(cfg, "chatto-cli", &so);
    so.operator_command = true; /* never migrates an older layout: a server does (layout.c) */
    if (cfg_bool(cfg, CFG_NATS_EMBEDDED_ENABLED)) {
        const char *dir = cfg_str(cfg, CFG_NATS_EMBEDDED_DATA_DIR);
        if (app_mkdirs(dir, 0750) != 0) {
            fprintf(stderr, "chatto: cannot create %s: %s\n", dir, strerror(errno));
            goto fail;
        }
        c->lock_fd = app_lock_data_dir(dir, &err);
        if (c->lock_fd < 0 && err.status != CH_EEXIST) {
            fprintf(stderr, "chatto: %s\n", err.msg);
            goto fail;
        }
        if (c->lock_fd < 0 && need_stopped) {
            fprintf(stderr, "chatto: a chatto server is running on %s: stop it first\n", dir);
            goto fail;
        }
        if (app_load_secrets(cfg, c->lock_fd >= 0, &err) != CH_OK) {
            fprintf(stderr, "chatto: %s\n", err.msg);
            goto fail;
        }
        if (c->lock_fd < 0) {
            /* a server runs on this data directory: use its child */
            if (sup_running_url(dir, c->url, sizeof c->url, &err) != CH_OK) {
                fprintf(stderr, "chatto: a chatto server runs on %s but its NATS address is unknown: %s\n", dir,
                        err.msg);
                goto fail;
            }
        } else {
            struct sup_opts o = {
                .binary = bin,
                .bind_address = "127.0.0.1",
                .data_dir = dir,
                .token = cfg_str(cfg, CFG_NATS_EMBEDDED_AUTH_TOKEN),
                .max_file_store = cfg_int(cfg, CFG_NATS_EMBEDDED_MAX_FILE_STORE),
                .start_timeout_ms = cfg_int(cfg, CFG_NATS_EMBEDDED_START_TIMEOUT),
                .stop_timeout_ms = cfg_int(cfg, CFG_NATS_EMBEDDED_STOP_TIMEOUT),
                .probe = store_probe_url,
            };
            if (sup_resolve_binary(cfg_str(cfg, CFG_NATS_EMBEDDED_BINARY), bin, sizeof bin, &err) != CH_OK ||
                sup_start(&o, &c->sup, &err) != CH_OK) {
                fprintf(stderr, "chatto: %s\n", err.msg);
                goto fail;
            }
            snprintf(c->url, sizeof c->url, "%s", sup_client_url(c->sup));
        }
        so.urls = urls;
        so.auth = STORE_AUTH_TOKEN;
        so.token = cfg_str(cfg, CFG_NATS_EMBEDDED_AUTH_TOKEN);
        so.reconnect_wait_ms = 250;
    }
    if (store_open(&so, &c->store, &err) != CH_OK) {
        fprintf(stderr, "chatto: %s\n", err.msg);
        goto fail;
    }
    /* wait (bounded) until storage answers */
    for (int i = 0; i < 400 && !store_ready(c->store, reason, sizeof reason); i++) {
        char why[640];
        if (store_fatal(c->store, why, sizeof why)) { /* e.g. a store a newer Chatto has upgraded */
            fprintf(stderr, "chatto: %s\n", why);
            goto fail;
        }
        nanosleep(&(struct timespec){ 0, 50 * 1000000L }, NULL);
    }
    if (!store_ready(c->store, reason, sizeof reason)) {
        fprintf(stderr, "chatto: storage not ready: %s\n", reason);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    opconn_close(c);
    return 1;
}
