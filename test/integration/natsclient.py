# SPDX-License-Identifier: MIT
"""A minimal NATS client for tests that must look at (or tamper with) the store behind chatto's back: the NATS
text protocol over one socket, requests only (publish with a reply inbox, wait for one answer), and the few
JetStream API calls and KV operations the tests need. No Python NATS library is packaged in Debian 12."""
import base64
import json
import socket
import time


class NatsError(Exception):
    pass


class NatsClient:
    def __init__(self, port, token=None, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.sid = 0
        info = self._line()
        if not info.startswith(b"INFO "):
            raise NatsError("no INFO from the server: %r" % info)
        opts = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True, "lang": "python-test",
                "version": "0"}
        if token:
            opts["auth_token"] = token
        self.sock.sendall(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
        while True:
            line = self._line()
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                raise NatsError(line.decode())

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise NatsError("connection closed by the server")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def request(self, subject, payload=b"", headers=None, timeout=5):
        """Publishes payload (bytes) with optional headers ({name: value}) and returns (headers, payload) of the
        one answer. Raises NatsError on no responders or when no answer came within timeout seconds."""
        self.sid += 1
        sid, inbox = self.sid, "_INBOX.test.%d.%d" % (id(self), self.sid)
        out = b"SUB %s %d\r\n" % (inbox.encode(), sid)
        if headers:
            hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items())
            hdr += b"\r\n"
            out += b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject.encode(), inbox.encode(), len(hdr),
                                                       len(hdr) + len(payload), hdr, payload)
        else:
            out += b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), inbox.encode(), len(payload), payload)
        self.sock.sendall(out)
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    line = self._line()
                except socket.timeout:
                    raise NatsError("no answer to %s within %ss" % (subject, timeout))
                if line == b"PING":
                    self.sock.sendall(b"PONG\r\n")
                    continue
                if line.startswith(b"-ERR"):
                    raise NatsError(line.decode())
                parts = line.split()
                if parts and parts[0] == b"MSG":
                    data, hdrs = self._bytes(int(parts[-1])), {}
                elif parts and parts[0] == b"HMSG":
                    raw = self._bytes(int(parts[-1]))
                    hlen = int(parts[-2])
                    hdrs, data = self._headers(raw[:hlen]), raw[hlen:]
                else:
                    continue
                if int(parts[2]) != sid:
                    continue
                if hdrs.get(":status") == "503":
                    raise NatsError("no responders for %s" % subject)
                return hdrs, data
        finally:
            self.sock.sendall(b"UNSUB %d\r\n" % sid)

    @staticmethod
    def _headers(raw):
        lines = raw.decode().split("\r\n")
        out = {}
        status = lines[0].split(None, 2)
        if len(status) > 1:
            out[":status"] = status[1]
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    # ---- JetStream ----

    def js(self, api, body=None):
        """A JetStream API call ($JS.API.<api>); returns the answer as JSON. Errors come back in it."""
        _, data = self.request("$JS.API." + api, json.dumps(body).encode() if body is not None else b"")
        return json.loads(data)

    def streams(self):
        return sorted(self.js("STREAM.NAMES", {}).get("streams") or [])

    def stream_config(self, name):
        r = self.js("STREAM.INFO." + name)
        if "error" in r:
            raise NatsError("%s: %s" % (name, r["error"]))
        return r["config"]

    def stream_create(self, config):
        r = self.js("STREAM.CREATE." + config["name"], config)
        if "error" in r:
            raise NatsError("create %s: %s" % (config["name"], r["error"]))

    def stream_delete(self, name):
        r = self.js("STREAM.DELETE." + name)
        if "error" in r:
            raise NatsError("delete %s: %s" % (name, r["error"]))

    def consumers(self, stream):
        return sorted(self.js("CONSUMER.NAMES." + stream, {}).get("consumers") or [])

    def consumer_delete(self, stream, name):
        r = self.js("CONSUMER.DELETE.%s.%s" % (stream, name))
        if "error" in r:
            raise NatsError("delete consumer %s: %s" % (name, r["error"]))

    # ---- KV (the buckets' streams, as any NATS client's KV API lays them out) ----

    def kv_get(self, bucket, key):
        """The key's value (bytes), or None when it is absent or deleted. Read through the stream's leader."""
        r = self.js("STREAM.MSG.GET.KV_" + bucket, {"last_by_subj": "$KV.%s.%s" % (bucket, key)})
        if "error" in r:
            if r["error"].get("code") == 404:
                return None
            raise NatsError("kv get %s.%s: %s" % (bucket, key, r["error"]))
        msg = r["message"]
        hdrs = self._headers(base64.b64decode(msg["hdrs"])) if msg.get("hdrs") else {}
        if hdrs.get("KV-Operation") in ("DEL", "PURGE"):
            return None
        return base64.b64decode(msg.get("data") or "")

    def kv_keys(self, bucket):
        """Keys with a message in the bucket's stream (deleted ones included: their marker is a message)."""
        r = self.js("STREAM.INFO.KV_" + bucket, {"subjects_filter": "$KV.%s.>" % bucket})
        if "error" in r:
            raise NatsError("kv keys %s: %s" % (bucket, r["error"]))
        prefix = "$KV.%s." % bucket
        return sorted(s[len(prefix):] for s in (r["state"].get("subjects") or {}))

    def kv_put(self, bucket, key, value):
        """Writes value (bytes or str); returns the stream sequence (the revision)."""
        if isinstance(value, str):
            value = value.encode()
        _, data = self.request("$KV.%s.%s" % (bucket, key), value)
        ack = json.loads(data)
        if "error" in ack:
            raise NatsError("kv put %s.%s: %s" % (bucket, key, ack["error"]))
        return ack["seq"]

    def kv_delete(self, bucket, key):
        _, data = self.request("$KV.%s.%s" % (bucket, key), b"", headers={"KV-Operation": "DEL"})
        ack = json.loads(data)
        if "error" in ack:
            raise NatsError("kv delete %s.%s: %s" % (bucket, key, ack["error"]))
