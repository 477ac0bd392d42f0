# SPDX-License-Identifier: MIT
"""The web client end to end in Debian's headless Chromium (test/browser/e2e.mjs, playwright-core)."""
import os
import shutil
import subprocess
import unittest

from harness import BUILD, ROOT, TIME_SCALE


class Browser(unittest.TestCase):
    def test_web_client_end_to_end(self):
        chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        if not os.path.exists(chromium):
            self.fail("Debian's chromium is not installed (make test installs it)")
        if not os.path.isdir(os.path.join(ROOT, "test", "browser", "node_modules", "playwright-core")):
            self.fail("playwright-core is not installed in test/browser (make test installs it)")
        env = dict(os.environ, CHATTO_TEST_BUILD=BUILD, CHATTO_TEST_TIME_SCALE=str(TIME_SCALE))
        p = subprocess.run([shutil.which("node") or "node", os.path.join(ROOT, "test", "browser", "e2e.mjs")],
                           capture_output=True, text=True, env=env, timeout=600 * TIME_SCALE)
        print(p.stdout[-6000:])
        self.assertEqual(p.returncode, 0, p.stdout[-6000:] + p.stderr[-3000:])
        self.assertIn(" 0 failed", p.stdout)
