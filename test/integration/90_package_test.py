# SPDX-License-Identifier: MIT
"""The Debian package: lintian, contents, man pages, the systemd unit, and install → run → reinstall → remove →
purge in a throwaway root (test/package/throwaway_root.py says how, and why not debootstrap), with the conffile
/etc/chatto/chatto.ini and the secrets postinst writes once into /etc/chatto/secrets.env, which chatto reads
itself (the template's core.secrets_file); then chatto.service under a real systemd booted in that root, sandbox
and all, with those secrets and without them in its environment.

The .deb is built once per run with `make deb` (about 10 s); the rest takes about 25 s. The package is
built from the sources, not from the binary under test, so sanitizer runs skip this file.
"""
import ctypes
import gzip
import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

from harness import BUILD, ROOT, SANITIZER, WRAPPER, child_pids, free_port, http_request, pid_alive, wait_for

sys.path.insert(0, os.path.join(ROOT, "test", "package"))
import throwaway_root  # noqa: E402

# what postinst writes into /etc/chatto/secrets.env: the secrets `chatto init` generates, as CHATTO_* lines
# (EnvironmentFile= syntax) that chatto reads itself through the template's core.secrets_file
SECRETS_ENV = "/etc/chatto/secrets.env"
SECRET_VARS = ("CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET", "CHATTO_WEBSERVER_COOKIE_ENCRYPTION_SECRET",
               "CHATTO_CORE_SECRET_KEY", "CHATTO_CORE_ASSETS_SIGNING_SECRET")
# the keys the template sets; every other one is commented out
TEMPLATE_KEYS = {"core.secrets_file": SECRETS_ENV, "nats.embedded.data_dir": "/var/lib/chatto"}
MAX_EXPOSURE = 3.0
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1

_deb = None


def skip_reason():
    if SANITIZER or WRAPPER:
        return "the package is built from source, not from the instrumented binary under test"
    for tool, pkg in (("dpkg-deb", "dpkg"), ("dpkg-shlibdeps", "dpkg-dev"), ("dpkg-parsechangelog", "dpkg-dev"),
                      ("lintian", "lintian"), ("systemd-analyze", "systemd"), ("groff", "groff"), ("man", "man-db")):
        if not shutil.which(tool):
            return "%s is missing (Debian package %s)" % (tool, pkg)
    return None


def deb():
    """Path of the .deb, built by `make deb` on first use."""
    global _deb
    if _deb is None:
        p = subprocess.run(["make", "-s", "-C", ROOT, "B=" + BUILD, "deb"], capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError("make deb failed:\n%s%s" % (p.stdout, p.stderr))
        version = subprocess.run(["dpkg-parsechangelog", "-l", os.path.join(ROOT, "packaging/debian/changelog"),
                                  "-S", "Version"], capture_output=True, text=True, check=True).stdout.strip()
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
        _deb = os.path.join(BUILD, "chatto_%s_%s.deb" % (version, arch))
    return _deb


def ini_values(text):
    """{"section.key": value} for every uncommented key of an INI text (values unquoted)."""
    out, section = {}, None
    for line in text.splitlines():
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            section = m[1]
            continue
        m = re.match(r'^([a-z_]+) = "?(.*?)"?$', line)
        if m:
            out[section + "." + m[1]] = m[2]
    return out


def env_file(text):
    """{NAME: value} of an EnvironmentFile= text; every line must be a comment or NAME=value."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not m:
            raise AssertionError("not NAME=value: %r" % line)
        out[m[1]] = m[2]
    return out


def env_lines(text):
    """{NAME: line number} of an EnvironmentFile= text's NAME=value lines."""
    return {m[1]: n for n, line in enumerate(text.splitlines(), 1) if (m := re.match(r"^([A-Z][A-Z0-9_]*)=", line))}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Package(unittest.TestCase):
    """The .deb itself: no root needed."""

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.deb = deb()
        cls.tmp = tempfile.mkdtemp(prefix="chatto-deb-")
        subprocess.run(["dpkg-deb", "-x", cls.deb, cls.tmp], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_lintian_reports_no_errors(self):
        p = subprocess.run(["lintian", "--pedantic", "-I", "-E", self.deb], capture_output=True, text=True,
                           timeout=300)
        tags = [l for l in p.stdout.splitlines() if re.match(r"^[EWIPX]: ", l)]
        print("\nlintian: %d tags\n%s" % (len(tags), "\n".join(tags)))
        self.assertEqual([t for t in tags if t.startswith("E: ")], [], p.stdout + p.stderr)
        self.assertNotIn("internal error", p.stderr)

    def test_control_fields(self):
        ctl = subprocess.run(["dpkg-deb", "-f", self.deb], capture_output=True, text=True, check=True).stdout
        depends = re.search(r"^Depends: (.*)$", ctl, re.M)[1].split(", ")
        names = [d.split()[0] for d in depends]
        # computed by dpkg-shlibdeps, plus libvips (loaded on the first resize, so invisible to it) and what the
        # program and maintainer scripts run
        for want in ("libc6", "libnats3.4", "libmicrohttpd12", "libsodium23", "libvips42", "nats-server", "adduser"):
            self.assertIn(want, names, ctl)
        self.assertRegex(ctl, r"(?m)^Version: \S+-\d+$")

    def test_contents(self):
        p = subprocess.run(["dpkg-deb", "-c", self.deb], capture_output=True, text=True, check=True).stdout
        entries = {}
        for line in p.splitlines():
            mode, owner, _size, _date, _time, name = line.split(None, 5)
            entries[name.split(" -> ")[0].lstrip(".")] = (mode, owner)
        want = {
            "/usr/bin/chatto": "-rwxr-xr-x",
            "/usr/share/chatto/web/index.html": "-rw-r--r--",
            "/etc/chatto/chatto.ini": "-rw-r--r--",
            "/lib/systemd/system/chatto.service": "-rw-r--r--",
            "/usr/share/man/man1/chatto.1.gz": "-rw-r--r--",
            "/usr/share/man/man5/chatto.ini.5.gz": "-rw-r--r--",
            "/usr/share/doc/chatto/copyright": "-rw-r--r--",
            "/usr/share/doc/chatto/changelog.Debian.gz": "-rw-r--r--",
            "/usr/share/doc/chatto/api.md.gz": "-rw-r--r--",
        }
        for path, mode in want.items():
            with self.subTest(path=path):
                self.assertIn(path, entries)
                self.assertEqual(entries[path], (mode, "root/root"))
        for path, (_mode, owner) in entries.items():
            self.assertEqual(owner, "root/root", path)
        # under /etc only the conffile; its secrets are made by postinst, into /etc/chatto/secrets.env
        self.assertEqual(sorted(p for p in entries if p.startswith("/etc/")),
                         ["/etc/", "/etc/chatto/", "/etc/chatto/chatto.ini"])
        info = lambda name: subprocess.run(["dpkg-deb", "-I", self.deb, name], capture_output=True, text=True,
                                           check=True).stdout
        self.assertEqual(info("conffiles"), "/etc/chatto/chatto.ini\n")
        # as dh_md5sums does it: conffiles have their sums in dpkg's database, not in md5sums
        sums = info("md5sums")
        self.assertIn("  usr/bin/chatto\n", sums)
        self.assertNotIn("etc/", sums)
        # every web client file is packaged
        web = sorted(os.listdir(os.path.join(ROOT, "web")))
        self.assertEqual(sorted(os.listdir(os.path.join(self.tmp, "usr/share/chatto/web"))), web)

    def test_conffile_is_the_generated_template_with_the_packaged_paths_and_no_secrets(self):
        with open(os.path.join(ROOT, "etc", "chatto.ini")) as f:
            repo = f.read()
        with open(os.path.join(self.tmp, "etc/chatto/chatto.ini")) as f:
            tpl = f.read()
        # every key commented out but data_dir and secrets_file: no secret, nothing that differs between hosts
        self.assertEqual(ini_values(tpl), TEMPLATE_KEYS)
        self.assertRegex(tpl, r'\n\[core\]\n(#.*\n|\n|\w+ = .*\n)*secrets_file = "%s"\n' % SECRETS_ENV)
        self.assertEqual(tpl.replace('\ndata_dir = "/var/lib/chatto"\n', '\n#data_dir = "./data"\n')
                         .replace('\nsecrets_file = "%s"\n' % SECRETS_ENV, '\n#secrets_file = ""\n'), repo,
                         "the template differs from etc/chatto.ini by more than data_dir and secrets_file "
                         "(run make docs?)")

    def test_man_pages_render_without_warnings(self):
        for page in ("usr/share/man/man1/chatto.1.gz", "usr/share/man/man5/chatto.ini.5.gz"):
            path = os.path.join(self.tmp, page)
            with self.subTest(page=page):
                with gzip.open(path) as f:
                    src = f.read()
                g = subprocess.run(["groff", "-ww", "-man", "-Tutf8", "-z"], input=src, capture_output=True)
                self.assertEqual((g.returncode, g.stderr.decode()), (0, ""))
                m = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path], capture_output=True,
                                   env=dict(os.environ, MANWIDTH="80", MAN_KEEP_STDERR="1"))
                self.assertEqual((m.returncode, m.stderr.decode()), (0, ""))
                self.assertIn("chatto", m.stdout.decode())

    def test_unit_exposure_is_at_most_3(self):
        unit = os.path.join(self.tmp, "lib/systemd/system/chatto.service")
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=%d" % (MAX_EXPOSURE * 10),
                            "--no-pager", unit], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for chatto.service: (\d+\.\d)", p.stdout)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        print("\nsystemd-analyze security: exposure %s" % m[1])
        self.assertLessEqual(float(m[1]), MAX_EXPOSURE, p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_unit_settings(self):
        with open(os.path.join(self.tmp, "lib/systemd/system/chatto.service")) as f:
            unit = f.read()
        settings = dict(re.findall(r"(?m)^(\w+)=(.*)$", unit))
        self.assertEqual(settings["Type"], "notify")
        self.assertEqual(settings["ExecStart"], "/usr/bin/chatto run --config /etc/chatto/chatto.ini")
        # chatto reads secrets.env itself (core.secrets_file): the secrets stay out of its environment
        self.assertNotIn("EnvironmentFile", settings)
        self.assertNotIn("CHATTO_", unit.replace("CHATTO_*", ""))
        self.assertEqual(settings["User"], "chatto")
        self.assertEqual(settings["StateDirectory"], "chatto")
        self.assertEqual(settings["KillMode"], "mixed")
        # longer than webserver.shutdown_timeout + nats.embedded.stop_timeout at their defaults
        defaults = {}
        with open(os.path.join(ROOT, "lib", "config", "keys.def")) as f:
            for m in re.finditer(r'KEY\(\w+,\s*"([^"]+)",\s*"([^"]+)",\s*CFG_T_DURATION,\s*"(\d+)s"', f.read()):
                defaults[m[1] + "." + m[2]] = int(m[3])
        drain = defaults["webserver.shutdown_timeout"] + defaults["nats.embedded.stop_timeout"]
        self.assertGreater(int(settings["TimeoutStopSec"]), drain)


class Install(unittest.TestCase):
    """dpkg -i, run, reinstall, remove and purge in a throwaway root. The methods run in name order and each
    continues from the state the previous one left."""

    @classmethod
    def setUpClass(cls):
        why = skip_reason() or throwaway_root.available()
        if why:
            raise unittest.SkipTest(why)
        cls.deb = deb()
        cls.proc = None
        cls.root = throwaway_root.ThrowawayRoot().start()
        try:
            # the host's own chatto, if any, would show through the overlay: start from none
            if cls.root.run(["dpkg-query", "-W", "chatto"], check=False).returncode == 0:
                cls.root.run(["dpkg", "--purge", "chatto"])
            cls.root.copy_in(cls.deb, "/tmp/chatto.deb")
            cls.install_log = cls.dpkg("-i", "/tmp/chatto.deb")
        except BaseException:
            cls.root.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.proc is not None and cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait()
        cls.root.stop()

    @classmethod
    def dpkg(cls, *args):
        p = cls.root.run(["dpkg"] + list(args))
        return p.stdout + p.stderr

    def path(self, p):
        return self.root.path(p)

    def ids(self):
        """(uid, gid, home, shell) of the chatto user inside the root."""
        with open(self.path("/etc/passwd")) as f:
            for line in f:
                f_ = line.split(":")
                if f_[0] == "chatto":
                    return int(f_[2]), int(f_[3]), f_[5], f_[6].strip()
        raise AssertionError("no chatto user in the root's /etc/passwd")

    def assertMode(self, path, mode, uid, gid):
        st = os.lstat(self.path(path))
        self.assertEqual((oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid), (oct(mode), uid, gid), path)

    def status(self):
        p = self.root.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", "chatto"], check=False)
        return p.stdout if p.returncode == 0 else "not-installed"

    def read(self, path):
        with open(self.path(path)) as f:
            return f.read()

    def statoverrides(self):
        return self.root.run(["dpkg-statoverride", "--list", "/etc/chatto/*"], check=False).stdout

    def assertEtcKept(self, conf, secrets):
        """/etc/chatto holds just the conffile and secrets.env, with these contents, both root:chatto 0640."""
        gid = self.ids()[1]
        self.assertEqual(sorted(os.listdir(self.path("/etc/chatto"))), ["chatto.ini", "secrets.env"])
        self.assertEqual(self.read("/etc/chatto/chatto.ini"), conf)
        self.assertEqual(self.read(SECRETS_ENV), secrets)
        self.assertMode("/etc/chatto/chatto.ini", 0o640, 0, gid)
        self.assertMode(SECRETS_ENV, 0o640, 0, gid)

    def test_10_files_owners_modes(self):
        self.assertNotRegex(self.install_log.lower(), r"warn|error", self.install_log)
        uid, gid, home, shell = self.ids()
        self.assertLess(uid, 1000, "not a system user")
        self.assertEqual((home, shell), ("/var/lib/chatto", "/usr/sbin/nologin"))
        with open(self.path("/etc/group")) as f:
            self.assertIn("chatto:x:%d:" % gid, f.read())
        self.assertEqual(self.status(), "installed")
        self.assertMode("/usr/bin/chatto", 0o755, 0, 0)
        self.assertMode("/usr/share/chatto/web/index.html", 0o644, 0, 0)
        self.assertMode("/lib/systemd/system/chatto.service", 0o644, 0, 0)
        self.assertMode("/usr/share/man/man1/chatto.1.gz", 0o644, 0, 0)
        self.assertMode("/usr/share/man/man5/chatto.ini.5.gz", 0o644, 0, 0)
        self.assertMode("/usr/share/doc/chatto/copyright", 0o644, 0, 0)
        self.assertMode("/etc/chatto", 0o755, 0, 0)
        # the conffile ships root:root 0644; postinst's statoverride makes it root:chatto 0640 (README.Debian)
        self.assertMode("/etc/chatto/chatto.ini", 0o640, 0, gid)
        self.assertEqual(self.statoverrides(), "root chatto 640 /etc/chatto/chatto.ini\n")
        self.assertMode(SECRETS_ENV, 0o640, 0, gid)
        self.assertMode("/var/lib/chatto", 0o750, uid, gid)
        self.assertEqual(sorted(os.listdir(self.path("/etc/chatto"))), ["chatto.ini", "secrets.env"],
                         "postinst left files behind")
        # dpkg knows the conffile, unmodified
        conffiles = self.root.run(["dpkg-query", "-W", "-f", "${Conffiles}", "chatto"]).stdout
        with open(self.path("/etc/chatto/chatto.ini"), "rb") as f:
            md5 = hashlib.md5(f.read()).hexdigest()
        self.assertEqual(conffiles, " /etc/chatto/chatto.ini %s" % md5)
        # enabled the way dh_installsystemd does it; not started (no systemd in the root)
        self.assertEqual(os.readlink(self.path("/etc/systemd/system/multi-user.target.wants/chatto.service")),
                         "/lib/systemd/system/chatto.service")
        self.assertEqual(self.root.run(["chatto", "version"]).stdout.split()[0], "chatto")

    def test_20_config_has_no_secrets_and_secrets_env_has_fresh_ones(self):
        conf = self.read("/etc/chatto/chatto.ini")
        self.assertEqual(ini_values(conf), TEMPLATE_KEYS)
        env = env_file(self.read(SECRETS_ENV))
        self.assertEqual(sorted(env), sorted(SECRET_VARS))
        self.assertEqual(len(set(env.values())), len(env), "secrets repeat")
        for v in env.values():
            self.assertRegex(v, r"^[A-Za-z0-9_-]{43}$")  # chatto init's: 32 random bytes, base64url
        # the values need no quoting: sh reads the file as systemd and chatto do
        p = self.root.run(["sh", "-c", "set -a; . %s; env" % SECRETS_ENV])
        self.assertEqual({k: v for k, v in env_file(p.stdout).items() if k.startswith("CHATTO_")}, env)

    def test_30_config_check_and_print_as_chatto(self):
        p = self.root.run(["chatto", "config", "check", "-c", "/etc/chatto/chatto.ini"], user="chatto", check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK (embedded NATS", p.stdout)
        # the plain command, as README.Debian gives it: chatto reads secrets.env through core.secrets_file and
        # sees every secret, set from that file's line, masked
        p = self.root.run(["chatto", "config", "print", "-c", "/etc/chatto/chatto.ini"], user="chatto")
        text = self.read(SECRETS_ENV)
        env, lines = env_file(text), env_lines(text)
        self.assertIn('secrets_file = "%s"  # file: /etc/chatto/chatto.ini:' % SECRETS_ENV, p.stdout)
        for var in SECRET_VARS:
            self.assertRegex(p.stdout, r'(?m)^\w+ = "\*{8}"  # env: %s:%d$' % (re.escape(SECRETS_ENV), lines[var]))
        self.assertEqual(len(re.findall(r"# env: ", p.stdout)), len(SECRET_VARS), p.stdout)
        for v in env.values():
            self.assertNotIn(v, p.stdout)
        # and the values are secrets.env's
        p = self.root.run(["chatto", "config", "print", "--show-secrets", "-c", "/etc/chatto/chatto.ini"],
                          user="chatto")
        for v in env.values():
            self.assertIn(' = "%s"  # env: %s:' % (v, SECRETS_ENV), p.stdout)
        # other users can read neither file
        for path in ("/etc/chatto/chatto.ini", SECRETS_ENV):
            p = self.root.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "cat", path],
                              check=False)
            self.assertIn("Permission denied", p.stderr)

    def test_40_unit_verifies_in_the_installed_tree(self):
        # ExecStart's binary, the man pages of Documentation= and the User= now exist
        p = self.root.run(["systemd-analyze", "verify", "/lib/systemd/system/chatto.service"], check=False)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_50_runs_as_chatto_answers_readyz_and_stops_cleanly(self):
        uid, gid, _, _ = self.ids()
        port = free_port()
        # systemd's notify socket, inside the root (the service reaches it at /run/chatto-notify)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(self.path("/run/chatto-notify"))
        os.chmod(self.path("/run/chatto-notify"), 0o666)
        notify.settimeout(0.05)
        messages = []

        def got(msg):
            try:
                while True:
                    messages.append(notify.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                pass
            return any(msg in m.split("\n") for m in messages)

        libc = ctypes.CDLL(None, use_errno=True)
        mdwe = []

        def preexec():
            # what the unit's MemoryDenyWriteExecute= enforces, from the kernel (Linux 6.3+): inherited by
            # chatto and its nats-server child across fork and exec
            mdwe.append(libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0)
            os.umask(0o027)  # UMask=

        env = dict(throwaway_root.ENV, NOTIFY_SOCKET="/run/chatto-notify", CHATTO_WEBSERVER_PORT=str(port),
                   CHATTO_WEBSERVER_BIND_ADDRESS="127.0.0.1", CHATTO_AUTH_PASSWORD_HASH="owasp")
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        argv = self.root.argv(["chatto", "run", "--config", "/etc/chatto/chatto.ini"], user="chatto", sandbox=True,
                              cwd="/var/lib/chatto")  # WorkingDirectory=
        cls = type(self)
        cls.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec)

        def output():
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            wait_for(lambda: cls.proc.poll() is not None or http_request(port, "GET", "/readyz", timeout=2).status == 200,
                     30, "the packaged chatto to answer /readyz")
            self.assertIsNone(cls.proc.poll(), "chatto exited")
            wait_for(lambda: got("READY=1"), 5, "READY=1 on the notify socket")

            # the service and its child run as chatto, with the data in /var/lib/chatto
            child = [c for c in child_pids(cls.proc.pid) if "nats-server" in open("/proc/%d/comm" % c).read()]
            self.assertEqual(len(child), 1, output())
            for pid in (cls.proc.pid, child[0]):
                with open("/proc/%d/status" % pid) as f:
                    st = f.read()
                self.assertRegex(st, r"\nUid:\t%d\t%d\t%d\t%d\n" % (uid, uid, uid, uid))
                self.assertRegex(st, r"\nNoNewPrivs:\t1\n")
                self.assertRegex(st, r"\nCapBnd:\t0+\n")
            self.assertEqual(os.readlink("/proc/%d/exe" % child[0]).rsplit("/", 1)[1], "nats-server")
            made = os.listdir(self.path("/var/lib/chatto"))
            self.assertIn("nats-server.conf", made)
            for name in made:
                st = os.lstat(self.path("/var/lib/chatto/" + name))
                self.assertEqual((st.st_uid, st.st_mode & 0o007), (uid, 0), name)

            # the secrets came from secrets.env, read by chatto (core.secrets_file), not from its environment:
            # chatto generated only the nats-server child's token, and neither process has a secret in environ
            self.assertEqual(list(ini_values(self.read("/var/lib/chatto/secrets.ini"))), ["nats.embedded.auth_token"])
            secrets = env_file(self.read(SECRETS_ENV))
            for pid in (cls.proc.pid, child[0]):
                with open("/proc/%d/environ" % pid, "rb") as f:
                    environ = f.read().decode(errors="replace")
                for var, v in secrets.items():
                    self.assertNotIn(var, environ)
                    self.assertNotIn(v, environ)

            # README.Debian's operator commands, plain, while the service runs
            p = self.root.run(["chatto", "user", "create", "boss", "--role", "owner", "--config",
                               "/etc/chatto/chatto.ini"], user="chatto", input="a long passphrase\n")
            self.assertIn("created boss", p.stdout)
            p = self.root.run(["chatto", "user", "list", "--config", "/etc/chatto/chatto.ini"], user="chatto")
            self.assertIn("boss", p.stdout)

            # the web client comes from /usr/share/chatto/web, found relative to /usr/bin/chatto
            r = http_request(port, "GET", "/", timeout=5)
            self.assertEqual(r.status, 200)
            with open(os.path.join(ROOT, "web", "index.html"), "rb") as f:
                self.assertIn(f.read()[:200], r.body)

            # systemctl reload
            messages.clear()
            os.kill(cls.proc.pid, signal.SIGHUP)
            wait_for(lambda: got("RELOADING=1") and got("READY=1"), 10, "RELOADING=1 then READY=1 after SIGHUP")

            # systemctl stop (KillMode=mixed: SIGTERM to chatto only)
            os.kill(cls.proc.pid, signal.SIGTERM)
            rc = cls.proc.wait(30)
            self.assertEqual(rc, 0, output())
            self.assertTrue(got("STOPPING=1"), messages)
            self.assertFalse(pid_alive(child[0]), "nats-server outlived chatto")
            if not all(mdwe):
                print("\nnote: prctl(PR_SET_MDWE) unavailable; MemoryDenyWriteExecute= not exercised")
        except BaseException:
            print("\n--- packaged chatto output ---\n%s" % output()[-20000:])
            raise
        finally:
            if cls.proc.poll() is None:
                cls.proc.kill()
                cls.proc.wait()

    def test_60_reinstall_keeps_the_operators_config_the_secrets_and_the_data(self):
        # an operator's edit to the conffile
        conf = self.read("/etc/chatto/chatto.ini").replace('\n#server_name = "Chatto"\n', '\nserver_name = "Ops"\n')
        self.assertIn('\nserver_name = "Ops"\n', conf)
        with open(self.path("/etc/chatto/chatto.ini"), "w") as f:
            f.write(conf)
        secrets = self.read(SECRETS_ENV)
        data = sorted(os.listdir(self.path("/var/lib/chatto")))
        log = self.dpkg("-i", "/tmp/chatto.deb")  # same version: prerm upgrade, postinst configure <version>
        self.assertNotRegex(log.lower(), r"warn|error|conffile", log)  # the package's conffile is unchanged: no prompt
        self.assertEqual(self.status(), "installed")
        self.assertEtcKept(conf, secrets)
        self.assertEqual(sorted(os.listdir(self.path("/var/lib/chatto"))), data)
        uid, gid, _, _ = self.ids()
        self.assertMode("/var/lib/chatto", 0o750, uid, gid)
        p = self.root.run(["chatto", "config", "print", "-c", "/etc/chatto/chatto.ini"], user="chatto")
        self.assertIn('server_name = "Ops"  # file: /etc/chatto/chatto.ini', p.stdout)
        self.assertIn("# env: %s:" % SECRETS_ENV, p.stdout)

    def test_70_remove_keeps_config_and_data_and_reinstall_reuses_them(self):
        conf, secrets = self.read("/etc/chatto/chatto.ini"), self.read(SECRETS_ENV)
        data = sorted(os.listdir(self.path("/var/lib/chatto")))
        self.assertIn("nats-server.conf", data)
        self.dpkg("-r", "chatto")
        self.assertEqual(self.status(), "config-files")
        self.assertFalse(os.path.exists(self.path("/usr/bin/chatto")))
        self.assertFalse(os.path.exists(self.path("/lib/systemd/system/chatto.service")))
        self.assertEtcKept(conf, secrets)
        self.assertEqual(self.statoverrides(), "root chatto 640 /etc/chatto/chatto.ini\n")
        self.assertEqual(sorted(os.listdir(self.path("/var/lib/chatto"))), data)
        # installing again finds them and leaves them alone
        self.dpkg("-i", "/tmp/chatto.deb")
        self.assertEqual(self.status(), "installed")
        self.assertEtcKept(conf, secrets)
        self.assertEqual(sorted(os.listdir(self.path("/var/lib/chatto"))), data)

    def test_75_reinstall_never_regenerates_secrets_env(self):
        # new secrets would log everyone out: postinst says the file is missing instead of making one
        os.remove(self.path(SECRETS_ENV))
        log = self.dpkg("-i", "/tmp/chatto.deb")
        self.assertIn("/etc/chatto/secrets.env is missing", log)
        self.assertEqual(self.status(), "installed")
        self.assertEqual(os.listdir(self.path("/etc/chatto")), ["chatto.ini"])
        # and without it chatto refuses the configuration (so the service does not start with other secrets)
        p = self.root.run(["chatto", "config", "check", "-c", "/etc/chatto/chatto.ini"], user="chatto", check=False)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("core.secrets_file: cannot read %s" % SECRETS_ENV, p.stderr)

    def test_80_purge_removes_config_and_data(self):
        with open(self.path(SECRETS_ENV), "w") as f:  # test_75 deleted it; purge must delete it too
            f.write("# emptied by the operator\n")
        log = self.dpkg("--purge", "chatto")
        self.assertNotRegex(log.lower(), r"warn|error", log)
        self.assertEqual(self.status(), "not-installed")
        for gone in ("/etc/chatto", "/var/lib/chatto", "/usr/bin/chatto",
                     "/etc/systemd/system/multi-user.target.wants/chatto.service"):
            self.assertFalse(os.path.lexists(self.path(gone)), gone)
        self.assertEqual(self.statoverrides(), "")
        # the system user stays (Debian practice; chatto.postrm says why)
        self.ids()

    def test_90_first_install_keeps_a_secrets_env_already_there(self):
        # the way to give the processes of a cluster the same secrets: copy the file before installing
        os.mkdir(self.path("/etc/chatto"))
        with open(self.path(SECRETS_ENV), "w") as f:
            f.write("CHATTO_CORE_SECRET_KEY=%s\n" % ("k" * 43))
        self.dpkg("-i", "/tmp/chatto.deb")
        self.assertEqual(self.status(), "installed")
        self.assertEqual(self.read(SECRETS_ENV), "CHATTO_CORE_SECRET_KEY=%s\n" % ("k" * 43))
        self.dpkg("--purge", "chatto")
        self.assertFalse(os.path.lexists(self.path("/etc/chatto")))


class Systemd(unittest.TestCase):
    """chatto.service as shipped, run by systemd 252 (PID 1 of its own namespaces, on a throwaway root with
    the package installed): the sandbox still lets chatto start its nats-server child and write
    /var/lib/chatto, Type=notify, reload, Restart=on-failure and a clean stop all work."""

    @classmethod
    def setUpClass(cls):
        why = skip_reason() or throwaway_root.available()
        if why:
            raise unittest.SkipTest(why)
        cls.root = throwaway_root.ThrowawayRoot().start()
        try:
            if cls.root.run(["dpkg-query", "-W", "chatto"], check=False).returncode == 0:
                cls.root.run(["dpkg", "--purge", "chatto"])
            # not in /tmp: the booted systemd mounts its own there
            cls.root.copy_in(deb(), "/var/cache/chatto-test.deb")
            cls.root.run(["dpkg", "-i", "/var/cache/chatto-test.deb"])
            # what an operator's `systemctl edit chatto` would write: a free loopback port
            cls.port = free_port()
            os.makedirs(cls.root.path("/etc/systemd/system/chatto.service.d"))
            with open(cls.root.path("/etc/systemd/system/chatto.service.d/test.conf"), "w") as f:
                f.write("[Service]\nEnvironment=CHATTO_WEBSERVER_PORT=%d CHATTO_WEBSERVER_BIND_ADDRESS=127.0.0.1\n"
                        % cls.port)
            try:
                cls.root.boot_and_wait()
            except (RuntimeError, AssertionError) as e:
                raise unittest.SkipTest("cannot boot systemd here: %s" % e)
        except BaseException:
            cls.root.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.root.stop()

    def show(self, *props):
        out = self.root.sd(["systemctl", "show", "-p", ",".join(props), "chatto.service"]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self):
        return self.root.sd(["journalctl", "-u", "chatto.service", "--no-pager", "-o", "cat"], check=False).stdout

    def run(self, result=None):
        # on failure, the unit's journal says why
        before = len(result.failures) + len(result.errors) if result else 0
        super().run(result)
        if result and len(result.failures) + len(result.errors) > before and hasattr(type(self), "root"):
            print("\n--- journalctl -u chatto ---\n%s" % self.journal()[-20000:])

    def test_1_service_lifecycle(self):
        # Type=notify: start returns once chatto has sent READY=1
        self.root.sd(["systemctl", "start", "chatto.service"], timeout=90)
        self.assertEqual(http_request(self.port, "GET", "/readyz", timeout=5).status, 200)
        st = self.show("ActiveState", "StatusText", "MainPID")
        self.assertEqual((st["ActiveState"], st["StatusText"]), ("active", "ready"))
        status = self.root.sd(["systemctl", "status", "chatto.service", "--no-pager", "-n0"], check=False).stdout
        self.assertIn("/usr/sbin/nats-server -c /var/lib/chatto/nats-server.conf", status)
        # the sandbox is on: seccomp filter, no new privileges, no capabilities, PrivateUsers
        proc = self.root.sd(["cat", "/proc/%s/status" % st["MainPID"]]).stdout
        self.assertRegex(proc, r"\nNoNewPrivs:\t1\n")
        self.assertRegex(proc, r"\nSeccomp:\t2\n")
        self.assertRegex(proc, r"\nCapBnd:\t0+\n")
        self.assertTrue(os.path.exists(self.root.path("/var/lib/chatto/nats-server.conf")))
        # no EnvironmentFile=: the service's environment holds no secret (only the test drop-in's variables),
        # yet it runs with those of secrets.env, read through core.secrets_file, and so chatto generated none
        # but the child's token
        with open(self.root.path(SECRETS_ENV)) as f:
            secrets = env_file(f.read())
        self.assertEqual(sorted(secrets), sorted(SECRET_VARS))
        environ = self.root.sd(["cat", "/proc/%s/environ" % st["MainPID"]]).stdout
        variables = dict(e.split("=", 1) for e in environ.split("\0") if "=" in e)
        self.assertEqual(sorted(k for k in variables if k.startswith("CHATTO_")),
                         ["CHATTO_WEBSERVER_BIND_ADDRESS", "CHATTO_WEBSERVER_PORT"])
        for v in secrets.values():
            self.assertNotIn(v, environ)
        with open(self.root.path("/var/lib/chatto/secrets.ini")) as f:
            self.assertEqual(list(ini_values(f.read())), ["nats.embedded.auth_token"])

        # systemctl reload: SIGHUP, RELOADING=1 ... READY=1
        self.root.sd(["systemctl", "reload", "chatto.service"], timeout=30)
        self.assertEqual(self.show("ActiveState")["ActiveState"], "active")
        self.assertIn("SIGHUP", self.journal())

        # Restart=on-failure: a crash brings it back, with the same data directory
        self.root.sd(["systemctl", "kill", "--kill-who=main", "--signal=KILL", "chatto.service"])
        wait_for(lambda: self.show("NRestarts")["NRestarts"] == "1" and
                 self.show("ActiveState")["ActiveState"] == "active", 30, "chatto.service to be restarted")
        wait_for(lambda: http_request(self.port, "GET", "/readyz", timeout=2).status == 200, 30,
                 "/readyz after the restart")

        # systemctl stop: chatto drains and stops its child itself, well within TimeoutStopSec
        t0 = time.monotonic()
        self.root.sd(["systemctl", "stop", "chatto.service"], timeout=90)
        self.assertLess(time.monotonic() - t0, 20)
        st = self.show("ActiveState", "Result", "ExecMainStatus")
        self.assertEqual((st["ActiveState"], st["Result"], st["ExecMainStatus"]), ("inactive", "success", "0"))
        log = self.journal()
        log = log[log.rindex("Stopping chatto.service"):]
        self.assertIn("nats-server: stopped (exited with status 0)", log)
        self.assertNotIn("Killing process", log)  # nothing was left for KillMode=mixed's final SIGKILL

    def test_2_dpkg_drives_the_service(self):
        """With systemd running, postinst starts (or restarts) the service and prerm stops it on removal."""
        os.remove(self.root.path("/usr/sbin/policy-rc.d"))  # let deb-systemd-invoke act
        self.root.sd(["systemctl", "start", "chatto.service"], timeout=90)
        pid = self.show("MainPID")["MainPID"]
        with open(self.root.path(SECRETS_ENV)) as f:
            secrets = f.read()
        self.root.sd(["dpkg", "-i", "/var/cache/chatto-test.deb"])  # upgrade path: postinst restarts
        st = self.show("ActiveState", "MainPID")
        self.assertEqual(st["ActiveState"], "active")
        self.assertNotEqual(st["MainPID"], pid)
        with open(self.root.path(SECRETS_ENV)) as f:
            self.assertEqual(f.read(), secrets)
        self.root.sd(["dpkg", "-r", "chatto"])  # prerm stops it before its files go
        self.assertEqual(self.show("ActiveState")["ActiveState"], "inactive")
        self.assertTrue(os.path.exists(self.root.path("/var/lib/chatto/nats-server.conf")))
        self.root.sd(["dpkg", "-i", "/var/cache/chatto-test.deb"])  # from config-files: postinst starts it again
        self.assertEqual(self.show("ActiveState")["ActiveState"], "active")
        wait_for(lambda: http_request(self.port, "GET", "/readyz", timeout=2).status == 200, 30, "/readyz")
        self.root.sd(["dpkg", "--purge", "chatto"])
        self.assertIn(self.show("ActiveState").get("ActiveState"), ("inactive", None))
        self.assertFalse(os.path.exists(self.root.path("/var/lib/chatto")))
        self.assertFalse(os.path.exists(self.root.path("/etc/chatto")))


if __name__ == "__main__":
    unittest.main()
