#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench-cluster`: post and fan-out throughput with 1 and with 3 chatto processes behind nginx, on the same
3-node NATS cluster (nats.replicas = 3), in one run; prints the scaling ratio and CPU per process.

Load: wrk posts to one room with 32 connections through the balancer while 100 WebSocket clients (spread over the processes
by the balancer) receive a steady 50 msg/s stream in another room and measure delivery latency. Everything shares this machine's
cores, so on a small box the ratio is bounded by CPU, not by Chatto: the CPU columns show where it went.
"""
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from cluster import Cluster  # noqa: E402
from harness import BUILD, Client  # noqa: E402
from run import cpu_seconds, wrk  # noqa: E402

SECONDS = int(os.environ.get("CHATTO_BENCH_DURATION", "10"))
CONNS = int(os.environ.get("CHATTO_BENCH_CONNS", "32"))
FANOUT = os.path.join(BUILD, "bench", "fanout")


def cpu(pid):
    try:
        return cpu_seconds(pid)
    except FileNotFoundError:  # an nginx worker of the previous configuration has finished
        return None


def measure(cluster, token, room, body):
    pids = [c.pid for c in cluster.chattos] + [n.proc.pid for n in cluster.nodes] + [cluster.lb.proc.pid] + \
        sorted(cluster.lb.workers())
    cpu0 = {p: cpu(p) for p in pids}
    res = {}

    def fan():
        out = subprocess.run([FANOUT, "ws", "127.0.0.1", str(cluster.lb.port), "100", "50", str(SECONDS), token, room],
                             capture_output=True, text=True, check=True)
        res["fan"] = dict(re.findall(r"(\w+)=(\S+)", out.stdout[out.stdout.index("RESULT"):]))
        res["fan"]["closed"] = out.stderr.count(" closed")
    t = threading.Thread(target=fan)
    t0 = time.monotonic()
    t.start()
    time.sleep(1)  # the receivers connect first
    res["post"] = wrk(cluster.lb.port, "chatto.api.v1.MessageService/CreateMessage", body, token, conns=CONNS,
                      duration=SECONDS - 2)
    t.join()
    wall = time.monotonic() - t0
    res["cpu"] = {p: 100 * ((cpu(p) or cpu0[p] or 0) - (cpu0[p] or 0)) / wall for p in pids}
    return res


def main():
    c = Cluster(processes=3)
    c.start()
    try:
        user = Client(c.lb)
        token = user.register("bench", token=True).json()["token"]
        room = user.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "bench"})["room"]["id"]
        # the post load goes to its own room: the 100 receivers measure the steady stream, not their own reading
        load = user.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "load"})["room"]["id"]
        body = {"roomId": load, "body": "benchmark message " + "x" * 100}
        rows = []
        for n in (1, 3):
            c.lb.set_backends([x.port for x in c.chattos[:n]])
            r = measure(c, token, room, body)
            rows.append((n, r))
        print("\nChatto horizontal scaling: 3 NATS nodes (replicas=3), nginx round-robin, %d s per run, %d cores "
              "shared by everything" % (SECONDS, os.cpu_count()))
        print("%-12s %10s %9s %9s %8s | %12s %9s %9s | %s" % ("processes", "posts/s", "p50 ms", "p99 ms", "errors",
                                                             "fan-out got", "p50 ms", "p99 ms", "CPU %: chatto x3, nats x3, nginx"))
        for n, r in rows:
            p, f = r["post"], r["fan"]
            v = list(r["cpu"].values())
            cpu = "%s | %s | %.0f" % (" ".join("%3.0f" % x for x in v[:3]), " ".join("%3.0f" % x for x in v[3:6]),
                                     sum(v[6:]))
            print("%-12d %10d %9.2f %9.2f %8d | %12s %9s %9s | %s" % (n, p["rps"], p["p50"], p["p99"], p["errors"],
                                                                    "%s/%d%s" % (f["delivered"], int(f["sent"]) * 100, " (%d closed)" % f["closed"] if f["closed"] else ""),
                                                                    f["p50_ms"], f["p99_ms"], cpu))
        print("scaling ratio (3 processes / 1 process, posts/s): %.2f" % (rows[1][1]["post"]["rps"] /
                                                                        max(1, rows[0][1]["post"]["rps"])))
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
