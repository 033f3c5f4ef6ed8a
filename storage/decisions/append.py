"""Appending decisions to the hash chain (SPEC §5).

Each decision gets the next `seq`, the previous decision's hash as `prev_hash`, and
`hash = engine.trace.chain_hash(record, prev_hash)` over its record (storage.decisions.shape).
Two ways in, one code path: `append_decision` stores one decision (an API call, `credo decide
--store`), `append_decisions` / `append_prepared` a batch (a run's batch, the demo) in one
transaction. Either takes the chain lock (a PostgreSQL advisory lock, SQLite's BEGIN
IMMEDIATE), reads the chain head under it and inserts after it. `seq`, head + 1, is the primary
key, so even a writer that skipped the lock could not fork the chain: it would collide on seq.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.trace import GENESIS_HASH, chain_hash_text
from storage.db import LockKey, database, insert_rows, write_lock
from storage.decisions import shape
from storage.models import Decision, DecisionTag

CHAIN_LOCK = LockKey.DECISION_CHAIN  # appends to the decision chain queue on it


@dataclass(frozen=True)
class PreparedDecision:
    """A decision checked and encoded for the chain, all but its place in it (seq, hashes).

    Preparing is pure CPU work that can happen anywhere (a nightly worker process); appending
    prepared decisions under the chain lock is then only hashing and inserting.
    """

    record: dict[str, Any]  # the record as JSON values (shape.encode)
    canonical: str  # the record's canonical JSON: what its hash signs
    row: tuple  # database values of shape.COLUMNS
    tags: tuple[tuple[str, str], ...]  # (name, value) of DecisionTag

    def for_writer(self) -> PreparedDecision:
        """This decision with only the record fields a run's writer reads besides the row:
        less to send from a worker process to the writing one than the whole record with its
        facts and trace, which `canonical` and `row` hold."""
        slim = {name: self.record[name] for name in _WRITER_FIELDS}
        return PreparedDecision(slim, self.canonical, self.row, self.tags)


_WRITER_FIELDS = ("decision_id", "kind", "customer_id", "as_of", "outcome")


def prepare_decisions(records: Sequence[Mapping[str, Any]]) -> list[PreparedDecision]:
    """Check and encode decisions; raises InvalidRecord naming the field of the first bad one."""
    memo: shape.Memo = {}
    prepared = []
    for record in records:
        plain, canonical, row = shape.encode(record, memo)
        prepared.append(PreparedDecision(plain, canonical, row, _tag_pairs(plain)))
    return prepared


def append_decision(record: Mapping[str, Any]) -> dict[str, Any]:
    """Store one decision at the head of the chain; return it as stored (its record as JSON
    values, with seq, prev_hash and hash)."""
    return append_decisions([record])[0]


def append_decisions(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Store decisions in the given order, under the chain lock and in one transaction; return
    them as stored."""
    prepared = prepare_decisions(records)
    placed = append_prepared(prepared)
    return [as_stored(d, p) for d, p in zip(prepared, placed, strict=True)]


def append_prepared(prepared: Sequence[PreparedDecision]) -> list[tuple[int, str, str]]:
    """Store prepared decisions at the head of the chain, in order, under the chain lock and in
    one transaction (the caller's, if one is open); (seq, prev_hash, hash) of each."""
    if not prepared:
        return []
    with write_lock(CHAIN_LOCK):
        head = database.execute_sql(_HEAD_SQL).fetchone()
        seq, prev = head if head else (0, GENESIS_HASH)
        rows, tags, placed = [], [], []
        for decision in prepared:
            seq += 1
            digest = chain_hash_text(decision.canonical, prev)
            rows.append((seq, *decision.row, prev, digest))
            tags.extend((seq, name, value) for name, value in decision.tags)
            placed.append((seq, prev, digest))
            prev = digest
        insert_rows(Decision, _COLUMNS, rows)
        insert_rows(DecisionTag, _TAG_COLUMNS, tags)
    return placed


def as_stored(decision: PreparedDecision, placed: tuple[int, str, str]) -> dict[str, Any]:
    """A prepared decision as stored, from its place (seq, prev_hash, hash) in the chain."""
    seq, prev, digest = placed
    return {**decision.record, "seq": seq, "prev_hash": prev, "hash": digest}


def tag_value(value: Any) -> str:
    """How an outcome value is matched by a filter: strings as they are, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _tag_pairs(record: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(name, value) of the DecisionTag rows of a decision's record."""
    tags = [(f"outcome.{k}", tag_value(v)) for k, v in record["outcome"].items()]
    rule_ids = dict.fromkeys(f["id"] for f in record["fired"])
    return (*tags, *(("rule", rule_id) for rule_id in rule_ids))


_HEAD_SQL = 'SELECT "seq", "hash" FROM "decision" ORDER BY "seq" DESC LIMIT 1'
_COLUMNS = (Decision.seq, *shape.COLUMNS, Decision.prev_hash, Decision.hash)
_TAG_COLUMNS = (DecisionTag.decision, DecisionTag.name, DecisionTag.value)
