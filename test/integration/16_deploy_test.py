# SPDX-License-Identifier: MIT
"""The deployment files in deploy/ are valid for the tools that read them, keep the health-check contract of the
horizontal-scaling guide exactly, and only name settings Chatto knows (checked by `chatto config check` with the
files' own environment). 86_balancers runs the Caddy and HAProxy files in front of a real cluster."""
import os
import re
import shutil
import subprocess
import tempfile

import yaml

from harness import ROOT, TestCase, run_chatto

DEPLOY = os.path.join(ROOT, "deploy")
PROBES = {
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 4000}, "periodSeconds": 5},
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 4000}, "periodSeconds": 10},
    "startupProbe": {"httpGet": {"path": "/readyz", "port": 4000}, "failureThreshold": 15, "periodSeconds": 2},
}
MUST_MATCH_SECRETS = {"CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET", "CHATTO_CORE_SECRET_KEY",
                      "CHATTO_CORE_ASSETS_SIGNING_SECRET", "CHATTO_NATS_CLIENT_TOKEN"}


def env_file(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k] = v
    return out


class Deploy(TestCase):
    def config_check(self, env):
        p = run_chatto(["config", "check"], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_compose_file_is_valid_and_keeps_the_health_check(self):
        d = tempfile.mkdtemp(prefix="chatto-compose-")
        self.addCleanup(shutil.rmtree, d, True)
        for name in os.listdir(os.path.join(DEPLOY, "compose")):
            shutil.copy(os.path.join(DEPLOY, "compose", name), d)
        shutil.copy(os.path.join(d, "chatto.env.example"), os.path.join(d, "chatto.env"))
        p = subprocess.run(["docker-compose", "-f", os.path.join(d, "docker-compose.yml"), "config"], cwd=d,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        c = yaml.safe_load(p.stdout)
        chatto = c["services"]["chatto"]
        self.assertEqual(chatto["deploy"]["replicas"], 3)
        hc = chatto["healthcheck"]
        self.assertEqual(hc["test"], ["CMD", "wget", "-q", "--spider", "http://localhost:4000/readyz"])
        self.assertEqual((hc["interval"], hc["timeout"], hc["retries"]), ("5s", "3s", 3))
        self.assertEqual({"nats1", "nats2", "nats3", "chatto", "caddy"}, set(c["services"]))
        # every setting it gives chatto is one chatto knows, and together they pass its checks
        env = dict(chatto["environment"])
        self.assertTrue(MUST_MATCH_SECRETS <= set(env), sorted(env))
        self.config_check(env)
        p = subprocess.run(["caddy", "adapt", "--adapter", "caddyfile", "--config", os.path.join(d, "Caddyfile")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"dynamic_upstreams"', p.stdout)
        self.assertIn('"round_robin"', p.stdout)

    def test_kubernetes_manifests_keep_the_probes_and_the_shared_settings(self):
        with open(os.path.join(DEPLOY, "kubernetes", "chatto.yaml")) as f:
            docs = {d["kind"]: d for d in yaml.safe_load_all(f)}
        self.assertEqual({"Secret", "Deployment", "Service", "PodDisruptionBudget"}, set(docs))
        dep = docs["Deployment"]
        self.assertEqual(dep["spec"]["replicas"], 3)
        ctr = dep["spec"]["template"]["spec"]["containers"][0]
        for probe, want in PROBES.items():
            self.assertEqual(ctr[probe], want, probe)
        self.assertEqual(ctr["ports"][0]["containerPort"], 4000)
        secret = docs["Secret"]["stringData"]
        self.assertTrue(MUST_MATCH_SECRETS <= set(secret), sorted(secret))
        self.assertEqual(ctr["envFrom"][0]["secretRef"]["name"], docs["Secret"]["metadata"]["name"])
        env = dict(secret)
        env.update({e["name"]: e["value"] for e in ctr["env"]})
        self.config_check(env)
        labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(docs["Service"]["spec"]["selector"], labels)
        self.assertEqual(docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], labels)
        self.assertLess(docs["PodDisruptionBudget"]["spec"]["minAvailable"], dep["spec"]["replicas"])
        with open(os.path.join(DEPLOY, "kubernetes", "nats-values.yaml")) as f:
            nats = yaml.safe_load(f)["config"]
        self.assertEqual((nats["cluster"]["replicas"], nats["jetstream"]["enabled"]), (3, True))
        self.assertEqual(nats["merge"]["authorization"]["token"], secret["CHATTO_NATS_CLIENT_TOKEN"])

    def test_balancer_files_pass_their_own_checkers(self):
        env = dict(os.environ, CHATTO_UPSTREAMS="127.0.0.1:4001 127.0.0.1:4002", CHATTO_SITE="http://127.0.0.1:1",
                   CHATTO_LISTEN="127.0.0.1:1", CHATTO_1="127.0.0.1:4001", CHATTO_2="127.0.0.1:4002",
                   CHATTO_3="127.0.0.1:4003")
        p = subprocess.run(["caddy", "adapt", "--adapter", "caddyfile", "--config",
                            os.path.join(DEPLOY, "caddy", "Caddyfile")], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"/readyz"', p.stdout)
        p = subprocess.run(["haproxy", "-c", "-f", os.path.join(DEPLOY, "haproxy", "haproxy.cfg")],
                           capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        d = tempfile.mkdtemp(prefix="chatto-nginx-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n  include %s;\n}\n"
                    % (d, d, os.path.join(DEPLOY, "nginx", "chatto.conf")))
        p = subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-t", "-p", d, "-c",
                            os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_dockerfile_installs_the_package_and_checks_readiness(self):
        with open(os.path.join(DEPLOY, "Dockerfile")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^FROM debian:bookworm-slim$")
        self.assertRegex(text, r"apt-get install [^\n]*/tmp/chatto\.deb")
        self.assertIn('HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD ["wget", "-q", "--spider", '
                      '"http://localhost:4000/readyz"]', text)
        self.assertRegex(text, r"(?m)^USER chatto$")
        self.assertTrue(re.search(r"rm -f /etc/chatto/secrets\.env", text), "no secrets baked into the image")
