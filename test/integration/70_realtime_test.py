# SPDX-License-Identifier: MIT
"""Realtime delivery on two chatto processes: who gets which event, resume, typing, presence, limits."""
import os
import resource
import signal
import socket
import threading
import time

from harness import FAST_AUTH, Client, TestCase, external_env, http_request, wait_for
from wsclient import WS, Closed, HandshakeError, connect

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
FAST_RT = ["--realtime-ping-interval", "1s", "--realtime-idle-timeout", "3s", "--realtime-hello-timeout", "2s",
           "--realtime-typing-timeout", "1s", "--realtime-presence-interval", "1s"]


class Realtime(TestCase):
    extra = []

    def setUp(self):
        super().setUp()
        self.n = self.nats(token="rt-token")
        env = external_env(self.n)
        self.a = self.chatto(embedded=False, env=env, args=FAST_AUTH + FAST_RT + self.extra)
        self.b = self.chatto(embedded=False, env=env, args=FAST_AUTH + FAST_RT + self.extra)
        self.users = {}
        for name, proc in (("alice", self.a), ("bob", self.b), ("carol", self.a)):
            c = Client(proc)
            r = c.register(name, token=True)
            self.users[name] = (c, r.json()["user"]["id"])
        self.sockets = []

    def tearDown(self):
        for ws in self.sockets:
            try:
                ws.sock.close()
            except OSError:
                pass
        super().tearDown()

    def ws(self, name, proc=None, resume=None):
        c, _ = self.users[name]
        ws, ready = connect(proc or c.c, token=c.token, resume=resume)
        self.sockets.append(ws)
        return ws, ready

    def client(self, name, proc=None):
        c, _ = self.users[name]
        return c if proc is None else Client(proc, token=c.token)

    def uid(self, name):
        return self.users[name][1]

    def collect(self, ws, until_type, timeout=5, pred=lambda m: True):
        """All messages up to and including the first of until_type matching pred."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            m = ws.recv(max(0.01, deadline - time.monotonic()))
            out.append(m)
            if m.get("type") == until_type and pred(m):
                return out

    def test_message_events_reach_members_on_both_processes(self):
        wa, _ = self.ws("alice", self.a)
        wb, _ = self.ws("bob", self.b)
        alice, bob = self.client("alice"), self.client("bob")
        room = alice.ok(R + "CreateRoom", {"name": "Live"})["room"]["id"]
        bob.ok(R + "JoinRoom", {"roomId": room})
        m = alice.ok(M + "CreateMessage", {"roomId": room, "body": "hello from A"})["message"]
        for ws in (wa, wb):
            got = ws.recv_type("message.created")
            self.assertEqual((got["roomId"], got["message"]["id"], got["message"]["body"]),
                             (room, m["id"], "hello from A"))
            self.assertTrue(int(got["cursor"]) > 0)
        # bob (on B) edits? no: bob reacts, alice edits and deletes, threads update
        bob.ok(M + "AddReaction", {"roomId": room, "eventId": m["id"], "emoji": "🎉"})
        alice.ok(M + "UpdateMessage", {"roomId": room, "eventId": m["id"], "body": "edited"})
        reply = bob.ok(M + "CreateMessage", {"roomId": room, "body": "in thread",
                                             "threadRootEventId": m["id"]})["message"]
        bob.ok(M + "RemoveReaction", {"roomId": room, "eventId": m["id"], "emoji": "🎉"})
        alice.ok(M + "DeleteMessage", {"roomId": room, "eventId": reply["id"]})
        for ws in (wa, wb):
            seen = self.collect(ws, "message.deleted")
            types = [x["type"] for x in seen]
            for t in ("reaction.added", "message.updated", "message.created", "thread.updated", "reaction.removed"):
                self.assertIn(t, types)
            ra = next(x for x in seen if x["type"] == "reaction.added")
            self.assertEqual((ra["eventId"], ra["emoji"], ra["userId"], ra["count"]),
                             (m["id"], "🎉", self.uid("bob"), 1))
            upd = next(x for x in seen if x["type"] == "message.updated")
            self.assertEqual(upd["message"]["body"], "edited")
            th = next(x for x in seen if x["type"] == "thread.updated")
            self.assertEqual((th["threadRootEventId"], th["replyCount"]), (m["id"], 1))
            cursors = [int(x["cursor"]) for x in seen if "cursor" in x]
            self.assertEqual(cursors, sorted(cursors), "durable events arrive in order")

    def test_non_members_get_nothing(self):
        wc, _ = self.ws("carol", self.b)
        alice, bob = self.client("alice"), self.client("bob")
        room = alice.ok(R + "CreateRoom", {"name": "Closed", "visibility": "private"})["room"]["id"]
        alice.ok(R + "AddMember", {"roomId": room, "userId": self.uid("bob")})
        alice.ok(M + "CreateMessage", {"roomId": room, "body": "secret"})
        bob.ok(R + "UpdateTypingIndicator", {"roomId": room})
        # a marker in a room carol shares, posted afterwards: everything before it was delivered by then
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "marker"})
        seen = self.collect(wc, "message.created", pred=lambda m: m["message"]["body"] == "marker")
        self.assertFalse([m for m in seen if m.get("roomId") == room], seen)
        self.assertNotIn("secret", repr(seen))

    def test_membership_changes_take_effect_live(self):
        wb, _ = self.ws("bob", self.a)
        alice = self.client("alice")
        room = alice.ok(R + "CreateRoom", {"name": "Door", "visibility": "private"})["room"]["id"]
        alice.ok(R + "AddMember", {"roomId": room, "userId": self.uid("bob")})
        j = wb.recv_type("member.joined")
        self.assertEqual((j["roomId"], j["userId"]), (room, self.uid("bob")))
        alice.ok(M + "CreateMessage", {"roomId": room, "body": "while bob is in"})
        self.assertEqual(wb.recv_type("message.created")["message"]["body"], "while bob is in")
        alice.ok(R + "RemoveMember", {"roomId": room, "userId": self.uid("bob")})
        left = wb.recv_type("member.left")
        self.assertEqual(left["userId"], self.uid("bob"))
        alice.ok(M + "CreateMessage", {"roomId": room, "body": "after bob left"})
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "marker"})
        seen = self.collect(wb, "message.created", pred=lambda m: m["message"]["body"] == "marker")
        self.assertNotIn("after bob left", repr(seen))

    def test_read_state_reaches_only_the_readers_other_devices(self):
        w1, _ = self.ws("bob", self.a)
        w2, _ = self.ws("bob", self.b)
        wa, _ = self.ws("alice", self.a)
        self.client("alice").ok(M + "CreateMessage", {"roomId": "general", "body": "read me"})
        self.client("bob", self.b).ok(R + "MarkRoomAsRead", {"roomId": "general"})
        for ws in (w1, w2):
            r = ws.recv_type("read.updated")
            self.assertEqual(r["roomId"], "general")
        self.client("alice").ok(M + "CreateMessage", {"roomId": "general", "body": "marker"})
        seen = self.collect(wa, "message.created", pred=lambda m: m["message"]["body"] == "marker")
        self.assertNotIn("read.updated", [m["type"] for m in seen])

    def test_room_updates_and_archive(self):
        wb, _ = self.ws("bob", self.b)
        alice = self.client("alice")
        alice.ok(R + "UpdateRoom", {"roomId": "general", "description": "new topic"})
        self.assertEqual(wb.recv_type("room.updated")["room"]["description"], "new topic")
        alice.ok(R + "ArchiveRoom", {"roomId": "general"})
        self.assertTrue(wb.recv_type("room.archived")["room"]["archived"])

    def test_resume_without_gaps_or_duplicates(self):
        wb, ready = self.ws("bob", self.b)
        alice = self.client("alice")
        first = alice.ok(M + "CreateMessage", {"roomId": "general", "body": "before drop"})["message"]
        got = wb.recv_type("message.created")
        cursor = got["cursor"]
        wb.sock.close()  # the network drops
        missed = [alice.ok(M + "CreateMessage", {"roomId": "general", "body": "missed %d" % i})["message"]["id"]
                  for i in range(5)]
        # reconnect to the other process with the last cursor seen
        w2, r2 = self.ws("bob", self.a, resume=cursor)
        self.assertEqual(r2["cursor"], cursor)
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "live again"})
        seen = self.collect(w2, "message.created", pred=lambda m: m["message"]["body"] == "live again")
        ids = [m["message"]["id"] for m in seen if m["type"] == "message.created"]
        self.assertEqual(ids[:-1], missed)
        self.assertNotIn(first["id"], ids)

    def test_resume_from_too_old_a_cursor_resets(self):
        self.client("alice").ok(M + "CreateMessage", {"roomId": "general", "body": "x"})
        self.assertEqual(self.b.stop(), 0)
        self.b.start()  # a fresh process remembers nothing before its start
        ws = WS(self.b.port)
        self.sockets.append(ws)
        ready, before = ws.hello(token=self.users["bob"][0].token, resume="1")
        self.assertEqual([m["type"] for m in before], ["reset"])

    def test_typing_appears_and_expires(self):
        wb, _ = self.ws("bob", self.b)
        self.client("alice").ok(R + "UpdateTypingIndicator", {"roomId": "general"})
        t = wb.recv_type("typing")
        self.assertEqual((t["roomId"], [u["userId"] for u in t["users"]]), ("general", [self.uid("alice")]))
        t = wb.recv_type("typing", timeout=5)
        self.assertEqual(t["users"], [])
        r = self.client("carol").call(R + "UpdateTypingIndicator", {"roomId": "nosuchroom"})
        self.assertEqual(r.status, 404)

    def presence(self, ws, uid, want, timeout=10):
        """Read presence frames until one says uid is `want`; returns every frame read."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            m = ws.recv_type("presence", max(0.01, deadline - time.monotonic()))
            frames.append(m)
            if {u["userId"]: u["status"] for u in m["users"]}.get(uid) == want:
                return frames

    def test_presence_online_away_offline_and_crash_expiry(self):
        alice, carol = self.uid("alice"), self.uid("carol")
        wb, _ = self.ws("bob", self.b)
        wb.send_json({"type": "presence.watch", "userIds": [alice, carol]})
        snap = wb.recv_type("presence")  # the snapshot: everyone shown, at once (after bob's own, maybe)
        while len(snap["users"]) < 3:
            snap = wb.recv_type("presence")
        self.assertEqual({u["userId"]: u["status"] for u in snap["users"]},
                         {alice: "offline", carol: "offline", self.uid("bob"): "online"})
        wa, _ = self.ws("alice", self.a)  # on the other process
        self.presence(wb, alice, "online")
        got = self.client("bob").ok("chatto.api.v1.UserService/GetUser", {"userId": alice})
        self.assertEqual(got["user"]["presenceStatus"], "online")
        wa.send_json({"type": "presence", "status": "away"})
        self.presence(wb, alice, "away")
        wa.close()
        self.presence(wb, alice, "offline")
        # a crashed process's users go offline once its summaries stop (three intervals of 1 s here)
        wc, _ = self.ws("carol", self.a)
        self.presence(wb, carol, "online")
        self.a.kill9()
        t0 = time.monotonic()
        self.presence(wb, carol, "offline", timeout=15)
        self.assertGreater(time.monotonic() - t0, 1.5)  # not before its summaries stop coming

    def test_custom_status_and_do_not_disturb_reach_those_who_show_the_user(self):
        alice = self.uid("alice")
        A = "chatto.api.v1.MyAccountService/"
        wb, _ = self.ws("bob", self.b)
        wb.send_json({"type": "presence.watch", "userIds": [alice]})
        wb.recv_type("presence")
        wa, _ = self.ws("alice", self.a)
        self.presence(wb, alice, "online")
        me = self.client("alice")
        # bad input, each named
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        for body, field in [({"emoji": "x" * 17, "text": "hi"}, "emoji"), ({"emoji": "🍔", "text": ""}, "text"),
                            ({"emoji": "🍔", "text": "x" * 101}, "text"), ({"emoji": "🍔", "text": "hi", "expiresAt": past}, "expiresAt"),
                            ({"emoji": "🍔", "text": "hi", "expiresAt": "tomorrow"}, "expiresAt"), ({"text": "hi"}, "emoji")]:
            r = me.call(A + "UpdateCustomStatus", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertTrue(r.json()["message"].startswith(field + ": "), (body, r.json()))
        # a status reaches the sockets that show alice (through the other process), and every view of her
        st = me.ok(A + "UpdateCustomStatus", {"emoji": "🍔", "text": "Lunch", "expiresAt": soon})["status"]
        self.assertEqual((st["emoji"], st["text"]), ("🍔", "Lunch"))

        def heard_status(pred):
            deadline = time.monotonic() + 10
            while True:
                try:
                    wa.recv(0.01)  # (alice's socket answers the server's pings meanwhile)
                except TimeoutError:
                    pass
                try:
                    m = wb.recv(0.2)
                except TimeoutError:
                    self.assertLess(time.monotonic(), deadline, "no presence frame with the status")
                    continue
                got = {u["userId"]: u for u in m.get("users", [])}.get(alice) if m.get("type") == "presence" else None
                if got and pred(got):
                    return got
        got = heard_status(lambda u: u.get("customStatus", {}).get("text") == "Lunch")
        self.assertEqual(got["customStatus"]["emoji"], "🍔")
        view = self.client("bob").ok("chatto.api.v1.UserService/GetUser", {"userId": alice})["user"]
        self.assertEqual(view["customStatus"]["text"], "Lunch")
        self.assertEqual(me.ok(A + "DeleteCustomStatus", {}), {"status": None})
        heard_status(lambda u: "customStatus" not in u)
        # an expiry in the past of now is never shown (set one a second ahead and wait it out)
        me.ok(A + "UpdateCustomStatus", {"emoji": "📅", "text": "Meeting",
                                         "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 2)) + ".500Z"})
        deadline = time.monotonic() + 15
        while "customStatus" in self.client("bob").ok("chatto.api.v1.UserService/GetUser", {"userId": alice})["user"]:
            self.assertLess(time.monotonic(), deadline, "the status never expired")
            for ws in (wa, wb):  # (reading answers the server's pings: both sockets stay)
                try:
                    ws.recv(0.2)
                except TimeoutError:
                    pass
        # Do-Not-Disturb: chosen once, kept on the account (her devices hear it), shown to watchers as dnd
        out = me.ok(A + "UpdatePresence", {"status": "PRESENCE_STATUS_DO_NOT_DISTURB", "userSelected": True})
        self.assertEqual(out["user"]["presencePreference"], "dnd")
        while wa.recv_type("user.updated", 10)["user"]["presencePreference"] != "dnd":
            pass  # (earlier ones told her devices of her status changes)
        wa.send_json({"type": "presence", "status": "dnd"})
        self.presence(wb, alice, "dnd")
        self.assertEqual(self.client("bob").ok("chatto.api.v1.UserService/GetUser", {"userId": alice})["user"]
                         ["presenceStatus"], "dnd")
        r = me.call(A + "UpdatePresence", {"status": "busy", "userSelected": True})
        self.assertEqual(r.status, 400)
        self.assertTrue(r.json()["message"].startswith("status: "))
        me.ok(A + "UpdatePresence", {"status": "online", "userSelected": True})
        wa.send_json({"type": "presence", "status": "online"})
        self.presence(wb, alice, "online")

    def test_presence_reaches_only_those_who_show_the_user(self):
        alice = self.uid("alice")
        watcher, _ = self.ws("bob", self.b)
        watcher.send_json({"type": "presence.watch", "userIds": [alice]})
        watcher.recv_type("presence")
        bystander, _ = self.ws("carol", self.b)  # in #general with alice too, but does not show her
        bystander.send_json({"type": "presence.watch", "userIds": []})
        bystander.recv_type("presence")
        wa, _ = self.ws("alice", self.a)
        self.presence(watcher, alice, "online")
        # alice flips between away and online: the watcher gets at most one frame a second, the last word right
        t0 = time.monotonic()
        for i in range(20):
            wa.send_json({"type": "presence", "status": "away" if i % 2 == 0 else "online"})
        wa.send_json({"type": "presence", "status": "away"})
        frames = self.presence(watcher, alice, "away")
        heard = []
        while time.monotonic() - t0 < 2.5:  # anything later must not undo it
            for ws, into in ((watcher, frames), (bystander, heard)):
                try:
                    m = ws.recv(0.1)  # (answers pings too: both sockets stay alive)
                    if m.get("type") == "presence":
                        into.append(m)
                except TimeoutError:
                    pass
        self.assertEqual({u["userId"]: u["status"] for u in frames[-1]["users"]}.get(alice), "away")
        self.assertLessEqual(len(frames), 4, frames)
        # the bystander heard nothing of alice (its own user's status is always shown to it)
        for m in heard:
            self.assertEqual({u["userId"] for u in m["users"]}, {self.uid("carol")}, m)
        # a watch list is checked
        watcher.send_json({"type": "presence.watch", "userIds": "everyone"})
        self.assertEqual(watcher.recv_type("error")["type"], "error")
        watcher.send_json({"type": "presence.watch", "userIds": ["bad id!"]})
        self.assertEqual(watcher.recv_type("error")["type"], "error")

    def test_logout_and_disable_terminate_sockets(self):
        ws, _ = self.ws("carol", self.b)
        r = http_request(self.a.port, "POST", "/auth/logout", body={},
                         headers={"Authorization": "Bearer " + self.users["carol"][0].token})
        self.assertEqual(r.status, 200)
        self.assertEqual(ws.recv_type("session.terminated")["type"], "session.terminated")
        self.assertEqual(ws.expect_close(), 1008)
        # disabling bob ends his sockets on both processes
        w1, _ = self.ws("bob", self.a)
        w2, _ = self.ws("bob", self.b)
        self.client("alice").ok("chatto.admin.v1.AdminUserService/DisableUser", {"userId": self.uid("bob")})
        for w in (w1, w2):
            w.recv_type("session.terminated")
            self.assertEqual(w.expect_close(), 1008)


class Handshake(TestCase):
    def setUp(self):
        super().setUp()
        self.c = self.chatto(args=FAST_AUTH + FAST_RT + ["--realtime-max-connections", "3"])
        self.alice = Client(self.c)
        self.alice.register("alice", token=True)

    def status_of(self, **kw):
        try:
            ws = WS(self.c.port, **kw)
            ws.sock.close()
            return 101
        except HandshakeError as e:
            return e.status

    def test_bad_handshakes(self):
        self.assertEqual(self.status_of(version="8"), 426)
        try:
            WS(self.c.port, version="8")
        except HandshakeError as e:
            self.assertEqual(e.headers.get("sec-websocket-version"), "13")
        self.assertEqual(self.status_of(key="tooshort"), 400)
        self.assertEqual(self.status_of(key=""), 400)
        self.assertEqual(self.status_of(headers={"Authorization": "Bearer chatto_t_nope"}), 401)
        # a cookie-authenticated socket from another site, or with no Origin at all
        cookie = {"Cookie": "chatto_session=" + self.alice.cookie}
        self.assertEqual(self.status_of(headers=dict(cookie, Origin="http://evil.test")), 403)
        self.assertEqual(self.status_of(headers=cookie), 403)
        self.assertEqual(self.status_of(headers=dict(cookie, Origin="http://localhost:%d" % self.c.port)), 101)
        r = http_request(self.c.port, "GET", "/api/realtime")
        self.assertEqual(r.status, 400)
        r = http_request(self.c.port, "POST", "/api/realtime", body=b"")
        self.assertEqual(r.status, 405)

    def test_cookie_and_header_auth_still_send_hello(self):
        ws = WS(self.c.port, {"Authorization": "Bearer " + self.alice.token})
        ready, _ = ws.hello()
        self.assertEqual(ready["type"], "ready")
        ws.close()

    def test_bad_hello(self):
        ws = WS(self.c.port)
        ws.send_json({"type": "hello", "token": "chatto_t_bogus"})
        self.assertEqual(ws.expect_close(), 1008)
        ws = WS(self.c.port)
        ws.send_json({"type": "hello"})
        self.assertEqual(ws.expect_close(), 1008)
        ws = WS(self.c.port)
        ws.send_text("not json")
        self.assertEqual(ws.expect_close(), 1008)
        ws = WS(self.c.port)  # silence: closed after the hello timeout (2 s here)
        self.assertEqual(ws.expect_close(timeout=10), 1008)

    def test_connection_cap(self):
        socks = [WS(self.c.port) for _ in range(3)]
        self.assertEqual(self.status_of(), 503)
        socks[0].close()
        wait_for(lambda: self.status_of() == 101, 5, "a slot to free up")

    def test_dead_peer_closed(self):
        ws = WS(self.c.port)
        ws.hello(token=self.alice.token)
        # never answer pings: closed after the idle timeout (3 s here)
        deadline = time.monotonic() + 15
        code = None
        while time.monotonic() < deadline and code is None:
            try:
                fin, op, payload = ws.recv_frame(timeout=1)
                if op == 0x8:
                    code = int.from_bytes(payload[:2], "big")
            except TimeoutError:
                pass
        self.assertEqual(code, 1001)

    def test_shutdown_closes_with_1001(self):
        ws = WS(self.c.port)
        ws.hello(token=self.alice.token)
        self.c.signal(signal.SIGTERM)
        self.assertEqual(ws.expect_close(), 1001)
        self.c.proc.wait(20)
        self.assertEqual(self.c.proc.returncode, 0)


class Caps(TestCase):
    """One client cannot take every realtime slot: sockets are capped per account, per address, and while they
    have not said who they are (8,000 sockets of one user from one address used to lock everyone else out)."""

    def test_per_user_per_address_and_unauthenticated_caps(self):
        c = self.chatto(args=["--auth-password-hash", "owasp", "--realtime-max-connections-per-user", "3",
                              "--realtime-max-connections-per-ip", "5", "--realtime-max-unauthenticated", "2",
                              "--realtime-hello-timeout", "2s"])
        alice, bob = Client(c), Client(c)
        alice.register("alice", token=True)
        bob.register("bob", token=True)
        mine = []
        for _ in range(3):
            ws = WS(c.port, {"Authorization": "Bearer " + alice.token})
            ws.hello()
            mine.append(ws)
        with self.assertRaises(HandshakeError) as e:
            WS(c.port, {"Authorization": "Bearer " + alice.token})
        self.assertEqual(e.exception.status, 429)
        self.assertIn(b"for this account", e.exception.body)
        # a fourth socket that names its user only in its hello is let in, then closed with the reason
        ws = WS(c.port)
        ws.send_json({"type": "hello", "token": alice.token})
        with self.assertRaises(Closed) as cl:
            while True:
                ws.recv(10)
        self.assertEqual(cl.exception.code, 1008)
        self.assertIn("for this account", cl.exception.reason)
        # five from this address in all: bob gets two, then no more
        for _ in range(2):
            ws = WS(c.port, {"Authorization": "Bearer " + bob.token})
            ws.hello()
            mine.append(ws)
        with self.assertRaises(HandshakeError) as e:
            WS(c.port, {"Authorization": "Bearer " + bob.token})
        self.assertEqual(e.exception.status, 429)
        self.assertIn(b"from your address", e.exception.body)
        self.assertTrue(int(e.exception.headers.get("retry-after", "0")) > 0)
        for ws in mine:  # closing frees the places
            ws.close()
        wait_for(lambda: (lambda w: (w.hello(), w)[1])(WS(c.port, {"Authorization": "Bearer " + bob.token})), 10,
                 "a place to free up")
        # sockets that never say hello: at most 2 at a time, and each is closed after the hello timeout
        silent = [WS(c.port), WS(c.port)]
        with self.assertRaises(HandshakeError) as e:
            WS(c.port)
        self.assertEqual(e.exception.status, 429)
        self.assertIn(b"still to say who they are", e.exception.body)
        for ws in silent:
            self.assertEqual(ws.expect_close(10), 1008)
        wait_for(lambda: WS(c.port), 10, "the unauthenticated pool to free up")


class Load(TestCase):
    def test_thousand_connections_and_a_slow_reader(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        c = self.chatto(args=FAST_AUTH + ["--realtime-send-queue-hard", "256KiB", "--realtime-send-queue-soft",
                                          "64KiB"])
        alice = Client(c)
        alice.register("alice", token=True)
        bob = Client(c)
        bob.register("bob", token=True)
        carol = Client(c)
        carol.register("carol", token=True)
        room = alice.ok(R + "CreateRoom", {"name": "Flood"})["room"]["id"]
        bob.ok(R + "JoinRoom", {"roomId": room})
        # 1,000 idle sockets held open (carol is not in the flooded room)
        socks = []
        for i in range(1000):
            ws = WS(c.port)
            ws.hello(token=carol.token)
            socks.append(ws)
        fast, _ = connect(c, token=bob.token)
        socks.append(fast)
        self.assertEqual(http_request(c.port, "GET", "/readyz").status, 200)
        # a slow reader: tiny receive buffer, never reads
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", c.port))
        import base64
        key = base64.b64encode(os.urandom(16)).decode()
        slow.sendall(("GET /api/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n"
                      % (key, bob.token)).encode())
        payload = b'{"type":"hello"}'
        mask = os.urandom(4)
        slow.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        body = "x" * 8000
        t0 = time.monotonic()
        for i in range(400):
            alice.ok(M + "CreateMessage", {"roomId": room, "body": "%d %s" % (i, body)})
        posting = time.monotonic() - t0
        # the fast reader gets every message; the slow one was cut off, nobody else was slowed down
        got = 0
        while got < 400:
            m = fast.recv(10)
            if m["type"] == "message.created":
                got += 1
        wait_for(lambda: "bytes not read (over the hard limit)" in c.stderr(), 15, "the slow reader to be cut off")
        self.assertLess(posting, 60)
        self.assertGreaterEqual(http_request(c.port, "GET", "/readyz").status, 200)
        for ws in socks[:50] + socks[-50:]:
            ws.send_json({"type": "ping"})
            self.assertEqual(ws.recv_type("pong")["type"], "pong")
        for ws in socks:
            ws.sock.close()
        slow.close()
