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
debootstrap'd minbase (minutes, a network mirror, and debootstrap itself); and systemd-nspawn or a real
boot needs systemd as PID 1, which this machine does not have. The overlay view already holds the
installed dependencies (nats-server, the libraries, adduser) because `make test` installs them on the host.
Needs root (CAP_SYS_ADMIN) and overlayfs; available() says why not otherwise.

Manual use:  python3 test/package/throwaway_root.py build/chatto_*.deb   (a shell inside, package installed)
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile

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
# say ready only from inside the chroot: until then /proc/PID/root still points at the host's /
exec chroot "$r" sh -c 'echo ready && exec sleep infinity'
"""


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

    def copy_in(self, src, dst):
        shutil.copyfile(src, self.path(dst))

    def stop(self):
        """Kills the holder; the namespace, its mounts and the tmpfs go with it. Call after every process
        started inside has exited (they would keep the namespace alive)."""
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
    root = ThrowawayRoot().start()
    try:
        for deb in sys.argv[1:]:
            inside = "/tmp/" + os.path.basename(deb)
            root.copy_in(deb, inside)
            subprocess.run(root.argv(["dpkg", "-i", inside]), env=ENV)
        print("throwaway root: holder pid %d; exit the shell to throw it away" % root.pid)
        subprocess.run(root.argv(["bash", "-l"]), env=ENV)
    finally:
        root.stop()
