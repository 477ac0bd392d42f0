# SPDX-License-Identifier: MIT
"""A Web Push service on loopback for the tests: test/integration/push/pushsvc.cjs (Node's crypto only) plays a push
service and the browser, checks each request's VAPID JWT and decrypts its body, and logs what it found."""
import json
import os
import shutil
import signal
import subprocess
import tempfile

from harness import ROOT, wait_for


class PushService:
    """pushsvc.cjs on a loopback port it chose itself, stopped by PID."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chatto-push-")
        self.ready_path = os.path.join(self.dir, "ready.json")
        self.log_path = os.path.join(self.dir, "log.jsonl")
        self.proc = None

    def start(self):
        self.out = open(os.path.join(self.dir, "node.log"), "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
        self.proc = subprocess.Popen(["node", os.path.join(ROOT, "test", "integration", "push", "pushsvc.cjs"),
                                      self.ready_path, self.log_path], stdout=self.out, stderr=subprocess.STDOUT,
                                     env=env)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("pushsvc.cjs exited: %s" % self.output())
            with open(self.ready_path) as f:
                return json.load(f)
        try:
            info = wait_for(ready, 20, "the Node push service to listen")
        except BaseException:
            self.stop()
            raise
        self.port, self.p256dh, self.auth = info["port"], info["p256dh"], info["auth"]
        return self

    def url(self, path, scheme="http", host="127.0.0.1"):
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def log(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def requests(self):
        return [e for e in self.log() if e["event"] == "request"]

    def connections(self):
        return [e for e in self.log() if e["event"] == "connection"]

    def output(self):
        try:
            with open(os.path.join(self.dir, "node.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class WithPushService:
    """Test-case mixin: a push service for each test (self.svc), its log printed when the test failed."""

    def setUp(self):
        super().setUp()
        self.svc = PushService()
        self.addCleanup(self.svc.cleanup)
        self.svc.start()

    def tearDown(self):
        if self._outcome_failed():
            print("\n--- push service log ---\n%s\n%s" % (self.svc.output(), json.dumps(self.svc.log(), indent=1)))
        super().tearDown()
