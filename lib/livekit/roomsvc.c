/* SPDX-License-Identifier: MIT */
/*
 * A client of LiveKit's RoomService over its Twirp API, as LiveKit's server SDKs call it: POST
 * <url>/twirp/livekit.RoomService/<Method> with a JSON body and "Authorization: Bearer <token>", the token
 * carrying the grant the method needs (roomList for ListRooms, roomAdmin on the room for ListParticipants).
 * libcurl, one request at a time per call, bounded by a timeout. Any thread (the reconciler's).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json.h"
#include "livekit/livekit.h"

#define ANSWER_MAX (4u << 20)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_rc;

static void
init_once(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct buf {
    char *p;
    size_t n;
    bool over;
};

static size_t
on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    char *np;

    if (b->n + n > ANSWER_MAX || !(np = realloc(b->p, b->n + n + 1))) {
        b->over = true;
        return 0;
    }
    b->p = np;
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

/* The http(s) base of a ws(s):// or http(s):// URL, without a trailing '/'. */
static void
http_base(const char *url, char *out, size_t len)
{
    const char *rest = url;
    const char *scheme = "http";

    if (!strncmp(url, "wss://", 6)) {
        scheme = "https";
        rest = url + 6;
    } else if (!strncmp(url, "ws://", 5)) {
        rest = url + 5;
    } else if (!strncmp(url, "https://", 8)) {
        scheme = "https";
        rest = url + 8;
    } else if (!strncmp(url, "http://", 7)) {
        rest = url + 7;
    }
    snprintf(out, len, "%s://%s", scheme, rest);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* POST one Twirp method; the answer's JSON object on CH_OK. */
static enum ch_status
twirp(const char *url, const char *key, const char *secret, const char *method, cJSON *grant, const char *body,
      int64_t timeout_ms, cJSON **out, struct ch_err *err)
{
    char base[1024], full[1200], errbuf[CURL_ERROR_SIZE] = "";
    char *tok = lk_token_mint(key, secret, NULL, NULL, NULL, grant, (int64_t)time(NULL), 600), *auth = NULL;
    struct curl_slist *hl = NULL, *n;
    struct buf b = { 0 };
    long code = 0;
    CURL *h = NULL;
    CURLcode rc;
    enum ch_status st = CH_OK;

    *out = NULL;
    pthread_once(&once, init_once);
    if (init_rc != CURLE_OK) {
        free(tok);
        return ch_err_set(err, CH_EINTERNAL, NULL, "libcurl: %s", curl_easy_strerror(init_rc));
    }
    http_base(url, base, sizeof base);
    snprintf(full, sizeof full, "%s/twirp/livekit.RoomService/%s", base, method);
    if (!tok || !(auth = malloc(strlen(tok) + 32))) {
        free(tok);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    snprintf(auth, strlen(tok) + 32, "Authorization: Bearer %s", tok);
    free(tok);
    if (!(n = curl_slist_append(hl, auth)) || !(hl = n, n = curl_slist_append(hl, "Content-Type: application/json")) ||
        !(hl = n, n = curl_slist_append(hl, "Expect:")) || !(h = curl_easy_init())) {
        st = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto out;
    }
    hl = n;
    curl_easy_setopt(h, CURLOPT_URL, full);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK) {
        st = ch_err_set(err, CH_EUNAVAIL, NULL, "LiveKit %s: %s", method, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto out;
    }
    cJSON *o = b.p ? cJSON_ParseWithLength(b.p, b.n) : NULL;
    if (code == 404 || (code >= 400 && o && !strcmp(json_str_or(o, "code", ""), "not_found"))) {
        st = ch_err_set(err, CH_ENOTFOUND, NULL, "LiveKit %s: not found", method);
        cJSON_Delete(o);
    } else if (code != 200 || !cJSON_IsObject(o)) {
        st = ch_err_set(err, CH_EUNAVAIL, NULL, "LiveKit %s: HTTP %ld%s%.100s", method, code, o ? ": " : "",
                        o ? json_str_or(o, "msg", "") : "");
        cJSON_Delete(o);
    } else {
        *out = o;
    }
out:
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    free(auth);
    free(b.p);
    return st;
}

enum ch_status
lk_rooms_list(const char *url, const char *key, const char *secret, int64_t timeout_ms, struct lk_list *out,
              struct ch_err *err)
{
    cJSON *g = cJSON_CreateObject(), *a = NULL;
    const cJSON *r;
    enum ch_status st;

    memset(out, 0, sizeof *out);
    cJSON_AddBoolToObject(g, "roomList", true);
    if ((st = twirp(url, key, secret, "ListRooms", g, "{}", timeout_ms, &a, err)) != CH_OK)
        return st;
    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(a, "rooms");
    size_t cap = cJSON_IsArray(rooms) ? (size_t)cJSON_GetArraySize(rooms) : 0;
    if (cap && !(out->rooms = calloc(cap, sizeof *out->rooms))) {
        cJSON_Delete(a);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (!cap)
        rooms = NULL;
    cJSON_ArrayForEach(r, rooms)
    {
        const char *name = json_str_or(r, "name", "");
        if (*name && strlen(name) <= LK_ROOM_NAME_MAX)
            snprintf(out->rooms[out->n++], LK_ROOM_NAME_MAX + 1, "%s", name);
    }
    cJSON_Delete(a);
    return CH_OK;
}

enum ch_status
lk_participants_list(const char *url, const char *key, const char *secret, const char *room, int64_t timeout_ms,
                     struct lk_list *out, struct ch_err *err)
{
    cJSON *g = cJSON_CreateObject(), *req = cJSON_CreateObject(), *a = NULL;
    const cJSON *p;
    char *body;
    enum ch_status st;

    memset(out, 0, sizeof *out);
    cJSON_AddBoolToObject(g, "roomAdmin", true);
    cJSON_AddStringToObject(g, "room", room);
    cJSON_AddStringToObject(req, "room", room);
    body = json_print(req, NULL);
    cJSON_Delete(req);
    if (!body) {
        cJSON_Delete(g);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    st = twirp(url, key, secret, "ListParticipants", g, body, timeout_ms, &a, err);
    free(body);
    if (st != CH_OK)
        return st;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(a, "participants");
    size_t cap = cJSON_IsArray(ps) ? (size_t)cJSON_GetArraySize(ps) : 0;
    if (cap && !(out->participants = calloc(cap, sizeof *out->participants))) {
        cJSON_Delete(a);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (!cap)
        ps = NULL;
    cJSON_ArrayForEach(p, ps)
    {
        const char *id = json_str_or(p, "identity", ""), *md = json_str_or(p, "metadata", "");
        if (!*id || strlen(id) >= sizeof out->participants->identity)
            continue;
        snprintf(out->participants[out->n].identity, sizeof out->participants->identity, "%s", id);
        if (strlen(md) < sizeof out->participants->metadata)
            snprintf(out->participants[out->n].metadata, sizeof out->participants->metadata, "%s", md);
        out->n++;
    }
    cJSON_Delete(a);
    return CH_OK;
}

void
lk_list_free(struct lk_list *l)
{
    if (!l)
        return;
    free(l->rooms);
    free(l->participants);
    memset(l, 0, sizeof *l);
}
