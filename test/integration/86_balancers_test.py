# SPDX-License-Identifier: MIT
"""The shipped balancer configurations (deploy/caddy/Caddyfile, deploy/haproxy/haproxy.cfg) in front of three chatto
processes on a three-node NATS cluster, run from the very files with only addresses filled in: round-robin
reaches every process, a WebSocket through the balancer gets what is posted through another process, and when a
process dies the balancer keeps answering from the others."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster import Cluster  # noqa: E402
from harness import TIME_SCALE, Client, http_request, wait_for  # noqa: E402
from wsclient import WS  # noqa: E402

M = "chatto.api.v1.MessageService/"


class BalancerCase:
    kind = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(balancer=cls.kind)
        try:
            cls.cluster.start()
        except Exception:
            print(cls.cluster.lb.output() if hasattr(cls.cluster.lb, "output") else "")
            cls.cluster.cleanup()
            raise
        cls.lb = cls.cluster.lb

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def instances(self, n):
        seen = set()
        for _ in range(n):
            r = http_request(self.lb.port, "GET", "/healthz")
            self.assertEqual(r.status, 200, r)
            seen.add(r.header("X-Chatto-Instance"))
        return seen

    def test_1_round_robin_reaches_every_process(self):
        # a balancer's health checks may still be admitting processes that became ready a moment ago
        wait_for(lambda: len(self.instances(12)) == 3, 30, "requests through %s on all three processes" % self.kind)

    def test_2_websocket_through_the_balancer_gets_posts_made_through_other_processes(self):
        alice = Client(self.lb)
        self.assertEqual(alice.register("alice-" + self.kind, token=True).status, 200)
        sockets = []
        for _ in range(3):
            ws = WS(self.lb.port)
            self.addCleanup(ws.sock.close)
            ws.hello(token=alice.token)
            sockets.append(ws)
        alice.ok(M + "CreateMessage", {"roomId": "general", "body": "through %s" % self.kind})
        for ws in sockets:
            deadline = time.time() + 10 * TIME_SCALE
            while True:
                f = ws.recv(10)
                if f.get("type") == "message.created" and f["message"]["body"] == "through %s" % self.kind:
                    break
                self.assertLess(time.time(), deadline, "the message never reached a socket")

    def test_3_a_dead_process_is_routed_around(self):
        victim = self.cluster.chattos[-1]
        victim.kill9()

        def all_ok():
            return all(http_request(self.lb.port, "POST", "/api/connect/chatto.discovery.v1.ServerDiscoveryService/"
                                    "GetServer", b"{}", {"Content-Type": "application/json"}).status == 200
                       for _ in range(12))
        wait_for(all_ok, 30, "%s to route around the dead process" % self.kind)
        # both survivors answer (a busy machine may make a health check fail once: allow it to recover)
        wait_for(lambda: len(set(self.instances(12))) == 2, 30, "%s to spread requests over the two survivors"
                 % self.kind)


class Caddy(BalancerCase, unittest.TestCase):
    kind = "caddy"


class HAProxy(BalancerCase, unittest.TestCase):
    kind = "haproxy"
