// SPDX-License-Identifier: MIT
// LiveKit's own server SDK (livekit-server-sdk from npm) as a command for the calls tests: one JSON request on
// stdin, one JSON answer on stdout.
//   {op: "verify", key, secret, token}              TokenVerifier.verify -> {ok, claims} | {ok: false, error}
//   {op: "webhook", key, secret, event}             a webhook as LiveKit sends it: {body, auth} (AccessToken whose
//                                                    sha256 claim is the body's base64 SHA-256)
//   {op: "receive", key, secret, body, auth}         WebhookReceiver.receive -> {ok, event} | {ok: false, error}
//   {op: "roomsvc", url, key, secret, method, room}  RoomServiceClient.listRooms / listParticipants
"use strict";
const crypto = require("node:crypto");
const { AccessToken, TokenVerifier, WebhookReceiver, WebhookEvent, RoomServiceClient } = require("livekit-server-sdk");

async function main(req) {
    switch (req.op) {
    case "verify":
        try {
            return { ok: true, claims: await new TokenVerifier(req.key, req.secret).verify(req.token, 0) };
        } catch (e) {
            return { ok: false, error: String(e && e.message || e) };
        }
    case "webhook": {
        // the body exactly as LiveKit's server writes it: protobuf JSON of a WebhookEvent
        const body = typeof req.event === "string" ? req.event
            : JSON.stringify(WebhookEvent.fromJson(req.event).toJson());
        const at = new AccessToken(req.key, req.secret, { ttl: req.ttl || "5m" });
        at.sha256 = crypto.createHash("sha256").update(body).digest("base64");
        return { body, auth: await at.toJwt() };
    }
    case "receive":
        try {
            const ev = await new WebhookReceiver(req.key, req.secret).receive(req.body, req.auth);
            return { ok: true, event: ev.toJson() };
        } catch (e) {
            return { ok: false, error: String(e && e.message || e) };
        }
    case "roomsvc": {
        const c = new RoomServiceClient(req.url, req.key, req.secret, { requestTimeout: 10 });
        try {
            if (req.method === "ListRooms")
                return { ok: true, rooms: (await c.listRooms()).map((r) => r.toJson()) };
            return { ok: true, participants: (await c.listParticipants(req.room)).map((p) => p.toJson()) };
        } catch (e) {
            return { ok: false, error: String(e && e.message || e), status: e && e.status };
        }
    }
    default:
        throw new Error("unknown op " + req.op);
    }
}

let input = "";
process.stdin.on("data", (d) => { input += d; });
process.stdin.on("end", () => {
    main(JSON.parse(input)).then((out) => {
        process.stdout.write(JSON.stringify(out));
    }, (e) => {
        process.stderr.write(String(e && e.stack || e));
        process.exit(1);
    });
});
