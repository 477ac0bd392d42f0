# SPDX-License-Identifier: MIT
"""Docs cannot drift from the code: --help, chatto init, etc/chatto.ini and both man pages list every key of the key
table, and docs/api.md documents every Connect method of the route tables (and nothing else)."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT, TestCase, run_chatto

API_DOC = os.path.join(ROOT, "docs", "api.md")

# Methods that docs/api.md documents ahead of their branch's merge into main (each section says which branch).
# Once a branch is merged its tables hold these methods and its lines here can go; until then they are the only
# documented methods allowed to be missing from the route tables.
UNMERGED_METHODS = set()  # "Service/Method" documented ahead of a branch's merge (none now)


def table():
    """(dotted, env, longflag or None) for every KEY(...) row of lib/config/keys.def."""
    rows = []
    text = open(os.path.join(ROOT, "lib", "config", "keys.def")).read()
    for m in re.finditer(r'^KEY\(\s*\w+,\s*"([^"]+)",\s*"([^"]+)",.*?,\s*([^,]*CFG_F_[^,]*|0),\s*"[^"]*"\)\s*$', text,
                         re.M):
        section, name, flags = m[1], m[2], m[3]
        dotted = section + "." + name
        env = "CHATTO_" + dotted.upper().replace(".", "_")
        flag = None if "CFG_F_SECRET" in flags else dotted.replace(".", "-").replace("_", "-")
        rows.append((dotted, env, flag))
    return rows


def keys_in_ini(text):
    """Dotted keys set or commented out in an INI text."""
    keys, section = set(), None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1]
            continue
        m = re.match(r"^#?([a-z_]+) = ", s)
        if m and section:
            keys.add(section + "." + m[1])
    return keys


class Docs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rows = table()
        assert len(cls.rows) > 50, "keys.def parse failed"
        cls.man1 = open(os.path.join(ROOT, "man", "chatto.1")).read().replace("\\-", "-")
        cls.man5 = open(os.path.join(ROOT, "man", "chatto.ini.5")).read().replace("\\-", "-")
        cls.help = run_chatto(["--help"]).stdout

    def test_every_flag_and_env_is_documented(self):
        for dotted, env, flag in self.rows:
            with self.subTest(key=dotted):
                # --help names the flag, or for flagless secrets the environment variable
                self.assertIn("--" + flag if flag else env, self.help)
                self.assertIn(env, self.man1)
                self.assertIn(env, self.man5)
                self.assertIn(dotted, self.man1)
                if flag:
                    self.assertIn("--" + flag, self.man1)
                    self.assertIn("--" + flag, self.man5)
                name = dotted.rsplit(".", 1)[1]
                self.assertRegex(self.man5, r"\.B %s\n" % re.escape(name.replace("-", "\\-")))

    def test_generated_files_are_current(self):
        # gendoc is a build tool, not the code under test: always the plain build's. B=build is explicit because
        # `make B=build/x test` passes its B down to this make through MAKEFLAGS, and build/gendoc has no rule then
        gendoc = os.path.join(ROOT, "build", "gendoc")
        subprocess.run(["make", "-s", "-C", ROOT, "B=build", "build/gendoc"], check=True)
        ini = subprocess.run([gendoc, "ini"], capture_output=True, text=True, check=True).stdout
        self.assertEqual(ini, open(os.path.join(ROOT, "etc", "chatto.ini")).read(), "run make docs")
        for kind, src, out in (("man1", "chatto.1.in", "chatto.1"), ("man5", "chatto.ini.5.in", "chatto.ini.5")):
            with open(os.path.join(ROOT, "man", src)) as f:
                got = subprocess.run([gendoc, kind], stdin=f, capture_output=True, text=True, check=True).stdout
            self.assertEqual(got, open(os.path.join(ROOT, "man", out)).read(), "run make docs")

    def test_help_init_and_example_list_the_same_keys(self):
        want = {d for d, _, _ in self.rows}
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "x.ini")
            self.assertEqual(run_chatto(["init", path]).returncode, 0)
            self.assertEqual(keys_in_ini(open(path).read()), want)
        finally:
            shutil.rmtree(tmp)
        self.assertEqual(keys_in_ini(open(os.path.join(ROOT, "etc", "chatto.ini")).read()), want)
        help_keys = set()
        for dotted, env, flag in self.rows:
            if (flag and "--" + flag in self.help) or env in self.help:
                help_keys.add(dotted)
        self.assertEqual(help_keys, want)

    def test_example_config_is_valid(self):
        r = run_chatto(["config", "check", "-c", os.path.join(ROOT, "etc", "chatto.ini")])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_man_pages_render_without_warnings(self):
        if not shutil.which("groff"):
            self.skipTest("groff is not installed")
        for page in ("chatto.1", "chatto.ini.5"):
            r = subprocess.run(["groff", "-ww", "-man", "-z", os.path.join(ROOT, "man", page)], capture_output=True,
                               text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)


def route_table_methods():
    """"pkg.Service/Method" of every row of every method table the Connect router searches: the tables named in
    server/api/routes.c's tables[], each found as `const struct api_method NAME[] = { ... };` in server/api/*.c."""
    api = os.path.join(ROOT, "server", "api")
    m = re.search(r"\btables\[\]\s*=\s*\{(.*?)\};", open(os.path.join(api, "routes.c")).read(), re.S)
    assert m, "routes.c: no tables[] found"
    names = set(re.findall(r"\b(\w+_methods)\b", m[1]))
    assert names, "routes.c: tables[] names no method table"
    found, methods = set(), set()
    for fn in sorted(os.listdir(api)):
        if not fn.endswith(".c"):
            continue
        text = open(os.path.join(api, fn)).read()
        for t in re.finditer(r"\bconst\s+struct\s+api_method\s+(\w+)\[\]\s*=\s*\{(.*?)\n\};", text, re.S):
            if t[1] not in names:
                continue
            found.add(t[1])
            rows = re.findall(r'\{\s*"(chatto\.[a-z]+\.v\d+\.\w+)"\s*,\s*"(\w+)"\s*,', t[2])
            assert rows, "%s: table %s has no rows the test can read" % (fn, t[1])
            methods.update("%s/%s" % r for r in rows)
    assert found == names, "method tables not found in server/api/*.c: %s" % sorted(names - found)
    return methods


def prose_lines(text):
    """(line number, line) of a Markdown text outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield n, line


def documented_methods(text):
    """"pkg.Service/Method" for every `### Service/Method` heading of docs/api.md, under the `## pkg.Service`
    heading of its service. Raises on a method heading outside its service's section or a repeated one."""
    service, seen = None, []
    for n, line in prose_lines(text):
        m = re.match(r"^## (chatto\.[a-z]+\.v\d+\.(\w+))\s*$", line)
        if m:
            service = m[1]
            continue
        if line.startswith("## "):
            service = None
            continue
        m = re.match(r"^### (\w+)/(\w+)\s*$", line)
        if m:
            if not service or service.rsplit(".", 1)[1] != m[1]:
                raise AssertionError("docs/api.md:%d: %s/%s is not under its service's heading" % (n, m[1], m[2]))
            full = "%s/%s" % (service, m[2])
            if full in seen:
                raise AssertionError("docs/api.md:%d: %s documented twice" % (n, full))
            seen.append(full)
    return set(seen)


def heading_slug(heading):
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


class ApiReference(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = open(API_DOC).read()
        cls.tables = route_table_methods()
        cls.documented = documented_methods(cls.text)

    def test_every_route_table_method_is_documented(self):
        self.assertGreater(len(self.tables), 50, "route table parse failed")
        missing = sorted(self.tables - self.documented)
        self.assertEqual(missing, [], "add a ### Service/Method section to docs/api.md for each")

    def test_every_documented_method_exists(self):
        stale = sorted(self.documented - self.tables - UNMERGED_METHODS)
        self.assertEqual(stale, [], "docs/api.md documents methods the server does not have")

    def test_unmerged_methods_are_marked_as_such(self):
        # each service documented ahead of its merge says so in its section
        for full in sorted(UNMERGED_METHODS & self.documented - self.tables):
            service = full.split("/")[0]
            section = self.text.split("## " + service + "\n", 1)[1].split("\n## ", 1)[0]
            self.assertRegex(section, r"From the `\w+` branch", service)

    def test_links_inside_the_document_resolve(self):
        slugs = {heading_slug(line.lstrip("#")) for _, line in prose_lines(self.text) if re.match(r"#{1,4} ", line)}
        for anchor in re.findall(r"\]\(#([^)]+)\)", self.text):
            self.assertIn(anchor, slugs, "docs/api.md links to #%s, which no heading makes" % anchor)

    def test_the_server_routes_every_method_it_documents(self):
        """Asked without credentials, a method that exists answers 401 (or 200 when public) and one that does not
        answers 404 unimplemented: the parse of the C tables above agrees with the running server."""
        c = self.chatto()
        for full in sorted(self.tables | self.documented):
            with self.subTest(method=full):
                r = c.connect(full, {})
                code = r.json().get("code") if r.status != 200 else None
                if full in self.tables:
                    self.assertIn(r.status, (200, 401), r)
                else:  # documented ahead of a merge: not routed yet
                    self.assertEqual((r.status, code), (404, "unimplemented"), r)

    def test_readme_links_the_reference(self):
        self.assertIn("docs/api.md", open(os.path.join(ROOT, "README.md")).read())
