#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Realtime fan-out for `make bench`: one room, N = 100 and 1,000 WebSocket clients, messages posted at a steady
rate, then bursts of 2 msg/s to 10,000 clients (CHATTO_BENCH_BURST); delivered messages/s and post-to-frame
latency, against raw core-NATS fan-out to as many subscribers on the same nats-server in the same run; then memory per idle WebSocket at 5,000 connections (a fresh chatto, measured
once every WebSocket has said hello and got its "ready", while they hold), opened two ways: at most 64 handshakes
in flight (the steady cost of a connection), and all at once (a reconnect storm: freed per-request memory of the
handshakes in flight stays in chatto's RSS, so this figure also shows that high-water mark)."""
import os
import re
import resource
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import BUILD, Chatto, Client, FAST_AUTH, wait_for  # noqa: E402
from scale import cpu_seconds  # noqa: E402

RATE = int(os.environ.get("CHATTO_BENCH_RATE", "100"))
SECONDS = os.environ.get("CHATTO_BENCH_DURATION", "10")
IDLE = int(os.environ.get("CHATTO_BENCH_IDLE", "5000"))
WINDOW = int(os.environ.get("CHATTO_BENCH_IDLE_WINDOW", "64"))
BURST = int(os.environ.get("CHATTO_BENCH_BURST", "10000"))
FANOUT = os.path.join(BUILD, "bench", "fanout")


def run(mode, port, n, rate, token, room="", pid=None):
    """fanout's result; with pid, also that process's CPU over the run (connecting included), in % of one core."""
    t0, cpu0 = time.time(), cpu_seconds(pid) if pid else 0
    out = subprocess.run([FANOUT, mode, "127.0.0.1", str(port), str(n), str(rate), SECONDS, token, room],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT .*", out)
    r = dict(kv.split("=") for kv in m[0].split()[1:])
    r["cpu"] = "%.0f%%" % (100 * (cpu_seconds(pid) - cpu0) / (time.time() - t0)) if pid else "-"
    return r


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    return dict(rss=int(re.search(r"VmRSS:\s+(\d+)", text)[1]), threads=int(re.search(r"Threads:\s+(\d+)", text)[1]))


def server():
    return Chatto(args=FAST_AUTH + ["--realtime-max-connections", "20000", "--webserver-max-connections", "25000"])


def idle_memory(n, window):
    """A fresh chatto (the fan-out runs leave freed memory behind that new connections would reuse); n WebSockets
    that said hello and hold; RSS and threads before, while they hold, and after they are gone."""
    c = server()
    p = None
    try:
        c.start()
        token = Client(c).register("idle", token=True).json()["token"]
        time.sleep(1)
        before = proc_status(c.pid)
        p = subprocess.Popen([FANOUT, "idle", "127.0.0.1", str(c.port), str(n), "0", "12", token, str(window)],
                             stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()  # "READY <n>" once all are ready (fanout gives up waiting after 60 s)
        if not line.startswith("READY"):
            raise SystemExit("fanout idle: %r" % line)
        time.sleep(1)
        during_busy = proc_status(c.pid)  # just after the hellos
        time.sleep(8)  # idle for a while (pings come and go)
        during = proc_status(c.pid)
        out = p.communicate(timeout=60)[0]
        result = dict(kv.split("=") for kv in re.search(r"RESULT .*", out)[0].split()[1:])
        p = None
        # the upgrades ran on HTTP worker threads, which linger 30 s when idle; do not wait for them
        time.sleep(1)
        after = proc_status(c.pid)
        if c.proc.poll() is not None:
            raise SystemExit("chatto exited during the run with %s:\n%s" % (c.proc.returncode, c.stderr()[-4000:]))
        return dict(n=n, window=window, ready=int(line.split()[1]), result=result, before=before, during=during,
                    during_busy=during_busy, after=after)
    finally:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
        c.cleanup()


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # run the finally blocks: they stop what this script started


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < max(IDLE, BURST) + 1000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by chatto and fanout
    c = server()
    c.start()
    try:
        token = Client(c).register("bench", token=True).json()["token"]
        nats_url = open(os.path.join(c.data_dir, "run", "client.url")).read().strip()
        nats_port = int(nats_url.rsplit(":", 1)[1])
        nats_token = re.search(r'auth_token = "([^"]+)"', open(os.path.join(c.data_dir, "secrets.ini")).read())[1]
        rows = []
        # and bursts: 2 msg/s to BURST clients each (10,000: a #general of a big team), where what a machine's
        # loopback TCP and scheduler can do shows; raw core NATS on the same machine is the yardstick
        for n, rate in (() if "--idle-only" in sys.argv else ((100, RATE), (1000, RATE), (BURST, 2))):
            ws = run("ws", c.port, n, rate, token, "general", pid=c.pid)
            raw = run("nats", nats_port, n, rate, nats_token)
            at = "" if rate == RATE else " at %d msg/s" % rate
            rows.append(("chatto WebSocket, %d clients%s" % (n, at), ws))
            rows.append(("raw core NATS, %d subscribers%s" % (n, at), raw))
        if rows:
            print("\nChatto realtime fan-out: 1 room, %d msg/s for %s s (clients, chatto, nats-server and everything "
                  "else on this machine share %d cores; load average %.2f)" % (RATE, SECONDS, os.cpu_count(),
                                                                               os.getloadavg()[0]))
            print("%-44s %9s %11s %12s %9s %9s %9s %10s" % ("", "sent", "delivered", "delivered/s", "p50 ms",
                                                            "p99 ms", "max ms", "chatto CPU"))
        for name, r in rows:
            print("%-44s %9s %11s %12s %9s %9s %9s %10s" % (name, r["sent"], r["delivered"], r["rate"], r["p50_ms"],
                                                            r["p99_ms"], r["max_ms"], r["cpu"]))
        for name, r in rows:  # WebSockets that never got "ready", were refused or were closed under us
            short = r["mode"] == "ws" and int(r["ready"]) < int(r["n"])
            if short or int(r["refused"]) or int(r["closed"]):
                print("%s: %s of %s ready, %s refused, %s closed by the server" % (name, r["ready"], r["n"],
                                                                                 r["refused"], r["closed"]))
    finally:
        c.cleanup()
    for window in (WINDOW, 0):
        m = idle_memory(IDLE, window)
        b, d, a, r, db = m["before"], m["during"], m["after"], m["result"], m["during_busy"]
        print("idle WebSockets: %d %s (%d ready, %s refused, %s closed by the server); chatto VmRSS %d KiB -> %d KiB: "
              "%.1f KiB per connection once idle (goal <= 8 KiB; %.1f KiB just after their hellos); threads %d -> %d; after they closed: %d KiB, %d threads"
              % (m["n"], "opened %d at a time" % window if window else "opened all at once", m["ready"], r["refused"],
                 r["closed"], b["rss"], d["rss"], (d["rss"] - b["rss"]) / m["n"], (db["rss"] - b["rss"]) / m["n"],
                 b["threads"], d["threads"], a["rss"], a["threads"]))


if __name__ == "__main__":
    main()
