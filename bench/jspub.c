/* SPDX-License-Identifier: MIT */
/*
 * Raw JetStream baseline for `make bench`: N synchronous js_Publish calls (one thread, or T threads sharing one
 * connection) of a B-byte payload to a fresh file stream, on the same NATS server chatto uses. Prints msgs/s.
 * Usage: jspub URL TOKEN COUNT THREADS BYTES
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static jsCtx *js;
static int per_thread, bytes;

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker(void *arg)
{
    char *buf = malloc((size_t)bytes);

    (void)arg;
    memset(buf, 'x', (size_t)bytes);
    for (int i = 0; i < per_thread; i++) {
        jsPubAck *ack = NULL;
        if (js_Publish(&ack, js, "bench.raw", buf, bytes, NULL, NULL) != NATS_OK) {
            fprintf(stderr, "publish failed: %s\n", nats_GetLastError(NULL));
            exit(1);
        }
        jsPubAck_Destroy(ack);
    }
    free(buf);
    return NULL;
}

int
main(int argc, char **argv)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    const char *subj[] = { "bench.raw" };
    int count, threads;
    pthread_t t[64];
    double t0, dt;

    if (argc != 6) {
        fprintf(stderr, "usage: jspub URL TOKEN COUNT THREADS BYTES\n");
        return 2;
    }
    count = atoi(argv[3]);
    threads = atoi(argv[4]);
    bytes = atoi(argv[5]);
    if (threads < 1 || threads > 64)
        return 2;
    per_thread = count / threads;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, argv[1]);
    if (*argv[2])
        natsOptions_SetToken(o, argv[2]);
    if (natsConnection_Connect(&nc, o) != NATS_OK || natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
        fprintf(stderr, "connect: %s\n", nats_GetLastError(NULL));
        return 1;
    }
    js_DeleteStream(js, "BENCH_RAW", NULL, NULL);
    jsStreamConfig_Init(&sc);
    sc.Name = "BENCH_RAW";
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    if (js_AddStream(&si, js, &sc, NULL, NULL) != NATS_OK) {
        fprintf(stderr, "add stream: %s\n", nats_GetLastError(NULL));
        return 1;
    }
    jsStreamInfo_Destroy(si);
    t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    dt = now() - t0;
    printf("%.0f\n", per_thread * threads / dt);
    js_DeleteStream(js, "BENCH_RAW", NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    nats_Close();
    return 0;
}
