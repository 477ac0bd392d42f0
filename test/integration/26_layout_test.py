# SPDX-License-Identifier: MIT
"""The store's layout version and its migrations (lib/store/layout.c): a fresh store gets the current version;
a store in layout 1 (what 0.1.0 made: no version key, the bucket chatto_presence, none of the buckets 0.2.0
added) is migrated by exactly one of several processes starting at once, with its accounts, sessions and
history kept; a layout newer than the binary knows makes it refuse to start. Real nats-server, real chatto; the
old layout is made through NATS here (fast, no old build needed). 91_upgrade runs the real 0.1.0 package."""
import json
import os
import re
import time

from harness import FAST_AUTH, ROOT, Client, TestCase, external_env, run_chatto, wait_for
from natsclient import NatsClient

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
CURRENT = 2
# buckets and streams 0.2.0 (layout 2) added to 0.1.0's (layout 1)
ADDED = ["KV_chatto_assets", "KV_chatto_follows", "KV_chatto_leases", "KV_chatto_notification_policies",
         "KV_chatto_notifications", "KV_chatto_push_subscriptions", "KV_chatto_uploads", "OBJ_SERVER_ASSETS"]
# what 0.1.0's bootstrap made of chatto_presence (nats.c 3.4's KV create), as nats-server 2.9 reports it
PRESENCE_V1 = {
    "name": "KV_chatto_presence", "description": "Chatto presence heartbeats", "subjects": ["$KV.chatto_presence.>"],
    "retention": "limits", "max_consumers": -1, "max_msgs": -1, "max_bytes": -1, "max_age": 120 * 10**9,
    "max_msgs_per_subject": 1, "max_msg_size": -1, "discard": "new", "storage": "file", "num_replicas": 1,
    "duplicate_window": 120 * 10**9, "allow_rollup_hdrs": True, "deny_delete": True, "deny_purge": False,
    "allow_direct": True, "mirror_direct": False, "sealed": False,
}
MIGRATING = "store: migrating the layout from version 1 to 2"


def to_layout_1(nc):
    """Turns a store the current chatto made into what 0.1.0 left: no layout version, chatto_presence with a
    heartbeat in it, none of the buckets and streams added since, and no durable consumers (0.1.0 made none)."""
    nc.kv_delete("chatto_meta", "layout_version")
    for name in ADDED:
        nc.stream_delete(name)
    for consumer in nc.consumers("CHATTO_EVENTS"):
        nc.consumer_delete("CHATTO_EVENTS", consumer)
    nc.stream_create(PRESENCE_V1)
    nc.kv_put("chatto_presence", "someone.proc", "online")


class Layout(TestCase):
    def setUp(self):
        super().setUp()
        self.n = self.nats(token="layout-test-token")
        self.env = external_env(self.n)

    def nc(self):
        c = NatsClient(self.n.port, token=self.n.token)
        self.addCleanup(c.close)
        return c

    def start(self, **kw):
        return self.chatto(args=FAST_AUTH, embedded=False, env=self.env, **kw)

    def test_fresh_store_gets_the_current_layout(self):
        c = self.start()
        self.assertEqual(self.nc().kv_get("chatto_meta", "layout_version"), str(CURRENT).encode())
        self.assertIn("store: new installation, layout version %d" % CURRENT, c.stderr())
        self.assertNotIn("migrating", c.stderr())
        # and a restart finds it current: nothing to do, nothing said
        c.stop()
        c.start()
        self.assertEqual(c.stderr().count("layout version"), 1, c.stderr())

    def test_layout_1_is_migrated_once_by_one_of_three_processes_and_the_data_kept(self):
        a = self.start()
        alice, bob = Client(a), Client(a)
        self.assertEqual(alice.register("alice").status, 200)
        self.assertEqual(bob.register("bob").status, 200)
        room = alice.ok(R + "CreateRoom", {"name": "ops"})["room"]["id"]
        bob.ok(R + "JoinRoom", {"roomId": room})
        posted = [alice.ok(M + "CreateMessage", {"roomId": room, "body": "before the upgrade %d" % i})["message"]["id"]
                  for i in range(3)]
        alice.ok(M + "AddReaction", {"roomId": room, "eventId": posted[0], "emoji": "👍"})
        bob.ok(R + "MarkRoomAsRead", {"roomId": room, "messageId": posted[-1]})
        self.assertEqual(a.stop(), 0)

        nc = self.nc()
        to_layout_1(nc)
        self.assertIsNone(nc.kv_get("chatto_meta", "layout_version"))
        self.assertIn("KV_chatto_presence", nc.streams())

        # three processes at once on the old layout: one migrates, the others wait for it, all become ready
        procs = [self.start(start=False) for _ in range(3)]
        for p in procs:
            p.start(wait_ready=False)
        for p in procs:
            p.wait_ready(60)
        logs = [p.stderr() for p in procs]
        self.assertEqual(sum(l.count(MIGRATING) for l in logs), 1, "\n---\n".join(logs))
        migrator = next(l for l in logs if MIGRATING in l)
        self.assertIn("store: layout version 2 written", migrator)
        self.assertIn("deleted the bucket chatto_presence", migrator)
        for l in logs:
            self.assertNotIn("new installation", l)
            self.assertNotRegex(l, r"(?m)^\S+ (warn|error) ", l)

        self.assertEqual(nc.kv_get("chatto_meta", "layout_version"), b"2")
        streams = nc.streams()
        self.assertNotIn("KV_chatto_presence", streams)
        for name in ADDED:
            self.assertIn(name, streams)
        # the lease is given back: a later migration need not wait for it to expire
        lease = json.loads(nc.kv_get("chatto_leases", "layout"))
        self.assertEqual(lease["until"], 0)

        # the data: sessions from before still work, a fresh login too, history, reactions and read state kept
        for p in procs:
            b = bob.on(p)
            page = b.ok(R + "GetRoomEvents", {"roomId": room})["page"]
            bodies = [e["messagePosted"]["message"]["body"] for e in page["events"] if "messagePosted" in e]
            self.assertEqual(bodies[:3], ["before the upgrade %d" % i for i in range(3)])
            first = next(e for e in page["events"] if e.get("id") == posted[0])
            self.assertEqual(first["messagePosted"]["message"]["reactions"][0]["emoji"], "👍")
            rooms = {r["room"]["id"]: r for r in b.ok(R + "ListRooms")["rooms"]}
            self.assertEqual(rooms[room]["unreadCount"], 0)
        for p in procs:
            again = Client(p)
            self.assertEqual(again.login("alice").status, 200)
            again.ok(M + "CreateMessage", {"roomId": room, "body": "after the upgrade"})

        # restarting on the migrated store migrates nothing
        procs[0].stop()
        procs[0].start()
        self.assertEqual(procs[0].stderr().count(MIGRATING), logs[0].count(MIGRATING))

    def test_chatto_presence_stays_while_a_0_1_0_process_runs(self):
        # a rolling upgrade: a process of 0.1.0 still serves, and checks chatto_presence for its readiness
        self.start().stop()
        nc = self.nc()
        to_layout_1(nc)
        # what 0.1.0 registers (procs.c: "v1 <ms>" and its settings' fingerprints, none compared here; no layout)
        nc.kv_put("chatto_processes", "oldhost_4242-0a0b0c0d", "v1 %d\n" % int(time.time() * 1000))
        b = self.start()
        self.assertIn("store: layout 1 -> 2: 1 process of 0.1.0 still running uses the bucket chatto_presence, so "
                      "it stays", b.stderr())
        self.assertIn("KV_chatto_presence", nc.streams())
        self.assertEqual(nc.kv_get("chatto_meta", "layout_version"), b"2")
        # a process of this release says its layout in its record (the last line), so it never counts as 0.1.0
        mine = [k for k in nc.kv_keys("chatto_processes")
                if k != "oldhost_4242-0a0b0c0d" and nc.kv_get("chatto_processes", k) is not None]
        self.assertEqual(len(mine), 1)
        self.assertTrue(nc.kv_get("chatto_processes", mine[0]).decode().endswith("\nlayout %d\n" % CURRENT))

    def test_the_test_knows_the_current_layout(self):
        # bumping STORE_LAYOUT_VERSION needs a migration step in layout.c and its test here (store.h's rule)
        with open(os.path.join(ROOT, "lib", "store", "store.h")) as f:
            version = int(re.search(r"(?m)^#define STORE_LAYOUT_VERSION (\d+)", f.read())[1])
        self.assertEqual(version, CURRENT, "layout %d has no migration test in 26_layout_test.py" % version)

    def test_a_newer_layout_is_refused_and_left_alone(self):
        a = self.start()
        self.assertEqual(Client(a).register("alice").status, 200)
        a.stop()
        nc = self.nc()
        nc.kv_put("chatto_meta", "layout_version", "3")
        streams = nc.streams()

        b = self.start(start=False)
        b.start(wait_ready=False)
        wait_for(lambda: b.proc.poll() is not None, 30, "chatto to refuse the newer layout and exit")
        self.assertEqual(b.proc.returncode, 2, b.stderr())
        err = b.stderr()
        self.assertRegex(err, r"error +app: refusing to serve: the store has layout version 3, but this chatto "
                              r"knows layouts up to 2 only")
        self.assertIn("downgrades are not supported", err)
        self.assertNotIn("migrating", err)
        # untouched: the version and the streams are as the newer Chatto left them
        self.assertEqual(nc.kv_get("chatto_meta", "layout_version"), b"3")
        self.assertEqual(nc.streams(), streams)

        # an operator command says the same
        p = run_chatto(["user", "list"], env=self.env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("the store has layout version 3, but this chatto knows layouts up to 2", p.stderr)

    def test_an_unreadable_version_is_an_error_not_a_guess(self):
        a = self.start()
        a.stop()
        self.nc().kv_put("chatto_meta", "layout_version", "two")
        b = self.start(start=False)
        b.start(wait_ready=False)
        wait_for(lambda: re.search(r"bootstrap failed, retrying: .*layout_version is not a layout version",
                                   b.stderr()), 30, "the bootstrap to fail on the bad version")
        self.assertNotEqual(b.get("/readyz").status, 200)

    def test_a_live_migration_lease_makes_every_process_wait_then_one_migrates(self):
        # another migrator (a process that died mid-migration, say) holds the lease a few seconds more: all three
        # wait for it rather than migrate at once, and when it runs out exactly one of them takes over
        self.start().stop()
        nc = self.nc()
        leases = nc.stream_config("KV_chatto_leases")
        to_layout_1(nc)
        # that migrator's bootstrap had made the buckets of layout 2 already, chatto_leases among them
        nc.stream_create(leases)
        # held until every process has said it waits (no clock race on a busy machine), then given up
        until = int(time.time() * 1000) + 600000
        nc.kv_put("chatto_leases", "layout", json.dumps({"holder": "pid1-deadbeef0000", "until": until}))
        procs = [self.start(start=False) for _ in range(3)]
        for p in procs:
            p.start(wait_ready=False)
        waiting = "another process is migrating the layout from version 1 to 2; waiting for it"
        try:
            wait_for(lambda: all(waiting in p.stderr() for p in procs), 60, "all three to wait for the lease")
        except AssertionError:
            # (seen once in a clean-clone run under load: say what each process was doing instead)
            raise AssertionError("not all three waited for the lease:\n" + "\n---\n".join(
                "process %d:\n%s" % (i, p.stderr()[-3000:]) for i, p in enumerate(procs)))
        self.assertIsNone(nc.kv_get("chatto_meta", "layout_version"))
        nc.kv_put("chatto_leases", "layout", json.dumps({"holder": "pid1-deadbeef0000", "until": 0}))
        for p in procs:
            p.wait_ready(60)
        logs = [p.stderr() for p in procs]
        self.assertEqual(sum(l.count(MIGRATING) for l in logs), 1, "\n---\n".join(logs))
        self.assertEqual(nc.kv_get("chatto_meta", "layout_version"), b"2")

    def test_operator_commands_refuse_an_older_layout_and_leave_it_to_the_server(self):
        a = self.start()
        self.assertEqual(Client(a).register("alice").status, 200)
        a.stop()
        nc = self.nc()
        to_layout_1(nc)
        for cmd in (["user", "list"], ["backup", "-o", os.path.join(self.n.dir, "b.tar")]):
            p = run_chatto(cmd, env=self.env)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertIn("the store has layout version 1, from an older Chatto", p.stderr)
            self.assertIn("start the server once", p.stderr)
        # nothing migrated: the server does that when it starts
        self.assertIsNone(nc.kv_get("chatto_meta", "layout_version"))
        self.assertIn("KV_chatto_presence", nc.streams())
        self.start()
        self.assertEqual(nc.kv_get("chatto_meta", "layout_version"), b"2")
        p = run_chatto(["user", "list"], env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("alice", p.stdout)

    def test_a_running_restore_holds_every_bootstrap_until_its_lease_ends(self):
        a = self.start()
        self.assertEqual(Client(a).register("alice").status, 200)
        a.stop()
        nc = self.nc()
        # what chatto restore holds while it rewrites the streams (lib/store/store.h: STORE_RESTORE_LEASE)
        until = int(time.time() * 1000) + 600000
        nc.kv_put("chatto_leases", "restore", json.dumps({"holder": "restore-test", "until": until}))
        b = self.start(start=False)
        b.start(wait_ready=False)
        wait_for(lambda: "chatto restore (restore-test) is rewriting this NATS's streams" in b.stderr(), 30,
                 "the bootstrap to wait for the restore")
        self.assertNotEqual(b.get("/readyz").status, 200)
        p = run_chatto(["user", "list"], env=self.env, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("chatto restore (restore-test) is rewriting", p.stderr)
        # the restore ends (it gives the lease back): the server becomes ready by itself
        nc.kv_put("chatto_leases", "restore", json.dumps({"holder": "restore-test", "until": 0}))
        b.wait_ready(60)
        self.assertEqual(Client(b).login("alice").status, 200)

