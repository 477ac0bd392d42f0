# SPDX-License-Identifier: MIT
"""Voice and video calls through LiveKit (issue #18) on three chatto processes sharing one NATS, proved against
LiveKit's own server SDK from npm (livekit-server-sdk): its TokenVerifier accepts the call tokens any process
mints, webhooks it signs are accepted by every process (and tampered ones refused), and the reconciler talks to a
loopback stand-in for LiveKit's RoomService that the SDK's RoomServiceClient itself is checked against. Call state
reaches sockets on every process; the timeline shows start and end; bad input is a 400/404 naming the field."""
import json
import os
import subprocess
import time

from harness import (FAST_AUTH, NODE_MODULES, ROOT, SANITIZER, TIME_SCALE, Chatto, Client, TestCase, external_env,
                     http_request, wait_for)
from wsclient import WS

V = "chatto.api.v1.VoiceCallService/"
R = "chatto.api.v1.RoomService/"
LK_DIR = os.path.join(ROOT, "test", "integration", "livekit")
KEY, SECRET = "APIcallsTestKey", "calls-test-secret-0123456789abcdefghij"
WH_KEY, WH_SECRET = "APIwebhookKey", "webhook-secret-0123456789abcdefghij"


def lksdk(req, timeout=30):
    """Run livekit-server-sdk through test/integration/livekit/lksdk.cjs; its JSON answer."""
    if not os.path.isdir(os.path.join(NODE_MODULES, "livekit-server-sdk")):
        raise AssertionError("livekit-server-sdk is missing from test/browser/node_modules: run packaging/deps.sh test")
    p = subprocess.run(["node", os.path.join(LK_DIR, "lksdk.cjs")], input=json.dumps(req).encode(),
                       capture_output=True, env=dict(os.environ, NODE_PATH=NODE_MODULES), timeout=timeout * TIME_SCALE)
    if p.returncode != 0:
        raise AssertionError("lksdk.cjs: %s" % p.stderr.decode("utf-8", "replace"))
    return json.loads(p.stdout)


class RoomServiceStandIn:
    """test/integration/livekit/lkstub.cjs: LiveKit's RoomService Twirp API on loopback."""

    def __init__(self, key=KEY, secret=SECRET):
        self.proc = subprocess.Popen(["node", os.path.join(LK_DIR, "lkstub.cjs"), key, secret],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=dict(os.environ, NODE_PATH=NODE_MODULES))
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("lkstub.cjs did not start: %s" % self.proc.stderr.read().decode())
        self.port = json.loads(line)["port"]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def set_rooms(self, rooms):
        r = http_request(self.port, "POST", "/_state", {"rooms": rooms}, {"Content-Type": "application/json"})
        assert r.status == 200, r

    def requests(self):
        return http_request(self.port, "GET", "/_requests").json()["requests"]

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def livekit_env(url, server_id="chatto", interval="1h", **extra):
    env = {"CHATTO_LIVEKIT_ENABLED": "true", "CHATTO_LIVEKIT_URL": url, "CHATTO_LIVEKIT_API_KEY": KEY,
           "CHATTO_LIVEKIT_API_SECRET": SECRET, "CHATTO_LIVEKIT_SERVER_ID": server_id,
           "CHATTO_LIVEKIT_RECONCILE_INTERVAL": interval}
    env.update(extra)
    return env


class CallsBase(TestCase):
    INTERVAL = "1h"  # no reconciliation in the way unless a test wants it
    WEBHOOK_KEYS = True

    def setUp(self):
        super().setUp()
        self.stub = RoomServiceStandIn()
        self.addCleanup(self.stub.cleanup)
        self.n = self.nats(token="calls-test-token")
        extra = {"CHATTO_LIVEKIT_WEBHOOK_API_KEY": WH_KEY, "CHATTO_LIVEKIT_WEBHOOK_API_SECRET": WH_SECRET} \
            if self.WEBHOOK_KEYS else {}
        self.env = external_env(self.n, **livekit_env(self.stub.url, interval=self.INTERVAL, **extra))
        self.ps = [self.chatto(embedded=False, env=self.env, args=FAST_AUTH) for _ in range(3)]
        self.a, self.b, self.c = self.ps
        self.alice = Client(self.a, origin=True)
        self.alice_id = self.alice.register("alice", display="Alice Liddell", token=True).json()["user"]["id"]
        self.bob = Client(self.b)
        self.bob_id = self.bob.register("bob", token=True).json()["user"]["id"]
        self.carol = Client(self.c)
        self.carol_id = self.carol.register("carol", token=True).json()["user"]["id"]
        self.sockets = []
        self.addCleanup(lambda: [w.close() for w in self.sockets])

    def room(self, client, name, **kw):
        body = {"name": name}
        body.update(kw)
        return client.ok(R + "CreateRoom", body)["room"]["id"]

    def ws(self, client, chatto):
        w = WS(chatto.port)
        self.sockets.append(w)
        w.hello(token=client.token)
        return w

    def frame(self, w, type_, room, timeout=15):
        deadline = time.monotonic() + timeout * TIME_SCALE
        while True:
            m = w.recv(max(0.01, deadline - time.monotonic()))
            if m.get("type") == type_ and m.get("roomId") == room:
                return m

    def webhook(self, chatto, event, key=WH_KEY, secret=WH_SECRET, tamper=None, auth=None):
        signed = lksdk({"op": "webhook", "key": key, "secret": secret, "event": event})
        body = signed["body"] if tamper is None else tamper(signed["body"])
        return chatto.post("/webhooks/livekit", body.encode(), {"Content-Type": "application/webhook+json",
                                                                 "Authorization": auth or signed["auth"]})


class Calls(CallsBase):
    def test_tokens_from_every_process_pass_livekits_verifier(self):
        room = self.room(self.alice, "standup")
        self.bob.ok(R + "JoinRoom", {"roomId": room})
        j = self.alice.ok(V + "JoinCall", {"roomId": room})
        self.assertEqual((j["joined"], j.get("started")), (True, True), j)
        call_id = j["callId"]
        # a second join is no new call; bob joins through another process
        self.assertEqual(self.alice.on(self.b).ok(V + "JoinCall", {"roomId": room}).get("started"), None)
        self.assertEqual(self.bob.ok(V + "JoinCall", {"roomId": room})["callId"], call_id)
        want_room = "chatto.server_%s@%s" % (room, call_id)
        names = set()
        for who, uid, proc in ((self.alice, self.alice_id, self.a), (self.alice, self.alice_id, self.c),
                               (self.bob, self.bob_id, self.b), (self.bob, self.bob_id, self.a)):
            t = who.on(proc).ok(V + "GetCallToken", {"roomId": room})
            self.assertEqual((t["callId"], t["e2eeKey"], t["url"]), (call_id, "", self.stub.url))
            now = time.time()
            v = lksdk({"op": "verify", "key": KEY, "secret": SECRET, "token": t["token"]})
            self.assertTrue(v["ok"], v)
            cl = v["claims"]
            self.assertEqual((cl["iss"], cl["sub"]), (KEY, uid))
            self.assertEqual(cl["video"], {"roomJoin": True, "room": want_room})
            self.assertEqual(cl["exp"] - cl["nbf"], 300)
            self.assertTrue(now - 60 <= cl["nbf"] <= now + 5 and now + 240 <= cl["exp"] <= now + 305, cl)
            md = json.loads(cl["metadata"])
            self.assertEqual(md["callId"], call_id)
            self.assertEqual(md["login"], "alice" if uid == self.alice_id else "bob")
            self.assertEqual(cl["name"], "Alice Liddell" if uid == self.alice_id else "bob")
            names.add(cl["video"]["room"])
            # a token under another secret or for another key is not LiveKit's
            self.assertFalse(lksdk({"op": "verify", "key": KEY, "secret": "x" * 40, "token": t["token"]})["ok"])
            self.assertFalse(lksdk({"op": "verify", "key": "other", "secret": SECRET, "token": t["token"]})["ok"])
        self.assertEqual(names, {want_room}, "every process names the same LiveKit room")

    def test_tokens_refused_for_other_rooms_and_after_leaving(self):
        room = self.room(self.alice, "private-call", visibility="private")
        other = self.room(self.alice, "quiet")
        self.alice.ok(V + "JoinCall", {"roomId": room})
        # carol is no member of the private room: it does not exist for her
        self.err(self.carol, V + "GetCallToken", {"roomId": room}, 404, "not_found", "roomId")
        self.err(self.carol, V + "JoinCall", {"roomId": room}, 404, "not_found", "roomId")
        # a member of a room without a call, and a member not in the call, get no token
        self.err(self.alice, V + "GetCallToken", {"roomId": other}, 400, "failed_precondition", "roomId")
        self.alice.ok(R + "AddMember", {"roomId": room, "userId": self.bob_id})
        self.err(self.bob.on(self.c), V + "GetCallToken", {"roomId": room}, 400, "failed_precondition", "roomId")
        self.bob.ok(V + "JoinCall", {"roomId": room})
        self.assertTrue(self.bob.ok(V + "GetCallToken", {"roomId": room})["token"])
        # after leaving (on any process) no token
        self.assertEqual(self.bob.on(self.a).ok(V + "LeaveCall", {"roomId": room}), {"left": True})
        self.err(self.bob.on(self.c), V + "GetCallToken", {"roomId": room}, 400, "failed_precondition", "roomId")
        # a public room one has not joined
        pub = self.room(self.alice, "open")
        self.alice.ok(V + "JoinCall", {"roomId": pub})
        self.err(self.carol, V + "GetCallToken", {"roomId": pub}, 403, "permission_denied", "roomId")

    def test_call_state_reaches_sockets_on_every_process_and_the_timeline(self):
        room = self.room(self.alice, "huddle")
        self.bob.ok(R + "JoinRoom", {"roomId": room})
        wb, wc = self.ws(self.bob, self.b), self.ws(self.bob.on(self.c), self.c)
        call_id = self.alice.ok(V + "JoinCall", {"roomId": room})["callId"]
        for w in (wb, wc):
            f = self.frame(w, "call.started", room)
            self.assertEqual(f["callId"], call_id)
            self.assertEqual([p["user"]["id"] for p in f["call"]["participants"]], [self.alice_id])
            self.assertTrue(f["cursor"])
        self.bob.on(self.c).ok(V + "JoinCall", {"roomId": room})
        for w in (wb, wc):
            f = self.frame(w, "call.participant_joined", room)
            self.assertEqual((f["participantId"], len(f["call"]["participants"])), (self.bob_id, 2))
        # the room's view and the call's own answers, from a third process
        rooms = {x["room"]["id"]: x["room"] for x in self.bob.on(self.a).ok(R + "ListRooms")["rooms"]}
        ac = rooms[room]["activeCall"]
        self.assertEqual((ac["callId"], {p["userId"] for p in ac["participants"]}),
                         (call_id, {self.alice_id, self.bob_id}))
        got = self.bob.on(self.a).ok(V + "GetActiveCall", {"roomId": room})["call"]
        self.assertEqual((got["callId"], got["room"]["id"]), (call_id, room))
        self.assertEqual({p["user"]["login"] for p in got["participants"]}, {"alice", "bob"})
        self.assertEqual(len(self.bob.ok(V + "ListCallParticipants", {"roomId": room})["participants"]), 2)
        self.assertEqual([c["callId"] for c in self.bob.ok(V + "ListActiveCalls")["calls"]], [call_id])
        self.assertEqual([c["callId"] for c in self.bob.ok(V + "BatchGetActiveCalls",
                                                          {"roomIds": [room, room, "general", "nosuchroom"]})["calls"]],
                         [call_id])
        self.assertEqual(self.carol.ok(V + "ListActiveCalls")["calls"], [], "carol is not in the room")
        self.alice.on(self.b).ok(V + "LeaveCall", {"roomId": room})
        for w in (wb, wc):
            self.assertEqual(self.frame(w, "call.participant_left", room)["participantId"], self.alice_id)
        self.bob.ok(V + "LeaveCall", {"roomId": room})
        for w in (wb, wc):
            self.assertEqual(self.frame(w, "call.ended", room)["callId"], call_id)
        self.err(self.bob, V + "GetActiveCall", {"roomId": room}, 404, "not_found", "roomId")
        self.assertEqual(self.bob.ok(V + "ListCallParticipants", {"roomId": room}), {"participants": []})
        ev = self.alice.on(self.c).ok(R + "GetRoomEvents", {"roomId": room})["page"]["events"]
        kinds = [k for e in ev for k in ("callStarted", "callEnded") if k in e]
        self.assertEqual(kinds, ["callStarted", "callEnded"])
        self.assertEqual({e[k]["callId"] for e in ev for k in ("callStarted", "callEnded") if k in e}, {call_id})
        # a new call has a new id
        self.assertNotEqual(self.bob.ok(V + "JoinCall", {"roomId": room})["callId"], call_id)

    def test_leaving_the_room_leaves_its_call(self):
        room = self.room(self.alice, "leavers")
        self.bob.ok(R + "JoinRoom", {"roomId": room})
        self.alice.ok(V + "JoinCall", {"roomId": room})
        self.bob.ok(V + "JoinCall", {"roomId": room})
        self.bob.on(self.c).ok(R + "LeaveRoom", {"roomId": room})
        self.assertEqual([p["user"]["id"] for p in
                          self.alice.ok(V + "ListCallParticipants", {"roomId": room})["participants"]], [self.alice_id])
        self.bob.ok(R + "JoinRoom", {"roomId": room})
        self.bob.ok(V + "JoinCall", {"roomId": room})
        self.alice.ok(V + "LeaveCall", {"roomId": room})
        # the last one in the call removed from the room: the call ends
        self.alice.on(self.b).ok(R + "RemoveMember", {"roomId": room, "userId": self.bob_id})
        self.err(self.alice, V + "GetActiveCall", {"roomId": room}, 404, "not_found", "roomId")

    def test_concurrent_first_joins_start_one_call(self):
        import threading
        room = self.room(self.alice, "race")
        self.bob.ok(R + "JoinRoom", {"roomId": room})
        self.carol.ok(R + "JoinRoom", {"roomId": room})
        out = {}

        def join(name, client):
            out[name] = client.ok(V + "JoinCall", {"roomId": room})

        ts = [threading.Thread(target=join, args=(n, c)) for n, c in
              (("a", self.alice), ("b", self.bob), ("c", self.carol))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(len({o["callId"] for o in out.values()}), 1, out)
        self.assertEqual(sum(1 for o in out.values() if o.get("started")), 1, out)
        self.assertEqual(len(self.alice.ok(V + "ListCallParticipants", {"roomId": room})["participants"]), 3)

    def test_livekit_webhooks_signed_by_its_sdk(self):
        room = self.room(self.alice, "webhooks")
        self.bob.ok(R + "JoinRoom", {"roomId": room})
        call_id = self.alice.ok(V + "JoinCall", {"roomId": room})["callId"]
        lk_room = "chatto.server_%s@%s" % (room, call_id)
        joined = {"event": "participant_joined", "id": "EV_join_bob_1", "createdAt": str(int(time.time())),
                  "room": {"sid": "RM_1", "name": lk_room},
                  "participant": {"sid": "PA_1", "identity": self.bob_id, "name": "bob",
                                  "metadata": json.dumps({"login": "bob", "callId": call_id})}}
        # the SDK's own receiver accepts what the test sends (same signing as LiveKit's server)
        signed = lksdk({"op": "webhook", "key": WH_KEY, "secret": WH_SECRET, "event": joined})
        self.assertTrue(lksdk({"op": "receive", "key": WH_KEY, "secret": WH_SECRET, "body": signed["body"],
                               "auth": signed["auth"]})["ok"])
        # wrong key, wrong secret, tampered body, no header, the API key instead of the webhook key: 401
        self.assertEqual(self.webhook(self.a, joined, key="APIother").status, 401)
        self.assertEqual(self.webhook(self.a, joined, secret="y" * 40).status, 401)
        self.assertEqual(self.webhook(self.b, joined, tamper=lambda b: b.replace("bob", "eve")).status, 401)
        self.assertEqual(self.webhook(self.c, joined, auth=" ").status, 401)
        self.assertEqual(self.webhook(self.c, joined, key=KEY, secret=SECRET).status, 401)
        expired = lksdk({"op": "webhook", "key": WH_KEY, "secret": WH_SECRET, "event": joined, "ttl": -10})
        self.assertEqual(self.a.post("/webhooks/livekit", expired["body"].encode(),
                                     {"Authorization": expired["auth"]}).status, 401)
        self.assertEqual(len(self.bob.ok(V + "ListCallParticipants", {"roomId": room})["participants"]), 1)
        # accepted by every process; the retried event is recorded once
        rec = []
        for p in self.ps:
            r = self.a.post("/webhooks/livekit", signed["body"].encode(), {"Authorization": signed["auth"]}) \
                if p is self.a else p.post("/webhooks/livekit", signed["body"].encode(),
                                           {"Authorization": signed["auth"]})
            self.assertEqual(r.status, 200, r)
            rec.append(r.json()["recorded"])
        self.assertEqual(rec, [True, False, False])
        ps = self.bob.ok(V + "ListCallParticipants", {"roomId": room})["participants"]
        self.assertEqual(sorted(p["user"]["id"] for p in ps), sorted([self.alice_id, self.bob_id]))
        # another server's room, an unknown event, a room that is not a call: acknowledged and ignored
        other = dict(joined, id="EV_other", room={"name": "elsewhere.server_%s@%s" % (room, call_id)},
                     participant={"identity": self.carol_id})
        r = self.webhook(self.b, other)
        self.assertEqual((r.status, r.json().get("recorded")), (200, None))
        self.assertEqual(self.webhook(self.b, dict(joined, id="EV_x", event="track_published")).status, 200)
        self.assertEqual(len(self.bob.ok(V + "ListCallParticipants", {"roomId": room})["participants"]), 2)
        # a join for an older call of this room changes nothing
        old = dict(joined, id="EV_old", room={"name": "chatto.server_%s@%s" % (room, "0000000000000000000a")},
                   participant={"identity": self.carol_id})
        self.assertEqual(self.webhook(self.c, old).json()["recorded"], False)
        # left, then the room finished: the call ends, on every process's view
        left = dict(joined, id="EV_left_bob", event="participant_left")
        self.assertEqual(self.webhook(self.c, left).json()["recorded"], True)
        self.assertEqual([p["user"]["id"] for p in
                          self.bob.ok(V + "ListCallParticipants", {"roomId": room})["participants"]], [self.alice_id])
        handoff = dict(joined, id="EV_dup", event="participant_left",
                       participant={"identity": self.alice_id, "disconnectReason": "DUPLICATE_IDENTITY"})
        self.assertEqual(self.webhook(self.a, handoff).json().get("recorded"), None, "a handoff is no leave")
        fin = {"event": "room_finished", "id": "EV_fin", "room": {"name": lk_room}}
        self.assertEqual(self.webhook(self.a, fin).json()["recorded"], True)
        self.assertEqual(self.webhook(self.b, fin).json()["recorded"], False)
        self.err(self.alice.on(self.c), V + "GetActiveCall", {"roomId": room}, 404, "not_found", "roomId")

    def test_bad_input_is_a_clear_4xx(self):
        room = self.room(self.alice, "inputs")
        for m in ("JoinCall", "GetCallToken", "LeaveCall", "GetActiveCall", "ListCallParticipants"):
            self.err(self.alice, V + m, {}, 400, "invalid_argument", "roomId")
            self.err(self.alice, V + m, {"roomId": 7}, 400, "invalid_argument", "roomId")
            self.err(self.alice, V + m, {"roomId": "a.b"}, 400, "invalid_argument", "roomId")
            self.err(self.alice, V + m, {"roomId": "x" * 65}, 400, "invalid_argument", "roomId")
            self.err(self.alice, V + m, {"roomId": "nosuchroom"}, 404, "not_found", "roomId")
            r = self.alice.call(V + m, None, {"Content-Type": "text/plain"})
            self.assertEqual(r.status, 415)
        self.err(self.alice, V + "BatchGetActiveCalls", {}, 400, "invalid_argument", "roomIds")
        self.err(self.alice, V + "BatchGetActiveCalls", {"roomIds": []}, 400, "invalid_argument", "roomIds")
        self.err(self.alice, V + "BatchGetActiveCalls", {"roomIds": [room] * 101}, 400, "invalid_argument", "roomIds")
        self.err(self.alice, V + "BatchGetActiveCalls", {"roomIds": [""]}, 400, "invalid_argument", "roomIds")
        self.assertEqual(self.alice.ok(V + "BatchGetActiveCalls", {"roomIds": ["a.b", "*"]}), {"calls": []})
        self.assertEqual(Client(self.a).call(V + "ListActiveCalls", {}).status, 401)
        # webhooks: a signed body that is no event, and bodies that are too big
        for body in ("[]", "{}", '{"event": 5}', '{"event": "participant_joined", "room": "x"}', "not json"):
            r = self.webhook(self.a, body)
            self.assertEqual(r.status, 400, (body, r))
        r = self.a.post("/webhooks/livekit", b"{" + b" " * (70 * 1024) + b"}", {"Authorization": "x"})
        self.assertIn(r.status, (401, 413))
        for auth in ("", "Bearer", "a.b", "a.b.c", "x" * 20000, "eyJhbGciOiJub25lIn0.e30."):
            r = self.a.post("/webhooks/livekit", b"{}", {"Authorization": auth} if auth else {})
            self.assertEqual(r.status, 401, (auth, r))

    def test_another_server_id_on_the_same_nats_is_refused(self):
        c = Chatto(args=FAST_AUTH, env=dict(self.env, CHATTO_LIVEKIT_SERVER_ID="another"), embedded=False)
        try:
            c.start(wait_ready=False)
            c.proc.wait(30 * TIME_SCALE)
            self.assertEqual(c.proc.returncode, 2, c.stderr())
            self.assertIn("livekit.server_id differs from the value used by the running Chatto process", c.stderr())
        finally:
            c.cleanup()


class CallsOnSeparateServers(TestCase):
    def test_another_server_id_with_its_own_nats_names_other_rooms(self):
        names = []
        for sid in ("alpha", "beta"):
            n = self.nats(token="calls-%s" % sid)
            p = self.chatto(embedded=False, env=external_env(n, **livekit_env("wss://lk.example", server_id=sid)),
                            args=FAST_AUTH)
            u = Client(p)
            u.register("dora", token=True)
            call_id = u.ok(V + "JoinCall", {"roomId": "general"})["callId"]
            t = u.ok(V + "GetCallToken", {"roomId": "general"})
            claims = lksdk({"op": "verify", "key": KEY, "secret": SECRET, "token": t["token"]})["claims"]
            self.assertEqual(claims["video"]["room"], "%s.server_general@%s" % (sid, call_id))
            names.append(claims["video"]["room"])
        self.assertNotEqual(names[0], names[1])

    def test_disabled_calls_answer_as_upstream(self):
        p = self.chatto(args=FAST_AUTH)
        u = Client(p)
        u.register("erin", token=True)
        self.assertEqual(u.ok(V + "ListActiveCalls"), {"calls": []})
        self.assertEqual(u.ok(V + "BatchGetActiveCalls", {"roomIds": ["general"]}), {"calls": []})
        self.assertEqual(u.ok(V + "JoinCall", {"roomId": "general"}), {"joined": False})
        self.assertEqual(u.ok(V + "LeaveCall", {"roomId": "general"}), {"left": False})
        self.assertEqual(u.ok(V + "ListCallParticipants", {"roomId": "general"}), {"participants": []})
        r = u.call(V + "GetCallToken", {"roomId": "general"})
        self.assertEqual((r.status, r.json()["code"]), (400, "failed_precondition"))
        r = u.call(V + "GetActiveCall", {"roomId": "general"})
        self.assertEqual((r.status, r.json()["code"]), (404, "not_found"))
        r = u.call(V + "JoinCall", {"roomId": "nosuchroom"})
        self.assertEqual((r.status, r.json()["code"]), (404, "not_found"))
        self.assertEqual(p.post("/webhooks/livekit", b"{}", {"Authorization": "x"}).status, 404)


class Reconciler(CallsBase):
    INTERVAL = "1s"

    def holders(self):
        return [p for p in self.ps if p.proc.poll() is None and
                p.stderr().count("calls: now reconciling") > p.stderr().count("calls: no longer reconciling")]

    def test_stand_in_answers_livekits_room_service_client(self):
        self.stub.set_rooms({"chatto.server_r1@c1": [{"identity": "u1", "metadata": "{}"}]})
        rooms = lksdk({"op": "roomsvc", "url": self.stub.url, "key": KEY, "secret": SECRET, "method": "ListRooms"})
        self.assertTrue(rooms["ok"], rooms)
        self.assertEqual([r["name"] for r in rooms["rooms"]], ["chatto.server_r1@c1"])
        ps = lksdk({"op": "roomsvc", "url": self.stub.url, "key": KEY, "secret": SECRET,
                    "method": "ListParticipants", "room": "chatto.server_r1@c1"})
        self.assertEqual([p["identity"] for p in ps["participants"]], ["u1"])
        gone = lksdk({"op": "roomsvc", "url": self.stub.url, "key": KEY, "secret": SECRET,
                      "method": "ListParticipants", "room": "nope"})
        self.assertFalse(gone["ok"])
        bad = lksdk({"op": "roomsvc", "url": self.stub.url, "key": KEY, "secret": "z" * 40, "method": "ListRooms"})
        self.assertFalse(bad["ok"])
        # what the SDK sent and what chatto's reconciler sent look alike: same paths, grants and body fields
        reqs = self.stub.requests()
        sdk = [r for r in reqs if "authError" not in r]

        def shape(r):
            return (r["method"], tuple(sorted(r.get("body", {}))),
                    tuple(sorted(k for k, v in r.get("grant", {}).items() if v)))
        wait_for(lambda: any(r["method"] == "ListRooms" for r in self.stub.requests()[len(reqs):]),
                 30 * TIME_SCALE, "chatto's reconciler to list rooms")
        ours = {shape(r) for r in self.stub.requests()[len(reqs):] if r["method"] == "ListRooms"}
        self.assertEqual(ours, {shape(r) for r in sdk if r["method"] == "ListRooms"})
        self.assertTrue(all(r["httpMethod"] == "POST" and r["contentType"].startswith("application/json")
                            for r in self.stub.requests()))

    def test_reconciliation_corrects_missed_webhooks_and_survives_the_holder(self):
        room = self.room(self.alice, "reconcile")
        self.bob.ok(R + "JoinRoom", {"roomId": room})
        wait_for(lambda: len(self.holders()) == 1, 30 * TIME_SCALE, "one process to take the reconciler lease")
        call_id = self.alice.ok(V + "JoinCall", {"roomId": room})["callId"]
        lk_room = "chatto.server_%s@%s" % (room, call_id)
        # LiveKit has alice and bob (bob's join webhook was lost), and a participant that is no user of ours
        self.stub.set_rooms({lk_room: [{"identity": self.alice_id}, {"identity": self.bob_id},
                                       {"identity": "egress-1"}],
                             "elsewhere.server_%s@%s" % (room, call_id): [{"identity": self.carol_id}]})

        def parts():
            return sorted(p["user"]["id"] for p in
                          self.carol.on(self.c).call(V + "ListCallParticipants", {"roomId": room}).json()
                          .get("participants", []))
        self.carol.ok(R + "JoinRoom", {"roomId": room})
        wait_for(lambda: parts() == sorted([self.alice_id, self.bob_id]), 30 * TIME_SCALE, "bob's join recorded")
        # kill the holder: another process takes over within the lease and carries on
        [holder] = self.holders()
        holder.kill9()
        self.ps = [p for p in self.ps if p is not holder]
        self.alice = self.alice.on(self.ps[0])
        self.bob = self.bob.on(self.ps[1])
        self.carol = self.carol.on(self.ps[0])
        wait_for(lambda: len(self.holders()) == 1, 30 * TIME_SCALE, "another process to take the lease")
        # alice's leave webhook was lost
        self.stub.set_rooms({lk_room: [{"identity": self.bob_id}]})
        wait_for(lambda: parts() == [self.bob_id], 30 * TIME_SCALE, "alice's leave recorded")
        # the LiveKit room is gone (room_finished lost): the call ends
        self.stub.set_rooms({})
        wait_for(lambda: self.alice.call(V + "GetActiveCall", {"roomId": room}).status == 404, 30 * TIME_SCALE,
                 "the call to end")
        ev = self.alice.ok(R + "GetRoomEvents", {"roomId": room})["page"]["events"]
        self.assertEqual([k for e in ev for k in ("callStarted", "callEnded") if k in e], ["callStarted", "callEnded"])
