#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench`: post latency and throughput, history page latency, against raw JetStream in the same run.

Starts one chatto with embedded NATS (the same nats-server process serves the raw baseline), drives it with wrk
and prints a table. Numbers depend on the machine: chatto, nats-server, wrk and this script share its cores.
"""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import BUILD, Chatto, Client, FAST_AUTH  # noqa: E402

DURATION = os.environ.get("CHATTO_BENCH_DURATION", "10")


def wrk(port, method, body, token, conns, threads=2, duration=DURATION):
    env = dict(os.environ, CHATTO_BENCH_TOKEN=token, CHATTO_BENCH_BODY=json.dumps(body))
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ss" % duration, "-s",
                          os.path.join(HERE, "post.lua"), "http://127.0.0.1:%d/api/connect/%s" % (port, method)],
                         env=env, capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT rps=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+) max_ms=([\d.]+) requests=(\d+) errors=(\d+)",
                  out)
    if not m:
        raise SystemExit("wrk output not understood:\n" + out)
    return dict(rps=int(m[1]), p50=float(m[2]), p99=float(m[3]), max=float(m[4]), n=int(m[5]), errors=int(m[6]))


def raw_publish(c, count, threads):
    url = open(os.path.join(c.data_dir, "run", "client.url")).read().strip()
    token = re.search(r'auth_token = "([^"]+)"', open(os.path.join(c.data_dir, "secrets.ini")).read())[1]
    out = subprocess.run([os.path.join(BUILD, "bench", "jspub"), url, token, str(count), str(threads), "200"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().split(")")[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    c = Chatto(args=FAST_AUTH)
    c.start()
    try:
        user = Client(c)
        token = user.register("bench", token=True).json()["token"]
        room = user.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "bench"})["room"]["id"]
        body = {"roomId": room, "body": "benchmark message " + "x" * 100}
        rows = []
        raw1 = raw_publish(c, 5000, 1)
        raw8 = raw_publish(c, 20000, 8)
        rows.append(("raw js_Publish sync, 1 thread (200 B)", "%d msg/s" % raw1, "", ""))
        rows.append(("raw js_Publish sync, 8 threads (200 B)", "%d msg/s" % raw8, "", ""))
        cpu0 = cpu_seconds(c.pid)
        t0 = time.monotonic()
        p1 = wrk(c.port, "chatto.api.v1.MessageService/CreateMessage", body, token, conns=1, threads=1)
        p8 = wrk(c.port, "chatto.api.v1.MessageService/CreateMessage", body, token, conns=8)
        cpu = (cpu_seconds(c.pid) - cpu0) / (time.monotonic() - t0)
        rows.append(("CreateMessage, 1 connection", "%d msg/s" % p1["rps"], "%.2f" % p1["p50"], "%.2f" % p1["p99"]))
        rows.append(("CreateMessage, 8 connections", "%d msg/s" % p8["rps"], "%.2f" % p8["p50"], "%.2f" % p8["p99"]))
        h1 = wrk(c.port, "chatto.api.v1.RoomService/GetRoomEvents", {"roomId": room, "limit": 50}, token, conns=1,
                 threads=1)
        rows.append(("GetRoomEvents, 50 per page, 1 connection", "%d pages/s" % h1["rps"], "%.2f" % h1["p50"],
                     "%.2f" % h1["p99"]))
        h = wrk(c.port, "chatto.api.v1.RoomService/GetRoomEvents", {"roomId": room, "limit": 50}, token, conns=4)
        rows.append(("GetRoomEvents, 50 per page, 4 connections", "%d pages/s" % h["rps"], "%.2f" % h["p50"],
                     "%.2f" % h["p99"]))
        errors = p1["errors"] + p8["errors"] + h["errors"] + h1["errors"]
        print("\nChatto %s benchmark (%s s per run, %d cores shared by chatto, nats-server and wrk)"
              % (open(os.path.join(HERE, "..", "VERSION")).read().strip(), DURATION, os.cpu_count()))
        print("%-44s %14s %10s %10s" % ("", "throughput", "p50 ms", "p99 ms"))
        for r in rows:
            print("%-44s %14s %10s %10s" % r)
        print("post throughput / raw 1-thread sync publish: %.0f%%  (target >= 50%%)" % (100.0 * p8["rps"] / raw1))
        print("post throughput / raw 8-thread sync publish: %.0f%%" % (100.0 * p8["rps"] / raw8))
        print("history page p99: %.2f ms with 1 connection, %.2f ms with 4 (target < 5 ms)" % (h1["p99"], h["p99"]))
        print("chatto CPU while posting: %.0f%% of one core; HTTP errors: %d" % (100 * cpu, errors))
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
