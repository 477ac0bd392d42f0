#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run the libFuzzer harnesses of test/fuzz/ (built by `make fuzz-build` into build/fuzz/fuzz/).

  fuzz.py run [--time S] [NAME...]   fuzz each harness for S seconds: new inputs go to build/fuzz/corpus/NAME,
                                     crashes to build/fuzz/crashes/; prints executions, coverage and findings
  fuzz.py merge [NAME...]            fold build/fuzz/corpus/NAME into test/fuzz/corpus/NAME, keeping only
                                     inputs that add coverage
  fuzz.py regress [NAME...]          run every committed input once (what `make test` does); exit 1 on a crash

Seeds: test/fuzz/corpus/NAME/ (committed). Dictionaries: test/fuzz/NAME.dict when present.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = os.path.join(ROOT, "test", "fuzz", "corpus")
# the server harnesses run a whole chatto: each input is a connection, so a slow one is not a hang
OPTS = ["-rss_limit_mb=4096", "-timeout=30", "-print_final_stats=1"]


def harnesses(build, names):
    found = sorted(os.path.basename(p) for p in glob.glob(os.path.join(build, "fuzz", "fuzz_*"))
                   if os.access(p, os.X_OK) and "." not in os.path.basename(p))
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            sys.exit("no such harness: %s (have %s)" % (", ".join(missing), ", ".join(found)))
        return names
    return found


def extra(name):
    d = os.path.join(ROOT, "test", "fuzz", name + ".dict")
    return ["-dict=" + d] if os.path.exists(d) else []


def env():
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return {k: v for k, v in e.items() if not k.startswith("CHATTO_")}


def stat(out, key):
    m = re.findall(r"^stat::%s:\s+(\d+)" % key, out, re.M)
    return int(m[-1]) if m else 0


def run(build, names, seconds):
    crashes = os.path.join(build, "crashes")
    os.makedirs(crashes, exist_ok=True)
    bad = 0
    for name in harnesses(build, names):
        work = os.path.join(build, "corpus", name)
        seeds = os.path.join(SEEDS, name)
        os.makedirs(work, exist_ok=True)
        log = os.path.join(build, name + ".log")
        cmd = [os.path.join(build, "fuzz", name), work] + ([seeds] if os.path.isdir(seeds) else []) + OPTS + \
            extra(name) + ["-max_total_time=%d" % seconds, "-artifact_prefix=%s/%s-" % (crashes, name)]
        t0 = time.monotonic()
        with open(log, "w") as f:
            p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env(), cwd=build)
        out = open(log, errors="replace").read()
        cov = re.findall(r"cov: (\d+) ft: (\d+)", out)
        found = p.returncode != 0
        bad += found
        print("%-14s %9d execs %7d exec/s  cov %5s  ft %6s  corpus %5d  %4.0fs  %s" % (
            name, stat(out, "number_of_executed_units"), stat(out, "average_exec_per_sec"),
            cov[-1][0] if cov else "?", cov[-1][1] if cov else "?", len(os.listdir(work)),
            time.monotonic() - t0, "FINDING: see " + log if found else "no findings"))
        sys.stdout.flush()
    return 1 if bad else 0


def merge(build, names):
    for name in harnesses(build, names):
        work = os.path.join(build, "corpus", name)
        seeds = os.path.join(SEEDS, name)
        os.makedirs(seeds, exist_ok=True)
        if not os.path.isdir(work):
            continue
        before = len(os.listdir(seeds))
        tmp = seeds + ".merging"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        p = subprocess.run([os.path.join(build, "fuzz", name), "-merge=1", tmp, seeds, work] + OPTS, env=env(),
                           cwd=build, capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stdout[-2000:] + p.stderr[-4000:])
            sys.exit("%s: merge failed" % name)
        shutil.rmtree(seeds)
        os.rename(tmp, seeds)
        print("%-14s %d -> %d inputs" % (name, before, len(os.listdir(seeds))))


def regress(build, names, quiet=False):
    """Every committed input, once. Returns [(name, inputs, ok, seconds, output)]."""
    results = []
    for name in harnesses(build, names):
        seeds = os.path.join(SEEDS, name)
        files = sorted(glob.glob(os.path.join(seeds, "*")))
        if not files:
            results.append((name, 0, True, 0.0, ""))
            continue
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(build, "fuzz", name), "-runs=0", seeds] + OPTS, env=env(), cwd=build,
                           capture_output=True, text=True, timeout=900)
        results.append((name, len(files), p.returncode == 0, time.monotonic() - t0, p.stdout + p.stderr))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["run", "merge", "regress"])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "fuzz"))
    ap.add_argument("--time", type=int, default=60)
    a = ap.parse_intermixed_args()
    build = os.path.abspath(a.build)
    if a.what == "run":
        sys.exit(run(build, a.names, a.time))
    if a.what == "merge":
        merge(build, a.names)
        return
    failed = 0
    for name, n, ok, secs, out in regress(build, a.names):
        print("fuzz %-28s %4d inputs  %.2fs  %s" % (name, n, secs, "ok" if ok else "FAILED"))
        if not ok:
            failed += 1
            print(out[-6000:])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
