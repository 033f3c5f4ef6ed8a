"""The plain-language side of decisions (engine/explanation.py, engine/explain.py) on the
shipped rule sets: the explanation of each default rule set's typical outcomes, why-not
messages, what would change a credit decision; and on small rule sets, the edges (hostile
reason text, other operators)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine import explain, explanation, expr
from engine.facts import check_facts
from engine.order import parse_rulesets
from engine.ruleset import RuleSet, parse_ruleset
from engine.runtime import Engine

RULES = Path(__file__).resolve().parents[2] / "rules"
D = Decimal

BASE = {
    "customer_id": "X9", "segment": "smb", "country": "DE", "tenure_months": 40,
    "credit_limit": "10000.00", "credit_score": 720, "open_balance": "1000.00",
    "overdue_balance": "0.00", "overdue_1_30": "0.00", "overdue_31_60": "0.00",
    "overdue_61_90": "0.00", "overdue_90_plus": "0.00", "days_past_due": 0, "invoices_open": 1,
    "invoices_overdue": 0, "days_until_next_due": 12, "utilization": 0.1,
    "disputed_amount": "0.00", "has_open_dispute": False, "on_payment_plan": False,
    "plan_missed_installments": 0, "has_active_promise": False, "promises_broken_12m": 0,
    "late_payments_12m": 0, "avg_days_late_12m": 0.0, "last_reminder_tone": "none",
    "in_agency": False, "on_hold": False, "requested_amount": "0.00", "invoices_paid_12m": 4,
}  # fmt: skip


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def rulesets() -> dict[str, RuleSet]:
    kinds = ("credit", "reminder", "handoff")
    sources = {k: ((RULES / f"{k}.toml").read_text(), f"rules/{k}.toml") for k in kinds}
    parsed, problems = parse_rulesets(sources)
    assert problems == []
    return parsed


def facts(ruleset: RuleSet, **changes) -> dict:
    return check_facts({**BASE, **changes}, complete=True, earlier=ruleset.earlier_facts())


def explained(rulesets, engine, kind: str, **changes) -> str:
    evaluation = engine.evaluate(rulesets[kind], facts(rulesets[kind], **changes))
    return explanation.explanation(kind, evaluation.outcome, evaluation.fired)


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        (
            "handoff",
            dict(days_past_due=124, overdue_balance="4200.00", last_reminder_tone="final",
                 days_since_last_reminder=21, promises_broken_12m=2),
            "Handed to the standard agency: 4200.00 overdue, oldest invoice 124 days past due; "
            "final notice sent 21 days ago (rule HO-120).",
        ),
        (
            "handoff",
            dict(days_past_due=70, overdue_balance="900.00", has_open_dispute=True,
                 disputed_amount="300.00", oldest_dispute_days=12),
            "Hand-off on hold: Open dispute on 300.00 (open 12 days): no hand-off until it is "
            "resolved (70 days past due) (rule HO-030).",
        ),
        (
            "handoff",
            dict(days_past_due=30, overdue_balance="900.00"),
            "No hand-off: Oldest undisputed invoice 30 days past due: no hand-off before 60 days "
            "(rule HO-020).",
        ),
        (
            "reminder",
            dict(days_past_due=20, overdue_balance="400.00"),
            "Friendly reminder by email: Oldest undisputed invoice 20 days past due, 400.00 "
            "overdue; last reminder: none, so a friendly one comes first (rule RT-140).",
        ),
        (
            "reminder",
            dict(days_past_due=40, overdue_balance="400.00", in_agency=True),
            "No reminder: The account is with a collection agency (400.00 overdue); the agency "
            "does the chasing (rule RT-010).",
        ),
        (
            "credit",
            dict(requested_amount="500.00", new_exposure="1500.00"),
            "Approved, account in good standing: Low-risk customer; exposure with this order "
            "1500.00 within the 10000.00 limit; Low risk: 4 invoices paid in 12 months, 0 of them "
            "late (average 0 days), no broken promise; oldest invoice 0 days past due "
            "(rules CR-330, CR-003).",
        ),
        (
            "credit",
            dict(requested_amount="500.00", new_exposure="1500.00", days_past_due=120),
            "Declined, credit stopped: Credit is stopped: the order of 500.00 is declined; High "
            "risk: 0 broken promises and 0 late payments (average 0 days late) in 12 months; "
            "oldest invoice 120 days past due; Oldest undisputed invoice 120 days past due, 0.00 "
            "overdue by more than 90 days (rules CR-150, CR-001, CR-110).",
        ),
        (
            "credit",
            dict(),
            "Account in good standing: Low-risk payment history: credit ok, reviewed every 365 "
            "days; Low risk: 4 invoices paid in 12 months, 0 of them late (average 0 days), no "
            "broken promise; oldest invoice 0 days past due (rules CR-540, CR-003).",
        ),
    ],
)  # fmt: skip
def test_explanations_of_the_default_rule_sets_typical_outcomes(
    rulesets, engine, kind, changes, expected
):
    assert explained(rulesets, engine, kind, **changes) == expected


def test_reminder_after_a_hand_off_tonight(rulesets, engine):
    text = explained(
        rulesets, engine, "reminder", days_past_due=120, overdue_balance="4200.00",
        handoff_action="handoff", handoff_agency="standard",
    )  # fmt: skip
    assert text == (
        "No reminder: The account goes to the standard agency tonight: no reminder from us "
        "(rule RT-015)."
    )


def test_an_explanation_is_capped_and_never_holds_control_characters():
    fired = [
        {"id": f"R{i}", "reason": "x\x00y\ud800z\n" + "w" * 600, "then": {"f": 1}} for i in range(5)
    ]
    text = explanation.explanation("custom", {"f": 1, "g": None}, fired)
    assert len(text) == explanation.EXPLANATION_LENGTH and text.endswith("…")
    assert text.isprintable() and text.startswith("F 1: x y z ")
    assert explanation.explanation("custom", {}, []) == "No outcome."
    assert explanation.explanation("custom", {"tone": "firm"}, []) == "Tone firm."


# ---- why not: the first condition that failed ------------------------------------------------


@pytest.mark.parametrize(
    ("when", "given", "message"),
    [
        ("days_past_due > 90", {"days_past_due": 61}, "days_past_due 61 is not > 90"),
        ("90 < days_past_due", {"days_past_due": 61}, "days_past_due 61 is not > 90"),
        ("15 <= days_past_due <= 30", {"days_past_due": 40}, "days_past_due 40 is not <= 30"),
        ("has_open_dispute", {"has_open_dispute": False}, "has_open_dispute is false"),
        ("not on_hold", {"on_hold": True}, "on_hold is true"),
        ('segment == "retail"', {"segment": "smb"}, 'segment is "smb", not "retail"'),
        ('segment != "smb"', {"segment": "smb"}, 'segment is "smb", which it must not be'),
        (
            'last_reminder_tone in ["final", "demand"]',
            {"last_reminder_tone": "firm"},
            'last_reminder_tone is "firm", not one of "final", "demand"',
        ),
        (
            "new_exposure > credit_limit * 1.5",
            {"new_exposure": D("61250.00"), "credit_limit": D("50000.00")},
            "new_exposure 61,250.00 is not > credit_limit * 1.5 (75,000.00)",
        ),
        ("credit_score < 300", {}, "credit_score is absent"),
        (
            "days_past_due > 90 or in_agency",
            {"days_past_due": 5, "in_agency": False},
            "none of these holds: days_past_due 5 is not > 90; in_agency is false",
        ),
        ("false", {}, "the condition is always false"),
    ],
)
def test_the_first_failing_condition_is_described_with_the_values_it_read(when, given, message):
    failure = explain.first_failure(expr.parse(when), given)
    assert failure is not None and failure.message == message


def test_a_matching_condition_has_no_failure():
    assert explain.first_failure(expr.parse("days_past_due > 90"), {"days_past_due": 91}) is None


# ---- what would change it --------------------------------------------------------------------


def test_changes_move_a_fact_just_past_the_number_it_is_compared_with():
    ruleset = parse_ruleset(
        """
kind = "t"
title = "t"
hit_policy = "first"
[outcome]
decision = { values = ["approve", "refer"], default = "approve" }
[[rule]]
id = "T-1"
name = "n"
priority = 10
when = '''requested_amount > 0 and new_exposure > credit_limit and days_past_due >= 30
  and utilization < 0.5'''
then = { decision = "refer" }
reason = "r"
""",
        "t.toml",
    )
    seen = {
        "requested_amount": D("10.00"), "new_exposure": D("61250.00"),
        "credit_limit": D("50000.00"), "days_past_due": 45, "utilization": 0.25,
    }  # fmt: skip
    found = explain.changes(ruleset.rules[0], seen, seen)
    assert [(c.fact, c.op, c.limit, c.value) for c in found] == [
        ("new_exposure", "<=", D("50000.00"), D("50000.00")),
        ("days_past_due", "<", 30, 29),
        ("utilization", ">=", 0.5, 0.5),
    ]  # the guard requested_amount > 0 is left alone
    assert found[0].text("approve") == "approve if new_exposure ≤ 50,000.00; now 61,250.00"
    assert found[1].text("approve") == "approve if days_past_due < 30; now 45"
