"""The operator log (SPEC §5): what people and credo's own commands did to the system — API
keys created and revoked, rule-set lifecycle moves, runs started and finished, imports, demo
resets — append-only and hash-chained the way decisions are.

Each event is a record `{format, at, actor, kind, details}` (details a JSON object), stored
with `seq` (1, 2, …), `prev_hash` and `hash = engine.trace.chain_hash(record, prev_hash)`,
the same canonical JSON and SHA-256 as the decision chain; the first event's prev_hash is
GENESIS_HASH. `append_event` places an event under the log's lock (a PostgreSQL advisory lock,
SQLite's writer lock) inside the caller's transaction, if one is open, so a move and its event
are stored together or not at all. `verify_audit_log` recomputes every link.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import peewee as pw

from engine.text import printable, text_problem
from engine.trace import GENESIS_HASH, canonical_json_plain, chain_hash_text, to_jsonable
from storage.db import LockKey, database, write_lock
from storage.errors import InvalidRecord
from storage.models import BaseModel, UtcDateTimeField, now_utc

AUDIT_LOG_LOCK = LockKey.AUDIT_LOG
FORMAT = 1  # the format of the event records written now
READ_CHUNK = 1000
ACTOR_LENGTH = 200
# Kinds are dotted names: a subject, then what happened to it. The ones credo writes:
KINDS = (
    "key.created",
    "key.revoked",
    "ruleset.drafted",
    "ruleset.proposed",
    "ruleset.approved",
    "ruleset.rejected",
    "ruleset.activated",
    "ruleset.rolled_back",
    "ruleset.retired",
    "ruleset.templates_added",
    "run.started",
    "run.resumed",
    "run.finished",
    "run.failed",
    "import.done",
    "demo.reset",
    "chain.pruned",
)
KIND_RE = re.compile(r"[a-z][a-z0-9_]{0,30}(\.[a-z][a-z0-9_]{0,30}){0,2}")
KIND_LENGTH = 64


class AuditEvent(BaseModel):
    """One operator event, append-only, chained by hash in `seq` order (migration 14)."""

    seq = pw.BigIntegerField(primary_key=True)
    format = pw.SmallIntegerField()
    at = UtcDateTimeField(index=True)
    actor = pw.CharField(max_length=ACTOR_LENGTH)
    kind = pw.CharField(max_length=KIND_LENGTH)
    details = pw.TextField()  # canonical JSON of an object: exactly what the hash signs
    prev_hash = pw.CharField(max_length=64)
    hash = pw.CharField(max_length=64)

    class Meta:
        table_name = "audit_event"


@dataclass(frozen=True)
class EventFilter:
    """Which events to read: all given conditions hold. `kind` matches that kind and the kinds
    under it (`ruleset` matches `ruleset.approved`); `at_from` inclusive, `at_to` exclusive."""

    kind: str | None = None
    actor: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None


@dataclass(frozen=True)
class EventPage:
    items: list[dict[str, Any]]
    next_cursor: int | None  # pass as `after` for the next page; None on the last page


@dataclass(frozen=True)
class LogProblem:
    """One event where the operator log's chain does not hold."""

    seq: int
    kind: str | None
    problem: str

    def __str__(self) -> str:
        return f"operator event #{self.seq} ({self.kind}): {self.problem}"

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "problem": self.problem}


def storable(text: str, limit: int = ACTOR_LENGTH) -> str:
    """`text` as an event can keep it: lone surrogates and NUL written as backslash escapes,
    at most `limit` characters, "unknown" for nothing (a run's requested_by, an error)."""
    text = printable(str(text)).replace("\x00", "\\x00")[:limit]
    return text or "unknown"


def event_record(at: datetime, actor: str, kind: str, details: Mapping[str, Any]) -> dict:
    """The hashed record of an event, checked: InvalidRecord names a bad member."""
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidRecord("at", "expected an aware datetime (UTC)")
    if not isinstance(kind, str) or len(kind) > KIND_LENGTH or not KIND_RE.fullmatch(kind):
        raise InvalidRecord("kind", f"{str(kind)[:80]!r} is not a dotted lowercase name")
    if not isinstance(actor, str) or not 1 <= len(actor) <= ACTOR_LENGTH:
        raise InvalidRecord("actor", f"expected 1 to {ACTOR_LENGTH} characters")
    if not isinstance(details, Mapping):
        raise InvalidRecord("details", "expected an object")
    try:
        details_json = canonical_json_plain(to_jsonable(dict(details)))
    except (TypeError, ValueError) as exc:
        raise InvalidRecord("details", f"not representable as JSON: {exc}") from None
    for name, text in (("actor", actor), ("details", details_json)):
        problem = text_problem(text)
        if problem:
            raise InvalidRecord(name, problem)
    return {
        "format": FORMAT,
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "kind": kind,
        "details": to_jsonable(dict(details)),
    }


def append_event(
    kind: str, actor: str, details: Mapping[str, Any] | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """Append one event at the head of the log, under its lock, in the caller's transaction if
    one is open; return it as stored (its record with seq, prev_hash and hash)."""
    moment = (at or now_utc()).astimezone(UTC)
    record = event_record(moment, actor, kind, details or {})
    canonical = canonical_json_plain(record)
    with write_lock(AUDIT_LOG_LOCK):
        head = database.execute_sql(_HEAD_SQL).fetchone()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
        digest = chain_hash_text(canonical, prev)
        AuditEvent.insert(
            seq=seq,
            format=FORMAT,
            at=moment,
            actor=actor,
            kind=kind,
            details=canonical_json_plain(record["details"]),
            prev_hash=prev,
            hash=digest,
        ).execute()
    return {"seq": seq, **record, "prev_hash": prev, "hash": digest}


def log_head() -> tuple[int, str]:
    """The last event's seq and hash; (0, GENESIS_HASH) when the log is empty."""
    head = database.execute_sql(_HEAD_SQL).fetchone()
    return (head[0], head[1]) if head else (0, GENESIS_HASH)


def to_event(row: AuditEvent) -> dict[str, Any]:
    """A stored event as JSON values: seq, its record as hashed, prev_hash and hash."""
    return {
        "seq": row.seq,
        "format": row.format,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "kind": row.kind,
        "details": json.loads(row.details),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def query_events(
    filters: EventFilter | None = None,
    *,
    after: int | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> EventPage:
    """One page of matching events in seq order; `after` is the previous page's cursor."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = _filtered(filters or EventFilter())
    if after is not None:
        query = query.where(AuditEvent.seq < after if newest_first else AuditEvent.seq > after)
    order = AuditEvent.seq.desc() if newest_first else AuditEvent.seq
    rows = list(query.order_by(order).limit(limit + 1))
    items = [to_event(row) for row in rows[:limit]]
    return EventPage(items, items[-1]["seq"] if len(rows) > limit else None)


def iter_events(filters: EventFilter | None = None) -> Iterator[dict[str, Any]]:
    """Every matching event in seq order, read in chunks."""
    after = None
    while True:
        page = query_events(filters, after=after, limit=READ_CHUNK)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


def _filtered(filters: EventFilter) -> pw.ModelSelect:
    query = AuditEvent.select()
    if filters.kind is not None:
        under = filters.kind + "."
        query = query.where(
            (AuditEvent.kind == filters.kind)
            | (pw.fn.SUBSTR(AuditEvent.kind, 1, len(under)) == under)
        )
    if filters.actor is not None:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.at_from is not None:
        query = query.where(AuditEvent.at >= filters.at_from)
    if filters.at_to is not None:
        query = query.where(AuditEvent.at < filters.at_to)
    return query


def verify_audit_log(first_seq: int | None = None, last_seq: int | None = None) -> list[LogProblem]:
    """Check the operator log from `first_seq` to `last_seq` (default: all); [] when it holds.

    As storage.decisions.verify_chain does for decisions: each event's hash is recomputed from
    its columns (finds altered events), its prev_hash compared with the hash of the event
    before it and seq numbers checked for gaps (finds removed, inserted or reordered events).
    Removing the newest events leaves a valid shorter log: compare `log_head()` with a copy
    kept elsewhere to detect that.
    """
    prev_seq, prev_hash, after = 0, GENESIS_HASH, None
    if first_seq is not None and first_seq > 1:
        after = first_seq - 1
        before = (
            AuditEvent.select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.seq < first_seq)
            .order_by(AuditEvent.seq.desc())
            .first()
        )
        if before is not None:
            prev_seq, prev_hash = before.seq, before.hash
    problems: list[LogProblem] = []
    while True:
        query = AuditEvent.select(*_COLUMNS).order_by(AuditEvent.seq).limit(READ_CHUNK)
        if after is not None:
            query = query.where(AuditEvent.seq > after)
        if last_seq is not None:
            query = query.where(AuditEvent.seq <= last_seq)
        # Raw rows: a tampered column must become a problem, not an exception while reading.
        rows = database.execute_sql(*query.sql()).fetchall()
        if not rows:
            return problems
        for raw in rows:
            values = dict(zip(_NAMES, raw, strict=True))
            problems.extend(_check_event(values, prev_seq, prev_hash))
            prev_seq, prev_hash = values["seq"], values["hash"]
        after = rows[-1][0]


def _check_event(values: dict[str, Any], prev_seq: int, prev_hash: str) -> list[LogProblem]:
    seq, stored_prev = values["seq"], values["prev_hash"]
    found = []
    if seq != prev_seq + 1:
        found.append(
            f"events #{prev_seq + 1} to #{seq - 1} are missing (removed)"
            if seq > prev_seq + 1
            else f"out of sequence after event #{prev_seq}"
        )
    elif stored_prev != prev_hash:
        found.append(
            f"prev_hash does not match the hash of event #{prev_seq} "
            "(an event was removed, inserted or reordered)"
        )
    try:
        at = AuditEvent.at.python_value(values["at"])
        record = {
            "format": values["format"],
            "at": at.isoformat(),
            "actor": values["actor"],
            "kind": values["kind"],
            "details": json.loads(values["details"]),
        }
        canonical = canonical_json_plain(record)
    except (TypeError, ValueError, AttributeError) as exc:
        found.append(f"contents unreadable ({exc}): the event was altered")
    else:
        if chain_hash_text(canonical, stored_prev or "") != values["hash"]:
            found.append("hash does not match the event's contents: the event was altered")
    return [LogProblem(seq, values["kind"], problem) for problem in found]


_HEAD_SQL = 'SELECT "seq", "hash" FROM "audit_event" ORDER BY "seq" DESC LIMIT 1'
_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.format,
    AuditEvent.at,
    AuditEvent.actor,
    AuditEvent.kind,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)
_NAMES = [c.name for c in _COLUMNS]
