"""The web console: server-rendered pages at /console/ for credit controllers and auditors.

Pages are Jinja2 templates (autoescaped), charts are SVG drawn on the server, forms are plain
HTML forms with a CSRF token; the little CSS there is comes from this package (no CDN, no
build step), and every page works without JavaScript. A page calls the same use cases as the
API (api.decision_views, api.run_views, api.customer_views, api.usecases…), never storage
directly for anything the API also does.

Sign-in is by API key (api.console.access); the session is Flask's signed cookie, Secure,
HttpOnly, SameSite=Strict, scoped to /console, signed with `[console] secret_key` (default: a
random key kept in the data directory).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, request

from api.settings import Settings

SECRET_FILE = "console_secret_key"
# What every console response may load and where its forms may go: nothing inline, nothing
# from elsewhere, never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def console_secret(settings: Settings) -> str:
    """`[console] secret_key`, or the data directory's generated one (made on first use;
    processes starting together all read the one that was made first)."""
    if settings.console.secret_key:
        return settings.console.secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(temporary, path)  # fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path}: the console's secret key is too short; delete the file")
    return secret


def _secure_headers(response: Response) -> Response:
    if request.path == "/console" or request.path.startswith("/console/"):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith("/console/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Register the console's pages and its session settings on the app."""
    # Importing the page modules registers their pages on the blueprint.
    from api.console import (  # noqa: F401
        audit,
        audit_records,
        customers,
        decision_audit,
        decisions,
        home,
        portfolio,
        rollout,
        rulesets,
        simulations,
    )
    from api.console.blueprint import bp

    app.secret_key = console_secret(settings)
    app.config.update(
        SESSION_COOKIE_NAME="credo_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_SECURE=True,  # browsers keep Secure cookies of http://localhost too
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.console.session_hours),
    )
    app.register_blueprint(bp)
    app.after_request(_secure_headers)
