# SPDX-License-Identifier: MIT
"""Accounts, sessions and tokens on two chatto processes sharing one NATS server."""
import os
import subprocess
import threading
import time

from harness import FAST_AUTH, TIME_SCALE, Client, TestCase, external_env, grep_tree, http_request

ME = "chatto.api.v1.MyAccountService/GetMyAccount"


class TwoProcesses(TestCase):
    extra_args = []
    extra_env = {}

    def setUp(self):
        super().setUp()
        self.n = self.nats(token="accounts-test-token")
        env = external_env(self.n, **self.extra_env)
        self.a = self.chatto(embedded=False, env=env, args=FAST_AUTH + self.extra_args)
        self.b = self.chatto(embedded=False, env=env, args=FAST_AUTH + self.extra_args)


class Accounts(TwoProcesses):
    extra_args = ["--auth-register-max-per-ip", "0"]  # races of many registrations from one address below
    def test_register_on_a_login_on_b_cookie_and_token_work_everywhere(self):
        alice = Client(self.a)
        r = alice.register("Alice", display="Alice Liddell", token=True)
        self.assertEqual(r.status, 200, r)
        u = r.json()["user"]
        self.assertEqual(u["login"], "alice")  # case-folded
        self.assertEqual(u["displayName"], "Alice Liddell")
        self.assertEqual(u["role"], "owner")  # the first account owns the server
        sc = r.header("Set-Cookie")
        self.assertIn("HttpOnly", sc)
        self.assertIn("SameSite=Lax", sc)
        self.assertIn("Path=/", sc)
        self.assertNotIn("Secure", sc)  # http:// URL
        self.assertTrue(alice.token.startswith("chatto_t_"))
        for proc in (self.a, self.b):
            self.assertEqual(Client(proc, cookie=alice.cookie).ok(ME)["user"]["id"], u["id"])
            self.assertEqual(Client(proc, token=alice.token).ok(ME)["user"]["id"], u["id"])
        b_session = Client(self.b)
        r = b_session.login("ALICE")
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(b_session.cookie, alice.cookie)  # a new session id on every login
        self.assertEqual(Client(self.a, cookie=b_session.cookie).ok(ME)["user"]["id"], u["id"])
        bob = Client(self.b)
        self.assertEqual(bob.register("bob").json()["user"]["role"], "member")

    def test_concurrent_registrations_of_one_login_exactly_one_wins(self):
        results = []

        def reg(proc):
            results.append(Client(proc).register("racer").status)

        ts = [threading.Thread(target=reg, args=(self.a if i % 2 else self.b,)) for i in range(50)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(results.count(200), 1, results)
        self.assertEqual(results.count(409), 49, results)

    def test_concurrent_first_registrations_make_exactly_one_owner(self):
        roles = []

        def reg(i, proc):
            r = Client(proc).register("first%d" % i)
            roles.append(r.json()["user"]["role"])

        ts = [threading.Thread(target=reg, args=(i, self.a if i % 2 else self.b)) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(roles).count("owner"), 1, roles)

    def test_logout_revokes_everywhere_at_once(self):
        alice = Client(self.a)
        alice.register("alice", token=True)
        other = Client(self.b)
        other.login("alice")
        # every process has just verified (and so keeps) every credential: a revocation must still win at once
        for proc in (self.a, self.b):
            for c in (Client(proc, cookie=alice.cookie), Client(proc, token=alice.token), other.on(proc)):
                self.assertEqual(c.call(ME).status, 200)
        # cookie logout on A: the same cookie is refused by B on the very next request
        self.assertEqual(Client(self.a, cookie=alice.cookie).logout().status, 200)
        self.assertEqual(Client(self.b, cookie=alice.cookie).call(ME).status, 401)
        self.assertEqual(Client(self.a, cookie=alice.cookie).call(ME).status, 401)
        # the token and the other session are untouched
        self.assertEqual(Client(self.b, token=alice.token).call(ME).status, 200)
        self.assertEqual(other.call(ME).status, 200)
        # bearer logout on B revokes that token on A
        self.assertEqual(Client(self.b, token=alice.token).logout().status, 200)
        self.assertEqual(Client(self.a, token=alice.token).call(ME).status, 401)
        # logout without credentials is harmless
        self.assertEqual(Client(self.a).logout().status, 200)

    def test_password_change_ends_other_sessions_on_every_process_at_once(self):
        alice = Client(self.a)
        alice.register("alice", token=True)
        phone = Client(self.b)
        phone.login("alice", token=True)
        for proc in (self.a, self.b):  # both processes keep both credentials now
            self.assertEqual(phone.on(proc).call(ME).status, 200)
            self.assertEqual(alice.on(proc).call(ME).status, 200)
        r = alice.call("chatto.api.v1.MyAccountService/UpdatePassword",
                       {"currentPassword": "correct horse battery", "newPassword": "another horse battery"})
        self.assertEqual(r.status, 200, r)
        for proc in (self.a, self.b):
            self.assertEqual(phone.on(proc).call(ME).status, 401)
            self.assertEqual(Client(proc, token=phone.token).call(ME).status, 401)

    def test_tampered_cookie_rejected(self):
        alice = Client(self.a)
        alice.register("alice")
        raw = alice.cookie
        for i in (0, len(raw) // 2, len(raw) - 1):
            flipped = raw[:i] + ("A" if raw[i] != "A" else "B") + raw[i + 1:]
            r = Client(self.b, cookie=flipped).call(ME)
            self.assertEqual(r.status, 401, (i, r))
            self.assertEqual(r.json()["code"], "unauthenticated")
        for junk in ("", "x", "%%%", "A" * 5000):
            self.assertIn(Client(self.a, cookie=junk).call(ME).status, (401,))

    def test_malformed_bearer_rejected(self):
        for tok in ("nope", "chatto_t_", "chatto_t_abc_def", "chatto_t_" + "a" * 10 + "_" + "b" * 43,
                    "chatto_x_abc_" + "A" * 43):
            r = self.a.connect(ME, {}, {"Authorization": "Bearer " + tok})
            self.assertEqual(r.status, 401, tok)
        r = self.a.connect(ME, {}, {"Authorization": "Basic dXNlcjpwdw=="})
        self.assertEqual(r.status, 401)

    def test_cross_site_requests_refused(self):
        alice = Client(self.a)
        alice.register("alice")
        cookie = {"Cookie": "chatto_session=" + alice.cookie}
        # a cross-site form post (text/plain) with the victim's cookie
        r = http_request(self.a.port, "POST", "/api/connect/" + ME, body=b'{"x":1}',
                         headers=dict(cookie, **{"Content-Type": "text/plain", "Origin": "http://evil.test"}))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["code"], "permission_denied")
        # foreign Origin with JSON, and no Origin at all
        self.assertEqual(self.a.connect(ME, {}, dict(cookie, Origin="http://evil.test")).status, 403)
        self.assertEqual(self.a.connect(ME, {}, dict(cookie, Origin="http://localhost:%d.evil.test" %
                                                     self.a.port)).status, 403)
        self.assertEqual(self.a.connect(ME, {}, cookie).status, 403)
        self.assertEqual(self.a.connect(ME, {}, dict(cookie, Origin="null")).status, 403)
        # same-origin by Sec-Fetch-Site is accepted
        self.assertEqual(self.a.connect(ME, {}, dict(cookie, **{"Sec-Fetch-Site": "same-origin"})).status, 200)
        # logout and login from another site
        r = http_request(self.a.port, "POST", "/auth/logout", body=b"",
                         headers=dict(cookie, **{"Content-Type": "application/x-www-form-urlencoded",
                                                 "Origin": "http://evil.test"}))
        self.assertEqual(r.status, 403)
        r = http_request(self.a.port, "POST", "/auth/login", body=b"login=alice&password=correct+horse+battery",
                         headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.test"})
        self.assertEqual(r.status, 403)
        self.assertEqual(Client(self.a, cookie=alice.cookie).call(ME).status, 200)

    def test_form_encoded_login(self):
        Client(self.a).register("formuser", password="p@ss word&=1")
        r = http_request(self.b.port, "POST", "/auth/login",
                         body=b"login=formuser&password=p%40ss+word%26%3D1&issueToken=true",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["token"].startswith("chatto_t_"))
        self.assertTrue(r.header("Set-Cookie").startswith("chatto_session="))

    def test_wrong_credentials_are_generic(self):
        Client(self.a).register("carol")
        unknown = Client(self.b).login("nobody-here")
        wrong = Client(self.b).login("carol", password="not the password")
        self.assertEqual(unknown.status, 401)
        self.assertEqual(wrong.status, 401)
        self.assertEqual(unknown.json(), wrong.json())

    def test_bad_input_names_the_field(self):
        c = Client(self.a)
        cases = [
            ({"password": "correct horse battery"}, "login", "required"),
            ({"login": "x"}, "password", "required"),
            ({"login": "a b", "password": "correct horse battery"}, "login", "may contain only"),
            ({"login": "x" * 33, "password": "correct horse battery"}, "login", "at most 32"),
            ({"login": "shortpw", "password": "1234567"}, "password", "at least 8"),
            ({"login": "longpw", "password": "x" * 1025}, "password", "at most 1024"),
            ({"login": "name", "password": "correct horse battery", "displayName": "x" * 65}, "displayName",
             "at most 64"),
            ({"login": "name", "password": "correct horse battery", "displayName": "a\u0007b"}, "displayName",
             "control"),
            ({"login": 5, "password": "correct horse battery"}, "login", "must be a string"),
            ({"login": "name", "password": "correct horse battery", "issueToken": "yes"}, "issueToken",
             "true or false"),
        ]
        for body, field, msg in cases:
            with self.subTest(field=field, msg=msg):
                r = self.a.post("/auth/register", body, {"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["code"], "invalid_argument")
                self.assertTrue(r.json()["message"].startswith(field + ": "), r.json())
                self.assertIn(msg, r.json()["message"])
        r = self.a.post("/auth/register", b"{nope", {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = self.a.post("/auth/login", b"{}", {"Content-Type": "text/xml"})
        self.assertEqual(r.status, 415)
        self.assertEqual(c.register("okname").status, 200)

    def test_profile_and_directory(self):
        alice = Client(self.a)
        alice.register("alice")
        ids = [alice.ok(ME)["user"]["id"]]
        for i in range(4):
            ids.append(Client(self.b).register("user%d" % i).json()["user"]["id"])
        r = alice.ok("chatto.api.v1.MyAccountService/UpdateProfile", {"displayName": "  Alice L.  "})
        self.assertEqual(r["user"]["displayName"], "Alice L.")
        u = Client(self.b, cookie=alice.cookie).ok("chatto.api.v1.UserService/GetUser", {"userId": ids[0]})["user"]
        self.assertEqual(u["displayName"], "Alice L.")
        self.assertEqual(set(u), {"id", "login", "displayName", "deleted", "isBot", "presenceStatus"})
        seen, token = [], ""
        while True:
            page = alice.ok("chatto.api.v1.UserService/ListUsers", {"pageSize": 2, "pageToken": token})
            seen += [x["id"] for x in page["users"]]
            self.assertLessEqual(len(page["users"]), 2)
            token = page["nextPageToken"]
            if not token:
                break
        self.assertEqual(seen, ids)  # creation order, no gaps, no duplicates
        r = alice.call("chatto.api.v1.UserService/GetUser", {"userId": "no.such"})
        self.assertEqual((r.status, r.json()["code"]), (400, "invalid_argument"))
        r = alice.call("chatto.api.v1.UserService/GetUser", {"userId": "nosuchuser"})
        self.assertEqual((r.status, r.json()["code"]), (404, "not_found"))
        r = alice.call("chatto.api.v1.UserService/ListUsers", {"pageSize": 1000})
        self.assertEqual(r.status, 400)
        self.assertIn("pageSize", r.json()["message"])
        r = alice.call("chatto.api.v1.MyAccountService/UpdateProfile", {"displayName": ""})
        self.assertEqual(r.status, 400)

    def test_password_change_revokes_other_sessions(self):
        alice = Client(self.a)
        alice.register("alice", password="first password", token=True)
        other = Client(self.b)
        other.login("alice", password="first password")
        tok = Client(self.b, token=alice.token)
        r = alice.call("chatto.api.v1.MyAccountService/UpdatePassword",
                       {"currentPassword": "wrong", "newPassword": "second password"})
        self.assertEqual(r.status, 403)
        r = alice.call("chatto.api.v1.MyAccountService/UpdatePassword",
                       {"currentPassword": "first password", "newPassword": "short"})
        self.assertEqual(r.status, 400)
        self.assertIn("newPassword", r.json()["message"])
        # alice's cookie session changes it: her other session and her token die; she stays logged in
        alice_cookie_only = Client(self.a, cookie=alice.cookie)
        alice_cookie_only.ok("chatto.api.v1.MyAccountService/UpdatePassword",
                             {"currentPassword": "first password", "newPassword": "second password"})
        self.assertEqual(alice_cookie_only.call(ME).status, 200)
        self.assertEqual(other.call(ME).status, 401)
        self.assertEqual(tok.call(ME).status, 401)
        self.assertEqual(Client(self.b).login("alice", password="first password").status, 401)
        self.assertEqual(Client(self.b).login("alice", password="second password").status, 200)

    def test_no_secrets_in_logs(self):
        alice = Client(self.a)
        alice.register("alice", password="very secret password 1", token=True)
        Client(self.b).login("alice", password="very secret password 1")
        Client(self.b).login("alice", password="wrong secret password 2")
        alice.logout()
        for proc in (self.a, self.b):
            log = proc.stderr() + proc.stdout()
            for s in ("very secret password", "wrong secret password", alice.token, alice.cookie,
                      alice.token.rsplit("_", 1)[1]):
                self.assertNotIn(s, log)


class PasswordStorage(TestCase):
    def test_only_argon2id_hashes_in_the_store_and_rehash_on_login(self):
        c = self.chatto(args=FAST_AUTH)
        Client(c).register("alice", password="plain text password")
        store = os.path.join(c.data_dir, "jetstream")
        self.assertTrue(grep_tree(store, b"$argon2id$v=19$m=19456,t=2,p=1$"))
        self.assertEqual(grep_tree(store, b"plain text password"), [])
        self.assertEqual(c.stop(), 0)
        # a stronger cost is configured: the next successful login stores the password again at that cost
        c.args = [a for a in c.args if a not in FAST_AUTH]
        c.start()
        self.assertEqual(Client(c).login("alice", password="plain text password").status, 200)
        self.assertTrue(grep_tree(store, b"$argon2id$v=19$m=65536,t=2,p=1$"))
        self.assertEqual(Client(c).login("alice", password="plain text password").status, 200)


class Throttling(TwoProcesses):
    extra_args = ["--auth-login-max-failures", "3", "--auth-login-max-failures-per-ip", "8",
                  "--auth-login-lockout", "30s"]

    def test_account_lockout_429_with_retry_after_across_processes(self):
        Client(self.a).register("dave")
        for i in range(3):
            self.assertEqual(Client(self.a if i % 2 else self.b).login("dave", "bad password!").status, 401)
        r = Client(self.a).login("dave")  # even the right password while locked
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["code"], "resource_exhausted")
        ra = int(r.header("Retry-After"))
        self.assertTrue(0 < ra <= 30, ra)
        self.assertEqual(Client(self.b).login("dave").status, 429)
        # unknown logins are throttled the same way (no enumeration through lockouts)
        for _ in range(3):
            Client(self.a).login("ghost", "bad password!")
        self.assertEqual(Client(self.a).login("ghost", "bad password!").status, 429)

    def test_per_ip_lockout(self):
        for i in range(8):
            self.assertEqual(Client(self.a).login("user%d" % i, "bad password!").status, 401)
        self.assertEqual(Client(self.b).login("someone-else", "bad password!").status, 429)

    def test_unknown_and_wrong_password_take_similar_time(self):
        Client(self.a).register("erin")

        def timed(login):
            t0 = time.monotonic()
            r = Client(self.b).login(login, "bad password!")
            assert r.status in (401, 429)
            return time.monotonic() - t0

        known = min(timed("erin") for _ in range(2))
        unknown = min(timed("nobody%d" % i) for i in range(2))
        self.assertLess(abs(known - unknown), max(known, unknown) * 0.6 + 0.02, (known, unknown))


class PasswordGuessing(TwoProcesses):
    """Guessing is limited per account *and address*, counted before the password is checked, on every process at
    once; a stranger cannot lock the owner out from elsewhere (chatto trusts X-Forwarded-For from 127.0.0.1 here,
    so each test client can speak from an address of its own)."""
    extra_args = ["--webserver-trusted-proxies", "127.0.0.1", "--auth-login-lockout", "60s"]

    def login_from(self, proc, addr, login, password, token=False):
        body = {"login": login, "password": password, "issueToken": token}
        return proc.post("/auth/login", body, {"Content-Type": "application/json", "X-Forwarded-For": addr})

    def test_the_owner_gets_in_from_elsewhere_after_100_wrong_guesses(self):
        self.assertEqual(Client(self.a).register("owner").status, 200)
        for i in range(10):  # one address guesses until it is locked out
            self.assertEqual(self.login_from(self.a, "203.0.113.250", "owner", "wrong %d!" % i).status, 401)
        r = self.login_from(self.a, "203.0.113.250", "owner", "correct horse battery")
        self.assertEqual(r.status, 429, r)  # even the right password, from there
        self.assertTrue(int(r.header("Retry-After")) > 0)

        def botnet(k):  # 90 more guesses from 30 other addresses, on both processes, 10 at a time
            for i in range(k, 90, 10):
                r = self.login_from(self.a if i % 2 else self.b, "203.0.113.%d" % (i // 3 + 1), "owner", "w %d!" % i)
                assert r.status in (401, 429), r

        bots = [threading.Thread(target=botnet, args=(k,)) for k in range(10)]
        for t in bots:
            t.start()
        for t in bots:
            t.join()
        # ...the owner, from a fresh address, is not: slowed down a little at most
        t0 = time.monotonic()
        r = self.login_from(self.b, "198.51.100.9", "owner", "correct horse battery")
        took = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertLess(took, 3.0 * TIME_SCALE, "the owner waited %.1f s" % took)

    def test_concurrent_guesses_never_exceed_the_limit(self):
        self.assertEqual(Client(self.a).register("target").status, 200)
        results = []

        def guess(i):
            r = self.login_from(self.a if i % 2 else self.b, "203.0.113.77", "target", "guess %d!" % i)
            results.append(r.status)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # auth.login_max_failures = 10 (the default): ten guesses were checked, fifty refused before checking
        self.assertEqual(results.count(401), 10, results)
        self.assertEqual(results.count(429), 50, results)

    def test_current_password_guesses_are_throttled(self):
        u = Client(self.a)
        self.assertEqual(u.register("victim", token=True).status, 200)
        statuses = []
        for i in range(30):  # a stolen session trying to change the password it does not know
            r = u.call("chatto.api.v1.MyAccountService/UpdatePassword",
                       {"currentPassword": "guess %d!" % i, "newPassword": "a brand new password"},
                       {"X-Forwarded-For": "203.0.113.99"})
            statuses.append(r.status)
        self.assertEqual(statuses[:10], [403] * 10, statuses)
        self.assertEqual(set(statuses[10:]), {429}, statuses)
        self.assertTrue(int(r.header("Retry-After")) > 0)
        # the owner, from their own address, still can
        r = u.call("chatto.api.v1.MyAccountService/UpdatePassword",
                   {"currentPassword": "correct horse battery", "newPassword": "a brand new password"},
                   {"X-Forwarded-For": "198.51.100.1"})
        self.assertEqual(r.status, 200, r)


class RegistrationRates(TwoProcesses):
    """New accounts are limited per address and overall, on every process at once (a spammer made 200 accounts
    from one address at 14/s, and their hashing slowed real logins down)."""
    extra_args = ["--webserver-trusted-proxies", "127.0.0.1", "--auth-register-max-per-ip", "5",
                  "--auth-register-max", "8", "--auth-register-window", "1h"]

    def register_from(self, proc, addr, login):
        body = {"login": login, "password": "correct horse battery"}
        return proc.post("/auth/register", body, {"Content-Type": "application/json", "X-Forwarded-For": addr})

    def test_per_address_and_overall(self):
        for i in range(5):
            self.assertEqual(self.register_from(self.a if i % 2 else self.b, "203.0.113.5", "spam%d" % i).status, 200)
        r = self.register_from(self.a, "203.0.113.5", "spam5")
        self.assertEqual((r.status, r.json()["code"]), (429, "resource_exhausted"), r)
        self.assertIn("from your address", r.json()["message"])
        self.assertTrue(0 < int(r.header("Retry-After")) <= 3600)
        # a refused registration (login taken) does not use up the address's allowance
        self.assertEqual(self.register_from(self.b, "198.51.100.7", "spam0").status, 409)
        for i in range(3):
            self.assertEqual(self.register_from(self.b, "198.51.100.7", "other%d" % i).status, 200)
        r = self.register_from(self.a, "192.0.2.1", "late")  # 8 accounts made: the server takes no more for now
        self.assertEqual((r.status, r.json()["code"]), (429, "resource_exhausted"), r)
        self.assertIn("no more new accounts", r.json()["message"])
        # logging in is not registering
        self.assertEqual(Client(self.a).login("spam1").status, 200)


class Limits(TwoProcesses):
    extra_env = {"CHATTO_LIMITS_MAX_USERS": "2"}

    def test_max_users(self):
        self.assertEqual(Client(self.a).register("one").status, 200)
        # a failed registration (login taken) does not use up a slot
        self.assertEqual(Client(self.b).register("one").status, 409)
        self.assertEqual(Client(self.b).register("two").status, 200)
        r = Client(self.a).register("three")
        self.assertEqual(r.status, 429)
        self.assertEqual(r.json()["code"], "resource_exhausted")
        self.assertIn("limit of 2 users", r.json()["message"])


class RegistrationSwitches(TwoProcesses):
    extra_env = {"CHATTO_AUTH_DIRECT_REGISTRATION": "false", "CHATTO_AUTH_DIRECT_LOGIN": "false"}

    def test_disabled_registration_and_login(self):
        r = Client(self.a).register("nope")
        self.assertEqual((r.status, r.json()["code"]), (403, "permission_denied"))
        r = Client(self.a).login("nope")
        self.assertEqual((r.status, r.json()["code"]), (403, "permission_denied"))
        info = self.a.connect("chatto.discovery.v1.ServerDiscoveryService/GetServer").json()
        self.assertFalse(info["loginOptions"]["directRegistration"])


class HashConcurrency(TestCase):
    def test_parallel_logins_do_not_exhaust_memory(self):
        c = self.chatto(args=FAST_AUTH + ["--auth-max-concurrent-hashes", "2", "--auth-login-max-failures", "0",
                                          "--auth-login-max-failures-per-ip", "0"])
        Client(c).register("frank")
        statuses = []

        def go():
            # a login may wait up to 10 s for a hashing slot, and then hash: give it longer than that
            r = http_request(c.port, "POST", "/auth/login", body={"login": "frank", "password": "correct horse battery"},
                             timeout=40)
            statuses.append(r.status if r.status == 200 else (r.status, r.json().get("code")))

        ts = [threading.Thread(target=go) for _ in range(200)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        # every login waits its turn for one of the 2 hashing slots, or (on a machine too busy to hash 200 in
        # the 10 s a login may wait) is told to come back; none fails otherwise, and a retry then succeeds
        self.assertEqual(len(statuses), 200)
        self.assertGreater(statuses.count(200), 0, statuses)
        busy = [x for x in statuses if x != 200]
        self.assertEqual(busy, [(503, "unavailable")] * len(busy), busy)
        for _ in busy:
            self.assertEqual(Client(c).login("frank").status, 200)
        with open("/proc/%d/status" % c.pid) as f:
            hwm = [l for l in f if l.startswith("VmHWM")][0]
        peak_kib = int(hwm.split()[1])
        # 2 hashes of 19 MiB at a time, plus the process; 200 unbounded hashes would need ~3.8 GiB
        self.assertLess(peak_kib, 250 * 1024, hwm)
