// SPDX-License-Identifier: MIT
// A stand-in for LiveKit's RoomService on loopback, speaking its Twirp JSON API the way livekit-server-sdk's
// RoomServiceClient calls it (POST /twirp/livekit.RoomService/<Method>, "Authorization: Bearer <token>"): the token
// is checked with the SDK's own TokenVerifier and must carry the grant the method needs (roomList for ListRooms,
// roomAdmin for the named room for ListParticipants). Rooms and participants are set by the test:
//   POST /_state {rooms: {<name>: [{identity, metadata?}]}}   GET /_requests  (what was asked, in order)
// Usage: node lkstub.cjs <key> <secret>; prints {"port": N} once listening.
"use strict";
const http = require("node:http");
const { TokenVerifier } = require("livekit-server-sdk");

const [key, secret] = process.argv.slice(2);
const verifier = new TokenVerifier(key, secret);
let rooms = {};
const requests = [];

function send(res, status, obj) {
    const b = JSON.stringify(obj);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(b) });
    res.end(b);
}

const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => { body += d; });
    req.on("end", async () => {
        if (req.url === "/_state" && req.method === "POST") {
            rooms = JSON.parse(body).rooms || {};
            return send(res, 200, {});
        }
        if (req.url === "/_requests")
            return send(res, 200, { requests });
        const m = /^\/twirp\/livekit\.RoomService\/(\w+)$/.exec(req.url);
        const entry = { method: m ? m[1] : req.url, httpMethod: req.method, contentType: req.headers["content-type"] };
        requests.push(entry);
        if (!m || req.method !== "POST")
            return send(res, 404, { code: "bad_route", msg: "no such method" });
        let claims;
        try {
            const auth = req.headers.authorization || "";
            if (!auth.startsWith("Bearer "))
                throw new Error("no bearer token");
            claims = await verifier.verify(auth.slice(7));
        } catch (e) {
            entry.authError = String(e.message || e);
            return send(res, 401, { code: "unauthenticated", msg: entry.authError });
        }
        let args;
        try {
            args = JSON.parse(body || "{}");
        } catch (e) {
            return send(res, 400, { code: "malformed", msg: "body is not JSON" });
        }
        entry.body = args;
        entry.grant = claims.video || {};
        const now = Math.floor(Date.now() / 1000);
        if (m[1] === "ListRooms") {
            if (!entry.grant.roomList)
                return send(res, 403, { code: "permission_denied", msg: "roomList grant needed" });
            const names = (args.names && args.names.length) ? args.names : Object.keys(rooms);
            return send(res, 200, {
                rooms: names.filter((n) => n in rooms).map((n, i) => ({
                    sid: "RM_" + i, name: n, numParticipants: rooms[n].length, creationTime: String(now),
                })),
            });
        }
        if (m[1] === "ListParticipants") {
            if (!entry.grant.roomAdmin || entry.grant.room !== args.room)
                return send(res, 403, { code: "permission_denied", msg: "roomAdmin grant for this room needed" });
            if (!(args.room in rooms))
                return send(res, 404, { code: "not_found", msg: "requested room does not exist" });
            return send(res, 200, {
                participants: rooms[args.room].map((p, i) => ({
                    sid: "PA_" + i, identity: p.identity, name: p.name || p.identity, state: "ACTIVE",
                    metadata: p.metadata || "", joinedAt: String(now),
                })),
            });
        }
        return send(res, 404, { code: "bad_route", msg: "method not served by this stand-in" });
    });
});
server.listen(0, "127.0.0.1", () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
