#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-user memory of connected users, live state against churn: N distinct accounts (registered once into a
data directory kept under /tmp, so reruns skip the registrations), N idle WebSockets opened at once (a connect
storm: bench/fanout idle, one token per socket), then closed. At each point: chatto's VmRSS and glibc's own
figures (malloc_stats() called in the process with gdb: bytes the allocator holds from the system, bytes in use),
and the number of threads. RSS growth well above in-use growth is memory freed but kept: churn.

    python3 bench/heap.py [N]        (default 2000; CHATTO_BENCH_HOLD seconds connected, default 15;
                                      CHATTO_BENCH_ARENAS=1 prints each malloc arena; needs gdb)
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import BUILD, Chatto, FAST_AUTH  # noqa: E402
from scale import register_users, rss_kib  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
HOLD = int(os.environ.get("CHATTO_BENCH_HOLD", "15"))
BASE = "/tmp/chatto-bench-heap-%d" % N
ARGS = FAST_AUTH + ["--realtime-max-connections", "30000", "--webserver-max-connections", "40000"]


def malloc_figures(c):
    """(system KiB, in-use KiB) over every arena, from malloc_stats() run inside chatto (it prints to stderr)."""
    mark = "=== heap.py %f" % time.time()
    with open(c.stderr_path, "ab") as f:
        f.write(("\n" + mark + "\n").encode())
    subprocess.run(["gdb", "-p", str(c.pid), "-batch", "-ex", "call (void)malloc_stats()"], capture_output=True,
                   timeout=60)
    time.sleep(0.3)
    txt = c.stderr().split(mark, 1)[1]
    if os.environ.get("CHATTO_BENCH_ARENAS"):
        ar = re.findall(r"Arena (\d+):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)", txt)
        print("   arenas (system/in use KiB):", " ".join("%s:%d/%d" % (a, int(x) // 1024, int(y) // 1024)
                                                      for a, x, y in ar))
    tot = re.search(r"Total \(incl. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)", txt)
    return (int(tot[1]) // 1024, int(tot[2]) // 1024) if tot else (0, 0)


def sample(c, label, base=None):
    rss, (system, used) = rss_kib(c.pid), malloc_figures(c)
    threads = len(os.listdir("/proc/%d/task" % c.pid))
    line = "%-20s RSS %7d KiB  malloc: system %7d KiB, in use %7d KiB  threads %4d" % (label, rss, system, used,
                                                                                     threads)
    if base:
        line += "   per user: RSS %+.2f KiB, in use %+.2f KiB" % ((rss - base[0]) / N, (used - base[2]) / N)
    print(line, flush=True)
    return rss, system, used


def register_all():
    os.makedirs(BASE, exist_ok=True)
    c = Chatto(args=ARGS, data_dir=os.path.join(BASE, "data"))
    c.start()
    try:
        tokens = register_users(c.port, N)
    finally:
        c.cleanup()  # the data directory is outside c.dir: it stays
    with open(os.path.join(BASE, "tokens.txt"), "w") as f:
        f.write("\n".join(tokens) + "\n")


def main():
    if not os.path.exists(os.path.join(BASE, "tokens.txt")):
        register_all()
    c = Chatto(args=ARGS, data_dir=os.path.join(BASE, "data"))
    fan = None
    try:
        c.start(timeout=60)
        time.sleep(2)
        base = sample(c, "before")
        fan = subprocess.Popen([os.path.join(BUILD, "bench", "fanout"), "idle", "127.0.0.1", str(c.port), str(N), "0",
                                str(HOLD), "@" + os.path.join(BASE, "tokens.txt")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        line = fan.stdout.readline()
        time.sleep(1)
        sample(c, "connected +1 s", base)
        time.sleep(max(0, HOLD - 8))
        sample(c, "connected +%d s" % (HOLD - 6), base)
        out = fan.communicate(timeout=HOLD + 120)[0]
        fan = None
        time.sleep(3)
        sample(c, "after they closed", base)
        print("fanout: %s; %s" % (line.strip(), re.search(r"RESULT .*", out)[0]))
    finally:
        if fan is not None and fan.poll() is None:
            fan.kill()
            fan.wait()
        c.cleanup()


if __name__ == "__main__":
    main()
