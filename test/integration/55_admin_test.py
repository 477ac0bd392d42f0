# SPDX-License-Identifier: MIT
"""Roles, disabling accounts and bot API keys, across two processes."""
from harness import FAST_AUTH, Client, TestCase, external_env

ME = "chatto.api.v1.MyAccountService/GetMyAccount"
ADMIN = "chatto.admin.v1.AdminUserService/"


class Admin(TestCase):
    def setUp(self):
        super().setUp()
        n = self.nats(token="admin-test-token")
        env = external_env(n)
        self.a = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        self.b = self.chatto(embedded=False, env=env, args=FAST_AUTH)
        self.owner = Client(self.a)
        self.owner.register("owner", token=True)
        self.member = Client(self.b)
        self.member_id = self.member.register("member", token=True).json()["user"]["id"]
        self.other = Client(self.a)
        self.other_id = self.other.register("other").json()["user"]["id"]

    def test_members_cannot_use_admin_calls(self):
        for m, body in (("ListUsers", {}), ("SetRole", {"userId": self.other_id, "role": "admin"}),
                        ("DisableUser", {"userId": self.other_id}), ("CreateBot", {"login": "b"}),
                        ("RotateBotApiKey", {"userId": self.other_id})):
            r = self.member.call(ADMIN + m, body)
            self.assertEqual((r.status, r.json()["code"]), (403, "permission_denied"), m)
            r = self.a.connect(ADMIN + m, body)
            self.assertEqual(r.status, 401, m)

    def test_roles(self):
        r = self.owner.ok(ADMIN + "SetRole", {"userId": self.member_id, "role": "admin"})
        self.assertEqual(r["user"]["role"], "admin")
        admin = self.member  # now an admin, on process B
        self.assertEqual(admin.ok(ME)["user"]["role"], "admin")
        listing = admin.ok(ADMIN + "ListUsers", {})["users"]
        self.assertEqual([u["role"] for u in listing], ["owner", "admin", "member"])
        owner_id = listing[0]["id"]
        # an admin may promote a member to admin, but not touch the owner, nor make owners, nor change itself
        self.assertEqual(admin.ok(ADMIN + "SetRole", {"userId": self.other_id, "role": "admin"})["user"]["role"],
                         "admin")
        for body in ({"userId": owner_id, "role": "member"}, {"userId": self.other_id, "role": "owner"},
                     {"userId": self.member_id, "role": "member"}):
            self.assertEqual(admin.call(ADMIN + "SetRole", body).status, 403, body)
        # the last owner cannot step down; after naming another owner it can
        self.assertEqual(self.owner.call(ADMIN + "SetRole", {"userId": owner_id, "role": "member"}).status, 403)
        self.owner.ok(ADMIN + "SetRole", {"userId": self.other_id, "role": "owner"})
        r = Client(self.b, cookie=self.other.cookie).ok(ADMIN + "SetRole", {"userId": owner_id, "role": "member"})
        self.assertEqual(r["user"]["role"], "member")
        bad = self.owner.call(ADMIN + "SetRole", {"userId": self.member_id, "role": "god"})
        self.assertEqual(bad.status, 403)  # the former owner is a member now
        bad = Client(self.a, cookie=self.other.cookie).call(ADMIN + "SetRole",
                                                            {"userId": self.member_id, "role": "god"})
        self.assertEqual((bad.status, bad.json()["message"]), (400, "role: must be member, admin or owner"))
        bad = Client(self.a, cookie=self.other.cookie).call(ADMIN + "SetRole", {"userId": "x.y", "role": "admin"})
        self.assertEqual(bad.status, 400)

    def test_disable_kills_sessions_everywhere(self):
        victim = Client(self.a)
        victim.login("member")
        self.assertEqual(victim.call(ME).status, 200)
        r = self.owner.ok(ADMIN + "DisableUser", {"userId": self.member_id})
        self.assertTrue(r["user"]["disabled"])
        for proc in (self.a, self.b):
            self.assertEqual(Client(proc, cookie=victim.cookie).call(ME).status, 401)
            self.assertEqual(Client(proc, token=self.member.token).call(ME).status, 401)
        r = Client(self.b).login("member")
        self.assertEqual((r.status, r.json()["code"]), (403, "permission_denied"))
        users = self.owner.ok("chatto.api.v1.UserService/ListUsers", {})["users"]
        self.assertNotIn(self.member_id, [u["id"] for u in users])
        users = self.owner.ok(ADMIN + "ListUsers", {"includeDisabled": True})["users"]
        self.assertIn(self.member_id, [u["id"] for u in users])
        self.owner.ok(ADMIN + "EnableUser", {"userId": self.member_id})
        self.assertEqual(Client(self.b).login("member").status, 200)
        # nobody disables themselves; the old credentials stay dead
        self.assertEqual(self.owner.call(ADMIN + "DisableUser", {"userId": self.owner.ok(ME)["user"]["id"]}).status,
                         403)
        self.assertEqual(Client(self.a, token=self.member.token).call(ME).status, 401)

    def test_bots_and_api_keys(self):
        r = self.owner.ok(ADMIN + "CreateBot", {"login": "deploy-bot", "displayName": "Deploy Bot"})
        bot = r["user"]
        key = r["apiKey"]
        self.assertTrue(bot["isBot"])
        self.assertTrue(key.startswith("chatto_b_"))
        for proc in (self.a, self.b):
            me = Client(proc, token=key).ok(ME)["user"]
            self.assertEqual((me["id"], me["isBot"]), (bot["id"], True))
        # a bot has no password: it cannot log in
        self.assertEqual(Client(self.a).login("deploy-bot").status, 401)
        # the key is shown once: it is not in any listing
        self.assertNotIn(key, self.owner.call(ADMIN + "ListUsers", {}).body.decode())
        # rotation: the old key dies on every process, the new one works
        new = self.owner.ok(ADMIN + "RotateBotApiKey", {"userId": bot["id"]})["apiKey"]
        self.assertNotEqual(new, key)
        for proc in (self.a, self.b):
            self.assertEqual(Client(proc, token=key).call(ME).status, 401)
            self.assertEqual(Client(proc, token=new).call(ME).status, 200)
        r = self.owner.call(ADMIN + "RotateBotApiKey", {"userId": self.member_id})
        self.assertEqual(r.status, 400)
        r = self.owner.call(ADMIN + "CreateBot", {"login": "member"})
        self.assertEqual(r.status, 409)
        # disabling a bot kills its key
        self.owner.ok(ADMIN + "DisableUser", {"userId": bot["id"]})
        self.assertEqual(Client(self.b, token=new).call(ME).status, 401)
        # bots do not count toward ownership or limits; the first human stays the only owner
        roles = [u["role"] for u in self.owner.ok(ADMIN + "ListUsers", {"includeDisabled": True})["users"]]
        self.assertEqual(roles.count("owner"), 1)
