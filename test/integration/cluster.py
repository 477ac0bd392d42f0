# SPDX-License-Identifier: MIT
"""A local Chatto cluster on loopback ports: a 3-node nats-server cluster (JetStream, routes, token auth),
N chatto processes in external mode with the same secrets and nats.replicas = 3, and nginx doing round-robin
over them for HTTP and WebSocket. Everything it starts is stopped by PID.

Used by 85_cluster_test.py, and by `make cluster` (python3 test/integration/cluster.py), which brings the same
setup up for a person to try and prints the URL.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (FAST_AUTH, SANITIZER, SHARED_SECRETS, Chatto, Endpoint, NatsServer, free_port,  # noqa: E402
                     http_request, stop_process, wait_for)

NATS_TOKEN = "cluster-test-token-0123456789"


def nginx_bin():
    return shutil.which("nginx") or "/usr/sbin/nginx"


class Node(NatsServer):
    """One member of a nats-server cluster."""

    def __init__(self, name, cluster_port, routes):
        super().__init__(token=NATS_TOKEN, name=name)
        self.cluster_port = cluster_port
        self.routes = routes

    def conf(self, port, http_port):
        routes = ", ".join("nats-route://127.0.0.1:%d" % p for p in self.routes if p != self.cluster_port)
        return super().conf(port, http_port) + (
            'cluster {\n  name: "chatto-test"\n  listen: "127.0.0.1:%d"\n  routes: [%s]\n}\n'
            % (self.cluster_port, routes))

    def jsz(self):
        r = http_request(self.http_port, "GET", "/jsz?streams=true&accounts=true", timeout=3)
        return r.json()

    def stream(self, name):
        """This node's view of a stream (its jsz stream detail), or None."""
        for acct in self.jsz().get("account_details") or []:
            for s in acct.get("stream_detail") or []:
                if s["name"] == name:
                    return s
        return None


class Balancer(Endpoint):
    """nginx, round-robin over the chatto processes, with WebSocket upgrade; reloaded on membership changes.
    To harness.Client it looks like one chatto process."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chatto-nginx-")
        self.port = free_port()
        self.proc = None
        self.backends = []

    def conf(self):
        d = self.dir
        servers = "".join("    server 127.0.0.1:%d max_fails=1 fail_timeout=3s;\n" % p for p in self.backends)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return f"""{user}daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
worker_shutdown_timeout 5s;
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream chatto {{
{servers}  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://chatto;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_connect_timeout 2s;
      proxy_read_timeout 1h;
      proxy_buffering off;
      proxy_next_upstream error timeout;
    }}
  }}
}}
"""

    def _write(self):
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(self.conf())

    def start(self, backends):
        self.backends = list(backends)
        self._write()
        self.log = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen([nginx_bin(), "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf"),
                                      "-e", os.path.join(self.dir, "error.log")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: http_request(self.port, "GET", "/healthz", timeout=2).status == 200, 10,
                 "nginx on port %d" % self.port)
        return self

    def set_backends(self, backends):
        """Rewrite the upstream list and reload (old workers finish their requests, new ones use the list)."""
        self.backends = list(backends)
        self._write()
        before = self.workers()
        self.proc.send_signal(signal.SIGHUP)
        # the reload is done when the new workers are up and the old ones have finished (they stop accepting at
        # once, but finish their requests; WebSockets they still carry are closed after worker_shutdown_timeout)
        wait_for(lambda: (self.workers() - before) and not (self.workers() & before), 15, "nginx to reload")

    def workers(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                return set(int(x) for x in f.read().split())
        except FileNotFoundError:
            return set()

    def stop(self):
        stop_process(self.proc, signal.SIGQUIT)  # graceful
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)



DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "deploy")


class ShippedBalancer(Endpoint):
    """A balancer run from the configuration file shipped in deploy/, with only addresses filled in (through the
    environment variables the file reads). Membership changes restart it."""

    name = None

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chatto-%s-" % self.name)
        self.port = free_port()
        self.proc = None
        self.backends = []

    def command(self):
        raise NotImplementedError

    def env(self):
        raise NotImplementedError

    def start(self, backends):
        self.backends = list(backends)
        env = dict(os.environ)
        env.update(self.env())
        self.log = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        wait_for(lambda: self.proc.poll() is None and http_request(self.port, "GET", "/healthz", timeout=2).status
                 == 200, 20, "%s on port %d" % (self.name, self.port))
        return self

    def set_backends(self, backends):
        self.stop()
        self.start(backends)

    def output(self):
        try:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        stop_process(self.proc, signal.SIGTERM)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class CaddyBalancer(ShippedBalancer):
    """deploy/caddy/Caddyfile: round-robin with /readyz health checks."""

    name = "caddy"

    def command(self):
        return [shutil.which("caddy") or "/usr/bin/caddy", "run", "--adapter", "caddyfile",
                "--config", os.path.join(DEPLOY, "caddy", "Caddyfile")]

    def env(self):
        return {"CHATTO_SITE": "http://127.0.0.1:%d" % self.port,
                "CHATTO_UPSTREAMS": " ".join("127.0.0.1:%d" % p for p in self.backends),
                "CADDY_ADMIN": "127.0.0.1:%d" % free_port(),
                "XDG_DATA_HOME": self.dir, "XDG_CONFIG_HOME": self.dir, "HOME": self.dir}


class HAProxyBalancer(ShippedBalancer):
    """deploy/haproxy/haproxy.cfg: round-robin with /readyz health checks over three server slots (a slot without
    a process points at a closed port, which its health check marks down)."""

    name = "haproxy"

    def command(self):
        return [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f",
                os.path.join(DEPLOY, "haproxy", "haproxy.cfg")]

    def env(self):
        slots = ["127.0.0.1:%d" % p for p in self.backends][:3]
        while len(slots) < 3:
            slots.append("127.0.0.1:%d" % free_port())  # nobody listens there
        return {"CHATTO_LISTEN": "127.0.0.1:%d" % self.port, "CHATTO_1": slots[0], "CHATTO_2": slots[1],
                "CHATTO_3": slots[2]}


BALANCERS = {"nginx": Balancer, "caddy": CaddyBalancer, "haproxy": HAProxyBalancer}


class Cluster:
    """3 NATS nodes, `processes` chatto processes and a balancer in front of them (nginx unless told)."""

    def __init__(self, processes=3, args=(), env=None, balancer="nginx"):
        self.args = list(FAST_AUTH) + list(args)
        self.extra_env = dict(env or {})
        cports = [free_port() for _ in range(3)]
        self.nodes = [Node("n%d" % (i + 1), cports[i], cports) for i in range(3)]
        self.lb = BALANCERS[balancer]()
        self.chattos = []
        self.nprocs = processes
        self.reports = []  # sanitizer reports from chatto processes that ended (CHATTO_TEST_SANITIZER)

    @property
    def url(self):
        return "http://localhost:%d" % self.lb.port

    def env(self, **extra):
        env = dict(SHARED_SECRETS)
        env.update(CHATTO_NATS_EMBEDDED_ENABLED="false",
                   CHATTO_NATS_CLIENT_URL=",".join(n.url for n in self.nodes),
                   CHATTO_NATS_CLIENT_AUTH_METHOD="token", CHATTO_NATS_CLIENT_TOKEN=NATS_TOKEN,
                   CHATTO_NATS_REPLICAS="3", CHATTO_WEBSERVER_URL=self.url,
                   CHATTO_WEBSERVER_TRUSTED_PROXIES="127.0.0.1")
        env.update(self.extra_env)
        env.update(extra)
        return env

    def _start_nodes(self):
        """Start the three nodes; True once all answer. A node that exits at once lost one of its ports (picked
        free a moment ago) to someone else, e.g. another node's outgoing route connection."""
        for n in self.nodes:
            n.start(wait=False)

        def state():
            if any(n.proc.poll() is not None for n in self.nodes):
                return "exited"
            try:
                return all(http_request(n.http_port, "GET", "/healthz?js-enabled-only=true", timeout=2).status == 200
                           for n in self.nodes) and "ready"
            except OSError:
                return False
        return wait_for(state, 30, "the NATS cluster to be ready") == "ready"

    def start(self):
        for attempt in range(3):
            if self._start_nodes():
                break
            for n in self.nodes:  # new ports for everyone (the routes name each other's cluster ports)
                n.stop()
            cports = [free_port() for _ in range(3)]
            for n, cp in zip(self.nodes, cports):
                n.port, n.http_port, n.cluster_port, n.routes = None, None, cp, cports
        else:
            raise AssertionError("the NATS cluster did not start in 3 attempts")
        for _ in range(self.nprocs):
            self.add_chatto(balance=False)
        self.lb.start([c.port for c in self.chattos])
        return self

    def add_chatto(self, balance=True, wait=True, **env):
        c = Chatto(args=self.args, env=self.env(**env), embedded=False)
        c.start(wait_ready=wait, timeout=40)
        self.chattos.append(c)
        if balance:
            self.lb.set_backends([x.port for x in self.chattos])
        return c

    def remove_chatto(self, c):
        """Scale down: take it out of the balancer first, then stop it gracefully (it drains)."""
        self.chattos.remove(c)
        self.lb.set_backends([x.port for x in self.chattos])
        rc = c.stop()
        self.retire(c)
        return rc

    def retire(self, c):
        """Clean up a chatto process that is out of the cluster, keeping any sanitizer report it wrote."""
        try:
            c.stop()
        except AssertionError:
            pass
        report = c.sanitizer_report() if SANITIZER else None
        if report:
            self.reports.append("chatto on port %d:\n%s" % (c.port, report[-20000:]))
        c.cleanup()

    def stream_leader(self, name="CHATTO_EVENTS"):
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                s = n.stream(name)
            except Exception:  # noqa: BLE001 - a node may be down
                continue
            if s and s.get("cluster", {}).get("leader"):
                leader = s["cluster"]["leader"]
                return next(x for x in self.nodes if x.name == leader)
        return None

    def cleanup(self):
        self.lb.cleanup()
        for c in self.chattos:
            self.retire(c)
        for n in self.nodes:
            n.cleanup()


def main():
    """`make cluster`: bring the cluster up for a person to try; Ctrl-C stops everything."""
    c = Cluster(args=["--auth-password-hash", "interactive"])
    try:
        c.start()
        print("Chatto cluster is up: open %s" % c.url)
        print("  nginx (round-robin)  127.0.0.1:%d" % c.lb.port)
        for p in c.chattos:
            print("  chatto pid %-7d    127.0.0.1:%d  (logs %s)" % (p.pid, p.port, p.dir))
        for n in c.nodes:
            print("  nats %s pid %-7d  127.0.0.1:%d  monitor 127.0.0.1:%d" % (n.name, n.proc.pid, n.port, n.http_port))
        print("Ctrl-C stops everything.")
        sys.stdout.flush()
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping")
        c.cleanup()


if __name__ == "__main__":
    main()
