"""The demo portfolio generator: seeded, valid, and as varied as a real ledger."""

from __future__ import annotations

from collections import Counter
from datetime import date

from api.demo.portfolio import generate_customer, generate_portfolio
from api.intake.schemas import validate_record

AS_OF = date(2025, 6, 30)


def test_same_seed_same_portfolio_and_customers_do_not_depend_on_its_size():
    small = list(generate_portfolio(20, seed=5, as_of=AS_OF))
    assert small == list(generate_portfolio(20, seed=5, as_of=AS_OF))
    assert small != list(generate_portfolio(20, seed=6, as_of=AS_OF))
    large = list(generate_portfolio(30, seed=5, as_of=AS_OF))
    assert large[: len(small)] == small
    assert generate_customer(7, 5, AS_OF)[0]["id"] == "C000007"


def test_portfolio_records_are_valid_and_cover_every_situation():
    records = [validate_record(r) for r in generate_portfolio(300, seed=7, as_of=AS_OF)]
    kinds = Counter(r["type"] for r in records)
    assert kinds["customer"] == 300
    for kind in (
        "invoice",
        "payment",
        "credit_note",
        "dispute",
        "promise",
        "payment_plan",
        "reminder",
        "call",
        "agency_placement",
        "hold",
    ):
        assert kinds[kind] > 0, kind
    assert Counter(r["segment"] for r in records if r["type"] == "customer").keys() == {
        "small_business",
        "mid_market",
        "enterprise",
        "public_sector",
    }
    assert {r["tone"] for r in records if r["type"] == "reminder"} == {
        "courtesy",
        "friendly",
        "firm",
        "final",
        "demand",
    }
    invoices = [r for r in records if r["type"] == "invoice"]
    assert all((r["due_date"] - r["issue_date"]).days == 30 for r in invoices)
    assert min(r["issue_date"] for r in invoices) >= date(2023, 12, 29)
    assert max(r["issue_date"] for r in invoices) <= AS_OF
    disputes = [r for r in records if r["type"] == "dispute"]
    assert any(r["resolved"] for r in disputes) and any(not r["resolved"] for r in disputes)
    unallocated = [r for r in records if r["type"] == "payment" and not r["allocations"]]
    assert unallocated, "some payments settle oldest first"


def test_payers_range_from_prompt_to_chronically_late(db):
    from engine.facts import derive_facts
    from storage import ledger

    records = [validate_record(r) for r in generate_portfolio(200, seed=7, as_of=AS_OF)]
    assert not ledger.upsert_records(records).rejected
    facts = [
        derive_facts(book, AS_OF)
        for book in ledger.load_ledgers(
            [r["id"] for r in records if r["type"] == "customer"]
        ).values()
    ]
    late = [f["avg_days_late_12m"] for f in facts]
    assert min(late) < 1 and max(late) > 40
    assert sum(f["days_past_due"] > 90 for f in facts) >= 5
    assert sum(f["days_past_due"] == 0 for f in facts) >= 80
    assert any(f["promises_broken_12m"] for f in facts)
    assert any(f["has_active_promise"] for f in facts)
    assert any(f["on_payment_plan"] and f["plan_missed_installments"] for f in facts)
    assert any(f["on_payment_plan"] and not f["plan_missed_installments"] for f in facts)
    assert any(f["in_agency"] for f in facts) and any(f["on_hold"] for f in facts)
    assert any(f["has_open_dispute"] for f in facts)
