# SPDX-License-Identifier: MIT
"""The chat core on two chatto processes sharing one NATS server: every call, its bad inputs and its rules."""
import json
import os
import threading
import time

from harness import FAST_AUTH, Client, TestCase, external_env, grep_tree, http_request, wait_for

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
T = "chatto.api.v1.ThreadService/"
ADMIN = "chatto.admin.v1.AdminUserService/"


class Chat(TestCase):
    def setUp(self):
        super().setUp()
        self.n = self.nats(token="chat-test-token")
        env = external_env(self.n)
        self.a = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        self.b = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        self.alice = Client(self.a)  # the owner
        self.alice_id = self.alice.register("alice").json()["user"]["id"]
        self.bob = Client(self.b)
        self.bob_id = self.bob.register("bob").json()["user"]["id"]
        self.carol = Client(self.a)
        self.carol_id = self.carol.register("carol").json()["user"]["id"]

    def room(self, client, name, **kw):
        body = {"name": name}
        body.update(kw)
        return client.ok(R + "CreateRoom", body)["room"]

    def post(self, client, room, body, **kw):
        req = {"roomId": room, "body": body}
        req.update(kw)
        return client.ok(M + "CreateMessage", req)["message"]

    def events(self, client, room, **kw):
        req = {"roomId": room}
        req.update(kw)
        return client.ok(R + "GetRoomEvents", req)["page"]

    # ---- rooms ----

    def test_general_room_everyone_joins(self):
        for c in (self.alice, self.bob, self.carol):
            rooms = {x["room"]["id"]: x for x in c.ok(R + "ListRooms")["rooms"]}
            self.assertTrue(rooms["general"]["joined"])
            self.assertEqual(rooms["general"]["room"]["name"], "general")
        members = self.alice.ok(R + "ListMembers", {"roomId": "general"})["members"]
        self.assertEqual({m["userId"] for m in members}, {self.alice_id, self.bob_id, self.carol_id})

    def test_create_room_and_rules(self):
        r = self.room(self.alice, "Design Team", description="Pixels", visibility="public")
        self.assertEqual((r["name"], r["description"], r["archived"]), ("Design Team", "Pixels", False))
        # unique case-insensitively, on either process
        self.err(self.bob, R + "CreateRoom", {"name": "design team"}, 409, "already_exists", "name")
        self.err(self.bob, R + "CreateRoom", {"name": "#DESIGN TEAM"}, 409, "already_exists", "name")
        self.err(self.bob, R + "CreateRoom", {"name": ""}, 400, "invalid_argument", "name")
        self.err(self.bob, R + "CreateRoom", {"name": "x" * 81}, 400, "invalid_argument", "name")
        self.err(self.bob, R + "CreateRoom", {"name": "tab\there"}, 400, "invalid_argument", "name")
        self.err(self.bob, R + "CreateRoom", {"name": "ok", "description": "d" * 501}, 400, "invalid_argument",
                 "description")
        self.err(self.bob, R + "CreateRoom", {"name": "ok", "visibility": "secret"}, 400, "invalid_argument",
                 "visibility")
        self.err(self.bob, R + "CreateRoom", {}, 400, "invalid_argument", "name")
        self.assertEqual(self.room(self.bob, "é" * 80)["name"], "é" * 80)

    def test_concurrent_room_creation_one_name_one_room(self):
        results = []

        def go(c):
            results.append(c.call(R + "CreateRoom", {"name": "Race"}).status)

        ts = [threading.Thread(target=go, args=(Client(p, cookie=self.alice.cookie),)) for p in (self.a, self.b) * 10]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(results), [200] + [409] * 19)

    def test_update_archive_and_read_only(self):
        r = self.room(self.alice, "Ops")
        self.bob.ok(R + "JoinRoom", {"roomId": r["id"]})
        self.err(self.bob, R + "UpdateRoom", {"roomId": r["id"], "name": "Mine"}, 403, "permission_denied")
        u = self.alice.ok(R + "UpdateRoom", {"roomId": r["id"], "name": "Operations", "description": "24/7"})
        self.assertEqual((u["room"]["name"], u["room"]["description"]), ("Operations", "24/7"))
        # the old name is free again, the new one is taken
        self.room(self.bob, "ops")
        self.err(self.bob, R + "CreateRoom", {"name": "operations"}, 409, "already_exists")
        self.err(self.alice, R + "UpdateRoom", {"roomId": r["id"]}, 400, "invalid_argument")
        self.assertTrue(self.alice.ok(R + "ArchiveRoom", {"roomId": r["id"]})["room"]["archived"])
        # archived = read-only, on the other process too
        self.err(self.bob.on(self.a), M + "CreateMessage", {"roomId": r["id"], "body": "hi"}, 400,
                 "failed_precondition")
        self.assertTrue(self.events(self.bob, r["id"])["events"][-1].get("roomArchived"))
        self.alice.ok(R + "UnarchiveRoom", {"roomId": r["id"]})
        self.post(self.bob, r["id"], "back again")

    def test_private_rooms_invisible_and_unjoinable(self):
        r = self.room(self.alice, "Secret", visibility="private")
        ids = [x["room"]["id"] for x in self.bob.ok(R + "ListRooms")["rooms"]]
        self.assertNotIn(r["id"], ids)
        for m, body in ((R + "JoinRoom", {"roomId": r["id"]}), (R + "GetRoomEvents", {"roomId": r["id"]}),
                        (R + "ListMembers", {"roomId": r["id"]}),
                        (M + "CreateMessage", {"roomId": r["id"], "body": "x"})):
            self.err(self.bob, m, body, 404, "not_found")
        # a member adds bob: now he sees it, posts, and can leave
        self.alice.ok(R + "AddMember", {"roomId": r["id"], "userId": self.bob_id})
        self.assertIn(r["id"], [x["room"]["id"] for x in self.bob.ok(R + "ListRooms")["rooms"]])
        self.post(self.bob, r["id"], "thanks")
        self.assertEqual(self.bob.ok(R + "LeaveRoom", {"roomId": r["id"]}), {"left": True})
        self.err(self.bob, R + "GetRoomEvents", {"roomId": r["id"]}, 404, "not_found")

    def test_membership_admin_rules(self):
        r = self.room(self.alice, "Team")
        self.bob.ok(R + "JoinRoom", {"roomId": r["id"]})
        self.bob.ok(R + "JoinRoom", {"roomId": r["id"]})  # idempotent
        self.err(self.bob, R + "AddMember", {"roomId": r["id"], "userId": self.carol_id}, 403, "permission_denied")
        self.err(self.bob, R + "RemoveMember", {"roomId": r["id"], "userId": self.alice_id}, 403,
                 "permission_denied")
        self.err(self.alice, R + "AddMember", {"roomId": r["id"], "userId": "nosuchuser"}, 404, "not_found")
        self.alice.ok(R + "RemoveMember", {"roomId": r["id"], "userId": self.bob_id})
        self.err(self.bob, M + "CreateMessage", {"roomId": r["id"], "body": "x"}, 403, "permission_denied")
        self.err(self.alice, R + "RemoveMember", {"roomId": r["id"], "userId": self.bob_id}, 404, "not_found")
        page = self.events(self.alice, r["id"])
        kinds = [next(k for k in e if k in ("roomCreated", "userJoinedRoom", "userLeftRoom", "messagePosted"))
                 for e in page["events"]]
        self.assertEqual(kinds, ["roomCreated", "userJoinedRoom", "userLeftRoom"])
        self.err(self.carol, R + "LeaveRoom", {"roomId": r["id"]}, 403, "permission_denied")

    # ---- DMs ----

    def test_start_dm_returns_the_one_dm(self):
        d1 = self.alice.ok(R + "StartDM", {"participantIds": [self.bob_id]})["room"]
        d2 = self.bob.ok(R + "StartDM", {"participantIds": [self.alice_id, self.bob_id]})["room"]
        self.assertEqual(d1["id"], d2["id"])
        self.assertTrue(d1["isDm"])
        self.assertEqual(sorted(d1["participantIds"]), sorted([self.alice_id, self.bob_id]))
        g = self.alice.ok(R + "StartDM", {"participantIds": [self.bob_id, self.carol_id]})["room"]
        self.assertNotEqual(g["id"], d1["id"])
        self.post(self.bob, d1["id"], "psst")
        self.err(self.carol, R + "GetRoomEvents", {"roomId": d1["id"]}, 404, "not_found")
        self.err(self.carol, R + "JoinRoom", {"roomId": d1["id"]}, 404, "not_found")
        self.err(self.alice, R + "StartDM", {"participantIds": []}, 400, "invalid_argument", "participantIds")
        self.err(self.alice, R + "StartDM", {"participantIds": ["nosuchuser"]}, 404, "not_found")
        self.err(self.alice, R + "StartDM", {"participantIds": ["a.b"]}, 400, "invalid_argument", "participantIds")
        self.err(self.alice, R + "UpdateRoom", {"roomId": d1["id"], "name": "x"}, 400, "failed_precondition")

    def test_concurrent_start_dm_creates_exactly_one(self):
        ids = []

        def go(c, other):
            r = c.call(R + "StartDM", {"participantIds": [other]})
            ids.append(r.json()["room"]["id"] if r.status == 200 else r.status)

        ts = []
        for i in range(10):
            ts.append(threading.Thread(target=go, args=(Client(self.a if i % 2 else self.b, cookie=self.carol.cookie),
                                                        self.bob_id)))
            ts.append(threading.Thread(target=go, args=(Client(self.b if i % 2 else self.a, cookie=self.bob.cookie),
                                                        self.carol_id)))
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(len(set(ids)), 1, ids)
        dms = [x for x in self.bob.ok(R + "ListRooms")["rooms"] if x["room"]["isDm"]]
        self.assertEqual(len(dms), 1)

    # ---- messages ----

    def test_messages_create_get_edit_delete(self):
        m = self.post(self.alice, "general", "Hello @bob and @nobody, see @Carol.")
        self.assertEqual(m["actorId"], self.alice_id)
        self.assertEqual(sorted(m["mentions"]), sorted([self.bob_id, self.carol_id]))
        got = self.bob.ok(M + "GetMessage", {"roomId": "general", "eventId": m["id"]})["message"]
        self.assertEqual(got["body"], m["body"])
        self.assertFalse(got["edited"])
        self.err(self.bob, M + "UpdateMessage", {"roomId": "general", "eventId": m["id"], "body": "mine"}, 403,
                 "permission_denied")
        e = self.alice.ok(M + "UpdateMessage", {"roomId": "general", "eventId": m["id"], "body": "Edited"})
        self.assertEqual((e["message"]["body"], e["message"]["edited"]), ("Edited", True))
        self.assertIn("updatedAt", e["message"])
        got = self.bob.ok(M + "GetMessage", {"roomId": "general", "eventId": m["id"]})["message"]
        self.assertEqual(got["body"], "Edited")
        self.err(self.carol, M + "DeleteMessage", {"roomId": "general", "eventId": m["id"]}, 403,
                 "permission_denied")
        self.assertEqual(self.alice.ok(M + "DeleteMessage", {"roomId": "general", "eventId": m["id"]}),
                         {"deleted": True})
        tomb = self.bob.ok(M + "GetMessage", {"roomId": "general", "eventId": m["id"]})["message"]
        self.assertNotIn("body", tomb)
        self.assertIn("deletedAt", tomb)
        # the tombstone stays in history, in place
        ev = [e for e in self.events(self.bob, "general")["events"] if e["id"] == m["id"]]
        self.assertEqual(len(ev), 1)
        self.assertIn("deletedAt", ev[0]["messagePosted"]["message"])
        self.err(self.alice, M + "UpdateMessage", {"roomId": "general", "eventId": m["id"], "body": "x"}, 404,
                 "not_found")
        self.err(self.alice, M + "DeleteMessage", {"roomId": "general", "eventId": m["id"]}, 404, "not_found")
        batch = self.bob.ok(M + "BatchGetMessages", {"roomId": "general", "eventIds": [m["id"], "nosuch"]})
        self.assertEqual([x["id"] for x in batch["messages"]], [m["id"]])

    def test_room_admin_may_delete_others_messages(self):
        r = self.room(self.alice, "Moderated")
        self.bob.ok(R + "JoinRoom", {"roomId": r["id"]})
        m = self.post(self.bob, r["id"], "spam spam")
        self.alice.ok(M + "DeleteMessage", {"roomId": r["id"], "eventId": m["id"]})

    def test_body_validation(self):
        self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": ""}, 400, "invalid_argument", "body")
        self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": "   \n "}, 400, "invalid_argument",
                 "body")
        self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": "x" * 10001}, 400,
                 "invalid_argument", "body")
        self.post(self.alice, "general", "x" * 10000)
        self.post(self.alice, "general", "😀" * 2500)  # 10,000 bytes of 4-byte characters
        self.err(self.alice, M + "CreateMessage", {"roomId": "general"}, 400, "invalid_argument", "body")
        self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": 5}, 400, "invalid_argument", "body")
        # invalid UTF-8 straight in the JSON bytes
        raw = b'{"roomId":"general","body":"bad \xff\xfe bytes"}'
        r = self.a.post("/api/connect/" + M + "CreateMessage", raw, self.alice.headers(
            {"Content-Type": "application/json"}))
        self.assertEqual((r.status, r.json()["code"]), (400, "invalid_argument"), r)
        self.assertIn("body", r.json()["message"])
        # files: an id that is not a file of the author's in this room (65_assets covers the rest)
        self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": "x",
                                                   "attachmentAssetIds": ["abc"]}, 400, "invalid_argument",
                 "attachmentAssetIds")

    def test_ids_validated_before_nats(self):
        for bad in ("a.b", "a*", ">", "a b", "x" * 65, "", "gen\u00e9ral", "a\tb"):
            for m, body in ((M + "CreateMessage", {"roomId": bad, "body": "x"}),
                            (R + "GetRoomEvents", {"roomId": bad}), (R + "JoinRoom", {"roomId": bad}),
                            (M + "GetMessage", {"roomId": "general", "eventId": bad}),
                            (M + "AddReaction", {"roomId": "general", "eventId": bad, "emoji": "x"})):
                r = self.alice.call(m, body)
                self.assertEqual(r.status, 400, (m, bad, r))
                self.assertEqual(r.json()["code"], "invalid_argument")

    def test_idempotency_key_stores_once(self):
        h = {"Idempotency-Key": "retry-123"}
        r1 = self.alice.call(M + "CreateMessage", {"roomId": "general", "body": "once"}, h)
        r2 = Client(self.b, cookie=self.alice.cookie).call(M + "CreateMessage",
                                                          {"roomId": "general", "body": "once"}, h)
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertEqual(r1.json()["message"]["id"], r2.json()["message"]["id"])
        bodies = [e["messagePosted"]["message"]["body"] for e in self.events(self.bob, "general")["events"]
                  if "messagePosted" in e]
        self.assertEqual(bodies.count("once"), 1)
        # the same key from another user is another message
        r3 = self.bob.call(M + "CreateMessage", {"roomId": "general", "body": "once"}, h)
        self.assertNotEqual(r3.json()["message"]["id"], r1.json()["message"]["id"])
        r = self.alice.call(M + "CreateMessage", {"roomId": "general", "body": "x"}, {"Idempotency-Key": "a b"})
        self.assertEqual(r.status, 400)

    # ---- threads and reactions ----

    def test_threads(self):
        root = self.post(self.alice, "general", "Thread root")
        replies = [self.post(self.bob if i % 2 else self.carol, "general", "reply %d" % i,
                             threadRootEventId=root["id"]) for i in range(5)]
        got = self.alice.ok(M + "GetMessage", {"roomId": "general", "eventId": root["id"]})["message"]
        self.assertEqual(got["thread"]["replyCount"], 5)
        self.assertEqual(got["thread"]["lastReplyAt"], replies[-1]["createdAt"])
        # replies are not in the room's timeline
        tl = [e["id"] for e in self.events(self.alice, "general")["events"]]
        self.assertIn(root["id"], tl)
        self.assertFalse(set(r["id"] for r in replies) & set(tl))
        page = self.bob.ok(T + "GetThreadReplies", {"roomId": "general", "threadRootEventId": root["id"],
                                                    "limit": 2})
        self.assertEqual(page["root"]["id"], root["id"])
        self.assertEqual([e["id"] for e in page["page"]["events"]], [r["id"] for r in replies[3:]])
        self.assertTrue(page["page"]["hasOlder"])
        older = self.bob.ok(T + "GetThreadReplies", {"roomId": "general", "threadRootEventId": root["id"],
                                                     "limit": 10, "before": page["page"]["startCursor"]})
        self.assertEqual([e["id"] for e in older["page"]["events"]], [r["id"] for r in replies[:3]])
        self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": "x",
                                                   "threadRootEventId": replies[0]["id"]}, 400, "invalid_argument",
                 "threadRootEventId")
        self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": "x",
                                                   "threadRootEventId": "nosuchmessage"}, 404, "not_found")
        self.alice.ok(M + "DeleteMessage", {"roomId": "general", "eventId": replies[4]["id"]})
        got = self.alice.ok(M + "GetMessage", {"roomId": "general", "eventId": root["id"]})["message"]
        self.assertEqual(got["thread"]["replyCount"], 4)
        q = self.post(self.bob, "general", "quoting", inReplyTo=root["id"])
        self.assertEqual(q["inReplyTo"], root["id"])
        # the reply-quote is a room message (not in the thread), seen with its inReplyTo through the other process
        got = Client(self.a, cookie=self.carol.cookie).ok(M + "GetMessage", {"roomId": "general", "eventId": q["id"]})
        self.assertEqual((got["message"]["inReplyTo"], got["message"].get("threadRootEventId")), (root["id"], None))
        other = self.room(self.alice, "Elsewhere")["id"]
        elsewhere = self.post(self.alice, other, "not in general")
        for bad, status, code in [("nosuchmessage0000000", 404, "not_found"), (elsewhere["id"], 404, "not_found"),
                                  ("../etc", 400, "invalid_argument")]:
            self.err(self.alice, M + "CreateMessage", {"roomId": "general", "body": "x", "inReplyTo": bad}, status, code,
                     "inReplyTo")

    def test_reactions(self):
        m = self.post(self.alice, "general", "react to me")
        self.alice.ok(M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": "👍"})
        r = self.bob.ok(M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": "👍"})["message"]
        self.assertEqual(r["reactions"], [{"emoji": "👍", "count": 2, "hasReacted": True}])
        self.bob.ok(M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": "👍"})  # idempotent
        c = self.carol.ok(M + "GetMessage", {"roomId": "general", "eventId": m["id"]})["message"]
        self.assertEqual(c["reactions"], [{"emoji": "👍", "count": 2, "hasReacted": False}])
        r = self.alice.ok(M + "RemoveReaction", {"roomId": "general", "eventId": m["id"], "emoji": "👍"})["message"]
        self.assertEqual(r["reactions"], [{"emoji": "👍", "count": 1, "hasReacted": False}])
        self.err(self.alice, M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": ""}, 400,
                 "invalid_argument", "emoji")
        self.err(self.alice, M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": "x" * 33}, 400,
                 "invalid_argument", "emoji")
        self.err(self.alice, M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": "a b"}, 400,
                 "invalid_argument", "emoji")
        for i in range(20):
            self.carol.ok(M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": ":e%d:" % i})
        self.err(self.carol, M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": ":e20:"}, 429,
                 "resource_exhausted", "emoji")
        self.bob.ok(M + "AddReaction", {"roomId": "general", "eventId": m["id"], "emoji": ":e20:"})

    # ---- history ----

    def test_history_paging_backwards_forwards_and_around(self):
        r = self.room(self.alice, "Paging")
        posted = [self.post(self.alice, r["id"], "m%02d" % i)["id"] for i in range(25)]
        seen, cursor = [], None
        while True:
            req = {"roomId": r["id"], "limit": 10}
            if cursor:
                req["before"] = cursor
            page = Client(self.b, cookie=self.alice.cookie).ok(R + "GetRoomEvents", req)["page"]
            seen = [e["id"] for e in page["events"]] + seen
            if not page["hasOlder"]:
                break
            cursor = page["startCursor"]
        msgs = [i for i in seen if i in posted]
        self.assertEqual(msgs, posted)
        self.assertEqual(len(seen), len(set(seen)))
        # forwards from the oldest
        page = self.alice.ok(R + "GetRoomEvents", {"roomId": r["id"], "after": "0", "limit": 3})["page"]
        self.assertFalse(page["hasOlder"])
        self.assertTrue(page["hasNewer"])
        # around a message
        page = self.alice.ok(R + "GetRoomEventsAround", {"roomId": r["id"], "eventId": posted[12], "limit": 5})
        ids = [e["id"] for e in page["page"]["events"]]
        self.assertEqual(ids, posted[10:15])
        self.err(self.alice, R + "GetRoomEvents", {"roomId": r["id"], "limit": 101}, 400, "invalid_argument", "limit")
        self.err(self.alice, R + "GetRoomEvents", {"roomId": r["id"], "before": "abc"}, 400, "invalid_argument",
                 "before")
        self.err(self.alice, R + "GetRoomEvents", {"roomId": r["id"], "before": "5", "after": "1"}, 400,
                 "invalid_argument")
        users = page["page"]["includes"]["users"]
        self.assertEqual(users[self.alice_id]["login"], "alice")

    def test_pagination_stable_while_posting(self):
        r = self.room(self.alice, "Busy")
        self.bob.ok(R + "JoinRoom", {"roomId": r["id"]})
        first = [self.post(self.alice, r["id"], "old %d" % i)["id"] for i in range(30)]
        stop = threading.Event()
        fresh = []

        def writer():
            while not stop.is_set():
                fresh.append(self.post(Client(self.b, cookie=self.bob.cookie), r["id"], "new")["id"])

        t = threading.Thread(target=writer)
        page = self.alice.ok(R + "GetRoomEvents", {"roomId": r["id"], "limit": 5})["page"]
        t.start()
        seen = [e["id"] for e in page["events"]]
        while page["hasOlder"]:
            page = Client(self.b, cookie=self.alice.cookie).ok(
                R + "GetRoomEvents", {"roomId": r["id"], "limit": 5, "before": page["startCursor"]})["page"]
            seen = [e["id"] for e in page["events"]] + seen
        stop.set()
        t.join()
        self.assertEqual(len(seen), len(set(seen)), "duplicates across pages")
        self.assertEqual([i for i in seen if i in first], first, "gap across pages")
        self.assertTrue(fresh)

    def test_read_your_writes_across_processes(self):
        r = self.room(self.alice, "RYW")
        pa = Client(self.a, cookie=self.alice.cookie)
        pb = Client(self.b, cookie=self.alice.cookie)
        stale = 0
        for i in range(500):
            w, rd = (pa, pb) if i % 2 else (pb, pa)
            m = w.ok(M + "CreateMessage", {"roomId": r["id"], "body": "ryw %d" % i})["message"]
            page = rd.ok(R + "GetRoomEvents", {"roomId": r["id"], "limit": 1})["page"]
            if page["events"][-1]["id"] != m["id"]:
                stale += 1
        self.assertEqual(stale, 0)

    def test_concurrent_edits_resolve_without_lost_updates(self):
        m = self.post(self.alice, "general", "v0")
        results = []

        def edit(c, body):
            results.append((body, c.call(M + "UpdateMessage", {"roomId": "general", "eventId": m["id"],
                                                               "body": body}).status))

        ts = [threading.Thread(target=edit, args=(Client(self.a if i % 2 else self.b, cookie=self.alice.cookie),
                                                  "v%d" % (i + 1))) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertTrue(all(s == 200 for _, s in results), results)
        final_a = self.alice.ok(M + "GetMessage", {"roomId": "general", "eventId": m["id"]})["message"]["body"]
        final_b = Client(self.b, cookie=self.alice.cookie).ok(
            M + "GetMessage", {"roomId": "general", "eventId": m["id"]})["message"]["body"]
        self.assertEqual(final_a, final_b)
        # an edit racing a delete: the delete wins or the edit lands first; never a zombie body
        m2 = self.post(self.alice, "general", "doomed")
        out = []
        t1 = threading.Thread(target=lambda: out.append(self.alice.call(
            M + "DeleteMessage", {"roomId": "general", "eventId": m2["id"]}).status))
        t2 = threading.Thread(target=lambda: out.append(Client(self.b, cookie=self.alice.cookie).call(
            M + "UpdateMessage", {"roomId": "general", "eventId": m2["id"], "body": "zombie"}).status))
        t1.start(), t2.start(), t1.join(), t2.join()
        got = self.bob.ok(M + "GetMessage", {"roomId": "general", "eventId": m2["id"]})["message"]
        self.assertNotIn("body", got)

    # ---- @all and @here ----

    def test_all_and_here_mention_their_audience_once_not_in_code_or_quotes(self):
        from wsclient import WS
        r = self.room(self.alice, "Broadcast")
        for c in (self.bob, self.carol):
            c.ok(R + "JoinRoom", {"roomId": r["id"]})
        # bob is connected (through the other process), carol is not
        tok = Client(self.b)
        self.assertEqual(tok.login("bob", token=True).status, 200)
        ws = WS(self.b.port)
        self.addCleanup(ws.sock.close)
        ws.hello(token=tok.token)
        wait_for(lambda: self.alice.ok("chatto.api.v1.UserService/GetUser", {"userId": self.bob_id})["user"]
                 .get("presenceStatus") == "online", 10, "bob to be online as the posting process sees it")

        def counts(c):
            x = [x for x in c.ok(R + "ListRooms")["rooms"] if x["room"]["id"] == r["id"]][0]
            return x["mentionCount"]

        here = self.post(self.alice, r["id"], "@here standup in 5")
        self.assertEqual((here["mentions"], here.get("mentionsHere"), here.get("mentionsAll")), ([self.bob_id], True, None))
        self.assertEqual((counts(self.bob), counts(self.carol)), (1, 0))
        every = self.post(self.alice, r["id"], "@all release is out")
        self.assertEqual((every["mentions"], every.get("mentionsAll")), ([], True))
        self.assertEqual((counts(self.bob), counts(self.carol), counts(self.alice)), (2, 1, 0))
        # inside code or a quote nothing pings
        for body in ("`@all` is how you ping everyone", "```\n@here\n```", "> @all said someone\nok"):
            m = self.post(self.alice, r["id"], body)
            self.assertEqual((m["mentions"], m.get("mentionsAll"), m.get("mentionsHere")), ([], None, None), body)
        self.assertEqual((counts(self.bob), counts(self.carol)), (2, 1))
        # resolved once: an edit neither adds pings nor takes them away
        quiet = self.post(self.alice, r["id"], "nothing to see")
        edited = self.alice.ok(M + "UpdateMessage", {"roomId": r["id"], "eventId": quiet["id"], "body": "@all now!"})
        self.assertEqual((edited["message"]["mentions"], edited["message"].get("mentionsAll")), ([], None))
        edited = self.alice.ok(M + "UpdateMessage", {"roomId": r["id"], "eventId": every["id"], "body": "release out"})
        self.assertTrue(edited["message"]["mentionsAll"])
        self.assertEqual((counts(self.bob), counts(self.carol)), (2, 1))
        # someone who joins later was not part of @all
        dave = Client(self.a)
        dave.register("dave")
        dave.ok(R + "JoinRoom", {"roomId": r["id"]})
        self.assertEqual(counts(dave), 0)
        # the realtime frame carries the flags too
        seen = []
        while not any(f.get("message", {}).get("id") == every["id"] for f in seen):
            seen.append(ws.recv(10))
        # "all" and "here" are nobody's login
        for name in ("all", "HERE"):
            r2 = Client(self.a).register(name)
            self.assertEqual(r2.status, 400, r2)
            self.assertIn("reserved", r2.json()["message"])

    # ---- notifications ----

    def test_notifications_one_per_person_with_the_strongest_cause_never_the_author(self):
        from wsclient import WS
        N = "chatto.api.v1.NotificationService/"
        tok = Client(self.b)
        self.assertEqual(tok.login("bob", token=True).status, 200)
        ws = WS(self.b.port)
        self.addCleanup(ws.sock.close)
        ws.hello(token=tok.token)

        def inbox(c, n, proc=None):
            client = c if proc is None else Client(proc, cookie=c.cookie)
            got = {}

            def enough():
                got["v"] = client.ok(N + "ListNotificationOccurrences", {})
                return len(got["v"]["occurrences"]) >= n
            wait_for(enough, 10, "%d notifications" % n)
            return got["v"]

        def kinds(out):
            return [next(iter(o["signal"])) for o in out["occurrences"]]

        r = self.room(self.alice, "Notify")["id"]
        for c in (self.bob, self.carol):
            c.ok(R + "JoinRoom", {"roomId": r})
        # a direct mention; the author gets nothing
        m1 = self.post(self.alice, r, "@bob please review")
        got = inbox(self.bob, 1)
        self.assertEqual(kinds(got), ["directMentionReceived"])
        occ = got["occurrences"][0]
        self.assertEqual((occ["unread"], occ["actor"]["id"], occ["preview"]), (True, self.alice_id, "@bob please review"))
        self.assertEqual(occ["signal"]["directMentionReceived"]["message"]["eventId"], m1["id"])
        self.assertEqual(got["unreadCount"], 1)
        self.assertEqual(self.alice.ok(N + "ListNotificationOccurrences", {})["occurrences"], [])
        # the realtime frame reaches bob's socket on the other process
        frames = []
        while not any(f.get("type") == "notification.created" for f in frames):
            frames.append(ws.recv(10))
        # a DM that also mentions him is still one entry, for the mention
        dm = self.alice.ok(R + "StartDM", {"participantIds": [self.bob_id]})["room"]["id"]
        self.post(self.alice, dm, "hi @bob")
        self.post(self.alice, dm, "and a plain DM")
        got = inbox(self.bob, 3)
        self.assertEqual(kinds(got)[:2], ["directMessageReceived", "directMentionReceived"])  # newest first
        # @all reaches every member but the author; a reply reaches the one replied to; a retry is not a second one
        for _ in range(2):
            r2 = self.alice.call(M + "CreateMessage", {"roomId": r, "body": "@all standup"}, {"Idempotency-Key": "all-1"})
            self.assertEqual(r2.status, 200)
        self.assertEqual(kinds(inbox(self.carol, 1)), ["allMentionReceived"])
        self.post(self.carol, r, "answering bob", inReplyTo=m1["id"])
        got = inbox(self.alice, 1)
        self.assertEqual(kinds(got), ["replyReceived"])
        # thread: the root's author hears of replies; followers hear of activity; reactions reach the author once
        root = self.post(self.bob, r, "thread root")
        self.post(self.carol, r, "first reply", threadRootEventId=root["id"])
        got = inbox(self.bob, 5)
        self.assertEqual(kinds(got)[0], "replyReceived")
        self.post(self.bob, r, "second reply", threadRootEventId=root["id"])  # carol follows since she replied
        self.assertEqual(kinds(inbox(self.carol, 2)), ["followedThreadActivity", "allMentionReceived"])
        self.bob.ok(M + "AddReaction", {"roomId": r, "eventId": m1["id"], "emoji": "👍"})
        self.bob.ok(M + "AddReaction", {"roomId": r, "eventId": m1["id"], "emoji": "👍"})  # already there: nothing new
        got = inbox(self.alice, 2)
        self.assertEqual(kinds(got), ["reactionReceived", "replyReceived"])
        self.assertEqual(got["occurrences"][0]["signal"]["reactionReceived"]["emoji"], "👍")
        # read, dismiss, dismiss all: the same from the other process
        first = inbox(self.bob, 5)["occurrences"][0]
        out = self.bob.ok(N + "MarkNotificationRead", {"notificationId": first["id"]})
        self.assertFalse(out["occurrence"]["unread"])
        after = inbox(self.bob, 5, self.a)
        self.assertEqual(after["unreadCount"], len(after["occurrences"]) - 1)
        self.bob.ok(N + "DeleteNotificationOccurrence", {"notificationId": first["id"]})
        self.assertNotIn(first["id"], [o["id"] for o in inbox(self.bob, 4)["occurrences"]])
        gone = self.bob.ok(N + "DeleteAllNotificationOccurrences", {})
        self.assertGreaterEqual(gone["deletedCount"], 4)
        self.assertEqual(self.bob.ok(N + "ListNotificationOccurrences", {})["occurrences"], [])
        # bad input
        self.err(self.bob, N + "MarkNotificationRead", {}, 400, "invalid_argument", "notificationId")
        self.err(self.bob, N + "MarkNotificationRead", {"notificationId": "../x"}, 400, "invalid_argument", "notificationId")
        self.err(self.bob, N + "MarkNotificationRead", {"notificationId": "0000000000000000000z"}, 404, "not_found", "notificationId")
        self.err(self.bob, N + "ListNotificationOccurrences", {"page": {"limit": 999}}, 400, "invalid_argument", "page.limit")

    # ---- followed threads ----

    def test_threads_are_followed_by_taking_part_and_read_state_is_shared(self):
        r = self.room(self.alice, "Followers")["id"]
        for c in (self.bob, self.carol):
            c.ok(R + "JoinRoom", {"roomId": r})
        root = self.post(self.alice, r, "design review thread")

        def followed(c, proc=None):
            client = c if proc is None else Client(proc, cookie=c.cookie)
            out = client.ok(T + "ListFollowedThreads", {})
            return {t["threadRootEventId"]: t["unreadCount"] for t in out["threads"]}, out["unreadThreadCount"]

        self.assertEqual(followed(self.alice), ({}, 0))
        # bob replies and mentions carol: bob, alice (the root's author) and carol follow it
        self.post(self.bob, r, "looks good, @carol?", threadRootEventId=root["id"])
        self.assertEqual(followed(self.alice), ({root["id"]: 1}, 1))
        self.assertEqual(followed(self.bob), ({root["id"]: 0}, 0))  # his own reply is not unread
        self.assertEqual(followed(self.carol), ({root["id"]: 1}, 1))
        # read state is the account's, on every process
        self.alice.ok(T + "MarkThreadAsRead", {"roomId": r, "threadRootEventId": root["id"]})
        self.assertEqual(followed(self.alice, self.b), ({root["id"]: 0}, 0))
        reply2 = self.post(self.carol, r, "yes", threadRootEventId=root["id"])
        self.post(self.bob, r, "merged", threadRootEventId=root["id"])
        self.assertEqual(followed(self.alice, self.b), ({root["id"]: 2}, 1))
        self.alice.ok(T + "MarkThreadAsRead", {"roomId": r, "threadRootEventId": root["id"], "eventId": reply2["id"]})
        self.assertEqual(followed(self.alice), ({root["id"]: 1}, 1))
        # an older position never moves it back
        self.alice.ok(T + "MarkThreadAsRead", {"roomId": r, "threadRootEventId": root["id"], "eventId": root["id"]})
        self.assertEqual(followed(self.alice), ({root["id"]: 1}, 1))
        # unfollowing on purpose sticks, even when mentioned again; following again brings it back
        self.assertEqual(self.carol.ok(T + "UnfollowThread", {"roomId": r, "threadRootEventId": root["id"]}),
                         {"following": False})
        self.post(self.bob, r, "@carol one more", threadRootEventId=root["id"])
        self.assertEqual(followed(self.carol), ({}, 0))
        self.assertEqual(self.carol.ok(T + "FollowThread", {"roomId": r, "threadRootEventId": root["id"]}),
                         {"following": True})
        self.assertEqual(followed(self.carol)[0].keys(), {root["id"]})
        # bad input and threads one cannot see
        self.err(self.alice, T + "FollowThread", {"roomId": r}, 400, "invalid_argument", "threadRootEventId")
        self.err(self.alice, T + "FollowThread", {"roomId": r, "threadRootEventId": "../x"}, 400, "invalid_argument",
                 "threadRootEventId")
        self.err(self.alice, T + "FollowThread", {"roomId": r, "threadRootEventId": reply2["id"]}, 404, "not_found",
                 "threadRootEventId")
        self.err(self.alice, T + "MarkThreadAsRead", {"roomId": r, "threadRootEventId": root["id"],
                                                      "eventId": "0000000000000000000z"}, 404, "not_found", "eventId")
        secret = self.room(self.alice, "Hidden", visibility="private")["id"]
        hidden = self.post(self.alice, secret, "private root")
        self.assertEqual(self.bob.call(T + "FollowThread", {"roomId": secret, "threadRootEventId": hidden["id"]}).status, 404)
        # leaving the room takes its threads out of the list
        self.bob.ok(R + "LeaveRoom", {"roomId": r})
        self.assertEqual(followed(self.bob), ({}, 0))

    # ---- pins ----

    def test_pins_by_room_admins_newest_first_and_gone_with_the_message(self):
        from wsclient import WS
        r = self.room(self.alice, "Pins")["id"]
        self.bob.ok(R + "JoinRoom", {"roomId": r})
        tok = Client(self.b)
        self.assertEqual(tok.login("bob", token=True).status, 200)
        ws = WS(self.b.port)
        self.addCleanup(ws.sock.close)
        ws.hello(token=tok.token)
        m1 = self.post(self.bob, r, "first decision")
        m2 = self.post(self.alice, r, "second decision")
        reply = self.post(self.bob, r, "a reply worth pinning", threadRootEventId=m1["id"])
        P = R + "CreatePinnedMessage"
        # only the room's admins and owners pin; members may not
        self.err(self.bob, P, {"roomId": r, "messageEventId": m1["id"]}, 403, "permission_denied", "roomId")
        pin = self.alice.ok(P, {"roomId": r, "messageEventId": m1["id"]})["pinnedMessage"]
        self.assertEqual((pin["message"]["id"], pin["message"]["pinned"], pin["pinnedBy"]), (m1["id"], True, self.alice_id))
        again = self.alice.ok(P, {"roomId": r, "messageEventId": m1["id"]})["pinnedMessage"]
        self.assertEqual(again["pinnedAt"], pin["pinnedAt"])  # pinning a pinned message answers with its pin
        Client(self.b, cookie=self.alice.cookie).ok(P, {"roomId": r, "messageEventId": m2["id"]})
        self.alice.ok(P, {"roomId": r, "messageEventId": reply["id"]})
        # newest pin first, through the other process too; the message views say pinned
        got = self.bob.ok(R + "ListPinnedMessages", {"roomId": r})
        self.assertEqual([p["message"]["id"] for p in got["pinnedMessages"]], [reply["id"], m2["id"], m1["id"]])
        self.assertEqual(got["page"], {"totalCount": "3", "hasMore": False})
        marker = got["latestPinMarker"]
        page = self.bob.ok(R + "ListPinnedMessages", {"roomId": r, "page": {"limit": 1, "offset": 1}})
        self.assertEqual([p["message"]["id"] for p in page["pinnedMessages"]], [m2["id"]])
        self.assertTrue(self.bob.ok(M + "GetMessage", {"roomId": r, "eventId": m2["id"]})["message"]["pinned"])
        # realtime: members hear about pins
        frames = []
        while not any(f.get("type") == "message.pinned" and f["message"]["id"] == reply["id"] for f in frames):
            frames.append(ws.recv(10))
        # deleting a message removes its pin; unpinning says deleted
        self.bob.ok(M + "DeleteMessage", {"roomId": r, "eventId": m1["id"]})
        got = self.alice.ok(R + "ListPinnedMessages", {"roomId": r})
        self.assertEqual([p["message"]["id"] for p in got["pinnedMessages"]], [reply["id"], m2["id"]])
        self.assertEqual(self.alice.ok(R + "DeletePinnedMessage", {"roomId": r, "messageEventId": m2["id"]}), {"deleted": True})
        self.assertEqual(self.alice.ok(R + "DeletePinnedMessage", {"roomId": r, "messageEventId": m2["id"]}), {"deleted": True})
        self.assertFalse(self.bob.ok(M + "GetMessage", {"roomId": r, "eventId": m2["id"]})["message"]["pinned"])
        got = self.alice.ok(R + "ListPinnedMessages", {"roomId": r})
        self.assertEqual([p["message"]["id"] for p in got["pinnedMessages"]], [reply["id"]])
        self.assertNotEqual(got["latestPinMarker"], marker)
        # bad input and places without pins
        self.err(self.alice, P, {"roomId": r, "messageEventId": m1["id"]}, 404, "not_found", "messageEventId")
        self.err(self.alice, P, {"roomId": r}, 400, "invalid_argument", "messageEventId")
        self.err(self.alice, P, {"roomId": r, "messageEventId": "../x"}, 400, "invalid_argument", "messageEventId")
        self.err(self.alice, R + "ListPinnedMessages", {"roomId": r, "page": {"limit": 501}}, 400, "invalid_argument", "page.limit")
        carol_out = self.carol.call(R + "ListPinnedMessages", {"roomId": self.room(self.alice, "Secret", visibility="private")["id"]})
        self.assertEqual(carol_out.status, 404)
        dm = self.alice.ok(R + "StartDM", {"participantIds": [self.bob_id]})["room"]["id"]
        dmsg = self.post(self.alice, dm, "just us")
        self.err(self.alice, P, {"roomId": dm, "messageEventId": dmsg["id"]}, 400, "failed_precondition", "roomId")
        self.alice.ok(R + "ArchiveRoom", {"roomId": r})
        self.err(self.alice, P, {"roomId": r, "messageEventId": m2["id"]}, 400, "failed_precondition", "roomId")
        self.assertEqual(len(self.bob.ok(R + "ListPinnedMessages", {"roomId": r})["pinnedMessages"]), 1)

    # ---- read state ----

    def test_unread_and_mentions_same_everywhere(self):
        r = self.room(self.alice, "Unread")
        self.bob.ok(R + "JoinRoom", {"roomId": r["id"]})
        for i in range(3):
            self.post(self.alice, r["id"], "news %d" % i)
        self.post(self.alice, r["id"], "@bob look")
        self.post(self.bob, r["id"], "my own message does not count")

        def counts(c):
            x = [x for x in c.ok(R + "ListRooms")["rooms"] if x["room"]["id"] == r["id"]][0]
            return x["unreadCount"], x["mentionCount"]

        self.assertEqual(counts(self.bob), (4, 1))
        self.assertEqual(counts(Client(self.a, cookie=self.bob.cookie)), (4, 1))
        out = self.bob.ok(R + "MarkRoomAsRead", {"roomId": r["id"]})
        self.assertEqual((out["unreadCount"], out["mentionCount"]), (0, 0))
        self.assertEqual(counts(Client(self.a, cookie=self.bob.cookie)), (0, 0))
        m = self.post(self.alice, r["id"], "one more")
        self.assertEqual(counts(self.bob), (1, 0))
        # marking an older event does not move the position backwards
        first = self.events(self.bob, r["id"])["events"][0]["id"]
        self.bob.ok(R + "MarkRoomAsRead", {"roomId": r["id"], "eventId": first})
        self.assertEqual(counts(self.bob), (1, 0))
        self.bob.ok(R + "MarkRoomAsRead", {"roomId": r["id"], "eventId": m["id"]})
        self.assertEqual(counts(Client(self.a, cookie=self.bob.cookie)), (0, 0))
        self.err(self.bob, R + "MarkRoomAsRead", {"roomId": r["id"], "eventId": "nosuchevent"}, 404, "not_found")

    # ---- durability and erasure ----

    def test_restarted_process_serves_full_history(self):
        r = self.room(self.alice, "Durable")
        ids = [self.post(self.alice, r["id"], "keep %d" % i)["id"] for i in range(20)]
        self.alice.ok(M + "UpdateMessage", {"roomId": r["id"], "eventId": ids[3], "body": "edited"})
        self.alice.ok(M + "DeleteMessage", {"roomId": r["id"], "eventId": ids[5]})
        self.assertEqual(self.b.stop(), 0)
        self.b.start()
        page = Client(self.b, cookie=self.alice.cookie).ok(R + "GetRoomEvents", {"roomId": r["id"],
                                                                                 "limit": 100})["page"]
        msgs = [e["messagePosted"]["message"] for e in page["events"] if "messagePosted" in e]
        self.assertEqual([m["id"] for m in msgs], ids)
        self.assertEqual(msgs[3]["body"], "edited")
        self.assertNotIn("body", msgs[5])

    def test_deleted_body_is_erased_from_the_store(self):
        secret = "the launch code is 0000-%s" % os.urandom(6).hex()
        m = self.post(self.alice, "general", secret)
        e = self.alice.ok(M + "UpdateMessage", {"roomId": "general", "eventId": m["id"],
                                                "body": secret + " (edited)"})["message"]
        self.assertTrue(grep_tree(self.n.dir, secret.encode()), "the body should be in the store before")
        self.alice.ok(M + "DeleteMessage", {"roomId": "general", "eventId": e["id"]})
        self.assertEqual(grep_tree(self.n.dir, secret.encode()), [])
        # nothing else of the processes' keeps it; their search indexes forget it within search_provider.purge_delay
        index_dirs = [os.path.join(c.dir, "search") for c in (self.a, self.b)]
        left = [f for c in (self.a, self.b) for f in grep_tree(c.dir, secret.encode()) if not
                any(f.startswith(d + os.sep) for d in index_dirs)]
        self.assertEqual(left, [])
        wait_for(lambda: not any(grep_tree(d, secret.encode()) for d in index_dirs), 20,
                 "the deleted body gone from the search index files")


class Authorization(TestCase):
    """Each call × {member, non-member, removed member, server admin, anonymous, bot}."""

    def test_matrix(self):
        n = self.nats(token="authz-token")
        c = self.chatto(embedded=False, env=external_env(n), args=FAST_AUTH)
        owner = Client(c)
        owner.register("owner")
        member, outsider, removed = Client(c), Client(c), Client(c)
        member.register("member")
        outsider_id = outsider.register("outsider").json()["user"]["id"]
        removed_id = removed.register("removed").json()["user"]["id"]
        bot = Client(c, token=owner.ok(ADMIN + "CreateBot", {"login": "botty"})["apiKey"])
        anon = Client(c)
        room = owner.ok(R + "CreateRoom", {"name": "Private", "visibility": "private"})["room"]["id"]
        pub = owner.ok(R + "CreateRoom", {"name": "Public"})["room"]["id"]
        for rid in (room, pub):
            for who in (member, removed):
                owner.ok(R + "AddMember", {"roomId": rid, "userId": who.ok(
                    "chatto.api.v1.MyAccountService/GetMyAccount")["user"]["id"]})
        msg = {rid: owner.ok(M + "CreateMessage", {"roomId": rid, "body": "hi"})["message"]["id"]
               for rid in (room, pub)}
        for rid in (room, pub):
            owner.ok(R + "RemoveMember", {"roomId": rid, "userId": removed_id})
        # bot joins the public room only
        bot.ok(R + "JoinRoom", {"roomId": pub})
        calls = [
            (R + "GetRoomEvents", lambda rid: {"roomId": rid}),
            (R + "ListMembers", lambda rid: {"roomId": rid}),
            (M + "CreateMessage", lambda rid: {"roomId": rid, "body": "x"}),
            (M + "GetMessage", lambda rid: {"roomId": rid, "eventId": msg[rid]}),
            (M + "AddReaction", lambda rid: {"roomId": rid, "eventId": msg[rid], "emoji": "x"}),
            (M + "UpdateMessage", lambda rid: {"roomId": rid, "eventId": msg[rid], "body": "y"}),
            (M + "DeleteMessage", lambda rid: {"roomId": rid, "eventId": msg[rid]}),
            (R + "MarkRoomAsRead", lambda rid: {"roomId": rid}),
            (R + "UpdateRoom", lambda rid: {"roomId": rid, "description": "z"}),
            (R + "ArchiveRoom", lambda rid: {"roomId": rid}),
            (R + "AddMember", lambda rid: {"roomId": rid, "userId": outsider_id}),
        ]
        # expected status per actor for the private room; public differs for non-members (403, not 404)
        owner_only = {R + "UpdateRoom", R + "ArchiveRoom", R + "AddMember", M + "UpdateMessage", M + "DeleteMessage"}
        for method, body in calls:
            for rid in (room, pub):
                hidden = 404 if rid == room else 403
                expect = {
                    "member": 403 if method in owner_only else 200,
                    "outsider": hidden,
                    "removed": hidden,
                    "anonymous": 401,
                    "bot": (403 if method in owner_only else 200) if rid == pub else 404,
                }
                if method == R + "ListMembers" and rid == pub:
                    expect["outsider"] = expect["removed"] = 200  # public member lists are visible
                for name, who in (("member", member), ("outsider", outsider), ("removed", removed),
                                  ("anonymous", anon), ("bot", bot)):
                    r = who.call(method, body(rid))
                    self.assertEqual(r.status, expect[name], (method, "private" if rid == room else "public", name,
                                                              r))
                    if r.status != 200:
                        self.assertNotIn(b'"body"', r.body)


class EditWindow(TestCase):
    def test_authors_edit_within_the_window_admins_any_time(self):
        from harness import wait_for
        n = self.nats(token="edit-token")
        c = self.chatto(embedded=False, env=external_env(n), args=FAST_AUTH + ["--chat-edit-window", "1s"])
        admin = Client(c)
        admin.register("admin")  # the owner
        user = Client(c)
        user.register("user")
        m1 = user.ok(M + "CreateMessage", {"roomId": "general", "body": "typo"})["message"]
        m2 = admin.ok(M + "CreateMessage", {"roomId": "general", "body": "admin typo"})["message"]
        user.ok(M + "UpdateMessage", {"roomId": "general", "eventId": m1["id"], "body": "fixed"})

        def expired():
            r = user.call(M + "UpdateMessage", {"roomId": "general", "eventId": m1["id"], "body": "late"})
            return r.status == 400 and r.json()["code"] == "failed_precondition"

        wait_for(expired, 10, "the edit window to close")
        admin.ok(M + "UpdateMessage", {"roomId": "general", "eventId": m2["id"], "body": "admins may"})


class FullStore(TestCase):
    def test_a_full_store_says_so_instead_of_500(self):
        """When JetStream runs out of room every write says "storage full" (429 resource_exhausted), logins and
        registrations too (the token record is a write), and nothing answers 500 internal."""
        c = self.chatto(args=FAST_AUTH + ["--nats-embedded-max-file-store", "2MB"])
        u = Client(c)
        self.assertEqual(u.register("filler", token=True).status, 200)
        statuses = set()
        for i in range(5000):
            r = u.call(M + "CreateMessage", {"roomId": "general", "body": "%d %s" % (i, "x" * 2000)})
            statuses.add(r.status)
            if r.status != 200:
                break
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["code"], "resource_exhausted")
        self.assertIn("storage is full", r.json()["message"])
        for attempt in (lambda: Client(c).login("filler", token=True), lambda: Client(c).register("late")):
            r = attempt()
            self.assertIn(r.status, (200, 429), r)  # a read may still fit; a write says why it cannot
            if r.status == 429:
                self.assertEqual(r.json()["code"], "resource_exhausted")
        self.assertNotIn(500, statuses)
        self.assertEqual(c.get("/healthz").status, 200)


class WriteRate(TestCase):
    def test_one_user_cannot_flood(self):
        """limits.messages_per_second (5) and messages_burst (30) by default: one user posted 500 messages in
        3.3 s before; now the burst goes through, then writes are refused with 429 and Retry-After."""
        c = self.chatto(args=["--auth-password-hash", "owasp"])  # the default limits, unlike FAST_AUTH
        u = Client(c)
        self.assertEqual(u.register("flooder", token=True).status, 200)
        t0 = time.monotonic()
        statuses, last = [], None
        for i in range(80):
            r = u.call(M + "CreateMessage", {"roomId": "general", "body": "flood %d" % i})
            statuses.append(r.status)
            if r.status == 429:
                last = r
        elapsed = time.monotonic() - t0
        ok = statuses.count(200)
        self.assertGreaterEqual(ok, 30)
        self.assertLessEqual(ok, 30 + 5 * elapsed + 1, (ok, elapsed))
        self.assertEqual(set(statuses), {200, 429})
        self.assertEqual(last.json()["code"], "resource_exhausted")
        retry = int(last.header("Retry-After"))
        self.assertTrue(1 <= retry <= 2, retry)
        # another user is not held back, and the flooder may post again once the bucket refilled
        other = Client(c)
        self.assertEqual(other.register("calm", token=True).status, 200)
        self.assertEqual(other.call(M + "CreateMessage", {"roomId": "general", "body": "hello"}).status, 200)
        wait_for(lambda: u.call(M + "CreateMessage", {"roomId": "general", "body": "later"}).status == 200, 5,
                 "the flooder's bucket to refill")


class Bodies(TestCase):
    """core.cache_size bounds the message bodies a process keeps in memory; the others are read from NATS when a
    request shows them. One process keeps none (0), the other the default."""

    def setUp(self):
        super().setUp()
        self.n = self.nats(token="bodies-token")
        env = external_env(self.n)
        self.cold = self.chatto(embedded=False, env=dict(env, CHATTO_CORE_CACHE_SIZE="0"),
                                args=FAST_AUTH + ["--metrics-enabled=true", "--metrics-port", "0"])
        self.warm = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        self.alice = Client(self.warm)
        self.alice.register("alice")
        self.bob = Client(self.cold)
        self.bob.register("bob")

    def metric(self, name):
        import re
        m = wait_for(lambda: re.search(r"metrics: listening on [\d.]+:(\d+)(/\S*)", self.cold.stderr()), 10,
                     "the metrics listener")
        text = http_request(int(m.group(1)), "GET", m.group(2)).body.decode()
        got = re.search(r"^%s (\S+)$" % name, text, re.M)
        self.assertIsNotNone(got, name)
        return float(got.group(1))

    def test_a_process_that_keeps_no_bodies_shows_every_one_from_nats(self):
        from wsclient import WS
        r = self.alice.ok(R + "CreateRoom", {"name": "Archive"})["room"]["id"]
        self.bob.ok(R + "JoinRoom", {"roomId": r})
        tok = Client(self.cold)
        self.assertEqual(tok.login("bob", token=True).status, 200)
        ws = WS(self.cold.port)
        self.addCleanup(ws.sock.close)
        ws.hello(token=tok.token)
        want = {}
        posts = []
        for i in range(60):
            body = "message %d %s" % (i, "x" * i)
            if i == 11:
                body = "ünïcödé ✓ 🎉\nsecond line \"quoted\" \\ back"
            if i == 12:
                body = "long " + "y" * 3000
            m = self.alice.ok(M + "CreateMessage", {"roomId": r, "body": body})["message"]
            posts.append(m)
            want[m["id"]] = body
        # the live frame of a post carries its body although this process keeps none
        frame = None
        while not frame:
            f = ws.recv(10)
            if f.get("type") == "message.created" and f["message"]["id"] == posts[-1]["id"]:
                frame = f
        self.assertEqual(frame["message"]["body"], want[posts[-1]["id"]])
        self.alice.ok(M + "UpdateMessage", {"roomId": r, "eventId": posts[3]["id"], "body": "edited three"})
        want[posts[3]["id"]] = "edited three"
        self.alice.ok(M + "DeleteMessage", {"roomId": r, "eventId": posts[7]["id"]})
        del want[posts[7]["id"]]
        replies = [self.alice.ok(M + "CreateMessage", {"roomId": r, "body": "reply %d" % i,
                                                       "threadRootEventId": posts[5]["id"]})["message"]
                   for i in range(3)]
        self.alice.ok(R + "CreatePinnedMessage", {"roomId": r, "messageEventId": posts[9]["id"]})
        before = self.metric("chatto_message_body_fetches_total")

        # the whole timeline, page by page, from the process that keeps nothing
        seen, cursor = {}, None
        while True:
            req = {"roomId": r, "limit": 25}
            if cursor:
                req["before"] = cursor
            page = self.bob.ok(R + "GetRoomEvents", req)["page"]
            for e in page["events"]:
                if "messagePosted" in e:
                    msg = e["messagePosted"]["message"]
                    seen[msg["id"]] = msg.get("body")
            if not page["hasOlder"]:
                break
            cursor = page["startCursor"]
        self.assertEqual({k: v for k, v in seen.items() if v is not None}, want)
        self.assertIsNone(seen[posts[7]["id"]])  # deleted: no body, from NATS or anywhere
        # every other view that shows a message
        got = self.bob.ok(M + "GetMessage", {"roomId": r, "eventId": posts[3]["id"]})["message"]
        self.assertEqual(got["body"], "edited three")
        batch = self.bob.ok(M + "BatchGetMessages", {"roomId": r, "eventIds": [posts[11]["id"], posts[12]["id"],
                                                                                  posts[7]["id"]]})["messages"]
        self.assertEqual([m.get("body") for m in batch], [want[posts[11]["id"]], want[posts[12]["id"]], None])
        thread = self.bob.ok(T + "GetThreadReplies", {"roomId": r, "threadRootEventId": posts[5]["id"]})
        self.assertEqual(thread["root"]["body"], want[posts[5]["id"]])
        self.assertEqual([e["messagePosted"]["message"]["body"] for e in thread["page"]["events"]],
                         ["reply 0", "reply 1", "reply 2"])
        pins = self.bob.ok(R + "ListPinnedMessages", {"roomId": r})["pinnedMessages"]
        self.assertEqual(pins[0]["message"]["body"], want[posts[9]["id"]])
        around = self.bob.ok(R + "GetRoomEventsAround", {"roomId": r, "eventId": posts[30]["id"], "limit": 5})
        self.assertIn(want[posts[30]["id"]], [e["messagePosted"]["message"]["body"]
                                              for e in around["page"]["events"] if "messagePosted" in e])
        self.assertEqual([x["id"] for x in replies], [e["messagePosted"]["message"]["id"]
                                                       for e in thread["page"]["events"]])
        # they came from NATS, and nothing was kept
        self.assertGreaterEqual(self.metric("chatto_message_body_fetches_total") - before, 59 + 3 + 3)
        self.assertEqual(self.metric("chatto_message_body_cache_bytes"), 0)


class Snapshots(TestCase):
    """core.projection_snapshots: a process starts from the newest read-model snapshot in NATS and replays only the
    events after it; what it serves is what a process that replayed everything serves."""

    def setUp(self):
        super().setUp()
        self.n = self.nats(token="snapshots-token")
        self.env = external_env(self.n, CHATTO_CORE_PROJECTION_SNAPSHOT_EVENTS="1")
        self.a = self.chatto(embedded=False, env=self.env, args=FAST_AUTH)

    def snapshot_at_least(self, proc, seq):
        import re

        def written():
            got = [int(x) for x in re.findall(r"read-model snapshot at event (\d+) written", proc.stderr())]
            return got and max(got) >= seq

        wait_for(written, 30, "a snapshot at event %d or later" % seq)

    def test_a_new_process_starts_from_the_snapshot_and_serves_what_a_full_replay_serves(self):
        alice, bob, carol = Client(self.a), Client(self.a), Client(self.a)
        alice.register("alice")
        bob_id = bob.register("bob").json()["user"]["id"]
        carol_id = carol.register("carol").json()["user"]["id"]
        plans = alice.ok(R + "CreateRoom", {"name": "Plans", "visibility": "private"})["room"]["id"]
        for uid in (bob_id, carol_id):
            alice.ok(R + "AddMember", {"roomId": plans, "userId": uid})
        posts = [alice.ok(M + "CreateMessage", {"roomId": plans, "body": "plan %d @bob" % i})["message"]
                 for i in range(12)]
        replies = [bob.ok(M + "CreateMessage", {"roomId": plans, "body": "reply %d" % i,
                                                 "threadRootEventId": posts[2]["id"]})["message"] for i in range(3)]
        bob.ok(M + "AddReaction", {"roomId": plans, "eventId": posts[1]["id"], "emoji": "👍"})
        alice.ok(R + "CreatePinnedMessage", {"roomId": plans, "messageEventId": posts[3]["id"]})
        alice.ok(M + "UpdateMessage", {"roomId": plans, "eventId": posts[4]["id"], "body": "plan four, edited"})
        alice.ok(M + "DeleteMessage", {"roomId": plans, "eventId": posts[5]["id"]})
        dm = alice.ok(R + "StartDM", {"participantIds": [bob_id]})["room"]["id"]
        alice.ok(M + "CreateMessage", {"roomId": dm, "body": "psst"})
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "snapshot here"})
        carol.ok(R + "MarkRoomAsRead", {"roomId": plans, "eventId": posts[6]["id"]})
        cursor = int(self.events_page(alice, self.a, "general")["endCursor"])
        self.assertGreaterEqual(cursor, 1)
        self.snapshot_at_least(self.a, cursor)

        # after the snapshot: carol loses the room, a message is deleted (its body erased), one more is posted
        alice.ok(R + "RemoveMember", {"roomId": plans, "userId": carol_id})
        alice.ok(M + "DeleteMessage", {"roomId": plans, "eventId": posts[7]["id"]})
        late = alice.ok(M + "CreateMessage", {"roomId": plans, "body": "after the snapshot"})["message"]

        b = self.chatto(embedded=False, env=dict(self.env, CHATTO_CORE_PROJECTION_SNAPSHOT_EVENTS="1000000"),
                        args=FAST_AUTH)
        self.assertRegex(b.stderr(), r"read model loaded from the snapshot at event \d+")
        self.assertNotIn("replaying the whole event stream", b.stderr())
        a_alice, b_alice = alice, alice.on(b)
        # the same answers from both processes
        for method, body in ((R + "GetRoomEvents", {"roomId": plans, "limit": 100}),
                             (R + "GetRoomEvents", {"roomId": "general"}),
                             (R + "GetRoomEvents", {"roomId": dm}),
                             (T + "GetThreadReplies", {"roomId": plans, "threadRootEventId": posts[2]["id"]}),
                             (R + "ListPinnedMessages", {"roomId": plans}),
                             (R + "ListMembers", {"roomId": plans}),
                             (R + "ListRooms", {}),
                             (M + "GetMessage", {"roomId": plans, "eventId": posts[1]["id"]})):
            self.assertEqual(b_alice.ok(method, body), a_alice.ok(method, body), method)
        for who in (bob, carol):
            self.assertEqual(who.on(b).ok(R + "ListRooms", {}), who.ok(R + "ListRooms", {}))
        # membership after the snapshot holds: carol is out of the private room on the new process too
        self.err(carol.on(b), R + "GetRoomEvents", {"roomId": plans}, 404, "not_found")
        # the message deleted after the snapshot has no body; the late one is there; the edit shows
        got = b_alice.ok(M + "BatchGetMessages", {"roomId": plans, "eventIds": [posts[7]["id"], late["id"],
                                                                                  posts[4]["id"], replies[0]["id"]]})
        bodies = {m["id"]: m.get("body") for m in got["messages"]}
        self.assertEqual(bodies, {posts[7]["id"]: None, late["id"]: "after the snapshot",
                                  posts[4]["id"]: "plan four, edited", replies[0]["id"]: "reply 0"})
        # and it keeps up with what comes next
        alice.on(b).ok(M + "CreateMessage", {"roomId": plans, "body": "through b"})
        self.assertEqual(a_alice.ok(R + "GetRoomEvents", {"roomId": plans}),
                         b_alice.ok(R + "GetRoomEvents", {"roomId": plans}))

    def events_page(self, client, proc, room):
        return client.ok(R + "GetRoomEvents", {"roomId": room})["page"]

    def test_a_snapshot_of_another_stream_is_not_used(self):
        alice = Client(self.a)
        alice.register("alice")
        for i in range(5):
            alice.ok(M + "CreateMessage", {"roomId": "general", "body": "m %d" % i})
        cursor = int(alice.ok(R + "GetRoomEvents", {"roomId": "general"})["page"]["endCursor"])
        self.snapshot_at_least(self.a, cursor)
        self.a.stop()
        # the event stream starts again (as after a reset); the old snapshot names an event it does not have
        from natsclient import NatsClient
        with NatsClient(self.n.port, token=self.n.token) as nc:
            nc.request("$JS.API.STREAM.DELETE.CHATTO_EVENTS", b"")
        b = self.chatto(embedded=False, env=self.env, args=FAST_AUTH)
        self.assertRegex(b.stderr(), r"not using the read-model snapshot \(.*\): replaying the whole event stream")
        self.assertNotIn("loaded from the snapshot", b.stderr())
