#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Test runner for `make test`: C unit tests (cmocka binaries), then the Python integration suite.

The last line of output is always `N passed, N failed` (CI parses it); the exit status is 0 only when nothing
failed. Environment knobs: CHATTO_TEST_WRAPPER (e.g. valgrind), CHATTO_TEST_TIME_SCALE (slow machines).
"""
import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_unit(build, flt):
    passed = failed = 0
    for binary in sorted(glob.glob(os.path.join(build, "test", "test_*"))):
        name = os.path.basename(binary)
        if "." in name or not os.access(binary, os.X_OK):
            continue  # dependency files beside the binaries
        if flt and not any(f in name for f in flt.split(",")):
            continue
        t0 = time.monotonic()
        p = subprocess.run([binary], capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        ok = re.search(r"\[  PASSED  \] (\d+) test", out)
        bad = re.search(r"\[  FAILED  \] (\d+) test", out)
        np_ = int(ok.group(1)) if ok else 0
        nf = int(bad.group(1)) if bad else 0
        if p.returncode != 0 and nf == 0:
            nf = 1  # crashed or sanitizer abort
        passed += np_
        failed += nf
        status = "ok" if nf == 0 else "FAILED"
        print("unit %-28s %3d passed %3d failed  %.2fs  %s" % (name, np_, nf, time.monotonic() - t0, status))
        if nf:
            print(out)
    return passed, failed


def run_fuzz(fuzz_build, flt):
    """Every committed fuzz input once through its harness (libFuzzer + ASan/UBSan build): a crash a fuzzer once
    found, or one an input of the seed set now causes, fails here."""
    sys.path.insert(0, os.path.join(ROOT, "test", "fuzz"))
    import fuzz
    passed = failed = 0
    names = [n for n in fuzz.harnesses(fuzz_build, []) if not flt or any(f in n for f in flt.split(","))]
    for name, n, ok, secs, out in fuzz.regress(fuzz_build, names):
        passed += ok
        failed += not ok
        print("fuzz %-28s %4d inputs         %.2fs  %s" % (name, n, secs, "ok" if ok else "FAILED"))
        if not ok:
            print(out[-8000:])
    return passed, failed


def run_integration(build, flt, sanitizer):
    os.environ["CHATTO_TEST_BUILD"] = os.path.abspath(build)
    if sanitizer:
        os.environ["CHATTO_TEST_SANITIZER"] = "1"
    tdir = os.path.join(ROOT, "test", "integration")
    sys.path.insert(0, tdir)
    # files are numbered so foundations run first ("10_config_test.py"); such names are not importable by
    # unittest's discovery, so load them by path
    suite = unittest.TestSuite()
    for path in sorted(glob.glob(os.path.join(tdir, "[0-9]*_test.py"))):
        name = "t" + os.path.basename(path)[:-3]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        suite.addTests(unittest.defaultTestLoader.loadTestsFromModule(mod))

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    tests = [t for t in flatten(suite) if not flt or any(f in t.id() for f in flt.split(","))]
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(unittest.TestSuite(tests))
    nfail = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    npass = result.testsRun - nfail - len(result.skipped)
    return npass, nfail, len(result.skipped)


def our_processes(build):
    """PIDs of chatto processes of this build and of test nats-servers (temp dirs named chatto-*) that this runner
    started (its children: another test run on the same machine is none of our business)."""
    binary = os.path.join(os.path.abspath(build), "chatto")
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != os.getpid():
                    continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        cmd = [a.decode("utf-8", "replace") for a in argv if a]
        if not cmd:
            continue
        if cmd[0] == binary or (os.path.basename(cmd[0]) == "nats-server" and any("/chatto-" in a for a in cmd)):
            out.add(int(d))
    return out


def sweep(build, before):
    """Kill what the tests left running (a test that failed half-way must not leave servers behind for the next
    one, or for CI); say so, since it is a bug in a test."""
    import signal
    left = our_processes(build) - before
    for pid in sorted(left):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")[:160]
            os.kill(pid, signal.SIGKILL)
            print("warning: killed process %d left running by the tests: %s" % (pid, cmd))
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--filter", default="")
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("--integration-only", action="store_true")
    ap.add_argument("--sanitizer", action="store_true")
    ap.add_argument("--all-unit", action="store_true", help="run every unit test whatever --filter says")
    ap.add_argument("--fuzz", default="", help="fuzz build dir: run every committed fuzz input through its harness")
    a = ap.parse_args()
    before = our_processes(a.build)
    passed = failed = skipped = 0
    if not a.integration_only:
        p, f = run_unit(a.build, "" if a.all_unit else a.filter)
        passed += p
        failed += f
        if a.fuzz:
            p, f = run_fuzz(os.path.abspath(a.fuzz), "" if a.all_unit else a.filter)
            passed += p
            failed += f
    if not a.unit_only:
        p, f, s = run_integration(a.build, a.filter, a.sanitizer)
        passed += p
        failed += f
        skipped += s
    sweep(a.build, before)
    if skipped:
        print("%d skipped" % skipped)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
