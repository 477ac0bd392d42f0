# SPDX-License-Identifier: MIT
"""How long files live, and what many at once cost: the janitor drops uploads nobody finished and files nobody
attached (with their bytes) but never a file a message holds; and 20 clients uploading 25 MB each at once cost
chatto a bounded amount of memory, not 20 files' worth."""
import hashlib
import os
import re
import subprocess
import threading

from harness import BUILD, FAST_AUTH, SANITIZER, Client, TestCase, external_env, grep_tree, http_request

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
U = "chatto.api.v1.AssetUploadService/"
A = "chatto.api.v1.AssetService/"
CHUNK = 512 * 1024
HOUR_MS = 3600 * 1000


def sha(b):
    return hashlib.sha256(b).hexdigest()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read())[1])


class Lifetime(TestCase):
    def setUp(self):
        super().setUp()
        self.n = self.nats(token="lifetime-test-token")
        self.a = self.chatto(embedded=False, env=external_env(self.n),
                             args=FAST_AUTH + ["--core-assets-max-upload-size", "25MB"])
        self.alice = Client(self.a)
        self.alice.register("alice")
        self.room = self.alice.ok(R + "CreateRoom", {"name": "files", "visibility": "public"})["room"]["id"]

    def start_upload(self, data, name="f.bin"):
        return self.alice.ok(U + "CreateUpload", {"roomId": self.room, "filename": name,
                                                  "contentType": "application/octet-stream",
                                                  "size": str(len(data)), "sha256": sha(data)})["upload"]["uploadId"]

    def put(self, up, off, piece, conn=None):
        r = http_request(self.a.port, "PUT", "/api/assets/uploads/%s?offset=%d" % (up, off), body=piece,
                         headers=self.alice.headers(), timeout=120)
        self.assertEqual(r.status, 200, r)

    def upload(self, data, name="f.bin"):
        up = self.start_upload(data, name)
        for off in range(0, len(data), CHUNK):
            self.put(up, off, data[off:off + CHUNK])
        return self.alice.ok(U + "CompleteUpload", {"uploadId": up})["asset"]

    def janitor(self, ahead_ms):
        p = subprocess.run([os.path.join(BUILD, "objcat"), self.n.url, self.n.token, "janitor", str(ahead_ms)],
                           capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())

    def test_janitor_drops_abandoned_uploads_and_unattached_files_but_never_attached_ones(self):
        marks = {k: os.urandom(40) for k in ("open", "loose", "kept")}
        # an upload left half-way, a file nobody attached, and one a message holds
        half = marks["open"] + os.urandom(CHUNK + 1000)
        up = self.start_upload(half)
        self.put(up, 0, half[:CHUNK])
        loose = self.upload(marks["loose"] + os.urandom(5000), "loose.bin")
        kept = self.upload(marks["kept"] + os.urandom(5000), "kept.bin")
        self.alice.ok(M + "CreateMessage", {"roomId": self.room, "attachmentAssetIds": [kept["id"]]})
        for m in marks.values():
            self.assertTrue(grep_tree(self.n.dir, m))
        # ten minutes on, nothing has expired yet
        self.janitor(10 * 60 * 1000)
        self.assertEqual(self.alice.ok(U + "GetUpload", {"uploadId": up})["upload"]["status"], "ASSET_UPLOAD_STATUS_OPEN")
        self.alice.ok(A + "GetAsset", {"roomId": self.room, "assetId": loose["id"]})
        # 16 minutes: the idle upload is cancelled and its chunks erased; a chunk for it now fails clearly
        self.janitor(16 * 60 * 1000)
        self.assertEqual(grep_tree(self.n.dir, marks["open"]), [])
        self.assertEqual(self.alice.ok(U + "GetUpload", {"uploadId": up})["upload"]["status"],
                         "ASSET_UPLOAD_STATUS_CANCELLED")
        r = http_request(self.a.port, "PUT", "/api/assets/uploads/%s?offset=%d" % (up, CHUNK), body=half[CHUNK:],
                         headers=self.alice.headers())
        self.assertEqual((r.status, r.json()["code"]), (400, "failed_precondition"), r)
        self.assertIn("cancelled", r.json()["message"])
        # 25 hours: the file nobody attached is gone with its bytes; the attached one stays, bytes and all
        self.janitor(25 * HOUR_MS)
        self.assertEqual(self.alice.call(A + "GetAsset", {"roomId": self.room, "assetId": loose["id"]}).status, 404)
        self.assertEqual(grep_tree(self.n.dir, marks["loose"]), [])
        r = self.alice.call(M + "CreateMessage", {"roomId": self.room, "body": "late", "attachmentAssetIds": [loose["id"]]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("attachmentAssetIds", r.json()["message"])
        self.assertEqual(self.alice.ok(A + "GetAsset", {"roomId": self.room, "assetId": kept["id"]})["asset"]["id"],
                         kept["id"])
        self.assertTrue(grep_tree(self.n.dir, marks["kept"]))
        r = http_request(self.a.port, "GET", "/assets/files/" + kept["id"], headers=self.alice.headers())
        self.assertEqual((r.status, r.body[:40]), (200, marks["kept"]))
        # and an upload record lingers an hour after it expired, then goes
        self.janitor(27 * HOUR_MS)
        self.assertEqual(self.alice.call(U + "GetUpload", {"uploadId": up}).status, 404)

    def test_twenty_concurrent_25mb_uploads_cost_bounded_memory(self):
        size = 25 * 1000 * 1000
        data = os.urandom(size)
        ups = [self.start_upload(data, "f%d.bin" % i) for i in range(20)]
        before = rss_kib(self.a.proc.pid)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(self.a.proc.pid))
                stop.wait(0.02)
        errors = []

        def run(up):
            try:
                for off in range(0, size, CHUNK):
                    self.put(up, off, data[off:off + CHUNK])
                done = self.alice.ok(U + "CompleteUpload", {"uploadId": up})
                self.assertEqual(done["asset"]["size"], str(size))
            except BaseException as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        sampler = threading.Thread(target=sample)
        sampler.start()
        threads = [threading.Thread(target=run, args=(up,)) for up in ups]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        sampler.join()
        self.assertEqual(errors, [])
        # 500 MB went through; chatto holds a chunk or two per upload at a time, never the files
        grew = (peak[0] - before) / 1024
        if not SANITIZER:  # ASan keeps freed memory in quarantine (256 MB by default): nothing to learn there
            self.assertLess(grew, 120, "chatto grew by %.0f MB during 20 concurrent 25 MB uploads" % grew)
        print("20 concurrent 25 MB uploads: chatto VmRSS %d KiB before, peak %d KiB (+%.1f MB)" % (
            before, peak[0], grew))
