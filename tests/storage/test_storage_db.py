"""Connecting: SQLite files get WAL, foreign keys and a busy timeout; bad URLs are refused."""

from __future__ import annotations

from datetime import date

import peewee
import pytest

from storage.db import connect, redact
from storage.errors import StorageError
from storage.models import Invoice


def test_sqlite_file_is_created_with_wal_foreign_keys_and_busy_timeout(tmp_path):
    path = tmp_path / "nested" / "dir" / "credo.db"
    db = connect(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        pragma = {
            name: db.execute_sql(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
        assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000}
    finally:
        db.close()


def test_foreign_keys_are_enforced(db):
    with pytest.raises(peewee.IntegrityError), db.atomic():
        Invoice.insert(
            id="I1",
            customer="nobody",
            issue_date=date(2024, 1, 1),
            due_date=date(2024, 1, 31),
            amount=1,
        ).execute()


def test_unknown_schemes_are_refused_and_passwords_redacted():
    with pytest.raises(StorageError, match="scheme"):
        connect("mysql://root@localhost/credo")
    assert redact("postgresql://ann:s3cret@db/credo") == "postgresql://ann:***@db/credo"


def test_unreachable_postgres_is_a_storage_error():
    with pytest.raises(StorageError, match="cannot open database"):
        connect("postgresql://nobody:pw@127.0.0.1:1/none")


def test_every_advisory_lock_has_a_key_of_its_own():
    """The run lock and the rule-set numbering lock once shared a key: every module's lock
    key now comes from the one table, storage.db.LockKey, whose values are distinct."""
    from storage import db, decisions, idempotency, migrations, nightly, rulesets
    from storage.db import RUN_LOCK_CLASS, LockKey

    used = {
        f"{module.__name__}.{name}": value
        for module in (db, decisions, idempotency, migrations, nightly, rulesets)
        for name, value in vars(module).items()
        if name.isupper() and "LOCK" in name and isinstance(value, int)
    }
    assert used, "no lock keys found"
    strays = {name: value for name, value in used.items() if not isinstance(value, LockKey)}
    assert set(strays.values()) == {RUN_LOCK_CLASS}  # the two-key space: see LockKey
    values = [key.value for key in LockKey.__members__.values()]
    assert len(values) == len(set(values))
