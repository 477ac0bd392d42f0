/* SPDX-License-Identifier: MIT */
#pragma once
/* Renders the embedded nats-server's config file. Pure function; any thread. */
#include <stddef.h>
#include <stdint.h>

struct natsconf {
    const char *server_name;
    const char *bind_address; /* IPv4, IPv6 or host name */
    int port;                 /* -1 = random */
    int http_port;            /* monitoring listener: a port, or 0 for none (-1: any free port) */
    const char *store_dir;    /* JetStream data goes to <store_dir>/jetstream */
    const char *ports_dir;    /* nats-server writes nats-server_<pid>.ports here */
    const char *token;
    int64_t max_file_store; /* 0 = server default */
};

/* The config text, or NULL on out-of-memory. Caller frees (it holds the token: zero it first). */
char *natsconf_render(const struct natsconf *c);
