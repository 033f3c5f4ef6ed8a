"""Rule-set versions: version 1, 2, … per kind, their TOML source, sha256 and maker-checker state.

States: draft → proposed → approved → active → retired (an older retired or approved version can
be activated again: a rollback). At most one version per kind is active, which the database
enforces with a partial unique index. The rules of who may move a version where live in the use
cases; storage records the move and who made it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import peewee as pw

from storage.db import LockKey, write_lock
from storage.errors import Conflict, NotFound
from storage.models import RuleSetVersion, now_utc

STATES = ("draft", "proposed", "approved", "active", "retired")
RULESET_LOCK = LockKey.RULESET_NUMBERING  # version numbers are handed out under it
# Which columns a move into a state stamps.
_STAMPS = {"proposed": "proposed", "approved": "approved", "active": "activated"}


def to_json(row: RuleSetVersion, with_source: bool = True) -> dict[str, Any]:
    """A version as JSON values (timestamps ISO 8601 UTC, None when not reached)."""
    data: dict[str, Any] = {
        "kind": row.kind,
        "version": row.version,
        "state": row.state,
        "sha256": row.sha256,
        "note": row.note,
    }
    for name in ("created", "proposed", "approved", "activated"):
        data[f"{name}_by"] = getattr(row, f"{name}_by")
    for name in ("created_at", "proposed_at", "approved_at", "activated_at", "retired_at"):
        value = getattr(row, name)
        data[name] = value.isoformat() if value else None
    data["activate_at"] = row.activate_at.isoformat() if row.activate_at else None
    if with_source:
        data["source"] = row.source
    return data


def create_version(
    kind: str,
    source: str,
    sha256: str,
    *,
    created_by: str,
    note: str = "",
    state: str = "draft",
) -> dict[str, Any]:
    """Store the next version of `kind` (1 for the first) and return it."""
    _check_state(state)
    now = now_utc()
    with write_lock(RULESET_LOCK):
        last = RuleSetVersion.select(pw.fn.MAX(RuleSetVersion.version)).where(
            RuleSetVersion.kind == kind
        )
        version = (last.scalar() or 0) + 1
        if state == "active":
            _retire_active(kind, now)
        row = RuleSetVersion.create(
            kind=kind,
            version=version,
            source=source,
            sha256=sha256,
            state=state,
            note=note,
            created_by=created_by,
            created_at=now,
            activated_by=created_by if state == "active" else None,
            activated_at=now if state == "active" else None,
        )
    return to_json(row)


def get_version(kind: str, version: int) -> dict[str, Any] | None:
    """Version `version` of `kind`, with its source; None when there is no such version."""
    row = RuleSetVersion.get_or_none(
        (RuleSetVersion.kind == kind) & (RuleSetVersion.version == version)
    )
    return to_json(row) if row else None


def get_active(kind: str) -> dict[str, Any] | None:
    """The active version of `kind`, with its source, or None."""
    row = RuleSetVersion.get_or_none(
        (RuleSetVersion.kind == kind) & (RuleSetVersion.state == "active")
    )
    return to_json(row) if row else None


def list_active() -> list[dict[str, Any]]:
    """Every kind's active version, with sources, by kind."""
    query = RuleSetVersion.select().where(RuleSetVersion.state == "active")
    return [to_json(row) for row in query.order_by(RuleSetVersion.kind)]


def active_fingerprint() -> tuple[tuple[str, int, str], ...]:
    """(kind, version, sha256) of every active version: a cheap check for a change."""
    query = (
        RuleSetVersion.select(RuleSetVersion.kind, RuleSetVersion.version, RuleSetVersion.sha256)
        .where(RuleSetVersion.state == "active")
        .order_by(RuleSetVersion.kind)
        .tuples()
    )
    return tuple(query)


def list_kinds() -> list[str]:
    """Every kind with at least one version."""
    query = RuleSetVersion.select(RuleSetVersion.kind).distinct().order_by(RuleSetVersion.kind)
    return [kind for (kind,) in query.tuples()]


def history(kind: str) -> list[dict[str, Any]]:
    """Every version of `kind`, oldest first, without sources."""
    query = RuleSetVersion.select().where(RuleSetVersion.kind == kind)
    return [to_json(row, with_source=False) for row in query.order_by(RuleSetVersion.version)]


def set_state(
    kind: str,
    version: int,
    state: str,
    *,
    by: str,
    note: str | None = None,
    activate_at: datetime | None = None,
) -> dict[str, Any]:
    """Move a version to `state`, stamping who and when; activating retires the active one.

    Raises NotFound for an unknown version and Conflict when it is already in that state.
    """
    _check_state(state)
    now = now_utc()
    with write_lock(RULESET_LOCK):
        row = RuleSetVersion.get_or_none(
            (RuleSetVersion.kind == kind) & (RuleSetVersion.version == version)
        )
        if row is None:
            raise NotFound(f"rule set {kind} has no version {version}")
        if row.state == state:
            raise Conflict(f"rule set {kind} version {version} is already {state}")
        if state == "active":
            _retire_active(kind, now)
            row.activate_at = None
        if state in _STAMPS:
            setattr(row, f"{_STAMPS[state]}_by", by)
            setattr(row, f"{_STAMPS[state]}_at", now)
        if state == "retired":
            row.retired_at = now
        if activate_at is not None:
            row.activate_at = activate_at
        if note is not None:
            row.note = note
        row.state = state
        row.save()
    return to_json(row)


def _retire_active(kind: str, now: datetime) -> None:
    RuleSetVersion.update(state="retired", retired_at=now).where(
        (RuleSetVersion.kind == kind) & (RuleSetVersion.state == "active")
    ).execute()


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"state: {state!r} is not one of {', '.join(STATES)}")
