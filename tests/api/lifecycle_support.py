"""Helpers of the rule-set lifecycle tests (imported as `lifecycle_support`)."""

from __future__ import annotations

from api_support import RULES_DIR

# Keys of three people: alice has an analyst and an approver key (one owner, two roles).
PEOPLE = (
    ("alice-analyst", "analyst", "alice"),
    ("alice-approver", "approver", "alice"),
    ("bob-analyst", "analyst", "bob"),
    ("bob-approver", "approver", "bob"),
    ("carol-approver", "approver", "carol"),
    ("dave-auditor", "auditor", "dave"),
)


def make_people() -> dict[str, str]:
    """A live key for each of PEOPLE, by key name."""
    from storage import keys

    return {name: keys.create_key(name, role, owner)[0] for name, role, owner in PEOPLE}


def reminder_source() -> str:
    return (RULES_DIR / "reminder.toml").read_text(encoding="utf-8")


def edited_reminder(tag: str = "the agency chases") -> str:
    """The shipped reminder set with one reason reworded: valid, its tests pass."""
    source = reminder_source()
    edited = source.replace("the agency does the chasing", tag, 1)
    assert edited != source
    return edited


def failing_reminder() -> str:
    """Valid, but one of its [[test]] cases fails (a kept plan's cadence 14 → 21 days)."""
    source = reminder_source()
    kept_plan = 'then = { tone = "friendly", channel = "email", cadence_days = 14 }'
    failing = source.replace(kept_plan, kept_plan.replace("14", "21"), 1)
    assert failing != source
    return failing
