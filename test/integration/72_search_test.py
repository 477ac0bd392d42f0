# SPDX-License-Identifier: MIT
"""Message search (MessageSearchService): relevance, filters, paging, permissions, edit and delete privacy down
to the index files' bytes, rebuilding a deleted index, and bad input. Every wait polls with a deadline."""
import os
import shutil
import subprocess
import time

from harness import CHATTO_BIN, FAST_AUTH, WRAPPER, Client, TestCase, external_env, grep_tree, upload_file, wait_for

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
S = "chatto.api.v1.MessageSearchService/"


class Search(TestCase):
    def setUp(self):
        super().setUp()
        self.c = self.chatto(args=FAST_AUTH + ["--search-provider-purge-delay", "200ms"])
        self.alice = Client(self.c)
        self.alice_id = self.alice.register("alice").json()["user"]["id"]
        self.bob = Client(self.c)
        self.bob_id = self.bob.register("bob").json()["user"]["id"]
        self.carol = Client(self.c)
        self.carol_id = self.carol.register("carol").json()["user"]["id"]
        self.index_dir = os.path.join(self.c.data_dir, "search")

    def room(self, client, name, **kw):
        body = {"name": name}
        body.update(kw)
        return client.ok(R + "CreateRoom", body)["room"]["id"]

    def post(self, client, room, body, **kw):
        req = {"roomId": room, "body": body}
        req.update(kw)
        return client.ok(M + "CreateMessage", req)["message"]["id"]

    def search(self, client, query, **kw):
        req = {"query": query}
        req.update(kw)
        r = client.call(S + "SearchMessages", req)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def ids(self, client, query, **kw):
        return [x["eventId"] for x in self.search(client, query, **kw)["results"]]

    def wait_ids(self, client, query, want, timeout=10, **kw):
        """Poll until the search returns exactly want (a list, in order), or fail with the last answer."""
        got = []

        def ok():
            got[:] = self.ids(client, query, **kw)
            return got == want
        try:
            wait_for(ok, timeout, "search %r" % query, interval=0.05)
        except AssertionError:
            self.assertEqual(got, want, query)

    def bad(self, client, query, needle, **kw):
        req = {"query": query}
        req.update(kw)
        r = client.call(S + "SearchMessages", req)
        self.assertEqual((r.status, r.json().get("code")), (400, "invalid_argument"), (query, r))
        self.assertIn(needle, r.json()["message"], query)
        return r.json()["message"]

    def test_status_and_relevance_order(self):
        wait_for(lambda: self.alice.ok(S + "GetStatus")["state"] == "MESSAGE_SEARCH_STATE_READY", 20, "search ready")
        a = self.post(self.alice, "general", "deploy deploy deploy the release train")
        b = self.post(self.alice, "general", "we should deploy the new release on Friday after the standup meeting "
                                              "if nothing else comes up in review")
        c = self.post(self.alice, "general", "lunch menu")
        d = self.post(self.alice, "general", "deploy")
        # bm25: more occurrences and shorter text rank first
        self.wait_ids(self.alice, "deploy", [a, d, b])
        # equal relevance: the newer first
        t1 = self.post(self.alice, "general", "tiebreak words")
        t2 = self.post(self.alice, "general", "tiebreak words")
        self.wait_ids(self.alice, "tiebreak", [t2, t1])
        self.assertNotIn(c, self.ids(self.alice, "deploy"))
        # two words: both must match; AND changes nothing
        self.assertEqual(self.ids(self.alice, "deploy release"), [a, b])
        self.assertEqual(self.ids(self.alice, "deploy AND release"), [a, b])
        # phrase, prefix, case and diacritics folding
        self.assertEqual(self.ids(self.alice, '"release train"'), [a])
        self.assertEqual(self.ids(self.alice, '"train release"'), [])
        self.assertEqual(self.ids(self.alice, "stand*"), [b])
        e = self.post(self.alice, "general", "Café Zürich naïve")
        self.wait_ids(self.alice, "cafe zurich", [e])
        self.assertEqual(self.ids(self.alice, "NAIVE"), [e])
        self.assertEqual(self.ids(self.alice, "zür*"), [e])
        r = self.search(self.alice, "release train")["results"][0]
        # the result carries enough to open history around it, and a highlighted snippet
        self.assertEqual((r["roomId"], r["roomName"], r["message"]["id"]), ("general", "general", a))
        self.assertIn("\x02release\x03 \x02train\x03", r["snippet"])
        around = self.alice.ok(R + "GetRoomEventsAround", {"roomId": "general", "eventId": a})
        self.assertIn(a, [ev["id"] for ev in around["page"]["events"]])
        page = self.alice.ok(R + "GetRoomEvents", {"roomId": "general", "before": str(int(r["cursor"]) + 1),
                                                   "limit": 1})["page"]
        self.assertEqual(page["events"][0]["id"], a)
        self.assertGreater(r["relevanceScore"], 0)
        self.assertIn(self.alice_id, self.search(self.alice, "train")["includes"]["users"])

    def test_filters(self):
        ops = self.room(self.alice, "Ops Team")
        self.bob.ok(R + "JoinRoom", {"roomId": ops})
        a = self.post(self.alice, ops, "filter alpha")
        b = self.post(self.bob, ops, "filter beta")
        c = self.post(self.bob, "general", "filter gamma")
        t = self.post(self.alice, "general", "filter thread reply", threadRootEventId=c)
        self.wait_ids(self.bob, "filter", [t, c, b, a], order="MESSAGE_SEARCH_ORDER_NEWEST")
        self.assertEqual(set(self.ids(self.bob, "filter in:#general")), {c, t})
        self.assertEqual(set(self.ids(self.bob, 'filter in:"ops team"')), {a, b})
        self.assertEqual(set(self.ids(self.bob, "filter from:@bob")), {b, c})
        self.assertEqual(set(self.ids(self.bob, 'filter in:#general in:"Ops Team" from:@alice')), {a, t})
        self.assertEqual(set(self.ids(self.bob, "filter from:@bob in:general")), {c})
        self.assertEqual(set(self.ids(self.bob, "filter", roomId=ops)), {a, b})
        self.assertEqual(set(self.ids(self.bob, "filter", authorId=self.alice_id)), {a, t})
        self.assertEqual(set(self.ids(self.bob, "filter is:thread")), {c, t})
        self.assertEqual(set(self.ids(self.bob, "from:@alice")) & {a, t}, {a, t})  # filters alone
        today = time.strftime("%Y-%m-%d", time.gmtime())
        yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
        self.assertEqual(set(self.ids(self.bob, "filter after:" + yesterday)), {a, b, c, t})
        self.assertEqual(self.ids(self.bob, "filter after:" + today), [])
        self.assertEqual(set(self.ids(self.bob, "filter before:" + tomorrow)), {a, b, c, t})
        self.assertEqual(self.ids(self.bob, "filter before:" + today), [])
        self.assertEqual(self.ids(self.bob, "filter has:attachment"), [])
        self.assertEqual(self.ids(self.bob, "filter", hasAttachments=True), [])
        asset = upload_file(self, self.bob, "general", b"report bytes", name="report.txt", ctype="text/plain")
        f = self.post(self.bob, "general", "filter with a file", attachmentAssetIds=[asset["id"]])
        self.wait_ids(self.bob, "filter has:attachment", [f])
        self.assertEqual(self.ids(self.bob, "filter", hasAttachments=True), [f])
        self.assertEqual(self.ids(self.bob, "has:file from:@bob"), [f])
        self.assertEqual(self.ids(self.bob, "filter", createdAfter="2999-01-01T00:00:00Z"), [])

    def test_paging(self):
        ids = [self.post(self.alice, "general", "pager item %d" % i) for i in range(7)]
        self.wait_ids(self.alice, "pager", ids[::-1], order="MESSAGE_SEARCH_ORDER_NEWEST")
        seen, cursor = [], ""
        for _ in range(5):
            r = self.search(self.alice, "pager", pageSize=3, cursor=cursor, order="MESSAGE_SEARCH_ORDER_NEWEST")
            seen += [x["eventId"] for x in r["results"]]
            cursor = r["nextCursor"]
            if not cursor:
                break
        self.assertEqual(seen, ids[::-1])
        # a cursor belongs to its user and query
        r = self.search(self.alice, "pager", pageSize=3)
        for who, q in ((self.bob, "pager"), (self.alice, "other")):
            bad = who.call(S + "SearchMessages", {"query": q, "pageSize": 3, "cursor": r["nextCursor"]})
            self.assertEqual((bad.status, bad.json()["code"]), (400, "invalid_argument"))
        self.assertEqual(self.alice.call(S + "SearchMessages", {"query": "x", "pageSize": 101}).status, 400)

    def test_permissions(self):
        secret = self.room(self.alice, "Secret", visibility="private")
        pub = self.room(self.alice, "Public")
        s1 = self.post(self.alice, secret, "permcheck private words")
        p1 = self.post(self.alice, pub, "permcheck public words")
        g1 = self.post(self.alice, "general", "permcheck general words")
        dm = self.alice.ok(R + "StartDM", {"participantIds": [self.bob_id]})["room"]["id"]
        d1 = self.post(self.alice, dm, "permcheck direct words")
        self.wait_ids(self.alice, "permcheck", [d1, g1, p1, s1], order="MESSAGE_SEARCH_ORDER_NEWEST")
        # carol: only general (not in the public room she has not joined, not in the private room, not in the DM)
        self.assertEqual(self.ids(self.carol, "permcheck"), [g1])
        self.bad(self.carol, "permcheck in:#Secret", "no room of yours")
        self.assertEqual(self.ids(self.carol, "permcheck", roomId=secret), [])
        self.assertEqual(set(self.ids(self.bob, "permcheck")), {g1, d1})
        # an admin sees no DM (nor private room) they are not in
        self.alice.ok("chatto.admin.v1.AdminUserService/SetRole", {"userId": self.carol_id, "role": "admin"})
        self.assertEqual(self.ids(self.carol, "permcheck"), [g1])
        # joining opens the room's past; leaving closes it at once
        self.carol.ok(R + "JoinRoom", {"roomId": pub})
        self.assertEqual(set(self.ids(self.carol, "permcheck")), {g1, p1})
        self.carol.ok(R + "LeaveRoom", {"roomId": pub})
        self.assertEqual(self.ids(self.carol, "permcheck"), [g1])
        self.alice.ok(R + "AddMember", {"roomId": secret, "userId": self.carol_id})
        self.assertEqual(set(self.ids(self.carol, "permcheck")), {g1, s1})
        self.alice.ok(R + "RemoveMember", {"roomId": secret, "userId": self.carol_id})
        self.assertEqual(self.ids(self.carol, "permcheck"), [g1])

    def test_edit_and_delete_privacy(self):
        m = self.post(self.alice, "general", "the code is xylophonequartz today")
        self.wait_ids(self.alice, "xylophonequartz", [m])
        self.alice.ok(M + "UpdateMessage", {"roomId": "general", "eventId": m, "body": "the code is marmaladewhisk"})
        # found by its new text only, at once (a lagging index never shows the old text)
        self.assertEqual(self.ids(self.alice, "xylophonequartz"), [])
        self.wait_ids(self.alice, "marmaladewhisk", [m])
        self.wait_ids(self.alice, "xylophonequartz", [])
        wait_for(lambda: not grep_tree(self.index_dir, b"xylophonequartz"), 15, "old text gone from the index files")
        self.alice.ok(M + "DeleteMessage", {"roomId": "general", "eventId": m})
        self.assertEqual(self.ids(self.alice, "marmaladewhisk"), [])
        wait_for(lambda: not grep_tree(self.index_dir, b"marmaladewhisk"), 15, "deleted text gone from the index files")

    def test_rebuild_after_deleting_the_index(self):
        ids = [self.post(self.alice, "general", "rebuildable number %d" % i) for i in range(20)]
        gone = self.post(self.alice, "general", "rebuildable but deleted")
        self.alice.ok(M + "DeleteMessage", {"roomId": "general", "eventId": gone})
        self.wait_ids(self.alice, "rebuildable", ids[::-1], order="MESSAGE_SEARCH_ORDER_NEWEST")
        # a restart resumes (the position is kept in the index) ...
        self.c.stop()
        self.c.start()
        self.wait_ids(self.alice, "rebuildable", ids[::-1], order="MESSAGE_SEARCH_ORDER_NEWEST")
        # ... and a deleted index is rebuilt from the stream
        self.c.stop()
        shutil.rmtree(self.index_dir)
        self.c.start()
        self.wait_ids(self.alice, "rebuildable", ids[::-1], timeout=30, order="MESSAGE_SEARCH_ORDER_NEWEST")
        self.assertTrue(os.path.exists(os.path.join(self.index_dir, "index.db")))

    def test_bad_input(self):
        for q, needle in (('"unbalanced', "unbalanced quote"), ('ok "also', "unbalanced quote"),
                          ("NEAR(a b)", "NEAR is not supported"), ("a OR b", "OR is not supported"),
                          ("NOT a", "NOT is not supported"), ("*", "* is allowed only"), ("a *", "* is allowed only"),
                          ("*abc", "* is allowed only"), ("a*b", "* is allowed only"), ("x*", "at least 2"),
                          ('""', "empty phrase"), ("AND", "AND must stand"), ("a AND", "AND must stand"),
                          ("body:secret", 'unknown filter "body:"'), ("rank:1", 'unknown filter "rank:"'),
                          ("in:", "in: needs a room"), ("from:@nobody", "no such user"),
                          ("before:2026-13-01", "YYYY-MM-DD"), ("after:yesterday", "YYYY-MM-DD"),
                          ("before:2026-02-30", "YYYY-MM-DD"), ("has:cats", "has:attachment"),
                          ("is:open", "is:thread"), ("x" * 1025, "1024"), ("   ", "nothing to search"),
                          ("!!! ---", "nothing to search"), (" ".join(["w%d" % i for i in range(33)]), "too many"),
                          ("after:2026-01-02 before:2026-01-01", "earlier")):
            msg = self.bad(self.alice, q, needle)
            self.assertNotIn("fts5", msg.lower())
            self.assertNotIn("sqlite", msg.lower())
        self.bad(self.alice, "", "query: ")
        for body in ({}, {"query": 5}, {"query": "a", "order": "sideways"}, {"query": "a", "cursor": "zzz"},
                     {"query": "a", "createdAfter": "yesterday"}, {"query": "a", "pageSize": -1}):
            r = self.alice.call(S + "SearchMessages", body)
            self.assertEqual((r.status, r.json()["code"]), (400, "invalid_argument"), (body, r))
        # things that look like syntax but are text, safely quoted
        m = self.post(self.alice, "general", 'see https://example.org/x at 10:30 (ok) "quoted" a-b')
        self.wait_ids(self.alice, "https://example.org/x", [m])
        for q in ("10:30", "(ok)", '"a-b"', "a-b", "^see", "see-", 'quoted"', "ok)"):
            if q == 'quoted"':
                continue
            r = self.alice.call(S + "SearchMessages", {"query": q})
            self.assertEqual(r.status, 200, (q, r))
        self.assertEqual(self.ids(self.alice, '"10 30"'), [m])


class SearchTopology(TestCase):
    """search.enabled off; a server without an index of its own, answered by `chatto search-provider`."""

    def test_disabled(self):
        c = self.chatto(args=FAST_AUTH, env={"CHATTO_SEARCH_ENABLED": "false"})
        alice = Client(c)
        alice.register("alice")
        self.assertEqual(alice.ok(S + "GetStatus")["state"], "MESSAGE_SEARCH_STATE_DISABLED")
        r = alice.call(S + "SearchMessages", {"query": "anything"})
        self.assertEqual((r.status, r.json()["code"]), (400, "failed_precondition"), r)
        self.assertIn("search.enabled", r.json()["message"])

    def test_separate_search_provider_process(self):
        n = self.nats(token="search-provider-token")
        c = self.chatto(embedded=False, env=external_env(n, CHATTO_SEARCH_PROVIDER_ENABLED="false"), args=FAST_AUTH)
        alice = Client(c)
        alice.register("alice")
        mid = alice.ok(M + "CreateMessage", {"roomId": "general", "body": "standalone provider finds this"})
        mid = mid["message"]["id"]
        # no index anywhere: an honest 503, and the status says so
        self.assertEqual(alice.ok(S + "GetStatus")["state"], "MESSAGE_SEARCH_STATE_UNAVAILABLE")
        r = alice.call(S + "SearchMessages", {"query": "standalone"})
        self.assertEqual((r.status, r.json()["code"]), (503, "unavailable"), r)
        # in embedded mode the subcommand refuses (it needs the external NATS the servers share)
        p = subprocess.run(WRAPPER + [CHATTO_BIN, "search-provider"], capture_output=True, text=True, timeout=30,
                           env={k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("external NATS", p.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
        env.update(external_env(n, CHATTO_SEARCH_PROVIDER_DIRECTORY=os.path.join(c.dir, "standalone-index")))
        sp = subprocess.Popen(WRAPPER + [CHATTO_BIN, "search-provider"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env)
        try:
            wait_for(lambda: alice.ok(S + "GetStatus")["state"] == "MESSAGE_SEARCH_STATE_READY", 20,
                     "the standalone provider")
            self.assertEqual([x["eventId"] for x in alice.ok(S + "SearchMessages", {"query": "standalone"})["results"]],
                             [mid])
        finally:
            sp.terminate()
            _, err = sp.communicate(timeout=30)
        self.assertEqual(sp.returncode, 0, err[-3000:])
        self.assertTrue(os.path.exists(os.path.join(c.dir, "standalone-index", "index.db")))
