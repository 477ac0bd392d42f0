# SPDX-License-Identifier: MIT
"""A small RFC 6455 client over a raw socket (stdlib only), able to send malformed frames on purpose."""
import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(Exception):
    def __init__(self, status, headers, body):
        super().__init__("handshake failed: %d %r" % (status, body[:200]))
        self.status = status
        self.headers = headers
        self.body = body


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__("closed %s %r" % (code, reason))
        self.code = code
        self.reason = reason


def raw_handshake(port, path="/api/realtime", headers=None, key=None, version="13", host="127.0.0.1"):
    """Open a TCP connection and send an upgrade request; returns (sock, status, headers, leftover)."""
    s = socket.create_connection((host, port), timeout=10)
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port), "Upgrade: websocket", "Connection: Upgrade"]
    if key:
        lines.append("Sec-WebSocket-Key: " + key)
    if version:
        lines.append("Sec-WebSocket-Version: " + version)
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status_line, *hdr_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1]) if status_line else 0
    hdrs = {}
    for line in hdr_lines:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return s, status, hdrs, rest, key


class WS:
    def __init__(self, port, headers=None, path="/api/realtime", key=None, version="13"):
        self.sock, status, hdrs, rest, key = raw_handshake(port, path, headers, key, version)
        if status != 101:
            body = rest
            try:
                self.sock.settimeout(0.5)
                body += self.sock.recv(65536)
            except OSError:
                pass
            self.sock.close()
            raise HandshakeError(status, hdrs, body)
        expect = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        assert hdrs.get("sec-websocket-accept") == expect, hdrs
        self.buf = rest
        self.headers = hdrs
        self.closed = None

    # -- framing --
    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length_override=None):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length_override is None else length_override
        if n < 126:
            hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            m = os.urandom(4)
            payload = bytes(c ^ m[i % 4] for i, c in enumerate(payload))
            hdr += m
        self.sock.sendall(hdr + payload)

    def send_text(self, s):
        self.send_frame(0x1, s)

    def send_json(self, o):
        self.send_text(json.dumps(o))

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed without a close frame")
            self.buf += chunk

    def recv_frame(self, timeout=5):
        """(fin, opcode, payload) of the next frame."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        assert not (b1 & 0x80), "server frames must not be masked"
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv(self, timeout=5):
        """Next JSON message; answers pings; raises Closed on a close frame."""
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == 0x9:
                self.send_frame(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = (code, payload[2:].decode("utf-8", "replace"))
                raise Closed(code, self.closed[1])
            if op == 0x1:
                return json.loads(payload.decode("utf-8"))
            raise AssertionError("unexpected opcode %d" % op)

    def recv_type(self, type_, timeout=5):
        """Skip messages until one of the given type arrives."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.01, deadline - time.monotonic()))
            if m.get("type") == type_:
                return m

    def expect_close(self, timeout=5):
        try:
            while True:
                self.recv(timeout)
        except Closed as c:
            return c.code

    def hello(self, token=None, resume=None, timeout=5):
        m = {"type": "hello"}
        if token:
            m["token"] = token
        if resume is not None:
            m["resumeFrom"] = str(resume)
        self.send_json(m)
        msgs = []
        while True:
            x = self.recv(timeout)
            msgs.append(x)
            if x["type"] == "ready":
                return x, msgs[:-1]

    def close(self, code=1000):
        try:
            self.send_frame(0x8, struct.pack("!H", code))
            self.sock.settimeout(2)
            self.sock.recv(1024)
        except OSError:
            pass
        self.sock.close()


def connect(chatto, token=None, cookie=None, origin=None, resume=None):
    """Connect and say hello; returns (ws, ready)."""
    headers = {}
    if cookie:
        headers["Cookie"] = "chatto_session=" + cookie
        headers["Origin"] = origin or "http://localhost:%d" % chatto.port
    ws = WS(chatto.port, headers)
    ready, _ = ws.hello(token=token, resume=resume)
    return ws, ready
