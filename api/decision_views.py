"""Reading stored decisions, for the HTTP API and the console alike: filters, pages, one
decision with the conditions of the rules that fired and the fact values they tested."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from engine import expr
from engine.errors import EngineError
from engine.ruleset import RuleSet

ID_LENGTH = 64


def decision_filter(
    customer_id: str | None = None,
    kind: str | None = None,
    outcome: Iterable[str] = (),
    rule: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    version: int | None = None,
):
    """storage's DecisionFilter; `outcome` holds "field=value" items, all of which must hold;
    `created_to` is exclusive; `version` is the rule-set version (of `kind`)."""
    from storage.decisions import DecisionFilter

    wanted: dict[str, str] = {}
    for item in outcome:
        field, _, value = item.partition("=")
        wanted[field] = value
    return DecisionFilter(
        customer_id=customer_id or None,
        kind=kind or None,
        outcome=wanted,
        rule_id=rule or None,
        created_from=created_from,
        created_to=created_to,
        ruleset_version=version,
    )


def list_decisions(filters: Any, cursor: int | None, limit: int, newest_first: bool = True):
    """One page of decisions matching `filters` (storage.decisions.DecisionPage); `cursor` is
    the previous page's next_cursor."""
    from storage.decisions import query_decisions

    return query_decisions(filters, after=cursor, limit=limit, newest_first=newest_first)


def find_decision(decision_id: str) -> dict[str, Any] | None:
    """One stored decision by id, or None (also for ids no decision can have)."""
    from storage.decisions import get_decision

    if not 0 < len(decision_id) <= ID_LENGTH or not decision_id.isprintable():
        return None
    if any(0xD800 <= ord(c) <= 0xDFFF for c in decision_id):
        return None
    return get_decision(decision_id)


@functools.lru_cache(maxsize=64)
def _parsed(kind: str, version: int, sha256: str) -> RuleSet | None:
    from api.lifecycle_rules import parse_text
    from storage.rulesets import get_version

    stored = get_version(kind, version)
    if stored is None or stored["sha256"] != sha256:
        return None
    try:
        return parse_text(stored["source"], f"{kind} version {version}")
    except EngineError:  # a version that no longer parses still has its decisions shown
        return None


def fired_conditions(decision: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each rule that fired, as stored, with `when` (its condition as written in the version
    that decided) and `tested` (the value of every fact the condition reads, as the decision
    saw it; a fact an earlier rule derived comes from that rule's `set`). `when` is None when
    the version is not stored under that hash any more."""
    ruleset = decision["ruleset"]
    parsed = _parsed(ruleset["kind"], ruleset["version"], ruleset["sha256"])
    known: dict[str, Any] = dict(decision["facts"])
    rows = []
    for fired in decision["fired"]:
        rule = parsed.rule(fired["id"]) if parsed else None
        tested: dict[str, Any] = {}
        if rule is not None:
            for name in dict.fromkeys(expr.facts_read(rule.when)):
                tested[name] = known.get(name, "(absent)")
        rows.append({**fired, "when": rule.when_text if rule else None, "tested": tested})
        known.update(fired.get("set") or {})
    return rows
