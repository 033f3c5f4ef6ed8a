"""The steps of POST /v1/decisions/{kind}: facts, evaluation, storage, idempotency."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any, NamedTuple

from api.http.errors import ApiProblem
from api.http.evaluator import ActiveRuleSet, evaluate_ruleset
from engine.trace import canonical_json


def request_sha256(kind: str, body: dict[str, Any]) -> str:
    """What makes two requests "the same" for an Idempotency-Key: kind and validated body."""
    return hashlib.sha256(canonical_json({"kind": kind, "body": body}).encode()).hexdigest()


def find_replay(requested_by: str, key: str, request_sha: str) -> dict[str, Any] | None:
    """The decision stored earlier for this key and request, if any (409 for another body)."""
    from storage import idempotency
    from storage.errors import Conflict

    try:
        return idempotency.find(requested_by, key, request_sha)
    except Conflict as exc:
        raise ApiProblem(409, str(exc), slug="idempotency-conflict") from exc


def decide(
    active: dict[str, ActiveRuleSet],
    kind: str,
    body: dict[str, Any],
    as_of: date,
    requested_by: str,
) -> dict[str, Any]:
    """Evaluate the request with the active version of `kind` (after the rule sets it names in
    `after`, for a stored customer: api.usecases.decide_one); the decision record to store."""
    from api.usecases import UnknownCustomer, decide_one
    from engine.errors import RuleFileError

    try:
        return decide_one(
            evaluate_ruleset, active, kind, body.get("customer_id"), body.get("facts"), as_of,
            requested_by, via="api",
        )  # fmt: skip
    except UnknownCustomer as exc:
        raise ApiProblem(404, str(exc)) from exc
    except RuleFileError as exc:  # the active versions do not hold together (never activated so)
        raise ApiProblem(409, f"the active rule sets cannot decide {kind!r}: {exc}") from exc


class Stored(NamedTuple):
    decision: dict[str, Any]  # as stored: its record, seq, prev_hash, hash
    replayed: bool  # an earlier decision, for the same Idempotency-Key and body


def store(record: dict[str, Any], requested_by: str, key: str | None, request_sha: str) -> Stored:
    """Append the decision to the chain (once per idempotency key)."""
    from storage import idempotency
    from storage.decisions import append_decision
    from storage.errors import Conflict

    if not key:
        return Stored(append_decision(record), False)
    try:
        remembered = idempotency.append_once(record, requested_by, key, request_sha)
    except Conflict as exc:
        raise ApiProblem(409, str(exc), slug="idempotency-conflict") from exc
    return Stored(remembered.decision, remembered.replayed)
