"""API keys (SPEC §6): stored as the SHA-256 of the key, which is shown once, at creation.

A key's name is what decisions record as `requested_by`, so names are unique, and stay taken
once the key is revoked: the audit trail must name one key. Its owner is the person or system
behind it (default: the name); one person's analyst and approver keys share an owner, which is
what four eyes compares.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import peewee as pw

from storage.audit_log import AUDIT_LOG_LOCK, append_event
from storage.db import write_lock
from storage.errors import Conflict, NotFound
from storage.models import ApiKey, now_utc

ROLES = ("decide", "analyst", "approver", "auditor", "admin")
KEY_PREFIX = "credo_"
# last_used_at is refreshed at most this often, so authenticating is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_LENGTH = 100
# Letters, digits, '_', '.', '@' and '-', starting with a letter, digit or '_': no spaces, no
# control characters, nothing a spreadsheet reads as a formula (= + - @ first), nothing that
# looks like the requested_by credo itself writes ("credo demo", "run:7").
_NAME = re.compile(r"\w[\w.@-]*")
# requested_by values credo writes itself, which no key may take.
RESERVED_NAMES = {"cli": "the requested_by of decisions stored by `credo decide --store`"}


@dataclass(frozen=True)
class KeyInfo:
    """A key's public description (never the key or its hash)."""

    id: int
    name: str
    owner: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyInfo:
        return cls(
            row.id,
            row.name,
            row.owner,
            row.role,
            row.prefix,
            row.created_at,
            row.revoked_at,
            row.last_used_at,
        )

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "role": self.role,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_name(field: str, value: str) -> str:
    """`value` without surrounding spaces, if it is a valid key name or owner; else ValueError
    naming `field` and what is wrong."""
    value = value.strip()
    if not value or len(value) > NAME_LENGTH:
        raise ValueError(f"{field}: expected 1 to {NAME_LENGTH} characters, got {len(value)}")
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{field}: {value!r} may hold only letters, digits and '_', '.', '@', '-', "
            "and must start with a letter, digit or '_'"
        )
    return value


def create_key(
    name: str, role: str, owner: str | None = None, *, actor: str = "credo keys"
) -> tuple[str, KeyInfo]:
    """Make a key; return (the clear key, shown this once; its description). `actor`, who
    made it, goes to the operator log (`key.created`) with it.

    ValueError for a bad role, name or owner; Conflict when a key (live or revoked) already
    has the name.
    """
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    name = check_name("name", name)
    if name in RESERVED_NAMES:
        raise ValueError(f"name: {name!r} is reserved: it is {RESERVED_NAMES[name]}")
    owner = name if owner is None else check_name("owner", owner)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with write_lock(AUDIT_LOG_LOCK):  # the key and its event, together or not at all
            _refuse_taken(name)
            row = ApiKey.create(
                name=name,
                owner=owner,
                role=role,
                key_hash=hash_key(key),
                prefix=key[: len(KEY_PREFIX) + 6],
                created_at=now_utc(),
            )
            info = KeyInfo.from_row(row)
            append_event("key.created", actor, _event_details(info), at=info.created_at)
    except pw.IntegrityError:  # created by someone else between the check and the insert
        _refuse_taken(name)
        raise
    return key, info


def _event_details(info: KeyInfo) -> dict[str, Any]:
    """What the operator log keeps of a key: never the key or its hash."""
    return {"id": info.id, "name": info.name, "owner": info.owner, "role": info.role}


def _refuse_taken(name: str) -> None:
    taken = ApiKey.get_or_none(ApiKey.name == name)
    if taken is None:
        return
    state = f"revoked {taken.revoked_at:%Y-%m-%d}" if taken.revoked_at else "active"
    raise Conflict(
        f"name: an API key named {name!r} exists already (id {taken.id}, {state}); names stay "
        "taken after revoking, so that requested_by names one key: choose another name"
    )


def verify_key(key: str) -> KeyInfo | None:
    """The live key `key` (refreshing its last_used_at), or None when unknown or revoked."""
    digest = hash_key(key)
    row = ApiKey.get_or_none(ApiKey.key_hash == digest)
    # The lookup is by a hash the caller cannot choose; compare in constant time all the same.
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at:
        return None
    now = now_utc()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.update(last_used_at=now).where(ApiKey.id == row.id).execute()
        row.last_used_at = now
    return KeyInfo.from_row(row)


def get_key(key_id: int) -> KeyInfo | None:
    """The key with this id, live or revoked (None when unknown)."""
    row = ApiKey.get_or_none(ApiKey.id == key_id)
    return KeyInfo.from_row(row) if row else None


def list_keys(include_revoked: bool = True) -> list[KeyInfo]:
    """Every key, oldest first."""
    query = ApiKey.select().order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_null())
    return [KeyInfo.from_row(row) for row in query]


def revoke_key(key_id: int, *, actor: str = "credo keys") -> KeyInfo:
    """Revoke a key by id (revoking twice keeps the first time); NotFound when unknown.
    A revocation goes to the operator log (`key.revoked`, by `actor`) with it."""
    with write_lock(AUDIT_LOG_LOCK):
        row = ApiKey.get_or_none(ApiKey.id == key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        if row.revoked_at is None:
            row.revoked_at = now_utc()
            row.save()
            info = KeyInfo.from_row(row)
            append_event("key.revoked", actor, _event_details(info), at=info.revoked_at)
    return KeyInfo.from_row(row)
