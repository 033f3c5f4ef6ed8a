"""API keys (SPEC §6): stored as the SHA-256 of the key, which is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.errors import NotFound
from storage.models import ApiKey, now_utc

ROLES = ("decide", "analyst", "approver", "auditor", "admin")
KEY_PREFIX = "credo_"
# last_used_at is refreshed at most this often, so authenticating is not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyInfo:
    """A key's public description (never the key or its hash)."""

    id: int
    name: str
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
            "role": self.role,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(name: str, role: str) -> tuple[str, KeyInfo]:
    """Make a key; return (the clear key, shown this once; its description)."""
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("name: expected 1 to 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey.create(
        name=name,
        role=role,
        key_hash=hash_key(key),
        prefix=key[: len(KEY_PREFIX) + 6],
        created_at=now_utc(),
    )
    return key, KeyInfo.from_row(row)


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


def list_keys(include_revoked: bool = True) -> list[KeyInfo]:
    """Every key, oldest first."""
    query = ApiKey.select().order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_null())
    return [KeyInfo.from_row(row) for row in query]


def revoke_key(key_id: int) -> KeyInfo:
    """Revoke a key by id (revoking twice keeps the first time); NotFound when unknown."""
    row = ApiKey.get_or_none(ApiKey.id == key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id}")
    if row.revoked_at is None:
        row.revoked_at = now_utc()
        row.save()
    return KeyInfo.from_row(row)
