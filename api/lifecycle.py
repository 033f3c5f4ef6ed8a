"""The rule-set lifecycle (SPEC §4, §6, §7): draft → proposed → approved → active → retired, and
rejected. One function per move, called by the HTTP API and by `credo rules …` alike; the faces
only parse input and render what these return or raise.

| move     | roles (admin may do all) | from                | to       | event                   |
|----------|--------------------------|---------------------|----------|-------------------------|
| draft    | analyst                  | (TOML text)         | draft    | drafted                 |
| test     | analyst, approver        | any                 | (same)   | none                    |
| propose  | analyst                  | draft               | proposed | proposed                |
| approve  | approver                 | proposed            | approved | approved                |
| reject   | approver                 | proposed            | rejected | rejected                |
| activate | approver                 | approved, retired   | active   | activated, rolled_back  |

Activating at a time, and champion/challenger (a version in state `challenger`), are in
api/rollout.py.

A draft that fails validation is not stored; a reminder draft is stored with its templates
(api/nightly/templates.py), given and checked, or carried over from the active version. A
version is proposed only when its [[test]] cases pass and the smoke test passes, both run in a
subprocess (engine.checks.check_ruleset), so a rule set that crashes or hangs the engine never
runs in the caller's process. With four eyes
(`[rules] four_eyes`, on by default) the approver's key has another owner than the keys that
drafted and proposed the version, whatever their roles. Activating retires the active version
in the same transaction; activating a retired version, or one older than the active version,
is a rollback and needs a note. Every move is checked and made under the rule-set lock and
recorded by storage.rulesets.record_event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from api.lifecycle_rules import (
    MAX_VERSION,
    MOVE_ROLES,
    NOTE_LENGTH,
    READ_ROLES,
    Actor,
    Credo,
    InvalidInput,
    InvalidRuleSet,
    LifecycleError,
    NotAllowed,
    Policy,
    Refused,
    UnknownVersion,
    allow,
    check_kind,
    clean_note,
    four_eyes,
    must_pass,
    parsed,
    problem_json,
    require_state,
    stored_version,
    validate_source,
)
from api.nightly.templates import (
    TEMPLATE_KINDS,
    TemplateFilesError,
    check_templates,
    has_templates,
)
from engine.checks import check_ruleset
from engine.ruleset import KIND_RE, RuleSet

__all__ = [
    "MAX_VERSION",
    "MOVE_ROLES",
    "NOTE_LENGTH",
    "READ_ROLES",
    "Actor",
    "Credo",
    "InvalidInput",
    "InvalidRuleSet",
    "LifecycleError",
    "NotAllowed",
    "Policy",
    "Refused",
    "UnknownVersion",
    "activate_version",
    "approve_version",
    "check_kind",
    "draft_version",
    "parsed",
    "problem_json",
    "propose_version",
    "publish",
    "reject_version",
    "run_version_tests",
    "stored_version",
    "templates_for",
    "validate_source",
]

Check = Callable[[dict[str, Any]], str | None]


def move(
    kind: str, version: int, state: str, event: str, actor: Actor, note: str, check: Check
) -> dict[str, Any]:
    """Under the rule-set lock: re-read the version, let `check` refuse (or name another event),
    make the move and record it; activating retires the active version, recorded too.
    Returns the version (without its source) in its new state."""
    from storage import rulesets

    with rulesets.locked():
        row = stored_version(kind, version)
        event = check(row) or event
        previous = rulesets.get_active(kind) if state == "active" else None
        moved = rulesets.set_state(kind, version, state, by=actor.name)
        rulesets.record_event(kind, version, event, by=actor.name, owner=actor.owner, note=note)
        if previous is not None:
            rulesets.record_event(
                kind,
                previous["version"],
                "retired",
                by=actor.name,
                owner=actor.owner,
                note=f"replaced by version {version}",
            )
        if state == "active":
            from api.rollout import end_on_activation

            end_on_activation(kind, version, actor.name, actor.owner)
    moved.pop("source", None)
    return moved


def draft_version(
    kind: str,
    source: str,
    note: str | None,
    actor: Actor,
    templates: Mapping[str, str] | None = None,
    *,
    carry_from: int | None = None,
) -> dict[str, Any]:
    """Store `source` as the next version of `kind`, a draft; InvalidRuleSet (nothing stored)
    when it or its templates fail validation. A reminder version is stored with `templates`,
    {path: text}, checked as `credo rules check` checks them; without them, with the files of
    version `carry_from` (default: the active version), which its drafted event names.
    Returns the version without its source."""
    allow(actor, "draft")
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise InvalidInput("kind", f"{str(kind)[:60]!r} is not a rule-set name (lowercase, _)")
    note = clean_note(note, required=True, why="say why this version exists")
    ruleset = validate_source(source, f"{kind} (draft)", kind)
    files, carried = templates_for(kind, templates, carry_from)
    return _store_draft(ruleset, note, actor, files, carried)


def templates_for(
    kind: str, templates: Mapping[str, str] | None, carry_from: int | None = None
) -> tuple[dict[str, str] | None, int | None]:
    """The files a new version of `kind` is stored with, and the version they are carried over
    from (None when given). Only kinds with templates take them (InvalidInput otherwise);
    given ones must pass check_templates (InvalidRuleSet naming each file and line)."""
    from storage import rulesets

    if not has_templates(kind):
        if templates is not None:
            kinds = ", ".join(TEMPLATE_KINDS)
            raise InvalidInput("templates", f"only {kinds} versions have templates, not {kind}")
        return None, None
    if templates is not None:
        try:
            return check_templates(templates), None
        except TemplateFilesError as exc:
            raise InvalidRuleSet(exc.problems, field="templates") from None
    if carry_from is None:
        active = rulesets.get_active(kind)
        carry_from = active["version"] if active else None
    files = rulesets.get_files(kind, carry_from) if carry_from is not None else None
    if files is None:
        raise InvalidInput(
            "templates",
            f"give the templates: {kind} has no active version with templates to carry over",
        )
    return files, carry_from


def _store_draft(
    ruleset: RuleSet,
    note: str,
    actor: Actor,
    files: dict[str, str] | None = None,
    carried: int | None = None,
) -> dict[str, Any]:
    from storage import rulesets

    event_note = (
        note if carried is None else f"{note} (templates carried over from version {carried})"
    )
    with rulesets.locked():
        stored = rulesets.create_version(
            ruleset.kind,
            ruleset.source,
            ruleset.sha256,
            created_by=actor.name,
            note=note,
            files=files,
        )
        rulesets.record_event(
            ruleset.kind,
            stored["version"],
            "drafted",
            by=actor.name,
            owner=actor.owner,
            note=event_note,
        )
    stored.pop("source", None)
    return stored


def run_version_tests(kind: str, version: int, actor: Actor, policy: Policy) -> dict[str, Any]:
    """Run the [[test]] cases of a stored version (and its smoke test), in a subprocess."""
    allow(actor, "test")
    stored = stored_version(kind, version)
    check = check_ruleset(parsed(stored), policy.smoke_timeout)
    return {
        "kind": kind,
        "version": version,
        "sha256": stored["sha256"],
        "passed": len(check.cases) - len(check.failed),
        "failed": len(check.failed),
        "cases": check.cases,
        "problems": [problem_json(p) for p in check.problems],
    }


def propose_version(
    kind: str, version: int, actor: Actor, policy: Policy, note: str | None = None
) -> dict[str, Any]:
    """draft → proposed, once its [[test]] cases and the smoke test pass."""
    allow(actor, "propose")
    note = clean_note(note)
    rule = "only a draft can be proposed"
    stored = stored_version(kind, version)
    require_state(stored, ("draft",), rule)  # before the checks, which take a while
    must_pass(check_ruleset(parsed(stored), policy.smoke_timeout), f"version {version}")
    return move(
        kind,
        version,
        "proposed",
        "proposed",
        actor,
        note,
        lambda row: require_state(row, ("draft",), rule),
    )


def publish(
    source: str,
    origin: str,
    note: str | None,
    actor: Actor,
    policy: Policy,
    templates: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`credo rules publish FILE`: validate, test and smoke-test the text (and check its
    templates, for a kind that has them: see draft_version), then store it as a draft and
    propose it, in one transaction. Nothing is stored when a check fails. Returns the proposed
    version and how many [[test]] cases passed."""
    from storage import rulesets

    allow(actor, "draft")
    allow(actor, "propose")
    note = clean_note(note, required=True, why="say why this version exists (--note)")
    ruleset = validate_source(source, origin)
    files, carried = templates_for(ruleset.kind, templates)
    checked = check_ruleset(ruleset, policy.smoke_timeout)
    must_pass(checked, origin)
    with rulesets.locked():
        drafted = _store_draft(ruleset, note, actor, files, carried)
        proposed = move(
            ruleset.kind, drafted["version"], "proposed", "proposed", actor, note, lambda row: None
        )
    return {**proposed, "tests": {"passed": len(checked.cases), "failed": 0}}


def approve_version(
    kind: str, version: int, actor: Actor, policy: Policy, note: str | None = None
) -> dict[str, Any]:
    """proposed → approved; with four eyes, only by another person than its maker."""
    allow(actor, "approve")
    note = clean_note(note)

    def check(row: dict[str, Any]) -> None:
        require_state(row, ("proposed",), "only a proposed version can be approved")
        if policy.four_eyes:
            four_eyes(kind, version, actor)

    return move(kind, version, "approved", "approved", actor, note, check)


def reject_version(
    kind: str, version: int, actor: Actor, note: str | None = None
) -> dict[str, Any]:
    """proposed → rejected (a rejected version stays, for the record; draft a new one)."""
    allow(actor, "reject")
    note = clean_note(note)
    rule = "only a proposed version can be rejected"
    return move(
        kind,
        version,
        "rejected",
        "rejected",
        actor,
        note,
        lambda row: require_state(row, ("proposed",), rule),
    )


def activate_version(
    kind: str, version: int, actor: Actor, note: str | None = None, at: Any = None
) -> dict[str, Any]:
    """approved, retired or challenger → active, retiring the active version in the same
    transaction; with `at`, an approved version becomes active then (api.rollout). Activating
    the challenger promotes it, activating another version replaces it: either ends the
    experiment.
    Activating a retired version, or one older than the active version, is a rollback: it
    needs a note and is recorded as rolled_back. Refused when the active rule sets, with this
    version in its kind's place, would not hold together (a rule set `after` it reads an
    outcome field or word it no longer decides: api.usecases.cross_reference_problems)."""
    from storage import rulesets

    if at is not None:
        from api.rollout import schedule_activation

        return schedule_activation(kind, version, at, actor, note)
    allow(actor, "activate")
    note = clean_note(note)

    def check(row: dict[str, Any]) -> str:
        if row["state"] == "active":
            raise Refused(f"version {version} is already active")
        require_state(
            row,
            ("approved", "retired", "challenger"),
            "only an approved or retired version can be activated",
        )
        must_hold_together(row)
        active = rulesets.get_active(kind)
        newer = active is not None and active["version"] > version
        if row["state"] != "retired" and not newer:
            return "activated"
        if not note:
            if row["state"] == "retired":
                why = f"version {version} was active before"
            else:
                why = f"version {version} is older than the active version {active['version']}"
            raise Refused(f"a rollback needs a note: {why}; say why it goes back into use")
        return "rolled_back"

    return move(kind, version, "active", "activated", actor, note, check)


def must_hold_together(row: dict[str, Any]) -> None:
    """Refused naming each problem (the rule set providing a field and the one reading it)
    when `row` cannot become the active version of its kind beside the other active ones."""
    from api.usecases import cross_reference_problems

    problems = cross_reference_problems(parsed(row))
    if problems:
        raise Refused(
            f"version {row['version']} of {row['kind']} cannot be activated: the active rule "
            "sets would not hold together: " + "; ".join(str(p) for p in problems)
        )
