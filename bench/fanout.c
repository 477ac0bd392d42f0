/* SPDX-License-Identifier: MIT */
/*
 * Fan-out benchmark client for `make bench`: N receivers on one epoll thread, one poster thread at a steady rate;
 * each message carries its send time, each receiver computes the end-to-end latency when the frame arrives.
 *   fanout ws   HOST PORT N RATE SECONDS TOKEN ROOM   chatto WebSockets; posts via CreateMessage on the same port
 *   fanout nats HOST PORT N RATE SECONDS NATS_TOKEN   raw core NATS subscribers on one subject (the baseline)
 *   fanout idle HOST PORT N 0 SECONDS TOKEN [WINDOW]  N WebSockets that only hold (memory per connection); with
 *                                                     WINDOW > 0, at most WINDOW handshakes are in flight at once
 * TOKEN "@FILE" reads one token per line: WebSocket i uses line i modulo the count (distinct users), the poster the
 * first. ROOM may be a comma-separated list: the poster goes round the rooms, post k to room k modulo the count.
 * Once posting starts (or, for idle, holding), ws and idle print "POSTING"/"READY <n>" so a caller can sample.
 * Posting (or, for idle, holding) starts once every WebSocket has its "ready" frame (and at least 2 s after the
 * last dial), or after 60 s whichever comes first; idle prints "READY <n>" then, so a caller can measure while
 * they hold. Prints one line: mode n sent delivered rate p50_ms p99_ms max_ms ready refused closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct rx {
    int fd;
    char *buf;
    size_t len, cap;
    int state; /* 0 handshake, 1 upgraded (or NATS), 2 got "ready" */
    bool closed;
};

static const char *mode, *host, *token, *room;
static char **tokens, **rooms; /* TOKEN "@FILE" and ROOM "a,b,c" */
static int ntokens, nrooms;
static int port, nconn, rate, seconds;
static volatile int stop;
static long sent;
static int nready, nrefused, nclosed, nlost; /* lost: closed before it was ready */
static double *lat;
static size_t nlat, caplat;
static pthread_mutex_t latmu = PTHREAD_MUTEX_INITIALIZER;

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
dial(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    inet_pton(AF_INET, host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void
send_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (errno == EINTR)
                continue;
            perror("send");
            exit(1);
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* A masked client text frame. */
static void
ws_send_text(int fd, const char *s)
{
    unsigned char hdr[14], mask[4] = { 1, 2, 3, 4 };
    size_t n = strlen(s), h = 0;
    char *m = malloc(n);

    hdr[h++] = 0x81;
    if (n < 126) {
        hdr[h++] = (unsigned char)(0x80 | n);
    } else {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    }
    memcpy(hdr + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        m[i] = (char)(s[i] ^ mask[i % 4]);
    send_all(fd, hdr, h);
    send_all(fd, m, n);
    free(m);
}

static void
record(const char *p, const char *end)
{
    const char *t = memmem(p, (size_t)(end - p), "t=", 2);
    if (!t)
        return;
    double ms = (double)(now_ns() - strtoll(t + 2, NULL, 10)) / 1e6;
    pthread_mutex_lock(&latmu);
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat = realloc(lat, caplat * sizeof *lat);
    }
    lat[nlat++] = ms;
    pthread_mutex_unlock(&latmu);
}

/* Consume complete WebSocket frames from r->buf. */
static void
ws_parse(struct rx *r)
{
    size_t off = 0;

    if (r->state == 0) {
        char *e = memmem(r->buf, r->len, "\r\n\r\n", 4);
        if (!e)
            return;
        off = (size_t)(e + 4 - r->buf);
        if (r->len < 12 || memcmp(r->buf, "HTTP/1.1 101", 12) != 0) {
            if (nrefused++ < 3)
                fprintf(stderr, "upgrade refused: %.*s\n", (int)strcspn(r->buf, "\r"), r->buf);
            r->len = 0;
            r->state = 3; /* ignore whatever follows */
            return;
        }
        r->state = 1;
        ws_send_text(r->fd, "{\"type\":\"hello\"}");
    }
    if (r->state == 3) {
        r->len = 0;
        return;
    }
    for (;;) {
        if (r->len - off < 2)
            break;
        unsigned char *b = (unsigned char *)r->buf + off;
        size_t n = b[1] & 0x7f, h = 2;
        if (n == 126) {
            if (r->len - off < 4)
                break;
            n = ((size_t)b[2] << 8) | b[3];
            h = 4;
        } else if (n == 127) {
            if (r->len - off < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | b[2 + i];
            h = 10;
        }
        if (r->len - off < h + n)
            break;
        int op = b[0] & 0x0f;
        if (op == 0x9) { /* answer pings */
            unsigned char pong[2] = { 0x8a, 0x80 }, mask[4] = { 0 };
            send_all(r->fd, pong, 2);
            send_all(r->fd, mask, 4);
        } else if (op == 0x1 && memmem(b + h, n, "message.created", 15)) {
            record((const char *)b + h, (const char *)b + h + n);
        } else if (op == 0x1 && r->state == 1 && memmem(b + h, n, "\"ready\"", 7)) {
            r->state = 2;
            nready++;
        }
        off += h + n;
    }
    memmove(r->buf, r->buf + off, r->len - off);
    r->len -= off;
}

/* Consume NATS protocol lines: MSG <subject> <sid> <len>\r\n<payload>\r\n; answer PING. */
static void
nats_parse(struct rx *r)
{
    size_t off = 0;

    for (;;) {
        char *nl = memmem(r->buf + off, r->len - off, "\r\n", 2);
        if (!nl)
            break;
        size_t linelen = (size_t)(nl - (r->buf + off));
        if (linelen >= 4 && !memcmp(r->buf + off, "MSG ", 4)) {
            char line[256];
            snprintf(line, sizeof line, "%.*s", (int)(linelen < 255 ? linelen : 255), r->buf + off);
            char *last = strrchr(line, ' ');
            size_t n = last ? (size_t)atol(last + 1) : 0;
            if (r->len - off < linelen + 2 + n + 2)
                break;
            char *payload = nl + 2;
            record(payload, payload + n);
            off += linelen + 2 + n + 2;
            continue;
        }
        if (linelen >= 4 && !memcmp(r->buf + off, "PING", 4))
            send_all(r->fd, "PONG\r\n", 6);
        off += linelen + 2;
    }
    memmove(r->buf, r->buf + off, r->len - off);
    r->len -= off;
}

static void *
poster(void *arg)
{
    int fd = dial();
    int64_t period = 1000000000LL / rate, next = now_ns(), end = now_ns() + (int64_t)seconds * 1000000000LL;
    char buf[4096];

    (void)arg;
    if (!strcmp(mode, "nats")) {
        snprintf(buf, sizeof buf, "CONNECT {\"verbose\":false,\"pedantic\":false,\"auth_token\":\"%s\"}\r\n", token);
        send_all(fd, buf, strlen(buf));
    }
    while (now_ns() < end) {
        while (now_ns() < next)
            ;
        next += period;
        if (!strcmp(mode, "nats")) {
            char p[64];
            int pl = snprintf(p, sizeof p, "t=%lld", (long long)now_ns());
            int n = snprintf(buf, sizeof buf, "PUB bench.fan %d\r\n%s\r\n", pl, p);
            send_all(fd, buf, (size_t)n);
        } else {
            char body[256];
            const char *to = nrooms ? rooms[sent % nrooms] : room;
            int bl = snprintf(body, sizeof body, "{\"roomId\":\"%s\",\"body\":\"t=%lld\"}", to, (long long)now_ns());
            int n = snprintf(buf, sizeof buf,
                             "POST /api/connect/chatto.api.v1.MessageService/CreateMessage HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
                             token, bl, body);
            send_all(fd, buf, (size_t)n);
            /* read the response (status line + headers + JSON body by Content-Length) */
            char resp[8192];
            size_t got = 0;
            for (;;) {
                ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
                if (r <= 0) {
                    fprintf(stderr, "poster: connection closed\n");
                    exit(1);
                }
                got += (size_t)r;
                resp[got] = 0;
                char *he = strstr(resp, "\r\n\r\n");
                char *cl = strcasestr(resp, "Content-Length:");
                if (he && cl && got >= (size_t)(he + 4 - resp) + (size_t)atol(cl + 15))
                    break;
            }
            if (strncmp(resp, "HTTP/1.1 200", 12) != 0)
                fprintf(stderr, "poster: %.80s\n", resp);
        }
        __atomic_add_fetch(&sent, 1, __ATOMIC_RELAXED);
    }
    close(fd);
    return NULL;
}

static void
open_rx(int ep, struct rx *r, int i)
{
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = r };
    char buf[2048];

    r->fd = dial();
    r->cap = 1 << 16;
    r->buf = malloc(r->cap);
    if (!strcmp(mode, "nats")) {
        snprintf(buf, sizeof buf,
                 "CONNECT {\"verbose\":false,\"pedantic\":false,\"auth_token\":\"%s\"}\r\nSUB bench.fan 1\r\nPING\r\n",
                 token);
        r->state = 1;
    } else {
        snprintf(buf, sizeof buf,
                 "GET /api/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 "Authorization: Bearer %s\r\n\r\n",
                 ntokens ? tokens[i % ntokens] : token);
    }
    send_all(r->fd, buf, strlen(buf));
    epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &e);
}

/* "a,b,c" or the lines of a file, as an array; NULL-free, at least one entry or exit. */
static char **
split_list(char *s, int sep, int *n)
{
    char **v = NULL;
    *n = 0;
    for (char *p = s; p && *p;) {
        char *e = strchr(p, sep);
        if (e)
            *e++ = 0;
        if (*p) {
            v = realloc(v, (size_t)(*n + 1) * sizeof *v);
            v[(*n)++] = p;
        }
        p = e;
    }
    if (!*n) {
        fprintf(stderr, "empty list\n");
        exit(2);
    }
    return v;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    long len;
    char *s;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(2);
    }
    s = malloc((size_t)len + 1);
    if (fread(s, 1, (size_t)len, f) != (size_t)len) {
        perror(path);
        exit(2);
    }
    s[len] = 0;
    fclose(f);
    return s;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    struct rlimit rl;
    int ep = epoll_create1(0);
    struct rx *rs;
    pthread_t pt;

    if (argc < 8) {
        fprintf(stderr, "usage: fanout ws|nats|idle HOST PORT N RATE SECONDS TOKEN [ROOM | idle: WINDOW]\n");
        return 2;
    }
    mode = argv[1];
    host = argv[2];
    port = atoi(argv[3]);
    nconn = atoi(argv[4]);
    rate = atoi(argv[5]);
    seconds = atoi(argv[6]);
    token = argv[7];
    room = argc > 8 ? argv[8] : "";
    if (token[0] == '@') {
        tokens = split_list(slurp(token + 1), '\n', &ntokens);
        token = tokens[0];
    }
    if (strcmp(mode, "idle") != 0 && strchr(room, ','))
        rooms = split_list(strdup(room), ',', &nrooms);
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    rs = calloc((size_t)nconn, sizeof *rs);
    int window = !strcmp(mode, "idle") && argc > 8 ? atoi(argv[8]) : 0, dialed = 0;
    for (; dialed < nconn && (window <= 0 || dialed < window); dialed++)
        open_rx(ep, &rs[dialed], dialed);
    /* let the handshakes and hellos settle */
    int64_t settle = dialed == nconn ? now_ns() + 2000000000LL : 0, settle_max = now_ns() + 60000000000LL;
    struct epoll_event evs[512];
    bool posting = false;
    int64_t end = 0;
    for (;;) {
        int n = epoll_wait(ep, evs, 512, 50);
        for (int i = 0; i < n; i++) {
            struct rx *r = evs[i].data.ptr;
            if (r->len == r->cap) {
                r->cap *= 2;
                r->buf = realloc(r->buf, r->cap);
            }
            ssize_t got = recv(r->fd, r->buf + r->len, r->cap - r->len, MSG_DONTWAIT);
            if (got <= 0) {
                if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    if (r->state < 2)
                        nlost++;
                    if (r->state != 3 && nclosed++ < 3)
                        fprintf(stderr, "receiver %ld closed\n", (long)(r - rs));
                    epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
                    r->closed = true;
                }
                continue;
            }
            r->len += (size_t)got;
            if (!strcmp(mode, "nats"))
                nats_parse(r);
            else
                ws_parse(r);
        }
        for (; dialed < nconn && dialed - nready - nrefused - nlost < window; dialed++)
            open_rx(ep, &rs[dialed], dialed); /* WINDOW > 0 only: the loop above dialled everything otherwise */
        if (dialed == nconn && settle == 0)
            settle = now_ns() + 2000000000LL;
        int64_t now = now_ns();
        bool all = !strcmp(mode, "nats") || nready + nrefused == nconn;
        if (!posting && ((settle && now >= settle && all) || now >= settle_max)) {
            posting = true;
            if (rate > 0)
                pthread_create(&pt, NULL, poster, NULL);
            end = now + (int64_t)seconds * 1000000000LL + (rate > 0 ? 2000000000LL : 0); /* 2 s to drain */
            if (!strcmp(mode, "idle"))
                printf("READY %d\n", nready);
            else if (!strcmp(mode, "ws"))
                printf("POSTING %d\n", nready);
            fflush(stdout);
        }
        if (posting && now >= end)
            break;
    }
    if (rate > 0)
        pthread_join(pt, NULL);
    qsort(lat, nlat, sizeof *lat, cmp);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] : 0,
           mx = nlat ? lat[nlat - 1] : 0;
    printf("RESULT mode=%s n=%d sent=%ld delivered=%zu rate=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f ready=%d "
           "refused=%d closed=%d\n",
           mode, nconn, sent, nlat, seconds ? (double)nlat / seconds : 0, p50, p99, mx, nready, nrefused, nclosed);
    return 0;
}
