"""The default rule sets in rules/: valid, their own [[test]] cases pass on the real engine, the
smoke test passes, and the collections policy holds on facts derived from hand-built ledgers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.checks import run_tests, smoke_test
from engine.facts import derive_facts
from engine.ledger import (
    Contact,
    Customer,
    Dispute,
    Hold,
    Installment,
    Invoice,
    Ledger,
    Payment,
    PaymentPlan,
    Promise,
)
from engine.order import decide_in_order, parse_rulesets
from engine.ruleset import RuleSet
from engine.runtime import Engine

RULES = Path(__file__).resolve().parents[2] / "rules"
KINDS = ("credit", "reminder", "handoff")
AS_OF = date(2024, 6, 28)
D = Decimal


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def load_defaults() -> dict[str, RuleSet]:
    """rules/*.toml, each parsed after the rule sets it names in `after`."""
    sources = {kind: ((RULES / f"{kind}.toml").read_text(), f"rules/{kind}.toml") for kind in KINDS}
    parsed, problems = parse_rulesets(sources)
    assert problems == []
    return parsed


@pytest.fixture(scope="module")
def rulesets() -> dict[str, RuleSet]:
    return load_defaults()


# ---- the files ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_default_file_validates_with_a_moderate_number_of_rules(kind):
    ruleset = load_defaults()[kind]
    assert ruleset.kind == kind
    assert 10 <= len(ruleset.rules) <= 40
    assert len(ruleset.tests) >= 10
    for rule in ruleset.rules:
        assert rule.name and rule.reason, rule.id
        assert rule.id.startswith({"credit": "CR-", "reminder": "RT-", "handoff": "HO-"}[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_default_file_test_cases_pass_on_the_engine(kind, rulesets, engine):
    results = run_tests(rulesets[kind], engine)
    failed = [(r.name, r.expected, r.actual, r.error) for r in results if not r.passed]
    assert not failed
    assert len(results) == len(rulesets[kind].tests)


@pytest.mark.parametrize("kind", KINDS)
def test_every_rule_fires_in_some_test_case(kind, rulesets, engine):
    ruleset = rulesets[kind]
    fired = {f.id for case in ruleset.tests for f in engine.evaluate(ruleset, case.facts).fired}
    assert fired == {rule.id for rule in ruleset.rules}


@pytest.mark.parametrize("kind", KINDS)
def test_default_file_passes_the_smoke_test(kind, rulesets):
    assert smoke_test(rulesets[kind]) == []


def test_credit_grades_history_into_a_derived_risk_band(rulesets, engine):
    facts = {
        "promises_broken_12m": 1,
        "days_past_due": 0,
        "late_payments_12m": 0,
        "avg_days_late_12m": 0.0,
        "credit_limit": D("10000.00"),
        "open_balance": D("7000.00"),
        "requested_amount": D("2000.00"),
        "new_exposure": D("9000.00"),
    }
    evaluation = engine.evaluate(rulesets["credit"], facts)
    assert evaluation.derived == {"risk_band": "medium"}
    assert [f.id for f in evaluation.fired] == ["CR-002", "CR-320"]
    assert "medium risk band" in evaluation.reasons[1]


def test_a_rule_reading_an_absent_score_does_not_match(rulesets, engine):
    history = {
        "invoices_paid_12m": 5,
        "promises_broken_12m": 0,
        "days_past_due": 0,
        "late_payments_12m": 0,
        "avg_days_late_12m": 0.0,
        "credit_limit": D("10000.00"),
        "open_balance": D("0.00"),
        "requested_amount": D("2000.00"),
        "new_exposure": D("2000.00"),
    }
    scored = engine.evaluate(rulesets["credit"], {**history, "credit_score": 250})
    unscored = engine.evaluate(rulesets["credit"], history)
    assert scored.outcome["decision"] == "decline"
    assert unscored.outcome["decision"] == "approve"
    assert "CR-140" not in [f.id for f in unscored.fired]


# ---- the policy on facts derived from ledgers -----------------------------------------------


def days(n: int) -> date:
    """The date n days before AS_OF (negative: after it)."""
    return AS_OF - timedelta(days=n)


def customer(limit: str = "20000", since: date = date(2019, 3, 1), score: int | None = 720):
    return Customer("C1", "Acme GmbH", "EUR", D(limit), since, "wholesale", "DE", score)


def invoice(id: str, days_overdue: int, amount: str = "4200.00") -> Invoice:
    """An invoice on 30-day terms, `days_overdue` days past due on AS_OF (negative: not yet due)."""
    due = days(days_overdue)
    return Invoice(id, "C1", due - timedelta(days=30), due, D(amount))


def reminder(id: str, tone: str, days_ago: int) -> Contact:
    return Contact(id, "C1", days(days_ago), "reminder", tone)


def decide(rulesets, engine, ledger: Ledger, requested: str = "0") -> dict[str, dict]:
    """One account's outcomes by kind, each rule set after those it names (as a run decides)."""
    facts = derive_facts(ledger, AS_OF, D(requested))
    steps = decide_in_order(engine.evaluate, rulesets.values(), facts)
    return {step.ruleset.kind: step.evaluation.outcome for step in steps}


def long_overdue(**records) -> Ledger:
    """120 days past due, final notice sent 20 days ago, never paid; plus `records`."""
    sent = (reminder("K1", "firm", 50), reminder("K2", "final", 20))
    return Ledger(
        customer(),
        invoices=(invoice("I1", 120), invoice("I2", 90, "1800.00")),
        contacts=sent + tuple(records.pop("contacts", ())),
        **records,
    )


def tone(
    tone: str,
    channel: str = "email",
    cadence: int = 7,
    notice: str = "reminder",
    show_charges: bool | None = None,
) -> dict:
    """A reminder outcome; the final notice and the demand state the late charges."""
    if show_charges is None:
        show_charges = tone in ("final", "demand") and notice == "reminder"
    return {
        "tone": tone,
        "channel": channel,
        "cadence_days": cadence,
        "notice": notice,
        "show_charges": show_charges,
    }


def test_ten_days_overdue_gets_a_friendly_reminder(rulesets, engine):
    decided = decide(rulesets, engine, Ledger(customer(), invoices=(invoice("I1", 10),)))
    assert decided["reminder"] == tone("friendly")
    assert decided["handoff"]["action"] == "none"


def test_an_invoice_due_in_three_days_gets_a_courtesy_reminder(rulesets, engine):
    decided = decide(rulesets, engine, Ledger(customer(), invoices=(invoice("I1", -3),)))
    assert decided["reminder"]["tone"] == "courtesy"


def test_reminders_escalate_one_step_at_a_time_with_age(rulesets, engine):
    tones = []
    for age, last in ((10, None), (20, "friendly"), (40, "firm"), (70, "final")):
        contacts = (reminder("K1", last, 14),) if last else ()
        ledger = Ledger(customer(), invoices=(invoice("I1", age),), contacts=contacts)
        tones.append(decide(rulesets, engine, ledger)["reminder"]["tone"])
    assert tones == ["friendly", "firm", "final", "demand"]


def test_no_skipped_step_after_a_friendly_reminder_the_next_is_firm_not_final(rulesets, engine):
    ledger = Ledger(
        customer(), invoices=(invoice("I1", 45),), contacts=(reminder("K", "friendly", 9),)
    )
    decided = decide(rulesets, engine, ledger)
    assert decided["reminder"] == tone("firm")


def test_a_disputed_invoice_alone_pauses_reminders_until_resolved(rulesets, engine):
    invoices = (invoice("I1", 40),)
    contacts = (reminder("K1", "firm", 10),)
    disputed = Ledger(customer(), invoices=invoices, disputes=(Dispute("X1", "I1", days(5)),))
    resolved = Ledger(
        customer(),
        invoices=invoices,
        disputes=(Dispute("X1", "I1", days(30), days(2)),),
        contacts=contacts,
    )
    assert decide(rulesets, engine, disputed)["reminder"]["tone"] == "none"
    assert decide(rulesets, engine, resolved)["reminder"]["tone"] == "final"


def test_a_small_dispute_does_not_silence_the_undisputed_overdue_balance(rulesets, engine):
    """150.00 disputed on one invoice, 5,000.00 undisputed and 40 days overdue on another."""
    ledger = Ledger(
        customer(),
        invoices=(invoice("I1", 40, "5000.00"), invoice("I2", 45, "150.00")),
        disputes=(Dispute("X1", "I2", days(40)),),
        contacts=(reminder("K1", "firm", 9),),
    )
    facts = derive_facts(ledger, AS_OF)
    assert (facts["undisputed_overdue_balance"], facts["overdue_balance"]) == (
        D("5000.00"),
        D("5150.00"),
    )
    decided = decide(rulesets, engine, ledger)
    assert decided["reminder"] == tone("final", "letter", 10)
    assert decided["handoff"]["action"] == "review_dispute"  # open 40 days: a controller settles it


def test_120_days_with_a_final_notice_and_no_plan_is_handed_off_without_a_reminder(
    rulesets, engine
):
    decided = decide(rulesets, engine, long_overdue())
    assert decided["handoff"] == {
        "action": "handoff",
        "agency": "standard",
        "plan_instalments": 3,
        "plan_interval_days": 30,
    }
    assert decided["reminder"]["tone"] == "none"
    assert decided["credit"] == {**decided["credit"], "decision": "none", "status": "stop"}


def test_the_same_account_keeping_a_payment_plan_is_not_handed_off(rulesets, engine):
    plan = PaymentPlan(
        "P1",
        "C1",
        "active",
        (Installment(days(-10), D("1000.00")), Installment(days(-40), D("5000.00"))),
    )
    decided = decide(rulesets, engine, long_overdue(payment_plans=(plan,)))
    assert decided["handoff"]["action"] == "none"
    assert decided["reminder"] == tone("friendly", cadence=14)


def test_a_missed_installment_gets_the_plans_default_notice_and_a_second_breaks_it(
    rulesets, engine
):
    def plan(*due: int) -> PaymentPlan:
        return PaymentPlan(
            "P1", "C1", "active", tuple(Installment(days(n), D("1000.00")) for n in due)
        )

    contacts = (reminder("K3", "friendly", 20),)
    one = decide(rulesets, engine, long_overdue(payment_plans=(plan(5, -25),), contacts=contacts))
    assert one["reminder"] == tone("firm", "letter", 14, "plan_default")
    assert one["handoff"]["action"] == "none"
    two = decide(rulesets, engine, long_overdue(payment_plans=(plan(35, 5),), contacts=contacts))
    assert two["reminder"] == tone("final", "letter", 10)  # the plan is broken: final notice
    assert two["handoff"]["action"] == "none"  # the hand-off waits ten days for it


def test_a_broken_promise_gets_a_call(rulesets, engine):
    promise = Promise("R1", "C1", days(20), days(5), D("4200.00"))
    ledger = Ledger(
        customer(),
        invoices=(invoice("I1", 25),),
        promises=(promise,),
        contacts=(reminder("K1", "friendly", 12),),
    )
    decided = decide(rulesets, engine, ledger)
    assert decided["reminder"] == tone("firm", "phone", 1, "promise_broken")


def test_an_active_promise_stops_the_hand_off(rulesets, engine):
    promise = Promise("R1", "C1", days(3), days(-7), D("6000.00"))
    decided = decide(rulesets, engine, long_overdue(promises=(promise,)))
    assert decided["handoff"]["action"] == "none"
    assert decided["reminder"]["tone"] == "friendly"


def test_an_open_dispute_or_a_hold_holds_the_hand_off(rulesets, engine):
    disputed = long_overdue(disputes=(Dispute("X1", "I2", days(10)),))
    held = long_overdue(holds=(Hold("H1", "C1", "negotiating", days(5)),))
    assert decide(rulesets, engine, disputed)["handoff"]["action"] == "hold"
    assert decide(rulesets, engine, held)["handoff"]["action"] == "hold"
    assert decide(rulesets, engine, held)["reminder"]["tone"] == "none"


def test_a_recent_partial_payment_earns_a_plan_offer_which_is_the_letter(rulesets, engine):
    payment = Payment("M1", "C1", days(25), D("500.00"))
    decided = decide(rulesets, engine, long_overdue(payments=(payment,)))
    assert decided["handoff"]["action"] == "offer_plan"
    assert decided["reminder"] == tone("final", "letter", 14, "plan_offer")


def test_an_account_with_an_agency_gets_nothing_more(rulesets, engine):
    placed = Contact("A1", "C1", days(5), "agency_placement")
    decided = decide(rulesets, engine, long_overdue(contacts=(placed,)))
    assert decided["reminder"]["tone"] == "none"
    assert decided["handoff"]["action"] == "none"
    assert decided["credit"]["decision"] == "none"
    assert (decided["credit"]["status"], decided["credit"]["review_days"]) == ("stop", 0)
    assert (
        decide(rulesets, engine, long_overdue(contacts=(placed,)), "100")["credit"]["decision"]
        == "decline"
    )


def test_credit_follows_exposure_against_the_limit(rulesets, engine):
    paid = Payment("M1", "C1", days(40), D("1000.00"))
    history = Invoice("I0", "C1", days(80), days(50), D("1000.00"))
    ledger = Ledger(
        customer("10000"), invoices=(history, invoice("I1", -20, "2000.00")), payments=(paid,)
    )
    outcomes = [
        decide(rulesets, engine, ledger, requested)["credit"]["decision"]
        for requested in ("0", "3000.00", "9000.00", "20000.00")
    ]
    assert outcomes == ["none", "approve", "refer", "decline"]


def test_credit_without_an_order_gives_the_status_and_no_decision(rulesets, engine):
    credit = decide(rulesets, engine, long_overdue())["credit"]
    assert (credit["decision"], credit["status"], credit["review_days"]) == ("none", "stop", 30)


def test_no_history_is_its_own_band_not_good_history(
    rulesets,
    engine,
):
    facts = derive_facts(Ledger(customer(), invoices=(invoice("I1", -10),)), AS_OF)
    evaluation = engine.evaluate(rulesets["credit"], facts)
    assert evaluation.derived["risk_band"] == "none"
    assert not any("Low risk" in reason for reason in evaluation.reasons)


def test_a_new_customer_with_a_good_score_gets_a_starter_limit(rulesets, engine):
    ledger = Ledger(customer("0", since=days(20), score=760))
    credit = decide(rulesets, engine, ledger, "2500.00")["credit"]
    assert credit == {
        "decision": "approve",
        "status": "ok",
        "credit_limit": D("5000.00"),
        "terms_days": 30,
        "review_days": 0,
    }
    unscored = Ledger(customer("0", since=days(20), score=None))
    assert decide(rulesets, engine, unscored, "2500.00")["credit"]["decision"] == "refer"


# ---- docs/rules.md --------------------------------------------------------------------------


def test_rules_doc_names_every_fact():
    from engine.facts import FACTS

    text = (RULES.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    missing = [name for name in FACTS if f"`{name}`" not in text]
    assert not missing


def test_rules_doc_embeds_the_current_fact_catalogue():
    from engine.facts import fact_catalogue_markdown

    text = (RULES.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    assert fact_catalogue_markdown() in text, (
        "docs/rules.md is out of date: paste the output of "
        "`python -c 'from engine.facts import fact_catalogue_markdown as f; print(f())'` "
        "over its fact table"
    )
