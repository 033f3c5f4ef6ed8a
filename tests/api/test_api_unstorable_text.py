"""Strings the databases cannot store (a lone surrogate, a NUL character) in any request body
are refused with 422 naming the field, on SQLite and PostgreSQL; they used to be 500s, and
nothing sent with them is stored."""

from __future__ import annotations

import json

from api_support import CUSTOMER, complete_facts, invoice
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.text import text_problem

UNSTORABLE = {"lone surrogate": "ab\ud800", "NUL": "a\x00b"}
GOOD_CUSTOMER = {"id": "C1", **CUSTOMER}
PAYMENT = {
    "id": "P1",
    "customer_id": "C1",
    "date": "2024-04-15",
    "amount": "300.00",
    "allocations": [{"invoice_id": "I1", "amount": "300.00"}],
}
CONTACT = {"id": "K1", "customer_id": "C1", "date": "2024-04-05", "type": "call"}
HOLD = {"id": "H1", "customer_id": "C1", "reason": "CFO asked", "start": "2024-04-01"}
DISPUTE = {"id": "D1", "invoice_id": "I1", "opened": "2024-04-03"}


def _with(body: dict, path: str, value: str) -> dict:
    """A copy of `body` with `value` at the dotted `path` (list indexes as numbers)."""
    body = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return body


# (method, path, role, body, field path of the string to spoil)
CASES = [
    ("put", "/v1/customers/C1", "decide", CUSTOMER, "name"),
    ("put", "/v1/customers/C1", "decide", CUSTOMER, "segment"),
    ("put", "/v1/customers/C1", "decide", GOOD_CUSTOMER, "id"),
    ("post", "/v1/invoices", "decide", invoice("I9", "C1", "2024-03-01", "2024-03-31", "5"), "id"),
    ("post", "/v1/payments", "decide", PAYMENT, "allocations.0.invoice_id"),
    ("post", "/v1/payments", "decide", PAYMENT, "customer_id"),
    ("post", "/v1/disputes", "decide", {**DISPUTE, "reason": "qty"}, "reason"),
    ("post", "/v1/contacts", "decide", {**CONTACT, "note": "called"}, "note"),
    ("post", "/v1/contacts", "decide", {**CONTACT, "type": "reminder"}, "tone"),
    ("post", "/v1/holds", "decide", HOLD, "reason"),
    (
        "post",
        "/v1/ledger/batch",
        "decide",
        {"records": [{"type": "customer", "id": "C2", **CUSTOMER}, {"type": "hold", **HOLD}]},
        "records.1.reason",
    ),
    ("post", "/v1/decisions/credit", "decide", {"customer_id": "C1"}, "customer_id"),
    ("post", "/v1/decisions/credit", "decide", {"facts": complete_facts()}, "facts.segment"),
    (
        "post",
        "/v1/decisions/reminder",
        "decide",
        {"customer_id": "C1", "facts": {"last_reminder_tone": "none"}},
        "facts.last_reminder_tone",
    ),
    ("post", "/v1/runs", "admin", {"as_of": "2024-05-01"}, "as_of"),
]


def _send(client, method: str, path: str, body: dict, headers: dict):
    # json.dumps writes a lone surrogate as the escape "\ud800", as an ERP's JSON would.
    return getattr(client, method)(
        path, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
    )


def _stored_state() -> dict:
    from storage.models import Customer, Decision, Hold

    return {
        "customers": sorted(Customer.select().tuples()),
        "holds": list(Hold.select().tuples()),
        "decisions": Decision.select().count(),
    }


def test_every_body_string_refuses_a_lone_surrogate_and_nul_naming_the_field(
    client, auth, customer
):
    before = _stored_state()
    for method, path, role, body, field in CASES:
        for what, value in UNSTORABLE.items():
            response = _send(client, method, path, _with(body, field, value), auth(role))
            case = f"{method.upper()} {path} {field} with a {what}"
            assert response.status_code == 422, (case, response.get_data(as_text=True))
            assert response.mimetype == "application/problem+json", case
            assert list(response.json["errors"]) == [field], (case, response.json)
            message = response.json["errors"][field][0]
            assert what in message or "not a date" in message, (case, response.json)
    assert _stored_state() == before


def test_an_idempotent_decision_with_a_lone_surrogate_fact_is_422(client, auth):
    body = {"facts": complete_facts(segment="smb\ud800")}
    headers = {**auth("decide"), "Idempotency-Key": "order-77"}
    response = _send(client, "post", "/v1/decisions/credit", body, headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert list(response.json["errors"]) == ["facts.segment"]
    fixed = _send(client, "post", "/v1/decisions/credit", {"facts": complete_facts()}, headers)
    assert fixed.status_code == 201  # the refused request did not claim the key


def test_string_facts_are_at_most_200_characters(client, auth):
    for segment, status in (("x" * 201, 422), ("x" * 200, 201)):
        body = {"facts": complete_facts(segment=segment)}
        response = _send(client, "post", "/v1/decisions/credit", body, auth("decide"))
        assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["facts"]["segment"] == "x" * 200


# Any code point (surrogates and NUL included), often with a troublesome one in the middle.
_CHARS = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_ODD = st.sampled_from(["", "", "\x00", "\ud800", "\udfff", "\udc80", " ", "\U0001f600"])
ANY_TEXT = st.builds(lambda a, odd, b: a + odd + b, _CHARS, _ODD, _CHARS)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=ANY_TEXT, segment=ANY_TEXT)
def test_any_json_string_is_stored_and_read_back_equal_or_refused_with_422(
    client, auth, name, segment
):
    from storage.models import Customer

    body = {**CUSTOMER, "name": name, "segment": segment}
    response = _send(client, "put", "/v1/customers/C1", body, auth("decide"))
    storable = {
        "name": 1 <= len(name) <= 200 and text_problem(name) is None,
        "segment": len(segment) <= 64 and text_problem(segment) is None,
    }
    event(f"storable: {sorted(f for f, ok in storable.items() if ok)}")
    if all(storable.values()):
        assert response.status_code == 200, response.get_data(as_text=True)
        stored = Customer.get_by_id("C1")
        assert (stored.name, stored.segment) == (name, segment)
    else:
        assert response.status_code == 422, response.get_data(as_text=True)
        assert set(response.json["errors"]) == {f for f, ok in storable.items() if not ok}


def test_a_batch_record_whose_type_is_not_a_string_is_422(client, auth):
    records = [{"type": ["customer"], "id": "C1"}, {"type": {"customer": 1}, "id": "C2"}]
    response = _send(client, "post", "/v1/ledger/batch", {"records": records}, auth("decide"))
    assert response.status_code == 422, response.get_data(as_text=True)
    assert list(response.json["errors"]) == ["records.0.type", "records.1.type"]
