"""The collections policy, account by account, through a real nightly run on a hand-built
ledger: the whole night's actions for each account agree with each other and with the policy
(issue 16). Then the same decisions through the API and the command line, and replay."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from api.settings import RunSettings

AS_OF = date(2024, 6, 28)


def day(offset: int) -> str:
    """AS_OF plus `offset` days (negative: before it)."""
    return (AS_OF + timedelta(days=offset)).isoformat()


def customer(customer_id: str, **fields) -> dict:
    return {
        "type": "customer",
        "id": customer_id,
        "name": f"{customer_id} Ltd",
        "country": "GB",
        "currency": "EUR",
        "credit_limit": "20000.00",
        "credit_score": 720,
        "since": "2019-03-01",
        **fields,
    }


def invoice(invoice_id: str, customer_id: str, days_late: int, amount: str) -> dict:
    """An invoice on 30-day terms, `days_late` days past due on AS_OF (negative: not yet due)."""
    return {
        "type": "invoice",
        "id": invoice_id,
        "customer_id": customer_id,
        "issue_date": day(-days_late - 30),
        "due_date": day(-days_late),
        "amount": amount,
    }


def reminder(contact_id: str, customer_id: str, tone: str, days_ago: int) -> dict:
    return {
        "type": "reminder",
        "id": contact_id,
        "customer_id": customer_id,
        "date": day(-days_ago),
        "tone": tone,
    }


def long_overdue(customer_id: str) -> list[dict]:
    """120 and 90 days past due, a final notice sent 20 days ago."""
    return [
        customer(customer_id),
        invoice(f"{customer_id}-1", customer_id, 120, "4200.00"),
        invoice(f"{customer_id}-2", customer_id, 90, "1800.00"),
        reminder(f"{customer_id}-K1", customer_id, "firm", 50),
        reminder(f"{customer_id}-K2", customer_id, "final", 20),
    ]


def plan(customer_id: str, *due_offsets: int) -> dict:
    installments = [{"due_date": day(n), "amount": "1000.00"} for n in due_offsets]
    return {
        "type": "payment_plan",
        "id": f"{customer_id}-PLAN",
        "customer_id": customer_id,
        "status": "active",
        "installments": installments,
    }


def ledger() -> list[dict]:
    records = long_overdue("C-HANDOFF")  # never paid: no plan offer, a hand-off
    records += long_overdue("C-PLAN")  # a recent part payment: a plan is offered instead
    paid = {"type": "payment", "id": "C-PLAN-P", "customer_id": "C-PLAN", "amount": "500.00"}
    records.append({**paid, "date": day(-25)})
    for cid, opened in (("C-DISPUTE", 10), ("C-DISPUTE-OLD", 40)):  # 150 disputed, 5,000 not
        records += [
            customer(cid),
            invoice(f"{cid}-1", cid, 40, "5000.00"),
            invoice(f"{cid}-2", cid, 45, "150.00"),
            {"type": "dispute", "id": f"{cid}-X", "invoice_id": f"{cid}-2", "opened": day(-opened)},
            reminder(f"{cid}-K", cid, "firm", 9),
        ]
    records += [  # promised 3,000 for five days ago, paid nothing
        customer("C-PROMISE"),
        invoice("C-PROMISE-1", "C-PROMISE", 25, "3000.00"),
        reminder("C-PROMISE-K", "C-PROMISE", "friendly", 12),
        {
            "type": "promise",
            "id": "C-PROMISE-R",
            "customer_id": "C-PROMISE",
            "made_on": day(-20),
            "date": day(-5),
            "amount": "3000.00",
        },
    ]
    for cid, dues in (("C-MISSED", (-5, 25)), ("C-BROKEN-PLAN", (-35, -5))):
        records += [
            customer(cid),
            invoice(f"{cid}-1", cid, 120, "4200.00"),
            reminder(f"{cid}-K", cid, "friendly", 20),
            plan(cid, *dues),
        ]
    records += [  # a friendly reminder only, 40 days late: the next step is firm
        customer("C-FRIENDLY"),
        invoice("C-FRIENDLY-1", "C-FRIENDLY", 40, "800.00"),
        reminder("C-FRIENDLY-K", "C-FRIENDLY", "friendly", 9),
    ]
    records += long_overdue("C-AGENCY") + [
        {"type": "agency_placement", "id": "C-AGENCY-A", "customer_id": "C-AGENCY", "date": day(-5)}
    ]  # fmt: skip
    # A low-risk account on its day of the yearly credit review (api.nightly.actions.review_turn).
    records += [
        customer("C-REVIEW-427"),
        invoice("C-REVIEW-427-0", "C-REVIEW-427", 60, "900.00"),
        {
            "type": "payment",
            "id": "C-REVIEW-427-P",
            "customer_id": "C-REVIEW-427",
            "date": day(-62),
            "amount": "900.00",
        },
        invoice("C-REVIEW-427-1", "C-REVIEW-427", -20, "1200.00"),
    ]
    return records


@pytest.fixture
def night(client, auth, settings) -> dict[str, dict[str, dict]]:
    """The ledger stored, the nightly run of AS_OF done: each account's actions by type."""
    from api.nightly.run import execute_run, prepare_run
    from storage.runs import Action

    response = client.post("/v1/ledger/batch", json={"records": ledger()}, headers=auth("decide"))
    assert response.status_code == 200, response.json
    assert response.json["inserted"] == len(ledger()), response.json
    settings = replace(settings, run=RunSettings(batch_size=4, workers=1))
    run, _ = prepare_run(settings, AS_OF, True, "test")
    assert execute_run(settings, run.run_id)["report"]["errors"] == []
    actions: dict[str, dict[str, dict]] = {}
    for action in Action.select().where(Action.run == run.run_id):
        actions.setdefault(action.customer_id, {})[action.type] = action.payload
    return actions


def test_a_hand_off_night_sends_no_reminder(night):
    assert set(night["C-HANDOFF"]) == {"handoff"}
    assert night["C-HANDOFF"]["handoff"]["agency"] == "standard"


def test_the_night_a_plan_is_offered_the_reminder_is_the_plan_offer(night):
    assert set(night["C-PLAN"]) == {"offer_plan", "reminder"}
    letter = night["C-PLAN"]["reminder"]
    assert (letter["notice"], letter["channel"]) == ("plan_offer", "letter")
    assert letter["message"]["template"] == "reminder/plan_offer.en.j2"
    assert "payment plan" in letter["message"]["body"]


def test_a_dispute_on_150_leaves_the_5000_undisputed_chased_and_named_alone(night):
    assert set(night["C-DISPUTE"]) == {"reminder"}
    letter = night["C-DISPUTE"]["reminder"]
    assert (letter["tone"], letter["undisputed_overdue_balance"]) == ("final", "5000.00")
    assert [i["invoice_id"] for i in letter["invoices"]] == ["C-DISPUTE-1"]
    assert "C-DISPUTE-2" not in letter["message"]["body"]
    assert "Total overdue: €5,000.00" in letter["message"]["body"]  # en_GB


def test_a_dispute_open_longer_than_the_policy_allows_goes_to_a_controller(night):
    assert set(night["C-DISPUTE-OLD"]) == {"review_dispute", "reminder"}
    review = night["C-DISPUTE-OLD"]["review_dispute"]
    assert [i["invoice_id"] for i in review["invoices"]] == ["C-DISPUTE-OLD-2"]
    assert review["oldest_dispute_days"] == 40
    assert night["C-DISPUTE-OLD"]["reminder"]["undisputed_overdue_balance"] == "5000.00"


def test_a_broken_promise_gets_a_phone_call(night):
    assert set(night["C-PROMISE"]) == {"reminder"}
    call = night["C-PROMISE"]["reminder"]
    assert (call["channel"], call["tone"], call["notice"]) == ("phone", "firm", "promise_broken")
    assert "message" not in call  # a call script, not an e-mail text
    assert call["call_script"]["template"] == "reminder/promise_broken.en.j2"
    script = call["call_script"]["body"]
    assert "€3,000.00 by 23 June 2024, promised on 8 June 2024" in script


def test_a_missed_installment_gets_the_plans_default_notice(night):
    assert set(night["C-MISSED"]) == {"reminder"}
    notice = night["C-MISSED"]["reminder"]
    assert (notice["notice"], notice["tone"], notice["channel"]) == (
        "plan_default",
        "firm",
        "letter",
    )
    assert "23 June 2024" in notice["message"]["body"]  # the missed installment's due date


def test_a_second_missed_installment_breaks_the_plan_final_notice_no_hand_off_yet(night):
    assert set(night["C-BROKEN-PLAN"]) == {"reminder"}
    letter = night["C-BROKEN-PLAN"]["reminder"]
    assert (letter["tone"], letter["notice"]) == ("final", "reminder")
    assert any("plan is broken" in reason for reason in letter["reasons"])


def test_after_a_friendly_reminder_the_next_is_firm_not_final(night):
    assert set(night["C-FRIENDLY"]) == {"reminder"}
    assert night["C-FRIENDLY"]["reminder"]["tone"] == "firm"


def test_an_account_with_an_agency_gets_no_credit_review_nor_anything_else(night):
    assert "C-AGENCY" not in night


def test_credit_reviews_come_on_the_accounts_turn_in_its_risk_bands_cycle(night):
    assert set(night["C-REVIEW-427"]) == {"credit_review"}
    review = night["C-REVIEW-427"]["credit_review"]
    assert (review["decision"], review["status"], review["review_days"]) == ("none", "ok", 365)


def test_credit_without_an_order_has_no_decision_and_always_a_status(night, client, auth):
    from storage.decisions import DecisionFilter, iter_decisions

    credit = list(iter_decisions(DecisionFilter(kind="credit")))
    assert len(credit) == 10  # every account, each decided once
    assert {d["outcome"]["decision"] for d in credit} == {"none"}
    status = {d["customer_id"]: d["outcome"]["status"] for d in credit}
    assert (status["C-AGENCY"], status["C-REVIEW-427"], status["C-FRIENDLY"]) == (
        "stop",
        "ok",
        "watch",
    )


# ---- the trace and replay ------------------------------------------------------------------


def test_a_runs_reminder_names_the_hand_off_decision_it_read_and_replays_exactly(night):
    from api.usecases import load_active_rulesets
    from engine.facts import check_facts
    from engine.runtime import Engine
    from storage.decisions import DecisionFilter, get_decision, iter_decisions

    (stored,) = iter_decisions(DecisionFilter(customer_id="C-HANDOFF", kind="reminder"))
    (ref,) = stored["earlier"]
    handoff = get_decision(ref["decision_id"])
    assert (handoff["kind"], handoff["customer_id"]) == ("handoff", "C-HANDOFF")
    assert (ref["kind"], ref["version"], ref["sha256"]) == (
        "handoff",
        1,
        handoff["ruleset"]["sha256"],
    )
    assert ref["facts"] == [
        "handoff_action",
        "handoff_agency",
        "handoff_plan_instalments",
        "handoff_plan_interval_days",
    ]
    assert stored["facts"]["handoff_action"] == "handoff"
    assert [f["id"] for f in stored["fired"]] == ["RT-015"]

    ruleset = load_active_rulesets()["reminder"].ruleset
    assert ruleset.sha256 == stored["ruleset"]["sha256"]
    facts = check_facts(stored["facts"], complete=False, earlier=ruleset.earlier_facts())
    replayed = Engine().evaluate(ruleset, facts).trace_json()
    assert replayed == {k: stored[k] for k in ("outcome", "reasons", "fired")}


def test_the_api_decides_the_hand_off_first_without_storing_it(night, client, auth):
    from storage.decisions import DecisionFilter, count_decisions

    before = count_decisions(DecisionFilter())
    body = {"customer_id": "C-HANDOFF", "as_of": AS_OF.isoformat()}
    response = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert response.status_code == 201, response.json
    decision = response.json
    assert (
        decision["outcome"]["tone"] == "none" and decision["facts"]["handoff_action"] == "handoff"
    )
    (ref,) = decision["earlier"]
    assert (ref["kind"], ref["version"], ref["decision_id"]) == ("handoff", 1, None)
    assert count_decisions(DecisionFilter()) == before + 1  # the hand-off was not stored

    given = {**body, "facts": {"handoff_action": "none"}}  # the caller's word wins
    response = client.post("/v1/decisions/reminder", json=given, headers=auth("decide"))
    assert response.json["outcome"]["tone"] == "demand"
    assert response.json["earlier"][0]["facts"] == [
        "handoff_agency",
        "handoff_plan_instalments",
        "handoff_plan_interval_days",
    ]


def test_facts_given_directly_may_hold_an_earlier_decisions_facts_checked(client, auth):
    from api_support import complete_facts

    facts = complete_facts(days_past_due=100, overdue_balance="4200.00", handoff_action="handoff")
    response = client.post("/v1/decisions/reminder", json={"facts": facts}, headers=auth("decide"))
    assert response.status_code == 201, response.json
    assert response.json["outcome"]["tone"] == "none" and response.json["earlier"] == []
    bad = {**facts, "handoff_action": "hnadoff"}
    response = client.post("/v1/decisions/reminder", json={"facts": bad}, headers=auth("decide"))
    assert response.status_code == 422
    assert "facts.handoff_action" in response.json["errors"], response.json
    missing = {k: v for k, v in facts.items() if k != "handoff_action"}  # absent: no match
    response = client.post(
        "/v1/decisions/reminder", json={"facts": missing}, headers=auth("decide")
    )
    assert response.status_code == 201 and response.json["outcome"]["tone"] != "none"


def test_credo_decide_shows_the_facts_from_the_hand_off_decision(night, settings):
    from click.testing import CliRunner

    from api.cli.main import main

    env = {"CREDO_DATABASE_URL": settings.database_url}
    args = ["decide", "reminder", "--customer", "C-HANDOFF", "--as-of", AS_OF.isoformat()]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert "reminder: tone=none" in result.output
    assert "facts from the handoff decision (version 1, not stored): handoff_action=handoff" in (
        result.output
    )


@pytest.mark.parametrize(
    "value",
    [["handoff"], {"a": 1}, 3, True, None, "\ud800", "hand\x00off", "=HYPERLINK()", "x" * 100_000],
)
@pytest.mark.parametrize("name", ["handoff_action", "handoff_agency"])
def test_hostile_earlier_facts_are_refused_or_kept_never_a_500(client, auth, name, value):
    from api_support import complete_facts

    body = {"facts": complete_facts(days_past_due=100, **{name: value})}
    response = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert response.status_code in (201, 422), response.json
    if response.status_code == 422:
        assert f"facts.{name}" in response.json["errors"], response.json
