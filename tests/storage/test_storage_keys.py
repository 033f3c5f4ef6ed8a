"""API key names are unique (revoked keys keep theirs), each key names its owner, hostile names
are refused, and migration 9 upgrades a database that holds duplicate names."""

from __future__ import annotations

import re

import pytest

from storage import keys
from storage.errors import Conflict
from storage.migrations import migrate
from storage.models import ApiKey, now_utc


def test_a_second_key_with_a_taken_name_is_refused_naming_it(db):
    _, first = keys.create_key("erp", "decide")
    with pytest.raises(Conflict, match="an API key named 'erp' exists already"):
        keys.create_key("erp", "analyst")
    with pytest.raises(Conflict, match="'erp'"):
        keys.create_key("  erp ", "admin")  # the same name once trimmed
    assert [k.id for k in keys.list_keys()] == [first.id]


def test_a_revoked_keys_name_stays_taken(db):
    _, info = keys.create_key("erp", "decide")
    keys.revoke_key(info.id)
    with pytest.raises(Conflict, match=r"id \d+, revoked .*names stay taken after revoking"):
        keys.create_key("erp", "decide")


def test_the_database_refuses_a_duplicate_name_too(db):
    import peewee

    keys.create_key("erp", "decide")
    with pytest.raises(peewee.IntegrityError), db.atomic():
        ApiKey.create(
            name="erp",
            owner="x",
            role="decide",
            key_hash="0" * 64,
            prefix="credo_x",
            created_at=now_utc(),
        )


def test_the_owner_defaults_to_the_name_and_is_on_the_verified_key(db):
    clear, info = keys.create_key("alice-analyst", "analyst", owner="alice")
    other, _ = keys.create_key("alice-approver", "approver", owner=" alice ")
    assert info.owner == "alice" and info.to_json()["owner"] == "alice"
    assert keys.verify_key(clear).owner == keys.verify_key(other).owner == "alice"
    _, erp = keys.create_key("erp", "decide")
    assert erp.owner == "erp"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "expected 1 to 100 characters, got 0"),
        ("name", "x" * 10_000, "expected 1 to 100 characters, got 10000"),
        ("name", "erp\x00admin", "may hold only letters, digits"),
        ("name", "erp\ud800", "may hold only letters, digits"),
        ("name", "=cmd|' /C calc'!A0", "must start with a letter, digit or '_'"),
        ("name", "+erp", "must start with a letter, digit or '_'"),
        ("name", "@erp", "must start with a letter, digit or '_'"),
        ("name", "credo demo", "may hold only letters, digits"),
        ("name", "run:7", "may hold only letters, digits"),
        ("name", "cli", "'cli' is reserved"),
        ("owner", "-1+1", "must start with a letter, digit or '_'"),
        ("owner", "alice\nbob", "may hold only letters, digits"),
        ("owner", "a" * 101, "expected 1 to 100 characters, got 101"),
    ],
)
def test_hostile_names_and_owners_are_refused_clearly(db, field, value, message):
    args = {"name": "erp", "owner": None, field: value}
    with pytest.raises(ValueError, match=rf"^{field}: .*{re.escape(message)}"):
        keys.create_key(args["name"], "decide", args["owner"])
    assert keys.list_keys() == []


def test_unicode_letters_and_email_like_owners_are_fine(db):
    _, info = keys.create_key("jürgen.müller", "analyst", owner="jm@example.com")
    assert (info.name, info.owner) == ("jürgen.müller", "jm@example.com")


def test_migration_9_renames_later_duplicate_names_and_sets_owners(empty_db):
    """A database of an earlier release may hold one name twice: the oldest key keeps it, the
    later ones become name-2, name-3 (skipping a name already taken), owner = the old name."""
    migrate(empty_db, target=7)
    rows = [("erp", None), ("erp", now_utc()), ("audit", None), ("erp-2", None), ("erp", None)]
    for number, (name, revoked) in enumerate(rows):
        empty_db.execute_sql(
            "INSERT INTO api_key (name, role, key_hash, prefix, created_at, revoked_at) "
            f"VALUES ({', '.join([empty_db.param] * 6)})",
            (name, "decide", f"{number:064d}", "credo_x", now_utc(), revoked),
        )

    migrate(empty_db)

    found = [(k.name, k.owner) for k in keys.list_keys()]
    assert found == [
        ("erp", "erp"),
        ("erp-3", "erp"),  # erp-2 was taken by the fourth key
        ("audit", "audit"),
        ("erp-2", "erp-2"),
        ("erp-4", "erp"),
    ]
    assert keys.list_keys()[1].revoked_at is not None
    with pytest.raises(Conflict):
        keys.create_key("erp-3", "decide")
