#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Files for `make bench`: a 25 MB file uploaded (CreateUpload, 512 KiB raw PUT chunks, CompleteUpload) and
downloaded through one embedded chatto, against a raw object-store put and get of the same bytes by an independent
NATS client (the nats npm package) on the same nats-server in the same run; then chatto's RSS while 10 clients
upload 25 MB each at once, and while 10 download at once (the goal is at most +40 MB for the uploads); last,
thumbnail latency (p50, p99) for a 12-megapixel JPEG, one at a time and four clients at once."""
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
from harness import BUILD, Chatto, Client, FAST_AUTH  # noqa: E402

SIZE = int(os.environ.get("CHATTO_BENCH_FILE_MB", "25")) * 1000 * 1000
ROUNDS = int(os.environ.get("CHATTO_BENCH_FILE_ROUNDS", "3"))
CHUNK = 512 * 1024
THUMB_ROUNDS = int(os.environ.get("CHATTO_BENCH_THUMB_ROUNDS", "100"))
NATS_MODULE = os.path.join(HERE, "..", "test", "browser", "node_modules", "nats")

NODE = r"""
const { connect } = require(process.env.NATS_MODULE);
(async () => {
  const nc = await connect({ servers: process.env.NATS_URL, token: process.env.NATS_TOKEN });
  const os = await nc.jetstream().views.os("SERVER_ASSETS");
  const data = new Uint8Array(require("fs").readFileSync(process.argv[2]));
  const out = [];
  for (let i = 0; i < Number(process.argv[3]); i++) {
    const name = "bench-raw-" + i;
    let t = process.hrtime.bigint();
    await os.putBlob({ name, options: { max_chunk_size: 512 * 1024 } }, data);
    const put = Number(process.hrtime.bigint() - t) / 1e9;
    t = process.hrtime.bigint();
    const got = await os.getBlob(name);
    const get = Number(process.hrtime.bigint() - t) / 1e9;
    if (got.length !== data.length) throw new Error("short read");
    await os.delete(name);
    out.push({ put, get });
  }
  console.log(JSON.stringify(out));
  await nc.close();
})().catch((e) => { console.error(String(e)); process.exit(2); });
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read())[1])


class Api:
    """One keep-alive connection to chatto with a bearer token."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.auth = {"Authorization": "Bearer " + token}

    def call(self, method, body):
        self.conn.request("POST", "/api/connect/" + method, json.dumps(body).encode(),
                          dict(self.auth, **{"Content-Type": "application/json"}))
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit("%s: %d %s" % (method, r.status, data[:300]))
        return json.loads(data)

    def upload(self, room, data, digest, name="bench.bin", ctype="application/octet-stream"):
        up = self.call("chatto.api.v1.AssetUploadService/CreateUpload",
                       {"roomId": room, "filename": name, "contentType": ctype,
                        "size": str(len(data)), "sha256": digest})["upload"]["uploadId"]
        for off in range(0, len(data), CHUNK):
            piece = data[off:off + CHUNK]
            self.conn.request("PUT", "/api/assets/uploads/%s?offset=%d" % (up, off), piece, self.auth)
            r = self.conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise SystemExit("chunk at %d: %d %s" % (off, r.status, body[:300]))
        return self.call("chatto.api.v1.AssetUploadService/CompleteUpload", {"uploadId": up})["asset"]

    def download(self, asset_id, tail=""):
        self.conn.request("GET", "/assets/files/" + asset_id + tail, headers=self.auth)
        r = self.conn.getresponse()
        n = 0
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            n += len(b)
        if r.status != 200:
            raise SystemExit("download: %d" % r.status)
        return n


def sample_peak(pid, stop, out):
    peak = 0
    while not stop.is_set():
        try:
            peak = max(peak, rss_kib(pid))
        except OSError:
            break
        time.sleep(0.02)
    out.append(peak)


def concurrently(pid, fn, n):
    stop, peak, errors = threading.Event(), [], []
    sampler = threading.Thread(target=sample_peak, args=(pid, stop, peak))
    sampler.start()

    def run(i):
        try:
            fn(i)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - t
    stop.set()
    sampler.join()
    if errors:
        raise SystemExit("concurrent run failed: %r" % errors[0])
    return peak[0], elapsed


def thumbnails(c, token):
    """Thumbnail generation for a 12-megapixel JPEG (4000 x 3000, made by libvips), no cache: one at a time, then 4
    clients at once (chatto decodes at most 2 at a time)."""
    img = tempfile.NamedTemporaryFile(suffix=".jpg", delete=False)
    img.close()
    try:
        subprocess.run([os.path.join(BUILD, "imgtool"), "make", "4000x3000", "jpeg", img.name], check=True, timeout=300)
        data = open(img.name, "rb").read()
    finally:
        os.unlink(img.name)
    api = Api(c.port, token)
    asset = api.upload("general", data, hashlib.sha256(data).hexdigest(), "photo.jpg", "image/jpeg")

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000

    for spec in ("720x720/contain", "256x256/cover"):
        times = []
        for _ in range(THUMB_ROUNDS):
            t = time.monotonic()
            api.download(asset["id"], "/image/" + spec)
            times.append(time.monotonic() - t)
        print("thumbnail %-16s of a %.1f MB 12-megapixel JPEG, %d sequential: p50 %.0f ms, p99 %.0f ms" % (
            spec, len(data) / 1e6, THUMB_ROUNDS, pct(times, 50), pct(times, 99)))
    clients = [Api(c.port, token) for _ in range(4)]
    times = []

    def four(i):
        for _ in range(THUMB_ROUNDS // 4):
            t = time.monotonic()
            clients[i].download(asset["id"], "/image/720x720/contain")
            times.append(time.monotonic() - t)
    before = rss_kib(c.pid)
    peak, elapsed = concurrently(c.pid, four, 4)
    print("thumbnail 720x720/contain, 4 clients at once: p50 %.0f ms, p99 %.0f ms, %.1f thumbnails/s; chatto VmRSS "
          "+%.1f MB at peak" % (pct(times, 50), pct(times, 99), len(times) / elapsed, (peak - before) / 1024))


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    if not os.path.isdir(NATS_MODULE):
        raise SystemExit("the nats npm client is missing: run packaging/deps.sh test")
    c = Chatto(args=FAST_AUTH + ["--core-assets-max-upload-size", "30MB"])
    c.start()
    tmp = tempfile.NamedTemporaryFile(delete=False)
    try:
        token = Client(c).register("bench", token=True).json()["token"]
        nats_url = open(os.path.join(c.data_dir, "run", "client.url")).read().strip()
        nats_token = re.search(r'auth_token = "([^"]+)"', open(os.path.join(c.data_dir, "secrets.ini")).read())[1]
        data = os.urandom(SIZE)
        digest = hashlib.sha256(data).hexdigest()
        tmp.write(data)
        tmp.close()
        api = Api(c.port, token)
        up, down = [], []
        asset = None
        for _ in range(ROUNDS):
            t = time.monotonic()
            asset = api.upload("general", data, digest)
            up.append(time.monotonic() - t)
            t = time.monotonic()
            if api.download(asset["id"]) != SIZE:
                raise SystemExit("short download")
            down.append(time.monotonic() - t)
        script = tempfile.NamedTemporaryFile("w", suffix=".js", delete=False)
        script.write(NODE)
        script.close()
        env = dict(os.environ, NATS_MODULE=os.path.abspath(NATS_MODULE), NATS_URL=nats_url, NATS_TOKEN=nats_token)
        p = subprocess.run(["node", script.name, tmp.name, str(ROUNDS)], env=env, capture_output=True, text=True,
                           timeout=600)
        os.unlink(script.name)
        if p.returncode != 0:
            raise SystemExit("node object store: %s" % p.stderr[-2000:])
        raw = json.loads(p.stdout)
        mb = SIZE / 1e6
        best = lambda xs: min(xs)  # noqa: E731 (the least disturbed of the rounds, for both sides alike)
        print("\nFiles: %d MB, best of %d rounds, one client at a time (chatto, nats-server and the clients share %d "
              "cores; load average %.2f)" % (SIZE // 1000000, ROUNDS, os.cpu_count(), os.getloadavg()[0]))
        print("%-58s %10s %10s" % ("", "upload", "download"))
        print("%-58s %7.1f MB/s %7.1f MB/s" % ("chatto (raw 512 KiB PUT chunks, streamed GET)", mb / best(up),
                                               mb / best(down)))
        rp, rg = best([r["put"] for r in raw]), best([r["get"] for r in raw])
        print("%-58s %7.1f MB/s %7.1f MB/s" % ("raw object store, nats npm client putBlob/getBlob", mb / rp, mb / rg))
        print("%-58s %9.2fx %9.2fx" % ("ratio chatto / raw (goal >= 0.7x)", rp / best(up), rg / best(down)))

        before = rss_kib(c.pid)
        clients = [Api(c.port, token) for _ in range(10)]
        assets = []
        peak, elapsed = concurrently(c.pid, lambda i: assets.append(clients[i].upload("general", data, digest,
                                                                                      "b%d.bin" % i)), 10)
        print("10 concurrent %d MB uploads: %.1f s (%.1f MB/s together); chatto VmRSS %d KiB before, peak %d KiB: "
              "+%.1f MB (goal <= +40 MB)" % (SIZE // 1000000, elapsed, 10 * mb / elapsed, before, peak,
                                            (peak - before) / 1024))
        before = rss_kib(c.pid)
        peak, elapsed = concurrently(c.pid, lambda i: clients[i].download(assets[i]["id"]), 10)
        print("10 concurrent %d MB downloads: %.1f s (%.1f MB/s together); chatto VmRSS %d KiB before, peak %d KiB: "
              "+%.1f MB" % (SIZE // 1000000, elapsed, 10 * mb / elapsed, before, peak, (peak - before) / 1024))
        thumbnails(c, token)
    finally:
        os.unlink(tmp.name)
        c.cleanup()


if __name__ == "__main__":
    main()
