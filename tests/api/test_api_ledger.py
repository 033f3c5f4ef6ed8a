"""Ledger endpoints, the batch, customer facts and the rule-set read endpoints."""

from __future__ import annotations

import pytest
from api_support import CUSTOMER, invoice

RECORDS = {
    "invoices": invoice("I9", "C1", "2024-03-01", "2024-03-31", "500.00"),
    "payments": {
        "id": "P1",
        "customer_id": "C1",
        "date": "2024-04-15",
        "amount": "300.00",
        "allocations": [{"invoice_id": "I9", "amount": "300.00"}],
    },
    "credit-notes": {
        "id": "CN1",
        "customer_id": "C1",
        "invoice_id": "I9",
        "date": "2024-04-02",
        "amount": 50,
    },
    "disputes": {"id": "D1", "invoice_id": "I9", "opened": "2024-04-03", "reason": "qty"},
    "promises": {
        "id": "PR1",
        "customer_id": "C1",
        "made_on": "2024-04-20",
        "date": "2024-05-15",
        "amount": "100.00",
    },
    "payment-plans": {
        "id": "PL1",
        "customer_id": "C1",
        "status": "active",
        "installments": [{"due_date": "2024-05-31", "amount": "50.00"}],
    },
    "contacts": {
        "id": "K1",
        "customer_id": "C1",
        "date": "2024-04-05",
        "type": "reminder",
        "tone": "friendly",
    },
    "holds": {"id": "H1", "customer_id": "C1", "reason": "CFO asked", "start": "2024-04-01"},
}


def put_customer(client, auth, customer_id="C1", **changes):
    body = {**CUSTOMER, **changes}
    return client.put(f"/v1/customers/{customer_id}", json=body, headers=auth("decide"))


def test_every_record_type_is_upserted_by_id(client, auth):
    assert put_customer(client, auth).json == {"inserted": 1, "updated": 0, "unchanged": 0}
    for path, record in RECORDS.items():
        response = client.post(f"/v1/{path}", json=record, headers=auth("decide"))
        assert response.status_code == 200, (path, response.json)
        assert response.json == {"inserted": 1, "updated": 0, "unchanged": 0}, path
        again = client.post(f"/v1/{path}", json=record, headers=auth("decide"))
        assert again.json == {"inserted": 0, "updated": 0, "unchanged": 1}, path
    changed = {**RECORDS["invoices"], "amount": "550.00"}
    response = client.post("/v1/invoices", json=changed, headers=auth("decide"))
    assert response.json == {"inserted": 0, "updated": 1, "unchanged": 0}

    facts = client.get("/v1/customers/C1/facts?as_of=2024-04-21", headers=auth("decide")).json
    assert facts["as_of"] == "2024-04-21"
    f = facts["facts"]
    assert f["open_balance"] == "200.00"  # 550 - 300 paid - 50 credited
    assert f["has_open_dispute"] is True and f["on_hold"] is True
    assert f["has_active_promise"] is True and f["on_payment_plan"] is True
    assert f["last_reminder_tone"] == "friendly"


def test_put_customer_takes_the_id_from_the_path(client, auth):
    assert put_customer(client, auth, "C7").status_code == 200
    response = put_customer(client, auth, "C7", id="C8")
    assert response.status_code == 422
    assert response.json["errors"] == {"id": ["must equal the path's id 'C7'"]}
    response = put_customer(client, auth, "C7", credit_limit="-3")
    assert response.status_code == 422 and "credit_limit" in response.json["errors"]
    response = put_customer(client, auth, " C7")
    assert response.status_code == 422 and "id" in response.json["errors"]


def test_a_record_naming_an_unknown_customer_is_422(client, auth):
    response = client.post("/v1/invoices", json=RECORDS["invoices"], headers=auth("decide"))
    assert response.status_code == 422
    assert "customer_id" in response.json["errors"]


def test_batch_takes_many_types_at_once(client, auth):
    records = [{"type": "customer", "id": "C1", **CUSTOMER}]
    records += [{"type": "invoice", **RECORDS["invoices"]}, RECORDS["contacts"]]
    records.append({"type": "payment", **RECORDS["payments"]})
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 200, response.json
    assert response.json == {"inserted": 4, "updated": 0, "unchanged": 0}


def test_batch_is_all_or_nothing_and_names_each_problem(client, auth):
    records = [
        {"type": "customer", "id": "C1", **CUSTOMER},
        {"type": "invoice", **RECORDS["invoices"], "amount": "-1"},
        {"type": "gadget", "id": "G1"},
        "not an object",
    ]
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 422
    errors = response.json["errors"]
    assert "records.1.amount" in errors
    assert "unknown record type 'gadget'" in errors["records.2.type"][0]
    assert errors["records.3._record"] == ["must be a JSON object"]
    facts = client.get("/v1/customers/C1/facts", headers=auth("decide"))
    assert facts.status_code == 404  # the valid customer was not written either


def test_batch_rolls_back_when_storage_refuses_a_record(client, auth):
    records = [
        {"type": "customer", "id": "C1", **CUSTOMER},
        {"type": "invoice", **invoice("I1", "C404", "2024-01-01", "2024-01-31", "5.00")},
    ]
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 422
    assert "records.1.customer_id" in response.json["errors"]
    assert client.get("/v1/customers/C1/facts", headers=auth("decide")).status_code == 404


def test_batch_body_is_validated(client, auth):
    for body, field in (({}, "records"), ({"records": {}}, "records"), ({"rows": []}, "rows")):
        response = client.post("/v1/ledger/batch", json=body, headers=auth("decide"))
        assert response.status_code == 422 and field in response.json["errors"], body


def test_facts_of_an_unknown_customer_or_bad_date(client, auth, customer):
    response = client.get("/v1/customers/NOPE/facts", headers=auth("auditor"))
    assert response.status_code == 404 and response.json["detail"] == "unknown customer 'NOPE'"
    response = client.get(
        f"/v1/customers/{customer}/facts?as_of=2024-02-30", headers=auth("analyst")
    )
    assert response.status_code == 422 and "as_of" in response.json["errors"]
    response = client.get(f"/v1/customers/{customer}/facts?asof=2024-02-03", headers=auth("decide"))
    assert response.status_code == 422 and "asof" in response.json["errors"]


@pytest.mark.parametrize("role", ["analyst", "auditor"])
def test_rulesets_list_and_detail(client, auth, role):
    listed = client.get("/v1/rulesets", headers=auth(role)).json["items"]
    assert [r["kind"] for r in listed] == ["credit", "handoff", "reminder"]
    assert all(r["active"]["version"] == 1 and r["versions"] == 1 for r in listed)
    assert "source" not in listed[0]["active"]

    detail = client.get("/v1/rulesets/credit", headers=auth(role)).json
    assert detail["active"]["state"] == "active"
    assert 'kind = "credit"' in detail["active"]["source"]
    assert [v["version"] for v in detail["history"]] == [1]

    missing = client.get("/v1/rulesets/credits", headers=auth(role))
    assert missing.status_code == 404
    assert "known kinds: credit, handoff, reminder" in missing.json["detail"]


@pytest.mark.parametrize("customer_id", ["ACME/DE-1", '=HYPERLINK("http://x")', "a/b/c"])
def test_a_customer_id_with_a_slash_is_read_and_written_by_its_path(client, auth, customer_id):
    """ERP ids such as ACME/DE-1 are valid ids: the path takes them whole."""
    assert put_customer(client, auth, customer_id).json["inserted"] == 1
    invoice = {**RECORDS["invoices"], "customer_id": customer_id}
    assert client.post("/v1/invoices", json=invoice, headers=auth("decide")).status_code == 200
    facts = client.get(
        f"/v1/customers/{customer_id}/facts?as_of=2024-04-21", headers=auth("decide")
    )
    assert facts.status_code == 200, facts.json
    assert facts.json["customer_id"] == customer_id
    assert facts.json["facts"]["open_balance"] == "500.00"
