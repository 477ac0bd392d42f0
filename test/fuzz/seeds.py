#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seed inputs of each harness into test/fuzz/corpus/<harness>/seed-*, and the
dictionaries test/fuzz/<harness>.dict. Inputs the fuzzer found (merged with `make fuzz-merge`) sit beside them.
Run again after adding a Connect method or an event type."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "test", "fuzz")


def write(harness, name, data):
    d = os.path.join(FUZZ, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def dictionary(harness, words):
    with open(os.path.join(FUZZ, harness + ".dict"), "w") as f:
        f.write("# %s: tokens the fuzzer may splice in (written by seeds.py)\n" % harness)
        for w in sorted(set(words)):
            f.write('"%s"\n' % "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "\\x%02x" % ord(c)
                                        for c in w))


# ---- fuzz_connect: the method tables in server order (discovery, users, admin, rooms, messages, search,
# notifications) ----
METHODS = [
    ("GetServer", "{}"),
    ("GetUser", '{"userId":"@U"}'),
    ("ListUsers", '{"pageSize":10,"pageToken":""}'),
    ("GetMyAccount", "{}"),
    ("UpdateProfile", '{"displayName":"Fuzz \\u00e9t\\u00e9"}'),
    ("UpdatePassword", '{"currentPassword":"not it","newPassword":"another long password"}'),
    ("AdminListUsers", '{"includeDisabled":true,"pageSize":5}'),
    ("SetRole", '{"userId":"@U","role":"admin"}'),
    ("DisableUser", '{"userId":"@U"}'),
    ("EnableUser", '{"userId":"@U"}'),
    ("CreateBot", '{"login":"bot1","displayName":"Bot"}'),
    ("RotateBotApiKey", '{"userId":"@U"}'),
    ("UpdateTypingIndicator", '{"roomId":"@R"}'),
    ("CreateRoom", '{"name":"general-2","description":"d","visibility":"private"}'),
    ("UpdateRoom", '{"roomId":"@R","name":"renamed","description":"new"}'),
    ("ArchiveRoom", '{"roomId":"@R"}'),
    ("UnarchiveRoom", '{"roomId":"@R"}'),
    ("JoinRoom", '{"roomId":"@R"}'),
    ("LeaveRoom", '{"roomId":"@D"}'),
    ("AddMember", '{"roomId":"@R","userId":"@U"}'),
    ("RemoveMember", '{"roomId":"@R","userId":"@U"}'),
    ("ListMembers", '{"roomId":"@R","limit":50}'),
    ("ListRooms", "{}"),
    ("StartDM", '{"participantIds":["@U"]}'),
    ("GetRoomEvents", '{"roomId":"@R","limit":20,"before":"@E"}'),
    ("GetRoomEventsAround", '{"roomId":"@R","eventId":"@E","limit":5}'),
    ("MarkRoomAsRead", '{"roomId":"@R","eventId":"@E"}'),
    ("GetThreadReplies", '{"roomId":"@R","threadRootEventId":"@E","after":""}'),
    ("CreateMessage", '{"roomId":"@R","body":"hi **there** @fuzzer","threadRootEventId":"@E","inReplyTo":"@E"}'),
    ("UpdateMessage", '{"roomId":"@R","eventId":"@E","body":"edited"}'),
    ("DeleteMessage", '{"roomId":"@D","eventId":"@E"}'),
    ("GetMessage", '{"roomId":"@R","eventId":"@E"}'),
    ("BatchGetMessages", '{"roomId":"@R","eventIds":["@E","x"]}'),
    ("AddReaction", '{"roomId":"@R","eventId":"@E","emoji":"\\ud83d\\udc4d"}'),
    ("RemoveReaction", '{"roomId":"@R","eventId":"@E","emoji":"\\ud83d\\udc4d"}'),
    ("SearchMessages", '{"query":"hi in:#general from:@fuzzer \\"the body\\" ther*","roomId":"@R","pageSize":5,'
                       '"order":"MESSAGE_SEARCH_ORDER_NEWEST","createdAfter":"2020-01-01T00:00:00Z","cursor":""}'),
    ("GetStatus", "{}"),
]
FIELDS = ["after", "attachmentAssetIds", "before", "body", "currentPassword", "description", "displayName", "emoji",
          "eventId", "eventIds", "inReplyTo", "includeDisabled", "issueToken", "limit", "login", "name",
          "newPassword", "pageSize", "pageToken", "participantIds", "password", "role", "roomId",
          "threadRootEventId", "userId", "visibility", "notificationId", "overrides", "updateMask", "endpoint",
          "p256dh", "auth", "clientHost", "cleanupToken", "userAgent", "roomIds", "query", "cursor", "order",
          "authorId", "createdAfter", "createdBefore", "hasAttachments"]
for i, (name, body) in enumerate(METHODS):
    write("fuzz_connect", "%02d-%s" % (i, name), bytes([i]) + body.encode())


def connect_methods():
    """Every method in the order fuzz_connect.c's tables list them (its first byte picks one by this index)."""
    here = os.path.dirname(os.path.abspath(__file__))
    api = os.path.join(here, "..", "..", "server", "api")
    with open(os.path.join(here, "fuzz_connect.c")) as f:
        m = re.search(r"tables\[\] = \{([^}]*)\}", f.read())
    names = [t.strip() for t in m.group(1).split(",") if t.strip() and t.strip() != "NULL"]
    src = ""
    for fn in sorted(os.listdir(api)):
        if fn.endswith(".c"):
            with open(os.path.join(api, fn)) as f:
                src += f.read()
    out = []
    for t in names:
        block = re.search(r"const struct api_method %s\[\] = \{(.*?)\n\};" % t, src, re.S).group(1)
        out += re.findall(r'\{ "[^"]+", "([^"]+)"', block)
    return out


# VoiceCallService (issue #18): placed by name, after the tables the list above covers
CALLS = [
    ("ListActiveCalls", "{}"),
    ("GetActiveCall", '{"roomId":"@R"}'),
    ("BatchGetActiveCalls", '{"roomIds":["@R","@D","@R"]}'),
    ("ListCallParticipants", '{"roomId":"@D"}'),
    ("JoinCall", '{"roomId":"@R"}'),
    ("GetCallToken", '{"roomId":"@R"}'),
    ("LeaveCall", '{"roomId":"@R"}'),
]
ALL = connect_methods()
for name, body in CALLS:
    i = ALL.index(name)
    write("fuzz_connect", "%02d-%s" % (i, name), bytes([i]) + body.encode())
dictionary("fuzz_connect", ['"%s":' % f for f in FIELDS] + ["@R", "@E", "@U", "@D", "@T", "true", "null", "[]", "{}",
                                                             "owner", "admin", "member", "public", "private",
                                                             "NOTIFICATION_DELIVERY_MODE_OFF", "directMessages",
                                                             "\\u0000", "\\ud800", "9223372036854775808", "-1", "1e308"])

# ---- fuzz_http: whole requests ----
H = "Host: localhost\r\n"
CJ = "Content-Type: application/json\r\n"
REQS = {
    "healthz": "GET /healthz HTTP/1.1\r\n" + H + "\r\n",
    "readyz-10": "GET /readyz HTTP/1.0\r\n\r\n",
    "pipelined": "GET /healthz HTTP/1.1\r\n" + H + "\r\nGET /readyz HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n",
    "connect": "POST /api/connect/chatto.api.v1.RoomService/ListRooms HTTP/1.1\r\n" + H + CJ +
               "Authorization: Bearer @T\r\nContent-Length: 2\r\n\r\n{}",
    "connect-chunked": "POST /api/connect/chatto.api.v1.MessageService/CreateMessage HTTP/1.1\r\n" + H + CJ +
                       "Authorization: Bearer @T\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "10\r\n{\"roomId\":\"@R\",\r\n0d\r\n\"body\":\"hi\"}\r\n0\r\n\r\n",
    "connect-cookie": "POST /api/connect/chatto.api.v1.MyAccountService/GetMyAccount HTTP/1.1\r\n" + H + CJ +
                      "Origin: http://localhost:4000\r\nCookie: a=b; chatto_session=v1.abc.def\r\nContent-Length: 0\r\n\r\n",
    "login-form": "POST /auth/login HTTP/1.1\r\n" + H + "Content-Type: application/x-www-form-urlencoded\r\n"
                  "Sec-Fetch-Site: same-origin\r\nContent-Length: 45\r\n\r\nlogin=fuzzer&password=correct+horse+battery",
    "login-json": "POST /auth/login HTTP/1.1\r\n" + H + CJ + "Origin: http://localhost\r\nContent-Length: 70\r\n\r\n"
                  '{"login":"fuzzer","password":"correct horse battery","issueToken":true}',
    "register": "POST /auth/register HTTP/1.1\r\n" + H + CJ + "X-Forwarded-For: 1.2.3.4\r\nContent-Length: 45\r\n\r\n"
                '{"login":"new1","password":"a long password"}',
    "logout": "POST /auth/logout HTTP/1.1\r\n" + H + "Authorization: Bearer nope\r\nContent-Length: 0\r\n\r\n",
    "upgrade": "GET /api/realtime HTTP/1.1\r\n" + H + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
               "\x81\x85\x00\x00\x00\x00hello",
    "web": "GET /app.js HTTP/1.1\r\n" + H + "Accept-Encoding: gzip\r\nIf-None-Match: \"x\"\r\n\r\n",
    "web-index": "GET /rooms/abc?x=1 HTTP/1.1\r\n" + H + "\r\n",
    "two-lengths": "POST /auth/login HTTP/1.1\r\n" + H + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "te-and-cl": "POST /auth/login HTTP/1.1\r\n" + H + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "options": "OPTIONS /api/connect/x HTTP/1.1\r\n" + H + "\r\n",
    "livekit-webhook": "POST /webhooks/livekit HTTP/1.1\r\n" + H + "Content-Type: application/webhook+json\r\n"
                       "Authorization: eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJBUElmdXp6In0.c2ln\r\nContent-Length: 75\r\n\r\n"
                       '{"event":"participant_joined","id":"EV_1","room":{"name":"chatto.server_@R@x"}}',
}
for name, r in REQS.items():
    write("fuzz_http", name, r.encode("latin-1"))
dictionary("fuzz_http", ["GET ", "POST ", "HEAD ", " HTTP/1.1\r\n", " HTTP/1.0\r\n", "\r\n", "\r\n\r\n", "Host: ",
                         "Content-Length: ", "Transfer-Encoding: chunked\r\n", "Content-Type: application/json\r\n",
                         "Connection: close\r\n", "Connection: Upgrade\r\n", "Upgrade: websocket\r\n",
                         "Authorization: Bearer @T\r\n", "Cookie: chatto_session=", "Origin: ", "X-Forwarded-For: ",
                         "Forwarded: for=", "Expect: 100-continue\r\n", "/api/connect/", "/auth/login", "/auth/register",
                         "/api/realtime", "/healthz", "/readyz", "chatto.api.v1.", "@T", "@R", "@E",
                         "/webhooks/livekit", "Authorization: ", "participant_joined", "room_finished"])

# ---- fuzz_ws: flags byte, then frames <b0> <len> <payload> ----


def frames(*fs):
    out = b""
    for b0, payload in fs:
        p = payload.encode() if isinstance(payload, str) else payload
        out += bytes([b0]) + (bytes([len(p)]) if len(p) < 255 else bytes([255, len(p) >> 8, len(p) & 255])) + p
    return out


WS = {
    "hello-token": b"\x00" + frames((0x81, '{"type":"hello","token":"@T"}'), (0x81, '{"type":"ping"}')),
    "hello-authed": b"\x01" + frames((0x81, '{"type":"hello"}'),
                                     (0x81, '{"type":"presence.watch","userIds":["@U","x"]}'),
                                     (0x81, '{"type":"presence","status":"away"}'),
                                     (0x81, '{"type":"typing","roomId":"@R"}')),
    "resume": b"\x01" + frames((0x81, '{"type":"hello","resumeFrom":"1-1"}')),
    "fragmented": b"\x01" + frames((0x01, '{"type":"hel'), (0x89, "ping!"), (0x80, 'lo"}')),
    "control-too-big": b"\x01" + frames((0x89, "x" * 126)),
    "binary": b"\x01" + frames((0x82, b"\x00\x01\x02"), (0x8a, "pong")),
    "bad-hello": b"\x00" + frames((0x81, '{"type":"hello","token":"chatto_t_x_y"}')),
    "raw-unmasked": b"\x03\x81\x05hello",
    "raw-close": b"\x03\x88\x82\x00\x00\x00\x00\x03\xe8",
}
for name, data in WS.items():
    write("fuzz_ws", name, data)
dictionary("fuzz_ws", ['"type":', '"hello"', '"token":', '"resumeFrom":', '"presence.watch"', '"userIds":',
                       '"presence"', '"status":', '"away"', '"online"', '"ping"', '"typing"', '"roomId":', "@T", "@R",
                       "@U"])

# ---- fuzz_events: records of the event stream and buckets ----
EV = [
    'E chatto.ev.r1.room {"type":"room.created","id":"e1","actor":"alice","room":{"id":"r1","name":"R",'
    '"visibility":"public"},"members":[{"user":"alice","role":"owner"}]}',
    'E chatto.ev.r1.mem.bob {"type":"member.joined","id":"e2","actor":"bob","user":"bob"}',
    'E chatto.ev.r1.msg.m1 {"type":"msg.posted","actor":"alice","msg":{"id":"m1","author":"alice","createdAt":5,'
    '"body":"hi @bob","mentions":["bob"]}}',
    'E chatto.ev.r1.msg.r1a {"type":"msg.posted","actor":"bob","msg":{"id":"r1a","author":"bob","createdAt":6,'
    '"body":"a","threadRoot":"m1","inReplyTo":"m1"}}',
    'E chatto.ev.r1.msg.m1 {"type":"msg.edited","actor":"alice","msg":{"id":"m1","author":"alice","createdAt":5,'
    '"pos":3,"editedAt":9,"body":"hello","mentions":[]}}',
    'E chatto.ev.r1.msg.m1 {"type":"reaction.added","actor":"bob","msgId":"m1","emoji":"+1"}',
    'E chatto.ev.r1.msg.m1 {"type":"reaction.removed","actor":"bob","msgId":"m1","emoji":"+1"}',
    'E chatto.ev.r1.msg.r1a {"type":"msg.deleted","actor":"bob","msg":{"id":"r1a","author":"bob","createdAt":6,'
    '"pos":4,"threadRoot":"m1","deletedAt":8}}',
    'E chatto.ev.r1.room {"type":"room.updated","id":"e8","actor":"alice","room":{"name":"R2","description":"d"}}',
    'E chatto.ev.r1.room {"type":"room.archived","id":"e9","actor":"alice"}',
    'E chatto.ev.r1.room {"type":"room.unarchived","id":"e10","actor":"alice"}',
    'E chatto.ev.r1.mem.bob {"type":"member.role","id":"e11","actor":"alice","user":"bob","role":"admin"}',
    'E chatto.ev.r1.mem.bob {"type":"member.left","id":"e12","actor":"bob","user":"bob"}',
    'E chatto.ev.r1.call {"type":"call.started","id":"e13","actor":"alice","callId":"c1","user":"alice",'
    '"source":"user"}',
    'E chatto.ev.r1.call {"type":"call.joined","id":"e14","callId":"c1","user":"bob","source":"livekit"}',
    'E chatto.ev.r1.call {"type":"call.joined","id":"e15","callId":"c0","user":"carol"}',
    'E chatto.ev.r1.call {"type":"call.left","id":"e16","callId":"c1","user":"bob"}',
    'E chatto.ev.r1.call {"type":"call.ended","id":"e17","callId":"c1","user":"alice"}',
    'E chatto.ev.r1.msg.x not json',
    'U alice {"id":"alice","login":"alice","displayName":"Alice","role":"owner"}',
    'R bob.r1 {"pos":3}',
]
write("fuzz_events", "stream", "\n".join(EV))
for i, line in enumerate(EV):
    write("fuzz_events", "one-%02d" % i, EV[0] + "\n" + line if i else line)
dictionary("fuzz_events", ["E chatto.ev.", "U ", "R ", ".room ", ".mem.", ".msg.", ".rx.", '"type":', '"id":',
                           '"actor":', '"room":', '"members":', '"user":', '"role":', '"body":', '"mentions":',
                           '"threadRoot":', '"inReplyTo":', '"message":', '"emoji":', '"visibility":', '"dm"',
                           "room.created", "room.updated", "room.archived", "room.unarchived", "member.joined",
                           "member.left", "member.role", "message.posted", "message.edited", "message.deleted",
                           "reaction.added", "reaction.removed", "msg.posted", "msg.edited", "msg.deleted",
                           ".call ", "call.started", "call.joined", "call.left", "call.ended", '"callId":',
                           '"msg":', '"msgId":', '"author":', '"createdAt":', '"pos":', '"editedAt":', '"deletedAt":'])

# ---- fuzz_config: INI text, NUL, environment lines ----
write("fuzz_config", "basic", "[webserver]\nport = 4000\nurl = \"https://chat.example.com\"  # comment\n"
      "trusted_proxies = 10.0.0.0/8, ::1\n\n[nats.embedded]\nenabled = true\ndata_dir = ./data ; c\n"
      "[auth]\ntoken_ttl = 90d\n[webserver]\nmax_body_size = 25MB\n")
write("fuzz_config", "env", "[log]\nlevel = debug\n\0CHATTO_WEBSERVER_PORT=5000\nCHATTO_AUTH_PASSWORD_HASH=owasp\n"
      "CHATTO_NOPE=1\n")
write("fuzz_config", "external", "[nats.embedded]\nenabled = false\n[nats]\nurls = nats://a:4222, nats://b:4222\n"
      "auth = token\ntoken = \"s3cret-token-s3cret-token\"\n")
dictionary("fuzz_config", ["[webserver]", "[nats]", "[nats.embedded]", "[auth]", "[realtime]", "[limits]", "[log]",
                           "[core]", "[chat]", " = ", "true", "false", "90d", "1h30m", "500ms", "25MB", "64KiB",
                           "CHATTO_", "\"", "#", ";"])

# ---- fuzz_parsers: selector byte, then the input ----
P = [
    (0, "chatto_t_0123456789abcdef0123_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    (1, "v1.1700003600.u1.AAAA.BBBB"),
    (2, "v1.x.y.z"),
    (3, "login=al%20ice&password=a+b%2Bc&issueToken=1&x"),
    (4, '{"roomId":"r1","body":"\\u00e9","limit":5,"eventIds":["a","b"],"issueToken":true}'),
    (5, "10.0.0.0/8, fd00::/8|10.0.0.1|203.0.113.7, 10.0.0.2"),
    (5, "127.0.0.1|127.0.0.1|for=192.0.2.60;proto=http, for=\"[2001:db8::1]:80\""),
    (6, "caf\xc3\xa9 \xf0\x9f\x91\x8d"),
    (7, "1h30m"),
    (7, "25MiB"),
    (7, "https://chat.example.com:443/x"),
    (8, 'deploy "release train" stand* AND in:#general in:"Ops Team" from:@bob before:2026-01-02 has:attachment'),
    (8, 'NEAR(a b) OR "open body:x * a*b'),
]
for i, (sel, data) in enumerate(P):
    write("fuzz_parsers", "%02d" % i, bytes([sel]) + data.encode("latin-1"))

# ---- fuzz_backup: archive files (lib/backup/backup.h: ustar of <STREAM>/<n>.rec parts and manifest.json) ----
def _record(seq, subject, data, hdr=b""):
    import struct
    rest = (struct.pack(">QqH", seq, 1700000000 * 10**9, len(subject)) + subject + struct.pack(">I", len(hdr)) + hdr
            + struct.pack(">I", len(data)) + data)
    return struct.pack(">I", len(rest)) + rest


def _tar(entries):
    import io
    import tarfile
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


write("fuzz_backup", "plain", _tar([
    ("CHATTO_EVENTS/00000001.rec", _record(1, b"chatto.ev.r1.room", b'{"type":"room.created"}') +
     _record(3, b"chatto.ev.r1.msg.m1", b'{"type":"msg.posted"}', b"Nats-Msg-Id: k\r\n")),
    ("KV_chatto_users/00000001.rec", _record(1, b"$KV.chatto_users.u1", b"{}")),
    ("manifest.json", b'{"format":"chatto-backup","formatVersion":1,"layout":1,"streams":[]}')]))
def _valid(layout, streams, cut_extra=0):
    """An archive restore's checks accept (counts, cuts and SHA-256s match): the fuzzer starts past them."""
    import hashlib
    import json
    entries, man = [], {"format": "chatto-backup", "formatVersion": 1, "layout": layout, "streams": []}
    for name, recs, cut in streams:
        part = b"".join(recs)
        if part:
            entries.append((name + "/00000001.rec", part))
        man["streams"].append({"name": name, "kind": "kv" if name.startswith("KV_") else "events",
                               "config": {"maxAgeNs": 7776000000000000}, "cutSeq": cut + cut_extra,
                               "messages": len(recs), "sha256": hashlib.sha256(part).hexdigest()})
    entries.append(("manifest.json", json.dumps(man, sort_keys=True).encode()))
    return _tar(entries)


write("fuzz_backup", "valid", _valid(2, [
    ("CHATTO_EVENTS", [_record(1, b"chatto.ev.r1.room", b'{"type":"room.created"}'),
                       _record(3, b"chatto.ev.r1.msg.m1", b'{"type":"msg.posted"}', b"Chatto-Test: a\r\n")], 4),
    ("KV_chatto_users", [_record(1, b"$KV.chatto_users.u1", b"{}")], 1),
    ("KV_chatto_notifications", [_record(7, b"$KV.chatto_notifications.u1.n1", b"{}")], 9),
    ("OBJ_SERVER_ASSETS", [_record(2, b"$O.SERVER_ASSETS.C.abc", b"chunk")], 2)]))
write("fuzz_backup", "valid-empty", _valid(1, [("CHATTO_EVENTS", [], 3)]))
write("fuzz_backup", "encrypted-header", b"CHATTO-BACKUP-E1" + bytes(8) + bytes(8) + bytes(16 + 32 + 24) + b"\0\0\0\x20")
dictionary("fuzz_backup", ["ustar", "ustar\x0000", "manifest.json", "CHATTO_EVENTS/", ".rec", "CHATTO-BACKUP-E1",
                           "00000001", "secrets.ini", "KV_chatto_users/", "OBJ_SERVER_ASSETS/", "chatto.ev.",
                           "$KV.chatto_users.", "$O.SERVER_ASSETS.", "$JS.API.", "\r\n", ": ", "\"cutSeq\":",
                           "\"messages\":", "\"sha256\":", "\"maxAgeNs\":", "\"layout\":", "\"formatVersion\":",
                           "\"streams\":", "\"secrets\":", "1e300", "-1", "9007199254740993"])
