"""Champion/challenger experiments (migration 17): an approved version of a kind, the
challenger, decides for a share of the customers beside the active version, the champion.

A kind has at most one running experiment, and at most one version in state `challenger`
(a partial unique index, as for `active`). The rules of who may start or end one live in the
use cases (api/rollout.py), which call these under the rule-set lock and record each move
with storage.rulesets.record_event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.errors import Conflict
from storage.models import Experiment, RuleSetVersion, now_utc

ENDINGS = ("stopped", "promoted", "replaced")


def to_json(row: Experiment) -> dict[str, Any]:
    """An experiment as JSON values (times ISO 8601 UTC; ended_* None while it runs)."""
    return {
        "id": row.id,
        "kind": row.kind,
        "champion": row.champion,
        "challenger": row.challenger,
        "share": row.share,
        "started_at": row.started_at.isoformat(),
        "started_by": row.started_by,
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "ended_by": row.ended_by,
        "ended_how": row.ended_how,
    }


def start_experiment(
    kind: str, champion: int, challenger: int, share: int, *, by: str
) -> dict[str, Any]:
    """Make version `challenger` of `kind` the challenger of `champion` on `share` percent of
    the customers; Conflict when the kind has a running experiment already."""
    if running_experiment(kind) is not None:
        raise Conflict(f"rule set {kind} has a running experiment already")
    row = Experiment.create(
        kind=kind,
        champion=champion,
        challenger=challenger,
        share=share,
        started_at=now_utc(),
        started_by=by,
    )
    RuleSetVersion.update(state="challenger").where(
        (RuleSetVersion.kind == kind) & (RuleSetVersion.version == challenger)
    ).execute()
    return to_json(row)


def end_experiment(
    kind: str, how: str, *, by: str, at: datetime | None = None
) -> dict[str, Any] | None:
    """End the running experiment of `kind` (None when there is none): its challenger goes
    back to `approved`, unless promoted (the caller activates it)."""
    if how not in ENDINGS:
        raise ValueError(f"how: {how!r} is not one of {', '.join(ENDINGS)}")
    row = Experiment.get_or_none((Experiment.kind == kind) & Experiment.ended_at.is_null())
    if row is None:
        return None
    row.ended_at, row.ended_by, row.ended_how = at or now_utc(), by, how
    row.save()
    if how != "promoted":
        RuleSetVersion.update(state="approved").where(
            (RuleSetVersion.kind == kind)
            & (RuleSetVersion.version == row.challenger)
            & (RuleSetVersion.state == "challenger")
        ).execute()
    return to_json(row)


def running_experiment(kind: str) -> dict[str, Any] | None:
    """The running experiment of `kind`, or None."""
    row = Experiment.get_or_none((Experiment.kind == kind) & Experiment.ended_at.is_null())
    return to_json(row) if row else None


def running_experiments() -> list[dict[str, Any]]:
    """Every running experiment, by kind."""
    query = Experiment.select().where(Experiment.ended_at.is_null()).order_by(Experiment.kind)
    return [to_json(row) for row in query]


def get_experiment(experiment_id: int) -> dict[str, Any] | None:
    row = Experiment.get_or_none(Experiment.id == experiment_id)
    return to_json(row) if row else None


def latest_experiment(kind: str) -> dict[str, Any] | None:
    """The running experiment of `kind`, else the last one that ended, else None."""
    row = Experiment.select().where(Experiment.kind == kind).order_by(Experiment.id.desc()).first()
    return to_json(row) if row else None
