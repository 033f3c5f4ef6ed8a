"""Fixtures of the storage tests: a small hand-made ledger, as validated records."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest


@pytest.fixture
def records() -> list[dict]:
    return sample_records()


def sample_records() -> list[dict]:
    """Two customers with invoices, payments (allocated and not), a credit note, a dispute, a
    promise, a plan, contacts and a hold."""
    return [
        {
            "type": "customer",
            "id": "C1",
            "name": "Acme GmbH",
            "segment": "mid_market",
            "country": "DE",
            "currency": "EUR",
            "credit_limit": D("20000.00"),
            "credit_score": 640,
            "since": date(2020, 2, 29),
        },
        {
            "type": "customer",
            "id": "C2",
            "name": "Bolt Ltd",
            "currency": "GBP",
            "credit_limit": D("0"),
            "since": date(2023, 1, 31),
        },
        _invoice("I1", "C1", date(2024, 1, 31), "1200.50"),
        _invoice("I2", "C1", date(2024, 2, 29), "800.00"),
        _invoice("I3", "C1", date(2024, 3, 31), "99.99"),
        _invoice("I4", "C2", date(2024, 3, 1), "10.10"),
        {
            "type": "payment",
            "id": "P1",
            "customer_id": "C1",
            "date": date(2024, 3, 15),
            "amount": D("700.25"),
            "allocations": [
                {"invoice_id": "I1", "amount": D("600.25")},
                {"invoice_id": "I2", "amount": D("100.00")},
            ],
        },
        {
            "type": "payment",
            "id": "P2",
            "customer_id": "C1",
            "date": date(2024, 4, 2),
            "amount": D("300.00"),
        },
        {
            "type": "credit_note",
            "id": "CN1",
            "customer_id": "C1",
            "invoice_id": "I2",
            "date": date(2024, 3, 5),
            "amount": D("50.00"),
        },
        {
            "type": "dispute",
            "id": "D1",
            "invoice_id": "I3",
            "opened": date(2024, 4, 3),
            "reason": "wrong quantity",
        },
        {
            "type": "promise",
            "id": "PR1",
            "customer_id": "C1",
            "made_on": date(2024, 4, 10),
            "date": date(2024, 4, 30),
            "amount": D("400.00"),
        },
        {
            "type": "payment_plan",
            "id": "PL1",
            "customer_id": "C2",
            "status": "active",
            "installments": [
                {"due_date": date(2024, 4, 30), "amount": D("5.05")},
                {"due_date": date(2024, 5, 31), "amount": D("5.05")},
            ],
        },
        {
            "type": "reminder",
            "id": "K1",
            "customer_id": "C1",
            "date": date(2024, 3, 10),
            "tone": "friendly",
            "note": "",
        },
        {"type": "agency_placement", "id": "K2", "customer_id": "C2", "date": date(2024, 4, 1)},
        {
            "type": "hold",
            "id": "H1",
            "customer_id": "C1",
            "reason": "CFO asked",
            "start": date(2024, 4, 1),
            "end": date(2024, 4, 20),
        },
    ]


def _invoice(invoice_id: str, customer_id: str, issued: date, amount: str) -> dict:
    due = date.fromordinal(issued.toordinal() + 30)
    return {
        "type": "invoice",
        "id": invoice_id,
        "customer_id": customer_id,
        "issue_date": issued,
        "due_date": due,
        "amount": D(amount),
    }


def ledger_of(records: list[dict], customer_id: str):
    """The engine Ledger the records describe for one customer, built without a database."""
    from engine import ledger as e

    def of(kind: str) -> list[dict]:
        return [r for r in records if r["type"] == kind and r.get("customer_id") == customer_id]

    (customer,) = [r for r in records if r["type"] == "customer" and r["id"] == customer_id]
    invoices = of("invoice")
    invoice_ids = {i["id"] for i in invoices}
    contact_types = set(e.CONTACT_TYPES)
    return e.Ledger(
        customer=e.Customer(
            customer["id"],
            customer["name"],
            customer["currency"],
            customer["credit_limit"],
            customer["since"],
            customer.get("segment", ""),
            customer.get("country", ""),
            customer.get("credit_score"),
        ),
        invoices=tuple(e.Invoice(**_fields(r)) for r in invoices),
        payments=tuple(
            e.Payment(
                **_fields(r, "allocations"),
                allocations=tuple(e.Allocation(**a) for a in r.get("allocations", ())),
            )
            for r in of("payment")
        ),
        credit_notes=tuple(e.CreditNote(**_fields(r)) for r in of("credit_note")),
        disputes=tuple(
            e.Dispute(**_fields(r))
            for r in records
            if r["type"] == "dispute" and r["invoice_id"] in invoice_ids
        ),
        promises=tuple(e.Promise(**_fields(r)) for r in of("promise")),
        payment_plans=tuple(
            e.PaymentPlan(
                **_fields(r, "installments"),
                installments=tuple(e.Installment(**i) for i in r["installments"]),
            )
            for r in of("payment_plan")
        ),
        contacts=tuple(
            e.Contact(**_fields(r), type=r["type"])
            for r in records
            if r["type"] in contact_types and r["customer_id"] == customer_id
        ),
        holds=tuple(e.Hold(**_fields(r)) for r in of("hold")),
    )


def _fields(record: dict, *leave_out: str) -> dict:
    return {k: v for k, v in record.items() if k not in ("type", *leave_out)}


@pytest.fixture
def build_ledger():
    """`build_ledger(records, customer_id)`: the expected Ledger, made without a database."""
    return ledger_of


def decision_record(n: int, **changes) -> dict:
    """A decision as the use cases hand it to storage."""
    from datetime import UTC, datetime

    record = {
        "decision_id": f"dec-{n}",
        "kind": "reminder",
        "customer_id": f"C{n % 7}",
        "as_of": date(2024, 4, 15),
        "outcome": {"tone": ["friendly", "firm"][n % 2], "cadence_days": 7},
        "reasons": [f"reason {n}"],
        "fired": [
            {"id": "RT-040", "name": "Firm", "priority": 40, "reason": "r", "then": {}, "set": {}}
        ],
        "ruleset": {"kind": "reminder", "version": 1, "sha256": "ab" * 32},
        "facts": {"open_balance": D("1200.5"), "utilization": 1 / 3, "days_past_due": n},
        "requested_by": "test",
        "created_at": datetime(2024, 4, 15, 2, 0, n % 60, 1000 * n, tzinfo=UTC),
        "engine_us": 31,
        "via": "api",
        "earlier": [],
        "explanation": f"Firm reminder by email: reason {n} (rule RT-040).",
        "arm": None,
    }
    record.update(changes)
    return record


@pytest.fixture
def make_decision():
    """`make_decision(n, **changes)`: a decision record ready for append_decision."""
    return decision_record


@pytest.fixture
def append_format_1():
    """`append_format_1(records, tags_table="decision_tag")`: see store_format_1."""
    return store_format_1


def store_format_1(records: list[dict], tags_table: str = "decision_tag") -> list[dict]:
    """Append decisions as credo did before record formats (migrations 1 to 7): the twelve
    SPEC §5 fields hashed, no format or via column, tags in `tags_table`. Returns them as
    stored."""
    from engine.trace import GENESIS_HASH, chain_hash
    from storage.db import database
    from storage.decisions import prepare_decisions, shape
    from storage.migrations import _DecisionV1

    head = database.execute_sql('SELECT "seq", "hash" FROM "decision" ORDER BY "seq" DESC LIMIT 1')
    last, prev = head.fetchone() or (0, GENESIS_HASH)
    stored = []
    for seq, decision in enumerate(prepare_decisions(records), start=last + 1):
        later = ("format", "via", "earlier", "explanation", "arm")  # fields of later formats
        record = {k: v for k, v in decision.record.items() if k not in later}
        digest = chain_hash(record, prev)
        row = dict(zip([c.name for c in shape.COLUMNS], decision.row, strict=True))
        for column in (*later, "experiment_id"):
            del row[column]
        _DecisionV1.insert(**row, seq=seq, prev_hash=prev, hash=digest).execute()
        mark = database.param
        insert = (
            f'INSERT INTO "{tags_table}" ("seq", "name", "value") VALUES ({mark}, {mark}, {mark})'
        )
        for name, value in decision.tags:
            database.execute_sql(insert, (seq, name, value))
        stored.append({**record, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    return stored
