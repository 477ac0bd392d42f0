# SPDX-License-Identifier: MIT
"""Attachments in S3 (core.assets.storage_backend = s3) against s3rver on loopback, behind a front that checks
every request's Signature V4 with the AWS SDK's signer: the bucket made at start, uploads staged in NATS and moved
to S3 on completion, downloads with Range and HEAD, erase with the message, switching backends both ways, S3 away,
bad settings; and our signer against the SDK's over varied requests."""
import json
import os
import subprocess
import time

from harness import (BUILD, FAST_AUTH, NODE_MODULES, ROOT, TIME_SCALE, Client, TestCase, external_env, grep_tree,
                     http_request, run_chatto, sha256_hex, upload_chunks, upload_file, wait_for)

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
U = "chatto.api.v1.AssetUploadService/"
MB = 1024 * 1024
PIECE = MB  # bytes per ranged GET (lib/assets/download.c)


class S3Assets(TestCase):
    BUCKET = "chatto-files"

    def setUp(self):
        super().setUp()
        self.n = self.nats(token="s3-test-token")
        self.s3srv = self.s3()
        self.env = external_env(self.n)

    # -- helpers --

    def start(self, backend="s3", s3=True, **extra):
        env = dict(self.env, CHATTO_CORE_ASSETS_STORAGE_BACKEND=backend)
        if s3:
            env.update(self.s3srv.env(self.BUCKET, **extra))
        return self.chatto(embedded=False, env=env, args=FAST_AUTH + ["--core-assets-max-upload-size", "30MB"])

    def stop(self, c):
        self.assertEqual(c.stop(), 0)

    def login(self, c, register=False):
        u = Client(c)
        r = u.register("alice") if register else u.login("alice")
        self.assertEqual(r.status, 200, r)
        return u

    def room(self, u):
        return u.ok(R + "CreateRoom", {"name": "files-%d" % time.monotonic_ns(), "visibility": "public"})["room"]["id"]

    def fetch(self, c, url, headers=None, method="GET"):
        return http_request(c.port, method, url, headers=headers or {}, timeout=30)

    def bad_signatures(self):
        return [r for r in self.s3srv.requests() if r.get("sig") != "ok" or r.get("payload") == "BAD"]

    def tearDown(self):
        bad = self.bad_signatures()
        super().tearDown()
        self.assertEqual(bad, [], "requests the SDK's signer (or the body digest) did not agree with")

    # -- tests --

    def test_files_go_to_s3_under_the_prefix_and_come_back_with_range_and_head(self):
        self.assertFalse(self.s3srv.has_bucket(self.BUCKET))
        c = self.start(CHATTO_CORE_ASSETS_S3_PATH_PREFIX="/team/a/")
        self.assertTrue(self.s3srv.has_bucket(self.BUCKET), "the bucket is made at start")
        self.assertIn("are stored in S3 at http://%s/%s" % (self.s3srv.endpoint, self.BUCKET), c.stderr())
        alice = self.login(c, register=True)
        room = self.room(alice)
        marker = os.urandom(64)
        data = marker + os.urandom(3 * MB + 12345) + marker
        asset = upload_file(self, alice, room, data, "video.bin")
        obj = self.s3srv.object_path(self.BUCKET, "team/a/attachments/" + asset["id"])
        with open(obj, "rb") as f:
            self.assertEqual(f.read(), data)
        # the copy staged in NATS is erased once S3 has the file
        self.assertEqual(grep_tree(self.n.dir, marker), [])
        url = asset["assetUrl"]["url"]
        r = self.fetch(c, url)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sha256_hex(r.body), sha256_hex(data))
        self.assertEqual(r.header("ETag"), '"%s"' % sha256_hex(data))
        # Range across the 1 MiB pieces, a suffix, past the end, HEAD
        a, b = PIECE - 100, 2 * PIECE + 100
        r = self.fetch(c, url, {"Range": "bytes=%d-%d" % (a, b)})
        self.assertEqual((r.status, r.body == data[a:b + 1]), (206, True), r)
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (a, b, len(data)))
        r = self.fetch(c, url, {"Range": "bytes=-10"})
        self.assertEqual((r.status, r.body), (206, data[-10:]))
        self.assertEqual(self.fetch(c, url, {"Range": "bytes=%d-" % len(data)}).status, 416)
        r = self.fetch(c, url, method="HEAD")
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", str(len(data))))
        self.assertEqual(self.fetch(c, url, {"If-None-Match": '"%s"' % sha256_hex(data)}).status, 304)
        # constant memory: every GET asked S3 for one piece at most
        gets = [q for q in self.s3srv.requests() if q["method"] == "GET"]
        self.assertTrue(gets)
        for q in gets:
            lo, hi = (int(x) for x in q["range"].split("=")[1].split("-"))
            self.assertLessEqual(hi - lo + 1, PIECE, q)
        # deleting the message deletes the object
        msg = alice.ok(M + "CreateMessage", {"roomId": room, "attachmentAssetIds": [asset["id"]]})["message"]
        self.assertTrue(os.path.exists(obj))
        alice.ok(M + "DeleteMessage", {"roomId": room, "eventId": msg["id"]})
        wait_for(lambda: not os.path.exists(obj), 10, "the S3 object to be deleted")
        self.assertEqual(self.fetch(c, url).status, 404)
        self.assertEqual(grep_tree(self.s3srv.data, marker), [])
        # an image in S3 is resized like one in NATS
        jpeg_path = os.path.join(self.s3srv.data, "..", "photo.jpg")
        subprocess.run([os.path.join(BUILD, "imgtool"), "make", "900x600", "jpeg", jpeg_path], check=True, timeout=60)
        with open(jpeg_path, "rb") as f:
            jpeg = f.read()
        pic = upload_file(self, alice, room, jpeg, "photo.jpg", "image/jpeg")
        r = self.fetch(c, pic["thumbnailAssetUrl"]["url"])
        self.assertEqual((r.status, r.header("Content-Type")), (200, "image/jpeg"), r)
        self.assertEqual(r.body[:2], b"\xff\xd8")

    def test_virtual_host_style(self):
        c = self.start(CHATTO_CORE_ASSETS_S3_ENDPOINT="localhost:%d" % self.s3srv.port,
                       CHATTO_CORE_ASSETS_S3_PATH_STYLE="false")
        alice = self.login(c, register=True)
        data = os.urandom(MB + 7)
        asset = upload_file(self, alice, self.room(alice), data)
        self.assertEqual(self.fetch(c, asset["assetUrl"]["url"]).body, data)
        hosts = {q["host"] for q in self.s3srv.requests()}
        self.assertEqual(hosts, {"%s.localhost:%d" % (self.BUCKET, self.s3srv.port)})

    def test_switching_backend_keeps_every_file_readable(self):
        # a file stored in NATS, by a process that knows nothing of S3
        c = self.start("nats", s3=False)
        alice = self.login(c, register=True)
        room = self.room(alice)
        in_nats = os.urandom(MB + 1)
        a1 = upload_file(self, alice, room, in_nats, "nats.bin")
        self.stop(c)
        # now S3: the NATS file is still served, new files go to S3
        c = self.start("s3")
        alice = self.login(c)
        self.assertEqual(self.fetch(c, a1["assetUrl"]["url"]).body, in_nats)
        in_s3 = os.urandom(MB + 2)
        a2 = upload_file(self, alice, room, in_s3, "s3.bin")
        self.assertTrue(os.path.exists(self.s3srv.object_path(self.BUCKET, "attachments/" + a2["id"])))
        self.stop(c)
        # back to NATS with the S3 settings kept: both served, new files in NATS again
        c = self.start("nats")
        alice = self.login(c)
        self.assertIn("stored earlier are read from S3", c.stderr())
        self.assertEqual(self.fetch(c, a1["assetUrl"]["url"]).body, in_nats)
        self.assertEqual(self.fetch(c, a2["assetUrl"]["url"]).body, in_s3)
        before = len(self.s3srv.requests())
        a3 = upload_file(self, alice, room, b"small", "n.txt", "text/plain")
        self.assertFalse([q for q in self.s3srv.requests()[before:] if q["method"] == "PUT"])
        self.stop(c)
        # and without any S3 settings: the S3 file says why it cannot be served, the others are fine
        c = self.start("nats", s3=False)
        r = self.fetch(c, a2["assetUrl"]["url"])
        self.assertEqual(r.status, 503, r)
        self.assertIn("core.assets.s3", r.json()["message"])
        self.assertEqual(self.fetch(c, a1["assetUrl"]["url"]).body, in_nats)
        self.assertEqual(self.fetch(c, a3["assetUrl"]["url"]).body, b"small")

    def test_s3_away_gives_unavailable_quickly_and_the_upload_can_be_completed_later(self):
        c = self.start()
        alice = self.login(c, register=True)
        room = self.room(alice)
        stored = os.urandom(MB + 3)
        a1 = upload_file(self, alice, room, stored)
        pending = os.urandom(2 * MB + 5)
        up = upload_chunks(self, alice, room, pending)
        self.s3srv.kill()
        t0 = time.monotonic()
        r = alice.call(U + "CompleteUpload", {"uploadId": up["uploadId"]})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["code"], "unavailable")
        self.assertIn("CompleteUpload again", r.json()["message"])
        r = self.fetch(c, a1["assetUrl"]["url"])
        self.assertEqual(r.status, 503, r)
        self.assertLess(time.monotonic() - t0, 10 * TIME_SCALE)
        # the upload is still open and nothing half-made is visible
        st = alice.ok(U + "GetUpload", {"uploadId": up["uploadId"]})["upload"]
        self.assertEqual(st["status"], "ASSET_UPLOAD_STATUS_OPEN")
        self.assertEqual(c.get("/healthz").status, 200)
        # S3 is back: completing again works, and the file is whole
        self.s3srv.start()
        done = alice.ok(U + "CompleteUpload", {"uploadId": up["uploadId"]})
        self.assertEqual(done["upload"]["status"], "ASSET_UPLOAD_STATUS_COMPLETED")
        self.assertEqual(self.fetch(c, done["asset"]["assetUrl"]["url"]).body, pending)
        self.assertEqual(self.fetch(c, a1["assetUrl"]["url"]).body, stored)

    def test_start_while_s3_is_away_makes_the_bucket_later(self):
        self.s3srv.kill()
        c = self.start()
        self.assertIn("is not ready", c.stderr())
        alice = self.login(c, register=True)
        room = self.room(alice)
        up = upload_chunks(self, alice, room, b"hello s3")
        r = alice.call(U + "CompleteUpload", {"uploadId": up["uploadId"]})
        self.assertEqual(r.status, 503, r)
        self.s3srv.start()
        asset = alice.ok(U + "CompleteUpload", {"uploadId": up["uploadId"]})["asset"]
        self.assertTrue(self.s3srv.has_bucket(self.BUCKET))
        self.assertEqual(self.fetch(c, asset["assetUrl"]["url"]).body, b"hello s3")

    def test_bad_settings_refuse_to_start_naming_the_key(self):
        base = dict(self.env, CHATTO_CORE_ASSETS_STORAGE_BACKEND="s3")
        cases = [
            ({k: v for k, v in self.s3srv.env(self.BUCKET).items() if k != "CHATTO_CORE_ASSETS_S3_BUCKET"},
             "core.assets.s3.bucket: required when storage_backend is s3"),
            (self.s3srv.env(self.BUCKET, CHATTO_CORE_ASSETS_S3_ENDPOINT="127.0.0.1:99999"),
             "core.assets.s3.endpoint: the port must be 1-65535"),
            (self.s3srv.env("Not_A_Host", CHATTO_CORE_ASSETS_S3_PATH_STYLE="false"), "core.assets.s3.path_style"),
            (self.s3srv.env(self.BUCKET, CHATTO_CORE_ASSETS_S3_PATH_STYLE="sometimes"),
             "CHATTO_CORE_ASSETS_S3_PATH_STYLE: must be one of auto,true,false"),
        ]
        for extra, needle in cases:
            c = self.chatto(embedded=False, env=dict(base, **extra), start=False)
            c.start(wait_ready=False)
            wait_for(lambda: c.proc.poll() is not None, 20, "chatto to refuse to start")
            self.assertEqual(c.proc.returncode, 2, c.stderr())
            self.assertIn(needle, c.stderr())
        p = run_chatto(["config", "check"], env=dict(base, CHATTO_CORE_ASSETS_S3_ENDPOINT="x"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("core.assets.s3.bucket: required when storage_backend is s3", p.stderr)


class SignerMatchesTheSdk(TestCase):
    """Our SigV4 signer (build/s3sign) and the AWS SDK for JavaScript's, on the same requests."""

    def cases(self):
        base = {"region": "us-east-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "time": 1369353600,
                "payload": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "headers": [],
                "query": []}
        vary = [
            dict(method="GET", host="examplebucket.s3.amazonaws.com", path="/test.txt", headers=[["Range", "bytes=0-9"]]),
            dict(method="PUT", host="127.0.0.1:9000", path="/bucket/attachments/0123456789abcdefghij",
                 payload=sha256_hex(b"x" * 1000), headers=[["Content-Type", "application/pdf"]]),
            dict(method="GET", host="127.0.0.1:9000", path="/bucket/a key with spaces.txt"),
            dict(method="GET", host="s3.eu-west-1.amazonaws.com", path="/b/caf\u00e9/\u65e5\u672c\u8a9e.png",
                 region="eu-west-1"),
            dict(method="DELETE", host="b.s3.amazonaws.com", path="/1+1=2 & more"),
            dict(method="HEAD", host="b.s3.amazonaws.com", path="/tilde~dash-under_dot.x"),
            dict(method="GET", host="b.s3.amazonaws.com", path="/", query=[["list-type", "2"], ["prefix", "a/b c"],
                                                                          ["max-keys", "10"]]),
            dict(method="GET", host="b.s3.amazonaws.com", path="/", query=[["location", None]]),
            dict(method="GET", host="minio:9000", path="/bucket/x", query=[["response-content-type", "text/plain; a=b"]]),
            dict(method="PUT", host="b.s3.ap-southeast-2.amazonaws.com", path="/deep/ly/nested/key",
                 region="ap-southeast-2", payload="UNSIGNED-PAYLOAD"),
            dict(method="GET", host="[::1]:9000", path="/bucket/x"),
            dict(method="GET", host="b.s3.amazonaws.com", path="/x", headers=[["X-Amz-Meta-Note", "  two   spaces  "]]),
            dict(method="GET", host="b.s3.amazonaws.com", path="/!'()*$@:,;", time=1700000000),
            dict(method="PUT", host="b.s3.amazonaws.com", path="/%41 literal percent", payload=sha256_hex(b"")),
            dict(method="GET", host="b.s3.amazonaws.com", path="/emoji-\U0001F600.txt", region="us-west-2"),
            dict(method="PUT", host="127.0.0.1:9000", path="/", region="eu-central-1",
                 payload=sha256_hex(b"<CreateBucketConfiguration/>"), headers=[["content-type", "application/xml"]]),
            dict(method="GET", host="b.s3.amazonaws.com", path="/k", query=[["a", "1"], ["A", "2"], ["b~", "x/y"]]),
            dict(method="GET", host="b.s3.amazonaws.com", path="/double//slash/", secretAccessKey="another/secret+key="),
            dict(method="POST", host="b.s3.amazonaws.com", path="/k", query=[["uploads", ""]], time=2000000000),
            dict(method="GET", host="b.s3.amazonaws.com", path="/k", headers=[["Range", "bytes=1048576-2097151"],
                                                                            ["If-None-Match", '"abc"']]),
        ]
        return [dict(base, **v) for v in vary]

    def test_twenty_varied_requests_sign_alike(self):
        reqs = json.dumps(self.cases())
        p = subprocess.run([os.path.join(BUILD, "s3sign")], input=reqs.encode(), capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        ours = json.loads(p.stdout)
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        p = subprocess.run(["node", os.path.join(ROOT, "test", "integration", "s3", "sdk_sign.cjs")],
                           input=reqs.encode(), capture_output=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        theirs = json.loads(p.stdout)
        self.assertEqual(len(ours), 20)
        for req, o, t in zip(self.cases(), ours, theirs):
            self.assertNotIn("error", o, req)
            self.assertEqual(o["authorization"], t["authorization"], req)
            self.assertEqual(o["amzDate"], t["amzDate"])
