"""Decisions and their traces: the evaluation result, reason templates, canonical JSON, hashes.

The canonical JSON form is what the hash chain signs and what replay compares byte for byte, so
it lives here, once: sorted keys, no spaces, UTF-8, Decimal money as strings with two decimals,
dates as ISO 8601.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring  # how _CANONICAL writes a string (and a key)
from typing import Any

MONEY_QUANTUM = Decimal("0.01")


@dataclass(frozen=True)
class FiredRule:
    """One rule that fired, in firing order."""

    id: str
    name: str
    priority: int
    reason: str
    then: dict[str, Any]
    set: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """This fired rule as JSON values (money in `then` and `set` as '12.30' strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "priority": self.priority,
            "reason": self.reason,
            "then": to_jsonable(self.then),
            "set": to_jsonable(self.set),
        }


@dataclass(frozen=True)
class Evaluation:
    """What one rule set decided for one set of facts."""

    kind: str
    outcome: dict[str, Any]
    reasons: list[str]
    fired: list[FiredRule]
    derived: dict[str, Any] = field(default_factory=dict)
    ruleset_sha256: str = ""
    engine_us: int = 0

    def trace_json(self) -> dict[str, Any]:
        """The part of a decision that replay must reproduce exactly."""
        return {
            "outcome": to_jsonable(self.outcome),
            "reasons": list(self.reasons),
            "fired": [f.to_json() for f in self.fired],
        }


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_jsonable(value: Any) -> Any:
    """Plain JSON values for facts, outcomes and records: Decimal money as '12.30' strings."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): to_jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [to_jsonable(v) for v in value]
    if kind is Decimal:
        return str(value.quantize(MONEY_QUANTUM))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value.quantize(MONEY_QUANTUM))
    return value


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """The one serialisation that hashes and replay comparisons use."""
    return _CANONICAL.encode(to_jsonable(value))


def canonical_json_plain(value: Any) -> str:
    """canonical_json of a value that holds JSON types only (TypeError otherwise)."""
    return _CANONICAL.encode(value)


def canonical_object(members: Mapping[str, str]) -> str:
    """canonical_json of an object whose members are given as their canonical JSON texts, by
    key: the same text, without encoding the members again (a stored decision keeps each part's
    canonical JSON, and its hash signs the whole record's)."""
    return "{" + ",".join(f"{encode_basestring(k)}:{members[k]}" for k in sorted(members)) + "}"


def chain_hash(record: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 over a record's canonical JSON and the previous record's hash (SPEC §5)."""
    return chain_hash_text(canonical_json(record), prev_hash)


def chain_hash_text(canonical: str, prev_hash: str) -> str:
    """chain_hash for a record whose canonical JSON is already at hand."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical.encode("utf-8"))
    return digest.hexdigest()


GENESIS_HASH = "0" * 64
