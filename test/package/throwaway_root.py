# SPDX-License-Identifier: MIT
"""A throwaway copy of this machine's root file system, to install the .deb into and throw away.

How: a private mount namespace (unshare -m) holds an overlayfs whose lower layer is the host's / and whose
upper layer lives on a tmpfs, plus fresh /proc, /dev, /tmp and /run; a holder process sits chrooted in it.
Commands enter it with `nsenter -t HOLDER -m -r -w` (mount namespace, root, cwd). Every write (dpkg's
database, /etc/passwd, /etc/chatto, /var/lib/chatto) lands in the tmpfs and vanishes when the holder is
killed, because nothing else refers to the namespace. The host's files are never touched, and a crashed
test leaves no mount behind.

Why this and not the alternatives: it needs no download and takes a second. `dpkg --root` alone cannot run
the maintainer scripts (they need a shell, adduser and the libraries inside the root), so it would need a
debootstrap'd minbase (minutes, a network mirror, and debootstrap itself); systemd-nspawn is not
installed (systemd-container) and would want a full OS tree too. The overlay view already holds the
installed dependencies (nats-server, the libraries, adduser) because `make test` installs them on the host.
Needs root (CAP_SYS_ADMIN) and overlayfs; available() says why not otherwise.

boot() goes one step further: systemd as PID 1 of a new PID namespace, on the same overlay (after a
pivot_root, like systemd-nspawn does it, without needing systemd-nspawn or systemd on the host), with a
cgroup of its own. That runs chatto.service exactly as written, sandbox and all.

Manual use:  python3 test/package/throwaway_root.py [--boot] build/chatto_*.deb   (a shell inside)
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PR_SET_PDEATHSIG = 1

ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
    "TERM": os.environ.get("TERM", "dumb"),
}

# runs as the holder, inside its new mount namespace; $1 is an empty directory on the host
SETUP = r"""
set -eu
base=$1
mount -t tmpfs -o mode=0700 chatto-troot "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay chatto-troot -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
r=$base/root
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount -t sysfs -o ro sysfs "$r/sys"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
# an empty /run: no /run/systemd/system, so the maintainer scripts never talk to a systemd on the host
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mkdir -m 1777 "$r/run/lock"
# and should one be reachable anyway, invoke-rc.d and deb-systemd-invoke ask policy-rc.d first: 101 = no
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
chmod 0755 "$r/usr/sbin/policy-rc.d"
# man-db's dpkg trigger rebuilds the whole index after every install and removal (seconds each): off here
rm -f "$r/var/lib/man-db/auto-update"
# say ready only from inside the chroot: until then /proc/PID/root still points at the host's /
exec chroot "$r" sh -c 'echo ready && exec sleep infinity'
"""


# runs in a new PID, mount, UTS and IPC namespace entered from the holder's mount namespace (not its chroot):
# $1 is the overlay's mount point there, $2 the cgroup directory on the host to give systemd
BOOT = r"""
set -eu
r=$1 cg=$2
mount -t proc proc "$r/proc"
mkdir "$cg"
echo 0 >"$cg/cgroup.procs"
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
    mount --bind "$cg" "$r/sys/fs/cgroup"
else
    # hybrid: systemd's named v1 hierarchy, and the v2 one beside it when the host has it
    mount -t tmpfs -o mode=0755 cgroup "$r/sys/fs/cgroup"
    mkdir "$r/sys/fs/cgroup/systemd"
    mount --bind "$cg" "$r/sys/fs/cgroup/systemd"
    if [ -e /sys/fs/cgroup/unified/cgroup.procs ]; then
        u=/sys/fs/cgroup/unified/${cg##*/}
        mkdir "$u"
        echo 0 >"$u/cgroup.procs"
        mkdir "$r/sys/fs/cgroup/unified"
        mount --bind "$u" "$r/sys/fs/cgroup/unified"
    fi
fi
cd "$r"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
echo ready
exec chroot . env container=chatto-test /lib/systemd/systemd --system --unit=chatto-test.target \
    </dev/null >/dev/null 2>&1
"""


def _cgroup_base():
    """Where boot() makes systemd's cgroup, or None when the host has neither layout it knows."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "/sys/fs/cgroup"
    if os.path.exists("/sys/fs/cgroup/systemd/cgroup.procs"):
        return "/sys/fs/cgroup/systemd"
    return None


def _rm_cgroup(path):
    """Removes a cgroup tree bottom-up (each directory can go once its processes have exited)."""
    for d, subdirs, _ in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass


def _die_with_parent():
    # the holder (and so the namespace) must not outlive a test runner that is killed before stop()
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def available():
    """None when a throwaway root can be made here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces, overlayfs, chroot)"
    for tool in ("unshare", "nsenter", "chroot", "setpriv"):
        if not shutil.which(tool):
            return "%s is missing (util-linux)" % tool
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                subprocess.run(["modprobe", "overlay"], capture_output=True)
    except OSError:
        pass
    probe = ThrowawayRoot()
    try:
        probe.start()
    except RuntimeError as e:
        return str(e)
    finally:
        probe.stop()
    return None


class ThrowawayRoot:
    def __init__(self):
        self.base = None
        self.holder = None
        self.init = None  # boot(): the unshare process whose child is systemd
        self.cgroups = []

    def start(self):
        self.base = tempfile.mkdtemp(prefix="chatto-troot-")
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", SETUP, "sh",
                                        self.base], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       stdin=subprocess.DEVNULL, env=ENV, preexec_fn=_die_with_parent)
        line = self.holder.stdout.readline()
        if line.strip() != b"ready":
            err = self.holder.stderr.read() if self.holder.wait(10) is not None else b""
            self.holder = None
            raise RuntimeError("cannot set up the throwaway root (overlayfs over / in a mount namespace): %s" %
                               err.decode(errors="replace").strip())
        return self

    @property
    def pid(self):
        return self.holder.pid

    def path(self, p):
        """The host path of p inside the root (through /proc/PID/root, so no mount is needed on the host)."""
        return "/proc/%d/root%s" % (self.pid, p)

    def argv(self, cmd, user=None, sandbox=False, cwd=None):
        """cmd as argv that runs inside the root (in cwd, default /), optionally as user (and the user's
        groups); sandbox adds what the unit's NoNewPrivileges= and CapabilityBoundingSet= do."""
        pre = ["nsenter", "-t", str(self.pid), "-m", "-r", "-w", "--"]
        if user:
            # --pdeathsig: a server started here must not keep the namespace alive after a killed test run
            pre += ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--pdeathsig", "KILL"]
            if sandbox:
                pre += ["--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all"]
        if cwd:  # nsenter --wd= would look the directory up before entering the root
            pre += ["sh", "-c", 'cd "$0" && exec "$@"', cwd]
        return pre + list(cmd)

    def run(self, cmd, user=None, check=True, timeout=120, **kw):
        """Runs cmd inside the root; returns the CompletedProcess (text mode). check raises with its output."""
        p = subprocess.run(self.argv(cmd, user), capture_output=True, text=True, env=ENV, timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise AssertionError("%s exited %d\n--- stdout\n%s--- stderr\n%s" % (" ".join(cmd), p.returncode,
                                                                                 p.stdout, p.stderr))
        return p

    def boot(self):
        """Starts systemd (PID 1 of its own PID namespace) on this root; returns its PID on the host. It
        starts chatto-test.target, which this writes: journald only. Raises RuntimeError when it cannot."""
        base = _cgroup_base()
        if base is None:
            raise RuntimeError("no cgroup layout to give systemd (neither cgroup2 nor a name=systemd hierarchy)")
        with open(self.path("/etc/systemd/system/chatto-test.target"), "w") as f:
            f.write("[Unit]\nDescription=chatto package test\nWants=systemd-journald.service\n")
        cg = os.path.join(base, os.path.basename(self.base))
        self.cgroups = [cg, os.path.join("/sys/fs/cgroup/unified", os.path.basename(self.base))]
        self.init = subprocess.Popen(
            ["nsenter", "-t", str(self.pid), "-m", "--", "unshare", "--pid", "--fork", "--mount", "--propagation",
             "private", "--uts", "--ipc", "sh", "-c", BOOT, "sh", self.base + "/root", cg],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=ENV,
            preexec_fn=_die_with_parent)
        if self.init.stdout.readline().strip() != b"ready":
            err = self.init.stderr.read() if self.init.wait(10) is not None else b""
            raise RuntimeError("cannot boot systemd in the throwaway root: %s" % err.decode(errors="replace"))
        with open("/proc/%d/task/%d/children" % (self.init.pid, self.init.pid)) as f:
            self.systemd = int(f.read().split()[0])
        return self.systemd

    def boot_and_wait(self, timeout=20):
        """boot(), then poll until systemctl answers (systemd may still be starting units); RuntimeError if it
        never does within timeout seconds."""
        self.boot()
        deadline = time.monotonic() + timeout
        while True:
            p = self.sd(["systemctl", "is-system-running"], check=False, timeout=10)
            if p.stdout.strip() in ("initializing", "starting", "running", "degraded"):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("systemd in the throwaway root does not answer systemctl (%r)" % p.stdout.strip())
            time.sleep(0.2)

    def sd(self, cmd, check=True, timeout=120):
        """Runs cmd beside the booted systemd (its PID namespace: systemctl and journalctl work)."""
        argv = ["nsenter", "-t", str(self.systemd), "-m", "-p", "-r", "-w", "--"] + list(cmd)
        p = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("%s exited %d\n--- stdout\n%s--- stderr\n%s" % (" ".join(cmd), p.returncode,
                                                                                 p.stdout, p.stderr))
        return p

    def halt(self):
        """Kills systemd, and so everything in its PID namespace, and removes its cgroups."""
        if self.init is not None:
            try:
                os.kill(self.systemd, signal.SIGKILL)
            except (AttributeError, ProcessLookupError):
                pass
            if self.init.poll() is None:
                try:
                    self.init.wait(10)
                except subprocess.TimeoutExpired:
                    self.init.kill()
                    self.init.wait()
            self.init.stdout.close()
            self.init.stderr.close()
            self.init = None
        for cg in self.cgroups:
            if os.path.isdir(cg):
                for _ in range(100):  # the killed processes leave their cgroups a moment later
                    try:
                        _rm_cgroup(cg)
                        break
                    except OSError:
                        time.sleep(0.05)
        self.cgroups = []

    def copy_in(self, src, dst):
        shutil.copyfile(src, self.path(dst))

    def stop(self):
        """Kills the holder; the namespace, its mounts and the tmpfs go with it. Call after every process
        started inside has exited (they would keep the namespace alive)."""
        self.halt()
        if self.holder is not None:
            if self.holder.poll() is None:
                self.holder.send_signal(signal.SIGKILL)
            self.holder.wait()
            self.holder.stdout.close()
            self.holder.stderr.close()
            self.holder = None
        if self.base:
            os.rmdir(self.base)
            self.base = None


if __name__ == "__main__":
    why = available()
    if why:
        sys.exit("throwaway root: " + why)
    boot = "--boot" in sys.argv
    root = ThrowawayRoot().start()
    try:
        for deb in sys.argv[1:]:
            if deb == "--boot":
                continue
            inside = "/tmp/" + os.path.basename(deb)
            root.copy_in(deb, inside)
            subprocess.run(root.argv(["dpkg", "-i", inside]), env=ENV)
        if boot:
            print("throwaway root: systemd is pid %d; exit the shell to throw it all away" % root.boot())
            subprocess.run(["nsenter", "-t", str(root.systemd), "-m", "-p", "-r", "-w", "--", "bash", "-l"], env=ENV)
        else:
            print("throwaway root: holder pid %d; exit the shell to throw it away" % root.pid)
            subprocess.run(root.argv(["bash", "-l"]), env=ENV)
    finally:
        root.stop()
