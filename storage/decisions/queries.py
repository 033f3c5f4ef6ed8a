"""Reading stored decisions: one by id, filtered pages, every match in chunks, counts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import peewee as pw

from storage.decisions import shape
from storage.models import Decision, DecisionTag

READ_CHUNK = 1000


@dataclass(frozen=True)
class DecisionFilter:
    """Which decisions to list: all given conditions hold. `created_from` is inclusive,
    `created_to` exclusive; `outcome` maps an outcome field to its value as text."""

    customer_id: str | None = None
    kind: str | None = None
    outcome: Mapping[str, str] = field(default_factory=dict)
    rule_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    ruleset_version: int | None = None  # with `kind`, that kind's version


@dataclass(frozen=True)
class DecisionPage:
    items: list[dict[str, Any]]
    next_cursor: int | None  # pass as `after` for the next page; None on the last page


def to_record(row: Decision) -> dict[str, Any]:
    """A stored decision as JSON values: its record (shape.decode) plus seq, prev_hash and
    hash."""
    return {
        "seq": row.seq,
        **shape.decode(row.__data__),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def get_decision(decision_id: str) -> dict[str, Any] | None:
    """One decision by its id, or None."""
    row = Decision.get_or_none(Decision.decision_id == decision_id)
    return to_record(row) if row else None


def get_decision_by_seq(seq: int) -> dict[str, Any] | None:
    """One decision by its place in the chain, or None."""
    row = Decision.get_or_none(Decision.seq == seq)
    return to_record(row) if row else None


def _filtered(filters: DecisionFilter) -> pw.ModelSelect:
    query = Decision.select()
    if filters.customer_id is not None:
        query = query.where(Decision.customer_id == filters.customer_id)
    if filters.kind is not None:
        query = query.where(Decision.kind == filters.kind)
    tags = [(f"outcome.{k}", str(v)) for k, v in filters.outcome.items()]
    if filters.rule_id is not None:
        tags.append(("rule", filters.rule_id))
    for name, value in tags:
        tagged = DecisionTag.select(DecisionTag.decision).where(
            (DecisionTag.name == name) & (DecisionTag.value == value)
        )
        query = query.where(Decision.seq.in_(tagged))
    if filters.created_from is not None:
        query = query.where(Decision.created_at >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(Decision.created_at < filters.created_to)
    if filters.ruleset_version is not None:
        query = query.where(Decision.ruleset_version == filters.ruleset_version)
    return query


def query_decisions(
    filters: DecisionFilter | None = None,
    *,
    after: int | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> DecisionPage:
    """One page of matching decisions in seq order; `after` is the previous page's cursor."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = _filtered(filters or DecisionFilter())
    if after is not None:
        query = query.where(Decision.seq < after if newest_first else Decision.seq > after)
    order = Decision.seq.desc() if newest_first else Decision.seq
    rows = list(query.order_by(order).limit(limit + 1))
    items = [to_record(row) for row in rows[:limit]]
    next_cursor = items[-1]["seq"] if len(rows) > limit else None
    return DecisionPage(items, next_cursor)


def iter_decisions(
    filters: DecisionFilter | None = None, chunk_size: int = READ_CHUNK
) -> Iterator[dict[str, Any]]:
    """Every matching decision in seq order, read in chunks (for exports of any size)."""
    after = None
    while True:
        page = query_decisions(filters, after=after, limit=chunk_size)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


def count_decisions(filters: DecisionFilter | None = None) -> int:
    """How many decisions match."""
    return _filtered(filters or DecisionFilter()).count()
