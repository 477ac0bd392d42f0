/* SPDX-License-Identifier: MIT */
/*
 * Raw JetStream baseline for `make bench`: N synchronous js_Publish calls (one thread, or T threads sharing one
 * connection) of a B-byte payload to a fresh file stream, on the same NATS server chatto uses. Prints msgs/s.
 * MODE (optional) shapes the publish as chatto's CreateMessage does, to tell the storage layout's cost from chatto's:
 *   plain     one subject, no headers (the default: the baseline)
 *   shaped    a subject per message, Nats-Msg-Id and Nats-Expected-Last-Subject-Sequence: 0 headers
 *   followed  shaped, and an ordered push consumer in this process gets every message; each publisher waits
 *             until it saw its own (read-your-writes, as a post waits for the model)
 * Usage: jspub URL TOKEN COUNT THREADS BYTES [MODE]
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static jsCtx *js;
static int per_thread, bytes;
static enum { PLAIN, SHAPED, FOLLOWED } mode;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cv = PTHREAD_COND_INITIALIZER;
static uint64_t seen; /* the follower's last stream sequence */
static atomic_int next_id;

static void
on_follow(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    jsMsgMetaData *md = NULL;

    (void)nc, (void)sub, (void)closure;
    if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
        pthread_mutex_lock(&seen_mu);
        seen = md->Sequence.Stream;
        pthread_cond_broadcast(&seen_cv);
        pthread_mutex_unlock(&seen_mu);
        jsMsgMetaData_Destroy(md);
    }
    natsMsg_Destroy(m);
}

static natsStatus
publish_one(const char *buf)
{
    jsPubAck *ack = NULL;
    natsMsg *m = NULL;
    natsStatus s;
    char subj[64], id[32];

    if (mode == PLAIN) {
        s = js_Publish(&ack, js, "bench.raw", buf, bytes, NULL, NULL);
    } else {
        int n = atomic_fetch_add(&next_id, 1);
        snprintf(subj, sizeof subj, "bench.raw.%d", n);
        snprintf(id, sizeof id, "post:%d", n);
        if ((s = natsMsg_Create(&m, subj, NULL, buf, bytes)) == NATS_OK &&
            (s = natsMsgHeader_Set(m, "Nats-Msg-Id", id)) == NATS_OK &&
            (s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", "0")) == NATS_OK)
            s = js_PublishMsg(&ack, js, m, NULL, NULL);
        natsMsg_Destroy(m);
    }
    if (s == NATS_OK && mode == FOLLOWED) {
        pthread_mutex_lock(&seen_mu);
        while (seen < ack->Sequence)
            pthread_cond_wait(&seen_cv, &seen_mu);
        pthread_mutex_unlock(&seen_mu);
    }
    jsPubAck_Destroy(ack);
    return s;
}

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
        if (publish_one(buf) != NATS_OK) {
            fprintf(stderr, "publish failed: %s\n", nats_GetLastError(NULL));
            exit(1);
        }
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
    const char *subj[] = { "bench.raw", "bench.raw.>" };
    natsSubscription *follow = NULL;
    int count, threads;
    pthread_t t[64];
    double t0, dt;

    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: jspub URL TOKEN COUNT THREADS BYTES [plain|shaped|followed]\n");
        return 2;
    }
    if (argc == 7)
        mode = !strcmp(argv[6], "followed") ? FOLLOWED : !strcmp(argv[6], "shaped") ? SHAPED : PLAIN;
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
    sc.SubjectsLen = 2;
    sc.Storage = js_FileStorage;
    if (js_AddStream(&si, js, &sc, NULL, NULL) != NATS_OK) {
        fprintf(stderr, "add stream: %s\n", nats_GetLastError(NULL));
        return 1;
    }
    jsStreamInfo_Destroy(si);
    if (mode == FOLLOWED) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Ordered = true;
        so.Config.DeliverPolicy = js_DeliverNew;
        if (js_Subscribe(&follow, js, "bench.raw.>", on_follow, NULL, NULL, &so, NULL) != NATS_OK) {
            fprintf(stderr, "subscribe: %s\n", nats_GetLastError(NULL));
            return 1;
        }
    }
    t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    dt = now() - t0;
    printf("%.0f\n", per_thread * threads / dt);
    natsSubscription_Destroy(follow);
    js_DeleteStream(js, "BENCH_RAW", NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    nats_Close();
    return 0;
}
