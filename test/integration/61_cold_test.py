# SPDX-License-Identifier: MIT
"""The cold timeline (core.resident_messages): a process keeps a room's newest messages in memory and, of the older
ones (plain, or edited and reacted to), only where they are and who wrote them. It shows a plain one from its post
in the stream and brings an edited or reacted one back from every event on its subject; it brings one back into
memory before anything changes it (a reaction, an edit, a delete, a pin, a reply), whichever process made the
change. Here two processes keep 3 messages per room and a third keeps everything: all three must answer
the same."""
import re

from harness import FAST_AUTH, TIME_SCALE, Client, TestCase, external_env, http_request, wait_for

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
T = "chatto.api.v1.ThreadService/"
S = "chatto.api.v1.MessageSearchService/"
METRICS = ["--metrics-enabled=true", "--metrics-port", "0"]
COLD = ["--core-resident-messages", "3"] + METRICS


class Cold(TestCase):
    maxDiff = None
    def setUp(self):
        super().setUp()
        self.n = self.nats(token="cold-test-token")
        self.env = external_env(self.n, CHATTO_CORE_PROJECTION_SNAPSHOT_EVENTS="20")
        self.a = self.chatto(embedded=False, env=self.env, args=FAST_AUTH + COLD)
        self.b = self.chatto(embedded=False, env=self.env, args=FAST_AUTH + COLD)
        self.full = self.chatto(embedded=False, env=self.env, args=FAST_AUTH + ["--core-resident-messages", "0"] + METRICS)
        self.alice = Client(self.a)
        self.alice_id = self.alice.register("alice").json()["user"]["id"]
        self.bob = Client(self.b)
        self.bob_id = self.bob.register("bob").json()["user"]["id"]
        self.room = self.alice.ok(R + "CreateRoom", {"name": "Old times"})["room"]["id"]
        self.bob.ok(R + "JoinRoom", {"roomId": self.room})
        self.posted = []
        for i in range(30):
            who = self.alice if i % 3 else self.bob
            self.posted.append(who.ok(M + "CreateMessage", {"roomId": self.room, "body": "old %02d" % i})["message"])
        wait_for(lambda: self.cold(self.a) >= 20 and self.cold(self.b) >= 20, 30, "old messages out of memory")
        self.assertEqual(self.cold(self.full), 0)

    def cold(self, proc):
        """Messages the process keeps out of memory (its metric)."""
        return self.metric(proc, "chatto_model_cold_messages")

    def metric(self, proc, name):
        port = wait_for(lambda: re.findall(r"metrics: listening on [\d.]+:(\d+)(/\S*)", proc.stderr()), 10,
                        "the metrics listener")[-1]
        text = http_request(int(port[0]), "GET", port[1]).body.decode()
        m = re.search(r"^%s (\d+)" % name, text, re.M)
        return int(m[1]) if m else -1

    def history(self, client, limit=7):
        """Every event of the room, paged backwards, with each page's flags."""
        events, cursor, flags = [], None, []
        while True:
            req = {"roomId": self.room, "limit": limit}
            if cursor:
                req["before"] = cursor
            page = client.ok(R + "GetRoomEvents", req)["page"]
            events = page["events"] + events
            flags.append((page["hasOlder"], page["hasNewer"], page["startCursor"], page["endCursor"]))
            if not page["hasOlder"]:
                return events, flags
            cursor = page["startCursor"]

    def forwards(self, client, limit=6):
        events, cursor = [], "0"
        while True:
            page = client.ok(R + "GetRoomEvents", {"roomId": self.room, "after": cursor, "limit": limit})["page"]
            events += page["events"]
            if not page["hasNewer"]:
                return events
            cursor = page["endCursor"]

    def same_everywhere(self, client):
        """The room's history, forwards and backwards, is the same from every process."""
        want, flags = self.history(client.on(self.full))
        for proc in (self.a, self.b):
            got, got_flags = self.history(client.on(proc))
            self.assertEqual(got, want, "history from %d" % proc.port)
            self.assertEqual(got_flags, flags)
            self.assertEqual(self.forwards(client.on(proc)), want)
        return want

    def counts(self, client):
        x = [x for x in client.ok(R + "ListRooms")["rooms"] if x["room"]["id"] == self.room][0]
        return x["unreadCount"], x["mentionCount"]

    def test_history_pages_unread_counts_and_around_are_the_same_as_in_memory(self):
        events = self.same_everywhere(self.alice)
        bodies = [e["messagePosted"]["message"]["body"] for e in events if "messagePosted" in e]
        self.assertEqual(bodies, ["old %02d" % i for i in range(30)])
        # the page around an old message
        for proc in (self.a, self.b, self.full):
            page = self.alice.on(proc).ok(R + "GetRoomEventsAround",
                                          {"roomId": self.room, "eventId": self.posted[4]["id"], "limit": 5})
            self.assertEqual([e["id"] for e in page["page"]["events"]], [p["id"] for p in self.posted[2:7]])
        # unread counts reach back into the cold part: bob has read nothing; 20 of the 30 are alice's
        for proc in (self.a, self.b, self.full):
            self.assertEqual(self.counts(self.bob.on(proc)), (20, 0))
        # read up to an old message, named by its id
        self.bob.ok(R + "MarkRoomAsRead", {"roomId": self.room, "eventId": self.posted[9]["id"]})
        for proc in (self.a, self.b, self.full):
            wait_for(lambda: self.counts(self.bob.on(proc)) == (14, 0), 10, "unread after the old message")
        # an old message by id, alone and in a batch
        for proc in (self.a, self.b):
            got = self.bob.on(proc).ok(M + "GetMessage", {"roomId": self.room, "eventId": self.posted[0]["id"]})
            self.assertEqual(got["message"]["body"], "old 00")
            batch = self.bob.on(proc).ok(M + "BatchGetMessages", {"roomId": self.room,
                                                                  "eventIds": [self.posted[1]["id"], "nosuch"]})
            self.assertEqual([m["body"] for m in batch["messages"]], ["old 01"])

    def test_old_messages_change_alike_on_every_process(self):
        old = self.posted
        # each change through one process, to messages both cold processes keep out of memory
        self.bob.ok(M + "AddReaction", {"roomId": self.room, "eventId": old[1]["id"], "emoji": "👍"})
        self.alice.ok(M + "UpdateMessage", {"roomId": self.room, "eventId": old[2]["id"], "body": "old 02, edited"})
        reply = self.bob.ok(M + "CreateMessage", {"roomId": self.room, "body": "about that",
                                                   "threadRootEventId": old[4]["id"]})["message"]
        self.alice.ok(R + "CreatePinnedMessage", {"roomId": self.room, "messageEventId": old[5]["id"]})
        self.bob.ok(M + "DeleteMessage", {"roomId": self.room, "eventId": old[6]["id"]})
        quote = self.alice.ok(M + "CreateMessage", {"roomId": self.room, "body": "as bob said",
                                                     "inReplyTo": old[0]["id"]})["message"]
        for proc in (self.a, self.b, self.full):
            c = self.alice.on(proc)
            wait_for(lambda: c.ok(M + "GetMessage", {"roomId": self.room, "eventId": quote["id"]}), 10, "the quote")
            got = c.ok(M + "GetMessage", {"roomId": self.room, "eventId": old[1]["id"]})["message"]
            self.assertEqual([(x["emoji"], x["count"]) for x in got["reactions"]], [("👍", 1)])
            got = c.ok(M + "GetMessage", {"roomId": self.room, "eventId": old[2]["id"]})["message"]
            self.assertEqual((got["body"], got["edited"]), ("old 02, edited", True))
            root = c.ok(M + "GetMessage", {"roomId": self.room, "eventId": old[4]["id"]})["message"]
            self.assertEqual(root["thread"]["replyCount"], 1)
            replies = c.ok(T + "GetThreadReplies", {"roomId": self.room, "threadRootEventId": old[4]["id"]})
            self.assertEqual([e["id"] for e in replies["page"]["events"]], [reply["id"]])
            pins = c.ok(R + "ListPinnedMessages", {"roomId": self.room})["pinnedMessages"]
            self.assertEqual([p["message"]["id"] for p in pins], [old[5]["id"]])
            tomb = c.ok(M + "GetMessage", {"roomId": self.room, "eventId": old[6]["id"]})["message"]
            self.assertNotIn("body", tomb)
            self.assertIn("deletedAt", tomb)
        events = self.same_everywhere(self.alice)
        shown = {e["id"]: e["messagePosted"]["message"] for e in events if "messagePosted" in e}
        self.assertEqual(shown[old[1]["id"]]["reactions"][0]["count"], 1)
        self.assertIn("deletedAt", shown[old[6]["id"]])
        self.assertNotIn("body", shown[old[6]["id"]])
        # more posts push the changed ones out again only when they are plain: the history stays the same
        for i in range(10):
            self.alice.ok(M + "CreateMessage", {"roomId": self.room, "body": "new %d" % i})
        self.same_everywhere(self.bob)
        # a search hit on an old message is shown whole
        wait_for(lambda: self.alice.ok(S + "GetStatus")["state"] == "MESSAGE_SEARCH_STATE_READY", 20, "search")
        wait_for(lambda: [r["eventId"] for r in
                          self.alice.ok(S + "SearchMessages", {"query": "old 03"})["results"]][:1] == [old[3]["id"]],
                 20, "the old message found")

    def test_reacted_and_edited_old_messages_leave_memory_too_and_show_alike(self):
        carol = Client(self.a)
        token = carol.register("carol", token=True).json()["token"]
        carol.ok(R + "JoinRoom", {"roomId": self.room})
        # changed while they are the newest: reactions, an edit, a reaction taken back, a pin undone
        fresh = [self.alice.ok(M + "CreateMessage", {"roomId": self.room, "body": "fresh %d" % i})["message"]
                 for i in range(5)]
        self.bob.ok(M + "AddReaction", {"roomId": self.room, "eventId": fresh[0]["id"], "emoji": "🎉"})
        self.alice.ok(M + "AddReaction", {"roomId": self.room, "eventId": fresh[0]["id"], "emoji": "🎉"})
        self.alice.ok(M + "UpdateMessage", {"roomId": self.room, "eventId": fresh[1]["id"], "body": "fresh 1, edited"})
        self.bob.ok(M + "AddReaction", {"roomId": self.room, "eventId": fresh[2]["id"], "emoji": "👀"})
        self.bob.ok(M + "RemoveReaction", {"roomId": self.room, "eventId": fresh[2]["id"], "emoji": "👀"})
        self.alice.ok(R + "CreatePinnedMessage", {"roomId": self.room, "messageEventId": fresh[3]["id"]})
        self.alice.ok(R + "DeletePinnedMessage", {"roomId": self.room, "messageEventId": fresh[3]["id"]})
        self.bob.ok(M + "AddReaction", {"roomId": self.room, "eventId": fresh[4]["id"], "emoji": "🙂"})  # (its only)
        # then enough posts that they are old: every message but the newest few leaves memory, these too (the
        # edited one is read from its edit, which erased its post)
        for i in range(8):
            self.bob.ok(M + "CreateMessage", {"roomId": self.room, "body": "later %d" % i})
        total = 30 + 5 + 8
        # (a message brought back stays a minute: the notifier, if it lags behind these posts on a busy machine,
        # brings back the ones it notifies of)
        for proc in (self.a, self.b):
            wait_for(lambda: self.cold(proc) >= total - 4, 90 * TIME_SCALE, "the changed messages out of memory")
        # a socket on a process that brings them back hears nothing of it
        from wsclient import connect
        ws, _ = connect(self.a, token=token)
        try:
            events = self.same_everywhere(self.alice)
            shown = {e["id"]: e["messagePosted"]["message"] for e in events if "messagePosted" in e}
            self.assertEqual([(x["emoji"], x["count"]) for x in shown[fresh[0]["id"]]["reactions"]], [("🎉", 2)])
            self.assertEqual((shown[fresh[1]["id"]]["body"], shown[fresh[1]["id"]]["edited"]),
                             ("fresh 1, edited", True))
            self.assertFalse(shown[fresh[2]["id"]].get("reactions"))
            self.assertEqual([(x["emoji"], x["count"]) for x in shown[fresh[4]["id"]]["reactions"]], [("🙂", 1)])
            self.assertEqual(self.alice.ok(R + "ListPinnedMessages", {"roomId": self.room})["pinnedMessages"], [])
            sentinel = carol.ok(M + "CreateMessage", {"roomId": self.room, "body": "sentinel"})["message"]
            heard = []
            while True:
                x = ws.recv(10)
                heard.append(x["type"])
                if x["type"] == "message.created" and x["message"]["id"] == sentinel["id"]:
                    break
            self.assertNotIn("reaction.added", heard)
            self.assertNotIn("message.updated", heard)
        finally:
            ws.sock.close()
        # unread counts count them as before, and they change again through any process
        for proc in (self.a, self.b, self.full):
            self.assertEqual(self.counts(self.bob.on(proc))[0], 20 + 5 + 1)
        self.bob.ok(M + "AddReaction", {"roomId": self.room, "eventId": fresh[1]["id"], "emoji": "👍"})
        self.alice.ok(M + "RemoveReaction", {"roomId": self.room, "eventId": fresh[0]["id"], "emoji": "🎉"})
        for proc in (self.a, self.b, self.full):
            c = self.alice.on(proc)
            wait_for(lambda: [(x["emoji"], x["count"]) for x in c.ok(M + "GetMessage", {
                "roomId": self.room, "eventId": fresh[0]["id"]})["message"]["reactions"]] == [("🎉", 1)], 10,
                "the reaction taken back")
            got = c.ok(M + "GetMessage", {"roomId": self.room, "eventId": fresh[1]["id"]})["message"]
            self.assertEqual((got["body"], [x["emoji"] for x in got["reactions"]]), ("fresh 1, edited", ["👍"]))
        self.same_everywhere(self.bob)

    def test_a_restart_from_a_snapshot_keeps_the_cold_timeline(self):
        for i in range(30):
            self.alice.ok(M + "CreateMessage", {"roomId": self.room, "body": "more %02d" % i})

        end = int(self.alice.ok(R + "GetRoomEvents", {"roomId": self.room, "limit": 1})["page"]["endCursor"])

        def snapshot():  # (written every 20 events: one covers the second batch)
            got = [int(x) for x in re.findall(r"read-model snapshot at event (\d+) written",
                                              self.a.stderr() + self.b.stderr() + self.full.stderr())]
            return got and max(got) >= end - 20

        wait_for(snapshot, 30, "a read-model snapshot")
        self.b.stop()
        self.b.start()
        self.assertRegex(self.b.stderr(), r"read model loaded from the snapshot at event \d+")
        wait_for(lambda: self.cold(self.b) >= 40, 20, "old messages out of memory after the restart")
        events = self.same_everywhere(self.bob)
        self.assertEqual(len([e for e in events if "messagePosted" in e]), 60)
        # and it goes on changing old messages after the restart
        self.bob.ok(M + "AddReaction", {"roomId": self.room, "eventId": self.posted[0]["id"], "emoji": "🎉"})
        self.same_everywhere(self.alice)

    def test_a_quiet_thread_keeps_its_replies_out_of_memory_and_shows_them_alike(self):
        # a process that counts a thread quiet after a second without a reply
        q = self.chatto(embedded=False, env=self.env, args=FAST_AUTH + COLD + ["--core-resident-idle-after", "1s"])
        root = self.posted[29]
        replies = []
        for i in range(12):
            who = self.bob if i % 2 else self.alice
            replies.append(who.ok(M + "CreateMessage", {"roomId": self.room, "body": "reply %02d" % i,
                                                         "threadRootEventId": root["id"]})["message"])
        want_ids = [x["id"] for x in replies]
        ask = {"roomId": self.room, "threadRootEventId": root["id"], "limit": 100}

        def shown_from_the_stream():
            """The whole thread from q, its replies read from their posts (q fetched them)."""
            before = self.metric(q, "chatto_message_body_fetches_total")
            got = self.alice.on(q).ok(T + "GetThreadReplies", ask)["page"]["events"]
            return [e["id"] for e in got] == want_ids and \
                self.metric(q, "chatto_message_body_fetches_total") - before >= 12
        wait_for(shown_from_the_stream, 30, "the quiet thread's replies out of q's memory")

        def thread(client, limit):
            """The thread paged backwards from the newest, then forwards from the start."""
            back, cursor = [], None
            while True:
                req = {"roomId": self.room, "threadRootEventId": root["id"], "limit": limit}
                if cursor:
                    req["before"] = cursor
                page = client.ok(T + "GetThreadReplies", req)["page"]
                back = page["events"] + back
                if not page["hasOlder"]:
                    break
                cursor = page["startCursor"]
            fwd, cursor = [], "0"
            while True:
                page = client.ok(T + "GetThreadReplies", {"roomId": self.room, "threadRootEventId": root["id"],
                                                          "limit": limit, "after": cursor})["page"]
                fwd += page["events"]
                if not page["hasNewer"]:
                    break
                cursor = page["endCursor"]
            self.assertEqual(fwd, back)
            return back

        def followed(client):
            out = client.ok(T + "ListFollowedThreads", {})
            return {t["threadRootEventId"]: t["unreadCount"] for t in out["threads"]}, out["unreadThreadCount"]

        want = thread(self.alice.on(self.full), 5)
        self.assertEqual([e["messagePosted"]["message"]["body"] for e in want], ["reply %02d" % i for i in range(12)])
        self.assertEqual(thread(self.alice.on(q), 5), want)
        # unread replies of a followed thread count the cold ones: alice (the root's author) has bob's 6 unread
        self.assertEqual(followed(self.alice.on(q)), followed(self.alice.on(self.full)))
        self.assertEqual(followed(self.alice.on(q))[0][root["id"]], 6)
        # read up to a cold reply, named by its id
        self.alice.on(q).ok(T + "MarkThreadAsRead", {"roomId": self.room, "threadRootEventId": root["id"],
                                                     "eventId": replies[5]["id"]})
        wait_for(lambda: followed(self.alice.on(q))[0][root["id"]] == 3, 10, "3 of bob's replies unread")
        self.assertEqual(followed(self.alice.on(self.full)), followed(self.alice.on(q)))
        # a reaction to a cold reply brings it back first, on every process
        self.bob.on(q).ok(M + "AddReaction", {"roomId": self.room, "eventId": replies[2]["id"], "emoji": "👀"})
        for proc in (q, self.a, self.full):
            wait_for(lambda: self.alice.on(proc).ok(M + "GetMessage", {"roomId": self.room,
                                                                      "eventId": replies[2]["id"]})["message"]
                     .get("reactions"), 10, "the reaction")
        want = thread(self.alice.on(self.full), 5)
        self.assertEqual(want[2]["messagePosted"]["message"]["reactions"][0]["emoji"], "👀")
        self.assertEqual(thread(self.alice.on(q), 5), want)
        # a new reply: the thread goes on, in order
        late = self.bob.on(q).ok(M + "CreateMessage", {"roomId": self.room, "body": "late reply",
                                                        "threadRootEventId": root["id"]})["message"]
        got = self.alice.on(q).ok(T + "GetThreadReplies", ask)["page"]["events"]
        self.assertEqual([e["id"] for e in got], want_ids + [late["id"]])
        self.assertEqual(self.alice.on(q).ok(M + "GetMessage", {"roomId": self.room, "eventId": root["id"]})
                         ["message"]["thread"]["replyCount"], 13)
