"""The ledger record schemas: strict about fields, dates, money and enumerations."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.intake.schemas import LedgerRecordError, validate_record
from storage.models import MAX_MONEY

CUSTOMER = {
    "type": "customer",
    "id": "C1",
    "name": "Acme",
    "currency": "EUR",
    "credit_limit": "5000",
    "since": "2020-02-29",
}
INVOICE = {
    "id": "I1",
    "customer_id": "C1",
    "issue_date": "2024-01-31",
    "due_date": "2024-03-01",
    "amount": 1250.5,
}


def test_valid_records_load_as_decimal_and_date():
    customer = validate_record(CUSTOMER)
    assert customer == {
        "type": "customer",
        "id": "C1",
        "name": "Acme",
        "segment": "",
        "country": "",
        "currency": "EUR",
        "credit_limit": Decimal("5000.00"),
        "credit_score": None,
        "since": date(2020, 2, 29),
        # no contact person: its columns are empty (docs/import.md)
        "contact_name": "",
        "contact_email": "",
        "contact_language": "",
        "contact_salutation": "",
    }
    invoice = validate_record(INVOICE, "invoice")
    assert invoice["amount"] == Decimal("1250.50") and invoice["type"] == "invoice"
    contact = validate_record(
        {"type": "reminder", "id": "K1", "customer_id": "C1", "date": "2024-03-05", "tone": "firm"}
    )
    assert (contact["type"], contact["tone"], contact["note"]) == ("reminder", "firm", "")
    plan = validate_record(
        {
            "type": "payment_plan",
            "id": "P",
            "customer_id": "C1",
            "status": "active",
            "installments": [{"due_date": "2024-04-30", "amount": "10.10"}],
        }
    )
    assert plan["installments"] == [{"due_date": date(2024, 4, 30), "amount": Decimal("10.10")}]


def _errors(data: dict, record_type: str | None = None) -> dict[str, list[str]]:
    with pytest.raises(LedgerRecordError) as caught:
        validate_record(data, record_type)
    return caught.value.errors


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"colour": "red"}, "colour", "Unknown field"),
        ({"since": "2023-02-29"}, "since", "not a date that exists"),
        ({"since": "2023-2-3"}, "since", "YYYY-MM-DD"),
        ({"since": "1850-01-01"}, "since", "between"),
        ({"credit_limit": "10.005"}, "credit_limit", "two decimals"),
        ({"credit_limit": 0.1 + 0.2}, "credit_limit", "two decimals"),
        ({"credit_limit": "-1"}, "credit_limit", "negative"),
        ({"credit_limit": float("nan")}, "credit_limit", "finite"),
        ({"credit_limit": float("inf")}, "credit_limit", "finite"),
        ({"credit_limit": "1e5"}, "credit_limit", "not an amount"),
        ({"credit_limit": True}, "credit_limit", "number or a string"),
        ({"credit_limit": "1000000000000"}, "credit_limit", "at most"),
        ({"currency": "eur"}, "currency", "ISO 4217"),
        ({"currency": "XYZ"}, "currency", "ISO 4217"),
        ({"country": "de"}, "country", "ISO 3166"),
        ({"country": "DE\n"}, "country", "ISO 3166"),
        ({"credit_score": 1001}, "credit_score", "less than or equal"),
        ({"credit_score": 700.5}, "credit_score", "whole number"),
        ({"id": " C1"}, "id", "space"),
        ({"id": "x" * 65}, "id", "Length"),
        ({"name": ""}, "name", "Length"),
    ],
)
def test_bad_customer_fields_are_named_with_the_reason(change, field, fragment):
    errors = _errors({**CUSTOMER, **change})
    assert list(errors) == [field]
    assert fragment.lower() in " ".join(errors[field]).lower()


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        (
            {**INVOICE, "type": "invoice", "due_date": "2024-01-30"},
            "due_date",
            "not be before issue_date",
        ),
        ({**INVOICE, "type": "invoice", "amount": None}, "amount", "null"),
        (
            {"type": "invoice", **{k: v for k, v in INVOICE.items() if k != "amount"}},
            "amount",
            "Missing",
        ),
        (
            {
                "type": "payment",
                "id": "P",
                "customer_id": "C1",
                "date": "2024-01-01",
                "amount": "10",
                "allocations": [{"invoice_id": "I1", "amount": "11"}],
            },
            "allocations",
            "more than the amount",
        ),
        (
            {
                "type": "payment",
                "id": "P",
                "customer_id": "C1",
                "date": "2024-01-01",
                "amount": "10",
                "allocations": [{"invoice_id": "I1", "amount": "1"}] * 2,
            },
            "allocations",
            "twice",
        ),
        (
            {
                "type": "payment",
                "id": "P",
                "customer_id": "C1",
                "date": "2024-01-01",
                "amount": "10",
                "allocations": [{"invoice_id": "I1", "amount": "1.001"}],
            },
            "allocations.0.amount",
            "two decimals",
        ),
        (
            {"type": "reminder", "id": "K", "customer_id": "C1", "date": "2024-01-01"},
            "tone",
            "needs its tone",
        ),
        (
            {"type": "contact", "id": "K", "customer_id": "C1", "date": "2024-01-01"},
            "type",
            "contact type",
        ),
        (
            {
                "type": "payment_plan",
                "id": "P",
                "customer_id": "C1",
                "status": "paused",
                "installments": [],
            },
            "status",
            "one of",
        ),
        (
            {
                "type": "dispute",
                "id": "D",
                "invoice_id": "I1",
                "opened": "2024-02-01",
                "resolved": "2024-01-31",
            },
            "resolved",
            "not be before opened",
        ),
        ({"type": "invoices", **INVOICE}, "type", "unknown record type"),
        ({**INVOICE}, "type", "missing record type"),
        (["not", "an", "object"], "_record", "JSON object"),
    ],
)
def test_bad_records_are_named_with_the_reason(data, field, fragment):
    errors = _errors(data)
    assert field in errors
    assert fragment.lower() in " ".join(errors[field]).lower()


def test_type_must_agree_with_the_expected_type():
    assert "expected a payment record" in _errors(CUSTOMER, "payment")["type"][0]
    assert validate_record({**CUSTOMER}, "customer")["id"] == "C1"


@given(st.decimals(min_value=0, max_value=MAX_MONEY, places=2, allow_nan=False))
def test_every_two_decimal_amount_round_trips_exactly(amount):
    for given_as in (str(amount), f"{amount:.2f}"):
        loaded = validate_record({**INVOICE, "amount": given_as}, "invoice")
        assert loaded["amount"] == amount
        assert str(loaded["amount"]) == f"{amount:.2f}"
