"""Errors as application/problem+json (RFC 9457), for every failure the API can produce.

Views raise `ApiProblem` (or werkzeug's HTTP exceptions); webargs validation errors, engine
`FactError`s and anything unexpected are turned into the same shape here, once:
`{type, title, status, detail}` plus `errors: {field: [messages]}` for validation problems, with
nested field paths flattened to dots (`records.3.amount`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import marshmallow as ma
import peewee as pw
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from engine.errors import FactError

PROBLEM_MIMETYPE = "application/problem+json"
_log = logging.getLogger("credo.api")
_LOCATIONS = {"json", "query", "querystring", "headers", "view_args", "path", "form"}

# A short machine-readable name per status; the `type` of a problem is urn:credo:problem:<slug>.
_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    500: "internal",
    503: "unavailable",
}


class ApiProblem(Exception):
    """An error a view wants the client to see, with its HTTP status and what went wrong."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Mapping[str, Any] | None = None,
        slug: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = flatten_errors(errors) if errors else None
        self.slug = slug
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # more members of the problem (RFC 9457 extensions)


class ProblemSchema(ma.Schema):
    """The body of every error response (documentation only)."""

    type = ma.fields.String(required=True, metadata={"description": "urn:credo:problem:<slug>"})
    title = ma.fields.String(required=True, metadata={"description": "the HTTP status phrase"})
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True, metadata={"description": "what is wrong"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "validation messages by field path (e.g. records.3.amount)"},
    )


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error messages into {"a.b.0.c": [messages]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            name = str(key)
            path = name if not prefix else (prefix if name == "_schema" else f"{prefix}.{name}")
            for sub, messages in flatten_errors(value, path).items():
                flat.setdefault(sub, []).extend(messages)
    elif isinstance(errors, list | tuple):
        for item in errors:
            if isinstance(item, Mapping | list | tuple):
                for sub, messages in flatten_errors(item, prefix).items():
                    flat.setdefault(sub, []).extend(messages)
            else:
                flat.setdefault(prefix or "_body", []).append(str(item))
    else:
        flat.setdefault(prefix or "_body", []).append(str(errors))
    return flat


def problem_response(
    status: int,
    detail: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """Build an application/problem+json response (`extra`: more members, RFC 9457)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": f"urn:credo:problem:{slug or _SLUGS.get(status, 'error')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = dict(errors)
    body.update({k: v for k, v in (extra or {}).items() if k not in body})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_detail(errors: Mapping[str, list[str]]) -> str:
    parts = [f"{field}: {' '.join(messages)}" for field, messages in sorted(errors.items())]
    text = "; ".join(parts)
    return "invalid request: " + (text if len(text) <= 500 else text[:497] + "...")


def http_problem(error: HTTPException) -> Response:
    """An HTTP exception (werkzeug's, or webargs' validation errors) as problem+json."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    if messages:
        # webargs keys its messages by location ("json", "query"): the field is what matters.
        if isinstance(messages, Mapping) and set(messages) <= _LOCATIONS:
            messages = {k: v for loc in messages.values() for k, v in _as_mapping(loc).items()}
        errors = flatten_errors(messages)
        return problem_response(status, _validation_detail(errors), errors=errors, headers=headers)
    detail = data.get("message") or error.description or HTTPStatus(status).phrase
    if status == 404 and not data:
        detail = f"no resource at {request.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.path}"
    elif status == 413:
        detail = f"request body larger than {_max_body()} bytes (api.max_body_bytes)"
    return problem_response(status, detail, headers=headers)


def _as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {"_body": value}


def _max_body() -> int | str:
    from flask import current_app

    return current_app.config.get("MAX_CONTENT_LENGTH") or "the configured"


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.errorhandler(ApiProblem)
    def _api_problem(error: ApiProblem) -> Response:
        if error.errors and error.status == 422 and not error.detail:
            error.detail = _validation_detail(error.errors)
        return problem_response(
            error.status,
            error.detail,
            errors=error.errors,
            slug=error.slug,
            headers=error.headers,
            extra=error.extra,
        )

    @app.errorhandler(FactError)
    def _fact_error(error: FactError) -> Response:
        errors = {f"facts.{k}": list(v) for k, v in error.errors.items()}
        return problem_response(422, _validation_detail(errors), errors=errors)

    @app.errorhandler(HTTPException)
    def _http_exception(error: HTTPException) -> Response:
        return http_problem(error)

    @app.errorhandler(pw.OperationalError)
    @app.errorhandler(pw.InterfaceError)
    def _database_unavailable(error: pw.PeeweeException) -> Response:
        # The server went away (a restart drops pooled connections), the file stayed locked
        # past the busy timeout, the disk is full: nothing the caller sent is wrong. The
        # transaction rolled back, unless the connection broke while the server committed:
        # a retry with the same Idempotency-Key cannot decide twice. The pool does not hand a
        # broken connection out again (storage.db.open_pooled).
        _log.warning("database error on %s %s: %s", request.method, request.path, error)
        return problem_response(
            503,
            "the database is unavailable or busy; retry shortly (with the same "
            "Idempotency-Key, a decision is not made twice)",
            headers={"Retry-After": "1"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        _log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "internal error; the server log has the details")
