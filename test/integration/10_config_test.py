# SPDX-License-Identifier: MIT
"""Configuration: every bad input stops start-up with a clear message and exit code 2, before any listener."""
import os
import socket
import stat

from harness import TestCase, free_port, run_chatto

SECRETS = {
    "CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET": "cookie-secret-0123456789abcdef",
    "CHATTO_CORE_SECRET_KEY": "core-secret-0123456789abcdef",
    "CHATTO_CORE_ASSETS_SIGNING_SECRET": "assets-secret-0123456789abcdef",
}


def port_closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class ConfigErrors(TestCase):
    def write(self, text):
        path = os.path.join(self.tmp, "c.ini")
        with open(path, "w") as f:
            f.write(text)
        return path

    def setUp(self):
        super().setUp()
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="chatto-cfg-")

    def check_fails(self, args, expect, env=None):
        port = free_port()
        p = run_chatto(["run", "--webserver-port", str(port), "--nats-embedded-data-dir",
                        os.path.join(self.tmp, "data")] + args, env=env)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(expect, p.stderr)
        self.assertTrue(port_closed(port), "a listener was opened despite the bad config")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")), "data dir touched despite bad config")
        return p.stderr

    def test_unknown_key_names_file_line_and_key(self):
        path = self.write("[webserver]\nport = 4000\n\n[nats.embeded]\nenabled = true\n")
        self.check_fails(["-c", path], "%s:5: nats.embeded.enabled: unknown key" % path)

    def test_bad_values_name_file_line_key_and_reason(self):
        cases = [
            ("[webserver]\nport = 70000\n", ":2: webserver.port: must be between 0 and 65535"),
            ("[nats.embedded]\nenabled = maybe\n", ":2: nats.embedded.enabled: expected true or false"),
            ("[core.assets]\nmax_upload_size = 25 parsecs\n", ":2: core.assets.max_upload_size: unknown size unit"),
            ("[auth]\ntoken_ttl = 90\n", ":2: auth.token_ttl: missing or unknown unit"),
            ("[log]\nlevel = loud\n", ":2: log.level: must be one of debug,info,warn,error"),
            ("[webserver]\nurl = ftp://x\n", ":2: webserver.url: URL scheme must be one of http|https"),
            ("[nats]\nreplicas = 0\n", ":2: nats.replicas: must be between 1 and 5"),
            ("[webserver]\nport = 1\nport = 2\n", ":3: webserver.port: set twice (first on line 2)"),
            ("[core]\nserver_name = \"unterminated\n", ":2: core.server_name: unterminated quoted value"),
            ("[core]\njust some words\n", ":2: syntax error"),
            ("[core]\nserver_name = \"%s\"\n" % ("x" * 300), ":2: line too long"),
        ]
        for text, expect in cases:
            with self.subTest(expect=expect):
                self.check_fails(["-c", self.write(text)], expect)

    def test_missing_config_file(self):
        self.check_fails(["-c", "/nonexistent/chatto.ini"], "/nonexistent/chatto.ini: cannot open config file")

    def test_bad_env_value_names_the_variable(self):
        self.check_fails([], "CHATTO_WEBSERVER_PORT: expected a number", env={"CHATTO_WEBSERVER_PORT": "http"})

    def test_unknown_env_variable_is_an_error(self):
        self.check_fails([], "CHATTO_WEBSERVER_PROT: unknown environment variable",
                         env={"CHATTO_WEBSERVER_PROT": "1"})

    def test_secrets_file_applies_like_the_environment(self):
        envf = os.path.join(self.tmp, "secrets.env")
        with open(envf, "w") as f:
            f.write("# written by the package\n\nCHATTO_CORE_SECRET_KEY='core-from-file-0123456789abcdef'\n"
                    "export CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET=\"cookie-from-file-0123456789abcd\"\n"
                    "OTHER_PROGRAM=ignored\n")
        path = self.write('[core]\nsecrets_file = "%s"\nsecret_key = "core-from-ini-0123456789abcdef"\n' % envf)
        p = run_chatto(["config", "print", "-c", path, "--show-secrets"],
                       env={"CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET": "cookie-from-env-0123456789abcd"})
        self.assertEqual(p.returncode, 0, p.stderr)
        # the file's value beats the config file; the real environment beats the file
        self.assertIn('secret_key = "core-from-file-0123456789abcdef"  # env: %s:3' % envf, p.stdout)
        self.assertIn('cookie_signing_secret = "cookie-from-env-0123456789abcd"', p.stdout)
        # errors name file and line, or the unreadable file
        with open(envf, "a") as f:
            f.write("CHATTO_CORE_SECRET_KYE=x\n")
        self.check_fails(["-c", path], "%s:6: CHATTO_CORE_SECRET_KYE: unknown variable" % envf)
        self.check_fails(["--core-secrets-file", "/nonexistent/s.env"],
                         "core.secrets_file: cannot read /nonexistent/s.env")

    def test_bad_flag_value_names_the_flag(self):
        self.check_fails(["--auth-token-ttl", "forever"], "--auth-token-ttl: ")

    def test_unknown_flag(self):
        self.check_fails(["--no-such-flag"], "--no-such-flag: unknown option")

    def test_external_mode_refuses_to_start_naming_each_missing_secret(self):
        err = self.check_fails([], "must be set", env={"CHATTO_NATS_EMBEDDED_ENABLED": "false",
                                                       "CHATTO_NATS_CLIENT_URL": "nats://127.0.0.1:1"})
        for name in ("webserver.cookie_signing_secret", "core.secret_key", "core.assets.signing_secret",
                     "CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET", "CHATTO_CORE_SECRET_KEY",
                     "CHATTO_CORE_ASSETS_SIGNING_SECRET"):
            self.assertIn(name, err)

    def test_external_mode_needs_a_url(self):
        env = dict(SECRETS, CHATTO_NATS_EMBEDDED_ENABLED="false")
        self.check_fails([], "nats.client.url: required", env=env)

    def test_token_auth_needs_a_token(self):
        env = dict(SECRETS, CHATTO_NATS_EMBEDDED_ENABLED="false", CHATTO_NATS_CLIENT_URL="nats://127.0.0.1:1",
                   CHATTO_NATS_CLIENT_AUTH_METHOD="token")
        self.check_fails([], "nats.client.token: required when auth_method is token", env=env)

    def test_short_shared_secret_rejected(self):
        env = dict(SECRETS, CHATTO_CORE_SECRET_KEY="short")
        self.check_fails([], "core.secret_key: too short", env=env)

    def test_missing_nats_binary(self):
        self.check_fails(["--nats-embedded-binary", "/nonexistent/nats-server"], "nats.embedded.binary")

    def test_metrics_path_is_checked(self):
        self.check_fails(["--metrics-enabled", "--metrics-path", "metrics"], "metrics.path: must start with '/'")

    def test_livekit_needs_key_and_secret(self):
        self.check_fails(["--livekit-enabled", "--livekit-url", "wss://lk"], "livekit.api_key: required", env={})
        self.check_fails(["--livekit-enabled", "--livekit-url", "wss://lk", "--livekit-api-key", "k"],
                         "livekit.api_secret: required", env={})
        # the secret is never a flag
        p = run_chatto(["--livekit-api-secret", "s"])
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_unknown_command(self):
        p = run_chatto(["frobnicate"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", p.stderr)


class ConfigAccepted(TestCase):
    def setUp(self):
        super().setUp()
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="chatto-cfg-")

    def test_seed_snippet_works_unchanged(self):
        # the seed document's TOML snippet, verbatim, plus the env variables it lists
        path = os.path.join(self.tmp, "seed.ini")
        with open(path, "w") as f:
            f.write('[nats.embedded]\nenabled = false\n\n[nats.client]\nurl = "nats://nats:4222"\n'
                    'auth_method = "token"\ntoken = "your-shared-token"\n')
        env = {
            "CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET": "your-cookie-secret",
            "CHATTO_WEBSERVER_COOKIE_ENCRYPTION_SECRET": "your-cookie-encryption-secret",
            "CHATTO_CORE_SECRET_KEY": "your-core-secret",
            "CHATTO_CORE_ASSETS_SIGNING_SECRET": "your-assets-secret",
        }
        p = run_chatto(["config", "check", "-c", path], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK (external NATS", p.stdout)
        # and the same purely from the environment
        env2 = dict(env, CHATTO_NATS_EMBEDDED_ENABLED="false", CHATTO_NATS_CLIENT_URL="nats://nats:4222",
                    CHATTO_NATS_CLIENT_AUTH_METHOD="token", CHATTO_NATS_CLIENT_TOKEN="your-shared-token")
        p = run_chatto(["config", "check"], env=env2)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_precedence_defaults_file_env_flags(self):
        path = os.path.join(self.tmp, "p.ini")
        with open(path, "w") as f:
            f.write("[webserver]\nport = 5001\nbind_address = 127.0.0.2\n[log]\nlevel = warn\n"
                    "[core]\nserver_name = 'From File'  # a comment\n")
        p = run_chatto(["config", "print", "-c", path, "--webserver-port", "5003"],
                       env={"CHATTO_WEBSERVER_PORT": "5002", "CHATTO_LOG_LEVEL": "debug"})
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertIn("port = 5003  # flag: --webserver-port", out)
        self.assertIn('bind_address = "127.0.0.2"  # file: %s:3' % path, out)
        self.assertIn("level = debug  # env: CHATTO_LOG_LEVEL", out)
        self.assertIn('server_name = "From File"', out)
        self.assertIn("format = text  # default", out)

    def test_config_print_masks_secrets(self):
        env = dict(SECRETS)
        p = run_chatto(["config", "print"], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        for v in SECRETS.values():
            self.assertNotIn(v, p.stdout)
        self.assertIn('secret_key = "********"', p.stdout)
        p = run_chatto(["config", "print", "--show-secrets"], env=env)
        self.assertIn(SECRETS["CHATTO_CORE_SECRET_KEY"], p.stdout)

    def test_config_print_output_is_a_valid_config(self):
        p = run_chatto(["config", "print", "--show-secrets"], env=dict(SECRETS))
        path = os.path.join(self.tmp, "printed.ini")
        with open(path, "w") as f:
            f.write(p.stdout)
        q = run_chatto(["config", "check", "-c", path])
        self.assertEqual(q.returncode, 0, q.stderr)

    def test_init_writes_private_config_with_secrets(self):
        path = os.path.join(self.tmp, "new.ini")
        p = run_chatto(["init", path])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        text = open(path).read()
        self.assertRegex(text, r'\ncookie_signing_secret = "[A-Za-z0-9_-]{43}"\n')
        self.assertRegex(text, r'\nsecret_key = "[A-Za-z0-9_-]{43}"\n')
        p2 = run_chatto(["init", path])
        self.assertEqual(p2.returncode, 1)
        self.assertIn("refusing to overwrite", p2.stderr)
        self.assertEqual(open(path).read(), text)
        q = run_chatto(["config", "check", "-c", path])
        self.assertEqual(q.returncode, 0, q.stderr)

    def test_version(self):
        p = run_chatto(["version"])
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^chatto \d+\.\d+\.\d+")
