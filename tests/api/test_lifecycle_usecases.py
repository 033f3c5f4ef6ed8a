"""The lifecycle use cases directly: two activations at once leave one active version, and an
actor's role is checked by the use case itself (the CLI has no route decorator)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from lifecycle_support import edited_reminder

from api import lifecycle


@dataclass(frozen=True)
class Key:
    name: str
    owner: str
    role: str


ALICE = Key("alice-analyst", "alice", "analyst")
BOB = Key("bob-approver", "bob", "approver")
POLICY = lifecycle.Policy()


def _approved(tag: str) -> int:
    version = lifecycle.draft_version("reminder", edited_reminder(tag), "why", ALICE)["version"]
    lifecycle.propose_version("reminder", version, ALICE, POLICY)
    lifecycle.approve_version("reminder", version, BOB, POLICY)
    return version


def test_two_activations_at_once_leave_one_active_version(settings, db):
    from storage import rulesets

    versions = [_approved("a"), _approved("b")]
    barrier = threading.Barrier(2)

    def activate(version: int) -> dict:
        with db.connection_context():
            barrier.wait()
            return lifecycle.activate_version("reminder", version, BOB, note="at once")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(activate, versions))
    assert [r["state"] for r in results] == ["active", "active"]  # each was active in turn
    states = {v["version"]: v["state"] for v in rulesets.history("reminder")}
    assert list(states.values()).count("active") == 1
    moves = [(e["version"], e["event"]) for e in rulesets.events("reminder")][-4:]
    first, second = moves[0][0], moves[2][0]
    assert moves[1] == (1, "retired") and moves[3] == (first, "retired")
    assert states[second] == "active" and states[first] == states[1] == "retired"


def test_the_use_cases_check_the_role_themselves(settings, db):
    version = lifecycle.draft_version("reminder", edited_reminder(), "why", ALICE)["version"]
    with pytest.raises(lifecycle.NotAllowed, match="roles: key 'bob-approver' has role"):
        lifecycle.propose_version("reminder", version, BOB, POLICY)
    with pytest.raises(lifecycle.NotAllowed, match="approve needs 'approver'"):
        lifecycle.approve_version("reminder", version, ALICE, POLICY)
    admin = Key("root", "ops", "admin")
    assert lifecycle.propose_version("reminder", version, admin, POLICY)["state"] == "proposed"
