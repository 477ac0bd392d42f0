// SPDX-License-Identifier: MIT
// The AWS SDK for JavaScript's SigV4 signer (@smithy/signature-v4, as @aws-sdk/client-s3 configures it) over the
// requests of test/tools/s3sign's input format (stdin, a JSON array); prints [{authorization, amzDate}] in order.
// The path is encoded here the way the S3 client encodes a key (escapeUri per segment), not by our code.
// Modules come from test/browser/node_modules (NODE_PATH).
const { SignatureV4 } = require("@smithy/signature-v4");
const { Sha256 } = require("@aws-crypto/sha256-js");
const { escapeUri } = require("@smithy/core/protocols");

(async () => {
  const reqs = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const out = [];
  for (const r of reqs) {
    const signer = new SignatureV4({
      credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey },
      region: r.region, service: "s3", sha256: Sha256, uriEscapePath: false, applyChecksum: true,
    });
    const headers = { host: r.host, "x-amz-content-sha256": r.payload };
    for (const [k, v] of r.headers || []) headers[k] = v;
    const query = {};
    for (const [k, v] of r.query || []) query[k] = v === null ? "" : v;
    const request = {
      method: r.method, protocol: "https:", hostname: r.host.replace(/:\d+$/, ""),
      path: r.path.split("/").map(escapeUri).join("/"), query, headers,
    };
    const signed = await signer.sign(request, { signingDate: new Date(r.time * 1000) });
    out.push({ authorization: signed.headers.authorization, amzDate: signed.headers["x-amz-date"] });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(2); });
