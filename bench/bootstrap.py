#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make bench-cluster` (first part): cluster bootstrap. Three chatto processes started at the same moment against a
fresh 3-node NATS cluster (nats.replicas = 3) race to make every stream and bucket; how long until each answers
/readyz 200. Repeated CHATTO_BENCH_BOOT_REPS times (10); goal: every process ready within 10 s (a Kubernetes
startupProbe of 15 x 2 s gives 30 s)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from cluster import Cluster  # noqa: E402
from harness import Chatto, http_request  # noqa: E402

REPS = int(os.environ.get("CHATTO_BENCH_BOOT_REPS", "10"))
LIMIT_S = 60


def one_race():
    cl = Cluster(processes=0)
    procs = []
    try:
        if not cl._start_nodes():
            raise SystemExit("the NATS cluster did not start")
        procs = [Chatto(args=cl.args, env=cl.env(), embedded=False) for _ in range(3)]
        t0 = time.time()
        for c in procs:
            c.start(wait_ready=False)
        ready = [None] * len(procs)
        while time.time() - t0 < LIMIT_S and None in ready:
            for i, c in enumerate(procs):
                if ready[i] is None:
                    try:
                        if http_request(c.port, "GET", "/readyz", timeout=1).status == 200:
                            ready[i] = time.time() - t0
                    except OSError:
                        pass
            time.sleep(0.05)
        return ready
    finally:
        for c in procs:
            try:
                c.stop()
            except AssertionError:
                pass
            c.cleanup()
        cl.cleanup()


def main():
    worst = []
    print("\nCluster bootstrap: 3 processes racing on a fresh 3-node cluster (nats.replicas = 3), %d runs" % REPS)
    for rep in range(REPS):
        ready = one_race()
        shown = ["%5.1f s" % r if r is not None else "  never" for r in ready]
        print("  run %2d: ready after %s" % (rep + 1, ", ".join(shown)), flush=True)
        worst.append(max(r if r is not None else float("inf") for r in ready))
    worst.sort()
    print("slowest process per run: median %.1f s, max %s (goal: every process ready within 10 s)"
          % (worst[len(worst) // 2], "%.1f s" % worst[-1] if worst[-1] != float("inf") else "never"))


if __name__ == "__main__":
    main()
