"""The worklist stays true between runs: ledger records void or acknowledge pending actions,
through the HTTP ledger endpoints and through `credo import`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest

from api.settings import RunSettings

AS_OF = date(2024, 6, 3)


def day(offset: int) -> str:
    return (AS_OF + timedelta(days=offset)).isoformat()


def customer(customer_id: str) -> dict:
    return {
        "type": "customer",
        "id": customer_id,
        "name": f"{customer_id} GmbH",
        "country": "DE",
        "currency": "EUR",
        "credit_limit": "10000.00",
        "since": "2019-01-15",
    }


def invoice(invoice_id: str, customer_id: str, due_offset: int, amount: str) -> dict:
    return {
        "type": "invoice",
        "id": invoice_id,
        "customer_id": customer_id,
        "issue_date": day(due_offset - 30),
        "due_date": day(due_offset),
        "amount": amount,
    }


def run_night(settings) -> str:
    """The nightly run of AS_OF, in this process; its id."""
    from api.nightly.run import execute_run, prepare_run

    settings = replace(settings, run=RunSettings(batch_size=10, workers=1))
    run, _ = prepare_run(settings, AS_OF, True, "test")
    assert execute_run(settings, run.run_id)["state"] == "finished"
    return run.run_id


def actions_of(customer_id: str) -> dict[str, tuple[str, str]]:
    """{type: (state, state_reason)} of the customer's latest actions."""
    from storage.runs import Action

    query = Action.select().where(Action.customer_id == customer_id).order_by(Action.id)
    return {a.type: (a.state, a.state_reason) for a in query}


@pytest.fixture
def late_payer(client, auth, settings) -> str:
    """W1 owes one invoice 20 days past due on AS_OF, never reminded: the run asks for a
    friendly reminder (the first step)."""
    records = [customer("W1"), invoice("W1-1", "W1", -20, "1200.00")]
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 200, response.json
    run_night(settings)
    assert actions_of("W1") == {"reminder": ("pending", "")}
    return "W1"


def post(client, auth, path: str, body: dict) -> None:
    response = client.post(path, json=body, headers=auth("decide"))
    assert response.status_code == 200, response.json


def test_a_payment_covering_the_overdue_amount_voids_the_reminder(client, auth, late_payer):
    payment = {"id": "P1", "customer_id": late_payer, "date": day(0), "amount": "200.00"}
    post(client, auth, "/v1/payments", payment)
    assert actions_of(late_payer)["reminder"][0] == "pending"  # 1000 still overdue
    post(client, auth, "/v1/payments", {**payment, "id": "P2", "amount": "1000.00"})
    assert actions_of(late_payer) == {"reminder": ("void", "the customer has paid")}


def test_a_dispute_voids_the_reminder_that_names_its_invoice(client, auth, late_payer):
    post(client, auth, "/v1/disputes", {"id": "D1", "invoice_id": "W1-1", "opened": day(1)})
    assert actions_of(late_payer) == {"reminder": ("void", "an invoice it names is now disputed")}


def test_a_dispute_on_another_invoice_leaves_the_reminder_standing(client, auth, late_payer):
    """The reminder chases W1-1; a dispute on a later invoice does not change what it says."""
    post(client, auth, "/v1/ledger/batch", {"records": [invoice("W1-2", late_payer, -5, "150.00")]})
    post(client, auth, "/v1/disputes", {"id": "D2", "invoice_id": "W1-2", "opened": day(1)})
    assert actions_of(late_payer) == {"reminder": ("pending", "")}


def test_a_hold_voids_the_reminder(client, auth, late_payer):
    hold = {"id": "H1", "customer_id": late_payer, "reason": "CFO", "start": day(0)}
    post(client, auth, "/v1/holds", hold)
    assert actions_of(late_payer)["reminder"][0] == "void"


def test_a_reminder_contact_acknowledges_the_reminder(client, auth, late_payer):
    contact = {"id": "K1", "customer_id": late_payer, "type": "reminder", "date": day(0)}
    post(client, auth, "/v1/contacts", {**contact, "tone": "firm"})  # not what was asked
    post(client, auth, "/v1/contacts", {**contact, "id": "K0", "date": day(-1), "tone": "friendly"})
    assert actions_of(late_payer)["reminder"][0] == "pending"  # another tone; before the run
    post(client, auth, "/v1/contacts", {**contact, "id": "K2", "tone": "friendly"})
    assert actions_of(late_payer) == {
        "reminder": ("acknowledged", f"reminder contact K2 of {day(0)}")
    }
    # the same contact again changes nothing, and a payment no longer voids it
    post(client, auth, "/v1/contacts", {**contact, "id": "K2", "tone": "friendly"})
    payment = {"id": "P9", "customer_id": late_payer, "date": day(1), "amount": "1200.00"}
    post(client, auth, "/v1/payments", payment)
    assert actions_of(late_payer)["reminder"][0] == "acknowledged"


def test_an_agency_placement_acknowledges_the_hand_off(client, auth, settings):
    """Long overdue after a final notice: a hand-off is asked for, and no reminder the same
    night (the reminder rule set decides after the hand-off); the ERP places the account with
    the agency, which acknowledges the hand-off."""
    final_notice = {
        "type": "reminder",
        "id": "K-final",
        "customer_id": "H1",
        "date": day(-20),
        "tone": "final",
    }
    records = [customer("H1"), invoice("H1-1", "H1", -120, "500.00"), final_notice]
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 200, response.json
    run_night(settings)
    before = actions_of("H1")
    assert before["handoff"] == ("pending", "") and "reminder" not in before
    placement = {"id": "K-agency", "customer_id": "H1", "type": "agency_placement", "date": day(1)}
    post(client, auth, "/v1/contacts", placement)
    assert actions_of("H1") == {
        **before,  # a credit review, if one fell due, stays asked for
        "handoff": ("acknowledged", f"agency_placement contact K-agency of {day(1)}"),
    }


def test_a_batch_of_records_refreshes_every_customer_it_touches(client, auth, settings):
    records = [customer(c) for c in ("B1", "B2")]
    records += [invoice(f"{c}-1", c, -20, "300.00") for c in ("B1", "B2")]
    client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    run_night(settings)
    paid = [
        {"type": "payment", "id": f"P-{c}", "customer_id": c, "date": day(0), "amount": "300.00"}
        for c in ("B1", "B2")
    ]
    post(client, auth, "/v1/ledger/batch", {"records": paid})
    assert actions_of("B1")["reminder"][0] == actions_of("B2")["reminder"][0] == "void"


def test_credo_import_voids_and_acknowledges(client, auth, late_payer, settings, tmp_path):
    from api.intake.importer import import_file

    records = [customer("W2"), invoice("W2-1", "W2", -20, "900.00")]
    client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    run_night(settings)  # a second run: W1's reminder is asked for again, W2's for the first time
    path = tmp_path / "erp.jsonl"
    lines = [
        {"type": "payment", "id": "P1", "customer_id": "W1", "date": day(1), "amount": "1200"},
        {"type": "reminder", "id": "K1", "customer_id": "W2", "date": day(1), "tone": "friendly"},
        {"type": "payment", "id": "P2", "customer_id": "nobody", "date": day(1), "amount": "1"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = import_file(path, today=AS_OF + timedelta(days=1))
    assert [r.line for r in report.rejected] == [3]
    assert actions_of("W1") == {"reminder": ("void", "the customer has paid")}
    assert actions_of("W2")["reminder"] == ("acknowledged", f"reminder contact K1 of {day(1)}")


def test_actions_of_customers_without_news_are_left_alone(client, auth, late_payer):
    from api.nightly.worklist import refresh_worklist

    update = refresh_worklist([customer("elsewhere")], AS_OF)
    assert (update.acknowledged, update.voided) == (0, 0)
    assert actions_of(late_payer)["reminder"][0] == "pending"
