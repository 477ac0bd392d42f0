# SPDX-License-Identifier: MIT
"""Resized images (/assets/files/<id>/image/<W>x<H>/<fit>): sizes and formats checked with libvips' own reader
(test/tools/imgtool), tickets per size, ETag, the ASSET_CACHE object store and its erasure, avatars, and hostile
images: corrupt, not an image, or a small file claiming billions of pixels."""
import hashlib
import os
import struct
import subprocess
import tempfile
import zlib

from harness import BUILD, FAST_AUTH, Client, TestCase, external_env, grep_tree, http_request, upload_file

R = "chatto.api.v1.RoomService/"
M = "chatto.api.v1.MessageService/"
A = "chatto.api.v1.AssetService/"
ACC = "chatto.api.v1.MyAccountService/"
IMGTOOL = os.path.join(BUILD, "imgtool")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def make_image(size, kind):
    with tempfile.NamedTemporaryFile(suffix="." + kind.split("-")[0]) as f:
        subprocess.run([IMGTOOL, "make", size, kind, f.name], check=True, timeout=120)
        with open(f.name, "rb") as g:
            return g.read()


def image_info(data):
    """(loader, width, height, pages, alpha) as libvips reads the bytes."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        p = subprocess.run([IMGTOOL, "info", f.name], capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr.decode()
        loader, w, h, pages, alpha = p.stdout.decode().split()
        return loader.replace("VipsForeignLoad", "").replace("File", "").lower(), int(w), int(h), int(pages), alpha == "1"


def png_claiming(width, height):
    """A valid PNG signature and header claiming width x height, with one tiny compressed row after it."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class Images(TestCase):
    def start(self, *extra):
        return self.chatto(embedded=False, env=external_env(self.n), args=FAST_AUTH + list(extra))

    def setUp(self):
        super().setUp()
        self.n = self.nats(token="images-test-token")
        self.a = self.start("--core-assets-max-image-pixels", "2000000")
        self.alice = Client(self.a)
        self.alice_id = self.alice.register("alice").json()["user"]["id"]
        self.bob = Client(self.a)
        self.bob_id = self.bob.register("bob").json()["user"]["id"]
        self.room = self.alice.ok(R + "CreateRoom", {"name": "pics", "visibility": "public"})["room"]["id"]
        self.bob.ok(R + "JoinRoom", {"roomId": self.room})

    def upload(self, client, data, name, ctype, chatto=None):
        return upload_file(self, client, self.room, data, name, ctype)

    def get(self, url, headers=None, chatto=None):
        return http_request((chatto or self.a).port, "GET", url, headers=headers or {}, timeout=60)

    def resized(self, asset_id, spec, client=None, chatto=None):
        """A size fetched with the caller's session (no ticket)."""
        client = client or self.alice
        return self.get("/assets/files/%s/image/%s" % (asset_id, spec), client.headers(), chatto)

    # -- tests --

    def vips_loaded(self):
        with open("/proc/%d/maps" % self.a.pid) as f:
            return "libvips" in f.read()

    def test_sizes_fits_and_formats(self):
        jpeg = make_image("1200x800", "jpeg")
        asset = self.upload(self.alice, jpeg, "holiday photo.jpeg", "image/jpeg")
        self.assertEqual((asset["width"], asset["height"]), (1200, 800))
        # libvips (and its hundred libraries) is loaded by the first resize, not at start or by an upload
        self.assertFalse(self.vips_loaded())
        # the view offers a thumbnail (upstream's field), with a ticket for that size only
        thumb = asset["thumbnailAssetUrl"]["url"]
        self.assertIn("/image/720x720/contain?access=", thumb)
        r = self.get(thumb)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "image/jpeg")
        self.assertEqual(image_info(r.body)[:4], ("jpeg", 720, 480, 1))
        self.assertTrue(self.vips_loaded())
        self.assertIn("inline", r.header("Content-Disposition"))
        self.assertIn("holiday photo.jpg", r.header("Content-Disposition"))
        self.assertEqual(r.header("Cache-Control"), "private, no-cache")
        etag = r.header("ETag")
        self.assertEqual(self.get(thumb, {"If-None-Match": etag}).status, 304)
        # contain never enlarges; cover fills exactly; exact stretches
        for spec, want in [("2048x2048/contain", (1200, 800)), ("200x200/cover", (200, 200)),
                           ("300x100/exact", (300, 100)), ("100x100/contain", (100, 67)),
                           ("2048x100/cover", (2048, 100))]:
            r = self.resized(asset["id"], spec)
            self.assertEqual(r.status, 200, (spec, r))
            self.assertEqual(image_info(r.body)[1:3], want, spec)
        # transparency and animation become lossless WebP, keeping alpha and frames
        png = make_image("640x480", "png-alpha")
        pa = self.upload(self.alice, png, "logo.png", "image/png")
        r = self.resized(pa["id"], "320x320/contain")
        self.assertEqual((r.status, r.header("Content-Type")), (200, "image/webp"))
        self.assertEqual(image_info(r.body), ("webp", 320, 240, 1, True))
        gif = make_image("300x200", "gif-anim")
        ga = self.upload(self.alice, gif, "dance.gif", "image/gif")
        r = self.resized(ga["id"], "150x150/contain")
        self.assertEqual((r.status, r.header("Content-Type")), (200, "image/webp"))
        self.assertEqual(image_info(r.body)[:4], ("webp", 150, 100, 4))
        # the message view carries the thumbnail too, and bob's own ticket works for bob
        posted = self.alice.ok(M + "CreateMessage", {"roomId": self.room, "attachmentAssetIds": [asset["id"]]})
        msg = self.bob.ok(M + "GetMessage", {"roomId": self.room, "eventId": posted["message"]["id"]})["message"]
        bthumb = msg["attachments"][0]["thumbnailAssetUrl"]["url"]
        self.assertNotEqual(bthumb, thumb)
        self.assertEqual(self.get(bthumb).status, 200)

    def test_tickets_are_for_one_size_and_membership_is_rechecked(self):
        asset = self.upload(self.alice, make_image("800x600", "jpeg"), "a.jpg", "image/jpeg")
        self.alice.ok(M + "CreateMessage", {"roomId": self.room, "attachmentAssetIds": [asset["id"]]})
        thumb, orig = asset["thumbnailAssetUrl"]["url"], asset["assetUrl"]["url"]
        access = thumb.split("access=")[1]
        # a thumbnail's ticket opens neither the original nor another size; the original's opens no size
        r = self.get("/assets/files/%s?access=%s" % (asset["id"], access))
        self.assertEqual(r.status, 403)
        r = self.get("/assets/files/%s/image/721x720/contain?access=%s" % (asset["id"], access))
        self.assertEqual(r.status, 403)
        self.assertIn("another size", r.json()["message"])
        r = self.get("/assets/files/%s/image/720x720/contain?access=%s" % (asset["id"], orig.split("access=")[1]))
        self.assertEqual(r.status, 403)
        # no session and no ticket: unauthenticated; a forged ticket: refused
        self.assertEqual(self.get("/assets/files/%s/image/720x720/contain" % asset["id"]).status, 401)
        self.assertEqual(self.get(thumb[:-3] + "000").status, 403)
        # someone outside the room sees nothing
        carol = Client(self.a)
        carol.register("carol")
        self.assertEqual(self.resized(asset["id"], "100x100/cover", carol).status, 404)
        self.bob.ok(R + "LeaveRoom", {"roomId": self.room})
        self.assertEqual(self.resized(asset["id"], "100x100/cover", self.bob).status, 404)

    def test_bad_sizes_and_hostile_images_get_clear_errors(self):
        asset = self.upload(self.alice, make_image("400x300", "jpeg"), "a.jpg", "image/jpeg")
        for spec, needle in [("0x10/contain", "expected"), ("2049x10/contain", "1 to 2048"),
                             ("10x10/fill", "contain, cover or exact"), ("10x10", "/contain"),
                             ("axb/cover", "expected"), ("10x99999999999999999999/cover", "1 to 2048")]:
            r = self.resized(asset["id"], spec)
            self.assertEqual(r.status, 400, (spec, r))
            self.assertIn(needle, r.json()["message"], spec)
        self.assertEqual(self.get("/assets/files/%s/thumbs/1" % asset["id"], self.alice.headers()).status, 404)
        # not an image at all: no thumbnail offered, and asking is 415
        txt = self.upload(self.alice, b"just text\n", "notes.txt", "text/plain")
        self.assertNotIn("thumbnailAssetUrl", txt)
        r = self.resized(txt["id"], "100x100/contain")
        self.assertEqual(r.status, 415, r)
        self.assertIn("not an image", r.json()["message"])
        # a JPEG whose headers end where its picture should start: a clear 422, and the server carries on
        jpeg = make_image("640x480", "jpeg")
        cut = self.upload(self.alice, jpeg[:jpeg.index(b"\xff\xda")] + b"\xff\xd9", "cut.jpg", "image/jpeg")
        r = self.resized(cut["id"], "100x100/contain")
        self.assertEqual(r.status, 422, r)
        self.assertRegex(r.json()["message"], "cannot be (read|decoded)")
        # one cut off half-way, or with garbage in its picture data: whatever the decoder makes of it, never a crash
        noisy = jpeg[:len(jpeg) // 2] + os.urandom(2000) + jpeg[len(jpeg) // 2 + 2000:]
        for bad in (jpeg[:len(jpeg) // 2], noisy):
            b = self.upload(self.alice, bad, "bad.jpg", "image/jpeg")
            self.assertIn(self.resized(b["id"], "100x100/contain").status, (200, 422))
        # a small file claiming 60000 x 60000 pixels is never decoded: 413 naming the limit
        bomb = self.upload(self.alice, png_claiming(60000, 60000), "bomb.png", "image/png")
        self.assertEqual((bomb["width"], bomb["height"]), (60000, 60000))
        self.assertNotIn("thumbnailAssetUrl", bomb)
        r = self.resized(bomb["id"], "100x100/contain")
        self.assertEqual(r.status, 413, r)
        self.assertIn("core.assets.max_image_pixels", r.json()["message"])
        # and a real one over this server's 2-megapixel limit likewise, though its bytes are ordinary
        big = self.upload(self.alice, make_image("1800x1200", "png"), "big.png", "image/png")
        self.assertNotIn("thumbnailAssetUrl", big)
        self.assertEqual(self.resized(big["id"], "100x100/contain").status, 413)
        # a header that lies about its size: the decoder's error, not a crash
        liar = self.upload(self.alice, png_claiming(500, 500), "liar.png", "image/png")
        r = self.resized(liar["id"], "100x100/contain")
        self.assertIn(r.status, (200, 422), r)
        self.assertEqual(self.resized(asset["id"], "100x100/contain").status, 200)
        self.assertEqual(http_request(self.a.port, "GET", "/healthz").status, 200)

    def test_asset_cache_keeps_sizes_and_erases_them_with_the_file(self):
        # a NATS of its own: every process on one NATS must agree on core.assets.cache.enabled
        self.n = self.nats(token="cache-test-token")
        c = self.start("--core-assets-cache-enabled", "--core-assets-cache-ttl", "1d")
        alice = Client(c)
        alice.register("alice")
        self.room = alice.ok(R + "CreateRoom", {"name": "pics", "visibility": "public"})["room"]["id"]
        asset = self.upload(alice, make_image("900x900", "jpeg"), "sq.jpg", "image/jpeg", chatto=c)
        first = self.resized(asset["id"], "128x128/cover", alice, c)
        self.assertEqual(first.status, 200)
        names = self.cache_names()
        want = "attachment-stable-v2.%s.%s" % (asset["id"], sha(b"128x128_cover")[:16])
        self.assertEqual(names, [want])
        # served from the cache the second time (same bytes; the cached object is read back)
        second = self.resized(asset["id"], "128x128/cover", alice, c)
        self.assertEqual(second.body, first.body)
        self.assertEqual(self.cache_names(), [want])
        # deleting the message erases the cached sizes with the file
        posted = alice.ok(M + "CreateMessage", {"roomId": self.room, "attachmentAssetIds": [asset["id"]]})
        self.resized(asset["id"], "64x64/contain", alice, c)
        self.assertEqual(len(self.cache_names()), 2)
        marker = first.body[-64:]
        self.assertTrue(grep_tree(self.n.dir, marker))
        alice.ok(M + "DeleteMessage", {"roomId": self.room, "eventId": posted["message"]["id"]})
        self.assertEqual(self.cache_names(), [])
        self.assertEqual(grep_tree(self.n.dir, marker), [])

    def test_avatars_are_resized_served_and_replaced(self):
        big = make_image("1000x600", "jpeg")
        import base64
        r = self.alice.call(ACC + "UploadAvatar", {"image": {"image": base64.b64encode(big).decode(),
                                                             "filename": "me.jpg"}})
        self.assertEqual(r.status, 200, r)
        user = r.json()["user"]
        url = user["avatarUrl"]
        r = self.get(url, self.bob.headers())
        self.assertEqual((r.status, r.header("Content-Type")), (200, "image/webp"))
        self.assertEqual(image_info(r.body)[1:3], (256, 154))
        self.assertEqual(self.get(url).status, 401)  # signed-in users only
        # everyone sees it on alice's profile and on her messages' authors
        prof = self.bob.ok("chatto.api.v1.UserService/GetUser", {"userId": self.alice_id})["user"]
        self.assertEqual(prof["avatarUrl"], url)
        # replacing it erases the old one; deleting leaves none
        old = r.body
        self.alice.ok(ACC + "UploadAvatar", {"image": {"image": base64.b64encode(make_image("300x300", "png")).decode()}})
        self.assertEqual(self.get(url, self.bob.headers()).status, 404)
        self.assertEqual(grep_tree(self.n.dir, old[-64:]), [])
        done = self.alice.ok(ACC + "DeleteAvatar", {})
        self.assertNotIn("avatarUrl", done["user"])
        # bad input: not an image, too big, corrupt
        for payload, status, needle in [(b"hello", 400, "not a JPEG, PNG, WebP or GIF"),
                                        (png_claiming(60000, 60000), 413, "max_image_pixels"),
                                        (big[:big.index(b"\xff\xda")] + b"\xff\xd9", 400, "cannot be read")]:
            r = self.alice.call(ACC + "UploadAvatar", {"image": {"image": base64.b64encode(payload).decode()}})
            self.assertEqual(r.status, status, (needle, r))
            self.assertIn(needle, r.json()["message"])
        r = self.alice.call(ACC + "UploadAvatar", {"image": {}})
        self.assertEqual(r.status, 400)
        self.assertIn("image.image", r.json()["message"])

    # -- ASSET_CACHE through the nats npm client --

    CACHE_LIST = r"""
const { connect } = require(process.env.NATS_MODULE);
(async () => {
  const nc = await connect({ servers: process.env.NATS_URL, token: process.env.NATS_TOKEN });
  const os = await nc.jetstream().views.os("ASSET_CACHE");
  const names = (await os.list()).map((e) => e.name).sort();
  console.log(JSON.stringify(names));
  await nc.close();
})().catch((e) => { console.error(String(e)); process.exit(2); });
"""

    def cache_names(self):
        import json
        mod = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "browser", "node_modules", "nats"))
        if not os.path.isdir(mod):
            self.fail("the nats npm client is missing: run packaging/deps.sh test")
        with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
            f.write(self.CACHE_LIST)
        self.addCleanup(os.unlink, f.name)
        env = dict(os.environ, NATS_MODULE=mod, NATS_URL=self.n.url, NATS_TOKEN=self.n.token)
        p = subprocess.run(["node", f.name], env=env, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return json.loads(p.stdout)
