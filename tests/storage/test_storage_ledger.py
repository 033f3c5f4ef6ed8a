"""Ledger storage: upserts by ERP id, rejections by reason, batch loading, open customers."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from engine.facts import derive_facts
from storage import ledger
from storage.models import Customer, Invoice, PaymentAllocation

AS_OF = date(2024, 4, 15)


def test_upsert_inserts_then_reimport_changes_nothing(db, records):
    first = ledger.upsert_records(records)
    assert (first.inserted, first.updated, first.unchanged, first.rejected) == (
        len(records),
        0,
        0,
        [],
    )
    again = ledger.upsert_records(records)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(records))
    assert Customer.select().count() == 2
    assert PaymentAllocation.select().count() == 2


def test_changed_record_is_updated_with_its_children(db, records):
    ledger.upsert_records(records)
    payment = next(r for r in records if r["id"] == "P1")
    changed = dict(payment, allocations=[{"invoice_id": "I2", "amount": Decimal("700.25")}])
    result = ledger.upsert_records([changed])
    assert (result.updated, result.unchanged) == (1, 0)
    (stored,) = ledger.load_ledger("C1").payments[:1]
    assert [(a.invoice_id, a.amount) for a in stored.allocations] == [("I2", Decimal("700.25"))]


def test_later_record_with_the_same_id_wins(db, records):
    customer = records[0]
    result = ledger.upsert_records([customer, dict(customer, name="Acme AG")])
    assert (result.inserted, result.updated) == (1, 1)
    assert Customer.get_by_id("C1").name == "Acme AG"


def test_rejections_name_the_record_and_the_reason_and_spare_the_rest(db, records):
    bad = [
        {
            "type": "invoice",
            "id": "X1",
            "customer_id": "NOPE",
            "issue_date": date(2024, 1, 1),
            "due_date": date(2024, 1, 31),
            "amount": Decimal("5"),
        },
        {
            "type": "credit_note",
            "id": "X2",
            "customer_id": "C2",
            "invoice_id": "I1",
            "date": date(2024, 2, 1),
            "amount": Decimal("1"),
        },
        {"type": "dispute", "id": "X3", "invoice_id": "I404", "opened": date(2024, 2, 1)},
        {
            "type": "payment",
            "id": "X4",
            "customer_id": "C2",
            "date": date(2024, 2, 1),
            "amount": Decimal("1"),
            "allocations": [{"invoice_id": "I1", "amount": Decimal("1")}],
        },
        {"type": "contact", "id": "X5", "customer_id": "C1", "date": date(2024, 2, 1)},
        {"type": "invoice", "id": "X6", "customer_id": "C1", "issue_date": date(2024, 1, 1)},
    ]
    result = ledger.upsert_records(records + bad)
    assert result.inserted == len(records)
    errors = {r.id or r.type: r.errors for r in result.rejected}
    assert errors["X1"] == {"customer_id": ["unknown customer 'NOPE'"]}
    assert errors["X2"] == {"invoice_id": ["invoice 'I1' belongs to customer 'C1', not 'C2'"]}
    assert errors["X3"] == {"invoice_id": ["unknown invoice 'I404'"]}
    assert "allocations.0.invoice_id" in errors["X4"]
    assert "contact type" in errors["contact"]["type"][0]
    assert errors["X6"] == {"due_date": ["missing"]}
    assert [r.index for r in result.rejected] == list(range(len(records), len(records) + 6))
    assert not Invoice.select().where(Invoice.id.in_(["X1", "X6"])).exists()


def test_a_record_cannot_move_to_another_customer(db, records):
    ledger.upsert_records(records)
    moved = dict(next(r for r in records if r["id"] == "I4"), customer_id="C1")
    result = ledger.upsert_records([moved])
    assert "cannot move" in result.rejected[0].errors["customer_id"][0]
    assert Invoice.get_by_id("I4").customer_id == "C2"


def test_loaded_ledger_equals_the_records_and_gives_the_same_facts(db, records, build_ledger):
    """Run on SQLite and PostgreSQL: both give exactly the ledger and facts of the records."""
    ledger.upsert_records(records)
    for customer_id in ("C1", "C2"):
        expected = build_ledger(records, customer_id)
        loaded = ledger.load_ledger(customer_id)
        assert loaded == expected
        assert repr(loaded.customer.credit_limit) == repr(
            expected.customer.credit_limit.quantize(Decimal("0.01"))
        )
        assert derive_facts(loaded, AS_OF) == derive_facts(expected, AS_OF)
    assert ledger.load_ledger("C404") is None


def test_load_ledgers_costs_one_query_per_table_whatever_the_size(db, records):
    ledger.upsert_records(records)
    more = []
    for n in range(60):
        customer_id = f"M{n:03d}"
        more.append(dict(records[1], id=customer_id))
        for k in range(5):
            more.append(
                {
                    "type": "invoice",
                    "id": f"{customer_id}-{k}",
                    "customer_id": customer_id,
                    "issue_date": date(2024, 1, 1 + k),
                    "due_date": date(2024, 2, 1 + k),
                    "amount": Decimal("10.00"),
                }
            )
    ledger.upsert_records(more)
    ids = ["C1", "C2", *(f"M{n:03d}" for n in range(60)), "C404"]
    with _count_queries() as queries:
        loaded = ledger.load_ledgers(ids)
    assert len(loaded) == 62 and "C404" not in loaded
    assert len(loaded["M007"].invoices) == 5
    assert len(queries) <= 12


def test_open_customers_include_unpaid_plans_and_agency_and_leave_paid_up_out(db, records):
    ledger.upsert_records(records)
    paid_up = [
        dict(records[1], id="PAID"),
        {
            "type": "invoice",
            "id": "PI",
            "customer_id": "PAID",
            "issue_date": date(2024, 1, 1),
            "due_date": date(2024, 1, 31),
            "amount": Decimal("10.00"),
        },
        {
            "type": "payment",
            "id": "PP",
            "customer_id": "PAID",
            "date": date(2024, 1, 20),
            "amount": Decimal("10.00"),
        },
        dict(records[1], id="QUIET"),
    ]
    ledger.upsert_records(paid_up)
    assert list(ledger.iter_open_customer_ids(1)) == [["C1"], ["C2"]]
    # C2 is open by its plan and its agency placement even once its invoice is paid.
    ledger.upsert_records(
        [
            {
                "type": "payment",
                "id": "P9",
                "customer_id": "C2",
                "date": date(2024, 3, 5),
                "amount": Decimal("10.10"),
            },
            {
                "type": "payment_plan",
                "id": "PL1",
                "customer_id": "C2",
                "status": "completed",
                "installments": [],
            },
        ]
    )
    assert list(ledger.iter_open_customer_ids(10)) == [["C1", "C2"]]
    ledger.upsert_records(
        [
            {"type": "agency_recall", "id": "K3", "customer_id": "C2", "date": date(2024, 4, 2)},
        ]
    )
    assert list(ledger.iter_open_customer_ids(10)) == [["C1"]]
    assert list(ledger.iter_open_customer_ids(10, after="C1")) == []
    # As of a day before their payments, the invoices of PAID and C2 are still open.
    early = list(ledger.iter_open_customer_ids(10, as_of=date(2024, 1, 10)))
    assert early == [["C1", "C2", "PAID"]]


def test_open_customers_are_listed_range_by_range_with_the_same_result(db):
    """Listing a run's customers reads the customer table a range of ids at a time (memory
    stays flat however large the portfolio): any range size gives the same batches, and a
    customer added past the ranges read so far is still listed."""
    from api.demo.portfolio import generate_portfolio
    from api.intake.schemas import validate_record

    records = [validate_record(r) for r in generate_portfolio(40, seed=7, as_of=AS_OF)]
    assert not ledger.upsert_records(records).rejected
    whole = list(ledger.iter_open_customer_ids(4, as_of=AS_OF, chunk=1000))
    flat = [c for ids in whole for c in ids]
    assert len(flat) == len(set(flat)) > 10 and flat == sorted(flat)
    for chunk in (1, 3, 7, 39, 40, 41):
        assert list(ledger.iter_open_customer_ids(4, as_of=AS_OF, chunk=chunk)) == whole, chunk
    after = flat[5]
    assert [c for ids in ledger.iter_open_customer_ids(4, after=after, chunk=3) for c in ids] == [
        c for c in [c for ids in ledger.iter_open_customer_ids(4) for c in ids] if c > after
    ]

    batches = ledger.iter_open_customer_ids(2, as_of=AS_OF, chunk=5)
    first = next(batches)
    late = dict(records[0], id="ZZ-LATE")  # sorts after every generated id
    invoice = {
        "type": "invoice",
        "id": "ZZ-LATE-1",
        "customer_id": "ZZ-LATE",
        "issue_date": date(2024, 1, 1),
        "due_date": date(2024, 1, 31),
        "amount": Decimal("50.00"),
    }
    assert not ledger.upsert_records([late, invoice]).rejected
    rest = [c for ids in batches for c in ids]
    assert [*first, *rest] == [*flat, "ZZ-LATE"]


class _count_queries:
    """Collect the SQL statements peewee runs inside the block."""

    def __enter__(self) -> list[str]:
        self.queries: list[str] = []
        self.logger = logging.getLogger("peewee")
        self.level = self.logger.level
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.queries.append(record.getMessage())
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG)
        return self.queries

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


def test_sqlite_and_postgresql_give_the_same_facts_for_a_portfolio(tmp_path, postgres_url):
    from api.demo.portfolio import generate_portfolio
    from api.intake.schemas import validate_record
    from storage.db import connect
    from storage.migrations import migrate

    as_of = date(2025, 6, 30)
    records = [validate_record(r) for r in generate_portfolio(150, seed=11, as_of=as_of)]
    ids = [r["id"] for r in records if r["type"] == "customer"]
    facts = {}
    for url in (f"sqlite:///{tmp_path / 'a.db'}", postgres_url):
        database = connect(url)
        migrate(database)
        assert not ledger.upsert_records(records).rejected
        loaded = ledger.load_ledgers(ids)
        facts[url] = {cid: derive_facts(book, as_of) for cid, book in loaded.items()}
        facts[url, "open"] = list(ledger.iter_open_customer_ids(1000, as_of=as_of))
        database.close()
    sqlite, postgres = (facts[k] for k in facts if isinstance(k, str))
    assert len(sqlite) == 150 and sqlite == postgres
    open_lists = [v for k, v in facts.items() if isinstance(k, tuple)]
    assert open_lists[0] == open_lists[1] and len(open_lists[0][0]) > 100
