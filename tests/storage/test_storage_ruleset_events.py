"""Rule-set lifecycle events: append-only, in order; migration 13 turns the moves stamped on the
versions of an existing database into events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import rulesets
from storage.migrations import migrate
from storage.models import ApiKey, RuleSetVersion


def test_events_are_appended_in_order_and_a_move_keeps_the_versions_note(db):
    rulesets.create_version("credit", "a", "1" * 64, created_by="ann", note="why it exists")
    first = rulesets.record_event("credit", 1, "drafted", by="ann-key", owner="ann", note="n1")
    rulesets.record_event("credit", 1, "proposed", by="ann-key", owner="ann")
    rulesets.set_state("credit", 1, "proposed", by="ann-key")
    assert first["event"] == "drafted" and first["by"] == "ann-key" and first["owner"] == "ann"
    assert [e["event"] for e in rulesets.events("credit")] == ["drafted", "proposed"]
    assert rulesets.events("credit", 2) == []
    assert rulesets.get_version("credit", 1)["note"] == "why it exists"
    with pytest.raises(ValueError, match="event"):
        rulesets.record_event("credit", 1, "published", by="x", owner="x")
    rulesets.set_state("credit", 1, "rejected", by="bob-key")
    assert rulesets.get_version("credit", 1)["state"] == "rejected"


def test_migration_13_turns_stamped_moves_into_events(empty_db):
    migrate(empty_db, target=9)
    # Keys as a release of schema 9 stored them (create_key writes the operator log of 14).
    for name, role, owner in (
        ("alice-analyst", "analyst", "alice"),
        ("bob-approver", "approver", "bob"),
    ):
        ApiKey.create(
            name=name,
            owner=owner,
            role=role,
            key_hash=name,
            prefix=name,
            created_at=datetime.now(UTC),
        )
    t0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    later = [t0 + timedelta(hours=n) for n in range(5)]
    common = {"kind": "reminder", "sha256": "0" * 64, "source": "x"}
    RuleSetVersion.create(
        **common,
        version=1,
        state="retired",
        note="default rule set loaded from reminder.toml",
        created_by="credo init",
        created_at=t0,
        activated_by="credo init",
        activated_at=t0,
        retired_at=later[3],
    )
    RuleSetVersion.create(
        **common,
        version=2,
        state="active",
        note="approved",  # set_state overwrote the draft's note with the approval's
        created_by="alice-analyst",
        created_at=later[1],
        proposed_by="alice-analyst",
        proposed_at=later[1],
        approved_by="bob-approver",
        approved_at=later[2],
        activated_by="bob-approver",
        activated_at=later[3],
    )
    assert 13 in migrate(empty_db)
    assert [
        (e["version"], e["event"], e["by"], e["owner"], e["at"])
        for e in rulesets.events("reminder")
    ] == [
        (1, "drafted", "credo init", "credo init", t0.isoformat()),
        (1, "activated", "credo init", "credo init", t0.isoformat()),
        (2, "drafted", "alice-analyst", "alice", later[1].isoformat()),
        (2, "proposed", "alice-analyst", "alice", later[1].isoformat()),
        (2, "approved", "bob-approver", "bob", later[2].isoformat()),
        (2, "activated", "bob-approver", "bob", later[3].isoformat()),
        (1, "retired", "bob-approver", "bob", later[3].isoformat()),
    ]
    assert rulesets.events("reminder", 1)[0]["note"] == "default rule set loaded from reminder.toml"
