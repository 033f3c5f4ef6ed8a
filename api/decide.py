"""Deciding one request: the one use case behind `POST /v1/decisions/{kind}` and `credo decide`,
so the API and the command line decide the same facts with the same rule-set version.

By default the kind's active version decides, and the decision is stored (in the hash chain)
before it is returned: a stored decision is always made by an active version. A what-if — a dry
run — is evaluated the same way and never stored: no decision row, no place in the chain, no
idempotency record; its answer says `"dry_run": true` and has no decision_id. Only a what-if may
evaluate another text: a stored version by its number (a draft, a retired version, …) or a rule
file's text (`credo decide --rules FILE`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from api.arms import Challenger, arm_versions
from api.lifecycle_rules import InvalidInput, UnknownVersion, parsed, stored_version
from api.usecases import ActiveRuleSet, decide_one
from engine.ruleset import RuleSet
from engine.runtime import Engine
from engine.trace import to_jsonable


@dataclass(frozen=True)
class DecisionRequest:
    """One request for a decision, as a face parsed it.

    `customer_id` and/or `facts` as gather_facts takes them; `via` is how it is asked ("api",
    "cli"), which a stored decision records; `dry_run` makes it a what-if; `version` (a stored
    version's number) or `rules` (a parsed rule text) make it evaluate that instead of the
    active version: what-ifs only.
    """

    kind: str
    customer_id: str | None
    facts: Mapping[str, Any] | None
    as_of: date
    requested_by: str
    via: str
    dry_run: bool = False
    version: int | None = None
    rules: RuleSet | None = None


class UnknownKind(LookupError):
    """No active rule set of that kind (HTTP 404, exit 2): the message names the known kinds."""

    def __init__(self, kind: str, known: list[str]):
        names = ", ".join(known) or "none (run `credo init`)"
        super().__init__(f"unknown decision kind {kind[:60]!r}; known kinds: {names}")
        self.kind = kind


def decide(
    request: DecisionRequest,
    active: Mapping[str, ActiveRuleSet],
    engine: Engine,
    store: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    challengers: Mapping[str, Challenger] | None = None,
) -> dict[str, Any]:
    """Decide `request` and return the decision: stored by `store` (default: appended to the
    chain) and returned as stored; or, for a what-if, evaluated only and returned as JSON
    values with `"dry_run": true` and without decision_id.

    `active` holds the active version of each kind (the snapshot one decision uses); `engine`
    evaluates under its lock. For a stored customer the rule sets `kind` is ordered after
    (`after`) decide first and give it their outcome as facts (api.usecases.decide_one).
    Raises RuleFileError (the rule sets do not hold together), InvalidInput (`version` or
    `rules` without a dry run, a rule text of another kind), UnknownKind, UnknownVersion,
    UnknownCustomer, FactError.

    Under champion/challenger (`challengers`, by kind: api.arms), a stored customer is decided
    by the version of its arm, for the kind asked and the kinds it is after, and the decision
    records its arm; decisions from given facts, and what-ifs of another text, use the
    champion (the active version) and record no arm.
    """
    versions: Mapping[str, ActiveRuleSet] = active
    arms: dict[str, dict[str, Any]] = {}
    if request.customer_id is not None and request.version is None and request.rules is None:
        versions, arms = arm_versions(active, challengers or {}, request.customer_id)
    ruleset, info = _version_for(request, versions)
    chosen = dict(versions)  # the rule sets `kind` is after decide with these versions too
    chosen[request.kind] = ActiveRuleSet(request.kind, info["version"], info["sha256"], ruleset)
    cached = {a.ruleset.sha256 for a in active.values()}
    cached |= {c.version.sha256 for c in (challengers or {}).values()}
    with engine.lock:
        try:
            record = decide_one(
                engine.evaluate, chosen, request.kind, request.customer_id, request.facts,
                request.as_of, request.requested_by, via=request.via,
                arm=arms.get(request.kind),
            )  # fmt: skip
        finally:
            if ruleset.sha256 not in cached:
                engine.unload(ruleset)  # a what-if's text: not kept in the engine
    if request.dry_run:
        return what_if(record)
    if store is None:
        from storage.decisions import append_decision

        store = append_decision
    return store(record)


def what_if(record: dict[str, Any]) -> dict[str, Any]:
    """A what-if's answer: the decision record as JSON values, marked `dry_run`, without the
    decision_id a stored decision would have."""
    answer = to_jsonable({k: v for k, v in record.items() if k != "decision_id"})
    return {**answer, "dry_run": True}


def _version_for(
    request: DecisionRequest, active: Mapping[str, ActiveRuleSet]
) -> tuple[RuleSet, dict[str, Any]]:
    """The rule set that decides the request, and the {kind, version, sha256} it records."""
    kind = request.kind
    if request.version is not None or request.rules is not None:
        what = "version" if request.version is not None else "rules"
        if not request.dry_run:
            raise InvalidInput(
                what,
                f"evaluates another text: what-ifs (dry runs) only, never stored; a stored "
                f"decision is always made by the active version of {kind}",
            )
    if request.rules is not None:
        if request.rules.kind != kind:
            raise InvalidInput("rules", f"a {request.rules.kind} rule set, not {kind}")
        ruleset = request.rules
        return ruleset, {"kind": kind, "version": None, "sha256": ruleset.sha256}
    if request.version is not None:
        stored = stored_version(kind, request.version)  # UnknownVersion: no such kind/version
        ruleset = parsed(stored)
        return ruleset, {"kind": kind, "version": stored["version"], "sha256": stored["sha256"]}
    found = active.get(kind)
    if found is None:
        raise UnknownKind(kind, sorted(active))
    return found.ruleset, {"kind": kind, "version": found.version, "sha256": found.sha256}


__all__ = ["DecisionRequest", "UnknownKind", "UnknownVersion", "decide", "what_if"]
