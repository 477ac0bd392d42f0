#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench`: the HTTP floor and the memory of an idle keep-alive connection.

1. GET /healthz requests/s of chatto against Debian's nginx answering the same path with the same small JSON body
   and the same headers, measured in the same run with the same wrk parameters. Each server is pinned to one CPU
   with taskset, wrk to another; the embedded nats-server child is moved to wrk's CPU after start (it is idle
   here, and chatto should not share its core with it).
2. Memory per idle keep-alive connection: N connections that each made one GET /healthz and stay open, idle;
   chatto's VmRSS and thread count before and after (one thread per connection), within the idle timeout.

Every process started here is stopped by PID in a finally block. Ports come from harness.free_port.
"""
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Not named http.py: bench/ is first on sys.path for every script here, and harness imports the standard library's
# http package.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import Chatto, FAST_AUTH, child_pids, free_port, http_request, pid_alive, wait_for  # noqa: E402

DURATION = os.environ.get("CHATTO_BENCH_DURATION", "10")
CONNS = [int(x) for x in os.environ.get("CHATTO_BENCH_HTTP_CONNS", "16,64").split(",")]
IDLE = int(os.environ.get("CHATTO_BENCH_HTTP_IDLE", "1000"))
IDLE_TIMEOUT_S = 60  # chatto's default webserver.connection_timeout

# The same headers chatto sends on /healthz (http/reply.c), so both servers write responses of about one size.
NGINX_CONF = """worker_processes 1;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server_tokens off;
    server {
        listen 127.0.0.1:%(port)d;
        location = /healthz {
            default_type "application/json; charset=utf-8";
            add_header X-Content-Type-Options nosniff;
            add_header Referrer-Policy no-referrer;
            add_header X-Frame-Options DENY;
            add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
            add_header Cache-Control no-store;
            add_header X-Chatto-Instance nginx/1;
            return 200 '{"status":"ok"}';
        }
    }
}
"""


class PinnedChatto(Chatto):
    """chatto started under `taskset -c CPU` (taskset execs it: the PID is chatto's)."""

    def __init__(self, cpu, **kw):
        super().__init__(**kw)
        self.cpu = cpu

    def command(self):
        return ["taskset", "-c", str(self.cpu)] + super().command()


class Nginx:
    """Debian's nginx, one worker, a throwaway config in a temp dir, not a daemon; stopped by PID."""

    def __init__(self, cpu):
        self.cpu = cpu
        self.dir = tempfile.mkdtemp(prefix="chatto-bench-nginx-")
        self.port = free_port()
        self.proc = None
        self.workers = []

    def start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"dir": self.dir, "port": self.port})
        self.log = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(["taskset", "-c", str(self.cpu), nginx_bin(), "-p", self.dir, "-c", conf,
                                      "-e", os.path.join(self.dir, "error.log")],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def ok():
            if self.proc.poll() is not None:
                raise SystemExit("nginx exited with %s:\n%s" % (self.proc.returncode, self.errors()))
            return http_request(self.port, "GET", "/healthz", timeout=2).status == 200
        wait_for(ok, 10, "nginx on port %d" % self.port)
        self.workers = child_pids(self.proc.pid)
        return self

    def pids(self):
        return [self.proc.pid] + self.workers

    def errors(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown; the master waits for its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.workers:  # only if the master died without taking its worker along
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def nginx_bin():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().split(")")[-1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrk_get(port, conns, cpu, server_pids, duration=DURATION):
    """taskset -c CPU wrk -t1 -cN -dD GET /healthz; adds the server's and wrk's CPU use in % of one core."""
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", "-c%d" % conns, "-d%ss" % duration, "-s",
           os.path.join(HERE, "get.lua"), "http://127.0.0.1:%d/healthz" % port]
    s0, w0, t0 = cpu_seconds(server_pids), children_cpu(), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    dt = time.monotonic() - t0
    m = re.search(r"RESULT rps=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+) max_ms=([\d.]+) requests=(\d+) errors=(\d+) "
                  r"status=(\d+)", out)
    if not m:
        raise SystemExit("wrk output not understood:\n" + out)
    return dict(rps=int(m[1]), p50=float(m[2]), p99=float(m[3]), max=float(m[4]), n=int(m[5]), errors=int(m[6]),
                status=int(m[7]), dt=dt, srv_s=cpu_seconds(server_pids) - s0, wrk_s=children_cpu() - w0)


def merge(a, b):
    """Two runs as one: summed requests and CPU; the higher of the two latency percentiles."""
    dt, n = a["dt"] + b["dt"], a["n"] + b["n"]
    srv_s, wrk_s = a["srv_s"] + b["srv_s"], a["wrk_s"] + b["wrk_s"]
    return dict(rps=round(n / dt), n=n, p50=max(a["p50"], b["p50"]), p99=max(a["p99"], b["p99"]),
                errors=a["errors"] + b["errors"], srv_cpu=100 * srv_s / dt, wrk_cpu=100 * wrk_s / dt,
                per_cpu_s=n / srv_s if srv_s else 0)


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    return dict(rss=int(re.search(r"VmRSS:\s+(\d+)", text)[1]), threads=int(re.search(r"Threads:\s+(\d+)", text)[1]))


def pick_cpus():
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("bench/http_bench.py needs two CPUs (one for the server, one for wrk); this process may use %s"
                         % cpus)
    return cpus[0], cpus[1]


def http_floor(client_cpu, server_cpu):
    """Rows for the chatto-vs-nginx table, plus a note about the NATS child's CPU."""
    c = PinnedChatto(server_cpu, args=FAST_AUTH)
    n = Nginx(server_cpu)
    rows = []
    try:
        c.start()
        child = wait_for(c.nats_child, 10, "the embedded nats-server child")
        # all of its threads (-a): Go starts several; threads made later inherit the new mask
        subprocess.run(["taskset", "-a", "-p", "-c", str(client_cpu), str(child)], check=True,
                       stdout=subprocess.DEVNULL)
        note = "embedded nats-server child (pid %d) moved to CPU %d with wrk; it is idle during /healthz" % (
            child, client_cpu)
        n.start()
        for srv, pids in ((c, [c.pid]), (n, n.pids())):  # warm up: threads, caches, TCP
            wrk_get(srv.port, max(CONNS), client_cpu, pids, duration=1)
        half = "%g" % (float(DURATION) / 2)
        for conns in CONNS:
            # chatto, nginx, nginx, chatto: each half of the time, so both see the same neighbours on average
            c1 = wrk_get(c.port, conns, client_cpu, [c.pid], half)
            n1 = wrk_get(n.port, conns, client_cpu, n.pids(), half)
            n2 = wrk_get(n.port, conns, client_cpu, n.pids(), half)
            c2 = wrk_get(c.port, conns, client_cpu, [c.pid], half)
            rows.append((conns, merge(c1, c2), merge(n1, n2)))
        if c.proc.poll() is not None:
            raise SystemExit("chatto exited during the run with %s:\n%s" % (c.proc.returncode, c.stderr()[-4000:]))
        return rows, note
    finally:
        n.cleanup()
        c.cleanup()


def read_response(s):
    """Status of one HTTP/1.1 response read whole from s (Content-Length framing)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response headers")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    need = int(m[1]) if m else 0
    while len(body) < need:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return int(head.split(None, 2)[1])


def idle_keepalive(n):
    """Open n keep-alive connections that each made one GET /healthz; measure RSS and threads while they idle."""
    c = Chatto(args=FAST_AUTH)
    socks = []
    try:
        c.start()
        for _ in range(20):  # warm: the first requests allocate what every request reuses
            http_request(c.port, "GET", "/healthz")
        base = proc_status(c.pid)["threads"]
        wait_for(lambda: proc_status(c.pid)["threads"] <= base, 10, "chatto's threads to settle")
        time.sleep(0.5)
        before = proc_status(c.pid)
        t0 = time.monotonic()
        statuses = {}
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
            socks.append(s)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            st = read_response(s)
            statuses[st] = statuses.get(st, 0) + 1
        opened = time.monotonic() - t0
        time.sleep(1.0)  # every connection thread is back in poll(), waiting for a next request
        during = proc_status(c.pid)
        held = time.monotonic() - t0
        if held >= IDLE_TIMEOUT_S:
            raise SystemExit("took %.0f s, past chatto's %d s idle timeout" % (held, IDLE_TIMEOUT_S))
        # still open? a socket the server closed polls readable (EOF); an idle open one does not
        p = select.poll()
        for s in socks:
            p.register(s, select.POLLIN)
        closed = len(p.poll(0))
        for s in socks:
            s.close()
        socks = []
        wait_for(lambda: proc_status(c.pid)["threads"] <= before["threads"], 20, "chatto's threads to exit")
        time.sleep(0.5)
        after = proc_status(c.pid)
        if c.proc.poll() is not None:
            raise SystemExit("chatto exited during the run with %s:\n%s" % (c.proc.returncode, c.stderr()[-4000:]))
        return dict(n=n, statuses=statuses, opened=opened, held=held, closed=closed, before=before, during=during,
                    after=after)
    finally:
        for s in socks:
            s.close()
        c.cleanup()


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # run the finally blocks: they stop what this script started


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < IDLE + 1000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by chatto, started after this
    client_cpu, server_cpu = pick_cpus()
    rows, note = http_floor(client_cpu, server_cpu)
    idle = idle_keepalive(IDLE)

    print("\nChatto %s HTTP floor: GET /healthz, keep-alive, `taskset -c %d wrk -t1 -cN -d%ss`; server under test on "
          "CPU %d (%d cores, shared with everything else on this machine; load average %.2f)"
          % (open(os.path.join(HERE, "..", "VERSION")).read().strip(), client_cpu, DURATION, server_cpu,
             os.cpu_count(), os.getloadavg()[0]))
    fmt = "%-15s %11s %11s %6s %8s %8s %8s %8s %6s %6s %10s %10s %6s %7s"
    print(fmt % ("", "chatto", "nginx", "ratio", "chatto", "chatto", "nginx", "nginx", "chatto", "nginx", "chatto",
                 "nginx", "ratio", "errors"))
    print(fmt % ("", "req/s", "req/s", "", "p50 ms", "p99 ms", "p50 ms", "p99 ms", "CPU%", "CPU%", "req/CPU-s",
                 "req/CPU-s", "", ""))
    for conns, rc, rn in rows:
        print(fmt % ("%d connections" % conns, rc["rps"], rn["rps"], "%.2f" % (rc["rps"] / max(rn["rps"], 1)),
                     "%.2f" % rc["p50"], "%.2f" % rc["p99"], "%.2f" % rn["p50"], "%.2f" % rn["p99"],
                     "%.0f" % rc["srv_cpu"], "%.0f" % rn["srv_cpu"], "%.0f" % rc["per_cpu_s"], "%.0f" % rn["per_cpu_s"],
                     "%.2f" % (rc["per_cpu_s"] / max(rn["per_cpu_s"], 1)), "%d/%d" % (rc["errors"], rn["errors"])))
    print("chatto / nginx goal: >= 0.90 at every connection count (req/s; req/CPU-s is the same ratio per second of "
          "the server's own CPU, steadier when neighbours take part of its core). Each figure is two %g s runs, "
          "in the order chatto, nginx, nginx, chatto; latencies are the higher of the two." % (float(DURATION) / 2))
    print(note)
    print("wrk's own CPU: %s (%% of CPU %d; near 100%% means the client, not the server, was the limit)"
          % (", ".join("%d conns %.0f%%/%.0f%%" % (conns, rc["wrk_cpu"], rn["wrk_cpu"]) for conns, rc, rn in rows),
             client_cpu))

    b, d, a = idle["before"], idle["during"], idle["after"]
    ok = idle["statuses"].get(200, 0)
    print("\nidle keep-alive HTTP connections: %d, each made one GET /healthz (%d answered 200%s), opened in %.1f s, "
          "measured %.1f s after the first (idle timeout %d s); %d closed by the server before the measurement"
          % (idle["n"], ok, "" if ok == idle["n"] else ", others: %r" % idle["statuses"], idle["opened"],
             idle["held"], IDLE_TIMEOUT_S, idle["closed"]))
    print("chatto VmRSS %d KiB -> %d KiB: %.1f KiB per connection (goal <= 32 KiB); threads %d -> %d "
          "(%.2f per connection); after closing them: %d KiB, %d threads"
          % (b["rss"], d["rss"], (d["rss"] - b["rss"]) / idle["n"], b["threads"], d["threads"],
             (d["threads"] - b["threads"]) / idle["n"], a["rss"], a["threads"]))


if __name__ == "__main__":
    main()
