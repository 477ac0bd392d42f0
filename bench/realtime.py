#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Realtime fan-out for `make bench`: one room, N = 100 and 1,000 WebSocket clients, messages posted at a steady
rate; delivered messages/s and post-to-frame latency, against raw core-NATS fan-out to as many subscribers on the
same nats-server in the same run; then memory per idle WebSocket at 5,000 connections."""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import BUILD, Chatto, Client, FAST_AUTH  # noqa: E402

RATE = int(os.environ.get("CHATTO_BENCH_RATE", "100"))
SECONDS = os.environ.get("CHATTO_BENCH_DURATION", "10")
IDLE = int(os.environ.get("CHATTO_BENCH_IDLE", "5000"))
FANOUT = os.path.join(BUILD, "bench", "fanout")


def run(mode, port, n, rate, token, room=""):
    out = subprocess.run([FANOUT, mode, "127.0.0.1", str(port), str(n), str(rate), SECONDS, token, room],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT .*", out)
    return dict(kv.split("=") for kv in m[0].split()[1:])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read())[1])


def main():
    c = Chatto(args=FAST_AUTH + ["--realtime-max-connections", "20000", "--webserver-max-connections", "25000"])
    c.start()
    try:
        token = Client(c).register("bench", token=True).json()["token"]
        nats_url = open(os.path.join(c.data_dir, "run", "client.url")).read().strip()
        nats_port = int(nats_url.rsplit(":", 1)[1])
        nats_token = re.search(r'auth_token = "([^"]+)"', open(os.path.join(c.data_dir, "secrets.ini")).read())[1]
        rows = []
        for n in (() if "--idle-only" in sys.argv else (100, 1000)):
            ws = run("ws", c.port, n, RATE, token, "general")
            raw = run("nats", nats_port, n, RATE, nats_token)
            rows.append(("chatto WebSocket, %d clients" % n, ws))
            rows.append(("raw core NATS, %d subscribers" % n, raw))
        if rows:
            print("\nChatto realtime fan-out: 1 room, %d msg/s for %s s (clients, chatto and nats-server share %d "
                  "cores)" % (RATE, SECONDS, os.cpu_count()))
            print("%-34s %9s %11s %12s %9s %9s %9s" % ("", "sent", "delivered", "delivered/s", "p50 ms", "p99 ms",
                                                       "max ms"))
        for name, r in rows:
            print("%-34s %9s %11s %12s %9s %9s %9s" % (name, r["sent"], r["delivered"], r["rate"], r["p50_ms"],
                                                       r["p99_ms"], r["max_ms"]))
        # memory per idle connection
        before = rss_kib(c.pid)
        p = subprocess.Popen([FANOUT, "idle", "127.0.0.1", str(c.port), str(IDLE), "0", "8", token],
                             stdout=subprocess.DEVNULL)
        time.sleep(6)  # connected and said hello; the client holds them for 8 s
        during = rss_kib(c.pid)
        p.wait()
        print("idle WebSockets: %d; chatto RSS %d KiB -> %d KiB: %.1f KiB per connection (target < 16 KiB)"
              % (IDLE, before, during, (during - before) / IDLE))
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
