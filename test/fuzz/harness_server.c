/* SPDX-License-Identifier: MIT */
/* See harness_server.h. */
#include "harness_server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "cli.h"
#include "config/config.h"

static struct fuzz_server server;
static char data_dir[] = "/tmp/chatto-fuzz-XXXXXX";

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void *
app_thread(void *arg)
{
    static struct cli_args args;
    app_run(arg, &args);
    return NULL;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void
cleanup(void)
{
    nftw(data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool
fuzz_ws_closed(const char *resp, size_t n)
{
    const char *end = memmem(resp, n, "\r\n\r\n", 4);
    size_t i;

    if (!end)
        return false;
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
        return false; /* an error answer: the server closes, or the idle wait ends it */
    for (i = (size_t)(end + 4 - resp); i + 2 <= n;) {
        uint8_t op = (uint8_t)resp[i] & 0x0f;
        size_t len = (uint8_t)resp[i + 1] & 0x7f, h = 2;
        if (len == 126) {
            if (i + 4 > n)
                return false;
            len = (size_t)(uint8_t)resp[i + 2] << 8 | (uint8_t)resp[i + 3];
            h = 4;
        } else if (len == 127) {
            if (i + 10 > n)
                return false;
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | (uint8_t)resp[i + 2 + k];
            h = 10;
        }
        if (op == 8)
            return true;
        if (len > n || i + h + len > n)
            return false;
        i += h + len;
    }
    return false;
}

long
fuzz_exchange(const void *req, size_t len, char *resp, size_t cap, int idle_ms, int answer_ms,
              bool keep_open, bool (*done)(const char *resp, size_t n))
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)server.port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    size_t got = 0, off = 0;
    int64_t start = now_ms(), deadline = start + 10000, first = start + answer_ms, last = 0;

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    while (off < len) {
        ssize_t n = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may close early (a 400 or 413 before the body): read what it said */
        off += (size_t)n;
    }
    if (!keep_open)
        shutdown(fd, SHUT_WR);
    for (;;) {
        int64_t t = now_ms(), wait = deadline - t;
        if (last && t - last >= idle_ms)
            break; /* answered, then quiet: a kept-alive connection */
        if (!last && t >= first)
            break; /* no answer: the server waits for the rest of the request */
        if (!last && wait > first - t)
            wait = first - t;
        if (wait <= 0) {
            fprintf(stderr, "harness: no end to the server's answer within 10 s (%zu bytes so far)\n", got);
            break;
        }
        if (last && wait > idle_ms - (t - last))
            wait = idle_ms - (t - last);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)wait) <= 0)
            continue;
        char sink[4096];
        char *dst = got + 1 < cap ? resp + got : sink;
        size_t room = got + 1 < cap ? cap - got - 1 : sizeof sink;
        ssize_t n = recv(fd, dst, room, 0);
        if (n <= 0)
            break;
        if (dst != sink)
            got += (size_t)n;
        last = now_ms();
        if (done && done(resp, got))
            break;
    }
    if (cap)
        resp[got < cap ? got : cap - 1] = '\0';
    close(fd);
    return (long)got;
}

static int
status_of(const char *resp)
{
    int code = 0;
    return sscanf(resp, "HTTP/1.%*d %d", &code) == 1 ? code : 0;
}

static const char *
body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

int
fuzz_connect_call(const char *service_method, const char *body, size_t len, char *resp, size_t cap)
{
    size_t hlen = 512 + strlen(service_method) + strlen(server.token);
    char *req = malloc(hlen + len);
    int n;

    if (!req)
        return 0;
    n = snprintf(req, hlen,
                 "POST /api/connect/%s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 service_method, server.token, len);
    memcpy(req + n, body, len);
    long got = fuzz_exchange(req, (size_t)n + len, resp, cap, 2000, 10000, false, NULL);
    free(req);
    return got > 0 ? status_of(resp) : 0;
}

/* POST a JSON body without credentials: the account flows. */
static int
post_json(const char *path, const char *json, char *resp, size_t cap)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nOrigin: "
                     "http://localhost:%d\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     path, server.port, strlen(json), json);
    return fuzz_exchange(req, (size_t)n, resp, cap, 2000, 10000, false, NULL) > 0 ? status_of(resp) : 0;
}

static void
pick(const char *resp, const char *a, const char *b, char *out, size_t len)
{
    cJSON *o = cJSON_Parse(body_of(resp)), *v = o ? cJSON_GetObjectItemCaseSensitive(o, a) : NULL;

    if (v && b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (!cJSON_IsString(v)) {
        fprintf(stderr, "harness: no %s%s%s in %.300s\n", a, b ? "." : "", b ? b : "", resp);
        abort();
    }
    snprintf(out, len, "%s", v->valuestring);
    cJSON_Delete(o);
}

static void
must(int status, const char *what, const char *resp)
{
    if (status != 200) {
        fprintf(stderr, "harness: %s answered %d: %.400s\n", what, status, resp);
        abort();
    }
}

static void
setting(struct cfg *c, const char *section, const char *name, const char *value)
{
    struct ch_err err = { 0 };
    int k = cfg_key_find(section, name);

    if (k < 0 || cfg_set(c, (enum cfg_key)k, value, CFG_SRC_FLAG, "fuzz", &err) != CH_OK) {
        fprintf(stderr, "harness: %s.%s = %s: %s\n", section, name, value, err.msg);
        abort();
    }
}

static void
start(void)
{
    static char resp[65536];
    struct cfg *c = cfg_new();
    struct ch_err err = { 0 };
    char port[16], dir[128];
    pthread_t t;

    if (!mkdtemp(data_dir))
        abort();
    atexit(cleanup);
    server.port = free_port();
    snprintf(port, sizeof port, "%d", server.port);
    snprintf(dir, sizeof dir, "%s/data", data_dir);
    setting(c, "webserver", "port", port);
    setting(c, "webserver", "bind_address", "127.0.0.1");
    setting(c, "webserver", "max_connections_per_ip", "0");
    /* an incomplete request followed by FIN is held until this timeout (libmicrohttpd 0.9.75): fuzz_http makes
     * many, and gives up on each after 100 ms */
    setting(c, "webserver", "connection_timeout", "5s");
    setting(c, "nats.embedded", "data_dir", dir);
    setting(c, "log", "level", getenv("FUZZ_LOG") ? getenv("FUZZ_LOG") : "error");
    setting(c, "auth", "password_hash", "owasp");
    setting(c, "auth", "login_max_failures", "0");
    setting(c, "auth", "login_max_failures_per_ip", "0");
    setting(c, "auth", "register_max_per_ip", "0");
    setting(c, "auth", "register_max", "0");
    setting(c, "limits", "messages_per_second", "0");
    setting(c, "limits", "bot_messages_per_second", "0");
    /* calls on (VoiceCallService and the webhook do their work), with no LiveKit listening */
    setting(c, "livekit", "enabled", "true");
    setting(c, "livekit", "url", "ws://127.0.0.1:9");
    setting(c, "livekit", "api_key", "APIfuzz");
    setting(c, "livekit", "api_secret", "fuzz-livekit-secret-0123456789abcdef");
    setting(c, "livekit", "reconcile_interval", "1h");
    setting(c, "realtime", "max_connections_per_user", "0");
    setting(c, "realtime", "max_connections_per_ip", "0");
    setting(c, "realtime", "max_unauthenticated", "0");
    setting(c, "realtime", "hello_timeout", "1s");
    if (cfg_validate(c, &err) != CH_OK) {
        fprintf(stderr, "harness: %s\n", err.msg);
        abort();
    }
    if (pthread_create(&t, NULL, app_thread, c) != 0)
        abort();
    pthread_detach(t);
    int64_t deadline = now_ms() + 60000;
    for (;;) {
        const char probe[] = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if (fuzz_exchange(probe, sizeof probe - 1, resp, sizeof resp, 1000, 10000, false, NULL) > 0 &&
            status_of(resp) == 200)
            break;
        if (now_ms() > deadline) {
            fprintf(stderr, "harness: the server did not become ready in 60 s\n");
            abort();
        }
        usleep(100 * 1000);
    }
    if (post_json("/auth/register",
                  "{\"login\":\"fuzzer\",\"password\":\"correct horse battery\",\"issueToken\":true}", resp,
                  sizeof resp) != 200) {
        fprintf(stderr, "harness: registration failed: %.300s\n", resp);
        abort();
    }
    pick(resp, "token", NULL, server.token, sizeof server.token);
    pick(resp, "user", "id", server.user, sizeof server.user);
    post_json("/auth/register", "{\"login\":\"friend\",\"password\":\"correct horse battery\"}", resp, sizeof resp);
    char friend_id[64], body[256];
    pick(resp, "user", "id", friend_id, sizeof friend_id);
    const char room[] = "{\"name\":\"fuzz\",\"description\":\"a room to fuzz in\"}";
    must(fuzz_connect_call("chatto.api.v1.RoomService/CreateRoom", room, sizeof room - 1, resp, sizeof resp),
         "CreateRoom", resp);
    pick(resp, "room", "id", server.room, sizeof server.room);
    int n = snprintf(body, sizeof body, "{\"roomId\":\"%s\",\"body\":\"hello @fuzzer\"}", server.room);
    must(fuzz_connect_call("chatto.api.v1.MessageService/CreateMessage", body, (size_t)n, resp, sizeof resp),
         "CreateMessage", resp);
    pick(resp, "message", "id", server.event, sizeof server.event);
    n = snprintf(body, sizeof body, "{\"participantIds\":[\"%s\"]}", friend_id);
    must(fuzz_connect_call("chatto.api.v1.RoomService/StartDM", body, (size_t)n, resp, sizeof resp), "StartDM",
         resp);
    pick(resp, "room", "id", server.dm, sizeof server.dm);
    fprintf(stderr, "harness: chatto on 127.0.0.1:%d (data in %s): user %s, room %s, message %s, dm %s\n",
            server.port, data_dir, server.user, server.room, server.event, server.dm);
}

const struct fuzz_server *
fuzz_server(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, start);
    return &server;
}

char *
fuzz_expand(const uint8_t *in, size_t len, size_t *out_len)
{
    size_t cap = len * 4 + 300, n = 0; /* a token is the longest: under 256 bytes for 2 input bytes */
    char *out = malloc(cap);

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        const char *sub = NULL;
        if (in[i] == '@' && i + 1 < len) {
            switch (in[i + 1]) {
            case 'T': sub = server.token; break;
            case 'R': sub = server.room; break;
            case 'U': sub = server.user; break;
            case 'E': sub = server.event; break;
            case 'D': sub = server.dm; break;
            }
        }
        if (sub) {
            size_t sl = strlen(sub);
            if (n + sl + (len - i) >= cap) {
                char *bigger = realloc(out, cap = cap * 2 + sl);
                if (!bigger) {
                    free(out);
                    return NULL;
                }
                out = bigger;
            }
            memcpy(out + n, sub, sl);
            n += sl;
            i++;
        } else {
            out[n++] = (char)in[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}
