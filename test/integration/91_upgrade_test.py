# SPDX-License-Identifier: MIT
"""Package upgrade from the previous release: the 0.1.0 .deb, built from the tag v0.1.0 (or, without the tag, the
commit recorded below) in a temporary directory, is installed in a throwaway root (test/package/throwaway_root.py)
and run by a real systemd there; an account, a room and messages are made through the HTTP API; then this tree's
.deb is installed over it with dpkg -i (an upgrade: the old prerm and postrm run with "upgrade", the new postinst
with "configure 0.1.0-1"). The service must have been restarted with the new binary, the configuration and
secrets kept, the data kept (the session, a fresh login, the history) and the store migrated to the current
layout, exactly once. RollingUpgrade runs the 0.1.0 binary and this tree's side by side on one NATS: the new one
migrates, and both keep serving the same data.

Building 0.1.0 takes 11-40 s on two cores (make -j2: its sources and a dpkg-deb); nothing is cached, in the
repository or elsewhere. A shallow clone that has neither the tag nor the commit skips this file, saying so.
"""
import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import (CHATTO_BIN, ROOT, Chatto, Client, Endpoint, TestCase, external_env, free_port,
                     http_request, wait_for)
from natsclient import NatsClient

sys.path.insert(0, os.path.join(ROOT, "test", "package"))
import throwaway_root  # noqa: E402

_spec = importlib.util.spec_from_file_location("package_test_helpers",
                                               os.path.join(os.path.dirname(__file__), "90_package_test.py"))
pkg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pkg)

PREVIOUS_TAG = "v0.1.0"
PREVIOUS_COMMIT = "2a6779dcea65e9401b8664ee916c4736e9d14401"  # what v0.1.0 points at
PREVIOUS_VERSION = "0.1.0-1"
R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
GET_SERVER = "chatto.discovery.v1.ServerDiscoveryService/GetServer"


class Service(Endpoint):
    """chatto.service's HTTP listener (on the host's loopback: the throwaway root shares its network)."""

    def __init__(self, port):
        self.port = port


def git(*args):
    return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)


def previous_commit():
    """(commit, None) to build the previous release from, or (None, why not)."""
    if git("rev-parse", "--git-dir").returncode != 0:
        return None, "not a git checkout: the previous release cannot be built"
    for ref in (PREVIOUS_TAG, PREVIOUS_COMMIT):
        p = git("rev-parse", "--verify", "--quiet", ref + "^{commit}")
        if p.returncode == 0:
            return p.stdout.strip(), None
    shallow = git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    return None, ("neither the tag %s nor the commit %s is in this %s; clone with full history (git clone, or "
                  "git fetch --unshallow --tags) to run the upgrade test" %
                  (PREVIOUS_TAG, PREVIOUS_COMMIT[:12], "shallow clone" if shallow else "repository"))


def build_previous(commit, tmp):
    """Builds the previous release's .deb from commit (git archive into tmp, its own `make deb`); returns its path
    and the seconds it took."""
    src, out = os.path.join(tmp, "src"), os.path.join(tmp, "build")
    os.mkdir(src)
    t0 = time.monotonic()
    archive = subprocess.Popen(["git", "-C", ROOT, "archive", "--format=tar", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise AssertionError("git archive %s failed" % commit)
    # a make of our own: not the jobserver of a `make test` that may have started us
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run(["make", "-s", "-j2", "-C", src, "B=" + out, "deb"], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise AssertionError("building %s (%s) failed:\n%s%s" % (PREVIOUS_TAG, commit[:12], p.stdout[-5000:],
                                                               p.stderr[-5000:]))
    debs = [f for f in os.listdir(out) if f.startswith("chatto_%s_" % PREVIOUS_VERSION) and f.endswith(".deb")]
    if len(debs) != 1:
        raise AssertionError("make deb of %s left %s in %s" % (PREVIOUS_TAG, os.listdir(out), out))
    return os.path.join(out, debs[0]), time.monotonic() - t0


_previous = {}  # built once per run, shared by both classes; removed at exit


def previous():
    """(path of the previous release's .deb, path of its chatto binary); builds them on first use. Raises
    unittest.SkipTest when the previous release cannot be had here."""
    if "why" in _previous:
        raise unittest.SkipTest(_previous["why"])
    if "deb" not in _previous:
        commit, why = previous_commit()
        if why:
            _previous["why"] = why
            raise unittest.SkipTest(why)
        _previous["tmp"] = tempfile.mkdtemp(prefix="chatto-upgrade-")
        # (not tearDownModule: test/run_tests.py loads the files by path, and unittest finds a module's fixtures
        # through sys.modules)
        atexit.register(shutil.rmtree, _previous["tmp"], True)
        deb, took = build_previous(commit, _previous["tmp"])
        print("\nbuilt %s (%s) in %.0f s" % (os.path.basename(deb), commit[:12], took))
        _previous["deb"] = deb
        _previous["bin"] = os.path.join(os.path.dirname(deb), "deb-build", "chatto")
    return _previous["deb"], _previous["bin"]


class Upgrade(unittest.TestCase):
    """The methods run in name order, each continuing from the state the previous one left."""

    @classmethod
    def setUpClass(cls):
        why = pkg.skip_reason() or throwaway_root.available()
        if why:
            raise unittest.SkipTest(why)
        cls.root = None
        try:
            old_deb, _ = previous()
            new_deb = pkg.deb()
            cls.root = throwaway_root.ThrowawayRoot().start()
            if cls.root.run(["dpkg-query", "-W", "chatto"], check=False).returncode == 0:
                cls.root.run(["dpkg", "--purge", "chatto"])
            # not in /tmp: the booted systemd mounts its own there
            cls.root.copy_in(old_deb, "/var/cache/chatto-old.deb")
            cls.root.copy_in(new_deb, "/var/cache/chatto-new.deb")
            cls.root.run(["dpkg", "-i", "/var/cache/chatto-old.deb"])
            cls.port = free_port()
            os.makedirs(cls.root.path("/etc/systemd/system/chatto.service.d"))
            with open(cls.root.path("/etc/systemd/system/chatto.service.d/test.conf"), "w") as f:
                f.write("[Service]\nEnvironment=CHATTO_WEBSERVER_PORT=%d CHATTO_WEBSERVER_BIND_ADDRESS=127.0.0.1 "
                        "CHATTO_AUTH_PASSWORD_HASH=owasp\n" % cls.port)
            # with systemd running, deb-systemd-invoke acts (the root's policy-rc.d would say no)
            os.remove(cls.root.path("/usr/sbin/policy-rc.d"))
            try:
                cls.root.boot_and_wait()
            except (RuntimeError, AssertionError) as e:
                raise unittest.SkipTest("cannot boot systemd here: %s" % e)
        except BaseException:
            if cls.root:
                cls.root.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.root.stop()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        super().run(result)
        if result and len(result.failures) + len(result.errors) > before and getattr(type(self), "root", None):
            print("\n--- journalctl -u chatto ---\n%s" % self.journal()[-20000:])

    def journal(self):
        return self.root.sd(["journalctl", "-u", "chatto.service", "--no-pager", "-o", "cat"], check=False).stdout

    def show(self, *props):
        out = self.root.sd(["systemctl", "show", "-p", ",".join(props), "chatto.service"]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def read(self, path):
        with open(self.root.path(path)) as f:
            return f.read()

    def ready(self):
        wait_for(lambda: http_request(self.port, "GET", "/readyz", timeout=2).status == 200, 60, "/readyz")

    def server_version(self):
        r = Service(self.port).connect(GET_SERVER, {}, timeout=5)
        self.assertEqual(r.status, 200, r)
        return r.json()["version"]

    def test_1_previous_release_runs_and_gets_data(self):
        cls = type(self)
        self.assertEqual(self.root.run(["dpkg-query", "-W", "-f", "${Version}", "chatto"]).stdout, PREVIOUS_VERSION)
        self.root.sd(["systemctl", "start", "chatto.service"], timeout=90)
        self.ready()
        self.assertEqual(self.server_version(), PREVIOUS_VERSION.split("-")[0])

        cls.endpoint = Service(cls.port)
        cls.alice = Client(cls.endpoint)
        self.assertEqual(cls.alice.register("alice").status, 200)
        cls.room = cls.alice.ok(R + "CreateRoom", {"name": "ops"})["room"]["id"]
        cls.posted = [cls.alice.ok(M + "CreateMessage", {"roomId": cls.room, "body": "from 0.1.0 #%d" % i})
                      ["message"]["id"] for i in range(3)]
        cls.alice.ok(M + "AddReaction", {"roomId": cls.room, "eventId": cls.posted[1], "emoji": "🎉"})
        cls.pid = self.show("MainPID")["MainPID"]
        cls.conf = self.read("/etc/chatto/chatto.ini")
        cls.secrets = self.read(pkg.SECRETS_ENV)
        cls.data_secrets = self.read("/var/lib/chatto/secrets.ini")
        self.assertNotIn("layout", self.journal())  # 0.1.0 knows no layout versions

    def test_2_dpkg_upgrade_restarts_the_service_with_the_new_binary(self):
        cls = type(self)
        t0 = time.monotonic()
        p = self.root.sd(["dpkg", "-i", "/var/cache/chatto-new.deb"], timeout=300)
        print("\ndpkg -i (upgrade, restart included): %.1f s" % (time.monotonic() - t0))
        self.assertNotRegex((p.stdout + p.stderr).lower(), r"warn|error", p.stdout + p.stderr)
        new_version = pkg.deb().rsplit("/", 1)[1].split("_")[1]
        self.assertEqual(self.root.run(["dpkg-query", "-W", "-f", "${Version}:${db:Status-Status}",
                                        "chatto"]).stdout, new_version + ":installed")
        st = self.show("ActiveState", "MainPID")
        self.assertEqual(st["ActiveState"], "active")
        self.assertNotEqual(st["MainPID"], cls.pid, "postinst did not restart chatto.service")
        self.ready()
        self.assertEqual(self.server_version(), new_version.split("-")[0])
        self.assertIn("chatto %s" % new_version.split("-")[0], self.root.run(["chatto", "--version"]).stdout)

    def test_3_configuration_and_secrets_are_kept(self):
        # the conffile was not edited, so dpkg put the new release's template in its place (0.2.0 lists more
        # keys) without asking; the package's settings and postinst's owner and mode stay
        conf = self.read("/etc/chatto/chatto.ini")
        self.assertEqual(pkg.ini_values(conf), pkg.TEMPLATE_KEYS)
        self.assertEqual(self.root.run(["dpkg-statoverride", "--list", "/etc/chatto/chatto.ini"]).stdout,
                         "root chatto 640 /etc/chatto/chatto.ini\n")
        self.assertEqual(self.read(pkg.SECRETS_ENV), self.secrets)
        self.assertEqual(self.read("/var/lib/chatto/secrets.ini"), self.data_secrets)
        self.assertEqual(sorted(os.listdir(self.root.path("/etc/chatto"))), ["chatto.ini", "secrets.env"])
        # an operator who edited it and keeps the old one (dpkg --force-confold, or answering N) keeps 0.1.0's
        # conffile: the new binary accepts it (no key was removed or renamed)
        edited = self.conf.replace('\n#server_name = "Chatto"\n', '\nserver_name = "Ops"\n')
        self.assertIn('\nserver_name = "Ops"\n', edited)
        with open(self.root.path("/tmp/chatto-0.1.0.ini"), "w") as f:
            f.write(edited)
        os.chmod(self.root.path("/tmp/chatto-0.1.0.ini"), 0o644)
        p = self.root.run(["chatto", "config", "check", "-c", "/tmp/chatto-0.1.0.ini"], user="chatto", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_4_data_is_kept_and_the_store_migrated(self):
        # the session made before the upgrade still works (same secrets, same credential records)
        page = self.alice.ok(R + "GetRoomEvents", {"roomId": self.room})["page"]
        msgs = [e["messagePosted"]["message"] for e in page["events"] if "messagePosted" in e]
        self.assertEqual([m["body"] for m in msgs], ["from 0.1.0 #%d" % i for i in range(3)])
        self.assertEqual(msgs[1]["reactions"][0]["emoji"], "🎉")
        # and a fresh login, and a post
        again = Client(self.endpoint)
        self.assertEqual(again.login("alice").status, 200)
        again.ok(M + "CreateMessage", {"roomId": self.room, "body": "from 0.2.0"})

        log = self.journal()
        log = log[log.rindex("Stopping chatto.service"):]
        self.assertEqual(log.count("store: migrating the layout from version 1 to 2"), 1, log)
        self.assertIn("store: layout version 2 written", log)
        # the store itself, through the embedded NATS the service runs
        url = self.read("/var/lib/chatto/run/client.url").strip()
        token = pkg.ini_values(self.read("/var/lib/chatto/secrets.ini"))["nats.embedded.auth_token"]
        with NatsClient(int(url.rsplit(":", 1)[1]), token=token) as nc:
            self.assertEqual(nc.kv_get("chatto_meta", "layout_version"), b"2")
            streams = nc.streams()
        self.assertNotIn("KV_chatto_presence", streams)
        self.assertIn("OBJ_SERVER_ASSETS", streams)

    def test_5_a_restart_migrates_nothing(self):
        self.root.sd(["systemctl", "restart", "chatto.service"], timeout=90)
        self.ready()
        log = self.journal()
        log = log[log.rindex("Stopping chatto.service"):]
        self.assertNotIn("migrating", log)
        self.root.sd(["systemctl", "stop", "chatto.service"], timeout=90)


if __name__ == "__main__":
    unittest.main()


class PreviousChatto(Chatto):
    """The previous release's binary, as a client of a NATS server of the test's (it knows fewer settings: none of
    the environment harness.Chatto adds for this release)."""

    def __init__(self, binary, *a, **kw):
        super().__init__(*a, **kw)
        self.binary = binary

    def command(self):
        cmd = super().command()
        cmd[cmd.index(CHATTO_BIN)] = self.binary
        return cmd

    def start(self, wait_ready=True, timeout=20):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
        env.update(self.env)
        self.out = open(self.stdout_path, "ab")
        self.err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.out, stderr=self.err, env=env)
        if wait_ready:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.kill9()
                raise
        return self


class RollingUpgrade(TestCase):
    """A cluster upgraded one process at a time: a process of this release starts beside a running 0.1.0 one on
    the same NATS, migrates the store, and both serve the same data; the 0.1.0 process stays ready (the migration
    leaves chatto_presence, which it checks, while it runs)."""

    @classmethod
    def setUpClass(cls):
        if pkg.SANITIZER or pkg.WRAPPER:
            raise unittest.SkipTest("the previous release is built without the instrumentation under test")
        cls.old_bin = previous()[1]

    def test_old_and_new_processes_side_by_side(self):
        n = self.nats(token="rolling-upgrade-token")
        env = external_env(n)
        old = PreviousChatto(self.old_bin, args=["--auth-password-hash", "owasp"], env=env, embedded=False)
        self._chattos.append(old)
        old.start()
        alice = Client(old)
        self.assertEqual(alice.register("alice").status, 200)
        room = alice.ok(R + "CreateRoom", {"name": "ops"})["room"]["id"]
        alice.ok(M + "CreateMessage", {"roomId": room, "body": "posted on 0.1.0"})

        new = self.chatto(args=["--auth-password-hash", "owasp"], env=env, embedded=False)
        self.assertIn("1 process of 0.1.0 still running uses the bucket chatto_presence, so it stays", new.stderr())
        self.assertIn("store: layout version 2 written", new.stderr())
        with NatsClient(n.port, token=n.token) as nc:
            self.assertEqual(nc.kv_get("chatto_meta", "layout_version"), b"2")
            self.assertIn("KV_chatto_presence", nc.streams())

        # both serve the same rooms and messages, whichever process wrote them
        on_new = alice.on(new)
        on_new.ok(M + "CreateMessage", {"roomId": room, "body": "posted on 0.2.0"})

        def bodies(client):
            page = client.ok(R + "GetRoomEvents", {"roomId": room})["page"]
            return [e["messagePosted"]["message"]["body"] for e in page["events"] if "messagePosted" in e]
        want = ["posted on 0.1.0", "posted on 0.2.0"]
        wait_for(lambda: bodies(alice) == want, 10, "the 0.1.0 process to see the post made on 0.2.0")
        self.assertEqual(bodies(on_new), want)
        # the old process checks every stream and bucket it knows for its readiness, about once a second (cached):
        # it stays ready through three seconds of those checks
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            r = old.get("/readyz", timeout=5)
            self.assertEqual(r.status, 200, r.body)
            time.sleep(0.25)
        self.assertEqual(old.stop(), 0, old.stderr())
