# SPDX-License-Identifier: MIT
"""A process's view of the event stream never silently loses an event. nats.c's ordered consumer cannot see a
message the server did not send it (seen after stream-leader failovers under load: a process skipped an
acknowledged event, or stayed silent behind the stream while it said it was ready), so the follower checks the
stream sequence itself and fetches what is missing, and the keeper resubscribes a follower that has stalled. A test
hook (CHATTO_TEST_FOLLOWER_FAULT) makes the subscription lose messages the way the server did."""
from harness import FAST_AUTH, Client, TestCase, wait_for

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
