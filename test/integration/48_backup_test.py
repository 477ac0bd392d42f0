# SPDX-License-Identifier: MIT
"""`chatto backup` and `chatto restore` (issue #19 point 1): an online backup while a writer keeps posting, a
round trip into a fresh data directory (passwords, history with its ids, sequences and times, reactions, threads,
read state, files, API tokens; deleted messages stay deleted and their bodies are not in the archive), encryption,
damaged archives, the --conflict modes, and a round trip from one 3-node cluster into a fresh one."""
import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import threading
import time
import uuid

from cluster import Cluster
from natsclient import NatsClient
from harness import (CHATTO_BIN, FAST_AUTH, SHARED_SECRETS, Client, TestCase, external_env, http_request,
                     upload_file, wait_for)

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
T = "chatto.api.v1.ThreadService/"
ME = "chatto.api.v1.MyAccountService/GetMyAccount"


def run_cmd(args, data_dir=None, env=None, timeout=120, secrets=True):
    cmd = [CHATTO_BIN] + args
    if data_dir:
        cmd += ["--nats-embedded-data-dir", data_dir]
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    if secrets:
        e.update(SHARED_SECRETS)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)


def strip_urls(v):
    """A view without signed URLs (their tickets expire, so they differ from one moment to the next)."""
    if isinstance(v, dict):
        return {k: strip_urls(x) for k, x in v.items() if k not in ("assetUrl", "thumbnailAssetUrl")}
    if isinstance(v, list):
        return [strip_urls(x) for x in v]
    return v


class Writer(threading.Thread):
    """Posts numbered messages into a room until told to stop; remembers what was acknowledged."""

    def __init__(self, client, room):
        super().__init__(daemon=True)
        self.client, self.room = client, room
        self.acked = {}  # id -> body
        self.halt = threading.Event()

    def run(self):
        n = 0
        while not self.halt.is_set():
            body = "live %05d %s" % (n, "x" * (n % 50))
            r = self.client.call(M + "CreateMessage", {"roomId": self.room, "body": body})
            if r.status == 200:
                self.acked[r.json()["message"]["id"]] = body
            n += 1


def search(c, token, word):
    r = Client(c, token=token).call("chatto.api.v1.MessageSearchService/SearchMessages", {"query": word})
    assert r.status == 200, r
    return r.json()["results"]


def body(e):
    return e.get("messagePosted", {}).get("message", {}).get("body")


def all_events(client, room):
    """Every timeline event of a room, oldest first (following the pages' cursors)."""
    out, before = [], None
    while True:
        req = {"roomId": room, "limit": 100}
        if before:
            req["before"] = before
        page = client.ok(R + "GetRoomEvents", req)["page"]
        out = page["events"] + out
        if not page["hasOlder"] or not page["events"]:
            return out
        before = page["startCursor"]


class Backup(TestCase):
    def world(self, c):
        """Users, a room with reactions, a thread, an edit, a deletion, read state and a file; returns what to
        compare after a restore."""
        w = {}
        alice = Client(c)
        r = alice.register("alice", password="alice password 1", token=True)
        self.assertEqual(r.status, 200, r)
        w["alice_token"] = r.json()["token"]
        bob = Client(c)
        bob.register("bob", password="bob password 1")
        room = alice.ok(R + "CreateRoom", {"name": "Archive", "visibility": "public"})["room"]["id"]
        bob.ok(R + "JoinRoom", {"roomId": room})
        msgs = [alice.ok(M + "CreateMessage", {"roomId": room, "body": "history %d" % i})["message"]
                for i in range(12)]
        bob.ok(M + "AddReaction", {"roomId": room, "eventId": msgs[2]["id"], "emoji": "👍"})
        alice.ok(M + "AddReaction", {"roomId": room, "eventId": msgs[2]["id"], "emoji": "🎉"})
        bob.ok(M + "CreateMessage", {"roomId": room, "body": "a reply in a thread",
                                     "threadRootEventId": msgs[3]["id"]})
        w["deleted_body"] = "DELETED-%s" % uuid.uuid4().hex
        gone = alice.ok(M + "CreateMessage", {"roomId": room, "body": w["deleted_body"]})["message"]
        alice.ok(M + "DeleteMessage", {"roomId": room, "eventId": gone["id"]})
        w["edited_away"] = "BEFORE-EDIT-%s" % uuid.uuid4().hex
        ed = alice.ok(M + "CreateMessage", {"roomId": room, "body": w["edited_away"]})["message"]
        alice.ok(M + "UpdateMessage", {"roomId": room, "eventId": ed["id"], "body": "after the edit"})
        w["kept_body"] = "KEPT-%s" % uuid.uuid4().hex
        alice.ok(M + "CreateMessage", {"roomId": room, "body": w["kept_body"]})
        bob.ok(R + "MarkRoomAsRead", {"roomId": room, "eventId": msgs[5]["id"]})
        w["file"] = os.urandom(700 * 1024 + 321)
        asset = upload_file(self, alice, room, w["file"], "notes.bin")
        alice.ok(M + "CreateMessage", {"roomId": room, "body": "with a file", "attachmentAssetIds": [asset["id"]]})
        alice.ok(M + "CreateMessage", {"roomId": room, "body": "after the file"})
        w["asset"] = asset["id"]
        w["room"] = room
        w["gone_id"] = gone["id"]
        w["state"] = self.state(c, w)
        return w

    def state(self, c, w):
        """What a restore must reproduce, as seen through the API."""
        alice = Client(c, token=w["alice_token"])
        bob = Client(c)
        self.assertEqual(bob.login("bob", "bob password 1").status, 200)
        room = w["room"]
        events = all_events(alice, room)
        root = [e for e in events if body(e) == "history 3"]
        self.assertEqual(len(root), 1, events)
        replies = alice.ok(T + "GetThreadReplies", {"roomId": room, "threadRootEventId": root[0]["id"]})
        rooms = {x["room"]["id"]: (x["unreadCount"], x["mentionCount"]) for x in bob.ok(R + "ListRooms")["rooms"]}
        return {"events": strip_urls(events), "replies": strip_urls(replies), "bob_unread": rooms[room]}

    def check_restored(self, c, w):
        # passwords and tokens
        self.assertEqual(Client(c).login("alice", "alice password 1").status, 200)
        self.assertEqual(Client(c).login("alice", "wrong password 1").status, 401)
        alice = Client(c, token=w["alice_token"])
        self.assertEqual(alice.call(ME).json()["user"]["login"], "alice")
        # history (ids, times, bodies, reactions, cursors = stream sequences), threads, read state
        got = self.state(c, w)
        self.assertEqual(got, w["state"])
        bodies = [body(e) for e in got["events"]]
        self.assertNotIn(w["deleted_body"], bodies)
        self.assertNotIn(w["edited_away"], bodies)
        self.assertIn(w["kept_body"], bodies)
        gone = alice.ok(M + "GetMessage", {"roomId": w["room"], "eventId": w["gone_id"]})["message"]
        self.assertIn("deletedAt", gone)  # still a tombstone, without a body
        self.assertNotIn("body", gone)
        # the file, byte for byte
        r = http_request(c.port, "GET", "/assets/files/" + w["asset"], headers=alice.headers())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, w["file"])
        # and it keeps working: a new message lands after everything restored
        m = alice.ok(M + "CreateMessage", {"roomId": w["room"], "body": "after the restore"})["message"]
        self.assertEqual(all_events(alice, w["room"])[-1]["id"], m["id"])

    def test_online_backup_and_round_trip_embedded(self):
        a = self.chatto(args=FAST_AUTH, env=SHARED_SECRETS)
        w = self.world(a)
        # a writer keeps posting into another room through the whole backup
        alice = Client(a, token=w["alice_token"])
        live = alice.ok(R + "CreateRoom", {"name": "Live", "visibility": "public"})["room"]["id"]
        writer = Writer(alice, live)
        writer.start()
        wait_for(lambda: len(writer.acked) >= 20, 30, "the writer to get going")
        archive = os.path.join(a.dir, "backup.tar")
        p = run_cmd(["backup", "-o", archive] + FAST_AUTH, a.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("wrote " + archive, p.stdout)
        n_at_end = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= n_at_end + 10, 30, "the writer to go on after the backup")
        writer.halt.set()
        writer.join(30)
        # a plain archive is a tar with a manifest; deleted and edited-away bodies are not in it
        with tarfile.open(archive) as t:
            names = t.getnames()
        self.assertEqual(names[-1], "manifest.json")
        self.assertIn("CHATTO_EVENTS/00000001.rec", names)
        self.assertIn("OBJ_SERVER_ASSETS/00000001.rec", names)
        self.assertFalse([n for n in names if n.startswith(("KV_chatto_processes", "KV_chatto_leases",
                                                              "KV_chatto_throttle", "OBJ_ASSET_CACHE"))], names)
        with open(archive, "rb") as f:
            raw = f.read()
        self.assertIn(w["kept_body"].encode(), raw)
        self.assertNotIn(w["deleted_body"].encode(), raw)
        self.assertNotIn(w["edited_away"].encode(), raw)
        # a second backup never overwrites the first
        before = os.stat(archive).st_mtime_ns
        p = run_cmd(["backup", "-o", archive], a.data_dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already exists", p.stderr)
        self.assertEqual(os.stat(archive).st_mtime_ns, before)
        a.stop()

        # restore into a fresh data directory (a temporary nats-server child of the command's own), then serve
        b_dir = os.path.join(a.dir, "restored")
        p = run_cmd(["restore", archive], b_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("restored", p.stdout)
        b = self.chatto(args=FAST_AUTH, env=SHARED_SECRETS, data_dir=b_dir)
        self.check_restored(b, w)
        # the live room: a prefix of what the writer got acknowledged, in order, every message whole
        got = [e["messagePosted"]["message"] for e in all_events(Client(b, token=w["alice_token"]), live)
               if "messagePosted" in e]
        acked = list(writer.acked.items())
        self.assertGreaterEqual(len(got), 20)
        self.assertLess(len(got), len(acked))
        self.assertEqual([(m["id"], m["body"]) for m in got], acked[:len(got)])

        # the conflict modes on a NATS that holds data (the server stopped)
        b.stop()
        p = run_cmd(["restore", archive], b_dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already holds Chatto data", p.stderr)
        self.assertIn("CHATTO_EVENTS (", p.stderr)
        b.start()
        extra_word = "extra%s" % uuid.uuid4().hex
        extra = Client(b, token=w["alice_token"]).ok(M + "CreateMessage", {"roomId": w["room"], "body": extra_word})
        wait_for(lambda: search(b, w["alice_token"], extra_word), 30, "the search index to take the extra message")
        # ... refused while a server runs on the data directory
        p = run_cmd(["restore", archive, "--conflict=overwrite"], b_dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("running", p.stderr)
        b.stop()
        p = run_cmd(["restore", archive, "--conflict=skip"], b_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("keeping", p.stderr)
        b.start()
        ids = [e["id"] for e in all_events(Client(b, token=w["alice_token"]), w["room"])]
        self.assertIn(extra["message"]["id"], ids)  # skip kept what was there
        b.stop()
        p = run_cmd(["restore", archive, "--conflict=overwrite"], b_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("replacing", p.stderr)
        b.start()
        ids = [e["id"] for e in all_events(Client(b, token=w["alice_token"]), w["room"])]
        self.assertNotIn(extra["message"]["id"], ids)  # overwrite put the archive's history back
        self.check_restored(b, w)
        # the search index followed the old log (its position is past the restored one): it was made afresh, so
        # new messages, numbered again from the cut, are found
        fresh = "fresh%s" % uuid.uuid4().hex
        Client(b, token=w["alice_token"]).ok(M + "CreateMessage", {"roomId": w["room"], "body": fresh})
        wait_for(lambda: search(b, w["alice_token"], fresh), 30, "the search index to take a new message")
        self.assertEqual(search(b, w["alice_token"], extra_word), [])

    def test_encrypted_archive_wrong_passphrase_and_damage(self):
        a = self.chatto(args=FAST_AUTH, env=SHARED_SECRETS)
        alice = Client(a)
        alice.register("alice", password="alice password 1")
        secret = "SECRET-%s" % uuid.uuid4().hex
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": secret})
        pf = os.path.join(a.dir, "pass.txt")
        with open(pf, "w") as f:
            f.write("correct horse battery staple\n")
        archive = os.path.join(a.dir, "backup.tar.enc")
        p = run_cmd(["backup", "-o", archive, "--passphrase-file", pf], a.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("encrypted", p.stdout)
        with open(archive, "rb") as f:
            raw = f.read()
        self.assertTrue(raw.startswith(b"CHATTO-BACKUP-E1"))
        self.assertNotIn(secret.encode(), raw)
        self.assertNotIn(b"manifest.json", raw)
        a.stop()
        # with the server stopped the command runs a nats-server child of its own on the data directory
        plain = os.path.join(a.dir, "stopped.tar")
        p = run_cmd(["backup", "-o", plain], a.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(plain, "rb") as f:
            self.assertIn(secret.encode(), f.read())
        target = os.path.join(a.dir, "restored")

        def restore(path, *extra, env=None):
            return run_cmd(["restore", path] + list(extra), target, env=env)

        p = restore(archive)
        self.assertEqual(p.returncode, 1)
        self.assertIn("encrypted", p.stderr)
        p = restore(archive, env={"CHATTO_BACKUP_PASSPHRASE": "not the passphrase"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("wrong passphrase", p.stderr)
        # one byte changed in the middle; the end cut off
        bad = os.path.join(a.dir, "tampered.enc")
        with open(bad, "wb") as f:
            f.write(raw[:len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 1]) + raw[len(raw) // 2 + 1:])
        p = restore(bad, "--passphrase-file", pf)
        self.assertEqual(p.returncode, 1)
        self.assertIn("tampered", p.stderr)
        cut = os.path.join(a.dir, "truncated.enc")
        with open(cut, "wb") as f:
            f.write(raw[:len(raw) - 100])
        p = restore(cut, "--passphrase-file", pf)
        self.assertEqual(p.returncode, 1)
        self.assertIn("truncated", p.stderr)
        # nothing was written by the failed attempts: the right passphrase restores into the same target
        p = restore(archive, env={"CHATTO_BACKUP_PASSPHRASE": "correct horse battery staple"})
        self.assertEqual(p.returncode, 0, p.stderr)
        b = self.chatto(args=FAST_AUTH, env=SHARED_SECRETS, data_dir=target)
        alice = Client(b)
        self.assertEqual(alice.login("alice", "alice password 1").status, 200)
        bodies = [body(e) for e in all_events(alice, "general")]
        self.assertIn(secret, bodies)

    def test_generated_secrets_travel_only_when_asked_and_encrypted(self):
        """Embedded mode generates its secrets into <data_dir>/secrets.ini, outside NATS: API tokens and sessions
        survive a restore into a fresh directory only with --include-secrets (which needs a passphrase)."""
        a = self.chatto(args=FAST_AUTH)
        alice = Client(a)
        self.assertEqual(alice.register("alice", password="alice password 1", token=True).status, 200)
        pw = {"CHATTO_BACKUP_PASSPHRASE": "secret passphrase"}
        p = run_cmd(["backup", "-o", os.path.join(a.dir, "plain.tar"), "--include-secrets"], a.data_dir, secrets=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("needs a passphrase", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(a.dir, "plain.tar")))
        with_secrets, without = os.path.join(a.dir, "with.tar.enc"), os.path.join(a.dir, "without.tar.enc")
        p = run_cmd(["backup", "-o", with_secrets, "--include-secrets"], a.data_dir, env=pw, secrets=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run_cmd(["backup", "-o", without], a.data_dir, env=pw, secrets=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        a.stop()
        # without them: a fresh directory generates new secrets, and the old token means nothing there
        d1 = os.path.join(a.dir, "d1")
        p = run_cmd(["restore", without], d1, env=pw, secrets=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        b = self.chatto(args=FAST_AUTH, data_dir=d1)
        self.assertEqual(Client(b, token=alice.token).call(ME).status, 401)
        self.assertEqual(Client(b).login("alice", "alice password 1").status, 200)  # passwords are in NATS
        b.stop()
        # with them: token and session cookie work as before
        d2 = os.path.join(a.dir, "d2")
        p = run_cmd(["restore", with_secrets], d2, env=pw, secrets=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("secrets.ini", p.stdout)
        c = self.chatto(args=FAST_AUTH, data_dir=d2)
        self.assertEqual(Client(c, token=alice.token).call(ME).status, 200)
        self.assertEqual(Client(c, cookie=alice.cookie).call(ME).status, 200)
        c.stop()
        # over the first directory (other secrets, data): refused, then replaced with --conflict=overwrite
        p = run_cmd(["restore", with_secrets], d1, env=pw, secrets=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("(other secrets)", p.stderr)
        p = run_cmd(["restore", with_secrets, "--conflict=overwrite"], d1, env=pw, secrets=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        b.start()
        self.assertEqual(Client(b, token=alice.token).call(ME).status, 200)

    def test_bad_input(self):
        d = self.chatto(args=FAST_AUTH, start=False)
        target = d.data_dir
        p = run_cmd(["restore", os.path.join(d.dir, "nope.tar")], target)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No such file", p.stderr)
        junk = os.path.join(d.dir, "junk.tar")
        with open(junk, "wb") as f:
            f.write(b"hello, this is not an archive\n" * 100)
        p = run_cmd(["restore", junk], target)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a chatto backup archive", p.stderr)
        # a tar of a newer format
        newer = os.path.join(d.dir, "newer.tar")
        man = os.path.join(d.dir, "manifest.json")
        with open(man, "w") as f:
            f.write('{"format":"chatto-backup","formatVersion":99,"layout":1,"streams":[]}')
        with tarfile.open(newer, "w", format=tarfile.USTAR_FORMAT) as t:
            t.add(man, arcname="manifest.json")
        p = run_cmd(["restore", newer], target)
        self.assertEqual(p.returncode, 1)
        self.assertIn("format 99", p.stderr)
        # a layout newer than this chatto knows (lib/store/layout.c)
        with open(man, "w") as f:
            f.write('{"format":"chatto-backup","formatVersion":1,"layout":99,"streams":[]}')
        with tarfile.open(newer, "w", format=tarfile.USTAR_FORMAT) as t:
            t.add(man, arcname="manifest.json")
        p = run_cmd(["restore", newer], target)
        self.assertEqual(p.returncode, 1)
        self.assertIn("layout 99", p.stderr)
        # usage errors
        self.assertEqual(run_cmd(["restore"], target).returncode, 2)
        p = run_cmd(["restore", newer, "--conflict=maybe"], target)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--conflict", p.stderr)
        self.assertEqual(run_cmd(["backup", "--conflict=skip"], target).returncode, 2)
        self.assertEqual(run_cmd(["restore", newer, "--include-secrets"], target).returncode, 2)
        p = run_cmd(["backup", "--passphrase-file", os.path.join(d.dir, "missing")], target)
        self.assertEqual(p.returncode, 2)
        # an empty -o is refused before any work
        p = run_cmd(["backup", "-o", ""], target)
        self.assertEqual(p.returncode, 2)
        self.assertIn("-o/--output", p.stderr)
        # a passphrase longer than 1023 bytes is refused, never cut short; one readable by others is warned about
        longpass = os.path.join(d.dir, "long.pass")
        with open(longpass, "w") as f:
            f.write("p" * 1024 + "\n")
        os.chmod(longpass, 0o600)
        p = run_cmd(["backup", "--passphrase-file", longpass, "-o", os.path.join(d.dir, "x.tar.enc")], target)
        self.assertEqual(p.returncode, 2)
        self.assertIn("longer than 1023 bytes", p.stderr)
        p = run_cmd(["restore", newer], target, env={"CHATTO_BACKUP_PASSPHRASE": "p" * 1024})
        self.assertEqual(p.returncode, 2)
        self.assertIn("longer than 1023 bytes", p.stderr)
        okpass = os.path.join(d.dir, "ok.pass")
        with open(okpass, "w") as f:
            f.write("p" * 1023 + "\n")
        os.chmod(okpass, 0o644)
        p = run_cmd(["backup", "--passphrase-file", okpass, "-o", newer], target)  # (exists: stops there)
        self.assertEqual(p.returncode, 1)
        self.assertIn("can be read by other users", p.stderr)
        self.assertIn("already exists", p.stderr)
        # a secrets.ini that cannot be read is not taken for an absent one (the archive's would replace it)
        empty = os.path.join(d.dir, "empty.tar")
        write_archive(empty, {})
        os.makedirs(os.path.join(target, "secrets.ini"))
        p = run_cmd(["restore", empty], target)
        self.assertEqual(p.returncode, 1)
        self.assertIn("secrets.ini", p.stderr)
        os.rmdir(os.path.join(target, "secrets.ini"))
        # nothing of Chatto's was created by any of these
        self.assertFalse(os.path.exists(os.path.join(target, "jetstream")))

    def test_external_restore_refuses_live_processes(self):
        n = self.nats(token="backup-token")
        env = external_env(n)
        c = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        Client(c).register("alice")
        archive = os.path.join(c.dir, "b.tar")
        p = run_cmd(["backup", "-o", archive], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run_cmd(["backup", "-o", archive + ".enc", "--include-secrets"],
                    env=dict(env, CHATTO_BACKUP_PASSPHRASE="pw"))
        self.assertEqual(p.returncode, 2)  # nothing generated here: the secrets are the configuration's
        self.assertIn("only embedded mode", p.stderr)
        p = run_cmd(["restore", archive, "--conflict=overwrite"], env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("process", p.stderr)
        self.assertIn("running on this NATS", p.stderr)


def record(seq, time_ns, subject, data, hdr=b""):
    """One archive record, as chatto(1) BACKUP ARCHIVES and lib/backup/backup.h describe it."""
    subject = subject.encode()
    rest = (struct.pack(">QqH", seq, time_ns, len(subject)) + subject + struct.pack(">I", len(hdr)) + hdr +
            struct.pack(">I", len(data)) + data)
    return struct.pack(">I", len(rest)) + rest


def write_archive(path, streams, layout=2, edit=None):
    """A plain archive from {stream: (kind, cut, [records])}, written with Python's own tar module; edit(manifest)
    may change the manifest before it is written."""
    man = {"format": "chatto-backup", "formatVersion": 1, "layout": layout, "streams": []}
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for name, (kind, cut, recs) in streams.items():
            part = b"".join(recs)
            if part:
                info = tarfile.TarInfo(name + "/00000001.rec")
                info.size = len(part)
                t.addfile(info, io.BytesIO(part))
            man["streams"].append({"name": name, "kind": kind, "cutSeq": cut, "messages": len(recs),
                                   "sha256": hashlib.sha256(part).hexdigest(),
                                   "config": {"maxAgeNs": 90 * 86400 * 10**9 if name.endswith("notifications") else 0}})
        if edit:
            edit(man)
        m = json.dumps(man).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(m)
        t.addfile(info, io.BytesIO(m))


class Replay(TestCase):
    def test_sequences_gaps_dedup_headers_and_age_limits(self):
        """Restore keeps CHATTO_EVENTS sequences (gaps filled and deleted up to the cut), writes back two events
        that carry the same Nats-Msg-Id (a key reused after the 10-minute window: JetStream would drop the second
        if the header were written back), and leaves out notifications past their 90-day age."""
        n = self.nats(token="replay-token")
        env = external_env(n)
        now = time.time_ns()
        dup = b"Nats-Msg-Id: same-key\r\nChatto-Test: kept\r\n"
        path = os.path.join(n.dir, "crafted.tar")
        write_archive(path, {
            "CHATTO_EVENTS": ("events", 9, [record(2, now, "chatto.ev.r1.msg.m1", b'{"type":"x"}', dup),
                                            record(5, now, "chatto.ev.r1.msg.m2", b'{"type":"y"}', dup)]),
            "KV_chatto_notifications": ("kv", 2, [
                record(1, now - 100 * 86400 * 10**9, "$KV.chatto_notifications.u1.old", b"{}"),
                record(2, now, "$KV.chatto_notifications.u1.new", b"{}")]),
        })
        p = run_cmd(["restore", path], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        jsz = http_request(n.http_port, "GET", "/jsz?streams=true").json()
        state = {s["name"]: s["state"] for a in jsz["account_details"] for s in a["stream_detail"]}
        self.assertEqual((state["CHATTO_EVENTS"]["messages"], state["CHATTO_EVENTS"]["last_seq"]), (2, 9))
        self.assertEqual(state["KV_chatto_notifications"]["messages"], 1)
        # a damaged manifest count is refused before anything is written
        bad = os.path.join(n.dir, "bad.tar")
        write_archive(bad, {"KV_chatto_users": ("kv", 1, [record(1, now, "$KV.chatto_users.u9", b"{}")])})
        with tarfile.open(bad) as t:
            m = json.loads(t.extractfile("manifest.json").read())
        m["streams"][0]["messages"] = 2
        with tarfile.open(bad, "w", format=tarfile.USTAR_FORMAT) as t:
            part = record(1, now, "$KV.chatto_users.u9", b"{}")
            info = tarfile.TarInfo("KV_chatto_users/00000001.rec")
            info.size = len(part)
            t.addfile(info, io.BytesIO(part))
            mb = json.dumps(m).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(mb)
            t.addfile(info, io.BytesIO(mb))
        p = run_cmd(["restore", bad, "--conflict=overwrite"], env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("damaged", p.stderr)
        jsz = http_request(n.http_port, "GET", "/jsz?streams=true").json()
        state = {s["name"]: s["state"] for a in jsz["account_details"] for s in a["stream_detail"]}
        self.assertEqual(state["KV_chatto_users"]["messages"], 0)

    def test_crafted_archives_write_nothing(self):
        """Everything restore could not write back as the archive says is refused before anything is written, even
        with --conflict=overwrite: subjects outside their stream or not one plain subject (a JetStream API request,
        protocol injection), header lines that do not fit, sequence 0, records past the cut, a cut far beyond the
        records, manifest numbers out of range, and --conflict=skip across layouts."""
        n = self.nats(token="crafted-token")
        env = external_env(n)
        now = time.time_ns()
        good = os.path.join(n.dir, "good.tar")
        write_archive(good, {
            "CHATTO_EVENTS": ("events", 3, [record(1, now, "chatto.ev.r1.msg.m1", b'{"type":"x"}'),
                                            record(3, now, "chatto.ev.r1.msg.m2", b'{"type":"y"}')]),
            "KV_chatto_users": ("kv", 1, [record(1, now, "$KV.chatto_users.u1", b"{}")]),
        })
        p = run_cmd(["restore", good], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)

        def state():
            jsz = http_request(n.http_port, "GET", "/jsz?streams=true").json()
            st = {s["name"]: s["state"] for a in jsz["account_details"] for s in a["stream_detail"]}
            # (the restore lease comes and goes in chatto_leases: process state, never restored)
            return {k: (v["messages"], v["last_seq"]) for k, v in st.items() if k != "KV_chatto_leases"}

        before = state()
        self.assertEqual(before["CHATTO_EVENTS"], (2, 3))
        self.assertEqual(before["KV_chatto_users"][0], 1)
        ev = lambda *recs, cut=5: {"CHATTO_EVENTS": ("events", cut, list(recs))}  # noqa: E731
        long_hdr = b"Chatto-Test: " + b"v" * 1100 + b"\r\n"
        cases = {
            "a JetStream API request": ev(record(1, now, "$JS.API.STREAM.DELETE.KV_chatto_users", b"{}")),
            "another stream's subject": {"KV_chatto_users": ("kv", 1, [
                record(1, now, "$KV.chatto_roomnames.r1", b"{}")])},
            "a space": {"KV_chatto_users": ("kv", 1, [record(1, now, "$KV.chatto_users.a b", b"{}")])},
            "CR/LF": ev(record(1, now, "chatto.ev.r1\r\nPUB chatto.ev.x 1", b"{}")),
            "a wildcard": ev(record(1, now, "chatto.ev.>", b"{}")),
            "an empty token": ev(record(1, now, "chatto.ev.r1..m", b"{}")),
            "a header line too long": ev(record(1, now, "chatto.ev.r1.msg.m1", b"{}", long_hdr)),
            "a header line without a colon": ev(record(1, now, "chatto.ev.r1.msg.m1", b"{}", b"nocolon\r\n")),
            "sequence 0": ev(record(0, now, "chatto.ev.r1.msg.m1", b"{}")),
            "a record past the cut": ev(record(9, now, "chatto.ev.r1.msg.m1", b"{}"), cut=5),
            "a cut far past the records": ev(record(1, now, "chatto.ev.r1.msg.m1", b"{}"), cut=10**13),
        }
        for why, streams in cases.items():
            with self.subTest(why):
                bad = os.path.join(n.dir, "bad.tar")
                write_archive(bad, streams)
                p = run_cmd(["restore", bad, "--conflict=overwrite"], env=env)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("damaged", p.stderr)
                self.assertEqual(state(), before)
        # manifest numbers that would be undefined behaviour to cast, or overflow with the record's time
        for field, value in [("messages", 1e30), ("cutSeq", -1), ("cutSeq", 2.5), ("cutSeq", "7"),
                             ("config.maxAgeNs", 1e300), ("config.maxAgeNs", -5), ("messages", None)]:
            with self.subTest(field=field, value=value):
                def edit(man, field=field, value=value):
                    o = man["streams"][0]
                    if field.startswith("config."):
                        o, field = o["config"], field[7:]
                    if value is None:
                        del o[field]
                    else:
                        o[field] = value
                bad = os.path.join(n.dir, "bad.tar")
                write_archive(bad, {"KV_chatto_notifications": ("kv", 1, [
                    record(1, now, "$KV.chatto_notifications.u1.n1", b"{}")])}, edit=edit)
                p = run_cmd(["restore", bad, "--conflict=overwrite"], env=env)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("damaged", p.stderr)
                self.assertEqual(state(), before)
        # --conflict=skip keeping layout-2 streams beside restored layout-1 ones would mix layouts
        old = os.path.join(n.dir, "old.tar")
        write_archive(old, {"KV_chatto_roomnames": ("kv", 1, [record(1, now, "$KV.chatto_roomnames.r1", b"{}")]),
                            "KV_chatto_users": ("kv", 1, [record(1, now, "$KV.chatto_users.u2", b"{}")])}, layout=1)
        p = run_cmd(["restore", old, "--conflict=skip"], env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("mix store layouts", p.stderr)
        self.assertEqual(state(), before)
        # the same layout: skip keeps what is there and restores the rest
        same = os.path.join(n.dir, "same.tar")
        write_archive(same, {"KV_chatto_roomnames": ("kv", 1, [record(1, now, "$KV.chatto_roomnames.r1", b"{}")]),
                             "KV_chatto_users": ("kv", 1, [record(1, now, "$KV.chatto_users.u2", b"{}")])})
        p = run_cmd(["restore", same, "--conflict=skip"], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        after = state()
        self.assertEqual(after["KV_chatto_roomnames"][0], 1)
        self.assertEqual(after["KV_chatto_users"], before["KV_chatto_users"])

    def test_backup_of_streams_with_no_messages_left(self):
        """A bucket whose entries all aged out (or were purged) has no messages but a last sequence: backup does
        not wait 60 s for messages that never come, and the archive restores."""
        n = self.nats(token="empty-token")
        env = external_env(n)
        c = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        Client(c).register("alice")
        c.stop()
        with NatsClient(n.port, token=n.token) as nc:
            for i in range(3):
                nc.kv_put("chatto_notifications", "u1.n%d" % i, b"{}")
            r = nc.js("STREAM.PURGE.KV_chatto_notifications", {})
            self.assertTrue(r.get("success"), r)
            info = nc.js("STREAM.INFO.KV_chatto_notifications")
            self.assertEqual(info["state"]["messages"], 0)
            self.assertGreater(info["state"]["last_seq"], 0)
        archive = os.path.join(n.dir, "empty.tar")
        p = run_cmd(["backup", "-o", archive], env=env, timeout=50)  # (it used to wait 60 s, then fail)
        self.assertEqual(p.returncode, 0, p.stderr)
        with tarfile.open(archive) as t:
            man = json.loads(t.extractfile("manifest.json").read())
        notif = [s for s in man["streams"] if s["name"] == "KV_chatto_notifications"][0]
        self.assertEqual(notif["messages"], 0)
        m = self.nats(token="empty-target")
        p = run_cmd(["restore", archive], env=external_env(m))
        self.assertEqual(p.returncode, 0, p.stderr)


    def test_restore_holds_the_restore_lease_and_gives_it_back(self):
        """While a restore runs, every bootstrap waits (lib/store: STORE_RESTORE_LEASE), another restore included;
        a restore takes the lease before it looks for running servers and gives it back when done."""
        n = self.nats(token="lease-src")
        c = self.chatto(embedded=False, env=external_env(n), args=FAST_AUTH)
        Client(c).register("alice")
        c.stop()
        archive = os.path.join(n.dir, "lease.tar")
        p = run_cmd(["backup", "-o", archive], env=external_env(n))
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.nats(token="lease-dst")
        env = external_env(m)
        self.chatto(embedded=False, env=env, args=FAST_AUTH).stop()  # the target's buckets exist, and no data
        with NatsClient(m.port, token=m.token) as nc:
            until = int(time.time() * 1000) + 600000
            nc.kv_put("chatto_leases", "restore", json.dumps({"holder": "restore-elsewhere-1", "until": until}))
            p = run_cmd(["restore", archive], env=env, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("chatto restore (restore-elsewhere-1) is rewriting this NATS's streams", p.stderr)
            self.assertIsNone(nc.kv_get("chatto_users", "x"))
            nc.kv_put("chatto_leases", "restore", json.dumps({"holder": "restore-elsewhere-1", "until": 0}))
            p = run_cmd(["restore", archive], env=env, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            lease = json.loads(nc.kv_get("chatto_leases", "restore"))
            self.assertTrue(lease["holder"].startswith("restore-"), lease)
            self.assertNotEqual(lease["holder"], "restore-elsewhere-1")
            self.assertEqual(lease["until"], 0)
        d = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        self.assertEqual(Client(d).login("alice").status, 200)


class ClusterBackup(TestCase):
    def test_cluster_round_trip(self):
        src = Cluster(processes=1)
        self.addCleanup(src.cleanup)
        src.start()
        c = src.chattos[0]
        r = Client(c).register("alice", password="alice password 1", token=True)
        self.assertEqual(r.status, 200, r)
        tok = r.json()["token"]
        alice = Client(c, token=tok)
        msgs = [alice.ok(M + "CreateMessage", {"roomId": "general", "body": "cluster %d" % i})["message"]
                for i in range(30)]
        alice.ok(M + "AddReaction", {"roomId": "general", "eventId": msgs[1]["id"], "emoji": "👍"})
        gone = "CLUSTER-DELETED-%s" % uuid.uuid4().hex
        g = alice.ok(M + "CreateMessage", {"roomId": "general", "body": gone})["message"]
        alice.ok(M + "DeleteMessage", {"roomId": "general", "eventId": g["id"]})
        data = os.urandom(600 * 1024)
        asset = upload_file(self, alice, "general", data, "c.bin")
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "file", "attachmentAssetIds": [asset["id"]]})
        # a thread and read state: bob replies in a thread on alice's message and has read up to msgs[5]
        bob_tok = Client(c).register("bob", password="bob password 1", token=True).json()["token"]
        bob = Client(c, token=bob_tok)
        bob.ok(M + "CreateMessage", {"roomId": "general", "body": "cluster reply",
                                     "threadRootEventId": msgs[3]["id"]})
        bob.ok(R + "MarkRoomAsRead", {"roomId": "general", "eventId": msgs[5]["id"]})

        def state(a, b):
            replies = a.ok(T + "GetThreadReplies", {"roomId": "general", "threadRootEventId": msgs[3]["id"]})
            unread = {x["room"]["id"]: (x["unreadCount"], x["mentionCount"]) for x in b.ok(R + "ListRooms")["rooms"]}
            return strip_urls(replies), unread["general"]
        before = strip_urls(all_events(alice, "general"))
        before_state = state(alice, bob)
        self.assertIn("cluster reply", json.dumps(before_state[0]))
        self.assertNotEqual(before_state[1], (0, 0))  # bob has unread messages after msgs[5]
        archive = os.path.join(c.dir, "cluster.tar")
        p = run_cmd(["backup", "-o", archive], env=src.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(archive, "rb") as f:
            self.assertNotIn(gone.encode(), f.read())

        dst = Cluster(processes=0)
        self.addCleanup(dst.cleanup)
        self.assertTrue(dst._start_nodes())
        p = run_cmd(["restore", archive], env=dst.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        d = dst.add_chatto(balance=False)
        self.assertEqual(Client(d).login("alice", "alice password 1", token=True).status, 200)
        alice2 = Client(d, token=tok)
        self.assertEqual(strip_urls(all_events(alice2, "general")), before)
        self.assertEqual(Client(d).login("bob", "bob password 1", token=True).status, 200)
        self.assertEqual(state(alice2, Client(d, token=bob_tok)), before_state)
        r = http_request(d.port, "GET", "/assets/files/" + asset["id"], headers=alice2.headers())
        self.assertEqual(r.body, data)
        # every restored stream has the cluster's three replicas
        jsz = http_request(dst.nodes[0].http_port, "GET", "/jsz?streams=true&config=true").json()
        info = [s for a in jsz["account_details"] for s in a["stream_detail"] if s["name"] == "CHATTO_EVENTS"][0]
        self.assertEqual(info["config"]["num_replicas"], 3)
