/* SPDX-License-Identifier: MIT */
/*
 * The metrics table and its text exposition (see metrics.h). A family keeps its series in a small array under its
 * own mutex; a histogram series has fixed buckets (seconds) chosen for request and publish latencies.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/proc.h"
#include "metrics/metrics.h"

#define SERIES_MAX 512 /* per family; past it, new label values are counted under "other" */
#define LABEL_MAX 96

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM, K_PROC };

static const struct {
    const char *name, *help;
    enum kind kind;
    const char *l1, *l2; /* label names, NULL for none */
} table[MET_COUNT] = {
    [MET_BUILD_INFO] = { "chatto_build_info", "Chatto version (always 1)", K_GAUGE, "version", NULL },
    [MET_READY] = { "chatto_ready", "1 when /readyz would answer 200", K_GAUGE, NULL, NULL },
    [MET_HTTP_REQUESTS] = { "chatto_http_requests_total", "HTTP requests answered, by route and status code",
                            K_COUNTER, "route", "code" },
    [MET_HTTP_DURATION] = { "chatto_http_request_duration_seconds", "Time from request to response, by route",
                            K_HISTOGRAM, "route", NULL },
    [MET_HTTP_INFLIGHT] = { "chatto_http_requests_in_flight", "HTTP requests being served", K_GAUGE, NULL, NULL },
    [MET_WS_CONNECTIONS] = { "chatto_websocket_connections", "Open WebSocket connections", K_GAUGE, NULL, NULL },
    [MET_WS_FRAMES] = { "chatto_websocket_frames_sent_total", "Realtime frames sent to WebSocket clients",
                        K_COUNTER, NULL, NULL },
    [MET_WS_HANDOFFS] = { "chatto_websocket_handoffs_total",
                          "Realtime frames handed to the WebSocket loop (once a frame, for all its sockets here; "
                          "none when none of its audience is connected here)", K_COUNTER, NULL, NULL },
    [MET_WS_SLOW] = { "chatto_websocket_slow_consumers_total",
                      "WebSocket clients disconnected for not reading what was sent to them", K_COUNTER, NULL, NULL },
    [MET_JS_PUBLISH_DURATION] = { "chatto_jetstream_publish_duration_seconds",
                                  "JetStream publish round trips (until the stream acknowledged)", K_HISTOGRAM, NULL,
                                  NULL },
    [MET_JS_ERRORS] = { "chatto_jetstream_errors_total", "JetStream requests that failed, by operation", K_COUNTER,
                        "op", NULL },
    [MET_FOLLOWER_LAG] = { "chatto_event_follower_lag", "Events in CHATTO_EVENTS this process has not applied yet",
                           K_GAUGE, NULL, NULL },
    [MET_FOLLOWER_REPAIRS] = { "chatto_stream_follower_repairs_total",
                               "Stream messages the server did not deliver to a follower and this process fetched "
                               "(kind=fetched), and followers found stalled and subscribed again (kind=resubscribed)",
                               K_COUNTER, "kind", NULL },
    [MET_MODEL_ROOMS] = { "chatto_model_rooms", "Rooms in this process's read model", K_GAUGE, NULL, NULL },
    [MET_MODEL_MESSAGES] = { "chatto_model_messages", "Messages in this process's read model", K_GAUGE, NULL, NULL },
    [MET_MODEL_COLD_MESSAGES] = { "chatto_model_cold_messages",
                                  "Messages of the read model kept out of memory (core.resident_messages)", K_GAUGE,
                                  NULL, NULL },
    [MET_MODEL_USERS] = { "chatto_model_users", "Users in this process's read model", K_GAUGE, NULL, NULL },
    [MET_BODY_CACHE_BYTES] = { "chatto_message_body_cache_bytes",
                               "Bytes of message bodies this process keeps in memory (core.cache_size bounds them)",
                               K_GAUGE, NULL, NULL },
    [MET_BODY_CACHE_HITS] = { "chatto_message_body_cache_hits_total", "Message bodies shown from memory", K_COUNTER,
                              NULL, NULL },
    [MET_BODY_FETCHES] = { "chatto_message_body_fetches_total",
                           "Message bodies read from NATS because they were not in memory", K_COUNTER, NULL, NULL },
    [MET_LOGIN_FAILURES] = { "chatto_login_failures_total", "Failed password logins", K_COUNTER, NULL, NULL },
    [MET_RATE_LIMITED] = { "chatto_rate_limited_total", "Requests refused by a rate limit, by limit", K_COUNTER,
                           "limit", NULL },
    [MET_NOTIFICATIONS] = { "chatto_notifications_total", "Notification entries written by this process", K_COUNTER,
                            NULL, NULL },
    [MET_PUSHES] = { "chatto_web_pushes_total", "Web Push messages sent by this process, by result", K_COUNTER,
                     "result", NULL },
    [MET_PROC_CPU] = { "process_cpu_seconds_total", "User and system CPU time spent", K_PROC, NULL, NULL },
    [MET_PROC_RSS] = { "process_resident_memory_bytes", "Resident memory size", K_PROC, NULL, NULL },
    [MET_PROC_FDS] = { "process_open_fds", "Open file descriptors", K_PROC, NULL, NULL },
    [MET_PROC_MAX_FDS] = { "process_max_fds", "Most file descriptors this process may open", K_PROC, NULL, NULL },
    [MET_PROC_START] = { "process_start_time_seconds", "Start time of the process since the Unix epoch",
                         K_PROC, NULL, NULL },
};

static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

struct series {
    char l1[LABEL_MAX], l2[LABEL_MAX];
    double value;                 /* counter */
    unsigned long long counts[NBOUNDS + 1]; /* histogram: per bucket (not cumulative), the last one +Inf */
    double sum;
};

static struct family {
    _Atomic unsigned long long plain; /* a counter without labels (frames sent, login failures): no lock at all,
                                       * since some are counted on hot paths (every realtime frame) */
    pthread_mutex_t mu;
    struct series *s;
    size_t n, cap;
    metrics_gauge_fn fn;
    void *ctx;
} fams[MET_COUNT];

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char version[64] = "unknown";

static void
init(void)
{
    for (int i = 0; i < MET_COUNT; i++)
        pthread_mutex_init(&fams[i].mu, NULL);
}

/* The series for (l1, l2), made if new; family locked. NULL when out of memory. */
static struct series *
series_of(struct family *f, const char *l1, const char *l2)
{
    l1 = l1 ? l1 : "";
    l2 = l2 ? l2 : "";
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->s[i].l1, l1) && !strcmp(f->s[i].l2, l2))
            return &f->s[i];
    if (f->n > SERIES_MAX) /* bounded, whatever callers do: the rest share one series, made below */
        return &f->s[SERIES_MAX];
    if (f->n == SERIES_MAX) {
        l1 = "other";
        l2 = "";
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct series *v = realloc(f->s, cap * sizeof *v);
        if (!v)
            return NULL;
        f->s = v;
        f->cap = cap;
    }
    struct series *s = &f->s[f->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->l1, sizeof s->l1, "%s", l1);
    snprintf(s->l2, sizeof s->l2, "%s", l2);
    return s;
}

void
metrics_add(enum metric_id m, const char *l1, const char *l2, double by)
{
    if (!table[m].l1) { /* (counted in whole events) */
        if (by > 0)
            atomic_fetch_add(&fams[m].plain, (unsigned long long)(by + 0.5));
        return;
    }
    pthread_once(&once, init);
    struct family *f = &fams[m];
    pthread_mutex_lock(&f->mu);
    struct series *s = series_of(f, l1, l2);
    if (s)
        s->value += by;
    pthread_mutex_unlock(&f->mu);
}

void
metrics_observe(enum metric_id m, const char *l1, double value)
{
    size_t b = 0;

    pthread_once(&once, init);
    while (b < NBOUNDS && value > bounds[b])
        b++;
    struct family *f = &fams[m];
    pthread_mutex_lock(&f->mu);
    struct series *s = series_of(f, l1, NULL);
    if (s) {
        s->counts[b]++;
        s->sum += value;
    }
    pthread_mutex_unlock(&f->mu);
}

void
metrics_set_gauge(enum metric_id m, metrics_gauge_fn fn, void *ctx)
{
    pthread_once(&once, init);
    pthread_mutex_lock(&fams[m].mu);
    fams[m].fn = fn;
    fams[m].ctx = ctx;
    pthread_mutex_unlock(&fams[m].mu);
}

void
metrics_set_version(const char *v)
{
    snprintf(version, sizeof version, "%s", v);
}

void
metrics_reset(void)
{
    pthread_once(&once, init);
    for (int i = 0; i < MET_COUNT; i++) {
        pthread_mutex_lock(&fams[i].mu);
        free(fams[i].s);
        fams[i].s = NULL;
        atomic_store(&fams[i].plain, 0);
        fams[i].n = fams[i].cap = 0;
        fams[i].fn = NULL;
        pthread_mutex_unlock(&fams[i].mu);
    }
}

/* ---- rendering ---- */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    for (int attempt = 0; attempt < 2 && !b->oom; attempt++) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap : 4096);
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* A label value escaped as the format wants (backslash, quote, newline). */
static void
put_label(struct buf *b, const char *name, const char *v, bool first)
{
    put(b, "%s%s=\"", first ? "" : ",", name);
    for (const char *c = v; *c; c++) {
        if (*c == '\\' || *c == '"')
            put(b, "\\%c", *c);
        else if (*c == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *c);
    }
    put(b, "\"");
}

static void
put_labels(struct buf *b, enum metric_id m, const struct series *s, const char *le)
{
    bool any = table[m].l1 || le;

    if (!any)
        return;
    put(b, "{");
    if (table[m].l1)
        put_label(b, table[m].l1, s->l1, true);
    if (table[m].l2)
        put_label(b, table[m].l2, s->l2, false);
    if (le)
        put_label(b, "le", le, !table[m].l1);
    put(b, "}");
}

static void
put_number(struct buf *b, double v)
{
    if (isinf(v))
        put(b, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        put(b, "NaN");
    else if (v == (double)(long long)v && fabs(v) < 1e15)
        put(b, "%lld", (long long)v);
    else
        put(b, "%.9g", v);
}

/* process_* from /proc (Linux) */
static double
proc_value(enum metric_id m)
{
    long ticks = sysconf(_SC_CLK_TCK);
    char buf[1024];
    FILE *f;

    switch (m) {
    case MET_PROC_CPU:
    case MET_PROC_START: {
        unsigned long long ut = 0, stt = 0, start = 0;
        size_t n = 0;
        if (!(f = fopen("/proc/self/stat", "r")))
            return NAN;
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
                         &ut, &stt, &start) != 3 || ticks <= 0)
            return NAN;
        if (m == MET_PROC_CPU)
            return (double)(ut + stt) / (double)ticks;
        /* boot time + start ticks */
        double btime = NAN;
        if ((f = fopen("/proc/stat", "r"))) {
            unsigned long long bt;
            while (fgets(buf, sizeof buf, f))
                if (sscanf(buf, "btime %llu", &bt) == 1)
                    btime = (double)bt;
            fclose(f);
        }
        return btime + (double)start / (double)ticks;
    }
    case MET_PROC_RSS: {
        long kib = proc_rss_kib();
        return kib >= 0 ? (double)kib * 1024.0 : NAN;
    }
    case MET_PROC_FDS: {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        double n = 0;
        if (!d)
            return NAN;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        return n - 1; /* (the directory stream's own descriptor) */
    }
    case MET_PROC_MAX_FDS: {
        struct rlimit rl;
        return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : NAN;
    }
    default:
        return NAN;
    }
}

char *
metrics_render(size_t *len)
{
    struct buf b = { 0 };

    pthread_once(&once, init);
    for (int i = 0; i < MET_COUNT; i++) {
        struct family *f = &fams[i];
        enum kind k = table[i].kind;
        const char *type = k == K_HISTOGRAM ? "histogram"
                           : k == K_COUNTER || i == MET_PROC_CPU ? "counter" : "gauge";
        put(&b, "# HELP %s %s\n# TYPE %s %s\n", table[i].name, table[i].help, table[i].name, type);
        if (i == MET_BUILD_INFO) {
            put(&b, "%s{", table[i].name);
            put_label(&b, "version", version, true);
            put(&b, "} 1\n");
            continue;
        }
        if (k == K_PROC) {
            double v = proc_value((enum metric_id)i);
            if (!isnan(v)) {
                put(&b, "%s ", table[i].name);
                put_number(&b, v);
                put(&b, "\n");
            }
            continue;
        }
        pthread_mutex_lock(&f->mu);
        metrics_gauge_fn fn = f->fn;
        void *ctx = f->ctx;
        if (k == K_GAUGE) {
            pthread_mutex_unlock(&f->mu);
            if (fn) {
                put(&b, "%s ", table[i].name);
                put_number(&b, fn(ctx));
                put(&b, "\n");
            }
            continue;
        }
        if (k == K_COUNTER && !table[i].l1) {
            put(&b, "%s %llu\n", table[i].name, atomic_load(&f->plain));
            pthread_mutex_unlock(&f->mu);
            continue;
        }
        for (size_t j = 0; j < f->n; j++) {
            const struct series *s = &f->s[j];
            if (k == K_COUNTER) {
                put(&b, "%s", table[i].name);
                put_labels(&b, (enum metric_id)i, s, NULL);
                put(&b, " ");
                put_number(&b, s->value);
                put(&b, "\n");
                continue;
            }
            unsigned long long cum = 0;
            char le[32];
            for (size_t q = 0; q <= NBOUNDS; q++) {
                cum += s->counts[q];
                if (q < NBOUNDS)
                    snprintf(le, sizeof le, "%g", bounds[q]);
                else
                    snprintf(le, sizeof le, "+Inf");
                put(&b, "%s_bucket", table[i].name);
                put_labels(&b, (enum metric_id)i, s, le);
                put(&b, " %llu\n", cum);
            }
            put(&b, "%s_sum", table[i].name);
            put_labels(&b, (enum metric_id)i, s, NULL);
            put(&b, " ");
            put_number(&b, s->sum);
            put(&b, "\n%s_count", table[i].name);
            put_labels(&b, (enum metric_id)i, s, NULL);
            put(&b, " %llu\n", cum);
        }
        pthread_mutex_unlock(&f->mu);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
