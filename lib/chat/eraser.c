/* SPDX-License-Identifier: MIT */
/*
 * The eraser thread: every two seconds it takes the model's backlog of bodies that belong to deleted messages
 * but may still be on disk (a deleter crashed between its tombstone and the erase, maybe in another process) and
 * erases them from CHATTO_EVENTS; and it moves old messages a command held in memory a moment ago to the cold
 * timeline once no post in their room did. Started and stopped by chat_new/chat_free (main thread); runs alone
 * otherwise.
 */
#include <stdlib.h>

#include "base/clock.h"
#include "chat/chat_int.h"
#include "store/store.h"

/* Erases bodies of deleted messages that a deleter (maybe another, crashed process) left behind. */
static void *
eraser_main(void *arg)
{
    struct chat *c = arg;

    for (;;) {
        struct timespec ts = clock_deadline(2000);
        uint64_t *v = NULL;
        size_t n = 0;

        pthread_mutex_lock(&c->eraser.mu);
        if (!c->eraser.stop)
            pthread_cond_timedwait(&c->eraser.cv, &c->eraser.mu, &ts);
        bool stop = c->eraser.stop;
        pthread_mutex_unlock(&c->eraser.mu);
        if (stop)
            break;
        chat_model_sweep(c->m); /* (rooms whose old messages were held when the last post came) */
        chat_model_take_erasures(c->m, &v, &n);
        for (size_t i = 0; i < n; i++)
            store_erase(c->store, STORE_S_EVENTS, v[i], NULL);
        free(v);
    }
    store_thread_exit();
    return NULL;
}

enum ch_status
eraser_start(struct chat *c, struct ch_err *err)
{
    pthread_mutex_init(&c->eraser.mu, NULL);
    pthread_cond_init(&c->eraser.cv, NULL);
    if (pthread_create(&c->eraser.thread, NULL, eraser_main, c) != 0) {
        pthread_mutex_destroy(&c->eraser.mu);
        pthread_cond_destroy(&c->eraser.cv);
        return ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the eraser thread");
    }
    c->eraser.running = true;
    return CH_OK;
}

void
eraser_stop(struct chat *c)
{
    if (!c->eraser.running)
        return;
    pthread_mutex_lock(&c->eraser.mu);
    c->eraser.stop = true;
    pthread_cond_signal(&c->eraser.cv);
    pthread_mutex_unlock(&c->eraser.mu);
    pthread_join(c->eraser.thread, NULL);
    pthread_mutex_destroy(&c->eraser.mu);
    pthread_cond_destroy(&c->eraser.cv);
    c->eraser.running = false;
}
