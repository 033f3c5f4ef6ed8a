"""Retention: pruning the oldest decisions behind a checkpoint (issue 15, item 9).

Pruning deletes the decisions up to a seq, after recording a checkpoint: that seq and the
hash of the decision stored there, which the next remaining decision's prev_hash must equal.
Verification then starts at the checkpoint (storage.decisions.chain) and still proves every
decision that remains. Checkpoints are append-only rows of `chain_checkpoint` (migration 19);
`record_checkpoint` is the one way in, for any code that cuts the chain. A prune appends a
`chain.pruned` event to the operator log (storage.audit_log) in the same transaction: the
checkpoint's seq and hash, the cut, the count and who pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import peewee as pw

from storage.db import LockKey, database, write_lock
from storage.models import BaseModel, Decision, DecisionTag, UtcDateTimeField, now_utc


class ChainCheckpoint(BaseModel):
    """The chain's state at a cut: decisions up to `seq` were deleted; `hash` was its hash."""

    id = pw.AutoField()
    seq = pw.BigIntegerField()
    hash = pw.CharField(max_length=64)
    before = UtcDateTimeField()  # the decisions created before this were to go
    pruned = pw.BigIntegerField()  # how many rows were deleted
    recorded_at = UtcDateTimeField()
    recorded_by = pw.CharField(max_length=200)

    class Meta:
        table_name = "chain_checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    before: datetime
    pruned: int
    recorded_at: datetime
    recorded_by: str

    def describe(self) -> str:
        return (
            f"checkpoint of {self.recorded_at:%Y-%m-%d %H:%M} UTC by {self.recorded_by}: "
            f"decisions created before {self.before:%Y-%m-%d} pruned"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "before": self.before.isoformat(),
            "pruned": self.pruned,
            "recorded_at": self.recorded_at.isoformat(),
            "recorded_by": self.recorded_by,
        }


def _checkpoint(row: ChainCheckpoint) -> Checkpoint:
    return Checkpoint(row.seq, row.hash, row.before, row.pruned, row.recorded_at, row.recorded_by)


def record_checkpoint(seq: int, hash: str, before: datetime, pruned: int, by: str) -> Checkpoint:
    """Store a checkpoint (in the caller's transaction, if one is open); return it."""
    row = ChainCheckpoint.create(
        seq=seq, hash=hash, before=before, pruned=pruned, recorded_at=now_utc(), recorded_by=by
    )
    return _checkpoint(row)


def latest_checkpoint() -> Checkpoint | None:
    """The newest checkpoint (the chain starts after its seq), or None if nothing was pruned.
    None too on a database older than migration 19."""
    try:
        with database.atomic():  # a missing table must not spoil the caller's transaction
            row = ChainCheckpoint.select().order_by(ChainCheckpoint.seq.desc()).first()
    except (pw.OperationalError, pw.ProgrammingError):
        return None
    return _checkpoint(row) if row else None


def prunable_through(before: datetime) -> tuple[int, int] | None:
    """(last seq, how many rows) of the decisions a prune before `before` would delete: every
    decision up to the first one created on or after `before` (seq order is the chain's); None
    when there is none to delete."""
    first_kept = (
        Decision.select(pw.fn.MIN(Decision.seq)).where(Decision.created_at >= before).scalar()
    )
    query = Decision.select(pw.fn.MAX(Decision.seq), pw.fn.COUNT(Decision.seq))
    if first_kept is not None:
        query = query.where(Decision.seq < first_kept)
    last, count = query.tuples().get()
    return (last, count) if last is not None else None


def prune_through(seq: int, before: datetime, by: str) -> Checkpoint:
    """Record the checkpoint at decision `seq`, then delete the decisions up to it with their
    tags and append the `chain.pruned` event to the operator log, in one transaction under the
    chain lock (the log's lock is taken last, as everywhere). LookupError when there is no
    decision `seq`."""
    from storage.audit_log import append_event, storable

    with write_lock(LockKey.DECISION_CHAIN):
        row = Decision.select(Decision.hash).where(Decision.seq == seq).first()
        if row is None:
            raise LookupError(f"no decision #{seq}")
        count = Decision.select().where(Decision.seq <= seq).count()
        checkpoint = record_checkpoint(seq, row.hash, before, count, by)
        DecisionTag.delete().where(DecisionTag.decision <= seq).execute()
        Decision.delete().where(Decision.seq <= seq).execute()
        details = {
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "before": checkpoint.before.isoformat(),
            "pruned": checkpoint.pruned,
        }
        append_event("chain.pruned", storable(by), details, at=checkpoint.recorded_at)
    return checkpoint
