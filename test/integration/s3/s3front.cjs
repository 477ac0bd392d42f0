// SPDX-License-Identifier: MIT
// s3rver (an S3-protocol server on disk) behind a front that checks every request's AWS Signature V4 with the AWS
// SDK for JavaScript's signer, because s3rver itself accepts any V4 signature (it only looks the access key up).
// The front also checks the body against x-amz-content-sha256, turns virtual-host requests
// (<bucket>.localhost:<port>) into path-style ones for s3rver, and logs one JSON line per request.
//   node s3front.cjs PORT DIR LOG     (modules from test/browser/node_modules through NODE_PATH)
// Credentials: access key S3RVER, secret S3RVER (s3rver's built-in account).
const http = require("http");
const crypto = require("crypto");
const fs = require("fs");
const S3rver = require("s3rver");
const { SignatureV4 } = require("@smithy/signature-v4");
const { Sha256 } = require("@aws-crypto/sha256-js");

const [port, dir, logPath] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const SECRETS = { S3RVER: "S3RVER" };
const log = (o) => fs.appendFileSync(logPath, JSON.stringify(o) + "\n");

function s3error(res, status, code, message) {
  res.writeHead(status, { "content-type": "application/xml" });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

// The signature the SDK computes for this request as received (its own path bytes, its signed headers).
async function expected(req, auth) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth || "");
  if (!m) return { error: "malformed Authorization header: " + auth };
  const [, akid, , region, signedList] = m;
  if (!SECRETS[akid]) return { error: "unknown access key " + akid };
  const [rawPath, rawQuery = ""] = req.url.split("?", 2);
  const query = {};
  for (const part of rawQuery ? rawQuery.split("&") : []) {
    const [k, v = ""] = part.split("=", 2);
    query[decodeURIComponent(k)] = decodeURIComponent(v);
  }
  const headers = {};
  for (const name of signedList.split(";")) headers[name] = req.headers[name] === undefined ? "" : req.headers[name];
  const date = req.headers["x-amz-date"] || "";
  const d = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  const signer = new SignatureV4({ credentials: { accessKeyId: akid, secretAccessKey: SECRETS[akid] }, region,
                                   service: "s3", sha256: Sha256, uriEscapePath: false });
  const signed = await signer.sign({ method: req.method, protocol: "http:", hostname: req.headers.host, path: rawPath,
                                     query, headers }, { signingDate: d });
  return { want: signed.headers.authorization };
}

(async () => {
  const backend = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: dir, vhostBuckets: false });
  const { port: bport } = (await backend.run());
  const front = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const entry = { method: req.method, url: req.url, host: req.headers.host, range: req.headers.range || null,
                      bytes: body.length };
      try {
        const { want, error } = await expected(req, req.headers.authorization);
        if (error || want !== req.headers.authorization) {
          entry.sig = "BAD";
          entry.detail = error || `got ${req.headers.authorization} want ${want}`;
          log(entry);
          return s3error(res, 403, "SignatureDoesNotMatch", "front: " + (error || "signature mismatch"));
        }
        entry.sig = "ok";
        const declared = req.headers["x-amz-content-sha256"];
        if (/^[0-9a-f]{64}$/.test(declared || "") &&
            crypto.createHash("sha256").update(body).digest("hex") !== declared) {
          entry.payload = "BAD";
          log(entry);
          return s3error(res, 400, "XAmzContentSHA256Mismatch", "The provided x-amz-content-sha256 header does not match what was computed.");
        }
        // virtual-host style: the bucket is the first label of a *.localhost host
        let path = req.url;
        const vh = /^([^.]+)\.localhost(:\d+)?$/.exec(req.headers.host || "");
        if (vh) path = "/" + vh[1] + path;
        entry.path = path;
        const headers = { ...req.headers, host: "127.0.0.1:" + bport, "content-length": String(body.length) };
        delete headers.expect;
        delete headers["transfer-encoding"];
        const up = http.request({ host: "127.0.0.1", port: bport, method: req.method, path, headers }, (ur) => {
          entry.status = ur.statusCode;
          log(entry);
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        });
        up.on("error", (e) => { entry.status = 502; log(entry); s3error(res, 502, "BadGateway", String(e)); });
        up.end(body);
      } catch (e) {
        entry.status = 500;
        entry.detail = String(e && e.stack || e);
        log(entry);
        s3error(res, 500, "InternalError", "front: " + String(e));
      }
    });
  });
  front.keepAliveTimeout = 60000;
  front.listen(port, "127.0.0.1", () => process.stdout.write("READY " + port + "\n"));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(2); });
