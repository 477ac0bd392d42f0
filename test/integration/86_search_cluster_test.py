# SPDX-License-Identifier: MIT
"""Message search on a real cluster (cluster.py: 3 NATS nodes with nats.replicas = 3, 3 chatto processes, each with
its own search index): a search through any process finds a message posted through any other within a second, and
the indexes stay complete while processes come and go (a graceful stop, a kill -9, a new replica that builds its
index from the stream while the others answer). Every wait polls with a deadline."""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster import Cluster  # noqa: E402
from harness import Client, SANITIZER, TIME_SCALE, http_request, wait_for  # noqa: E402

M = "chatto.api.v1.MessageService/"
S = "chatto.api.v1.MessageSearchService/"


class SearchCluster(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster()
        try:
            self.cluster.start()
        except Exception:
            self.cluster.cleanup()
            raise
        self.alice = Client(self.cluster.lb)
        r = self.alice.register("alice", token=True)
        self.assertEqual(r.status, 200, r)

    def tearDown(self):
        self.cluster.cleanup()
        if self.cluster.reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(self.cluster.reports))

    def on(self, c):
        return self.alice.on(c)

    def found(self, client, word):
        r = client.call(S + "SearchMessages", {"query": word})
        return r.status == 200 and [x["eventId"] for x in r.json()["results"]]

    def all_ids(self, client, word):
        """Every result of a search, page after page (None on an error answer)."""
        ids, cursor = [], ""
        while True:
            r = client.call(S + "SearchMessages", {"query": word, "pageSize": 100, "cursor": cursor,
                                                   "order": "MESSAGE_SEARCH_ORDER_NEWEST"})
            if r.status != 200:
                return None
            ids += [x["eventId"] for x in r.json()["results"]]
            cursor = r.json()["nextCursor"]
            if not cursor:
                return ids

    def test_1_a_post_through_any_process_is_found_through_any_other_within_a_second(self):
        cs = self.cluster.chattos
        for c in cs:
            wait_for(lambda: self.on(c).ok(S + "GetStatus")["state"] == "MESSAGE_SEARCH_STATE_READY", 20,
                     "search ready through %d" % c.port)
        for i, writer in enumerate(cs):
            for j, reader in enumerate(cs):
                word = "crosscheck%d%dz" % (i, j)
                mid = self.on(writer).ok(M + "CreateMessage", {"roomId": "general", "body": "look: " + word})
                mid = mid["message"]["id"]
                wait_for(lambda: self.found(self.on(reader), word) == [mid], 1.0 * TIME_SCALE,
                         "%s (posted through process %d) found through process %d" % (word, i, j), interval=0.01)

    def test_2_indexes_stay_complete_while_processes_come_and_go(self):
        acked, stop, errors = [], threading.Event(), []
        token = self.alice.token

        def write():
            n = 0
            while not stop.is_set():
                body, key = "swarmword item %04d" % n, "swarm-%04d" % n
                for _ in range(100):
                    try:
                        r = http_request(self.cluster.lb.port, "POST", "/api/connect/" + M + "CreateMessage",
                                         {"roomId": "general", "body": body},
                                         {"Content-Type": "application/json", "Authorization": "Bearer " + token,
                                          "Idempotency-Key": key}, timeout=15)
                    except OSError:
                        time.sleep(0.1)
                        continue
                    if r.status == 200:
                        acked.append(r.json()["message"]["id"])
                        break
                    if r.status not in (502, 503, 504):
                        errors.append(r)
                        break
                    time.sleep(0.1)
                n += 1
                time.sleep(0.03)

        t = threading.Thread(target=write, daemon=True)
        t.start()
        try:
            wait_for(lambda: len(acked) >= 20, 30, "the first posts")
            # a graceful stop, then a new replica whose index starts empty, then a kill -9
            self.cluster.remove_chatto(self.cluster.chattos[0])
            wait_for(lambda: len(acked) >= 40, 30, "posts after a process left")
            fresh = self.cluster.add_chatto()
            wait_for(lambda: len(acked) >= 60, 30, "posts after a process joined")
            victim = self.cluster.chattos[0]
            self.cluster.chattos.remove(victim)
            self.cluster.lb.set_backends([x.port for x in self.cluster.chattos])
            victim.kill9()
            self.cluster.retire(victim)
            wait_for(lambda: len(acked) >= 80, 30, "posts after a kill -9")
        finally:
            stop.set()
            t.join(60)
        self.assertEqual(errors, [])
        want = sorted(set(acked))
        # every process (the new replica included) finds every acknowledged post, through whichever provider
        for c in self.cluster.chattos:
            got = []

            def complete():
                got[:] = sorted(self.all_ids(self.on(c), "swarmword") or [])
                return got == want
            try:
                wait_for(complete, 20 * TIME_SCALE, "every post found through process %d" % c.port, interval=0.2)
            except AssertionError:
                self.assertEqual(got, want)
        # and the new replica built its own index from the stream
        wait_for(lambda: os.path.exists(os.path.join(fresh.dir, "search", "index.db")), 10, "the new index")


if __name__ == "__main__":
    unittest.main()
