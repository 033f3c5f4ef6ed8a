"""Reading one stored decision as an auditor does, for the HTTP API, the CLI and the console
alike: the version evidence (the exact rule text that made it and that version's approval
history), why the rules ranked above the deciding one did not apply (why-not), and for a
credit decision that was referred or declined, what would change it.

Why-not and what-would-change are computed when asked, from the stored facts and the stored
version's text (api.audit_replay parses it as replay does), so deciding stays as fast as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.audit_replay import StoredVersions, UnknownDecision, typed_facts
from engine import explain
from engine.errors import EngineError
from engine.ruleset import sha256_of
from engine.runtime import Engine


class NotExplainable(Exception):
    """Why-not does not apply to this decision (HTTP 422 naming why_not, exit 2)."""


def _find(decision_id: str) -> dict[str, Any]:
    from api.decision_views import find_decision

    found = find_decision(decision_id)
    if found is None:
        raise UnknownDecision(decision_id)
    return found


def version_evidence(decision_id: str) -> dict[str, Any]:
    """The version that made a stored decision: its exact text, the sha256 of that text and
    whether it is the one the decision recorded (`matches`), its state, its reminder templates
    (for reminder), and its lifecycle events (drafted, proposed, approved, activated, …, each
    with who, when and the note). UnknownDecision, or UnknownVersion when it is not stored."""
    from api.ruleset_views import version_detail

    decision = _find(decision_id)
    ref = decision["ruleset"]
    detail = version_detail(ref["kind"], ref["version"])
    found = sha256_of(detail["source"])
    return {
        "decision_id": decision["decision_id"],
        "decided_with": ref,
        "source_sha256": found,
        "matches": found == ref["sha256"] == detail["sha256"],
        **detail,
    }


def why_not(decision: Mapping[str, Any]) -> dict[str, Any]:
    """For a decision under `first`: the rule that decided, and each rule ranked above it with
    the first condition that failed and the fact values it read (engine.explain.why_not).
    NotExplainable for a version under `all` or one that cannot be read."""
    parsed = StoredVersions().for_decision(decision)
    ruleset = parsed.ruleset
    ref = decision["ruleset"]
    if ruleset is None:
        problems = "; ".join(d["problem"] for d in parsed.differences)
        raise NotExplainable(f"why_not: {problems}")
    if ruleset.hit_policy != "first":
        raise NotExplainable(
            f"why_not: {ref['kind']} version {ref['version']} decides under 'all': every rule "
            "that matches fires, so no rule is ranked above a deciding one"
        )
    try:
        facts = typed_facts(decision, ruleset)
    except EngineError as exc:
        raise NotExplainable(
            f"why_not: the stored facts do not pass the facts check: {exc}"
        ) from None
    try:
        decider = explain.deciding_rule(ruleset, [f["id"] for f in decision["fired"]])
        rows = explain.why_not(ruleset, facts, decision["fired"])
    except (TypeError, ValueError, ArithmeticError, KeyError, AttributeError) as exc:
        # Only a stored trace altered behind credo's back (verify finds it) can get here.
        raise NotExplainable(f"why_not: the stored trace cannot be read ({exc})") from None
    return {"decided_by": decider.id if decider else None, "rules": rows}


def why_not_of(decision_id: str) -> dict[str, Any]:
    """why_not of a stored decision by id, with the decision's id, kind, outcome and
    explanation; UnknownDecision, NotExplainable."""
    decision = _find(decision_id)
    return {
        "decision_id": decision["decision_id"],
        "kind": decision["kind"],
        "ruleset": decision["ruleset"],
        "outcome": decision["outcome"],
        "explanation": decision.get("explanation"),
        **why_not(decision),
    }


CHANGES_FOR = {"credit": ("decision", ("refer", "decline"))}  # kind: (field, outcomes)


def what_would_change(decision: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """For a credit decision referred or declined: each fact the deciding rule compares with
    a number that, moved just past it, makes the stored version decide otherwise (not
    `none`), e.g. "approve if new_exposure ≤ 50,000.00; now 61,250.00". None for other
    decisions; [] when no such single change exists or the version cannot be read."""
    wanted = CHANGES_FOR.get(decision["kind"])
    outcome = decision["outcome"]
    if wanted is None or not isinstance(outcome, dict) or outcome.get(wanted[0]) not in wanted[1]:
        return None
    try:
        return _changes(decision, wanted[0], outcome[wanted[0]])
    except (EngineError, TypeError, ValueError, ArithmeticError, KeyError, AttributeError):
        return []  # facts or a trace altered behind credo's back: replay and verify say so


def _changes(decision: Mapping[str, Any], name: str, current: str) -> list[dict[str, Any]]:
    ruleset = StoredVersions().for_decision(decision).ruleset
    decider = next((f for f in decision["fired"] if name in (f.get("then") or {})), None)
    rule = ruleset.rule(decider["id"]) if ruleset and decider else None
    if rule is None:
        return []
    engine = Engine()
    try:
        facts = typed_facts(decision, ruleset)
        seen = dict(facts)
        for fired in decision["fired"]:
            seen.update(fired.get("set") or {})
        found = []
        for change in explain.changes(rule, seen, facts):
            moved = {**facts, change.fact: change.value}
            evaluation = engine.evaluate(ruleset, moved)
            outcome = evaluation.outcome.get(name)
            if outcome in (current, "none", None):
                continue
            by = next((f.id for f in evaluation.fired if name in f.then), None)
            found.append(
                {
                    "fact": change.fact,
                    "now": _plain(change.now),
                    "must_be": f"{change.op} {_plain(change.limit)}",
                    "outcome": {name: outcome},
                    "rule": by,
                    "text": change.text(outcome),
                }
            )
        return found
    finally:
        for sha in engine.loaded():
            engine.unload(sha)


def _plain(value: Any) -> Any:
    from engine.trace import to_jsonable

    return to_jsonable(value)


__all__ = [
    "NotExplainable",
    "version_evidence",
    "what_would_change",
    "why_not",
    "why_not_of",
]
