"""Who is signed in to the console, what their role lets them open, and the forms' CSRF token.

A person signs in with an API key (storage.keys verifies it as the API does); the session
cookie then holds the key's id, name, role and owner, never the key itself. Every console
request looks the key up again by id, so a revoked key is signed out at its next click.
Pages name the roles they accept with `require_page`, which sets the same `credo_roles`
attribute as the API's `require_role`, so one test reads every route's roles from Flask's
url_map. Every POST carries the session's CSRF token in a hidden field.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, g, redirect, request, session, url_for

from storage.keys import ROLES

ADMIN = "admin"
# The attribute api.http.auth.declared_roles reads: the roles whose keys a view accepts.
ROLES_ATTRIBUTE = "credo_roles"
CSRF_FIELD = "csrf_token"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Person:
    """The key someone signed in with (from the session, checked against storage)."""

    key_id: int
    name: str
    role: str
    owner: str

    def may(self, roles: tuple[str, ...]) -> bool:
        return self.role == ADMIN or self.role in roles


@dataclass(frozen=True)
class Section:
    """A part of the console in the navigation, with the roles that may open it."""

    endpoint: str
    label: str
    roles: tuple[str, ...]
    offers: str  # what it shows, for the "another role would add" note


# Each page declares its own roles with require_page; these are the navigation's entries.
DECISION_ROLES = ("analyst", "auditor")
PORTFOLIO_ROLES = ("decide", "analyst", "auditor")
CUSTOMER_ROLES = ("analyst", "auditor")
RULESET_ROLES = ("analyst", "approver", "auditor")
AUDIT_ROLES = ("auditor",)
# As the API: POST …/simulate and …/backtest take an analyst, GET /v1/jobs/{id} an analyst or
# an auditor.
SIMULATE_ROLES = ("analyst",)
JOB_ROLES = ("analyst", "auditor")
SECTIONS = (
    Section("console.portfolio", "Portfolio", PORTFOLIO_ROLES, "aging, DSO and CEI per currency"),
    Section("console.runs", "Runs", PORTFOLIO_ROLES, "run reports and the worklist with its CSV"),
    Section("console.decisions", "Decisions", DECISION_ROLES, "every decision with its trace"),
    Section("console.customers", "Customers", CUSTOMER_ROLES, "ledger timelines and facts"),
    Section(
        "console.rulesets",
        "Rule sets",
        RULESET_ROLES,
        "rules, tests and history; analysts draft, test, simulate and propose, approvers "
        "approve and activate",
    ),
    Section(
        "console.audit_verify",
        "Audit",
        AUDIT_ROLES,
        "the decision chain verified with its head hash, the operator log and the exports; "
        "replay and version evidence on a decision's page",
    ),
)


def current_person() -> Person | None:
    """The person signed in on this request, or None."""
    return g.get("console_person")


def sign_in(key: Any) -> None:
    """Start a fresh session for a verified key (storage.keys.KeyInfo)."""
    session.clear()
    session.permanent = True
    session["key"] = {"id": key.id, "name": key.name, "role": key.role, "owner": key.owner}
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def load_person() -> None:
    """Set g.console_person from the session, dropping a session whose key was revoked,
    deleted or changed since it signed in (checked on every request)."""
    from storage.keys import get_key

    g.console_person = None
    stored = session.get("key")
    if not isinstance(stored, dict):
        return
    key = get_key(stored.get("id")) if isinstance(stored.get("id"), int) else None
    if key is None or key.revoked_at is not None or key.role != stored.get("role"):
        session.clear()
        session["notice"] = "Your key was revoked or changed: sign in again."
        return
    g.console_person = Person(key.id, key.name, key.role, key.owner)


def csrf_token() -> str:
    """The session's CSRF token (made on first use), for the hidden field of every form."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """Refuse (400) a POST whose form does not carry the session's CSRF token."""
    if request.method != "POST":
        return
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), sent.encode("utf-8", "replace")
    ):
        abort(400, "This form has expired or did not come from this console: reload the page.")


def require_page(*roles: str) -> Callable[[F], F]:
    """Let the page open for a signed-in key with one of `roles` (admin always). Without a
    session: a redirect to the sign-in page, coming back here after; wrong role: 403 page."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    accepted = tuple(roles) if ADMIN in roles else (*roles, ADMIN)

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            person = current_person()
            if person is None:
                return redirect(url_for("console.sign_in", next=_here()))
            if not person.may(accepted):
                g.console_needed = accepted
                abort(403)
            return func(*args, **kwargs)

        setattr(wrapper, ROLES_ATTRIBUTE, accepted)
        return wrapper  # type: ignore[return-value]

    return decorator


def _here() -> str:
    path = request.full_path if request.query_string else request.path
    return path if request.method == "GET" else request.path


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path on this site, else the console's home."""
    parts = urlsplit(target or "")
    if (
        target
        and not parts.scheme
        and not parts.netloc
        and parts.path.startswith("/console/")
        and "\\" not in target
        and not target.startswith("//")
    ):
        return target
    return url_for("console.home")


def role_text(roles: tuple[str, ...]) -> str:
    """'analyst or auditor' for the roles a page names (admin left implicit)."""
    names = [r for r in roles if r != ADMIN] or [ADMIN]
    return " or ".join(names)
