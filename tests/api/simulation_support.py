"""A hand-built portfolio and two versions of a small rule set for the simulation and backtest
tests (imported as `simulation_support`), with the outcomes worked out by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

AS_OF = date(2024, 6, 30)

# Version 1 (active): firm after 30 days late, friendly when late at all.
TONE_V1 = """
kind = "tone"
title = "Tone (test)"
hit_policy = "first"

[outcome]
tone = { values = ["none", "friendly", "firm", "final"], default = "none" }
channel = { values = ["email", "letter"], default = "email" }

[[rule]]
id = "T-20"
name = "Firm after 30 days"
priority = 20
when = "days_past_due > 30"
then = { tone = "firm" }
reason = "{days_past_due} days late: firm"

[[rule]]
id = "T-10"
name = "Friendly when late"
priority = 10
when = "days_past_due > 0"
then = { tone = "friendly" }
reason = "{days_past_due} days late: friendly"
"""

# Version 2 (the draft): a final letter after 60 days; nothing until 10 days late.
TONE_V2 = """
kind = "tone"
title = "Tone (test), final letters"
hit_policy = "first"

[outcome]
tone = { values = ["none", "friendly", "firm", "final"], default = "none" }
channel = { values = ["email", "letter"], default = "email" }

[[rule]]
id = "T-30"
name = "Final letter after 60 days"
priority = 30
when = "days_past_due > 60"
then = { tone = "final", channel = "letter" }
reason = "{days_past_due} days late: final letter"

[[rule]]
id = "T-20"
name = "Firm after 30 days"
priority = 20
when = "days_past_due > 30"
then = { tone = "firm" }
reason = "{days_past_due} days late: firm"

[[rule]]
id = "T-10"
name = "Friendly after 10 days"
priority = 10
when = "days_past_due > 10"
then = { tone = "friendly" }
reason = "{days_past_due} days late: friendly"
"""


def store_tone_versions() -> None:
    """Version 1 of kind "tone" active, version 2 a draft."""
    from engine.ruleset import sha256_of
    from storage.rulesets import create_version

    create_version("tone", TONE_V1, sha256_of(TONE_V1), created_by="test", state="active")
    create_version("tone", TONE_V2, sha256_of(TONE_V2), created_by="test")


def _customer(cid: str, currency: str) -> dict:
    return {
        "type": "customer",
        "id": cid,
        "name": f"Customer {cid}",
        "currency": currency,
        "credit_limit": D("10000.00"),
        "since": date(2020, 1, 1),
    }


def _invoice(iid: str, cid: str, days_late: int, amount: str) -> dict:
    due = AS_OF - timedelta(days=days_late)
    return {
        "type": "invoice",
        "id": iid,
        "customer_id": cid,
        "issue_date": due - timedelta(days=30),
        "due_date": due,
        "amount": D(amount),
    }


# customer: (currency, [(days late, amount)]); a negative lateness is an invoice not yet due
PORTFOLIO = {
    "E1": ("EUR", [(5, "100.00")]),  # friendly → none
    "E2": ("EUR", [(45, "200.00")]),  # firm → firm
    "E3": ("EUR", [(75, "300.00"), (-10, "500.00")]),  # firm → final (open 800, overdue 300)
    "G1": ("GBP", [(80, "1000.00")]),  # firm → final
    "G2": ("GBP", [(20, "50.00")]),  # friendly → friendly
    "G3": ("GBP", [(-5, "70.00")]),  # none → none (open 70, nothing overdue)
}


def store_portfolio() -> None:
    from storage.ledger import upsert_records

    records = []
    for cid, (currency, invoices) in PORTFOLIO.items():
        records.append(_customer(cid, currency))
        for n, (late, amount) in enumerate(invoices):
            records.append(_invoice(f"{cid}-I{n}", cid, late, amount))
    result = upsert_records(records)
    assert not result.rejected, result.rejected


def money(count: int, open_balance: str, overdue_balance: str) -> dict:
    return {"count": count, "open_balance": open_balance, "overdue_balance": overdue_balance}


def cell(old, new, count: int, **by_currency: dict) -> dict:
    return {"from": old, "to": new, "changed": old != new, "count": count, "money": by_currency}


# The matrix of version 2 against version 1 on PORTFOLIO, by hand.
EXPECTED_MATRIX = {
    "tone": {
        "values": ["none", "friendly", "firm", "final"],
        "cells": [
            cell("none", "none", 1, GBP=money(1, "70.00", "0.00")),
            cell("friendly", "none", 1, EUR=money(1, "100.00", "100.00")),
            cell("friendly", "friendly", 1, GBP=money(1, "50.00", "50.00")),
            cell("firm", "firm", 1, EUR=money(1, "200.00", "200.00")),
            cell(
                "firm",
                "final",
                2,
                EUR=money(1, "800.00", "300.00"),
                GBP=money(1, "1000.00", "1000.00"),
            ),
        ],
    },
    "channel": {
        "values": ["email", "letter"],
        "cells": [
            cell(
                "email",
                "email",
                4,
                EUR=money(2, "300.00", "300.00"),
                GBP=money(2, "120.00", "50.00"),
            ),
            cell(
                "email",
                "letter",
                2,
                EUR=money(1, "800.00", "300.00"),
                GBP=money(1, "1000.00", "1000.00"),
            ),
        ],
    },
}


def store_decisions(as_of: date = AS_OF) -> dict[str, int]:
    """Decisions version 1 made, stored with their facts: each PORTFOLIO customer's of
    2024-06-30 and one from facts alone (90 days late), in the backtest period of June 2024;
    one with facts that no longer check; and, outside it, one of May 31, one of July 1 and one
    of another kind. Returns the seq of each, by a name."""
    from datetime import UTC, datetime

    from api_support import complete_facts

    from api.usecases import build_decision_record, gather_facts
    from engine.facts import check_facts
    from engine.ruleset import parse_ruleset, sha256_of
    from engine.runtime import Engine
    from storage.decisions import append_decisions

    engine, v1 = Engine(), parse_ruleset(TONE_V1)
    info = {"kind": "tone", "version": 1, "sha256": sha256_of(TONE_V1)}

    def record(customer_id, facts, created, kind="tone"):
        decided = build_decision_record(
            engine.evaluate(v1, facts), info, facts, customer_id, as_of, "test", via="run"
        )
        return {**decided, "kind": kind, "created_at": created}

    june = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
    records = {cid: record(cid, gather_facts(cid, None, as_of), june) for cid in PORTFOLIO}
    given = check_facts(
        complete_facts(days_past_due=90, overdue_balance="900.00", open_balance="1000.00"),
        complete=True,
    )
    records["facts-only"] = record(None, given, june)
    broken = record("E2", gather_facts("E2", None, as_of), june)
    records["broken"] = {**broken, "facts": {**broken["facts"], "days_past_due": "soon"}}
    e1 = gather_facts("E1", None, as_of)
    records["may"] = record("E1", e1, datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC))
    records["july"] = record("E1", e1, datetime(2024, 7, 1, tzinfo=UTC))
    records["other kind"] = record("E1", e1, june, kind="reminder")
    stored = append_decisions(list(records.values()))
    return {name: decision["seq"] for name, decision in zip(records, stored, strict=True)}
