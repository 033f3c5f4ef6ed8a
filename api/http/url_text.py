"""Text in a request's URL: path and query parameters are UTF-8 without control characters.

werkzeug decodes a URL leniently: bytes that are not UTF-8 turn into U+FFFD in the path, stay
percent-encoded in the query string (`%ED%A0%80` reads as those nine characters, like
`%25ED%25A0%2580`), and when sent raw in the query string make `request.args` raise. NUL and
other control characters pass through, and PostgreSQL refuses a NUL in text. No id, kind, rule
or outcome value can hold any of these, so each request's URL is checked once, before its
view: 422 naming every parameter that is not such text.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from flask import Flask, Request, request
from werkzeug.routing import PathConverter

from api.http.errors import ApiProblem

MESSAGE = "must be UTF-8 text without control characters"
# Control characters, and lone surrogates: bytes that were not UTF-8, by surrogateescape.
_NOT_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _raw_path_is_utf8(req: Request) -> bool:
    # PATH_INFO holds the path's bytes as latin-1 characters (PEP 3333).
    try:
        req.environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:  # not bytes-as-latin-1 but text already: nothing was replaced
        return True
    except UnicodeDecodeError:
        return False
    return True


def path_problems(req: Request) -> dict[str, list[str]]:
    """Path parameters holding a control character or U+FFFD put for bytes not UTF-8."""
    values = {k: v for k, v in (req.view_args or {}).items() if isinstance(v, str)}
    bad = {k for k, v in values.items() if _NOT_TEXT.search(v)}
    if any("\ufffd" in v for v in values.values()) and not _raw_path_is_utf8(req):
        bad |= {k for k, v in values.items() if "\ufffd" in v}
    return {name: [MESSAGE] for name in sorted(bad)}


def _shown(name: str) -> str:
    """A parameter name fit to be shown: invalid bytes as U+FFFD, controls escaped."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def query_problems(req: Request) -> dict[str, list[str]]:
    """Query parameters whose name or value holds a control character or bytes not UTF-8."""
    if not req.query_string:
        return {}
    text = req.query_string.decode("utf-8", "surrogateescape")
    pairs = parse_qsl(text, keep_blank_values=True, errors="surrogateescape")
    return {
        _shown(name): [MESSAGE]
        for name, value in pairs
        if _NOT_TEXT.search(name) or _NOT_TEXT.search(value)
    }


def check_url_text() -> None:
    """Refuse the request (422) when a path or query parameter is not text; a URL that
    matches no route is left to its 404 or 405."""
    if request.routing_exception is not None:
        return
    problems = {**query_problems(request), **path_problems(request)}
    if problems:
        raise ApiProblem(422, "", errors=problems)


def init_app(app: Flask) -> None:
    """Check every request's URL before its view runs; `erp_id` for ids in paths."""
    app.url_map.converters["erp_id"] = ErpIdConverter
    app.before_request(check_url_text)


class ErpIdConverter(PathConverter):
    """`<erp_id:customer_id>`: an ERP's id in a path, slashes included (ACME/DE-1), and any
    other character, so that a control character reaches the 422 above instead of a 404."""

    regex = r"[^/][\s\S]*?"
