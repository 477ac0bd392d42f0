#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench`: post latency and throughput at 1, 8 and 64 connections against raw JetStream synchronous publishing
at the same concurrency (1, 8, 64 threads) in the same run, with chatto's CPU per 1,000 posts; history page latency.
Also the same publish shaped as chatto stores a post and read back by an in-process consumer (jspub followed): the
ceiling chatto's storage layout and read-your-writes allow before chatto does any work of its own.

Starts one chatto with embedded NATS (the same nats-server process serves the raw baseline), drives it with wrk
and prints a table. Numbers depend on the machine: chatto, nats-server, wrk and this script share its cores.
"""
import json
import os
import re
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import BUILD, Chatto, Client, FAST_AUTH, wait_for  # noqa: E402

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


def nats_creds(c):
    url = open(os.path.join(c.data_dir, "run", "client.url")).read().strip()
    token = re.search(r'auth_token = "([^"]+)"', open(os.path.join(c.data_dir, "secrets.ini")).read())[1]
    return url, token


def raw_publish(c, count, threads, mode):
    url, token = nats_creds(c)
    out = subprocess.run([os.path.join(BUILD, "bench", "jspub"), url, token, str(count), str(threads), "200", mode],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def raw_publish_for(c, threads, seconds, pids, mode="plain"):
    """jspub with THREADS threads for about SECONDS (a short run sizes the real one); msg/s and CPU of pids."""
    rate = raw_publish(c, 250 * threads, threads, mode)
    count = max(threads, int(rate * float(seconds)) // threads * threads)
    cpu0 = [cpu_seconds(p) for p in pids]
    rate = raw_publish(c, count, threads, mode)
    return dict(rps=rate, n=count, cpu=[cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0)])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().split(")")[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_1k(seconds, n):
    return "%.3f" % (1000.0 * seconds / n) if n else "-"


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # run the finally blocks: they stop what this script started


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    # CHATTO_BENCH_ARGS: extra chatto flags, e.g. "--search-provider-enabled false" to see what a part costs
    c = Chatto(args=FAST_AUTH + os.environ.get("CHATTO_BENCH_ARGS", "").split())
    c.start()
    try:
        user = Client(c)
        token = user.register("bench", token=True).json()["token"]
        room = user.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "bench"})["room"]["id"]
        body = {"roomId": room, "body": "benchmark message " + "x" * 100}
        pids = [c.pid, wait_for(c.nats_child, 10, "the embedded nats-server child")]
        rows, ratios, shaped, errors = [], [], [], 0
        # raw and chatto back to back at each concurrency, so both see the same machine
        for conns, threads in ((1, 1), (8, 2), (64, 2)):
            raw = raw_publish_for(c, conns, DURATION, pids)
            # the same publish shaped as a post is stored (a subject per message, Nats-Msg-Id, expected last subject
            # sequence 0) and read back by an in-process ordered consumer before the next one (read-your-writes):
            # what chatto's storage layout allows before chatto does any work of its own
            fol = raw_publish_for(c, conns, DURATION, pids, "followed")
            cpu0 = [cpu_seconds(p) for p in pids]
            post = wrk(c.port, "chatto.api.v1.MessageService/CreateMessage", body, token, conns=conns,
                       threads=threads)
            cpu = [cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0)]
            errors += post["errors"]
            rows.append(("raw js_Publish sync, %d thread%s (200 B)" % (conns, "s" if conns > 1 else ""),
                         "%d msg/s" % raw["rps"], "", "", "", per_1k(raw["cpu"][1], raw["n"]), ""))
            rows.append(("  shaped as a post, read back (jspub followed)", "%d msg/s" % fol["rps"], "", "", "",
                         per_1k(fol["cpu"][1], fol["n"]), ""))
            rows.append(("CreateMessage, %d connection%s" % (conns, "s" if conns > 1 else ""),
                         "%d msg/s" % post["rps"], "%.2f" % post["p50"], "%.2f" % post["p99"],
                         per_1k(cpu[0], post["n"]), per_1k(cpu[1], post["n"]), str(post["errors"])))
            ratios.append((conns, post["rps"] / max(raw["rps"], 1)))
            shaped.append((conns, fol["rps"] / max(raw["rps"], 1), post["rps"] / max(fol["rps"], 1)))
        h1 = wrk(c.port, "chatto.api.v1.RoomService/GetRoomEvents", {"roomId": room, "limit": 50}, token, conns=1,
                 threads=1)
        rows.append(("GetRoomEvents, 50 per page, 1 connection", "%d pages/s" % h1["rps"], "%.2f" % h1["p50"],
                     "%.2f" % h1["p99"], "", "", str(h1["errors"])))
        h = wrk(c.port, "chatto.api.v1.RoomService/GetRoomEvents", {"roomId": room, "limit": 50}, token, conns=4)
        rows.append(("GetRoomEvents, 50 per page, 4 connections", "%d pages/s" % h["rps"], "%.2f" % h["p50"],
                     "%.2f" % h["p99"], "", "", str(h["errors"])))
        errors += h["errors"] + h1["errors"]
        if c.proc.poll() is not None:
            raise SystemExit("chatto exited during the run with %s:\n%s" % (c.proc.returncode, c.stderr()[-4000:]))
        print("\nChatto %s benchmark (%s s per run, %d cores shared by chatto, nats-server, wrk and everything else "
              "on this machine; load average %.2f)" % (open(os.path.join(HERE, "..", "VERSION")).read().strip(),
                                                       DURATION, os.cpu_count(), os.getloadavg()[0]))
        fmt = "%-44s %14s %9s %9s %13s %13s %7s"
        print(fmt % ("", "throughput", "p50 ms", "p99 ms", "chatto CPU s", "nats CPU s", "errors"))
        print(fmt % ("", "", "", "", "per 1k posts", "per 1k msgs", ""))
        for r in rows:
            print(fmt % r)
        print("CreateMessage / raw sync publish at the same concurrency: %s  (goal >= 0.70 at 8 and 64)"
              % ", ".join("%d: %.2f" % r for r in ratios))
        print("the storage layout's own ceiling (followed / raw): %s; CreateMessage / followed: %s"
              % (", ".join("%d: %.2f" % r[:2] for r in shaped), ", ".join("%d: %.2f" % (r[0], r[2]) for r in shaped)))
        print("history page p99: %.2f ms with 1 connection, %.2f ms with 4 (target < 5 ms)" % (h1["p99"], h["p99"]))
        print("HTTP errors (connect, read, write, timeout, non-2xx): %d" % errors)
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
