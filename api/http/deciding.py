"""The HTTP side of POST /v1/decisions/{kind} (the deciding is api.decide's): idempotency,
storage, and the use case's refusals as problems."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from api.http.errors import ApiProblem
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


@contextmanager
def problems() -> Iterator[None]:
    """The decide use case's refusals as problem+json: 404 unknown kind, customer or version,
    422 a bad `version` request (FactError has its own handler: 422 naming each fact), 409
    active rule sets that do not hold together (never activated so)."""
    from api.decide import UnknownKind
    from api.http.rulesets import lifecycle_problems
    from api.usecases import UnknownCustomer
    from engine.errors import RuleFileError

    try:
        with lifecycle_problems():
            yield
    except (UnknownKind, UnknownCustomer) as exc:
        raise ApiProblem(404, str(exc)) from exc
    except RuleFileError as exc:
        raise ApiProblem(409, f"the active rule sets cannot decide: {exc}") from exc


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
