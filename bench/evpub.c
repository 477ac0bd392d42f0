/* SPDX-License-Identifier: MIT */
/*
 * Bulk loader for the search benchmark: reads "subject<TAB>payload" lines on stdin and appends each to JetStream
 * (asynchronous publishes, at most 4096 in flight), then waits for every acknowledgement. Prints the count.
 * Usage: evpub URL TOKEN < lines
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    static char line[1 << 20];
    long n = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: evpub URL TOKEN < lines\n");
        return 2;
    }
    natsOptions_Create(&o);
    natsOptions_SetURL(o, argv[1]);
    if (*argv[2])
        natsOptions_SetToken(o, argv[2]);
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.StallWait = 60000; /* wait for acknowledgements rather than fail when 4096 are in flight */
    if (natsConnection_Connect(&nc, o) != NATS_OK || natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
        fprintf(stderr, "connect: %s\n", nats_GetLastError(NULL));
        return 1;
    }
    while (fgets(line, sizeof line, stdin)) {
        char *tab = strchr(line, '\t');
        size_t len;
        if (!tab)
            continue;
        *tab++ = '\0';
        len = strlen(tab);
        if (len && tab[len - 1] == '\n')
            tab[--len] = '\0';
        if (js_PublishAsync(js, line, tab, (int)len, NULL) != NATS_OK) {
            fprintf(stderr, "publish: %s\n", nats_GetLastError(NULL));
            return 1;
        }
        n++;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
        fprintf(stderr, "complete: %s\n", nats_GetLastError(NULL));
        return 1;
    }
    printf("%ld\n", n);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return 0;
}
