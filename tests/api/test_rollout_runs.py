"""Runs and rollouts (issue 14 item 8, issue 17): a run in progress finishes on the versions it
pinned and its report says which, the next run uses the new one; a pending activation whose
time has come is used by the next run with nobody present; under an experiment a run decides
each customer with its arm's version and records the arm. SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lifecycle_support import edited_reminder
from test_nightly import AS_OF, portfolio, small

from api import lifecycle, rollout
from api.arms import arm_of
from api.nightly.run import execute_run, prepare_run


@dataclass(frozen=True)
class Person:
    name: str
    owner: str
    role: str


ALICE = Person("alice-analyst", "alice", "analyst")
BOB = Person("bob-approver", "bob", "approver")


def approved(tag: str = "the agency chases") -> int:
    policy = lifecycle.Policy()
    draft = lifecycle.draft_version("reminder", edited_reminder(tag), "clearer", ALICE)
    lifecycle.propose_version("reminder", draft["version"], ALICE, policy)
    lifecycle.approve_version("reminder", draft["version"], BOB, policy)
    return draft["version"]


def _time_passes(kind: str, version: int) -> datetime:
    """The pending activation's time, moved to a second ago (as if the hour had passed;
    waiting on the real clock races with a busy machine). Returns it."""
    from storage import rulesets

    at = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=0)
    rulesets.schedule_activation(kind, version, at)
    return at


def reminder_versions(run_id: str) -> dict[int, int]:
    from storage.models import Decision

    rows = Decision.select(Decision.ruleset_version).where(
        (Decision.requested_by == f"run:{run_id}") & (Decision.kind == "reminder")
    )
    found: dict[int, int] = {}
    for (number,) in rows.tuples():
        found[number] = found.get(number, 0) + 1
    return found


def test_a_run_in_progress_finishes_on_its_pinned_versions_and_the_next_uses_the_new(settings):
    portfolio(30)
    settings = small(settings)
    version = approved()
    run, status = prepare_run(settings, AS_OF, False, "test")  # claimed: versions pinned
    assert status == "new" and run.rulesets["reminder"]["version"] == 1
    lifecycle.activate_version("reminder", version, BOB, "now")  # while the run is under way
    finished = execute_run(settings, run.run_id, workers=1)
    assert finished["report"]["rulesets"]["reminder"]["version"] == 1
    assert list(reminder_versions(run.run_id)) == [1]

    nxt, _ = prepare_run(settings, AS_OF + timedelta(days=1), False, "test")
    report = execute_run(settings, nxt.run_id, workers=1)["report"]
    assert report["rulesets"]["reminder"]["version"] == version
    assert list(reminder_versions(nxt.run_id)) == [version]


def test_the_next_run_makes_a_pending_activation_whose_time_came(settings):
    from storage import rulesets

    portfolio(10)
    settings = small(settings)
    version = approved()
    at = datetime.now(UTC) + timedelta(hours=1)
    rollout.schedule_activation("reminder", version, at, BOB, "from now on")
    early, _ = prepare_run(settings, AS_OF, False, "test")
    assert early.rulesets["reminder"]["version"] == 1  # its time has not come
    execute_run(settings, early.run_id, workers=1)
    at = _time_passes("reminder", version)
    late, _ = prepare_run(settings, AS_OF + timedelta(days=1), False, "test")
    assert late.rulesets["reminder"]["version"] == version
    execute_run(settings, late.run_id, workers=1)
    assert list(reminder_versions(late.run_id)) == [version]
    activated = [e for e in rulesets.events("reminder", version) if e["event"] == "activated"]
    assert [(e["by"], e["at"]) for e in activated] == [("bob-approver", at.isoformat())]


def test_a_run_under_an_experiment_decides_each_customer_with_its_arms_version(settings):
    from storage.models import Decision

    portfolio(40)
    settings = small(settings, workers=2)
    version = approved()
    carol = Person("carol-approver", "carol", "approver")
    started = rollout.start_challenger(
        "reminder", version, 40, carol, lifecycle.Policy(), "try it"
    )["experiment"]
    run, _ = prepare_run(settings, AS_OF, False, "test")
    pin = run.rulesets["reminder"]
    assert pin["version"] == 1 and pin["challenger"] == {
        "experiment": started["id"],
        "share": 40,
        "version": version,
        "sha256": pin["challenger"]["sha256"],
    }
    report = execute_run(settings, run.run_id)["report"]
    assert report["rulesets"]["reminder"]["challenger"]["version"] == version
    rows = Decision.select(
        Decision.customer_id, Decision.kind, Decision.ruleset_version, Decision.arm,
        Decision.experiment_id,
    ).where(Decision.requested_by == f"run:{run.run_id}")  # fmt: skip
    seen = set()
    for customer, kind, number, arm, experiment in rows.tuples():
        if kind != "reminder":
            assert (arm, experiment, number) == (None, None, 1)
            continue
        expected = arm_of(started["id"], customer, 40)
        assert (arm, experiment) == (expected, started["id"])
        assert number == (version if expected == "challenger" else 1)
        seen.add(arm)
    assert seen == {"champion", "challenger"}
    from storage.decisions import verify_chain

    assert verify_chain() == []


def test_the_scheduler_makes_a_pending_activation_with_nobody_deciding(settings):
    from api.nightly.scheduler import activations_job
    from storage import rulesets

    version = approved()
    rollout.schedule_activation("reminder", version, datetime.now(UTC) + timedelta(hours=1), BOB)
    activations_job(settings)
    assert rulesets.get_active("reminder")["version"] == 1
    _time_passes("reminder", version)
    activations_job(settings)
    assert rulesets.get_active("reminder")["version"] == version
