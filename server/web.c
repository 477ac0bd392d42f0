/* SPDX-License-Identifier: MIT */
/* Static files of the web client; see web.h. */
#include "web.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/map.h"
#include "log/log.h"

#define MAX_FILE (8u << 20)

struct file {
    char *data;
    size_t len;
    char etag[24];
    const char *ctype;
};

struct web {
    char dir[PATH_MAX];
    struct map *files; /* "app.js" -> struct file */
    char csp[1024];
};

static const struct {
    const char *ext, *ctype;
} types[] = {
    { ".html", "text/html; charset=utf-8" },    { ".js", "text/javascript; charset=utf-8" },
    { ".mjs", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
    { ".svg", "image/svg+xml" },                { ".png", "image/png" },
    { ".ico", "image/x-icon" },                 { ".json", "application/json; charset=utf-8" },
    { ".webmanifest", "application/manifest+json" }, { ".txt", "text/plain; charset=utf-8" },
    { ".woff2", "font/woff2" },
};

static const char *
ctype_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].ctype;
    return NULL; /* unknown types are not served */
}

static void
file_free(void *p)
{
    struct file *f = p;

    if (f)
        free(f->data);
    free(f);
}

static enum ch_status
load_dir(struct web *w, const char *dir, const char *prefix, int depth, struct ch_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return ch_err_set(err, CH_ENOTFOUND, NULL, "%s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX * 2], rel[PATH_MAX];
        struct stat sb;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(rel, sizeof rel, "%s%s", prefix, e->d_name);
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode) && depth < 4) {
            char sub[PATH_MAX + 2];
            snprintf(sub, sizeof sub, "%s/", rel);
            load_dir(w, path, sub, depth + 1, err);
            continue;
        }
        if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > MAX_FILE || !ctype_of(e->d_name))
            continue;
        struct file *f = calloc(1, sizeof *f);
        FILE *fp = fopen(path, "rb");
        if (!f || !fp || !(f->data = malloc((size_t)sb.st_size + 1)) ||
            fread(f->data, 1, (size_t)sb.st_size, fp) != (size_t)sb.st_size) {
            if (fp)
                fclose(fp);
            file_free(f);
            continue;
        }
        fclose(fp);
        f->len = (size_t)sb.st_size;
        f->ctype = ctype_of(e->d_name);
        unsigned char h[8];
        char hex[17];
        crypto_generichash(h, sizeof h, (unsigned char *)f->data, f->len, NULL, 0);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        snprintf(f->etag, sizeof f->etag, "\"%s\"", hex);
        file_free(map_put(w->files, rel, f, NULL));
    }
    closedir(d);
    return CH_OK;
}

/* Replace {{asset:name}} in index.html with /static/name?v=<hash>. */
static void
hash_links(struct web *w)
{
    struct file *idx = map_get(w->files, "index.html");
    char *out = NULL, *p;
    size_t len = 0;
    FILE *f;

    if (!idx || !(f = open_memstream(&out, &len)))
        return;
    idx->data[idx->len] = '\0';
    for (p = idx->data; *p;) {
        char *start = strstr(p, "{{asset:"), *end;
        if (!start || !(end = strstr(start, "}}"))) {
            fputs(p, f);
            break;
        }
        fwrite(p, 1, (size_t)(start - p), f);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(end - start - 8), start + 8);
        struct file *a = map_get(w->files, name);
        fprintf(f, "/static/%s?v=%.16s", name, a ? a->etag + 1 : "missing");
        p = end + 2;
    }
    if (fclose(f) == 0) {
        free(idx->data);
        idx->data = out;
        idx->len = len;
        unsigned char h[8];
        char hex[17];
        crypto_generichash(h, sizeof h, (unsigned char *)out, len, NULL, 0);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        snprintf(idx->etag, sizeof idx->etag, "\"%s\"", hex);
    } else {
        free(out);
    }
}

static bool
is_dir(const char *p)
{
    struct stat sb;

    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

enum ch_status
web_load(const char *dir, const char *connect_src, struct web **out, struct ch_err *err)
{
    struct web *w = calloc(1, sizeof *w);
    enum ch_status st;

    if (!w || !(w->files = map_new())) {
        free(w);
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    }
    if (dir && *dir) {
        snprintf(w->dir, sizeof w->dir, "%s", dir);
    } else {
        char exe[PATH_MAX], cand[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *tries[] = { "/../share/chatto/web", "/../web", NULL };
        for (int i = 0; tries[i] && !w->dir[0]; i++) {
            snprintf(cand, sizeof cand, "%.3000s%s", exe, tries[i]);
            if (is_dir(cand))
                snprintf(w->dir, sizeof w->dir, "%.4000s", cand);
        }
        if (!w->dir[0])
            snprintf(w->dir, sizeof w->dir, "%s", is_dir("web") ? "web" : "/usr/share/chatto/web");
    }
    if ((st = load_dir(w, w->dir, "", 0, err)) != CH_OK || !map_get(w->files, "index.html")) {
        if (st == CH_OK)
            ch_err_set(err, CH_ENOTFOUND, NULL, "%s has no index.html", w->dir);
        web_free(w);
        return CH_ENOTFOUND;
    }
    hash_links(w);
    /* scripts and styles only from our files: message text can never become code */
    snprintf(w->csp, sizeof w->csp,
             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
             "connect-src 'self' %s; manifest-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
             "frame-ancestors 'none'",
             connect_src ? connect_src : "");
    *out = w;
    return CH_OK;
}

void
web_free(struct web *w)
{
    if (!w)
        return;
    map_free(w->files, file_free);
    free(w);
}

const char *
web_dir(const struct web *w)
{
    return w->dir;
}

void
web_serve(struct http_req *r, struct web *w)
{
    const char *path = http_req_path(r), *name;
    struct file *f;
    bool versioned = false;

    if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
        name = "index.html";
    } else if (!strncmp(path, "/static/", 8)) {
        name = path + 8;
        const char *v = http_req_query(r, "v");
        f = map_get(w->files, name);
        versioned = f && v && !strncmp(v, f->etag + 1, 16);
    } else if (!strcmp(path, "/favicon.ico") || !strcmp(path, "/manifest.webmanifest") || !strcmp(path, "/sw.js")) {
        /* (the service worker must come from the root for its scope to be the whole site) */
        name = path + 1;
    } else {
        http_reply_status(r, 404, "not_found", "no such page");
        return;
    }
    if (!(f = map_get(w->files, name))) {
        http_reply_status(r, 404, "not_found", "no such file");
        return;
    }
    const char *inm = http_req_header(r, "If-None-Match");
    if (inm && !strcmp(inm, f->etag))
        http_reply_bytes(r, 304, "", "", 0);
    else
        http_reply_bytes(r, 200, f->ctype, f->data, f->len);
    http_reply_header(r, "ETag", f->etag);
    http_reply_header(r, "Cache-Control", versioned ? "public, max-age=31536000, immutable" : "no-cache");
    if (!strcmp(f->ctype, "text/html; charset=utf-8"))
        http_reply_header(r, "Content-Security-Policy", w->csp);
}
