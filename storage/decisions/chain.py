"""The decision chain as a whole: its head, and verification of every link (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.trace import GENESIS_HASH, chain_hash
from storage.db import database
from storage.decisions import shape
from storage.decisions.queries import READ_CHUNK
from storage.models import Decision


@dataclass(frozen=True)
class ChainProblem:
    """One row where the chain does not hold."""

    seq: int
    decision_id: str | None
    problem: str

    def __str__(self) -> str:
        return f"decision #{self.seq} ({self.decision_id}): {self.problem}"


def chain_head() -> tuple[int, str]:
    """The last decision's seq and hash; (0, GENESIS_HASH) when none is stored."""
    head = Decision.select(Decision.seq, Decision.hash).order_by(Decision.seq.desc()).first()
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


def verify_chain(first_seq: int | None = None, last_seq: int | None = None) -> list[ChainProblem]:
    """Check the chain from `first_seq` to `last_seq` (default: all); [] when it holds.

    Each row's hash is recomputed from its columns, read back with the fields of the row's
    record format (finds altered rows), its prev_hash compared with the hash of the row before
    it and seq numbers checked for gaps (finds removed, inserted or reordered rows). Removing
    the newest rows leaves a valid shorter chain: compare `chain_head()` with a copy kept
    elsewhere to detect that.
    """
    prev_seq, prev_hash = 0, GENESIS_HASH
    after = None
    if first_seq is not None and first_seq > 1:
        after = first_seq - 1
        before = (
            Decision.select(Decision.seq, Decision.hash)
            .where(Decision.seq < first_seq)
            .order_by(Decision.seq.desc())
            .first()
        )
        if before is not None:
            prev_seq, prev_hash = before.seq, before.hash
    problems: list[ChainProblem] = []
    while True:
        query = Decision.select(*_COLUMNS).order_by(Decision.seq).limit(READ_CHUNK)
        if after is not None:
            query = query.where(Decision.seq > after)
        if last_seq is not None:
            query = query.where(Decision.seq <= last_seq)
        # Raw rows: a tampered column must become a problem, not an exception while reading.
        rows = database.execute_sql(*query.sql()).fetchall()
        if not rows:
            return problems
        for raw in rows:
            values = dict(zip(_NAMES, raw, strict=True))
            problems.extend(_check_row(values, prev_seq, prev_hash))
            prev_seq, prev_hash = values["seq"], values["hash"]
        after = rows[-1][0]


def _check_row(values: dict[str, Any], prev_seq: int, prev_hash: str) -> list[ChainProblem]:
    seq, stored_prev = values["seq"], values["prev_hash"]
    found = []
    if seq != prev_seq + 1:
        found.append(
            f"decisions #{prev_seq + 1} to #{seq - 1} are missing (removed)"
            if seq > prev_seq + 1
            else f"out of sequence after decision #{prev_seq}"
        )
    elif stored_prev != prev_hash:
        found.append(
            f"prev_hash does not match the hash of decision #{prev_seq} "
            "(a decision was removed, inserted or reordered)"
        )
    try:
        read = {c.name: c.python_value(values[c.name]) for c in shape.COLUMNS}
        record = shape.decode(read)
    except (TypeError, ValueError, AttributeError) as exc:
        found.append(f"contents unreadable ({exc}): the row was altered")
    else:
        if chain_hash(record, stored_prev) != values["hash"]:
            found.append("hash does not match the decision's contents: the row was altered")
    return [ChainProblem(seq, values["decision_id"], problem) for problem in found]


_COLUMNS = (Decision.seq, *shape.COLUMNS, Decision.prev_hash, Decision.hash)
_NAMES = [c.name for c in _COLUMNS]
