"""The browser view in a real browser: Debian's Chromium driven by Playwright (``executable_path``; no browser is
downloaded), against ``abm-markets viz`` served on 127.0.0.1.

Checked: the page loads with no request leaving the machine (every request is routed, any other host is
aborted and recorded), Step, Play and Reset change the numbers shown, a changed setting takes effect on Reset, a
run directory's learned market is shown (status line, learning curves, trading network), the console has no
errors and the page no traceback. ``.ci/run`` installs Chromium when it is absent.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from abm_markets.cli import main

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(args: list[str], tmp: Path) -> Iterator[str]:
    port = _free_port()
    log = open(tmp / f"viz-{port}.log", "w")  # noqa: SIM115 (closed below)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "abm_markets", "viz", *args, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp / f"viz-{port}.log").read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the viz server did not start in 180 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and anything it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


class Browser:
    """One Chromium page with every request routed (other hosts aborted and recorded) and the console kept."""

    def __init__(self, pw: object, url: str) -> None:
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)  # type: ignore[attr-defined]
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 1100})
        self.external: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))

        def route(r: object) -> None:
            host = urlparse(r.request.url).hostname  # type: ignore[attr-defined]
            if host in ("127.0.0.1", "localhost") or r.request.url.startswith("data:"):  # type: ignore[attr-defined]
                r.continue_()  # type: ignore[attr-defined]
            else:
                self.external.append(r.request.url)  # type: ignore[attr-defined]
                r.abort()  # type: ignore[attr-defined]

        self.page.route("**/*", route)
        self.page.goto(url, wait_until="networkidle", timeout=120_000)
        self.wait_status(r"period 0 ")

    def status(self) -> str:
        return self.page.locator(".abm-status").first.inner_text()

    def wait_status(self, pattern: str, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            loc = self.page.locator(".abm-status")
            if loc.count():
                text = loc.first.inner_text()
                if re.search(pattern, text):
                    return text
            self.page.wait_for_timeout(250)
        shown = self.status() if self.page.locator(".abm-status").count() else "(none)"
        pytest.fail(f"status line never matched {pattern!r}: {shown}")

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=re.compile(f"^{re.escape(name)}$", re.IGNORECASE)).click()

    def figures(self) -> list[str]:
        return [img.get_attribute("src") or "" for img in self.page.locator("img").all()]

    def check_clean(self) -> None:
        assert self.external == [], self.external
        assert self.console_errors == [], self.console_errors
        assert "Traceback" not in self.page.inner_text("body")

    def close(self) -> None:
        self.browser.close()


def _mean_capital(status: str) -> float:
    return float(re.search(r"mean capital ([0-9.]+)", status).group(1))  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def playwright_ctx() -> Iterator[object]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


def test_default_page_steps_plays_resets_and_takes_settings(
    playwright_ctx: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("viz")
    for url in _serve([], tmp):
        b = Browser(playwright_ctx, url)
        try:
            start = b.status()
            assert "market posted" in start and "N^h = 10" in start
            before = b.figures()
            b.click("STEP")
            one = b.wait_status(r"period 1 ")
            assert _mean_capital(one) != _mean_capital(start)
            b.page.wait_for_timeout(500)
            assert b.figures() != before  # the plots were redrawn
            b.click("▶")
            b.page.wait_for_timeout(2500)
            b.page.locator("button").nth(1).click()  # the same button, now pause
            played = int(re.search(r"period (\d+)", b.status()).group(1))  # type: ignore[union-attr]
            assert played > 1
            # a setting takes effect on Reset: the market
            market = b.page.locator(".v-input", has=b.page.locator("label", has_text=re.compile("^Market$")))
            market.locator(".v-select__slot").click()
            b.page.locator(".menuable__content__active .v-list-item").filter(has_text=re.compile("^walrasian$")).click()
            b.click("RESET")
            b.wait_status(r"period 0 .*market walrasian")
            b.click("STEP")
            b.wait_status(r"period 1 .*market walrasian")
            b.page.screenshot(path=str(tmp / "default.png"), full_page=True)
            b.check_clean()
        finally:
            b.close()


def test_run_directory_shows_the_learned_market(
    playwright_ctx: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("viz-run")
    run = tmp / "run"
    settings = [
        "n_households=4",
        "firms=learning",
        "firms_per_good=2",
        "market=bilateral",
        "network=random",
        "train_iterations=2",
        "eval_every=1",
        "exploit_iterations=0",
        "eval_periods=20",
        "eval_paths=2",
        "train_economies=64",
    ]
    argv = ["run", "market-learning", "--out", str(run), "--no-progress"]
    for s in settings:
        argv += ["--set", s]
    assert main(argv) == 0
    for url in _serve(["--run", str(run)], tmp):
        b = Browser(playwright_ctx, url)
        try:
            text = b.status()
            assert "learned policies: firms, households" in text and "market bilateral" in text
            body = b.page.inner_text("body")
            assert "Learned market" in body
            n_figures = len([s for s in b.figures() if s.startswith(("blob:", "data:image/png"))])
            assert n_figures >= 6  # plots, learning curves, reference lines, bars, trading network
            b.click("STEP")
            b.click("STEP")
            b.wait_status(r"period 2 ")
            b.page.screenshot(path=str(tmp / "run.png"), full_page=True)
            b.check_clean()
        finally:
            b.close()
