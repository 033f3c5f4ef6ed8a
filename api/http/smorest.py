"""flask-smorest adapted to credo: strict JSON bodies and problem+json errors in the spec.

Python's json module accepts NaN, Infinity, 1e999 (as inf) and duplicate keys; money and facts
must never be any of those, so every body is parsed here with hooks that refuse them. Unknown
fields are refused in bodies and query strings alike. Everything here goes through the public
extension points of webargs (a parser's `load_json`, `DEFAULT_UNKNOWN_BY_LOCATION`),
flask-smorest (`Blueprint.ARGUMENTS_PARSER`, `Api.ERROR_SCHEMA`, `Api.handle_http_exception`)
and apispec (a plugin's `response_helper`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.http.errors import PROBLEM_MIMETYPE, ApiProblem, ProblemSchema, http_problem


class JsonBodyError(ValueError):
    """The request body is not acceptable JSON; the message says why."""


def _reject_constant(name: str) -> Any:
    raise JsonBodyError(f"{name} is not a valid JSON number; numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise JsonBodyError(f"number {shown} is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonBodyError(f"duplicate key {key!r} in a JSON object")
            seen.add(key)
    return result


# One decoder for every body: json.loads with hooks would build a new one, scanner and all,
# for each call.
_STRICT_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant,
    parse_float=_finite_float,
    object_pairs_hook=_no_duplicates,
)


def loads_strict(data: bytes | str) -> Any:
    """Parse JSON, refusing NaN, infinities, out-of-range numbers and duplicate keys.

    Raises JsonBodyError with a message a client can act on.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonBodyError(f"request body is not UTF-8 (byte {exc.start})") from exc
    try:
        return _STRICT_DECODER.decode(data)
    except JsonBodyError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonBodyError(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise JsonBodyError("malformed JSON: nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise JsonBodyError(f"malformed JSON: {exc}") from exc


def read_body(req: flask.Request) -> bytes:
    """The request's body, at most MAX_CONTENT_LENGTH bytes; 413 (RequestEntityTooLarge) beyond.

    werkzeug refuses a body whose Content-Length is beyond the limit before reading any of it,
    but cuts a body of unstated length (chunked) at the limit: such a body that reaches the
    limit is refused here.
    """
    data = req.get_data(cache=True)
    limit = req.max_content_length
    if req.content_length is None and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge()
    return data


class StrictParser(FlaskParser):
    """webargs parser for credo: strict JSON, JSON content type, unknown query fields refused."""

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        """The body parsed by loads_strict; `missing` when empty; 415 when not JSON, 400 when
        malformed, 413 when too long."""
        data = read_body(req)
        if not data.strip():
            return core.missing
        if not core.is_json(req.mimetype):
            raise ApiProblem(
                415,
                f"request body must be application/json, not {req.mimetype or 'untyped'}",
            )
        try:
            return loads_strict(data)
        except JsonBodyError as exc:
            raise ApiProblem(400, str(exc), slug="malformed-json") from exc


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest Blueprint using the strict parser."""

    ARGUMENTS_PARSER = StrictParser()

    def problem(self, status: int, description: str) -> Any:
        """Document an error response of this operation (application/problem+json)."""
        return self.alt_response(
            status, schema=ProblemSchema, content_type=PROBLEM_MIMETYPE, description=description
        )


class ProblemResponses(BasePlugin):
    """apispec plugin: the reusable responses flask-smorest registers (one per HTTP status,
    and DEFAULT_ERROR, referenced by every operation) describe errors, which credo answers as
    application/problem+json: document them so."""

    def response_helper(self, response: dict[str, Any], **kwargs: Any) -> dict[str, Any] | None:
        content = response.get("content") or {}
        if "application/json" not in content:
            return None
        return {"content": {PROBLEM_MIMETYPE: content["application/json"]}}


class Api(flask_smorest.Api):
    """flask-smorest Api whose errors are application/problem+json, documented and answered."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> flask.Response:
        """Every HTTP error as problem+json (api.http.errors), as the app's own handler does."""
        return http_problem(error)


def _custom_fields(self: Any, field: ma.fields.Field, **kwargs: Any) -> dict[str, Any]:
    """OpenAPI properties of the ledger schemas' own field types."""
    from api.intake.schemas import Day, Money, WholeNumber

    pattern = kwargs.get("ret", {}).get("pattern")
    if isinstance(pattern, str) and pattern.endswith("\\Z"):
        # Python's \Z (end of text) is not ECMA-262; there `$` means exactly that.
        return {"pattern": pattern[:-2] + "$"}
    if isinstance(field, Money):
        return {
            "oneOf": [
                {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$"},
                {"type": "number", "minimum": 0, "maximum": 999999999999.99},
            ],
            "example": "1250.00",
            "description": "amount of money, at most two decimals (a string keeps it exact)",
        }
    if isinstance(field, Day):
        return {"type": "string", "format": "date"}
    if isinstance(field, WholeNumber):
        return {"type": "integer"}
    return {}


def make_api(app: flask.Flask) -> Api:
    """Create the Api for app, with the bearer security scheme declared."""
    plugin = MarshmallowPlugin()
    api = Api(spec_kwargs={"marshmallow_plugin": plugin, "extra_plugins": [ProblemResponses()]})
    api.init_app(app)
    plugin.converter.add_attribute_function(_custom_fields)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "an API key from `credo keys create`"},
    )
    return api
