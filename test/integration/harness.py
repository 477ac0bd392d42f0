# SPDX-License-Identifier: MIT
"""Integration-test harness: real nats-server processes, the real chatto binary, real HTTP.

Everything listens on 127.0.0.1 with ports chosen at run time, keeps its data in a temporary directory, and is
stopped by PID in tearDown (never pkill). Waiting is done by polling with a deadline (wait_for), never by sleep.
"""
import base64
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CHATTO_TEST_BUILD", os.path.join(ROOT, "build"))
CHATTO_BIN = os.path.join(BUILD, "chatto")
SANITIZER = os.environ.get("CHATTO_TEST_SANITIZER") == "1"
# e.g. CHATTO_TEST_WRAPPER="valgrind --error-exitcode=99" to run chatto under a tool
WRAPPER = os.environ.get("CHATTO_TEST_WRAPPER", "").split()
TIME_SCALE = float(os.environ.get("CHATTO_TEST_TIME_SCALE", "3" if SANITIZER or WRAPPER else "1"))


def nats_server_bin():
    return shutil.which("nats-server") or "/usr/sbin/nats-server"


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_EPHEMERAL = _ephemeral_range()
_rng = random.Random(os.getpid() ^ int(time.time() * 1000))


_handed_out = set()


def free_port():
    """A TCP port that was free a moment ago. Picked below the kernel's ephemeral range, so the outgoing
    connections of the processes under test (NATS routes, clients) cannot take it before its owner binds it, and
    never one this test process handed out before: a port chosen early (a load balancer's, bound last) was once
    handed out again to a NATS node started in between."""
    lo = 10000
    hi = _EPHEMERAL[0] - 1 if _EPHEMERAL[0] > lo + 1000 else 65535
    for _ in range(200):
        port = _rng.randint(lo, hi)
        if _EPHEMERAL[0] <= port <= _EPHEMERAL[1] or port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # fall back to the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, sig, timeout=10):
    """Ask a child to stop with sig; kill it if it has not within timeout seconds. Accepts None."""
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(cond, timeout, what, interval=0.02):
    """Poll cond() until it returns a truthy value; fail with `what` after timeout seconds (scaled)."""
    deadline = time.monotonic() + timeout * TIME_SCALE
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the condition may fail while things start
            last_exc = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s%s" % (
        timeout * TIME_SCALE, what, " (last error: %r)" % last_exc if last_exc else ""))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # (it went between the open and the read: ESRCH)
        return False


def child_pids(pid):
    """Direct children of pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().split(")")[-1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return out


def grep_tree(root, needle):
    """Files under root that contain the bytes needle (to prove that erased data is gone from a store)."""
    hits = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                with open(p, "rb") as fh:
                    if needle in fh.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


def http_request(port, method, path, body=None, headers=None, host="127.0.0.1", timeout=10):
    """One HTTP request on a fresh connection; never raises on HTTP error statuses."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout * TIME_SCALE)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


class NatsServer:
    """A real nats-server with JetStream in a temp store dir, on random loopback ports."""

    def __init__(self, token=None, name="test-nats", extra_conf=""):
        self.token = token
        self.name = name
        self.extra_conf = extra_conf
        self.dir = tempfile.mkdtemp(prefix="chatto-nats-")
        self.proc = None
        self.port = None
        self.http_port = None
        self.log_path = os.path.join(self.dir, "nats.log")

    def conf(self, port, http_port):
        auth = 'authorization { token: "%s" }\n' % self.token if self.token else ""
        return ('server_name: "%s"\nlisten: "127.0.0.1:%d"\nhttp: "127.0.0.1:%d"\n%s'
                'jetstream { store_dir: "%s" }\n%s' % (self.name, port, http_port, auth,
                                                       os.path.join(self.dir, "js"), self.extra_conf))

    def start(self, port=None, wait=True):
        self.port = port or self.port or free_port()
        self.http_port = self.http_port or free_port()
        path = os.path.join(self.dir, "nats.conf")
        with open(path, "w") as f:
            f.write(self.conf(self.port, self.http_port))
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([nats_server_bin(), "-c", path], stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.kill9()  # never leave a server behind a start that failed
                raise
        return self

    def wait_ready(self, timeout=10):
        def ok():
            r = http_request(self.http_port, "GET", "/healthz?js-enabled-only=true", timeout=2)
            return r.status == 200
        wait_for(ok, timeout, "nats-server on port %d to be ready" % self.port)

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def stop(self):
        stop_process(self.proc, signal.SIGINT)
        self.proc = None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


NODE_MODULES = os.path.join(ROOT, "test", "browser", "node_modules")


class S3Server:
    """s3rver (npm) on a random loopback port with its data in a temp dir, behind test/integration/s3/s3front.cjs,
    which checks every request's SigV4 signature with the AWS SDK's signer (s3rver does not check V4 signatures)
    and its body against x-amz-content-sha256, and logs each request. Stopped by PID. Access key and secret:
    S3RVER/S3RVER."""

    ACCESS_KEY = SECRET_KEY = "S3RVER"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chatto-s3-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "requests.jsonl")
        self.proc = None
        self.port = None

    def start(self, port=None):
        if not os.path.isdir(os.path.join(NODE_MODULES, "s3rver")):
            raise AssertionError("s3rver is missing from test/browser/node_modules: run packaging/deps.sh test")
        self.port = port or self.port or free_port()
        os.makedirs(self.data, exist_ok=True)
        self.out = open(os.path.join(self.dir, "s3rver.log"), "ab")
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        self.proc = subprocess.Popen(["node", os.path.join(ROOT, "test", "integration", "s3", "s3front.cjs"),
                                      str(self.port), self.data, self.log_path], stdout=self.out,
                                     stderr=subprocess.STDOUT, env=env)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("s3rver exited: %s" % self.output())
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        try:
            wait_for(up, 20, "s3rver on port %d" % self.port)
        except BaseException:
            self.kill()
            raise
        return self

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.port

    def env(self, bucket, **extra):
        """CHATTO_* settings for a chatto process using this server (path-style, plain HTTP)."""
        e = {"CHATTO_CORE_ASSETS_S3_ENDPOINT": self.endpoint, "CHATTO_CORE_ASSETS_S3_BUCKET": bucket,
             "CHATTO_CORE_ASSETS_S3_ACCESS_KEY_ID": self.ACCESS_KEY,
             "CHATTO_CORE_ASSETS_S3_SECRET_ACCESS_KEY": self.SECRET_KEY, "CHATTO_CORE_ASSETS_S3_USE_SSL": "false"}
        e.update(extra)
        return e

    def object_path(self, bucket, key):
        """Where s3rver keeps the bytes of bucket/key."""
        parts = key.split("/")
        return os.path.join(self.data, bucket, *parts[:-1], parts[-1] + "._S3rver_object")

    def has_bucket(self, bucket):
        return os.path.isdir(os.path.join(self.data, bucket))

    def requests(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def output(self):
        try:
            with open(os.path.join(self.dir, "s3rver.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Endpoint:
    """Something serving Chatto's HTTP API on 127.0.0.1:self.port (a chatto process, or a load balancer)."""

    def get(self, path, headers=None, timeout=10):
        return http_request(self.port, "GET", path, headers=headers, timeout=timeout)

    def post(self, path, body=None, headers=None, timeout=10):
        return http_request(self.port, "POST", path, body=body, headers=headers, timeout=timeout)

    def connect(self, method, body=None, headers=None, timeout=10):
        """Call a Connect method, e.g. connect("chatto.discovery.v1.ServerDiscoveryService/GetServer", {})."""
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.post("/api/connect/" + method, body if body is not None else {}, h, timeout)


class Chatto(Endpoint):
    """The real chatto binary. Configure with args, env and an optional config file text."""

    def __init__(self, args=(), env=None, config=None, embedded=True, data_dir=None, port=None):
        self.dir = tempfile.mkdtemp(prefix="chatto-test-")
        self.port = port or free_port()
        self.args = list(args)
        self.env = dict(env or {})
        self.config = config
        self.embedded = embedded
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.proc = None
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")

    def command(self):
        cmd = WRAPPER + [CHATTO_BIN, "run", "--webserver-port", str(self.port), "--webserver-bind-address",
                         "127.0.0.1"]
        if self.embedded:
            cmd += ["--nats-embedded-data-dir", self.data_dir]
        if self.config is not None:
            path = os.path.join(self.dir, "chatto.ini")
            with open(path, "w") as f:
                f.write(self.config)
            cmd += ["--config", path]
        return cmd + self.args

    def start(self, wait_ready=True, timeout=20):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
        if not self.embedded:  # each process its own search index, never one in the current directory
            env["CHATTO_SEARCH_PROVIDER_DIRECTORY"] = os.path.join(self.dir, "search")
        env.update(self.env)
        self.out = open(self.stdout_path, "ab")
        self.err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.out, stderr=self.err, env=env)
        if wait_ready:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.kill9()  # never leave a process behind a start that failed
                raise
        return self

    def wait_ready(self, timeout=20):
        def ok():
            if self.proc.poll() is not None:
                raise AssertionError("chatto exited with %s:\n%s" % (self.proc.returncode, self.stderr()))
            return self.get("/readyz", timeout=3).status == 200
        wait_for(ok, timeout, "chatto on port %d to be ready" % self.port)

    def wait_healthy(self, timeout=20):
        wait_for(lambda: self.get("/healthz", timeout=2).status == 200, timeout, "chatto /healthz")

    @property
    def pid(self):
        return self.proc.pid

    def nats_child(self):
        """PID of the embedded nats-server child, or None."""
        for c in child_pids(self.proc.pid):
            try:
                with open("/proc/%d/comm" % c) as f:
                    if "nats-server" in f.read():
                        return c
            except FileNotFoundError:
                pass
        return None

    def stdout(self):
        return self._read(self.stdout_path)

    def stderr(self):
        return self._read(self.stderr_path)

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * TIME_SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("chatto did not stop within %ss of SIGTERM" % timeout)
        return self.proc.returncode

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def sanitizer_report(self):
        text = self.stderr()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer"):
            if marker in text:
                return text
        return None

    def cleanup(self):
        try:
            self.stop()
        except AssertionError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def run_chatto(args, env=None, timeout=20):
    """Run a short chatto command (config check, init, version); returns CompletedProcess with text output."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    e.update(env or {})
    p = subprocess.run(WRAPPER + [CHATTO_BIN] + list(args), env=e, capture_output=True, text=True,
                       timeout=timeout * TIME_SCALE)
    if SANITIZER:
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in p.stderr:
                raise AssertionError("sanitizer report from chatto %s:\n%s" % (" ".join(args), p.stderr))
    return p


class TestCase(unittest.TestCase):
    """Base class: tracks processes and temp dirs, cleans them up, prints chatto's log when a test fails."""

    def err(self, client, method, body, status, code, field=None):
        """Call method and check the Connect error: HTTP status, code, and a message naming field first."""
        r = client.call(method, body)
        self.assertEqual((r.status, r.json().get("code")), (status, code), (method, body, r))
        if field:
            self.assertTrue(r.json()["message"].startswith(field + ": "), r.json())
        return r.json()

    def setUp(self):
        self._chattos = []
        self._natss = []
        # runs even when a subclass's setUp fails after starting processes (tearDown then does not run)
        self.addCleanup(self._stop_all)

    def _stop_all(self):
        for c in self._chattos:  # idempotent: after tearDown these find nothing left to do
            c.cleanup()
        for n in self._natss:
            n.cleanup()

    def chatto(self, *a, start=True, **kw):
        c = Chatto(*a, **kw)
        self._chattos.append(c)
        if start:
            c.start()
        return c

    def nats(self, *a, start=True, **kw):
        n = NatsServer(*a, **kw)
        self._natss.append(n)
        if start:
            n.start()
        return n

    def s3(self, start=True):
        s = S3Server()
        self.addCleanup(s.cleanup)
        if start:
            s.start()
        return s

    def tearDown(self):
        failed = self._outcome_failed()
        for c in self._chattos:
            try:
                c.stop()
            except AssertionError as e:
                print(e)
            report = c.sanitizer_report() if SANITIZER else None
            if failed or report:
                print("\n--- chatto stderr (port %d) ---\n%s" % (c.port, c.stderr()[-20000:]))
            if report:
                c.cleanup()
                raise AssertionError("sanitizer report in chatto's stderr")
            c.cleanup()
        for n in self._natss:
            n.cleanup()

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        if result is None:
            return False
        errs = list(getattr(result, "errors", [])) + list(getattr(result, "failures", []))
        return any(t is self for t, _ in errs)


SHARED_SECRETS = {
    "CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET": "cookie-secret-0123456789abcdef",
    "CHATTO_CORE_SECRET_KEY": "core-secret-0123456789abcdef",
    "CHATTO_CORE_ASSETS_SIGNING_SECRET": "assets-secret-0123456789abcdef",
}

# Tests hash passwords at OWASP's minimum cost: the same code path, a quarter of the time. They also post far
# faster than people do, and open hundreds of sockets from one address as one user, so the per-user write limits
# and the per-address and per-user connection and registration limits are off (those limits have tests of their own that turn
# them back on).
FAST_AUTH = ["--auth-password-hash", "owasp", "--limits-messages-per-second", "0", "--limits-bot-messages-per-second",
             "0", "--webserver-max-connections-per-ip", "0", "--realtime-max-connections-per-ip", "0",
             "--realtime-max-connections-per-user", "0", "--realtime-max-unauthenticated", "0",
             "--auth-register-max-per-ip", "0", "--auth-register-max", "0"]


def external_env(nats, **extra):
    """Environment for a chatto process in external mode on `nats` (a NatsServer with a token)."""
    env = dict(SHARED_SECRETS, CHATTO_NATS_EMBEDDED_ENABLED="false", CHATTO_NATS_CLIENT_URL=nats.url)
    if nats.token:
        env.update(CHATTO_NATS_CLIENT_AUTH_METHOD="token", CHATTO_NATS_CLIENT_TOKEN=nats.token)
    env.update(extra)
    return env


class Client:
    """A user agent for one chatto process: keeps the session cookie like a browser (sending Origin), or uses a
    bearer token like a script."""

    def __init__(self, chatto, cookie=None, token=None, origin=True):
        self.c = chatto
        self.cookie = cookie
        self.token = token
        self.origin = origin

    def on(self, other_chatto):
        """The same credentials, talking to another process."""
        return Client(other_chatto, self.cookie, self.token, self.origin)

    def headers(self, extra=None):
        h = {}
        if self.cookie:
            h["Cookie"] = "chatto_session=" + self.cookie
            if self.origin:
                h["Origin"] = "http://localhost:%d" % self.c.port
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(extra or {})
        return h

    def call(self, method, body=None, headers=None):
        return self.c.connect(method, body if body is not None else {}, self.headers(headers))

    def ok(self, method, body=None):
        r = self.call(method, body)
        assert r.status == 200, "%s -> %r" % (method, r)
        return r.json()

    def _auth(self, path, body):
        r = self.c.post(path, body, self.headers({"Content-Type": "application/json"}))
        if r.status == 200:
            sc = r.header("Set-Cookie") or ""
            if sc.startswith("chatto_session="):
                self.cookie = sc.split(";", 1)[0].split("=", 1)[1] or None
            tok = r.json().get("token")
            if tok:
                self.token = tok
        return r

    def register(self, login, password="correct horse battery", display=None, token=False):
        body = {"login": login, "password": password, "issueToken": token}
        if display:
            body["displayName"] = display
        return self._auth("/auth/register", body)

    def login(self, login, password="correct horse battery", token=False):
        return self._auth("/auth/login", {"login": login, "password": password, "issueToken": token})

    def logout(self):
        return self.c.post("/auth/logout", {}, self.headers({"Content-Type": "application/json"}))


# ---- files (AssetUploadService), shared by the attachment suites ----

UPLOAD_CHUNK = 512 * 1024
UPLOADS = "chatto.api.v1.AssetUploadService/"


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def create_upload(client, room, data, name="data.bin", ctype="application/octet-stream", digest=None):
    return client.call(UPLOADS + "CreateUpload", {"roomId": room, "filename": name, "contentType": ctype,
                                                  "size": str(len(data)), "sha256": digest or sha256_hex(data)})


def upload_chunk(client, upload_id, offset, piece, digest=None):
    return client.call(UPLOADS + "UploadChunk", {"uploadId": upload_id, "offset": str(offset),
                                                 "content": base64.b64encode(piece).decode(),
                                                 "chunkSha256": digest or sha256_hex(piece)})


def upload_chunks(tc, client, room, data, name="data.bin", ctype="application/octet-stream", clients=None):
    """Create an upload and send every chunk (round-robin over clients); returns the upload, not completed."""
    r = create_upload(client, room, data, name, ctype)
    tc.assertEqual(r.status, 200, r)
    up = r.json()["upload"]
    tc.assertEqual(up["status"], "ASSET_UPLOAD_STATUS_OPEN")
    tc.assertEqual(up["maxChunkSize"], UPLOAD_CHUNK)
    clients = clients or [client]
    for i, off in enumerate(range(0, len(data), UPLOAD_CHUNK)):
        r = upload_chunk(clients[i % len(clients)], up["uploadId"], off, data[off:off + UPLOAD_CHUNK])
        tc.assertEqual(r.status, 200, r)
        tc.assertEqual(r.json()["upload"]["committedOffset"], str(min(off + UPLOAD_CHUNK, len(data))))
    return up


def upload_file(tc, client, room, data, name="data.bin", ctype="application/octet-stream", clients=None):
    """A whole upload through the Connect API, completed; returns the Asset."""
    up = upload_chunks(tc, client, room, data, name, ctype, clients)
    done = client.ok(UPLOADS + "CompleteUpload", {"uploadId": up["uploadId"]})
    tc.assertEqual(done["upload"]["status"], "ASSET_UPLOAD_STATUS_COMPLETED")
    return done["asset"]
