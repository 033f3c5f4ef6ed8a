"""Idempotency keys of decision requests (the `Idempotency-Key` header, SPEC §6).

A key is scoped to the API key name that sent it. The first request with a key stores its
decision and the hash of its request; a later request with the same key and the same request
gets that decision again, one with another request is a conflict. The check and the append
happen under the decision chain's lock, so two concurrent requests with one key cannot both
store a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import peewee as pw

from storage.db import write_lock
from storage.decisions import CHAIN_LOCK, append_decision, get_decision
from storage.errors import Conflict
from storage.models import ID_LENGTH, BaseModel, UtcDateTimeField, now_utc

MAX_KEY_LENGTH = 200


class IdempotencyKey(BaseModel):
    """The decision a (requester, key) pair produced, and a hash of the request that made it."""

    requested_by = pw.CharField(max_length=200)
    key = pw.CharField(max_length=MAX_KEY_LENGTH)
    request_sha256 = pw.CharField(max_length=64)
    decision_id = pw.CharField(max_length=ID_LENGTH)
    created_at = UtcDateTimeField()

    class Meta:
        indexes = ((("requested_by", "key"), True),)


@dataclass(frozen=True)
class Remembered:
    """A decision stored for an idempotency key, and whether it was stored before this call."""

    decision: dict[str, Any]
    replayed: bool


def find(requested_by: str, key: str, request_sha256: str) -> dict[str, Any] | None:
    """The decision stored for this key, None if none; Conflict if the key served another
    request."""
    row = IdempotencyKey.get_or_none(
        (IdempotencyKey.requested_by == requested_by) & (IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.request_sha256 != request_sha256:
        raise Conflict(
            f"Idempotency-Key {key!r} was used for another request "
            f"(decision {row.decision_id}); use a new key for a new request"
        )
    return get_decision(row.decision_id)


def append_once(
    record: Mapping[str, Any],
    requested_by: str,
    key: str,
    request_sha256: str,
) -> Remembered:
    """Store `record` for this key, unless the key already has a decision: then return that.

    Raises Conflict when the key was used for another request.
    """
    with write_lock(CHAIN_LOCK):
        earlier = find(requested_by, key, request_sha256)
        if earlier is not None:
            return Remembered(earlier, replayed=True)
        stored = append_decision(record)
        IdempotencyKey.create(
            requested_by=requested_by,
            key=key,
            request_sha256=request_sha256,
            decision_id=stored["decision_id"],
            created_at=now_utc(),
        )
    return Remembered(stored, replayed=False)


def create_table(db: pw.Database, _migrator: Any = None) -> None:
    """Migration: the idempotency_key table."""
    db.create_tables([IdempotencyKey])
