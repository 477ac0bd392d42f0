# SPDX-License-Identifier: MIT
"""`chatto user ...`: the operator's escape hatch, against a stopped or running server."""
import subprocess

from harness import CHATTO_BIN, FAST_AUTH, Client, TestCase, external_env

ME = "chatto.api.v1.MyAccountService/GetMyAccount"


def user_cmd(args, data_dir=None, env=None, stdin="", timeout=60):
    cmd = [CHATTO_BIN, "user"] + args + FAST_AUTH
    if data_dir:
        cmd += ["--nats-embedded-data-dir", data_dir]
    import os
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    e.update(env or {})
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=e, timeout=timeout)


class UserCommands(TestCase):
    def test_embedded_server_stopped_then_running(self):
        c = self.chatto(args=FAST_AUTH, start=False)
        # nobody can log in yet: the operator creates the owner while the server is stopped
        p = user_cmd(["create", "root", "--role", "owner", "--display-name", "The Root"], c.data_dir,
                     stdin="operator password\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("created root", p.stdout)
        self.assertIn("role owner", p.stdout)
        c.start()
        root = Client(c)
        r = root.login("root", "operator password")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["user"]["role"], r.json()["user"]["displayName"]), ("owner", "The Root"))
        # registration afterwards does not create a second owner
        self.assertEqual(Client(c).register("late").json()["user"]["role"], "member")
        # against the running server: reset a password (ends sessions), change a role, disable
        p = user_cmd(["set-password", "root"], c.data_dir, stdin="another password\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(root.call(ME).status, 401)
        self.assertEqual(Client(c).login("root", "another password").status, 200)
        p = user_cmd(["set-role", "late", "admin"], c.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        late = Client(c)
        self.assertEqual(late.login("late").json()["user"]["role"], "admin")
        p = user_cmd(["disable", "late"], c.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(late.call(ME).status, 401)
        p = user_cmd(["list"], c.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"root\s+owner")
        self.assertRegex(p.stdout, r"late\s+admin\s+disabled")
        p = user_cmd(["enable", "late"], c.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(Client(c).login("late").status, 200)

    def test_errors(self):
        c = self.chatto(args=FAST_AUTH, start=False)
        self.assertEqual(user_cmd(["frobnicate"], c.data_dir).returncode, 2)
        self.assertEqual(user_cmd(["create"], c.data_dir).returncode, 2)
        self.assertEqual(user_cmd(["set-role", "x", "god"], c.data_dir).returncode, 2)
        p = user_cmd(["create", "bad login"], c.data_dir, stdin="operator password\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("login: may contain only", p.stderr)
        p = user_cmd(["create", "shorty"], c.data_dir, stdin="short\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("password: must be at least 8", p.stderr)
        p = user_cmd(["set-password", "nobody"], c.data_dir, stdin="whatever password\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such user", p.stderr)

    def test_external_mode(self):
        n = self.nats(token="usercmd-token")
        env = external_env(n)
        p = user_cmd(["create", "ops", "--role", "admin"], env=env, stdin="operator password\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        c = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        self.assertEqual(Client(c).login("ops", "operator password").json()["user"]["role"], "admin")
