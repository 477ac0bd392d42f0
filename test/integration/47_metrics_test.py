# SPDX-License-Identifier: MIT
"""Prometheus metrics (metrics.enabled): a listener of its own, the text exposition checked by Debian's promtool, and
the series an operator watches moving with real traffic: requests by route and status with latency histograms,
JetStream publishes, login failures, rate limits, WebSockets, the read model, readiness and the process."""
import re
import shutil
import subprocess

from harness import FAST_AUTH, Client, TestCase, http_request, wait_for
from wsclient import WS

M = "chatto.api.v1.MessageService/"


def parse(text):
    """{(name, frozenset(labels)): value} from the exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "not an exposition line: %r" % line
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


class Metrics(TestCase):
    def setUp(self):
        super().setUp()
        self.c = self.chatto(args=FAST_AUTH + ["--metrics-enabled=true", "--metrics-port", "0",
                                               "--auth-login-max-failures", "2"])
        m = wait_for(lambda: re.search(r"metrics: listening on [\d.]+:(\d+)(/\S*)", self.c.stderr()), 10,
                     "the metrics listener")
        self.port, self.path = int(m.group(1)), m.group(2)

    def scrape(self):
        r = http_request(self.port, "GET", self.path)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"), r.header("Content-Type"))
        return r.body.decode()

    def test_exposition_passes_promtool_and_moves_with_traffic(self):
        alice = Client(self.c)
        self.assertEqual(alice.register("alice", token=True).status, 200)
        for i in range(3):
            alice.ok(M + "CreateMessage", {"roomId": "general", "body": "hello %d" % i})
        self.assertEqual(alice.call("chatto.api.v1.NoSuchService/Nothing", {}).status, 404)
        for _ in range(3):  # wrong passwords: counted, and the third is throttled (429)
            Client(self.c).login("alice", password="not the password")
        ws = WS(self.c.port)
        self.addCleanup(ws.sock.close)
        ws.hello(token=alice.token)
        text = self.scrape()
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian's prometheus package) is installed by make deps-test")
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        s = parse(text)
        self.assertEqual(value(s, "chatto_build_info"), 1)
        self.assertTrue(any(n == "chatto_build_info" and dict(ls).get("version") for n, ls in s))
        self.assertEqual(value(s, "chatto_ready"), 1)
        route = "/api/connect/chatto.api.v1.MessageService/CreateMessage"
        self.assertEqual(value(s, "chatto_http_requests_total", route=route, code="200"), 3)
        self.assertEqual(value(s, "chatto_http_request_duration_seconds_count", route=route), 3)
        self.assertEqual(value(s, "chatto_http_request_duration_seconds_bucket", route=route, le="+Inf"), 3)
        self.assertGreater(value(s, "chatto_http_request_duration_seconds_sum", route=route), 0)
        # an unknown method counts under the prefix, not under a name a client made up
        self.assertFalse(any("NoSuchService" in dict(ls).get("route", "") for n, ls in s))
        self.assertGreaterEqual(value(s, "chatto_http_requests_total", route="/api/connect/", code="404"), 1)
        self.assertGreaterEqual(value(s, "chatto_login_failures_total"), 2)
        self.assertGreaterEqual(value(s, "chatto_rate_limited_total"), 1)
        self.assertGreaterEqual(value(s, "chatto_jetstream_publish_duration_seconds_count"), 3)
        self.assertEqual(value(s, "chatto_jetstream_errors_total"), 0)
        wait_for(lambda: value(parse(self.scrape()), "chatto_websocket_connections") == 1, 10, "the socket counted")
        self.assertGreaterEqual(value(s, "chatto_model_messages"), 3)
        self.assertGreaterEqual(value(s, "chatto_model_users"), 1)
        self.assertGreaterEqual(value(s, "chatto_model_rooms"), 1)
        self.assertEqual(value(s, "chatto_event_follower_lag"), 0)
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds"):
            self.assertGreater(value(s, name), 0, name)
        # a message posted live reaches the socket: frames sent are counted
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "live"})
        wait_for(lambda: value(parse(self.scrape()), "chatto_websocket_frames_sent_total") >= 1, 10, "frames counted")

    def test_frames_go_to_the_websocket_loop_only_for_audiences_connected_here(self):
        """A change none of whose audience has a socket on this process is not handed to its WebSocket loop (with
        no socket at all it does not even wake the realtime worker); one that has is, once."""
        alice, bob = Client(self.c), Client(self.c)
        alice.register("alice", token=True)
        bob.register("bob", token=True)
        for i in range(3):  # nobody connected
            alice.ok(M + "CreateMessage", {"roomId": "general", "body": "unheard %d" % i})
        quiet = alice.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "quiet"})["room"]["id"]
        ws = WS(self.c.port)
        self.addCleanup(ws.sock.close)
        ws.hello(token=bob.token)
        before = value(parse(self.scrape()), "chatto_websocket_handoffs_total")
        self.assertEqual(before, 0)  # the posts before bob's socket and its admission went nowhere
        for i in range(5):  # only alice is in the room, and she has no socket here
            alice.ok(M + "CreateMessage", {"roomId": quiet, "body": "alone %d" % i})
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "marker"})
        seen = []
        while not any(m.get("type") == "message.created" and m["message"]["body"] == "marker" for m in seen):
            seen.append(ws.recv_type("message.created"))
        self.assertNotIn("alone 0", [m["message"]["body"] for m in seen])
        # the realtime worker handled the quiet posts before the marker (one queue, in order)
        self.assertEqual(value(parse(self.scrape()), "chatto_websocket_handoffs_total") - before, 1)

    def test_only_the_metrics_path_on_its_own_port(self):
        self.assertEqual(http_request(self.port, "GET", "/other").status, 404)
        self.assertEqual(http_request(self.port, "POST", self.path, body=b"x").status, 405)
        r = self.c.get("/metrics")  # the public port does not serve them
        self.assertNotIn(b"chatto_build_info", r.body)
