# SPDX-License-Identifier: MIT
"""A stalled NATS holds up only the requests that need it: with the embedded nats-server paused (SIGSTOP) and 64
writes waiting on JetStream, the liveness probe, the web page and the readiness probe still answer at once, and
after the server resumes every write has either succeeded exactly once or said `unavailable`."""
import os
import resource
import signal
import statistics
import threading
import time

from harness import FAST_AUTH, TIME_SCALE, Client, TestCase, http_request, wait_for
from wsclient import WS, Closed, HandshakeError

WRITERS = 64


def timed_get(port, path, timeout=10):
    t0 = time.monotonic()
    r = http_request(port, "GET", path, timeout=timeout)
    return r, time.monotonic() - t0


class Stall(TestCase):
    def setUp(self):
        super().setUp()
        self.c = self.chatto(args=FAST_AUTH)
        self.user = Client(self.c)
        self.assertEqual(self.user.register("stall", token=True).status, 200)
        self.room = self.user.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "stall"})["room"]["id"]
        self.child = self.c.nats_child()
        self.assertIsNotNone(self.child)
        self.paused = False

    def tearDown(self):
        if self.paused:
            os.kill(self.child, signal.SIGCONT)
        super().tearDown()

    def pause(self):
        os.kill(self.child, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.kill(self.child, signal.SIGCONT)
        self.paused = False

    def start_writers(self, n):
        """n CreateMessage calls in flight, each with its own idempotency key; returns (threads, results)."""
        results = [None] * n
        started = threading.Barrier(n + 1)

        def write(i):
            started.wait()
            t0 = time.monotonic()
            r = self.user.call("chatto.api.v1.MessageService/CreateMessage",
                               {"roomId": self.room, "body": "stalled write %d" % i},
                               {"Idempotency-Key": "stall-%d" % i})
            results[i] = (r, time.monotonic() - t0)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        started.wait()
        return threads, results

    def history_bodies(self):
        bodies = []
        before = None
        while True:
            q = {"roomId": self.room, "limit": 100}
            if before:
                q["before"] = before
            page = self.user.ok("chatto.api.v1.RoomService/GetRoomEvents", q)["page"]
            for e in page["events"]:
                if "messagePosted" in e:
                    bodies.append(e["messagePosted"]["message"]["body"])
            if not page["hasOlder"]:
                return bodies
            before = page["startCursor"]

    def test_paused_nats_stalls_only_the_writes(self):
        self.pause()
        threads, results = self.start_writers(WRITERS)
        # the writes are now waiting on JetStream; everything that does not need it answers at once
        health = []
        for _ in range(10):
            r, dt = timed_get(self.c.port, "/healthz")
            self.assertEqual(r.status, 200, r)
            health.append(dt)
        page, _ = timed_get(self.c.port, "/")
        self.assertEqual(page.status, 200, page)
        self.assertIn(b"<html", page.body)
        ready_times = []

        def unready():
            r, dt = timed_get(self.c.port, "/readyz")
            ready_times.append(dt)
            return r if r.status == 503 else None
        r = wait_for(unready, 1.5, "/readyz to say 503 while NATS is paused")
        self.assertIn("JetStream not answering", r.json()["reason"])
        self.resume()
        for t in threads:
            t.join(30 * TIME_SCALE)
            self.assertFalse(t.is_alive(), "a write never returned")
        # the figures the issue asks for, printed for the log; asserted with room for a busy CI machine
        print("\n/healthz while stalled: median %.1f ms, max %.1f ms; /readyz max %.1f ms"
              % (statistics.median(health) * 1000, max(health) * 1000, max(ready_times) * 1000))
        self.assertLess(statistics.median(health), 0.1 * TIME_SCALE, health)
        self.assertLess(max(health), 2.0 * TIME_SCALE, health)
        self.assertLess(max(ready_times), 1.0 * TIME_SCALE, ready_times)
        ok = set()
        for i, (r, dt) in enumerate(results):
            self.assertIn(r.status, (200, 503), r)
            if r.status == 503:
                self.assertEqual(r.json()["code"], "unavailable", r)
            else:
                ok.add("stalled write %d" % i)
            # the request deadline (nats.request_timeout, 5 s) bounds the publish and the wait for the model
            self.assertLess(dt, 12 * TIME_SCALE, "write %d took %.1f s" % (i, dt))
        wait_for(lambda: self.c.get("/readyz").status == 200, 20, "ready again after NATS resumed")
        bodies = self.history_bodies()
        for b in ok:
            self.assertEqual(bodies.count(b), 1, "%s is in the history %d times" % (b, bodies.count(b)))
        # a retry of every write with its key stores nothing twice
        for i in range(WRITERS):
            r = self.user.call("chatto.api.v1.MessageService/CreateMessage",
                               {"roomId": self.room, "body": "stalled write %d" % i},
                               {"Idempotency-Key": "stall-%d" % i})
            self.assertEqual(r.status, 200, r)
        bodies = self.history_bodies()
        for i in range(WRITERS):
            self.assertEqual(bodies.count("stalled write %d" % i), 1)

    def test_readyz_recovers_and_healthz_never_waits_on_a_long_stall(self):
        self.pause()
        threads, results = self.start_writers(16)
        r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(self.c.get("/readyz")), 1.5 * TIME_SCALE,
                     "/readyz 503")
        # keep the stall past the request deadline: the writes give up with 503, the process stays alive
        for t in threads:
            t.join(30 * TIME_SCALE)
        for r, _ in results:
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["code"], "unavailable")
        r, dt = timed_get(self.c.port, "/healthz")
        self.assertEqual(r.status, 200)
        self.resume()
        wait_for(lambda: self.c.get("/readyz").status == 200, 20, "ready again after NATS resumed")
        # nothing was lost or doubled: retrying with the same keys stores each write once
        for i in range(16):
            r = self.user.call("chatto.api.v1.MessageService/CreateMessage",
                               {"roomId": self.room, "body": "stalled write %d" % i},
                               {"Idempotency-Key": "stall-%d" % i})
            self.assertEqual(r.status, 200, r)
        bodies = self.history_bodies()
        for i in range(16):
            self.assertEqual(bodies.count("stalled write %d" % i), 1)

    def test_websockets_keep_working_while_nats_is_paused(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        token = self.user.token
        other = Client(self.c)  # a credential issued now and not used until NATS is paused
        self.assertEqual(other.register("stall2", token=True).status, 200)
        fresh = other.token
        socks = []
        for _ in range(1000):
            ws = WS(self.c.port)
            ws.hello(token=token, timeout=10)
            socks.append(ws)
        # frames on their way when NATS stops: posted and applied, not yet read by anyone
        for i in range(3):
            self.user.ok("chatto.api.v1.MessageService/CreateMessage", {"roomId": self.room, "body": "before %d" % i})
        self.pause()
        t0 = time.monotonic()
        for ws in socks:
            got = []
            while len(got) < 3:
                m = ws.recv(10)
                if m["type"] == "message.created":
                    got.append(m["message"]["body"])
            self.assertEqual(got, ["before 0", "before 1", "before 2"])
        # sockets leave while NATS is paused: their presence write waits, the loop does not
        for ws in socks[:20]:
            ws.close()
        socks = socks[20:]
        # every socket still gets its pings answered: WebSocket pings by the transport, app pings too
        for ws in socks:
            ws.send_frame(0x9, b"are you there")
        for ws in socks:
            fin, op, payload = ws.recv_frame(10)
            while op != 0xA:
                fin, op, payload = ws.recv_frame(10)
            self.assertEqual(payload, b"are you there")
        for ws in socks[::10]:
            ws.send_json({"type": "ping"})
            self.assertEqual(ws.recv_type("pong")["type"], "pong")
        served = time.monotonic() - t0
        # a new socket with a token this process already verified is let in (credentials are kept) ...
        known = WS(self.c.port)
        ready, _ = known.hello(token=token, timeout=10)
        self.assertEqual(ready["type"], "ready")
        socks.append(known)
        # ... one with a token it never saw cannot be checked now: a clear "try again later", never a hang
        late = WS(self.c.port)
        t1 = time.monotonic()
        late.send_json({"type": "hello", "token": fresh})
        with self.assertRaises(Closed) as cm:
            while True:
                late.recv(20 * TIME_SCALE)
        self.assertEqual(cm.exception.code, 1013, cm.exception.reason)
        # with a bearer header the upgrade itself waits for the token check and answers 503 (retry)
        with self.assertRaises(HandshakeError) as he:
            WS(self.c.port, headers={"Authorization": "Bearer " + fresh})
        self.assertEqual(he.exception.status, 503)
        refused = time.monotonic() - t1
        print("\n1,000 sockets served while paused in %.2f s; new sockets refused in %.1f s" % (served, refused))
        self.resume()
        wait_for(lambda: self.c.get("/readyz").status == 200, 20, "ready again after NATS resumed")
        ws = WS(self.c.port)
        ready, _ = ws.hello(token=token, timeout=10)
        self.assertEqual(ready["type"], "ready")
        for w in socks + [ws]:
            w.sock.close()
