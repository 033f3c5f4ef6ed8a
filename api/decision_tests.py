"""Decision → [[test]] case: pin what a stored decision decided, so a rule change that would
decide it otherwise fails its tests (`credo rules add-test`, POST …/versions/{n}/test-cases).

The case holds the decision's facts and its outcome (fields left empty are left out). It is
appended to a rule file the user names, the file's earlier bytes untouched, or to the text of a
stored version, which becomes a new draft and goes through the lifecycle. Either way the case
must pass on the result before anything is written or stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.lifecycle import (
    Actor,
    InvalidInput,
    Policy,
    Refused,
    UnknownVersion,
    allow,
    clean_note,
    draft_version,
    stored_version,
    validate_source,
)
from api.lifecycle_rules import unstorable
from engine.checks import check_ruleset, describe
from engine.test_cases import append_test_case, render_test_case
from engine.text import text_problem

NAME_LENGTH = 200


def case_from_decision(decision_id: str, name: str | None = None) -> dict[str, Any]:
    """The [[test]] case pinning a stored decision: {kind, decision_id, version, name, text}.
    UnknownVersion when there is no such decision; InvalidInput for a bad name."""
    from storage.decisions import get_decision

    lookable = 0 < len(decision_id) <= 64 and not unstorable(decision_id)
    found = get_decision(decision_id) if lookable else None
    if found is None:
        raise UnknownVersion(f"no decision {decision_id[:80]!r}")
    who = found["customer_id"] or "facts given"
    name = (name or f"decision {decision_id[:8]}: {who} as of {found['as_of']}").strip()
    if not name or len(name) > NAME_LENGTH:
        raise InvalidInput("name", f"expected 1 to {NAME_LENGTH} characters")
    if text_problem(name) is not None:  # the TOML would escape it; the results could not hold it
        raise InvalidInput("name", text_problem(name))
    version = found["ruleset"]["version"]
    fired = ", ".join(rule["id"] for rule in found["fired"]) or "none"
    comment = [
        f"Pinned from decision {decision_id} ({found['kind']} version {version},",
        f"{who} as of {found['as_of']}); rules fired: {fired}.",
    ]
    try:
        text = render_test_case(name, found["facts"], found["outcome"], comment)
    except ValueError as exc:
        raise InvalidInput("name", str(exc)) from None
    return {
        "kind": found["kind"],
        "decision_id": decision_id,
        "version": version,
        "name": name,
        "text": text,
    }


def add_test_to_file(
    path: Path, decision_id: str, name: str | None, policy: Policy
) -> dict[str, Any]:
    """Append the decision's case to the rule file at `path`, once it passes there."""
    case = case_from_decision(decision_id, name)
    try:
        source = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("file", f"{path}: cannot read it: {exc}") from None
    added = _checked(source, case, str(path), policy)
    with path.open("ab") as file:  # appended: the bytes before stay as they were
        file.write(added.encode("utf-8"))
    return {**case, "file": str(path)}


def add_test_to_draft(
    kind: str | None,
    version: int | None,
    decision_id: str,
    actor: Actor,
    policy: Policy,
    name: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A new draft of `kind` (default: the decision's): version `version` (default: the active
    one) with the decision's case appended, and that version's templates. Returns the draft
    (without its source), the version it was made from and the case."""
    from storage import rulesets

    allow(actor, "draft")
    case = case_from_decision(decision_id, name)
    kind = kind or case["kind"]
    if case["kind"] != kind:
        raise InvalidInput(
            "decision_id", f"decision {decision_id} is a {case['kind']} decision, not {kind}"
        )
    if version is None:
        active = rulesets.get_active(kind)
        if active is None:
            raise UnknownVersion(f"rule set {kind} has no active version to start from")
        version = active["version"]
    base = stored_version(kind, version)
    note = clean_note(note) or f"version {version} with a test case from decision {decision_id}"
    added = _checked(base["source"], case, f"{kind} version {version} + test case", policy)
    draft = draft_version(kind, base["source"] + added, note, actor, carry_from=version)
    return {**draft, "base_version": version, "test_case": case}


def _checked(source: str, case: dict[str, Any], origin: str, policy: Policy) -> str:
    """The text appended to `source` for the case, once the result validates and the case
    passes on it; Refused (with the case) when it fails."""
    if not source.strip():
        raise InvalidInput("file", f"{origin}: empty rule file")
    text = append_test_case(source, case["text"])
    kind = case["kind"]
    before = validate_source(source, origin, kind)
    if case["name"] in {test.name for test in before.tests}:
        raise InvalidInput(
            "name", f"{origin} has a [[test]] named {case['name']!r} already: choose another name"
        )
    result = check_ruleset(validate_source(text, origin, kind), policy.smoke_timeout)
    mine = next((c for c in result.cases if c["name"] == case["name"]), None)
    if mine is None or not mine["passed"]:
        reasons = "; ".join(p.message for p in result.problems)
        if mine is not None:
            reasons = ", ".join(
                f"{field}: expected {describe(expected)}, got {describe(mine['actual'].get(field))}"
                for field, expected in mine["expected"].items()
                if mine["actual"].get(field) != expected
            ) or (mine.get("error") or "")
        raise Refused(
            f"the case must pass: {origin} decides decision {case['decision_id']} otherwise "
            f"({reasons}); nothing was written",
            [mine] if mine else [],
        )
    return text[len(source) :]
