"""Helpers of the console tests (imported as `console_support`)."""

from __future__ import annotations

import re

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client, key: str, next_path: str | None = None):
    """Sign the test client in with `key`; return the session's CSRF token."""
    page = client.get("/console/sign-in")
    token = csrf_from(page.get_data(as_text=True))
    data = {"key": key, "csrf_token": token}
    if next_path:
        data["next"] = next_path
    response = client.post("/console/sign-in", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    home = client.get("/console/")
    return csrf_from(home.get_data(as_text=True))
