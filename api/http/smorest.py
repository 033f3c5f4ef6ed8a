"""flask-smorest adapted to credo: strict JSON bodies and problem+json errors in the spec.

Python's json module accepts NaN, Infinity, 1e999 (as inf) and duplicate keys; money and facts
must never be any of those, so every body is parsed here with hooks that refuse them. Unknown
fields are refused in bodies and query strings alike.
"""

from __future__ import annotations

import http
import io
import json
import math
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import flask
import flask_smorest
import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from flask_smorest.utils import prepare_response
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from api.http.errors import PROBLEM_MIMETYPE, ApiProblem, ProblemSchema, flatten_errors

F = TypeVar("F", bound=Callable[..., Any])


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
    """The request's body, as `req.get_data()` gives it.

    A body of a stated length within the limit is read from the WSGI input in one call, as
    PEP 3333 has an application read it, and the input replaced by the bytes read, so that
    `req.get_data()` still finds them: werkzeug's stream around gunicorn's took 30 µs of a
    decision under load, this 16. Other bodies (chunked, or too long) take get_data; one
    beyond the limit (MAX_CONTENT_LENGTH) raises RequestEntityTooLarge (413).
    """
    length = req.content_length
    limit = req.max_content_length
    if length is None or (limit is not None and length > limit):
        data = req.get_data(cache=True)  # raises 413 for a stated length beyond the limit
        if length is None and limit is not None and len(data) >= limit:
            # A chunked body is cut at the limit rather than refused: refuse it here.
            raise RequestEntityTooLarge()
        return data
    environ = req.environ
    data = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(data)
    return data


class StrictParser(FlaskParser):
    """webargs parser for credo: strict JSON, JSON content type, unknown query fields refused."""

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
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

    def header_arguments(self, schema: ma.Schema) -> Callable[[F], F]:
        """`arguments(schema, location="headers", as_kwargs=True)`, documented the same way,
        but parsed only when the request sends one of the schema's headers: most calls send
        none, and webargs would load the schema for each of them all the same."""
        names = [field.data_key or name for name, field in schema.fields.items()]

        def decorator(func: F) -> F:
            parsed = self.arguments(schema, location="headers", as_kwargs=True)(func)

            @wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                headers = flask.request.headers
                if any(name in headers for name in names):
                    return parsed(*args, **kwargs)
                return func(*args, **kwargs)

            wrapper._apidoc = parsed._apidoc  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def json_body(self, schema: ma.Schema) -> Callable[[F], F]:
        """`arguments(schema)` for a JSON body, documented the same way and answering the same
        errors, without webargs' general machinery (locations, hooks, validators) on each call:
        the body is read with the strict parser, loaded with `schema` (unknown fields refused)
        and passed to the view after its positional arguments. For a hot endpoint."""
        parser = self.ARGUMENTS_PARSER

        def decorator(func: F) -> F:
            documented = self.arguments(schema)(func)

            @wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                data = parser.load_json(flask.request, schema)
                try:
                    body = schema.load({} if data is core.missing else data, unknown=ma.RAISE)
                except ma.ValidationError as exc:
                    raise ApiProblem(422, "", errors=flatten_errors(exc.messages)) from None
                return func(*args, body, **kwargs)

            wrapper._apidoc = documented._apidoc  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def returns(self, status_code: int, schema: Any, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's `response`, documented the same way, for a view that always returns
        a Response it built itself: no wrapper around it, which would only pass that on."""
        documenting = super().response(status_code, schema, **kwargs)

        def decorator(func: F) -> F:
            func._apidoc = documenting(func)._apidoc  # type: ignore[attr-defined]
            return func

        return decorator

    def alt_response(self, status_code: Any, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's alt_response, documenting the response the same way, without the
        wrapper it puts around the view only to call it: an alternative response is the view's
        own doing, and each wrapper costs every call."""
        documenting = super().alt_response(status_code, **kwargs)

        def decorator(func: F) -> F:
            func._apidoc = documenting(func)._apidoc  # type: ignore[attr-defined]
            return func

        return decorator

    def problem(self, status: int, description: str) -> Any:
        """Document an error response of this operation (application/problem+json)."""
        return self.alt_response(
            status, schema=ProblemSchema, content_type=PROBLEM_MIMETYPE, description=description
        )


class Api(flask_smorest.Api):
    """flask-smorest Api whose documented errors are application/problem+json.

    Its own HTTPException handler is not registered: api.http.errors handles every error.
    """

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        pass

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Error (problem+json)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


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
    api = Api(spec_kwargs={"marshmallow_plugin": plugin})
    api.init_app(app)
    plugin.converter.add_attribute_function(_custom_fields)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "an API key from `credo keys create`"},
    )
    return api
