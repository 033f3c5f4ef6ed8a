"""POST /v1/decisions/{kind}, GET one, list with filters and cursors, export (Flask test client)."""

from __future__ import annotations

import csv
import io
import json

from api_support import complete_facts


def decide(client, auth, kind="credit", body=None, headers=None):
    return client.post(
        f"/v1/decisions/{kind}",
        json=body if body is not None else {"facts": complete_facts()},
        headers={**auth("decide"), **(headers or {})},
    )


def test_facts_given_directly_are_decided_stored_and_returned(client, auth):
    response = decide(client, auth, body={"facts": complete_facts(), "as_of": "2024-05-01"})
    assert response.status_code == 201, response.json
    decision = response.json
    assert decision["kind"] == "credit"
    assert decision["customer_id"] is None
    assert decision["as_of"] == "2024-05-01"
    assert decision["outcome"]["decision"] in ("approve", "refer", "decline")
    assert decision["fired"] and all("id" in rule for rule in decision["fired"])
    assert decision["ruleset"]["kind"] == "credit" and decision["ruleset"]["version"] == 1
    assert decision["requested_by"] == "erp-decide"
    assert (decision["via"], decision["format"], decision["earlier"]) == ("api", 5, [])
    assert decision["explanation"].endswith(").") and "(rule" in decision["explanation"]
    assert decision["facts"]["requested_amount"] == "500.00"
    assert decision["facts"]["new_exposure"] == "1500.00"  # open_balance + requested_amount
    assert len(decision["hash"]) == 64 and decision["prev_hash"] == "0" * 64
    assert response.headers["Location"] == f"/v1/decisions/{decision['decision_id']}"

    stored = client.get(response.headers["Location"], headers=auth("auditor"))
    assert stored.status_code == 200
    # Beside the stored decision, what is computed as it is read (a referred credit decision)
    read_now = {k: v for k, v in stored.json.items() if k not in ("what_would_change",)}
    assert read_now == decision


def test_money_in_responses_is_text_with_two_decimals(client, auth):
    decision = decide(client, auth, body={"facts": complete_facts(open_balance=1000)}).json
    assert decision["facts"]["open_balance"] == "1000.00"
    assert decision["facts"]["credit_limit"] == "10000.00"


def test_customer_facts_come_from_the_ledger_and_given_facts_override(client, auth, customer):
    body = {"customer_id": customer, "as_of": "2024-05-01", "facts": {"requested_amount": 250}}
    decision = decide(client, auth, body=body).json
    facts = decision["facts"]
    assert decision["customer_id"] == "C1"
    assert facts["open_balance"] == "2000.50"
    assert facts["days_past_due"] == 60
    assert facts["requested_amount"] == "250.00"
    assert facts["new_exposure"] == "2250.50"
    assert facts["credit_score"] == 640

    body["facts"] = {"credit_score": None, "days_past_due": 3, "open_balance": "100.00"}
    facts = decide(client, auth, body=body).json["facts"]
    assert "credit_score" not in facts  # null makes an optional fact absent
    assert facts["days_past_due"] == 3
    assert facts["new_exposure"] == "100.00"  # follows the overridden balance

    body["facts"] = {"credit_score": None, "customer_id": "C2"}
    response = decide(client, auth, body=body)
    assert response.status_code == 422
    assert "facts.customer_id" in response.json["errors"]
    body["facts"] = {"credit_score": None, "days_past_due": None}
    response = decide(client, auth, body=body)
    assert response.status_code == 422
    assert "never absent" in response.json["errors"]["facts.days_past_due"][0]


def test_incomplete_facts_without_customer_list_every_missing_fact(client, auth):
    facts = complete_facts()
    del facts["open_balance"], facts["in_agency"]
    response = decide(client, auth, body={"facts": facts})
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    errors = response.json["errors"]
    assert set(errors) == {"facts.open_balance", "facts.in_agency"}
    assert "missing" in errors["facts.open_balance"][0]


def test_bad_fact_values_are_named(client, auth):
    facts = complete_facts(open_balance=-5, days_past_due="ten", has_open_dispute=1, days_pas=3)
    response = decide(client, auth, body={"facts": facts})
    assert response.status_code == 422
    errors = response.json["errors"]
    assert "negative" in errors["facts.open_balance"][0]
    assert "facts.days_past_due" in errors
    assert "facts.has_open_dispute" in errors
    assert "did you mean 'days_past_due'" in errors["facts.days_pas"][0]


def test_unknown_kind_and_customer_are_404(client, auth, customer):
    response = decide(client, auth, kind="creditt")
    assert response.status_code == 404
    assert "unknown decision kind 'creditt'" in response.json["detail"]
    assert "credit" in response.json["detail"]  # the known kinds are listed
    response = decide(client, auth, body={"customer_id": "NOPE"})
    assert response.status_code == 404
    assert response.json["detail"] == "unknown customer 'NOPE'"


def test_body_needs_customer_or_facts(client, auth):
    response = decide(client, auth, body={})
    assert response.status_code == 422
    assert response.json["errors"] == {"_schema": ["give customer_id, facts or both"]}
    response = decide(client, auth, body={"as_of": "2024-02-30", "facts": {}})
    assert response.status_code == 422
    assert "as_of" in response.json["errors"]


def test_idempotency_key_returns_the_first_decision_and_refuses_another_body(client, auth):
    key = {"Idempotency-Key": "order-77"}
    first = decide(client, auth, headers=key)
    assert first.status_code == 201
    again = decide(client, auth, headers=key)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json

    other = decide(client, auth, body={"facts": complete_facts(requested_amount=9)}, headers=key)
    assert other.status_code == 409
    assert "Idempotency-Key 'order-77'" in other.json["detail"]
    assert other.json["type"] == "urn:credo:problem:idempotency-conflict"

    listed = client.get("/v1/decisions", headers=auth("auditor")).json["items"]
    assert len(listed) == 1  # neither the replay nor the conflict stored a decision

    # The same key from another API key is another request.
    admin = client.post(
        "/v1/decisions/credit",
        json={"facts": complete_facts()},
        headers={**auth("admin"), **key},
    )
    assert admin.status_code == 201 and admin.json["decision_id"] != first.json["decision_id"]


def test_bad_idempotency_key_is_422(client, auth):
    response = decide(client, auth, headers={"Idempotency-Key": "has space"})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json["errors"]


def _decide_many(client, auth, customer):
    ids = []
    for amount in ("100", "900000", "200"):
        body = {"customer_id": customer, "facts": {"requested_amount": amount}}
        ids.append(decide(client, auth, body=body).json["decision_id"])
    body = {"facts": complete_facts(), "as_of": "2024-05-01"}
    ids.append(decide(client, auth, kind="reminder", body=body).json["decision_id"])
    return ids


def test_list_filters_and_cursor_pagination(client, auth, customer):
    ids = _decide_many(client, auth, customer)
    headers = auth("auditor")
    page = client.get("/v1/decisions?limit=2", headers=headers).json
    assert [d["decision_id"] for d in page["items"]] == ids[:2]
    page2 = client.get(f"/v1/decisions?limit=2&cursor={page['next_cursor']}", headers=headers)
    assert [d["decision_id"] for d in page2.json["items"]] == ids[2:]
    assert page2.json["next_cursor"] is None

    newest = client.get("/v1/decisions?order=desc&limit=1", headers=headers).json
    assert newest["items"][0]["decision_id"] == ids[-1]

    by_customer = client.get(f"/v1/decisions?customer_id={customer}", headers=headers).json
    assert len(by_customer["items"]) == 3
    by_kind = client.get("/v1/decisions?kind=reminder", headers=headers).json
    assert [d["decision_id"] for d in by_kind["items"]] == [ids[3]]

    decision = client.get(f"/v1/decisions/{ids[1]}", headers=headers).json
    outcome = decision["outcome"]["decision"]
    query = f"/v1/decisions?kind=credit&outcome=decision={outcome}"
    matching = client.get(query, headers=headers).json["items"]
    assert ids[1] in [d["decision_id"] for d in matching]
    assert all(d["outcome"]["decision"] == outcome for d in matching)

    rule = decision["fired"][0]["id"]
    by_rule = client.get(f"/v1/decisions?rule={rule}", headers=headers).json["items"]
    assert ids[1] in [d["decision_id"] for d in by_rule]

    created = decision["created_at"][:10]
    assert len(client.get(f"/v1/decisions?from={created}", headers=headers).json["items"]) == 4
    assert client.get(f"/v1/decisions?to={created}", headers=headers).json["items"] != []
    assert client.get("/v1/decisions?to=2000-01-01", headers=headers).json["items"] == []


def test_list_arguments_are_validated(client, auth):
    headers = auth("auditor")
    for query, field in (
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("cursor=abc", "cursor"),
        ("from=2024-13-01", "from"),
        ("outcome=nonsense", "outcome.0"),
        ("custmer_id=C1", "custmer_id"),
    ):
        response = client.get(f"/v1/decisions?{query}", headers=headers)
        assert response.status_code == 422, query
        assert field in response.json["errors"], (query, response.json)


def test_export_streams_jsonl_and_csv(client, auth, customer):
    ids = _decide_many(client, auth, customer)
    headers = auth("auditor")
    response = client.get("/v1/decisions/export?kind=credit", headers=headers)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [d["decision_id"] for d in lines] == ids[:3]
    assert lines[0] == client.get(f"/v1/decisions/{ids[0]}", headers=headers).json

    response = client.get("/v1/decisions/export?format=csv", headers=headers)
    assert response.mimetype == "text/csv"
    assert 'filename="decisions.csv"' in response.headers["Content-Disposition"]
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    rows = list(reader)
    assert (
        reader.fieldnames
        == (
            "seq decision_id kind customer_id as_of created_at requested_by ruleset_kind "
            "ruleset_version ruleset_sha256 outcome reasons fired_rules fired facts engine_us "
            "format via explanation earlier arm experiment_id prev_hash hash"
        ).split()
    )  # as docs/erp.md lists them
    assert [r["decision_id"] for r in rows] == ids
    assert (rows[0]["format"], rows[0]["via"], rows[0]["earlier"]) == ("5", "api", "[]")
    assert rows[0]["explanation"] == lines[0]["explanation"]
    assert json.loads(rows[0]["facts"])["customer_id"] == customer
    assert rows[3]["customer_id"] == ""

    bad = client.get("/v1/decisions/export?format=xml", headers=headers)
    assert bad.status_code == 422 and "format" in bad.json["errors"]


def test_stored_decisions_form_a_hash_chain(client, auth, customer):
    _decide_many(client, auth, customer)
    items = client.get("/v1/decisions", headers=auth("auditor")).json["items"]
    for earlier, later in zip(items, items[1:], strict=False):
        assert later["prev_hash"] == earlier["hash"]


def test_unknown_decision_id_is_404(client, auth):
    response = client.get("/v1/decisions/nope", headers=auth("auditor"))
    assert response.status_code == 404
    assert response.json["detail"] == "no decision 'nope'"
    assert client.get("/v1/decisions/" + "x" * 300, headers=auth("auditor")).status_code == 404
