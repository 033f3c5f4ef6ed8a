"""The steps of POST /v1/decisions/{kind}: facts, evaluation, storage, idempotency."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any, NamedTuple

from api.http.errors import ApiProblem
from api.http.evaluator import ActiveRuleSet, evaluate
from engine.trace import canonical_json


def request_sha256(kind: str, body: dict[str, Any]) -> str:
    """What makes two requests "the same" for an Idempotency-Key: kind and validated body."""
    # The facts are checked after the key is looked up: hash a lone surrogate they may hold
    # as it is (surrogatepass), so that the check, not this hash, refuses it (422).
    text = canonical_json({"kind": kind, "body": body})
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def find_replay(requested_by: str, key: str, request_sha: str) -> dict[str, Any] | None:
    """The decision stored earlier for this key and request, if any (409 for another body)."""
    from storage import idempotency
    from storage.errors import Conflict

    try:
        return idempotency.find(requested_by, key, request_sha)
    except Conflict as exc:
        raise ApiProblem(409, str(exc), slug="idempotency-conflict") from exc


def gather_facts(body: dict[str, Any], as_of: date) -> dict[str, Any]:
    """The facts to evaluate (api.usecases.gather_facts), its errors as problems."""
    from api.usecases import UnknownCustomer
    from api.usecases import gather_facts as gather

    try:
        return gather(body.get("customer_id"), body.get("facts"), as_of)
    except UnknownCustomer as exc:
        raise ApiProblem(404, str(exc)) from exc


def decide(
    active: ActiveRuleSet, body: dict[str, Any], as_of: date, requested_by: str
) -> dict[str, Any]:
    """Evaluate the request with one rule-set version; the decision record to store."""
    from api.usecases import build_decision_record

    facts = gather_facts(body, as_of)
    evaluation = evaluate(active, facts)
    return build_decision_record(
        evaluation, active, facts, body.get("customer_id"), as_of, requested_by, via="api"
    )


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
