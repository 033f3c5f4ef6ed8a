"""API keys: `Authorization: Bearer <key>`, five roles, admin has them all (SPEC §6).

Keys are stored hashed by storage.keys, which also compares them in constant time; a worker
trusts a key it verified for one second (KEY_CACHE_SECONDS), so revoking takes effect within
that second. Every view
names the roles it accepts with `require_role`; the check runs before the body is parsed, so a
caller without a valid key learns nothing about the request it sent (401), and a key of the
wrong role gets 403. The roles a view accepts are its `credo_roles` attribute (`declared_roles`
reads them for a registered route), so tests and docs read the same declaration the check uses.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import flask_smorest
from flask import current_app, g, request

from api.http.errors import ApiProblem

ROLES = ("decide", "analyst", "approver", "auditor", "admin")
ADMIN = "admin"
# The attribute require_role sets on a view: the roles whose keys it accepts (admin included).
ROLES_ATTRIBUTE = "credo_roles"
# How long a worker trusts a key it verified (app.config CREDO_KEY_CACHE_SECONDS overrides).
KEY_CACHE_SECONDS = 1.0

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    """The API key a request was made with; `owner` is the person or system behind it."""

    name: str
    role: str
    owner: str


class KeyCache:
    """Keys verified recently, by the SHA-256 of the key, for `ttl` seconds.

    Verifying a key is a database read; a worker answering hundreds of calls a second with the
    same key asks again at most once per `ttl`. The price: a revoked key may go on working
    for up to `ttl` seconds in a worker that verified it just before.
    """

    MAX_ENTRIES = 1024

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Caller]] = {}

    def get(self, digest: str, ttl: float) -> Caller | None:
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[0] >= ttl:
            return None
        return entry[1]

    def put(self, digest: str, caller: Caller) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (time.monotonic(), caller)


def _verify(token: str) -> Caller | None:
    from storage import keys

    ttl = current_app.config.get("CREDO_KEY_CACHE_SECONDS", KEY_CACHE_SECONDS)
    cache: KeyCache = current_app.extensions.setdefault("credo.keys", KeyCache())
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    caller = cache.get(digest, ttl) if ttl > 0 else None
    if caller is None:
        info = keys.verify_key(token)
        if info is None:
            return None
        caller = Caller(name=info.name, role=info.role, owner=info.owner)
        cache.put(digest, caller)
    return caller


def _authenticate() -> Caller:
    header = request.headers.get("Authorization", "")
    challenge = {"WWW-Authenticate": 'Bearer realm="credo"'}
    if not header:
        raise ApiProblem(
            401, "missing API key: send 'Authorization: Bearer <key>'", headers=challenge
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiProblem(401, "the Authorization header must be 'Bearer <key>'", headers=challenge)
    caller = _verify(token)
    if caller is None:
        raise ApiProblem(401, "invalid or revoked API key", headers=challenge)
    return caller


def current_caller() -> Caller:
    """The caller of the current request (set by require_role)."""
    return g.credo_caller


def require_role(*roles: str) -> Callable[[F], F]:
    """Let the view run only for a valid key with one of `roles` (admin always passes).

    Put it above the flask-smorest decorators, so it runs before the body is parsed. The view
    is documented as needing the bearer key, its description naming the roles.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    accepted = tuple(roles) if ADMIN in roles else (*roles, ADMIN)
    needed = " or ".join(f"'{r}'" for r in roles)

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = _authenticate()
            if caller.role not in accepted:
                raise ApiProblem(
                    403,
                    f"API key '{caller.name}' has role '{caller.role}'; this call needs {needed}",
                )
            g.credo_caller = caller
            return func(*args, **kwargs)

        setattr(wrapper, ROLES_ATTRIBUTE, accepted)
        documented = flask_smorest.Blueprint.doc(
            security=[{"bearerAuth": []}], description=_role_note(func, roles)
        )
        return documented(wrapper)  # functools.wraps carries credo_roles along

    return decorator


def declared_roles(view: Callable[..., Any], method: str) -> tuple[str, ...] | None:
    """The roles `require_role` lets call `method` of `view` (a function in Flask's
    `app.view_functions`, perhaps a MethodView's); None when it needs no key."""
    view_class = getattr(view, "view_class", None)  # Flask's View.as_view sets it
    target = getattr(view_class, method.lower(), None) if view_class is not None else view
    return getattr(target, ROLES_ATTRIBUTE, None)


def _role_note(func: Callable[..., Any], roles: tuple[str, ...]) -> str:
    text = inspect.cleandoc(func.__doc__ or "")  # no indentation: Markdown would make it code
    role_text = "Roles: " + ", ".join(roles) + (", admin" if ADMIN not in roles else "") + "."
    return f"{text}\n\n{role_text}" if text else role_text
