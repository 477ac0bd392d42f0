# SPDX-License-Identifier: MIT
"""A process's view of the event stream never silently loses an event. nats.c's ordered consumer cannot see a
message the server did not send it (seen after stream-leader failovers under load: a process skipped an
acknowledged event, or stayed silent behind the stream while it said it was ready), so the follower checks the
stream sequence itself and fetches what is missing, and the keeper resubscribes a follower that has stalled. A test
hook (CHATTO_TEST_FOLLOWER_FAULT) makes the subscription lose messages the way the server did."""
import re

from harness import FAST_AUTH, Client, TestCase, external_env, wait_for

POSTS = 24


class Follower(TestCase):
    def start(self, fault):
        self.c = self.chatto(args=FAST_AUTH, env={"CHATTO_TEST_FOLLOWER_FAULT": fault})
        self.user = Client(self.c)
        # each write may answer 503 (stored, not applied here yet) while the follower is being repaired
        if self.user.register("follow", token=True).status != 200:
            wait_for(lambda: self.user.login("follow", token=True).status == 200, 30, "a login")
        r = self.user.call("chatto.api.v1.RoomService/CreateRoom", {"name": "follow"})
        self.assertIn(r.status, (200, 503), r.body)
        wait_for(self.find_room, 30, "the room")

    def find_room(self):
        rooms = self.user.ok("chatto.api.v1.RoomService/ListRooms")["rooms"]
        self.room = next((x["room"]["id"] for x in rooms if x["room"]["name"] == "follow"), None)
        return self.room

    def post_all(self):
        """Post POSTS messages one after another; a post whose event this process has not applied within the
        request deadline answers 503 (stored, retry): that is allowed here, losing it is not."""
        for i in range(POSTS):
            r = self.user.call("chatto.api.v1.MessageService/CreateMessage",
                               {"roomId": self.room, "body": "follow %d" % i}, {"Idempotency-Key": "follow-%d" % i})
            self.assertIn(r.status, (200, 503), r.body)

    def bodies(self):
        page = self.user.ok("chatto.api.v1.RoomService/GetRoomEvents", {"roomId": self.room, "limit": 100})["page"]
        return [e["messagePosted"]["message"]["body"] for e in page["events"] if "messagePosted" in e]

    def assert_all_in_order(self):
        want = ["follow %d" % i for i in range(POSTS)]
        wait_for(lambda: self.bodies() == want, 30, "every message, once, in order")
        # a second process-level view: the same history is what a new page load would read
        self.assertEqual(self.bodies(), want)

    def test_messages_the_server_skips_are_fetched_in_order(self):
        self.start("drop:5")  # every fifth message a subscription receives is lost
        self.post_all()
        self.assert_all_in_order()
        self.assertIn("did not deliver", self.c.stderr())
        self.c.wait_ready(30)

    def test_a_stalled_follower_is_subscribed_again(self):
        self.start("stall:12")  # the subscription goes deaf after its twelfth message, once
        self.post_all()
        self.assert_all_in_order()
        self.assertIn("subscribing again", self.c.stderr())
        self.c.wait_ready(30)
        # and it keeps following live afterwards
        self.user.ok("chatto.api.v1.MessageService/CreateMessage", {"roomId": self.room, "body": "after"})
        wait_for(lambda: self.bodies()[-1:] == ["after"], 30, "a message after the repair")

    def test_a_follower_that_worked_off_a_backlog_gives_memory_back(self):
        """A process joining a stream with a long history (here 150 events; 20,000 in production) replays it;
        what nats.c buffered ahead of it is handed back to the system once it has caught up, once."""
        n = self.nats(token="follow-test-token")
        env = external_env(n)
        a = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        user = Client(a)
        user.register("backlog", token=True)
        room = user.ok("chatto.api.v1.RoomService/CreateRoom", {"name": "backlog"})["room"]["id"]
        for i in range(150):
            user.ok("chatto.api.v1.MessageService/CreateMessage", {"roomId": room, "body": "m %d" % i})
        self.assertNotIn("worked off a backlog", a.stderr())  # it kept up: nothing to give back
        b = self.chatto(embedded=False, env=dict(env, CHATTO_TEST_FOLLOWER_TRIM_BACKLOG="100"), args=FAST_AUTH)
        line = wait_for(lambda: re.search(r"the CHATTO_EVENTS follower worked off a backlog of (\d+) events; freed "
                                          r"memory given back \(RSS (\d+) -> (\d+) KiB\)", b.stderr()), 30,
                        "memory given back after the replay")
        self.assertGreaterEqual(int(line[1]), 100)
        self.assertGreater(int(line[2]), 0)
        # and the process it came back to serves the whole history
        page = Client(b, token=user.token).ok("chatto.api.v1.RoomService/GetRoomEvents",
                                             {"roomId": room, "limit": 1})["page"]["events"]
        self.assertEqual(page[-1]["messagePosted"]["message"]["body"], "m 149")
