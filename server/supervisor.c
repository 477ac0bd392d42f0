/* SPDX-License-Identifier: MIT */
/*
 * Supervisor of the embedded nats-server child. One thread ("nats-supervisor") owns the child for its whole
 * life: it forks it (PR_SET_PDEATHSIG is tied to the forking *thread*, so that thread must outlive the child),
 * reads its output into our log, reaps it, probes it and restarts it.
 *
 *   state      event                                   next       action
 *   STARTING   ports file seen and JetStream answered  READY      pin the learned ports for later restarts
 *   STARTING   child exited / start timeout            BACKOFF    kill it; at first start: fail sup_start()
 *   READY      child exited                            BACKOFF    log the exit status
 *   READY      N probes in a row failed                READY      SIGKILL the wedged child (exit follows)
 *   BACKOFF    backoff elapsed                         STARTING   spawn; backoff doubles 0.5 s .. 30 s
 *   any        sup_stop()                              STOPPED    SIGINT, SIGKILL after stop_timeout, reap
 *
 * The backoff resets once the child has stayed READY for a minute. Public functions take `mu`.
 */
#include "supervisor.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "log/log.h"
#include "natsconf.h"

enum sup_state { ST_STARTING, ST_READY, ST_BACKOFF, ST_STOPPED, ST_FAILED };

struct sup {
    struct sup_opts o; /* strings below are our copies */
    char *binary, *bind, *data_dir, *token;
    char conf_path[4096], ports_dir[4096];
    char connect_host[256];
    char url[300];
    int port, http_port; /* -1 = random until learned */

    pthread_t thread;
    int wake[2]; /* pipe: sup_stop() writes a byte */

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;
    enum sup_state state;
    pid_t pid;
    bool stop;
    bool started_once;
    char reason[200];
    struct ch_err start_err;

    /* monitor-thread only */
    int out_fd;
    char linebuf[4096];
    size_t linelen;
    char last_error[256];
};

enum ch_status
sup_resolve_binary(const char *name, char *out, size_t len, struct ch_err *err)
{
    const char *path = getenv("PATH");
    char dirs[8192];

    if (!*name)
        return ch_err_set(err, CH_EINVAL, "nats.embedded.binary", "nats.embedded.binary: empty");
    if (strchr(name, '/')) {
        if (access(name, X_OK) != 0)
            return ch_err_set(err, CH_EINVAL, "nats.embedded.binary", "nats.embedded.binary: %s: %s", name,
                              strerror(errno));
        snprintf(out, len, "%s", name);
        return CH_OK;
    }
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char cand[4096];
        struct stat sb;
        snprintf(cand, sizeof cand, "%s/%s", *d ? d : ".", name);
        if (stat(cand, &sb) == 0 && S_ISREG(sb.st_mode) && access(cand, X_OK) == 0) {
            snprintf(out, len, "%s", cand);
            return CH_OK;
        }
    }
    return ch_err_set(err, CH_EINVAL, "nats.embedded.binary",
                      "nats.embedded.binary: '%s' not found in PATH, /usr/sbin or /usr/local/sbin (install the "
                      "nats-server package, or set the full path)",
                      name);
}

static void
set_state(struct sup *s, enum sup_state st, const char *reason)
{
    pthread_mutex_lock(&s->mu);
    s->state = st;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static bool
stopping(struct sup *s)
{
    pthread_mutex_lock(&s->mu);
    bool v = s->stop;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* One line of the child's output: "[pid] date time [LVL] text". Logged with our level mapping. */
static void
child_line(struct sup *s, char *line)
{
    enum log_level lvl = LOGL_DEBUG;
    char *tag = strstr(line, "] ");
    char *msg = line;

    /* skip "[pid] date time " up to the level tag */
    if (tag && (tag = strstr(tag + 2, " [")) != NULL && strlen(tag) >= 7 && tag[5] == ']') {
        if (strncmp(tag + 2, "WRN", 3) == 0)
            lvl = LOGL_WARN;
        else if (strncmp(tag + 2, "ERR", 3) == 0 || strncmp(tag + 2, "FTL", 3) == 0)
            lvl = LOGL_ERROR;
        msg = tag + 7;
    }
    if (lvl == LOGL_ERROR)
        snprintf(s->last_error, sizeof s->last_error, "%s", msg);
    if (*msg)
        log_msg(lvl, "nats-server: %s", msg);
}

static void
drain_output(struct sup *s)
{
    for (;;) {
        ssize_t n;

        if (s->out_fd < 0)
            return;
        n = read(s->out_fd, s->linebuf + s->linelen, sizeof s->linebuf - 1 - s->linelen);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            close(s->out_fd);
            s->out_fd = -1;
            return;
        }
        s->linelen += (size_t)n;
        s->linebuf[s->linelen] = '\0';
        char *p = s->linebuf, *nl;
        while ((nl = strchr(p, '\n')) != NULL) {
            *nl = '\0';
            child_line(s, p);
            p = nl + 1;
        }
        s->linelen = strlen(p);
        memmove(s->linebuf, p, s->linelen + 1);
        if (s->linelen == sizeof s->linebuf - 1) { /* an absurdly long line: log what we have */
            child_line(s, s->linebuf);
            s->linelen = 0;
        }
    }
}

/* Wait up to ms for output or a wake-up, then drain output. */
static void
wait_io(struct sup *s, int64_t ms)
{
    struct pollfd p[2] = { { .fd = s->wake[0], .events = POLLIN }, { .fd = s->out_fd, .events = POLLIN } };

    if (ms < 0)
        ms = 0;
    if (poll(p, s->out_fd >= 0 ? 2 : 1, (int)ms) > 0 && (p[0].revents & POLLIN)) {
        char b[16];
        while (read(s->wake[0], b, sizeof b) > 0)
            ;
    }
    drain_output(s);
}

static enum ch_status
write_conf(struct sup *s, struct ch_err *err)
{
    struct natsconf nc = {
        .server_name = "chatto-embedded",
        .bind_address = s->bind,
        .port = s->port,
        .http_port = s->http_port,
        .store_dir = s->data_dir,
        .ports_dir = s->ports_dir,
        .token = s->token,
        .max_file_store = s->o.max_file_store,
    };
    char *text = natsconf_render(&nc), tmp[4200];
    int fd;
    size_t len;
    ssize_t w = -1;

    if (!text)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    len = strlen(text);
    snprintf(tmp, sizeof tmp, "%s.tmp", s->conf_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        w = write(fd, text, len);
        if (close(fd) != 0)
            w = -1;
    }
    explicit_bzero(text, len);
    free(text);
    if (fd < 0 || w != (ssize_t)len || rename(tmp, s->conf_path) != 0)
        return ch_err_set(err, CH_EINTERNAL, "nats.embedded.data_dir", "cannot write %s: %s", s->conf_path,
                          strerror(errno));
    return CH_OK;
}

extern char **environ;

static enum ch_status
spawn(struct sup *s, struct ch_err *err)
{
    int out[2], ep[2];
    pid_t parent = getpid(), pid;
    char *argv[] = { s->binary, "-c", s->conf_path, NULL };
    enum ch_status cs;
    int child_errno = 0;
    size_t n = 0, k = 0;

    if ((cs = write_conf(s, err)) != CH_OK)
        return cs;
    /* the child's environment is ours without CHATTO_* (our secrets are none of its business); built before
     * fork, as the child may only make async-signal-safe calls */
    while (environ[n])
        n++;
    char **envp = calloc(n + 1, sizeof *envp);
    if (!envp)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CHATTO_", 7) != 0)
            envp[k++] = environ[i];
    if (pipe2(out, O_CLOEXEC) != 0) {
        free(envp);
        return ch_err_set(err, CH_EINTERNAL, NULL, "pipe: %s", strerror(errno));
    }
    if (pipe2(ep, O_CLOEXEC) != 0) {
        free(envp);
        close(out[0]);
        close(out[1]);
        return ch_err_set(err, CH_EINTERNAL, NULL, "pipe: %s", strerror(errno));
    }
    pid = fork();
    if (pid == 0) {
        /* child: only async-signal-safe calls until execv */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* our threads block SIGTERM/SIGINT; the child must not */
        signal(SIGPIPE, SIG_DFL);               /* SIG_IGN would survive exec */
        setpgid(0, 0);                          /* a terminal's Ctrl-C is for us; we stop the child in order */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the parent died before prctl took effect */
            _exit(1);
        dup2(out[1], STDOUT_FILENO);
        dup2(out[1], STDERR_FILENO);
        /* no other descriptor of ours (client sockets, listeners) may leak into the child */
        syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
        execve(s->binary, argv, envp);
        int e = errno;
        if (write(ep[1], &e, sizeof e) < 0) {
        }
        _exit(127);
    }
    free(envp);
    close(out[1]);
    close(ep[1]);
    if (pid < 0) {
        close(out[0]);
        close(ep[0]);
        return ch_err_set(err, CH_EINTERNAL, NULL, "fork: %s", strerror(errno));
    }
    /* EOF means exec succeeded (CLOEXEC closed the pipe); 4 bytes mean it failed */
    if (read(ep[0], &child_errno, sizeof child_errno) == (ssize_t)sizeof child_errno) {
        close(ep[0]);
        close(out[0]);
        waitpid(pid, NULL, 0);
        return ch_err_set(err, CH_EINVAL, "nats.embedded.binary", "cannot execute %s: %s", s->binary,
                          strerror(child_errno));
    }
    close(ep[0]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    s->out_fd = out[0];
    s->last_error[0] = '\0';
    pthread_mutex_lock(&s->mu);
    s->pid = pid;
    pthread_mutex_unlock(&s->mu);
    log_info("nats-server: started pid %d (%s)", (int)pid, s->binary);
    return CH_OK;
}

/* Port from the child's ports file, once it has been written. */
static bool
read_ports(struct sup *s, pid_t pid, int *port, int *http_port)
{
    char path[4200], buf[4096];
    FILE *f;
    size_t n;
    cJSON *j, *a;
    bool ok = false;

    snprintf(path, sizeof path, "%s/nats-server_%d.ports", s->ports_dir, (int)pid);
    if (!(f = fopen(path, "r")))
        return false;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(j = cJSON_Parse(buf)))
        return false; /* written but not complete yet */
    a = cJSON_GetObjectItemCaseSensitive(j, "nats");
    if (cJSON_IsArray(a) && cJSON_IsString(cJSON_GetArrayItem(a, 0))) {
        const char *u = cJSON_GetArrayItem(a, 0)->valuestring, *c = strrchr(u, ':');
        *port = c ? atoi(c + 1) : 0;
        ok = *port > 0;
    }
    a = cJSON_GetObjectItemCaseSensitive(j, "monitoring");
    *http_port = 0;
    if (cJSON_IsArray(a) && cJSON_IsString(cJSON_GetArrayItem(a, 0))) {
        const char *u = cJSON_GetArrayItem(a, 0)->valuestring, *c = strrchr(u, ':');
        *http_port = c ? atoi(c + 1) : 0;
    }
    cJSON_Delete(j);
    return ok;
}

/* Reap the child if it exited; returns true (and describes how) if it did. */
static bool
reap(struct sup *s, char *how, size_t len)
{
    int status;
    pid_t pid = s->pid, r;

    if (pid <= 0)
        return true;
    r = waitpid(pid, &status, WNOHANG);
    if (r == 0)
        return false;
    if (r < 0)
        snprintf(how, len, "lost (%s)", strerror(errno));
    else if (WIFEXITED(status))
        snprintf(how, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(how, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(how, len, "stopped");
    drain_output(s);
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/nats-server_%d.ports", s->ports_dir, (int)pid);
    unlink(path); /* left behind after a kill -9 */
    pthread_mutex_lock(&s->mu);
    s->pid = 0;
    pthread_mutex_unlock(&s->mu);
    return true;
}

/* Stop the child: a graceful signal, wait, SIGKILL. nats-server treats SIGINT and SIGTERM alike (clean shutdown)
 * but exits 1 on SIGTERM and 0 on SIGINT, so SIGINT keeps our log honest. */
static void
kill_child(struct sup *s, int64_t timeout_ms)
{
    char how[80];
    int64_t deadline;

    if (s->pid <= 0)
        return;
    kill(s->pid, SIGINT);
    deadline = clock_mono_ms() + timeout_ms;
    while (!reap(s, how, sizeof how)) {
        if (clock_mono_ms() >= deadline) {
            log_warn("nats-server: pid %d did not stop within %lld ms; sending SIGKILL", (int)s->pid,
                     (long long)timeout_ms);
            kill(s->pid, SIGKILL);
            pid_t pid = s->pid;
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
            drain_output(s);
            if (s->out_fd >= 0) {
                close(s->out_fd);
                s->out_fd = -1;
            }
            pthread_mutex_lock(&s->mu);
            s->pid = 0;
            pthread_mutex_unlock(&s->mu);
            return;
        }
        wait_io(s, 50);
    }
    log_info("nats-server: stopped (%s)", how);
}

/* <data_dir>/run/client.url: where operator commands (chatto user ...) find the running child. */
static void
write_url_file(struct sup *s)
{
    char path[4200], tmp[4300];
    FILE *f;

    snprintf(path, sizeof path, "%s/client.url", s->ports_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((f = fopen(tmp, "w")) != NULL) {
        fprintf(f, "%s\n", s->url);
        if (fclose(f) == 0)
            rename(tmp, path);
    }
}

/* STARTING: spawn and wait for JetStream. CH_OK when READY. */
static enum ch_status
start_child(struct sup *s, struct ch_err *err)
{
    int64_t deadline = clock_mono_ms() + s->o.start_timeout_ms;
    int port = 0, http_port = 0;
    bool have_ports = false;
    enum ch_status cs;
    char how[80];

    set_state(s, ST_STARTING, "nats-server starting");
    if ((cs = spawn(s, err)) != CH_OK)
        return cs;
    while (!stopping(s)) {
        if (reap(s, how, sizeof how)) {
            return ch_err_set(err, CH_EUNAVAIL, NULL, "nats-server %s%s%s", how, s->last_error[0] ? ": " : "",
                              s->last_error);
        }
        if (!have_ports && read_ports(s, s->pid, &port, &http_port)) {
            have_ports = true;
            snprintf(s->url, sizeof s->url, strchr(s->connect_host, ':') ? "nats://[%s]:%d" : "nats://%s:%d",
                     s->connect_host, port);
        }
        if (have_ports) {
            struct ch_err perr = { 0 };
            if (s->o.probe(s->url, s->token, 1000, &perr) == CH_OK) {
                /* pin the ports: clients keep reconnecting to the same address across restarts */
                s->port = port;
                write_url_file(s);
                set_state(s, ST_READY, "ok");
                if (http_port > 0)
                    log_warn("nats-server: JetStream ready at %s (monitoring port %d: unauthenticated, it shows "
                             "connection details, the NATS token among them, to anyone who can reach it)",
                             s->url, http_port);
                else
                    log_info("nats-server: JetStream ready at %s", s->url);
                return CH_OK;
            }
        }
        if (clock_mono_ms() >= deadline) {
            kill_child(s, 1000);
            return ch_err_set(err, CH_EUNAVAIL, NULL, "nats-server: JetStream did not answer within %lld ms%s%s",
                              (long long)s->o.start_timeout_ms, s->last_error[0] ? "; last error: " : "",
                              s->last_error);
        }
        wait_io(s, 25);
    }
    return ch_err_set(err, CH_EUNAVAIL, NULL, "stopping");
}

static void *
sup_main(void *arg)
{
    struct sup *s = arg;
    int64_t backoff = 500, ready_since = 0, next_probe = 0;
    int failures = 0;
    struct ch_err err = { 0 };

    if (start_child(s, &err) != CH_OK) {
        pthread_mutex_lock(&s->mu);
        s->start_err = err;
        s->state = ST_FAILED;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        kill_child(s, s->o.stop_timeout_ms);
        return NULL;
    }
    ready_since = clock_mono_ms();
    next_probe = ready_since + s->o.probe_interval_ms;
    while (!stopping(s)) {
        char how[80];

        if (s->pid > 0 && reap(s, how, sizeof how)) {
            log_error("nats-server: %s%s%s; restarting in %lld ms", how, s->last_error[0] ? ": " : "",
                      s->last_error, (long long)backoff);
            set_state(s, ST_BACKOFF, "nats-server exited; restarting");
        }
        if (s->pid <= 0) {
            int64_t until = clock_mono_ms() + backoff;
            while (!stopping(s) && clock_mono_ms() < until)
                wait_io(s, until - clock_mono_ms());
            if (stopping(s))
                break;
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
            memset(&err, 0, sizeof err);
            if (start_child(s, &err) != CH_OK) {
                if (stopping(s))
                    break;
                log_error("nats-server: restart failed: %s; retrying in %lld ms", err.msg, (long long)backoff);
                kill_child(s, 1000);
                set_state(s, ST_BACKOFF, "nats-server restart failed");
                continue;
            }
            ready_since = clock_mono_ms();
            next_probe = ready_since + s->o.probe_interval_ms;
            failures = 0;
        }
        if (clock_mono_ms() - ready_since > 60000)
            backoff = 500;
        if (clock_mono_ms() >= next_probe) {
            struct ch_err perr = { 0 };
            if (s->o.probe(s->url, s->token, s->o.probe_timeout_ms, &perr) == CH_OK) {
                if (failures)
                    set_state(s, ST_READY, "ok");
                failures = 0;
            } else if (++failures >= s->o.probe_failures) {
                log_error("nats-server: JetStream did not answer %d probes in a row (%s); killing pid %d",
                          failures, perr.msg, (int)s->pid);
                set_state(s, ST_BACKOFF, "nats-server not answering; restarting");
                kill(s->pid, SIGKILL);
                failures = 0;
            } else {
                log_warn("nats-server: JetStream probe failed (%d of %d): %s", failures, s->o.probe_failures,
                         perr.msg);
                set_state(s, ST_READY, "JetStream probe failing");
            }
            next_probe = clock_mono_ms() + s->o.probe_interval_ms;
        }
        wait_io(s, 200);
    }
    kill_child(s, s->o.stop_timeout_ms);
    set_state(s, ST_STOPPED, "stopped");
    return NULL;
}

static char *
xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

enum ch_status
sup_start(const struct sup_opts *o, struct sup **out, struct ch_err *err)
{
    struct sup *s = calloc(1, sizeof *s);
    enum ch_status cs = CH_OK;

    if (!s)
        return ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
    s->o = *o;
    if (!s->o.probe_interval_ms)
        s->o.probe_interval_ms = 5000;
    if (!s->o.probe_timeout_ms)
        s->o.probe_timeout_ms = 3000;
    if (!s->o.probe_failures)
        s->o.probe_failures = 3;
    s->binary = xstrdup(o->binary);
    s->bind = xstrdup(o->bind_address);
    s->data_dir = xstrdup(o->data_dir);
    s->token = xstrdup(o->token);
    s->out_fd = -1;
    s->wake[0] = s->wake[1] = -1;
    s->port = o->port > 0 ? o->port : -1;
    s->http_port = o->http_port > 0 ? o->http_port : 0; /* 0: no monitoring listener */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* clients connect to loopback when the child listens on every interface */
    if (!strcmp(s->bind, "0.0.0.0") || !*s->bind)
        snprintf(s->connect_host, sizeof s->connect_host, "127.0.0.1");
    else if (!strcmp(s->bind, "::") || !strcmp(s->bind, "[::]"))
        snprintf(s->connect_host, sizeof s->connect_host, "::1");
    else
        snprintf(s->connect_host, sizeof s->connect_host, "%s", s->bind);
    snprintf(s->conf_path, sizeof s->conf_path, "%s/nats-server.conf", s->data_dir);
    snprintf(s->ports_dir, sizeof s->ports_dir, "%s/run", s->data_dir);
    if (!s->binary || !s->bind || !s->data_dir || !s->token) {
        cs = ch_err_set(err, CH_ENOMEM, NULL, "out of memory");
        goto fail;
    }
    if (mkdir(s->ports_dir, 0700) != 0 && errno != EEXIST) {
        cs = ch_err_set(err, CH_EINVAL, "nats.embedded.data_dir", "cannot create %s: %s", s->ports_dir,
                        strerror(errno));
        goto fail;
    }
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        cs = ch_err_set(err, CH_EINTERNAL, NULL, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, sup_main, s) != 0) {
        cs = ch_err_set(err, CH_EINTERNAL, NULL, "cannot start the supervisor thread");
        goto fail;
    }
    pthread_setname_np(s->thread, "nats-supervisor");
    pthread_mutex_lock(&s->mu);
    while (s->state == ST_STARTING)
        pthread_cond_wait(&s->cv, &s->mu);
    bool failed = s->state == ST_FAILED;
    if (failed && err)
        *err = s->start_err;
    pthread_mutex_unlock(&s->mu);
    if (failed) {
        pthread_join(s->thread, NULL);
        cs = s->start_err.status ? s->start_err.status : CH_EUNAVAIL;
        goto fail;
    }
    *out = s;
    return CH_OK;
fail:
    if (s->wake[0] >= 0) {
        close(s->wake[0]);
        close(s->wake[1]);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->binary);
    free(s->bind);
    free(s->data_dir);
    if (s->token)
        explicit_bzero(s->token, strlen(s->token));
    free(s->token);
    free(s);
    return cs;
}

enum ch_status
sup_running_url(const char *data_dir, char *url, size_t len, struct ch_err *err)
{
    char path[4200];
    FILE *f;

    snprintf(path, sizeof path, "%s/run/client.url", data_dir);
    if (!(f = fopen(path, "r")))
        return ch_err_set(err, CH_EUNAVAIL, NULL, "cannot read %s: %s", path, strerror(errno));
    if (!fgets(url, (int)len, f)) {
        fclose(f);
        return ch_err_set(err, CH_EUNAVAIL, NULL, "%s is empty", path);
    }
    fclose(f);
    url[strcspn(url, "\r\n")] = '\0';
    return CH_OK;
}

const char *
sup_client_url(const struct sup *s)
{
    return s->url;
}

bool
sup_ready(struct sup *s, char *reason, size_t len)
{
    bool ok;

    pthread_mutex_lock(&s->mu);
    ok = s->state == ST_READY && strcmp(s->reason, "ok") == 0;
    snprintf(reason, len, "%s", s->reason);
    pthread_mutex_unlock(&s->mu);
    return ok;
}

pid_t
sup_child_pid(struct sup *s)
{
    pthread_mutex_lock(&s->mu);
    pid_t p = s->pid;
    pthread_mutex_unlock(&s->mu);
    return p;
}

void
sup_stop(struct sup *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    if (write(s->wake[1], "x", 1) < 0) {
    }
    pthread_join(s->thread, NULL);
    close(s->wake[0]);
    close(s->wake[1]);
    if (s->out_fd >= 0)
        close(s->out_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    explicit_bzero(s->token, strlen(s->token));
    free(s->binary);
    free(s->bind);
    free(s->data_dir);
    free(s->token);
    free(s);
}
