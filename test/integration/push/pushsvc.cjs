// SPDX-License-Identifier: MIT
// A Web Push service on loopback for test/integration/69_webpush_test.py, written with Node's built-in crypto only
// (no code of ours): it plays the browser too, so it makes the subscription's keys (a P-256 key pair and a 16-byte
// auth secret), and for each POST it checks the VAPID Authorization header (RFC 8292: the JWT's ES256 signature
// against the k= key, aud, exp, sub), decrypts the aes128gcm body (RFC 8291, RFC 8188) and logs what it found.
//   node pushsvc.cjs READY LOG
// READY gets {"port","p256dh","auth"} once listening (written whole, then renamed). LOG gets one JSON line per TCP
// connection ({"event":"connection"}) and per request ({"event":"request",...}), written before the answer.
// The path chooses the answer: /push/gone -> 410, /push/redirect -> 301 to /push/redirected, /push/fail -> 500,
// anything else -> 201.
"use strict";
const http = require("http");
const crypto = require("crypto");
const fs = require("fs");

const [readyPath, logPath] = [process.argv[2], process.argv[3]];
const log = (o) => fs.appendFileSync(logPath, JSON.stringify(o) + "\n");
const b64u = (b) => Buffer.from(b).toString("base64url");

const ua = crypto.createECDH("prime256v1");
ua.generateKeys();
const uaPublic = ua.getPublicKey(); // 65 bytes, uncompressed
const authSecret = crypto.randomBytes(16);

function checkVapid(header, origin) {
  const m = /^vapid t=([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+), k=([A-Za-z0-9_-]+)$/.exec(header || "");
  if (!m) return { ok: false, why: "malformed Authorization: " + header };
  const [, h, c, s, k] = m;
  const head = JSON.parse(Buffer.from(h, "base64url").toString());
  const claims = JSON.parse(Buffer.from(c, "base64url").toString());
  const pub = Buffer.from(k, "base64url");
  if (pub.length !== 65 || pub[0] !== 4) return { ok: false, why: "k is not an uncompressed P-256 point" };
  const key = crypto.createPublicKey({
    key: { kty: "EC", crv: "P-256", x: b64u(pub.subarray(1, 33)), y: b64u(pub.subarray(33)) }, format: "jwk" });
  const sig = Buffer.from(s, "base64url");
  const sigOk = sig.length === 64 &&
    crypto.verify("sha256", Buffer.from(h + "." + c), { key, dsaEncoding: "ieee-p1363" }, sig);
  const now = Math.floor(Date.now() / 1000);
  const why = [];
  if (head.typ !== "JWT" || head.alg !== "ES256") why.push("header " + JSON.stringify(head));
  if (!sigOk) why.push("bad ES256 signature");
  if (claims.aud !== origin) why.push("aud " + claims.aud + " is not " + origin);
  if (!(Number.isInteger(claims.exp) && claims.exp > now && claims.exp <= now + 24 * 3600))
    why.push("exp " + claims.exp + " not within 24 h of " + now);
  if (!/^(mailto:|https:)/.test(claims.sub || "")) why.push("sub " + claims.sub);
  return { ok: why.length === 0, why: why.join("; "), k, claims, expIn: claims.exp - now };
}

// The browser's side of RFC 8291 §3.4 and RFC 8188 §2.
function decrypt(body) {
  if (body.length < 86 + 17) throw new Error("body of " + body.length + " bytes is too short");
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20];
  if (idlen !== 65) throw new Error("idlen " + idlen);
  const asPublic = body.subarray(21, 86);
  const shared = ua.computeSecret(asPublic);
  const info = Buffer.concat([Buffer.from("WebPush: info\0"), uaPublic, asPublic]);
  const ikm = Buffer.from(crypto.hkdfSync("sha256", shared, authSecret, info, 32));
  const cek = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(crypto.hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const record = body.subarray(86);
  if (record.length > rs) throw new Error("record longer than rs " + rs);
  const d = crypto.createDecipheriv("aes-128-gcm", cek, nonce);
  d.setAuthTag(record.subarray(record.length - 16));
  const plain = Buffer.concat([d.update(record.subarray(0, record.length - 16)), d.final()]);
  let end = plain.length;
  while (end > 0 && plain[end - 1] === 0) end--;
  if (end === 0 || plain[end - 1] !== 2) throw new Error("no 0x02 delimiter ending the last record");
  return { rs, plaintext: plain.subarray(0, end - 1) };
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const origin = "http://" + req.headers.host;
    const entry = { event: "request", method: req.method, path: req.url, bytes: body.length,
                    headers: { contentEncoding: req.headers["content-encoding"] || null,
                               contentType: req.headers["content-type"] || null, ttl: req.headers.ttl || null,
                               urgency: req.headers.urgency || null, topic: req.headers.topic || null } };
    entry.vapid = checkVapid(req.headers.authorization, origin);
    try {
      const { rs, plaintext } = decrypt(body);
      entry.rs = rs;
      entry.plaintextB64 = plaintext.toString("base64");
    } catch (e) {
      entry.decryptError = String(e.message || e);
    }
    log(entry);
    if (req.url === "/push/gone") {
      res.writeHead(410, { "content-type": "text/plain" });
      res.end("push subscription has unsubscribed or expired");
    } else if (req.url === "/push/redirect") {
      res.writeHead(301, { location: "/push/redirected" });
      res.end();
    } else if (req.url === "/push/fail") {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal trouble");
    } else {
      res.writeHead(201, { location: "/message/1" });
      res.end();
    }
  });
});
server.on("connection", () => log({ event: "connection" }));
server.listen(0, "127.0.0.1", () => {
  const ready = { port: server.address().port, p256dh: b64u(uaPublic), auth: b64u(authSecret) };
  fs.writeFileSync(readyPath + ".tmp", JSON.stringify(ready));
  fs.renameSync(readyPath + ".tmp", readyPath);
});
