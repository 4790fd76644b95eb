"""Screenshots of the browser view for docs/frontends.md: ``python docs/scripts/viz_screenshots.py [RUN_DIR]``.

Serves ``abm-markets viz`` (and ``abm-markets viz --run RUN_DIR``) on 127.0.0.1, opens each page in Debian's
Chromium through Playwright, steps the model 40 periods (one Step at a time) and writes ``docs/img/viz_default.png`` and
``docs/img/viz_learned_market.png``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

IMG = Path(__file__).resolve().parents[1] / "img"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]


def shoot(extra: list[str], port: int, name: str, steps: int = 40) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "abm_markets", "viz", *extra, "--port", str(port)])
    try:
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle", timeout=120_000)
            page.locator(".abm-status").first.wait_for()
            step = page.get_by_role("button", name=re.compile("^step$", re.IGNORECASE))
            status = page.locator(".abm-status").first
            for i in range(steps):
                step.click()
                for _ in range(200):  # each Step is drawn before the next click
                    if f"period {i + 1} " in status.inner_text():
                        break
                    page.wait_for_timeout(100)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(IMG / name), full_page=True)
            browser.close()
    finally:
        proc.terminate()  # `abm-markets viz` execs the server: this stops it
        proc.wait()


if __name__ == "__main__":
    shoot([], 8791, "viz_default.png")
    if len(sys.argv) > 1:
        shoot(["--run", sys.argv[1]], 8792, "viz_learned_market.png")
