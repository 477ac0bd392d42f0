# SPDX-License-Identifier: MIT
"""External mode: chatto as a client of a NATS server it does not own."""
import signal

from harness import TestCase, free_port, wait_for

GET_SERVER = "chatto.discovery.v1.ServerDiscoveryService/GetServer"
SECRETS = {
    "CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET": "cookie-secret-0123456789abcdef",
    "CHATTO_CORE_SECRET_KEY": "core-secret-0123456789abcdef",
    "CHATTO_CORE_ASSETS_SIGNING_SECRET": "assets-secret-0123456789abcdef",
}


def external_env(url, **extra):
    env = dict(SECRETS, CHATTO_NATS_EMBEDDED_ENABLED="false", CHATTO_NATS_CLIENT_URL=url)
    env.update(extra)
    return env


class External(TestCase):
    def token_env(self, nats, token=None):
        return external_env(nats.url, CHATTO_NATS_CLIENT_AUTH_METHOD="token",
                            CHATTO_NATS_CLIENT_TOKEN=token or nats.token)

    def test_token_auth(self):
        n = self.nats(token="s3cret-token-for-tests")
        c = self.chatto(embedded=False, env=self.token_env(n))
        self.assertEqual(c.connect(GET_SERVER).status, 200)
        self.assertIsNone(c.nats_child(), "external mode must not spawn nats-server")
        self.assertNotIn("s3cret-token-for-tests", c.stderr())

    def test_userpass_auth(self):
        n = self.nats(extra_conf='authorization { user: "chat", password: "pw-0123456789" }\n')
        c = self.chatto(embedded=False, env=external_env(n.url, CHATTO_NATS_CLIENT_AUTH_METHOD="userpass",
                                                         CHATTO_NATS_CLIENT_USERNAME="chat",
                                                         CHATTO_NATS_CLIENT_PASSWORD="pw-0123456789"))
        self.assertEqual(c.get("/readyz").status, 200)

    def test_start_before_nats_then_connect(self):
        n = self.nats(token="tok-0123456789", start=False)
        n.port = free_port()
        c = self.chatto(embedded=False, env=self.token_env(n), start=False)
        c.start(wait_ready=False)
        c.wait_healthy()
        r = c.get("/readyz")
        self.assertEqual(r.status, 503)
        self.assertTrue(r.json()["reason"].startswith("NATS not connected ("), r.json())
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertEqual(c.connect(GET_SERVER).status, 503)
        self.assertIn("nats: waiting for nats://127.0.0.1:%d" % n.port, c.stderr())
        n.start()
        c.wait_ready(15)
        self.assertEqual(c.connect(GET_SERVER).status, 200)

    def test_nats_restart_is_survived(self):
        n = self.nats(token="tok-0123456789")
        c = self.chatto(embedded=False, env=self.token_env(n))
        sid = c.connect(GET_SERVER).json()["serverId"]
        n.kill9()
        wait_for(lambda: c.get("/readyz").status == 503, 10, "/readyz 503 while NATS is down")
        self.assertEqual(c.connect(GET_SERVER).status, 200, "identity is cached; discovery keeps answering")
        n.start(port=n.port)
        c.wait_ready(15)
        self.assertEqual(c.connect(GET_SERVER).json()["serverId"], sid)
        log = c.stderr()
        self.assertEqual(log.count("nats: disconnected"), 1, log)
        self.assertIn("nats: reconnected to", log)

    def test_two_processes_share_one_identity(self):
        n = self.nats(token="tok-0123456789")
        a = self.chatto(embedded=False, env=self.token_env(n))
        b = self.chatto(embedded=False, env=self.token_env(n))
        ida = a.connect(GET_SERVER)
        idb = b.connect(GET_SERVER)
        self.assertEqual(ida.json()["serverId"], idb.json()["serverId"])
        self.assertNotEqual(ida.header("X-Chatto-Instance"), idb.header("X-Chatto-Instance"))

    def test_concurrent_bootstrap_of_many_processes(self):
        n = self.nats(token="tok-0123456789")
        cs = [self.chatto(embedded=False, env=self.token_env(n), start=False) for _ in range(4)]
        for c in cs:
            c.start(wait_ready=False)
        for c in cs:
            c.wait_ready(20)
        ids = {c.connect(GET_SERVER).json()["serverId"] for c in cs}
        self.assertEqual(len(ids), 1)

    def test_wrong_token_stays_unready_and_says_why(self):
        n = self.nats(token="right-token-0123")
        c = self.chatto(embedded=False, env=self.token_env(n, token="wrong-token-0123"), start=False)
        c.start(wait_ready=False)
        c.wait_healthy()
        wait_for(lambda: c.get("/readyz").status == 503, 5, "/readyz 503")
        self.assertIsNone(c.proc.poll(), "chatto must stay up and keep retrying")
        self.assertIn("refused our credentials", c.stderr())
        self.assertIn("uthorization", c.get("/readyz").json()["reason"])
        self.assertNotIn("wrong-token-0123", c.stderr())

    def test_replicas_above_cluster_size_is_reported(self):
        n = self.nats(token="tok-0123456789")
        c = self.chatto(embedded=False, env=dict(self.token_env(n), CHATTO_NATS_REPLICAS="3"), start=False)
        c.start(wait_ready=False)
        wait_for(lambda: "store: bootstrap failed, retrying" in c.stderr(), 10, "the bootstrap failure log")
        self.assertEqual(c.get("/readyz").status, 503)
        self.assertIn("replicas > 1 not supported in non-clustered mode", c.stderr())
        self.assertNotIn("jsm.c", c.stderr())

    def test_sigterm_in_external_mode(self):
        n = self.nats(token="tok-0123456789")
        c = self.chatto(embedded=False, env=self.token_env(n))
        c.signal(signal.SIGINT)
        c.proc.wait(15)
        self.assertEqual(c.proc.returncode, 0)
        self.assertIn("SIGINT received; draining", c.stderr())
