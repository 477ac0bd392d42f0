# SPDX-License-Identifier: MIT
"""Files: resumable uploads through any process, downloads with tickets, Range and ETag, the object-store layout
that NATS clients read, and every bad input the upload and download paths can meet."""
import base64
import hashlib
import hmac
import json
import os
import time

from harness import (BUILD, FAST_AUTH, SHARED_SECRETS, Client, TestCase, create_upload, external_env, grep_tree,
                     http_request, upload_chunk, upload_file)

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
U = "chatto.api.v1.AssetUploadService/"
A = "chatto.api.v1.AssetService/"
CHUNK = 512 * 1024


def sha(b):
    return hashlib.sha256(b).hexdigest()


def ticket(asset, user, expires, secret=SHARED_SECRETS["CHATTO_CORE_ASSETS_SIGNING_SECRET"], **extra):
    payload = dict(a=asset, u=user, e=expires, **extra)
    p = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    mac = hmac.new(secret.encode(), p.encode(), hashlib.sha256).hexdigest()[:32]
    return p + "." + mac


class Assets(TestCase):
    def setUp(self):
        super().setUp()
        self.n = self.nats(token="assets-test-token")
        env = external_env(self.n)
        self.a = self.chatto(embedded=False, env=env, args=FAST_AUTH + ["--core-assets-max-upload-size", "3MB"])
        self.b = self.chatto(embedded=False, env=env, args=FAST_AUTH + ["--core-assets-max-upload-size", "3MB"])
        self.alice = Client(self.a)
        self.alice_id = self.alice.register("alice").json()["user"]["id"]
        self.bob = Client(self.b)
        self.bob_id = self.bob.register("bob").json()["user"]["id"]
        self.room = self.alice.ok(R + "CreateRoom", {"name": "files", "visibility": "public"})["room"]["id"]
        self.bob.ok(R + "JoinRoom", {"roomId": self.room})

    # -- helpers --

    def create(self, client, data, name="data.bin", ctype="application/octet-stream", room=None, digest=None):
        return create_upload(client, room or self.room, data, name, ctype, digest)

    def chunk(self, client, upload_id, offset, piece, digest=None):
        return upload_chunk(client, upload_id, offset, piece, digest)

    def upload(self, client, data, name="data.bin", ctype="application/octet-stream", clients=None):
        return upload_file(self, client, self.room, data, name, ctype, clients)

    def fetch(self, chatto, url, headers=None, method="GET"):
        return http_request(chatto.port, method, url, headers=headers or {})

    # -- tests --

    def test_multi_chunk_upload_through_two_processes_downloads_intact_from_either(self):
        data = os.urandom(CHUNK * 2 + 12345)
        asset = self.upload(self.alice, data, "report.bin", clients=[self.alice, self.alice.on(self.b)])
        self.assertEqual(asset["size"], str(len(data)))
        self.assertEqual(asset["filename"], "report.bin")
        url = asset["assetUrl"]["url"]
        self.assertIn("?access=", url)
        for proc in (self.a, self.b):
            r = self.fetch(proc, url)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, data)
            self.assertEqual(r.header("ETag"), '"%s"' % sha(data))
            self.assertEqual(r.header("Content-Length"), str(len(data)))
            self.assertTrue(r.header("Content-Disposition").startswith("attachment;"))
            self.assertIn("private", r.header("Cache-Control"))
            self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        # the session cookie and a bearer token work without a ticket
        bare = "/assets/files/" + asset["id"]
        self.assertEqual(self.fetch(self.b, bare, self.alice.headers()).body, data)
        self.assertEqual(self.fetch(self.a, bare).status, 401)

    def test_range_etag_and_head(self):
        data = os.urandom(CHUNK + 1000)
        asset = self.upload(self.alice, data)
        url = asset["assetUrl"]["url"]
        r = self.fetch(self.a, url, {"Range": "bytes=%d-%d" % (CHUNK - 10, CHUNK + 9)})
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.body, data[CHUNK - 10:CHUNK + 10])
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (CHUNK - 10, CHUNK + 9, len(data)))
        r = self.fetch(self.a, url, {"Range": "bytes=-100"})
        self.assertEqual((r.status, r.body), (206, data[-100:]))
        r = self.fetch(self.a, url, {"Range": "bytes=%d-" % len(data)})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */%d" % len(data))
        r = self.fetch(self.a, url, {"If-None-Match": '"%s"' % sha(data)})
        self.assertEqual((r.status, r.body), (304, b""))
        r = self.fetch(self.a, url, method="HEAD")
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", str(len(data))))

    def test_raw_chunk_route_and_resume_after_a_dropped_connection(self):
        data = os.urandom(CHUNK + 777)
        up = self.create(self.alice, data, "shot.png", "image/png").json()["upload"]
        path = "/api/assets/uploads/%s?offset=0" % up["uploadId"]
        r = http_request(self.a.port, "PUT", path, data[:CHUNK], self.alice.headers({"Content-Type": "application/octet-stream"}))
        self.assertEqual(r.status, 200, r)
        # the client lost the answer and sends the same chunk again: answered as done, nothing doubled
        r = http_request(self.b.port, "PUT", path, data[:CHUNK],
                         self.alice.on(self.b).headers({"X-Chunk-SHA256": sha(data[:CHUNK])}))
        self.assertEqual(r.status, 200, r)
        state = self.alice.on(self.b).ok(U + "GetUpload", {"uploadId": up["uploadId"]})["upload"]
        self.assertEqual(state["committedOffset"], str(CHUNK))
        r = http_request(self.b.port, "PUT", "/api/assets/uploads/%s?offset=%d" % (up["uploadId"], CHUNK), data[CHUNK:],
                         self.alice.on(self.b).headers())
        self.assertEqual(r.status, 200, r)
        asset = self.alice.ok(U + "CompleteUpload", {"uploadId": up["uploadId"]})["asset"]
        r = self.fetch(self.b, asset["assetUrl"]["url"])
        self.assertEqual(r.body, data)
        self.assertTrue(r.header("Content-Disposition").startswith("inline;"), r.header("Content-Disposition"))
        # completing twice gives the same file
        again = self.alice.ok(U + "CompleteUpload", {"uploadId": up["uploadId"]})["asset"]
        self.assertEqual(again["id"], asset["id"])
        # a chunk bigger than the cap is refused before it is read
        import socket
        with socket.create_connection(("127.0.0.1", self.a.port), timeout=10) as sk:
            hdrs = "".join("%s: %s\r\n" % kv for kv in self.alice.headers().items())
            sk.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (path, hdrs, CHUNK + 1)).encode())
            got = b""
            while b"\r\n" not in got:  # the status line, however the bytes arrive
                more = sk.recv(4096)
                if not more:
                    break
                got += more
            self.assertTrue(got.startswith(b"HTTP/1.1 413"), got[:200])
        # no credentials: refused before the body
        self.assertEqual(http_request(self.a.port, "PUT", path, b"x").status, 401)

    def test_bad_uploads_are_refused_with_the_field_named_and_lose_nothing(self):
        data = os.urandom(1000)
        # over the size limit: 413 before any byte is stored
        r = self.alice.call(U + "CreateUpload", {"roomId": self.room, "filename": "big", "size": str(4 * 1000 * 1000),
                                                 "sha256": sha(b"")})
        self.assertEqual(r.status, 413, r)
        self.assertIn("3", r.json()["message"])
        for body, field in [({"filename": "a", "size": "1", "sha256": sha(b"")}, "roomId"),
                            ({"roomId": self.room, "size": "1", "sha256": sha(b"")}, "filename"),
                            ({"roomId": self.room, "filename": "a", "size": "-1", "sha256": sha(b"")}, "size"),
                            ({"roomId": self.room, "filename": "a", "size": "1", "sha256": "XYZ"}, "sha256"),
                            ({"roomId": self.room, "filename": "a\x01b", "size": "1", "sha256": sha(b"")}, "filename"),
                            ({"roomId": self.room, "filename": "a", "size": "1", "sha256": sha(b""),
                              "contentType": "text/html<script>"}, "contentType")]:
            r = self.alice.call(U + "CreateUpload", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertIn(field, r.json()["message"], (body, r))
        # a private room bob is not in: not found; the path part of a file name is dropped
        priv = self.alice.ok(R + "CreateRoom", {"name": "secret", "visibility": "private"})["room"]["id"]
        self.assertEqual(self.create(self.bob, data, room=priv).status, 404)
        up = self.create(self.alice, data, name="../../etc/passwd").json()["upload"]
        uid = up["uploadId"]
        # someone else's upload does not exist for them
        self.assertEqual(self.chunk(self.bob, uid, 0, data).status, 404)
        self.assertEqual(self.bob.call(U + "GetUpload", {"uploadId": uid}).status, 404)
        # wrong chunk digest, out-of-order offset, past the declared size
        r = self.chunk(self.alice, uid, 0, data, digest=sha(b"other"))
        self.assertEqual(r.status, 400)
        self.assertIn("chunkSha256", r.json()["message"])
        r = self.chunk(self.alice, uid, 500, data[500:])
        self.assertEqual(r.status, 400)
        self.assertIn("expected 0", r.json()["message"])
        r = self.chunk(self.alice, uid, 0, data + b"more")
        self.assertEqual(r.status, 400)
        self.assertIn("declared size", r.json()["message"])
        # incomplete: cannot complete yet; then the right bytes in two pieces, and a repeated first piece
        self.assertEqual(self.chunk(self.alice, uid, 0, data[:400]).status, 200)
        self.assertEqual(self.chunk(self.alice, uid, 0, data[:400]).status, 200)
        r = self.alice.call(U + "CompleteUpload", {"uploadId": uid})
        self.assertEqual(r.status, 400)
        self.assertIn("400 of 1000", r.json()["message"])
        self.assertEqual(self.chunk(self.alice, uid, 400, data[400:]).status, 200)
        asset = self.alice.ok(U + "CompleteUpload", {"uploadId": uid})["asset"]
        self.assertEqual(asset["filename"], "passwd")
        # declared digest that the bytes do not match: refused at the end and the upload cancelled
        up = self.create(self.alice, data, digest=sha(b"not these bytes")).json()["upload"]
        self.assertEqual(self.chunk(self.alice, up["uploadId"], 0, data).status, 200)
        r = self.alice.call(U + "CompleteUpload", {"uploadId": up["uploadId"]})
        self.assertEqual(r.status, 400)
        self.assertIn("sha256", r.json()["message"])
        st = self.alice.ok(U + "GetUpload", {"uploadId": up["uploadId"]})["upload"]
        self.assertEqual(st["status"], "ASSET_UPLOAD_STATUS_CANCELLED")
        # cancelled: no more chunks
        up = self.create(self.alice, data).json()["upload"]
        self.alice.ok(U + "CancelUpload", {"uploadId": up["uploadId"]})
        self.assertEqual(self.chunk(self.alice, up["uploadId"], 0, data).status, 400)
        # bad base64 and bad JSON types
        r = self.alice.call(U + "UploadChunk", {"uploadId": uid, "offset": "0", "content": "@@@", "chunkSha256": sha(b"")})
        self.assertEqual(r.status, 400)
        self.assertIn("content", r.json()["message"])

    def test_tickets_and_membership_are_checked_on_every_fetch(self):
        data = os.urandom(2000)
        asset = self.upload(self.alice, data, "notes.txt", "text/plain")
        aid = asset["id"]
        url = asset["assetUrl"]["url"]
        # an unattached file is its uploader's only
        self.assertEqual(self.fetch(self.a, "/assets/files/" + aid, self.bob.headers()).status, 404)
        self.assertEqual(self.bob.call(A + "GetAsset", {"roomId": self.room, "assetId": aid}).status, 404)
        self.assertEqual(self.alice.ok(A + "GetAsset", {"roomId": self.room, "assetId": aid})["asset"]["id"], aid)
        # forged, expired, for another file, for a resized image: 403
        future = int(time.time()) + 3600
        good = url.split("access=")[1]
        forged = good[:-1] + ("1" if good[-1] == "0" else "0")  # one hex digit of the MAC changed
        for t in [forged, ticket(aid, self.alice_id, int(time.time()) - 10),
                  ticket("0000000000000000000a", self.alice_id, future), ticket(aid, self.alice_id, future, w=10, h=10, f="cover"),
                  ticket(aid, self.alice_id, future, secret="another-secret-0123456789"), "garbage", ""]:
            r = self.fetch(self.a, "/assets/files/%s?access=%s" % (aid, t))
            self.assertEqual(r.status, 403, (t, r))
        # a good ticket made by hand (the format is upstream's) works, on either process
        self.assertEqual(self.fetch(self.b, "/assets/files/%s?access=%s" % (aid, ticket(aid, self.alice_id, future))).body, data)
        # a ticket for bob does not let bob see alice's unattached file
        self.assertEqual(self.fetch(self.b, "/assets/files/%s?access=%s" % (aid, ticket(aid, self.bob_id, future))).status, 404)
        # bad ids and paths
        self.assertEqual(self.fetch(self.a, "/assets/files/..%2f..%2fetc", self.alice.headers()).status, 404)
        self.assertEqual(self.fetch(self.a, "/assets/files/" + aid + "/image/10x10/cover", self.alice.headers()).status, 415)
        self.assertEqual(self.fetch(self.a, "/assets/files/", self.alice.headers()).status, 404)

    def test_files_attached_to_a_message_are_seen_by_members_and_erased_with_it(self):
        marker = os.urandom(48)
        data = marker + os.urandom(CHUNK + 100) + marker
        asset = self.upload(self.alice, data, "photo.png", "image/png")
        # files alone are a message (no body)
        posted = self.alice.ok(M + "CreateMessage", {"roomId": self.room, "attachmentAssetIds": [asset["id"]]})["message"]
        att = posted["attachments"]
        self.assertEqual([(a["id"], a["filename"], a["contentType"], a["size"]) for a in att],
                         [(asset["id"], "photo.png", "image/png", str(len(data)))])
        # bob reads the message through the other process and fetches the file with his own link
        msg = self.bob.ok(M + "GetMessage", {"roomId": self.room, "eventId": posted["id"]})["message"]
        url = msg["attachments"][0]["assetUrl"]["url"]
        self.assertNotEqual(url, att[0]["assetUrl"]["url"])  # a ticket per viewer
        self.assertEqual(self.fetch(self.b, url).body, data)
        self.assertEqual(self.bob.ok(A + "GetAsset", {"roomId": self.room, "assetId": asset["id"]})["asset"]["id"], asset["id"])
        # the room's Files list (upstream's ListRoomAttachments): newest first, paged
        second = self.upload(self.alice, b"second file", "b.txt", "text/plain")
        self.alice.ok(M + "CreateMessage", {"roomId": self.room, "body": "two", "attachmentAssetIds": [second["id"]]})
        files = self.bob.ok(R + "ListRoomAttachments", {"roomId": self.room})
        self.assertEqual([f["attachment"]["filename"] for f in files["attachments"]], ["b.txt", "photo.png"])
        self.assertEqual(files["attachments"][1]["messageEventId"], posted["id"])
        self.assertEqual(files["page"], {"totalCount": "2", "hasMore": False})
        page = self.bob.ok(R + "ListRoomAttachments", {"roomId": self.room, "page": {"limit": 1, "offset": 1}})
        self.assertEqual(([f["attachment"]["filename"] for f in page["attachments"]], page["page"]["hasMore"]),
                         (["photo.png"], False))
        r = self.bob.call(R + "ListRoomAttachments", {"roomId": self.room, "page": {"limit": 501}})
        self.assertEqual(r.status, 400)
        self.assertIn("page.limit", r.json()["message"])
        # an edit keeps the files
        edited = self.alice.ok(M + "UpdateMessage", {"roomId": self.room, "eventId": posted["id"], "body": "the photo"})
        self.assertEqual(edited["message"]["attachments"][0]["id"], asset["id"])
        # a file is one message's: attaching it again, or someone else's, or an unknown one, is refused
        for who, ids, needle in [(self.alice, [asset["id"]], "attached to a message already"),
                                 (self.bob, [asset["id"]], "not one you uploaded"),
                                 (self.alice, ["0000000000000000000z"], "not one you uploaded"),
                                 (self.alice, ["../x"], "not a valid id"),
                                 (self.alice, ["a%d" % i for i in range(11)], "at most 10")]:
            r = who.call(M + "CreateMessage", {"roomId": self.room, "body": "x", "attachmentAssetIds": ids})
            self.assertEqual(r.status, 400, (ids, r))
            self.assertIn(needle, r.json()["message"], (ids, r))
        self.assertEqual(self.alice.call(M + "CreateMessage", {"roomId": self.room}).status, 400)
        # membership is checked on every fetch: bob leaves, his link stops working
        self.bob.ok(R + "LeaveRoom", {"roomId": self.room})
        self.assertEqual(self.fetch(self.b, url).status, 404)
        self.bob.ok(R + "JoinRoom", {"roomId": self.room})
        self.assertEqual(self.fetch(self.a, url).status, 200)
        # deleting the message erases the file's bytes from the store
        self.assertTrue(grep_tree(self.n.dir, marker), "the file should be in the store before")
        self.alice.ok(M + "DeleteMessage", {"roomId": self.room, "eventId": posted["id"]})
        self.assertEqual(self.fetch(self.b, url).status, 404)
        self.assertEqual(self.bob.call(A + "GetAsset", {"roomId": self.room, "assetId": asset["id"]}).status, 404)
        self.assertEqual(grep_tree(self.n.dir, marker), [])
        files = self.bob.ok(R + "ListRoomAttachments", {"roomId": self.room})
        self.assertEqual([f["attachment"]["filename"] for f in files["attachments"]], ["b.txt"])

    def test_nats_object_store_clients_read_our_files_and_we_read_theirs(self):
        self.node_nats()
        data = os.urandom(CHUNK * 2 + 999)
        asset = self.upload(self.alice, data, "big.bin")
        out = self.node_objstore("get", asset["id"])
        self.assertEqual(sha(out), sha(data))
        # one the NATS client wrote (its own 128 KiB chunks and digest encoding) reads back through our reader
        theirs = os.urandom(300 * 1024 + 5)
        self.node_objstore("put", "from-node", theirs)
        self.assertEqual(sha(self.objcat("get", "from-node")), sha(theirs))
        # and one our writer made with small chunks reads back through theirs
        ours = os.urandom(200 * 1024 + 3)
        self.objcat("put", "from-c", "65536", data=ours)
        self.assertEqual(sha(self.node_objstore("get", "from-c")), sha(ours))

    def objcat(self, *args, data=b""):
        import subprocess
        tool = os.path.join(BUILD, "objcat")
        p = subprocess.run([tool, self.n.url, self.n.token] + list(args), input=data, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    # -- the nats npm client (test/browser/node_modules) --

    NODE_SCRIPT = r"""
const { connect, StringCodec } = require(process.env.NATS_MODULE);
(async () => {
  const nc = await connect({ servers: process.env.NATS_URL, token: process.env.NATS_TOKEN });
  const js = nc.jetstream();
  const os = await js.views.os("SERVER_ASSETS");
  const [op, name] = process.argv.slice(2);
  if (op === "get") {
    const r = await os.get(name);
    if (!r) { console.error("not found"); process.exit(3); }
    const chunks = [];
    const reader = r.data.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
    }
    const err = await r.error;
    if (err) { console.error(String(err)); process.exit(4); }
    require("fs").writeSync(1, Buffer.concat(chunks));
  } else if (op === "put") {
    const data = require("fs").readFileSync(0);
    await os.putBlob({ name }, new Uint8Array(data));
  }
  await nc.close();
})().catch((e) => { console.error(String(e)); process.exit(2); });
"""

    def node_nats(self):
        mod = os.path.join(os.path.dirname(__file__), "..", "browser", "node_modules", "nats")
        if not os.path.isdir(mod):
            self.fail("the nats npm client is missing: run packaging/deps.sh test")
        self.nats_module = os.path.abspath(mod)
        return mod

    def node_objstore(self, op, name, data=b""):
        import subprocess
        env = dict(os.environ, NATS_MODULE=self.nats_module, NATS_URL=self.n.url, NATS_TOKEN=self.n.token)
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
            f.write(self.NODE_SCRIPT)
            script = f.name
        self.addCleanup(os.unlink, script)
        p = subprocess.run(["node", script, op, name], input=data, env=env, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout
