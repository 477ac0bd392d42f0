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

    def test_mismatched_setting_refused_until_the_others_stop(self):
        n = self.nats()
        a = self.chatto(embedded=False, env=external_env(n.url))
        other = external_env(n.url, CHATTO_CORE_SECRET_KEY="a-different-core-secret-0123456789")
        b = self.chatto(embedded=False, env=other, start=False)
        b.start(wait_ready=False)
        self.assertEqual(b.proc.wait(30), 2, b.stderr())
        self.assertIn("core.secret_key differs from the value used by the running Chatto process", b.stderr())
        self.assertIn("stop all processes before changing it everywhere", b.stderr())  # the advice, whole
        self.assertNotIn("a-different-core-secret", b.stderr())
        # the same values are welcome
        c = self.chatto(embedded=False, env=external_env(n.url))
        self.assertEqual(c.get("/readyz").status, 200)
        self.assertEqual(a.get("/readyz").status, 200)
        # an operator changing the secret stops every process first; then the new value is accepted
        self.assertEqual(a.stop(), 0)
        self.assertEqual(c.stop(), 0)
        d = self.chatto(embedded=False, env=other)
        self.assertEqual(d.get("/readyz").status, 200)

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

    def test_stops_promptly_with_nats_gone(self):
        """With NATS already down, nothing on the way out waits for it: presence removal, the process registry,
        watchers and followers give up at once instead of each running out its request timeout."""
        import time
        from harness import FAST_AUTH, TIME_SCALE, Client
        from wsclient import WS
        n = self.nats(token="tok-0123456789")
        c = self.chatto(embedded=False, env=self.token_env(n), args=FAST_AUTH + ["--webserver-shutdown-timeout", "3s"])
        users = []
        for name in ("ann", "ben", "cat"):
            u = Client(c)
            self.assertEqual(u.register(name, token=True).status, 200)
            ws = WS(c.port)
            ws.hello(token=u.token)
            users.append(ws)
        n.kill9()
        wait_for(lambda: c.get("/readyz").status == 503, 15, "unready once NATS is gone")
        t0 = time.monotonic()
        c.signal(signal.SIGTERM)
        c.proc.wait(60 * TIME_SCALE)
        took = time.monotonic() - t0
        print("\nstopped %.1f s after SIGTERM with NATS gone" % took)
        self.assertEqual(c.proc.returncode, 0)
        # webserver.shutdown_timeout (3 s) plus a few seconds; it took ~29 s before
        self.assertLess(took, (3 + 5) * TIME_SCALE)
        for ws in users:
            ws.sock.close()


def _ed25519_public(seed32):
    """Ed25519 public key of a 32-byte seed (RFC 8032, plain Python; only for the test)."""
    import hashlib
    p = 2 ** 255 - 19
    q = 2 ** 252 + 27742317777372353535851937790883648493
    d = -121665 * pow(121666, p - 2, p) % p
    gy = 4 * pow(5, p - 2, p) % p
    gx2 = (gy * gy - 1) * pow(d * gy * gy + 1, p - 2, p) % p
    gx = pow(gx2, (p + 3) // 8, p)
    if (gx * gx - gx2) % p:
        gx = gx * pow(2, (p - 1) // 4, p) % p
    if gx & 1:
        gx = p - gx
    G = (gx, gy, 1, gx * gy % p)

    def add(P, Q):
        A = (P[1] - P[0]) * (Q[1] - Q[0]) % p
        B = (P[1] + P[0]) * (Q[1] + Q[0]) % p
        C = 2 * P[3] * Q[3] * d % p
        D = 2 * P[2] * Q[2] % p
        E, F, G_, H = B - A, D - C, D + C, B + A
        return (E * F % p, G_ * H % p, F * G_ % p, E * H % p)

    h = hashlib.sha512(seed32).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    R, P_ = (0, 1, 1, 0), G
    while a:
        if a & 1:
            R = add(R, P_)
        P_ = add(P_, P_)
        a >>= 1
    zi = pow(R[2], p - 2, p)
    x, y = R[0] * zi % p, R[1] * zi % p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _nkey(prefix_bytes, payload):
    import base64

    def crc16(data):
        crc = 0
        for byte in data:
            crc ^= byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        return crc

    raw = bytes(prefix_bytes) + payload
    return base64.b32encode(raw + crc16(raw).to_bytes(2, "little")).decode().rstrip("=")


class NKeyAuth(TestCase):
    def test_nkey_seed_string_and_file(self):
        import os
        seed_raw = os.urandom(32)
        seed = _nkey([0x90 | (160 >> 5), (160 & 31) << 3], seed_raw)
        pub = _nkey([160], _ed25519_public(seed_raw))
        self.assertTrue(seed.startswith("SU") and pub.startswith("U"))
        n = self.nats(extra_conf='authorization { users = [ { nkey: "%s" } ] }\n' % pub)
        c = self.chatto(embedded=False, env=external_env(n.url, CHATTO_NATS_CLIENT_AUTH_METHOD="nkey",
                                                         CHATTO_NATS_CLIENT_NKEY_SEED=seed))
        self.assertEqual(c.connect(GET_SERVER).status, 200)
        path = os.path.join(c.dir, "user.nk")
        with open(path, "w") as f:
            f.write(seed + "\n")
        c2 = self.chatto(embedded=False, env=external_env(n.url, CHATTO_NATS_CLIENT_AUTH_METHOD="nkey",
                                                          CHATTO_NATS_CLIENT_NKEY_SEED=path))
        self.assertEqual(c2.connect(GET_SERVER).status, 200)
        self.assertNotIn(seed, c.stderr() + c2.stderr())
