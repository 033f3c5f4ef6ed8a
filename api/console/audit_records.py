"""Audit pages (auditors): the operator log a page at a time, filtered by kind, actor and
dates; and the decisions export, downloaded as CSV (every cell neutralised for spreadsheets)
or JSON lines (each record exactly as its hash signs it).

Both call the use cases GET /v1/audit/events and GET /v1/audit/export call, as `credo audit
log` and `credo audit export` do (api.audit_records): event_filter and list_events for the log,
export_decisions, streamed, for the files.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, render_template, request, stream_with_context

from api.console.access import AUDIT_ROLES, require_page
from api.console.blueprint import bp

PAGE_SIZE = 50
FIELD_LENGTH = 200
LOG_FIELDS = ("kind", "actor", "from", "to")
EXPORT_FIELDS = ("from", "to", "kind", "customer")


@bp.app_template_filter("detail")
def detail(value: Any) -> str:
    """An event's detail as text: a number or text as it is, an object or list as JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "none" if value is None else str(value)


def _form(names: tuple[str, ...]) -> dict[str, str]:
    return {name: request.args.get(name, "").strip()[:FIELD_LENGTH] for name in names}


def _moments(form: dict[str, str], problems: dict[str, str]) -> dict[str, Any]:
    """The form's from/to as the API reads them (api.audit_records.parse_moment)."""
    from api.audit_records import BadArgument, parse_moment

    moments: dict[str, Any] = {}
    for name in ("from", "to"):
        if form[name]:
            try:
                moments[name] = parse_moment(name, form[name], end=name == "to")
            except BadArgument as exc:
                problems[exc.name] = exc.message
    return moments


def _kinds() -> list[str]:
    """The kinds the filter offers: each subject (every event under it), then each kind."""
    from storage.audit_log import KINDS

    subjects = sorted({k.split(".")[0] for k in KINDS})
    return subjects + sorted(KINDS)


@bp.route("/audit/log")
@require_page(*AUDIT_ROLES)
def audit_log() -> Any:
    """The operator log, newest first, PAGE_SIZE events a page."""
    from api.audit_records import BadArgument, event_filter, list_events
    from engine.text import text_problem

    form = _form(LOG_FIELDS)
    problems: dict[str, str] = {}
    moments = _moments(form, problems)
    actor = form["actor"] or None
    if actor is not None and text_problem(actor):
        problems["actor"] = text_problem(actor)
    page = None
    if not problems:
        try:
            kind = form["kind"] or None
            filters = event_filter(kind, moments.get("from"), moments.get("to"), actor)
        except BadArgument as exc:
            problems[exc.name] = exc.message
        else:
            text = request.args.get("cursor", "")
            cursor = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
            page = list_events(filters, cursor, PAGE_SIZE, newest_first=True)
    page_html = render_template(
        "console/audit_log.html",
        form=form,
        problems=problems,
        page=page,
        kinds=_kinds(),
        next_args={k: v for k, v in form.items() if v},
        first_page="cursor" not in request.args,
    )
    return page_html, 422 if problems else 200


def _export_arguments(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    problems: dict[str, str] = {}
    moments = _moments(form, problems)
    arguments = {
        "created_from": moments.get("from"),
        "created_to": moments.get("to"),
        "kind": form["kind"] or None,
        "customer_id": form["customer"] or None,
    }
    return arguments, problems


def _export_page(form: dict[str, str], problems: dict[str, str]) -> Any:
    from api.customer_views import customer_names

    names = customer_names([form["customer"]]) if form["customer"] and not problems else {}
    page = render_template(
        "console/audit_export.html",
        form=form,
        problems=problems,
        args={k: v for k, v in form.items() if v},
        customer_name=names.get(form["customer"]),
    )
    return page, 422 if problems else 200


@bp.route("/audit/export")
@require_page(*AUDIT_ROLES)
def audit_export() -> Any:
    """The export form: a period, a kind, a customer; links to download CSV and JSON lines."""
    from api.audit_records import BadArgument, export_decisions

    form = _form(EXPORT_FIELDS)
    arguments, problems = _export_arguments(form)
    if not problems:
        try:
            export_decisions("csv", **arguments)  # checks the arguments; nothing is read yet
        except BadArgument as exc:
            problems[exc.name] = exc.message
    return _export_page(form, problems)


@bp.route("/audit/export/<fmt>")
@require_page(*AUDIT_ROLES)
def audit_export_file(fmt: str) -> Any:
    """The decisions chosen, streamed as the API's GET /v1/audit/export streams them."""
    from flask import abort

    from api.audit_records import FORMATS, BadArgument, export_decisions

    if fmt not in FORMATS:
        abort(404, f"An export is {' or '.join(FORMATS)}.")
    form = _form(EXPORT_FIELDS)
    arguments, problems = _export_arguments(form)
    if not problems:
        try:
            found = export_decisions(fmt, **arguments)
        except BadArgument as exc:
            problems[exc.name] = exc.message
    if problems:
        return _export_page(form, problems)
    return Response(
        stream_with_context(found.chunks),
        mimetype=found.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )
