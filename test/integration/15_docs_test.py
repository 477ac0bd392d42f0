# SPDX-License-Identifier: MIT
"""Docs cannot drift from the key table: --help, chatto init, etc/chatto.ini and both man pages list every key."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT, run_chatto


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
