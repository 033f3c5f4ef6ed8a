"""Take docs/console.png: the portfolio page of a running console, signed in with a key.

    credo demo                      # prints the demo-console key on its last line
    credo serve &                   # http://127.0.0.1:8000
    .venv/bin/python scripts/console_screenshot.py http://127.0.0.1:8000 credo_...

Needs the dev extra (Playwright) and Debian's chromium (scripts/setup.sh dev installs both).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "docs" / "console.png"


def main(base: str, key: str, path: str = "/console/portfolio") -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(base + "/console/sign-in")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.goto(base + path)
        page.screenshot(path=str(OUT))
        browser.close()
    print(OUT)


if __name__ == "__main__":
    main(*sys.argv[1:])
