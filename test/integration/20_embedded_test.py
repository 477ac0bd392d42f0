# SPDX-License-Identifier: MIT
"""Embedded mode: chatto supervises its own nats-server child."""
import os
import signal
import socket
import stat
import time

import subprocess
import tempfile

from harness import BUILD, FAST_AUTH, ROOT, SANITIZER, WRAPPER, Client, TestCase, free_port, pid_alive, run_chatto, \
    wait_for

GET_SERVER = "chatto.discovery.v1.ServerDiscoveryService/GetServer"


def server_id(c):
    r = c.connect(GET_SERVER)
    assert r.status == 200, r
    return r.json()["serverId"]


def listening_ports(pid):
    """(address, port) of every TCP socket pid listens on (from /proc: its socket inodes in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state != "0A" or inode not in inodes:  # 0A: LISTEN
                    continue
                host, port = local.split(":")
                if v6:
                    addr = "::" if set(host) == {"0"} else host
                else:
                    addr = ".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0))
                out.append((addr, int(port, 16)))
    return out


class Embedded(TestCase):
    def test_start_prints_url_and_becomes_ready(self):
        c = self.chatto()
        wait_for(lambda: "is ready: open http://localhost:%d" % c.port in c.stdout(), 10, "URL on stdout")
        r = c.get("/readyz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "ok")
        self.assertEqual(c.get("/healthz").status, 200)
        info = c.connect(GET_SERVER).json()
        self.assertEqual(info["name"], "Chatto")
        self.assertRegex(info["serverId"], r"^[0-9a-f]{24}$")
        self.assertRegex(info["createdAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertTrue(info["loginOptions"]["directRegistration"])
        self.assertIsNotNone(c.nats_child())

    def test_owner_rule_printed_while_no_account_exists(self):
        c = self.chatto(args=FAST_AUTH)
        wait_for(lambda: "is ready: open" in c.stdout(), 10, "URL on stdout")
        self.assertIn("the first account registered", c.stdout())
        self.assertIn("becomes the server owner", c.stdout())
        self.assertEqual(Client(c).register("boss").status, 200)
        self.assertEqual(c.stop(), 0)
        c.start()
        wait_for(lambda: c.stdout().count("is ready: open") == 2, 10, "URL on stdout again")
        self.assertEqual(c.stdout().count("becomes the server owner"), 1, c.stdout())

    def test_make_run_listens_on_loopback_only(self):
        """`make run` is a developer's command: it answers this machine only unless told BIND=0.0.0.0."""
        if SANITIZER or WRAPPER:
            self.skipTest("make run builds with the default flags")
        data = tempfile.mkdtemp(prefix="chatto-makerun-")
        port = free_port()
        out = open(os.path.join(data, "out.log"), "wb")
        p = subprocess.Popen(["make", "-s", "run", "B=" + BUILD, "ARGS=--webserver-port %d --nats-embedded-data-dir %s"
                              % (port, os.path.join(data, "d"))], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True,
                             env={k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")})

        def stop():
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            out.close()
        self.addCleanup(stop)
        wait_for(lambda: "is ready: open" in open(out.name, errors="replace").read(), 60, "make run to be ready")
        chatto = [int(x) for x in subprocess.run(["pgrep", "-s", str(p.pid), "-x", "chatto"], capture_output=True,
                                                 text=True).stdout.split()]
        self.assertEqual(len(chatto), 1, open(out.name).read())
        self.assertIn(("127.0.0.1", port), listening_ports(chatto[0]))
        self.assertEqual([a for a, prt in listening_ports(chatto[0]) if prt == port], ["127.0.0.1"])

    def test_child_does_not_inherit_chatto_secrets(self):
        c = self.chatto(env={"CHATTO_CORE_SECRET_KEY": "core-secret-only-for-chatto-0123", "KEEP_ME": "1"})
        with open("/proc/%d/environ" % c.nats_child(), "rb") as f:
            env = f.read().split(b"\0")
        self.assertIn(b"KEEP_ME=1", env)
        self.assertFalse([e for e in env if e.startswith(b"CHATTO_")], "CHATTO_* reached nats-server")

    def test_secrets_generated_once_private_and_never_logged(self):
        c = self.chatto()
        path = os.path.join(c.data_dir, "secrets.ini")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        text = open(path).read()
        secrets = [line.split("=", 1)[1].strip().strip('"') for line in text.splitlines() if " = " in line]
        self.assertEqual(len(secrets), 4)
        self.assertIn("generated webserver.cookie_signing_secret", c.stderr())
        self.assertEqual(c.stop(), 0)
        # restart: same secrets file, no regeneration
        c.start()
        self.assertEqual(open(path).read(), text)
        self.assertEqual(c.stderr().count("generated webserver.cookie_signing_secret"), 1)
        for s in secrets:
            self.assertNotIn(s, c.stderr())
            self.assertNotIn(s, c.stdout())
        conf = os.path.join(c.data_dir, "nats-server.conf")
        self.assertEqual(stat.S_IMODE(os.stat(conf).st_mode), 0o600)

    def test_child_killed_is_restarted_and_data_survives(self):
        c = self.chatto()
        sid = server_id(c)
        child = c.nats_child()
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: c.get("/readyz").status == 503, 5, "/readyz to report 503 after the child died")
        self.assertIn("reason", c.get("/readyz").json())
        wait_for(lambda: c.get("/readyz").status == 200, 15, "/readyz back to 200 after the restart")
        new_child = c.nats_child()
        self.assertIsNotNone(new_child)
        self.assertNotEqual(new_child, child)
        self.assertEqual(server_id(c), sid)
        self.assertIn("killed by signal 9; restarting", c.stderr())

    def test_restart_backoff_grows_when_child_keeps_dying(self):
        c = self.chatto()
        killed = []
        for _ in range(3):
            child = wait_for(c.nats_child, 15, "a new nats-server child")
            os.kill(child, signal.SIGKILL)
            killed.append(child)
            wait_for(lambda: c.nats_child() not in (None, child), 15, "the child to be restarted")
        log = c.stderr()
        # each death doubles the delay before the next start (killed while ready, or while starting)
        self.assertRegex(log, r"(restarting|retrying) in 500 ms")
        self.assertRegex(log, r"(restarting|retrying) in 1000 ms")
        self.assertRegex(log, r"(restarting|retrying) in 2000 ms")
        c.wait_ready(15)

    def test_wedged_child_is_killed_and_restarted(self):
        c = self.chatto()
        sid = server_id(c)
        child = c.nats_child()
        os.kill(child, signal.SIGSTOP)
        try:
            wait_for(lambda: c.get("/readyz", timeout=5).status == 503, 20, "/readyz 503 while the child is stopped")
            wait_for(lambda: "did not answer 3 probes in a row" in c.stderr(), 40, "the supervisor to notice")
        finally:
            if pid_alive(child):
                os.kill(child, signal.SIGCONT)
        wait_for(lambda: c.get("/readyz").status == 200, 20, "/readyz back to 200")
        self.assertNotEqual(c.nats_child(), child)
        self.assertEqual(server_id(c), sid)

    def test_sigterm_drains_and_stops_child(self):
        c = self.chatto()
        child = c.nats_child()
        self.assertEqual(c.stop(), 0)
        self.assertFalse(pid_alive(child), "nats-server child outlived chatto")
        log = c.stderr()
        self.assertIn("SIGTERM received; draining", log)
        self.assertIn("nats-server: stopped (exited with status 0)", log)
        self.assertIn("app: stopped", log)

    def test_kill9_parent_leaves_no_orphan(self):
        c = self.chatto()
        child = c.nats_child()
        c.kill9()
        wait_for(lambda: not pid_alive(child), 5, "the nats-server child to die with its parent")
        # a new chatto on the same data dir starts and finds the same data
        c2 = self.chatto(data_dir=c.data_dir)
        self.assertTrue(server_id(c2))

    def test_data_persists_across_chatto_restarts(self):
        c = self.chatto()
        sid = server_id(c)
        self.assertEqual(c.stop(), 0)
        c.start()
        self.assertEqual(server_id(c), sid)

    def test_second_process_on_same_data_dir_refused(self):
        c = self.chatto()
        c2 = self.chatto(data_dir=c.data_dir, start=False)
        c2.start(wait_ready=False)
        c2.proc.wait(20)
        self.assertEqual(c2.proc.returncode, 1)
        self.assertIn("is in use by another chatto process (pid %d)" % c.pid, c2.stderr())
        self.assertEqual(c.get("/readyz").status, 200)

    def test_child_port_in_use_gives_clear_error(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        try:
            c = self.chatto(args=["--nats-embedded-port", str(port)], start=False)
            c.start(wait_ready=False)
            c.proc.wait(30)
            self.assertEqual(c.proc.returncode, 1)
            self.assertIn("cannot start the embedded NATS server", c.stderr())
            self.assertIn("address already in use", c.stderr())
            self.assertIsNone(c.nats_child())
        finally:
            blocker.close()

    def test_fixed_child_ports(self):
        from harness import free_port
        p, m = free_port(), free_port()
        c = self.chatto(args=["--nats-embedded-port", str(p), "--nats-embedded-http-port", str(m)])
        self.assertIn("JetStream ready at nats://127.0.0.1:%d (monitoring port %d: unauthenticated" % (p, m),
                      c.stderr())

    def test_the_child_is_sealed(self):
        """By default the child listens on its client port only, on loopback, and that port wants the token; the
        token is only in files of mode 0600 (no monitoring listener: its /connz showed the token to anyone)."""
        import socket
        import stat
        c = self.chatto()
        child = c.nats_child()
        self.assertIsNotNone(child)
        listening = listening_ports(child)
        self.assertEqual(len(listening), 1, listening)
        (addr, port), = listening
        self.assertEqual(addr, "127.0.0.1")
        self.assertIn("JetStream ready at nats://127.0.0.1:%d\n" % port, c.stderr())
        # no token, no service: the server says so in its INFO, then refuses the CONNECT
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            info = s.recv(4096)
            self.assertTrue(info.startswith(b"INFO "), info)
            self.assertIn(b'"auth_required":true', info)
            s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
            reply = b""
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
            self.assertIn(b"Authorization Violation", reply)
        for name in ("nats-server.conf", "secrets.ini"):
            mode = stat.S_IMODE(os.stat(os.path.join(c.data_dir, name)).st_mode)
            self.assertEqual(mode, 0o600, name)

    def test_config_check_and_print_in_embedded_mode(self):
        p = run_chatto(["config", "check"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("embedded NATS", p.stdout)

    def test_sighup_reloads_log_level(self):
        c = self.chatto()
        c.signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: log level info" in c.stderr(), 5, "the reload log line")
        self.assertEqual(c.get("/readyz").status, 200)
        time.sleep(0)  # the process keeps serving
        self.assertEqual(c.stop(), 0)


class SystemdNotify(TestCase):
    def test_ready_and_stopping_are_notified(self):
        import socket as _socket
        import tempfile
        d = tempfile.mkdtemp()
        path = os.path.join(d, "notify.sock")
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(20)
        try:
            c = self.chatto(env={"NOTIFY_SOCKET": path}, start=False)
            c.start(wait_ready=False)
            msg = s.recv(4096).decode()
            self.assertIn("READY=1", msg)
            self.assertEqual(c.get("/readyz").status, 200)  # READY=1 only once /readyz says ready
            c.signal(signal.SIGTERM)
            self.assertIn("STOPPING=1", s.recv(4096).decode())
            c.proc.wait(20)
        finally:
            s.close()
            import shutil
            shutil.rmtree(d, ignore_errors=True)
