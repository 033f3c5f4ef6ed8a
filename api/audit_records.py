"""The auditor's records, for the CLI and the HTTP API alike: the decisions export (CSV or JSON
lines, streamed) and the operator log (read, verified).

The export's JSON lines carry each decision's record exactly as its hash signs it:
`{"seq", "record", "prev_hash", "hash"}` with `hash = SHA-256(prev_hash + "\\n" +
canonical JSON of record)` (engine.trace.chain_hash), so an auditor's own script recomputes the
chain from the file alone. Its CSV has a row per decision under storage.decisions.shape's
columns, every cell neutralised for spreadsheets (api.csvout). Both read the decisions in seq
order, a chunk at a time: memory stays flat whatever the range.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from api.csvout import csv_chunks
from engine.text import text_problem
from storage.models import ID_LENGTH

FORMATS = ("csv", "jsonl")
MIMETYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")


class BadArgument(ValueError):
    """An argument of an export or a log query is not valid: `name` says which."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass(frozen=True)
class Export:
    """A streamed export: its text in chunks, its media type and a file name for it."""

    chunks: Iterator[str]
    mimetype: str
    filename: str


def parse_moment(name: str, text: str, *, end: bool = False) -> datetime:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC without an offset), as the API's
    `from` and `to` read it; `end`: a plain date includes that whole day (the next midnight).
    BadArgument naming `name` otherwise."""
    if not isinstance(text, str) or not 0 < len(text) <= 40:
        raise BadArgument(name, "must be a date (2024-05-31) or a date-time")
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadArgument(
            name, f"{text!r} is not a date (2024-05-31) or a date-time (2024-05-31T14:00:00Z)"
        ) from None
    if not FIRST_DAY <= moment.date() <= LAST_DAY:
        raise BadArgument(name, f"must be between {FIRST_DAY} and {LAST_DAY}")
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment + timedelta(days=1) if end and len(text) == 10 else moment


# ---- the decisions export ---------------------------------------------------------------------


def export_decisions(
    format: str,
    *,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    kind: str | None = None,
    customer_id: str | None = None,
) -> Export:
    """Every decision made in [created_from, created_to) (of `kind`, of `customer_id`), in seq
    order, as CSV or JSON lines (see the module's docstring)."""
    from storage.decisions import DecisionFilter, iter_decisions

    if format not in FORMATS:
        raise BadArgument("format", f"{format!r} is not one of {', '.join(FORMATS)}")
    if kind is not None and not _KIND.fullmatch(kind):
        raise BadArgument("kind", f"{kind[:80]!r} is not a rule-set kind (credit, reminder, …)")
    if customer_id is not None:
        problem = text_problem(customer_id)
        if not 0 < len(customer_id) <= ID_LENGTH or problem:
            raise BadArgument("customer", problem or f"must be 1 to {ID_LENGTH} characters")
    filters = DecisionFilter(
        customer_id=customer_id, kind=kind, created_from=created_from, created_to=created_to
    )
    decisions = iter_decisions(filters)
    chunks = decisions_csv(decisions) if format == "csv" else decisions_jsonl(decisions)
    return Export(chunks, MIMETYPES[format], f"decisions.{format}")


def decisions_csv(decisions: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Stored decisions as CSV: a header row, then a row per decision (storage.decisions.shape's
    columns: empty where a row's format has no such field), every cell neutralised."""
    from storage.decisions.shape import csv_header, csv_row

    return csv_chunks(csv_header(), (csv_row(d) for d in decisions))


def decisions_jsonl(decisions: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Stored decisions as JSON lines `{"seq", "record", "prev_hash", "hash"}`, `record` being
    exactly the members the hash signs (those of the decision's own format)."""
    for decision in decisions:
        yield json.dumps(hashed_line(decision), ensure_ascii=False) + "\n"


def hashed_line(decision: dict[str, Any]) -> dict[str, Any]:
    """A stored decision split into what its hash signs (`record`) and its place in the chain."""
    from storage.decisions.shape import fields_of

    record = {f.name: decision[f.name] for f in fields_of(decision.get("format", 1))}
    return {
        "seq": decision["seq"],
        "record": record,
        "prev_hash": decision["prev_hash"],
        "hash": decision["hash"],
    }


# ---- the operator log -------------------------------------------------------------------------


def event_filter(
    kind: str | None = None,
    at_from: datetime | None = None,
    at_to: datetime | None = None,
    actor: str | None = None,
):
    """storage's EventFilter; BadArgument names a kind that cannot be one."""
    from storage.audit_log import KIND_LENGTH, KIND_RE, EventFilter

    if kind is not None and (len(kind) > KIND_LENGTH or not KIND_RE.fullmatch(kind)):
        raise BadArgument(
            "kind", f"{kind[:80]!r} is not an event kind (e.g. key.created, or ruleset for all)"
        )
    return EventFilter(kind=kind, actor=actor, at_from=at_from, at_to=at_to)


def list_events(filters: Any, cursor: int | None, limit: int, newest_first: bool = False):
    """One page of operator events (storage.audit_log.EventPage)."""
    from storage.audit_log import query_events

    return query_events(filters, after=cursor, limit=limit, newest_first=newest_first)


def iter_log(filters: Any) -> Iterator[dict[str, Any]]:
    """Every matching operator event, oldest first, read in chunks."""
    from storage.audit_log import iter_events

    return iter_events(filters)


def check_audit_log() -> dict[str, Any]:
    """Verify the whole operator log: {ok, events, head: {seq, hash}, problems: [{seq, kind,
    problem}]}, problems first one first. `credo audit log --verify` prints it; the audit
    trail's verification reports it beside the decisions'."""
    from storage.audit_log import log_head, verify_audit_log

    problems = verify_audit_log()
    seq, digest = log_head()
    return {
        "ok": not problems,
        "events": seq,
        "head": {"seq": seq, "hash": digest},
        "problems": [p.to_json() for p in problems],
    }


def describe_check(result: dict[str, Any]) -> list[str]:
    """A verification's result in lines for people: OK with the head, or each problem."""
    head = result["head"]
    if result["ok"]:
        return [f"operator log OK: {result['events']} events, head #{head['seq']} {head['hash']}"]
    count = len(result["problems"])
    lines = [f"operator log BROKEN: {count} problem{'s' if count != 1 else ''}"]
    lines += [f"  event #{p['seq']} ({p['kind']}): {p['problem']}" for p in result["problems"]]
    return lines
