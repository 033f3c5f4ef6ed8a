"""Signing in and out, the home page, error pages, and what every console request does first."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

import peewee as pw
from flask import current_app, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from api.console import access
from api.console.blueprint import bp
from api.http.errors import ApiProblem  # raised app-wide for a URL that is not text
from storage.keys import ROLES

_log = logging.getLogger("credo.console")
ALL_ROLES = tuple(ROLES)
KEY_FIELD_LENGTH = 200


@bp.before_request
def _before() -> None:
    if request.endpoint == "console.static":
        return
    access.load_person()
    access.check_csrf()


@bp.app_template_global()
def csrf_token() -> str:
    return access.csrf_token()


@bp.app_template_filter("money")
def money(value: Any) -> str:
    """'1234567.5' -> '1,234,567.50'; anything that is not a number is shown as it is."""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


@bp.context_processor
def _page_context() -> dict[str, Any]:
    view = current_app.view_functions.get(request.endpoint or "")
    roles = getattr(view, access.ROLES_ATTRIBUTE, None)
    return {
        "person": access.current_person(),
        "sections": access.SECTIONS,
        "page_roles": access.role_text(roles) if roles else None,
        "role_text": access.role_text,
    }


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("console/error.html", status=status, message=message), status


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    if status == 403:
        needed = g.get("console_needed", ())
        person = access.current_person()
        message = (
            f"Your key '{person.name}' has role '{person.role}'; this page needs a key of "
            f"role {access.role_text(needed)}."
            if person and needed
            else "This page is not open to your key."
        )
        return _error_page(403, message)
    if status == 404:
        return _error_page(404, error.description or "There is no such page.")
    return _error_page(status, error.description or "The request could not be served.")


@bp.errorhandler(ApiProblem)
def _api_problem(error: ApiProblem) -> Any:
    detail = error.detail or "; ".join(
        f"{k}: {' '.join(v)}" for k, v in (error.errors or {}).items()
    )
    return _error_page(error.status, detail)


@bp.errorhandler(pw.OperationalError)
@bp.errorhandler(pw.InterfaceError)
def _database_error(error: Exception) -> Any:
    _log.warning("database error on %s %s: %s", request.method, request.path, error)
    return _error_page(503, "The database is unavailable or busy: try again in a moment.")


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    _log.exception("unhandled error on %s %s", request.method, request.path)
    return _error_page(500, "Something went wrong; the server log has the details.")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """The sign-in form: an API key of any role (public page)."""
    from storage.keys import verify_key

    target = access.safe_next(request.values.get("next"))
    if request.method == "GET":
        if access.current_person() is not None:
            return redirect(target)
        notice = session.pop("notice", None)
        return render_template("console/sign_in.html", next=target, error=notice)
    key = request.form.get("key", "").strip()
    found = verify_key(key) if 0 < len(key) <= KEY_FIELD_LENGTH else None
    if found is None:
        error = "That key is not valid, or it was revoked."
        return render_template("console/sign_in.html", next=target, error=error), 401
    access.sign_in(found)
    return redirect(target)


@bp.route("/sign-out", methods=["POST"])
@access.require_page(*ALL_ROLES)
def sign_out() -> Any:
    """End the session."""
    access.sign_out()
    return redirect(url_for("console.sign_in"))


@bp.route("/")
@access.require_page(*ALL_ROLES)
def home() -> str:
    """What this key can open here, and what other roles would add."""
    person = access.current_person()
    open_to_you = [s for s in access.SECTIONS if person.may(s.roles)]
    others = [s for s in access.SECTIONS if not person.may(s.roles)]
    return render_template("console/home.html", open_to_you=open_to_you, others=others)


@bp.route("/<path:anything>", methods=["GET", "POST"])
@access.require_page(*ALL_ROLES)
def not_found(anything: str) -> Any:
    """Any other console address: a 404 page (after signing in)."""
    return _error_page(404, "There is no such page.")
