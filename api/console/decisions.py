"""Decisions: a searchable list (newest first, a page at a time) and one decision's trace."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import abort, render_template, request

from api.console.access import AUDIT_ROLES, DECISION_ROLES, current_person, require_page
from api.console.blueprint import bp
from api.lifecycle import MOVE_ROLES, READ_ROLES

PAGE_SIZE = 50
_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")
_OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,39}=.{0,200}")
FILTERS = ("customer", "kind", "outcome", "rule", "version", "from", "to")


def read_filters(args: Any) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """(the form's values as sent, the use case's arguments, a problem per field)."""
    form = {name: args.get(name, "").strip() for name in FILTERS}
    problems: dict[str, str] = {}
    chosen: dict[str, Any] = {}
    if len(form["customer"]) > 64:
        problems["customer"] = "a customer id has at most 64 characters"
    chosen["customer_id"] = form["customer"]
    if form["kind"] and not _KIND.fullmatch(form["kind"]):
        problems["kind"] = "a kind is lower-case letters, digits and _ (e.g. reminder)"
    chosen["kind"] = form["kind"]
    if form["outcome"] and not _OUTCOME.fullmatch(form["outcome"]):
        problems["outcome"] = "write field=value, e.g. tone=firm"
    chosen["outcome"] = [form["outcome"]] if form["outcome"] else []
    if len(form["rule"]) > 40:
        problems["rule"] = "a rule id has at most 40 characters"
    chosen["rule"] = form["rule"]
    if form["version"]:
        if not form["version"].isdigit() or len(form["version"]) > 9:
            problems["version"] = "a version is a whole number, e.g. 3"
        elif not form["kind"]:
            problems["version"] = "choose the kind whose version this is"
        else:
            chosen["version"] = int(form["version"])
    for name, end in (("from", False), ("to", True)):
        if form[name]:
            try:
                day = date.fromisoformat(form[name])
                moment = datetime.combine(day, time(), UTC)
                chosen["created_to" if end else "created_from"] = (
                    moment + timedelta(days=1) if end else moment
                )
            except (ValueError, OverflowError):
                problems[name] = "a date like 2024-05-31"
    return form, chosen, problems


@bp.route("/decisions")
@require_page(*DECISION_ROLES)
def decisions() -> Any:
    """Decisions matching the filters, newest first, PAGE_SIZE at a time."""
    from api.decision_views import decision_filter, list_decisions

    form, chosen, problems = read_filters(request.args)
    cursor_text = request.args.get("cursor", "")
    cursor = int(cursor_text) if cursor_text.isdigit() and len(cursor_text) <= 18 else None
    page = None
    if not problems:
        page = list_decisions(decision_filter(**chosen), cursor, PAGE_SIZE)
    next_args = {k: v for k, v in form.items() if v}
    status = 422 if problems else 200
    return (
        render_template(
            "console/decisions.html",
            form=form,
            problems=problems,
            page=page,
            next_args=next_args,
            first_page=cursor is None,
        ),
        status,
    )


@bp.route("/decisions/<decision_id>")
@require_page(*DECISION_ROLES)
def decision(decision_id: str) -> Any:
    """One decision: facts, outcome, every fired rule with its condition and tested values."""
    return decision_page(decision_id)


def decision_page(decision_id: str, status: int = 200, **extra: Any) -> Any:
    """The decision's page (`extra`: what a refused "make this a test case" says, a replay's
    result). What would change it is the use case GET /v1/decisions/{id} adds."""
    from api.decision_audit import what_would_change
    from api.decision_views import find_decision, fired_conditions
    from engine.facts import FACTS

    found = find_decision(decision_id)
    if found is None:
        abort(404, f"There is no decision {decision_id!r}.")
    person = current_person()
    page = render_template(
        "console/decision.html",
        d=found,
        fired=fired_conditions(found),
        changes=what_would_change(found),
        catalogue=FACTS,
        may_read_rules=person.may(READ_ROLES),
        may_pin=person.may(MOVE_ROLES["draft"]),
        may_audit=person.may((*AUDIT_ROLES, "admin")),
        **extra,
    )
    return page, status
