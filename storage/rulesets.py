"""Rule-set versions: version 1, 2, … per kind, their TOML source, sha256 and maker-checker state,
the files stored with them (a reminder version's templates), and the append-only history of
their moves (events).

States: draft → proposed → approved → active → retired, and rejected (an older retired or
approved version can be activated again: a rollback). At most one version per kind is active,
which the database enforces with a partial unique index. The rules of who may move a version
where live in the use cases (api/lifecycle.py); storage records the move, and `record_event`,
the one way into the event table, records who made it, when and why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import peewee as pw

from storage.audit_log import AUDIT_LOG_LOCK, append_event
from storage.db import LockKey, write_lock
from storage.errors import Conflict, NotFound
from storage.models import RuleSetEvent, RuleSetFile, RuleSetVersion, now_utc

STATES = ("draft", "proposed", "approved", "active", "retired", "rejected", "challenger")
EVENTS = (
    "drafted",
    "proposed",
    "approved",
    "rejected",
    "activated",
    "rolled_back",
    "retired",
    "templates_added",  # files given to a version stored before versions had them
    "scheduled",  # an activation at a time (activate_at), pending
    "cancelled",  # a pending activation cancelled
    "challenge_start",  # an approved version became the challenger (storage.experiments)
    "challenge_stop",  # the challenger's experiment ended: stopped, promoted or replaced
)
RULESET_LOCK = LockKey.RULESET_NUMBERING  # version numbers are handed out under it
# Which columns a move into a state stamps.
_STAMPS = {"proposed": "proposed", "approved": "approved", "active": "activated"}


def to_json(
    row: RuleSetVersion, with_source: bool = True, templates_sha256: str | None | bool = True
) -> dict[str, Any]:
    """A version as JSON values (timestamps ISO 8601 UTC, None when not reached), with the
    sha256 of its files (`templates_sha256`, None when it has none; looked up unless given)."""
    if templates_sha256 is True:
        templates_sha256 = _files_sha256_by_version(row.kind, row.version).get(row.version)
    data: dict[str, Any] = {
        "kind": row.kind,
        "version": row.version,
        "state": row.state,
        "sha256": row.sha256,
        "templates_sha256": templates_sha256,
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
    files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Store the next version of `kind` (1 for the first), with its `files` {path: text} if
    any, and return it."""
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
        _insert_files(kind, version, files or {})
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
    files = _files_sha256_by_version(kind)
    return [
        to_json(row, with_source=False, templates_sha256=files.get(row.version))
        for row in query.order_by(RuleSetVersion.version)
    ]


def set_state(
    kind: str,
    version: int,
    state: str,
    *,
    by: str,
    activate_at: datetime | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Move a version to `state`, stamping who and when (`at`, default now); activating
    retires the active one and ends a pending activation of the version.

    The version's note (why it was drafted) stays; a move's own note goes to its event.
    Raises NotFound for an unknown version and Conflict when it is already in that state.
    """
    _check_state(state)
    now = at or now_utc()
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
        row.state = state
        row.save()
    return to_json(row)


def schedule_activation(kind: str, version: int, at: datetime | None) -> dict[str, Any]:
    """Set (or with None, clear) the time version `version` of `kind` becomes active; its
    state stays as it is until then (api.rollout.activate_due makes the move)."""
    RuleSetVersion.update(activate_at=at).where(
        (RuleSetVersion.kind == kind) & (RuleSetVersion.version == version)
    ).execute()
    found = get_version(kind, version)
    if found is None:
        raise NotFound(f"rule set {kind} has no version {version}")
    return found


def pending_activations(kind: str | None = None) -> list[dict[str, Any]]:
    """The approved versions with a pending activation (of one kind, if given), soonest first,
    without sources."""
    query = RuleSetVersion.select().where(
        RuleSetVersion.activate_at.is_null(False) & (RuleSetVersion.state == "approved")
    )
    if kind is not None:
        query = query.where(RuleSetVersion.kind == kind)
    order = (RuleSetVersion.activate_at, RuleSetVersion.kind, RuleSetVersion.version)
    return [to_json(row, with_source=False) for row in query.order_by(*order)]


def locked():
    """A transaction holding the rule-set writer lock: moves checked and made inside it cannot
    interleave with another process's move."""
    return write_lock(RULESET_LOCK)


def record_event(
    kind: str,
    version: int,
    event: str,
    *,
    by: str,
    owner: str,
    note: str = "",
    at: datetime | None = None,
) -> dict[str, Any]:
    """Append one lifecycle event of version `version` of `kind` and return it as JSON values.

    `by` is the API key's name (or the command, for credo's own moves such as `credo init`),
    `owner` the person or system behind it. Every lifecycle event goes through here, and is
    appended to the operator log (`ruleset.<event>`) in the same transaction.
    """
    if event not in EVENTS:
        raise ValueError(f"event: {event!r} is not one of {', '.join(EVENTS)}")
    at = at or now_utc()
    with write_lock(AUDIT_LOG_LOCK):
        row = RuleSetEvent.create(
            kind=kind, version=version, event=event, actor=by, owner=owner, at=at, note=note
        )
        details = {"ruleset": kind, "version": version, "owner": owner, "note": note}
        append_event(f"ruleset.{event}", by, {**details, "event_id": row.id}, at=at)
    return event_json(row)


def events(kind: str, version: int | None = None) -> list[dict[str, Any]]:
    """The events of `kind` (of one version, if given), oldest first."""
    query = RuleSetEvent.select().where(RuleSetEvent.kind == kind)
    if version is not None:
        query = query.where(RuleSetEvent.version == version)
    return [event_json(row) for row in query.order_by(RuleSetEvent.id)]


def event_json(row: RuleSetEvent) -> dict[str, Any]:
    """An event as JSON values."""
    return {
        "id": row.id,
        "kind": row.kind,
        "version": row.version,
        "event": row.event,
        "by": row.actor,
        "owner": row.owner,
        "at": row.at.isoformat(),
        "note": row.note,
    }


# ---- files stored with a version (a reminder version's templates) ----------------------------


def file_sha256(text: str) -> str:
    """SHA-256 of a file's text encoded as UTF-8: what `sha256sum` prints for the file."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def files_sha256(hashes: Mapping[str, str]) -> str:
    """The SHA-256 a version's files are known by (its `templates_sha256`), from each file's
    sha256 by path: the SHA-256 of the lines `<sha256>  <path>` sorted by path, as `sha256sum`
    prints them, so `LC_ALL=C sha256sum company.toml reminder/*.j2 | sha256sum` run in a
    templates directory gives the same value for the same files."""
    manifest = "".join(f"{hashes[path]}  {path}\n" for path in sorted(hashes))
    return hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def get_files(kind: str, version: int) -> dict[str, str] | None:
    """The files stored with version `version` of `kind`, {path: text}; None when it has none."""
    query = RuleSetFile.select(RuleSetFile.path, RuleSetFile.text).where(
        (RuleSetFile.kind == kind) & (RuleSetFile.version == version)
    )
    files = dict(query.order_by(RuleSetFile.path).tuples())
    return files or None


def file_index(kind: str, version: int) -> list[dict[str, Any]]:
    """Path, sha256 and length (characters) of each file stored with a version, by path."""
    query = RuleSetFile.select(RuleSetFile.path, RuleSetFile.sha256, RuleSetFile.text).where(
        (RuleSetFile.kind == kind) & (RuleSetFile.version == version)
    )
    return [
        {"path": path, "sha256": sha256, "chars": len(text)}
        for path, sha256, text in query.order_by(RuleSetFile.path).tuples()
    ]


def add_files(kind: str, version: int, files: Mapping[str, str]) -> str:
    """Store `files` with a version stored without any (one of a database made before versions
    had files), in one transaction; returns their templates_sha256. Conflict when the version
    has files already (a version's files never change), NotFound when there is no version."""
    with write_lock(RULESET_LOCK):
        if get_version(kind, version) is None:
            raise NotFound(f"rule set {kind} has no version {version}")
        if get_files(kind, version) is not None:
            raise Conflict(f"rule set {kind} version {version} has its files already")
        _insert_files(kind, version, files)
    return files_sha256({path: file_sha256(text) for path, text in files.items()})


def _insert_files(kind: str, version: int, files: Mapping[str, str]) -> None:
    rows = [
        {"kind": kind, "version": version, "path": p, "text": t, "sha256": file_sha256(t)}
        for p, t in sorted(files.items())
    ]
    if rows:
        RuleSetFile.insert_many(rows).execute()


def _files_sha256_by_version(kind: str, version: int | None = None) -> dict[int, str]:
    """templates_sha256 of each version of `kind` (of one, if given) that has files."""
    query = RuleSetFile.select(RuleSetFile.version, RuleSetFile.path, RuleSetFile.sha256).where(
        RuleSetFile.kind == kind
    )
    if version is not None:
        query = query.where(RuleSetFile.version == version)
    hashes: dict[int, dict[str, str]] = {}
    for number, path, sha256 in query.tuples():
        hashes.setdefault(number, {})[path] = sha256
    return {number: files_sha256(by_path) for number, by_path in hashes.items()}


def _retire_active(kind: str, now: datetime) -> None:
    RuleSetVersion.update(state="retired", retired_at=now).where(
        (RuleSetVersion.kind == kind) & (RuleSetVersion.state == "active")
    ).execute()


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"state: {state!r} is not one of {', '.join(STATES)}")
