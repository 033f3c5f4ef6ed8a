"""Browser tests of the web console: a real `credo serve` on a SQLite file filled by
make_data.py (one server per test module), driven by Playwright in Debian's headless Chromium.

They skip, saying why, only where Playwright or Chromium is missing; scripts/setup.sh installs
both (Chromium with apt-get when run as root). Screenshots go to test-artifacts/console/ (or
$CREDO_TEST_ARTIFACTS), which git ignores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
AXE = HERE / "vendor" / "axe.min.js"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CREDO_CHROMIUM", ""), *CHROMIUM_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("CREDO_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A `credo serve` on fresh data: {"url", "keys", "run_id", "as_of"}."""
    data_dir = tmp_path_factory.mktemp("console-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDO_") or k == "CREDO_CONFIG"}
    env["CREDO_PATHS_DATA_DIR"] = str(data_dir)
    made = subprocess.run(
        [sys.executable, str(HERE / "make_data.py"), str(data_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    info = json.loads(made.stdout.strip().splitlines()[-1])
    port = _free_port()
    log = open(data_dir / "serve.log", "w")  # noqa: SIM115 - closed after the server
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        assert process.poll() is None, (data_dir / "serve.log").read_text()
        yield {"url": url, **info}
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: sh scripts/setup.sh dev installs it")
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "Chromium is not installed and could not be (scripts/setup.sh installs Debian's "
            "chromium with apt-get when run as root)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A fresh browser context at desktop width; any JavaScript dialog fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield opened
    context.close()
    assert not dialogs, f"a script ran and opened a dialog: {dialogs}"
