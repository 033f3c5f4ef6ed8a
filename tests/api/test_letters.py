"""Letters a person would send (issue 16, items 6 and 7), through a real nightly run on a
hand-built ledger: amounts and dates in the letter's locale, the contact person greeted by name,
call scripts for calls, plan offers with their terms, late charges worked out by hand, and money
never added across currencies."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from api.settings import RunSettings

AS_OF = date(2026, 12, 7)


def day(offset: int) -> str:
    return (AS_OF + timedelta(days=offset)).isoformat()


def customer(customer_id: str, country: str, currency: str, contact: dict | None = None) -> dict:
    record = {
        "type": "customer",
        "id": customer_id,
        "name": f"{customer_id} Handels GmbH" if country == "DE" else f"{customer_id} Ltd",
        "country": country,
        "currency": currency,
        "credit_limit": "80000.00",
        "credit_score": 720,
        "since": "2019-03-01",
    }
    if contact is not None:
        record["contact"] = contact
    return record


def invoice(invoice_id: str, customer_id: str, days_late: int, amount: str) -> dict:
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


WEBER = {"name": "Anna Weber", "email": "anna.weber@example.com", "language": "de"}


def ledger() -> list[dict]:
    return [
        # 45 days late after a firm reminder: the final notice, which states the late charges
        customer("C-DE", "DE", "EUR", {**WEBER, "salutation": "ms"}),
        invoice("C-DE-1", "C-DE", 45, "49443.72"),
        reminder("C-DE-K", "C-DE", "firm", 12),
        # 10 days late, never reminded, no contact person: a friendly e-mail
        customer("C-GB", "GB", "GBP"),
        invoice("C-GB-1", "C-GB", 10, "1234.50"),
        # a contact whose salutation is not known: greeted by full name
        customer("C-NEUTRAL", "DE", "EUR", {"name": "Anna von der Heide"}),
        invoice("C-NEUTRAL-1", "C-NEUTRAL", 10, "800.00"),
        # promised 3,000.00 for five days ago, paid nothing: a call, with a call script
        customer("C-CALL", "DE", "EUR", {"name": "Jonas Müller", "language": "de"}),
        invoice("C-CALL-1", "C-CALL", 25, "3000.00"),
        reminder("C-CALL-K", "C-CALL", "friendly", 12),
        {
            "type": "promise",
            "id": "C-CALL-R",
            "customer_id": "C-CALL",
            "made_on": day(-20),
            "date": day(-5),
            "amount": "3000.00",
        },
        # 120 and 90 days late, a recent part payment: a plan is offered, 5,500.01 in three
        customer("C-PLAN", "GB", "EUR", {"name": "Emma Smith", "salutation": "ms"}),
        invoice("C-PLAN-1", "C-PLAN", 120, "4200.00"),
        invoice("C-PLAN-2", "C-PLAN", 90, "1800.01"),
        {"type": "payment", "id": "C-PLAN-P", "customer_id": "C-PLAN", "date": day(-25)}
        | {"amount": "500.00"},
        reminder("C-PLAN-K1", "C-PLAN", "firm", 50),
        reminder("C-PLAN-K2", "C-PLAN", "final", 20),
    ]


@pytest.fixture
def night(client, auth, settings) -> dict:
    """The ledger stored through the API, the nightly run of AS_OF done: its id, report and
    each account's actions by type."""
    from api.nightly.run import execute_run, prepare_run
    from storage.runs import Action

    response = client.post("/v1/ledger/batch", json={"records": ledger()}, headers=auth("decide"))
    assert response.status_code == 200 and response.json["inserted"] == len(ledger()), response.json
    settings = replace(settings, run=RunSettings(batch_size=3, workers=1))
    run, _ = prepare_run(settings, AS_OF, True, "test")
    result = execute_run(settings, run.run_id)
    assert result["report"]["errors"] == [] and result["report"]["message_errors"] == []
    actions: dict[str, dict[str, dict]] = {}
    for action in Action.select().where(Action.run == run.run_id):
        actions.setdefault(action.customer_id, {})[action.type] = action.payload
    return {"run_id": run.run_id, "report": result["report"], "actions": actions}


def test_a_german_letter_to_a_contact_person_reads_as_a_german_controller_writes_it(night):
    letter = night["actions"]["C-DE"]["reminder"]
    assert (letter["tone"], letter["channel"], letter["currency"]) == ("final", "letter", "EUR")
    message = letter["message"]
    assert message["language"] == "de" and message["template"] == "reminder/final.de.j2"
    body = message["body"]
    assert "z. Hd. Anna Weber\n7. Dezember 2026\n" in body
    assert "Sehr geehrte Frau Weber," in body and "Damen und Herren" not in body
    assert "C-DE-1  fällig 23. Oktober 2026  (45 Tage überfällig)  49.443,72\xa0€" in body
    assert "Summe: 49.443,72\xa0€" in body and message["subject"].endswith("49.443,72\xa0€")
    assert "2026-" not in body and "EUR" not in body  # no ISO date, no currency code
    assert letter["contact"]["name"] == "Anna Weber"


def test_late_charges_are_worked_out_from_the_ledger_and_stated_where_the_policy_says(night):
    # By hand: 49,443.72 × 10.27 % a year × 45 days / 365 = 626.0387… → 626.04, and the fixed
    # 40.00 per overdue invoice (DE, company.toml [late_charges.DE], no grace days).
    charges = night["actions"]["C-DE"]["reminder"]["charges"]
    assert charges["shown"] is True  # a final notice: RT-110's show_charges
    assert (charges["interest"], charges["fees"], charges["total"]) == ("626.04", "40.00", "666.04")
    assert charges["invoices"] == [
        {
            "invoice_id": "C-DE-1",
            "unpaid": "49443.72",
            "days": 45,
            "interest": "626.04",
            "fee": "40.00",
        }
    ]
    body = night["actions"]["C-DE"]["reminder"]["message"]["body"]
    assert "Verzugszinsen von 10,27 % pro Jahr" in body
    assert "C-DE-1  45 Tage  Zinsen 626,04\xa0€  Pauschale 40,00\xa0€" in body
    assert "Zinsen und Pauschalen bis heute: 666,04\xa0€" in body
    # A friendly reminder carries them on the action but does not state them. By hand, GB:
    # 1,234.50 × 12 % × 10 / 365 = 4.0586… → 4.06; the fixed sum for 1,000 to 10,000: 70.00.
    friendly = night["actions"]["C-GB"]["reminder"]
    assert friendly["charges"]["shown"] is False
    assert (friendly["charges"]["interest"], friendly["charges"]["fees"]) == ("4.06", "70.00")
    assert "interest" not in friendly["message"]["body"]


def test_an_english_letter_without_a_contact_gets_an_idiomatic_greeting(night):
    letter = night["actions"]["C-GB"]["reminder"]
    assert (letter["tone"], letter["currency"]) == ("friendly", "GBP")
    body = letter["message"]["body"]
    assert body.startswith("C-GB Ltd\n7 December 2026\n\nHello,\n")
    assert "C-GB-1  due 27 November 2026  (10 days)  £1,234.50" in body
    assert "Total past due: £1,234.50" in body and "GBP" not in body
    assert "contact" not in letter


def test_a_contact_without_a_salutation_is_greeted_by_full_name(night):
    body = night["actions"]["C-NEUTRAL"]["reminder"]["message"]["body"]
    assert "Guten Tag Anna von der Heide," in body and "Sehr geehrte" not in body
    assert "800,00\xa0€" in body


def test_a_phone_action_carries_a_call_script_not_an_e_mail(night):
    call = night["actions"]["C-CALL"]["reminder"]
    assert (call["channel"], call["notice"], call["tone"]) == ("phone", "promise_broken", "firm")
    assert "message" not in call
    script = call["call_script"]
    assert script["template"] == "reminder/promise_broken.de.j2" and script["language"] == "de"
    assert script["subject"].startswith("Anruf C-CALL Handels GmbH: zugesagte Zahlung")
    body = script["body"]
    assert "Gesprächspartner: Jonas Müller." in body
    assert "3.000,00\xa0€ bis 2. Dezember 2026, zugesagt am 17. November 2026" in body
    assert "C-CALL-1  fällig 12. November 2026  (25 Tage überfällig)  3.000,00\xa0€" in body
    assert "Sehr geehrte" not in body and "Mit freundlichen Grüßen" not in body


def test_a_plan_offer_states_instalments_that_add_up_to_the_balance_exactly(night):
    actions = night["actions"]["C-PLAN"]
    assert {"offer_plan", "reminder"} <= set(actions) and "handoff" not in actions
    plan = actions["offer_plan"]["plan"]
    assert plan == actions["reminder"]["plan"]
    # 3,700.00 of C-PLAN-1 after the 500.00 payment + 1,800.01 = 5,500.01: 1,833.33 twice and
    # the last one absorbing the rounding, one every 30 days (HO-100's plan terms)
    assert [(i["due_date"], i["amount"]) for i in plan["instalments"]] == [
        ("2027-01-06", "1833.33"),
        ("2027-02-05", "1833.33"),
        ("2027-03-07", "1833.35"),
    ]
    total = sum(Decimal(i["amount"]) for i in plan["instalments"])
    assert total == Decimal(plan["total"]) == Decimal("5500.01")
    letter = actions["reminder"]["message"]
    assert letter["template"] == "reminder/plan_offer.en.j2"
    body = letter["body"]
    assert "Dear Ms Smith," in body
    assert "3 instalments, one every 30 days:" in body
    assert "3. instalment  due 7 March 2027  €1,833.35" in body
    assert "Total: €5,500.01" in body
    assert "please confirm by 6 January 2027" in body


def test_the_report_gives_money_per_currency_and_never_a_sum_across_them(night):
    portfolio = night["report"]["portfolio"]
    assert portfolio["currencies"] == ["EUR", "GBP"]
    assert "open_balance" not in portfolio and "aging" not in portfolio
    eur, gbp = portfolio["by_currency"]["EUR"], portfolio["by_currency"]["GBP"]
    # EUR: 49,443.72 + 800.00 + 3,000.00 + 5,500.01; GBP: 1,234.50 alone
    assert (eur["customers"], eur["open_balance"]) == (4, "58743.73")
    assert (gbp["customers"], gbp["open_balance"], gbp["overdue_balance"]) == (
        1,
        "1234.50",
        "1234.50",
    )
    for action in (a for by_type in night["actions"].values() for a in by_type.values()):
        assert action["currency"] in ("EUR", "GBP")


def test_credo_run_prints_the_portfolio_one_currency_per_row(night, settings):
    from api.cli.main import main

    result = CliRunner().invoke(
        main,
        ["run", "--as-of", AS_OF.isoformat(), "--force", "--workers", "1"],
        env={"CREDO_DATABASE_URL": settings.database_url},
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "EUR (4 customers): open 58743.73, overdue 58743.73" in output
    assert "GBP (1 customer): open 1234.50, overdue 1234.50" in output
    assert "59978.23" not in result.output  # 58,743.73 + 1,234.50: a sum across currencies


@pytest.mark.parametrize(
    ("balance", "count"),
    [("5500.01", 3), ("100.00", 3), ("0.02", 3), ("49443.72", 6), ("1.00", 24), ("999.99", 7)],
)
def test_plan_instalments_always_add_up_to_the_balance_the_last_absorbing_the_rounding(
    balance, count
):
    from api.nightly.terms import plan_terms

    terms = plan_terms(Decimal(balance), AS_OF, count, 30)
    amounts = [i["amount"] for i in terms["instalments"]]
    assert sum(amounts) == Decimal(balance) and all(a > 0 for a in amounts)
    assert len(set(amounts[:-1])) <= 1 and amounts[-1] >= amounts[0]
    assert terms["count"] == min(count, int(Decimal(balance) * 100))
    assert plan_terms(Decimal(0), AS_OF, count, 30) is None
