"""Rolling a rule change out (issue 17): an activation at a time, and champion/challenger.

| move           | roles (admin may do all) | from              | to         | event           |
|----------------|--------------------------|-------------------|------------|-----------------|
| activate at T  | approver                 | approved          | (approved) | scheduled       |
| cancel         | approver                 | approved, pending | (approved) | cancelled       |
| (T passes)     | nobody: activate_due     | approved, pending | active     | activated       |
| challenge      | approver, four eyes      | approved          | challenger | challenge_start |
| stop-challenge | approver                 | challenger        | approved   | challenge_stop  |
| activate       | approver (api.lifecycle) | challenger, …     | active     | challenge_stop  |

A pending activation is the version's `activate_at`: at most one per kind, in the future when
made. When its time passes, whoever looks first — an API worker's rule-set cache, a run that
starts, a read of the rule sets, the scheduler — makes the move (activate_due), recorded as
an `activated` event at that time by the key that scheduled it; API workers switch at the
moment from their cache without waiting for that (api.http.evaluator).

An experiment runs an approved version, the challenger, beside the active version, the
champion, on a share of the customers (api.arms). Activating any version of the kind ends it:
promoted when the challenger is activated, replaced otherwise. Every move is checked and made
under the rule-set lock and recorded by storage.rulesets.record_event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from api.arms import MAX_SHARE, MIN_SHARE
from api.lifecycle_rules import (
    Actor,
    InvalidInput,
    Policy,
    Refused,
    allow,
    clean_note,
    four_eyes,
    require_state,
    stored_version,
)

AT_LENGTH = 64
_AT_TEXT = re.compile(r"[0-9][0-9T:+\-.,Z ]*", re.ASCII)


def parse_at(value: Any, now: datetime) -> datetime:
    """The time of an activation: ISO 8601 with a time zone (2027-01-01T00:00:00Z), after
    `now`; InvalidInput naming `at` otherwise."""
    example = "e.g. 2027-01-01T00:00:00Z"
    if isinstance(value, datetime):
        when = value
    else:
        if not isinstance(value, str) or not value.strip() or len(value) > AT_LENGTH:
            raise InvalidInput("at", f"give a date and time with a time zone, {example}")
        try:
            if not _AT_TEXT.fullmatch(value.strip()):
                raise ValueError(value)  # fromisoformat lets a trailing NUL through
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            shown = value[:40].encode("ascii", "backslashreplace").decode()
            raise InvalidInput("at", f"{shown!r} is not a date and time, {example}") from None
    if when.tzinfo is None:
        raise InvalidInput("at", f"give the time zone too (Z for UTC), {example}")
    when = when.astimezone(UTC)
    if when <= now:
        raise InvalidInput(
            "at", f"{when.isoformat()} is not in the future (now is {now.isoformat()})"
        )
    return when


def schedule_activation(
    kind: str,
    version: int,
    at: Any,
    actor: Actor,
    note: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`activate --at`: approved version `version` of `kind` becomes active at `at`, with
    nobody present. One pending activation per kind. Returns the version (state approved,
    `activate_at` set)."""
    from api.lifecycle import must_hold_together
    from storage import rulesets

    allow(actor, "activate")
    note = clean_note(note)
    when = parse_at(at, now or datetime.now(UTC))
    with rulesets.locked():
        row = stored_version(kind, version)
        require_state(row, ("approved",), "only an approved version can be activated at a time")
        for pending in rulesets.pending_activations(kind):
            raise Refused(
                f"one pending activation per kind: version {pending['version']} of {kind} "
                f"becomes active at {pending['activate_at']}; cancel it first "
                f"(`credo rules cancel {kind} {pending['version']}`)"
            )
        must_hold_together(row)
        moved = rulesets.schedule_activation(kind, version, when)
        text = f"activates at {when.isoformat()}" + (f": {note}" if note else "")
        rulesets.record_event(
            kind, version, "scheduled", by=actor.name, owner=actor.owner, note=text
        )
    moved.pop("source", None)
    return moved


def cancel_activation(kind: str, version: int, actor: Actor, note: str | None) -> dict[str, Any]:
    """Cancel the pending activation of version `version` of `kind` (it stays approved);
    the note, why, is required."""
    from storage import rulesets

    allow(actor, "cancel")
    note = clean_note(note, required=True, why="say why the activation is cancelled")
    with rulesets.locked():
        row = stored_version(kind, version)
        if row["activate_at"] is None or row["state"] != "approved":
            raise Refused(
                f"only a pending activation can be cancelled; version {version} of {kind} "
                f"has none (it is {row['state']})"
            )
        moved = rulesets.schedule_activation(kind, version, None)
        text = f"activation at {row['activate_at']} cancelled: {note}"
        rulesets.record_event(
            kind, version, "cancelled", by=actor.name, owner=actor.owner, note=text
        )
    moved.pop("source", None)
    return moved


def activate_due(now: datetime | None = None) -> list[dict[str, Any]]:
    """Make every pending activation whose time has come (by `now`, default the clock): the
    version becomes active as of its time, the active one is retired, and a running
    experiment of the kind ends (replaced). Safe to call from any process at any time; returns
    the versions activated."""
    from storage import rulesets

    now = now or datetime.now(UTC)
    if not _any_due(rulesets.pending_activations(), now):
        return []  # the common case: one query, no lock
    made = []
    with rulesets.locked():
        for pending in rulesets.pending_activations():
            at = datetime.fromisoformat(pending["activate_at"])
            if at > now:
                break
            made.append(_activate_pending(pending["kind"], pending["version"], at))
    return made


def _any_due(pending: list[dict[str, Any]], now: datetime) -> bool:
    return bool(pending) and datetime.fromisoformat(pending[0]["activate_at"]) <= now


def _activate_pending(kind: str, version: int, at: datetime) -> dict[str, Any]:
    from storage import rulesets

    scheduled = [e for e in rulesets.events(kind, version) if e["event"] == "scheduled"]
    by, owner = (scheduled[-1]["by"], scheduled[-1]["owner"]) if scheduled else ("credo", "credo")
    previous = rulesets.get_active(kind)
    moved = rulesets.set_state(kind, version, "active", by=by, at=at)
    note = f"scheduled activation at {at.isoformat()}"
    rulesets.record_event(kind, version, "activated", by=by, owner=owner, note=note, at=at)
    if previous is not None:
        rulesets.record_event(
            kind, previous["version"], "retired", by=by, owner=owner, at=at,
            note=f"replaced by version {version}",
        )  # fmt: skip
    end_on_activation(kind, version, by, owner, at)
    moved.pop("source", None)
    return moved


def end_on_activation(
    kind: str, version: int, by: str, owner: str, at: datetime | None = None
) -> None:
    """End the running experiment of `kind`, if any, because version `version` became active:
    promoted when it is the challenger, else replaced. Call it under the rule-set lock."""
    from storage import experiments, rulesets

    running = experiments.running_experiment(kind)
    if running is None:
        return
    how = "promoted" if running["challenger"] == version else "replaced"
    experiments.end_experiment(kind, how, by=by, at=at)
    rulesets.record_event(
        kind, running["challenger"], "challenge_stop", by=by, owner=owner, at=at,
        note=f"experiment {running['id']} {how}: version {version} activated",
    )  # fmt: skip


def start_challenger(
    kind: str, version: int, share: Any, actor: Actor, policy: Policy, note: str | None
) -> dict[str, Any]:
    """Approved version `version` of `kind` decides for `share` percent (1 to 50) of the
    customers beside the active version: a new experiment. With four eyes, by another person
    than its maker, as an approval. Returns the version (state challenger) and `experiment`."""
    from api.lifecycle import must_hold_together
    from storage import experiments, rulesets

    allow(actor, "challenge")
    if type(share) is not int or not MIN_SHARE <= share <= MAX_SHARE:
        raise InvalidInput(
            "share", f"a whole percentage from {MIN_SHARE} to {MAX_SHARE}, not {str(share)[:40]}"
        )
    note = clean_note(note, required=True, why="say why this experiment (--note)")
    with rulesets.locked():
        row = stored_version(kind, version)
        running = experiments.running_experiment(kind)
        if running is not None:
            raise Refused(
                f"one challenger per kind: version {running['challenger']} is the challenger of "
                f"{kind} (experiment {running['id']}); stop it first "
                f"(`credo rules stop-challenge {kind}`) or promote it"
            )
        require_state(row, ("approved",), "only an approved version can be a challenger")
        if row["activate_at"] is not None:
            raise Refused(
                f"version {version} of {kind} becomes active at {row['activate_at']}; cancel "
                "that first: a version waiting to be activated cannot be a challenger"
            )
        active = rulesets.get_active(kind)
        if active is None:
            raise Refused(f"a challenger runs beside the active version: {kind} has none")
        if policy.four_eyes:
            four_eyes(kind, version, actor)
        must_hold_together(row)
        started = experiments.start_experiment(
            kind, active["version"], version, share, by=actor.name
        )
        text = (
            f"experiment {started['id']}: {share}% of customers against version "
            f"{active['version']}: {note}"
        )
        rulesets.record_event(
            kind, version, "challenge_start", by=actor.name, owner=actor.owner, note=text
        )
        moved = rulesets.get_version(kind, version)
    moved.pop("source", None)
    return {**moved, "experiment": started}


def stop_challenger(kind: str, actor: Actor, note: str | None) -> dict[str, Any]:
    """End the running experiment of `kind`: its challenger goes back to approved (it may be
    challenged again or activated later). Returns the ended experiment."""
    from api.lifecycle_rules import check_kind
    from storage import experiments, rulesets

    allow(actor, "challenge")
    check_kind(kind)
    note = clean_note(note, required=True, why="say why the experiment stops (--note)")
    with rulesets.locked():
        ended = experiments.end_experiment(kind, "stopped", by=actor.name)
        if ended is None:
            raise Refused(f"rule set {kind} has no challenger to stop")
        rulesets.record_event(
            kind, ended["challenger"], "challenge_stop", by=actor.name, owner=actor.owner,
            note=f"experiment {ended['id']} stopped: {note}",
        )  # fmt: skip
    return ended
