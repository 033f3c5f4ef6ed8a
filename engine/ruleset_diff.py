"""Rule-level differences between two versions of a rule set, as JSON values.

What a reviewer asks before approving: which rules were added or removed, what changed in each
rule field by field, which outcome fields, values and defaults changed, whether the firing
order of the rules both versions share moved, and which [[test]] cases came or went; and, for
versions that carry files (a reminder version's templates), which files came, went or changed,
line by line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from engine.ruleset import OutcomeField, Rule, RuleSet
from engine.trace import to_jsonable

RULE_FIELDS = ("name", "priority", "when", "then", "set", "reason")
SETTINGS = ("title", "hit_policy")


def rule_json(rule: Rule) -> dict[str, Any]:
    """A rule's fields as written (the `when` as its text)."""
    return to_jsonable(
        {
            "id": rule.id,
            "name": rule.name,
            "priority": rule.priority,
            "when": rule.when_text,
            "then": dict(rule.then),
            "set": dict(rule.set),
            "reason": rule.reason,
        }
    )


def outcome_json(spec: OutcomeField) -> dict[str, Any]:
    """An outcome field's declaration."""
    return to_jsonable(
        {
            "type": spec.type,
            "values": list(spec.values) if spec.values is not None else None,
            "default": spec.default,
            "min": spec.minimum,
            "max": spec.maximum,
        }
    )


def diff_rulesets(old: RuleSet, new: RuleSet) -> dict[str, Any]:
    """What changed from `old` to `new`. `same_rules` is true when nothing a decision depends
    on changed: the texts differ in comments, layout, descriptions or [[test]] cases only."""
    settings = [
        {"field": name, "from": getattr(old, name), "to": getattr(new, name)}
        for name in SETTINGS
        if getattr(old, name) != getattr(new, name)
    ]
    result = {
        "settings": settings,
        "outcome": _outcome_diff(old.outcome, new.outcome),
        "rules": _rules_diff(old.rules, new.rules),
        "firing_order": _order_diff(old.rules, new.rules),
        "tests": {
            "added": [t.name for t in new.tests if t.name not in {o.name for o in old.tests}],
            "removed": [t.name for t in old.tests if t.name not in {n.name for n in new.tests}],
        },
    }
    unchanged = (
        not settings
        and not any(result["outcome"].values())
        and not any(result["rules"].values())
        and result["firing_order"] is None
    )
    return {"same_rules": unchanged, **result}


def _outcome_diff(old: dict[str, OutcomeField], new: dict[str, OutcomeField]) -> dict[str, Any]:
    changed = []
    for name in [n for n in new if n in old]:
        before, after = outcome_json(old[name]), outcome_json(new[name])
        changes = [
            {"attribute": key, "from": before[key], "to": after[key]}
            for key in before
            if before[key] != after[key]
        ]
        if changes:
            changed.append({"field": name, "changes": changes})
    return {
        "added": [{"field": n, **outcome_json(new[n])} for n in new if n not in old],
        "removed": [{"field": n, **outcome_json(old[n])} for n in old if n not in new],
        "changed": changed,
    }


def _rules_diff(old: tuple[Rule, ...], new: tuple[Rule, ...]) -> dict[str, Any]:
    before = {rule.id: rule_json(rule) for rule in old}
    after = {rule.id: rule_json(rule) for rule in new}
    changed = []
    for rule_id, rule in after.items():
        if rule_id not in before:
            continue
        changes = [
            {"field": key, "from": before[rule_id][key], "to": rule[key]}
            for key in RULE_FIELDS
            if before[rule_id][key] != rule[key]
        ]
        if changes:
            changed.append({"id": rule_id, "changes": changes})
    return {
        "added": [rule for rule_id, rule in after.items() if rule_id not in before],
        "removed": [rule for rule_id, rule in before.items() if rule_id not in after],
        "changed": changed,
    }


def _order_diff(old: tuple[Rule, ...], new: tuple[Rule, ...]) -> dict[str, list[str]] | None:
    """The firing order of the rules both versions have, when it differs (a priority change
    or rules of equal priority swapped in the file)."""
    shared = {rule.id for rule in old} & {rule.id for rule in new}
    before = [rule.id for rule in old if rule.id in shared]
    after = [rule.id for rule in new if rule.id in shared]
    return None if before == after else {"from": before, "to": after}


def diff_files(
    old: Mapping[str, str] | None, new: Mapping[str, str] | None
) -> dict[str, Any] | None:
    """Files (a reminder version's templates, by path) added, removed and changed from `old` to
    `new`, each change with its unified diff; None when neither version has files."""
    if old is None and new is None:
        return None
    old, new = old or {}, new or {}
    changed = []
    for path in sorted(set(old) & set(new)):
        if old[path] != new[path]:
            lines = difflib.unified_diff(
                old[path].splitlines(keepends=True),
                new[path].splitlines(keepends=True),
                f"a/{path}",
                f"b/{path}",
            )
            changed.append({"path": path, "diff": "".join(_ended(line) for line in lines)})
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": changed,
    }


def _ended(line: str) -> str:
    """A diff line with its line end (a file's last line may have none)."""
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
