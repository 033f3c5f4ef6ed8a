"""Reading one customer for the console: the ledger as a timeline, the facts today, the latest
decision of each kind and the letters the worklist prepared."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from engine.ledger import Ledger
from engine.trace import to_jsonable

MAX_TIMELINE = 1000


def find_customers(text: str, after: str | None, limit: int) -> tuple[list[dict], str | None]:
    """Customers whose id or name contains `text`, by id; and the next page's cursor."""
    from storage.customers import search_customers

    found = search_customers(text, after, limit)
    page = found[:limit]
    return page, (page[-1]["id"] if len(found) > limit else None)


def customer_overview(customer_id: str, as_of: date) -> dict[str, Any] | None:
    """Everything the customer page shows, or None for an unknown customer."""
    from engine.errors import EngineError
    from engine.facts import derive_facts
    from storage.ledger import load_ledger
    from storage.rulesets import list_kinds
    from storage.worklist import action_to_json, customer_actions

    ledger = load_ledger(customer_id) if 0 < len(customer_id) <= 64 else None
    if ledger is None:
        return None
    try:
        facts, facts_error = to_jsonable(derive_facts(ledger, as_of)), None
    except EngineError as exc:  # the page still shows the ledger that does not add up
        facts, facts_error = {}, str(exc)
    events = timeline(ledger)
    return {
        "customer": to_jsonable(asdict(ledger.customer)),  # its contact person as a dict too
        "as_of": as_of.isoformat(),
        "facts": facts,
        "facts_error": facts_error,
        "timeline": events[:MAX_TIMELINE],
        "timeline_cut": max(len(events) - MAX_TIMELINE, 0),
        "latest": latest_decisions(customer_id, list_kinds()),
        "actions": [action_to_json(a) for a in customer_actions(customer_id)],
    }


def latest_decisions(customer_id: str, kinds: list[str]) -> list[dict[str, Any]]:
    """The customer's newest stored decision of each kind that has one."""
    from api.decision_views import decision_filter, list_decisions

    found = []
    for kind in kinds:
        page = list_decisions(decision_filter(customer_id=customer_id, kind=kind), None, 1)
        found.extend(page.items)
    return found


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def timeline(ledger: Ledger) -> list[dict[str, Any]]:
    """Every ledger record as {date, type, id, text, amount?}, newest first; a dispute's
    resolution and a hold's end are events of their own."""
    events: list[dict[str, Any]] = []

    def add(day: date, type_: str, id_: str, text: str, amount: Decimal | None = None) -> None:
        shown = _money(amount) if amount is not None else ""
        events.append(
            {"date": day.isoformat(), "type": type_, "id": id_, "text": text, "amount": shown}
        )

    for i in ledger.invoices:
        add(i.issue_date, "invoice", i.id, f"invoice issued, due {i.due_date}", i.amount)
    for p in ledger.payments:
        to = ", ".join(f"{a.invoice_id} {_money(a.amount)}" for a in p.allocations)
        add(
            p.date,
            "payment",
            p.id,
            f"payment to {to}" if to else "payment (oldest due first)",
            p.amount,
        )
    for c in ledger.credit_notes:
        add(c.date, "credit note", c.id, f"credit note on {c.invoice_id}", c.amount)
    for d in ledger.disputes:
        add(d.opened, "dispute", d.id, f"dispute opened on {d.invoice_id}: {d.reason}".rstrip(": "))
        if d.resolved:
            add(d.resolved, "dispute", d.id, f"dispute on {d.invoice_id} resolved")
    for p in ledger.promises:
        add(p.made_on, "promise", p.id, f"promise to pay by {p.date}", p.amount)
    for plan in ledger.payment_plans:
        if plan.installments:
            total = sum((i.amount for i in plan.installments), Decimal(0))
            first, last = plan.installments[0].due_date, plan.installments[-1].due_date
            count = len(plan.installments)
            text = f"payment plan ({plan.status}): {count} installments {first} to {last}"
            add(first, "payment plan", plan.id, text, total)
    for c in ledger.contacts:
        tone = f" ({c.tone})" if c.tone else ""
        note = f": {c.note}" if c.note else ""
        add(c.date, "contact", c.id, f"{c.type.replace('_', ' ')}{tone}{note}")
    for h in ledger.holds:
        until = f" until {h.end}" if h.end else ""
        add(h.start, "hold", h.id, f"collections hold{until}: {h.reason}")
    events.sort(key=lambda e: e["date"], reverse=True)
    return events


def customer_names(customer_ids: list[str]) -> dict[str, str]:
    """The stored name of each of a page of customers, by id (an id not stored is left out)."""
    from storage.customers import customer_names as stored_names

    return stored_names([i for i in customer_ids if 0 < len(i) <= 64])
