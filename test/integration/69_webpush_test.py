# SPDX-License-Identifier: MIT
"""Web Push (lib/push, issue #16) against an independent implementation: build/pushtool sends through push_send to
a push service on loopback written with Node's built-in crypto (test/integration/push/pushsvc.cjs), which made the
subscription's keys as a browser would, checks the VAPID JWT's ES256 signature with the k= key and its aud, exp and
sub, and decrypts the aes128gcm body. Also: 410 reported for pruning, redirects refused and not followed, 5xx as
unavailable, and http://, loopback and private endpoints refused without a connection being made."""
import base64
import http.client
import json
import os
import subprocess
import time

from harness import BUILD, SANITIZER, TIME_SCALE, TestCase
from pushsvc import WithPushService

PUSHTOOL = os.path.join(BUILD, "pushtool")
SUBJECT = "mailto:push-test@example.com"


def pushtool(req, env_extra=None, timeout=30):
    """Run build/pushtool with one JSON request; its JSON answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    env.update(env_extra or {})
    p = subprocess.run([PUSHTOOL], input=json.dumps(req).encode(), capture_output=True, env=env,
                       timeout=timeout * TIME_SCALE)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0 or (SANITIZER and ("Sanitizer" in err or "runtime error:" in err)):
        raise AssertionError("pushtool exited %d:\n%s" % (p.returncode, err))
    return json.loads(p.stdout)


class WebPush(WithPushService, TestCase):
    def send(self, path, payload="hi", scheme="http", host="127.0.0.1", endpoint=None, **extra):
        req = {"op": "send", "endpoint": endpoint or self.svc.url(path, scheme, host), "p256dh": self.svc.p256dh,
               "auth": self.svc.auth, "subject": SUBJECT, "allowLoopback": True, "ttl": 600}
        if isinstance(payload, bytes):
            req["payloadB64"] = base64.b64encode(payload).decode()
        else:
            req["payload"] = payload
        env = extra.pop("env", None)
        req.update(extra)
        return pushtool(req, env)

    def only_request(self, path):
        reqs = [r for r in self.svc.requests() if r["path"] == path]
        self.assertEqual(len(reqs), 1, self.svc.requests())
        return reqs[0]

    # -- the message arrives signed, encrypted for the browser's keys, with the headers asked for --

    def test_push_service_verifies_the_vapid_jwt_and_decrypts_the_payload(self):
        keys = pushtool({"op": "keys"})
        text = "Alice in #general: les élèves 👋 — a preview of at most a hundred characters"
        # a proxy in the environment must not be used (the address check has to see the real peer)
        out = self.send("/push/ok1", text, vapidPrivate=keys["private"], urgency="high", ttl=3600,
                        env={"http_proxy": "http://127.0.0.1:1", "HTTPS_PROXY": "http://127.0.0.1:1",
                             "ALL_PROXY": "http://127.0.0.1:1"})
        self.assertEqual((out["result"], out["httpStatus"]), ("ok", 201), out)
        self.assertEqual(out["vapidPublic"], keys["public"], "the stored key pair is the one that signs")
        r = self.only_request("/push/ok1")
        self.assertTrue(r["vapid"]["ok"], r["vapid"])
        self.assertEqual(r["vapid"]["k"], keys["public"])
        self.assertEqual(r["vapid"]["claims"]["aud"], "http://127.0.0.1:%d" % self.svc.port)
        self.assertEqual(r["vapid"]["claims"]["sub"], SUBJECT)
        self.assertTrue(12 * 3600 - 120 <= r["vapid"]["expIn"] <= 12 * 3600, r["vapid"])
        self.assertNotIn("decryptError", r)
        self.assertEqual(base64.b64decode(r["plaintextB64"]).decode("utf-8"), text)
        self.assertEqual(r["rs"], 4096)
        self.assertEqual(r["headers"], {"contentEncoding": "aes128gcm", "contentType": "application/octet-stream",
                                        "ttl": "3600", "urgency": "high", "topic": None})
        self.assertEqual(r["bytes"], 86 + len(text.encode()) + 1 + 16)

    def test_largest_payload_binary_bytes_urgency_and_topic(self):
        data = os.urandom(3993)
        out = self.send("/push/big", data, urgency="normal", topic="room-general", ttl=0)
        self.assertEqual(out["result"], "ok", out)
        r = self.only_request("/push/big")
        self.assertTrue(r["vapid"]["ok"], r["vapid"])
        self.assertEqual(base64.b64decode(r["plaintextB64"]), data)
        self.assertEqual(r["bytes"], 4096)
        self.assertEqual((r["headers"]["urgency"], r["headers"]["topic"], r["headers"]["ttl"]),
                         ("normal", "room-general", "0"))
        # one byte more is refused before sending
        before = len(self.svc.log())
        out = self.send("/push/too-big", os.urandom(3994))
        self.assertEqual((out["result"], out["field"], out["httpStatus"]), ("invalid_argument", "payload", 0), out)
        self.assertEqual(len(self.svc.log()), before)

    def test_encrypt_only_output_decrypts_in_node(self):
        """push_encrypt alone, for a second subscription made by the service: each message has its own salt and
        ephemeral key, and the one POSTed by hand decrypts."""
        a = pushtool({"op": "encrypt", "p256dh": self.svc.p256dh, "auth": self.svc.auth, "payload": "same"})
        b = pushtool({"op": "encrypt", "p256dh": self.svc.p256dh, "auth": self.svc.auth, "payload": "same"})
        self.assertEqual((a["result"], b["result"]), ("ok", "ok"))
        ba, bb = (base64.urlsafe_b64decode(x["body"] + "==") for x in (a, b))
        self.assertNotEqual(ba[:16], bb[:16], "a fresh salt per message")
        self.assertNotEqual(ba[21:86], bb[21:86], "a fresh ephemeral key per message")
        hdr = pushtool({"op": "header", "endpoint": self.svc.url("/push/by-hand"), "subject": "https://chat.example",
                        "now": int(time.time())})
        self.assertEqual(hdr["result"], "ok", hdr)
        c = http.client.HTTPConnection("127.0.0.1", self.svc.port, timeout=10 * TIME_SCALE)
        try:
            c.request("POST", "/push/by-hand", body=ba, headers={"Authorization": hdr["authorization"],
                                                                 "Content-Encoding": "aes128gcm", "TTL": "60"})
            self.assertEqual(c.getresponse().status, 201)
        finally:
            c.close()
        r = self.only_request("/push/by-hand")
        self.assertTrue(r["vapid"]["ok"], r["vapid"])
        self.assertEqual(base64.b64decode(r["plaintextB64"]), b"same")

    # -- what the push service answers --

    def test_gone_subscription_reports_410_for_pruning(self):
        out = self.send("/push/gone")
        self.assertEqual((out["result"], out["httpStatus"]), ("not_found", 410), out)
        self.assertIn("subscription is gone", out["error"])
        self.assertTrue(self.only_request("/push/gone")["vapid"]["ok"])

    def test_server_error_is_unavailable(self):
        out = self.send("/push/fail")
        self.assertEqual((out["result"], out["httpStatus"]), ("unavailable", 500), out)
        self.assertIn("internal trouble", out["error"])

    def test_redirect_is_refused_and_not_followed(self):
        out = self.send("/push/redirect")
        self.assertEqual((out["result"], out["httpStatus"]), ("invalid_argument", 301), out)
        self.assertIn("redirect", out["error"])
        self.only_request("/push/redirect")
        self.assertEqual([r for r in self.svc.requests() if r["path"] == "/push/redirected"], [])

    # -- endpoints refused before any connection --

    def test_http_endpoint_without_allow_loopback_is_refused(self):
        out = self.send("/push/plain", allowLoopback=False)
        self.assertEqual((out["result"], out["httpStatus"]), ("invalid_argument", 0), out)
        self.assertIn("must be an https:// URL", out["error"])
        self.assertEqual(self.svc.log(), [], "no connection was made")

    def test_loopback_and_private_https_endpoints_are_refused_before_connecting(self):
        cases = [
            (self.svc.url("/push/x", "https"), "127.0.0.1 is not a public address"),
            (self.svc.url("/push/x", "https", "localhost"), "which is not a public address"),
            (self.svc.url("/push/x", "https", "[::ffff:127.0.0.1]"), "is not a public address"),
            ("https://10.1.2.3/push/x", "10.1.2.3 is not a public address"),
            ("https://192.168.10.20:8443/push/x", "is not a public address"),
            ("https://169.254.169.254/latest/meta-data/", "is not a public address"),
            ("https://[fd12:3456::1]/push/x", "is not a public address"),
        ]
        for endpoint, needle in cases:
            t0 = time.monotonic()
            out = self.send(None, endpoint=endpoint, allowLoopback=False, timeoutMs=20000)
            self.assertEqual((out["result"], out["httpStatus"], out["field"]), ("invalid_argument", 0, "endpoint"),
                             (endpoint, out))
            self.assertIn(needle, out["error"], endpoint)
            # refused, not timed out: 10.1.2.3 would take the whole connect timeout if we tried it
            self.assertLess(time.monotonic() - t0, 4 * TIME_SCALE, endpoint)
        self.assertEqual(self.svc.log(), [], "no connection was made")
