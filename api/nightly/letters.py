"""What a reminder template may use: the customer and its contact person, the invoices the
letter is about, totals, offers, plan terms and late charges (docs/templates.md).

Amounts are Decimal and dates ISO 8601 text: templates write them with the `money` and `date`
filters (api.nightly.locales), which format them for the letter's locale.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from engine.account import Account
from engine.ledger import (
    ContactPerson,
    Customer,
    Dispute,
    Installment,
    Invoice,
    Ledger,
    PaymentPlan,
    Promise,
)

COURTESY_WINDOW_DAYS = 14
# The large sample account `credo rules check` renders every template with: a template whose
# work grows faster than the number of invoices breaks a limit on it.
LARGE_SAMPLE_INVOICES = 2000


def contact_context(contact: ContactPerson | None) -> dict[str, Any] | None:
    """The contact person as templates see it, with `family_name` (the name's last word, for a
    greeting with a salutation: "Dear Ms Weber,"); None when the customer has none."""
    if contact is None or not contact.name.strip():
        return None
    name = " ".join(contact.name.split())
    return {
        "name": name,
        "family_name": name.rpartition(" ")[2],
        "email": contact.email,
        "language": contact.language,
        "salutation": contact.salutation,
    }


def reminder_context(
    ledger: Ledger,
    as_of: date,
    tone: str,
    discount: dict[str, Any] | None = None,
    plan: dict[str, Any] | None = None,
    account: Account | None = None,
    charges: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a reminder template may use.

    A courtesy reminder lists invoices falling due within the next two weeks; every other tone
    lists the overdue ones, oldest first, but not those in dispute, which are listed apart
    (`disputed`): a reminder never chases an invoice under dispute. Amounts are what is still
    unpaid. `missed_installments` lists the active plan's missed installments; `plan` the terms
    of a plan offered (api.nightly.terms.plan_terms); `charges` the late charges the letter
    states (None when the policy does not state them); `broken_promise` the latest promise
    broken by as_of (made_on, date, amount).
    """
    account = account or Account(ledger, as_of)
    rows, disputed = [], []
    for invoice in account.invoices:
        unpaid = account.unpaid[invoice.id]
        if unpaid <= 0:
            continue
        days = (as_of - invoice.due_date).days
        coming = -COURTESY_WINDOW_DAYS <= days <= 0
        if invoice.id in account.disputed_invoice_ids:
            disputed.append(_row(invoice, unpaid, days))
        elif (tone == "courtesy" and coming) or (tone != "courtesy" and days > 0):
            rows.append(_row(invoice, unpaid, days))
    customer = ledger.customer
    total = sum((r["unpaid"] for r in rows), Decimal(0))
    return {
        "customer": {"id": customer.id, "name": customer.name, "country": customer.country},
        "contact": contact_context(customer.contact),
        "currency": customer.currency,
        "tone": tone,
        "as_of": as_of.isoformat(),
        "invoices": rows,
        "total_overdue": total,
        "next_due_date": min((r["due_date"] for r in rows), default=as_of.isoformat()),
        "discount": discount,
        "plan": plan,
        "charges": charges if charges and charges.get("shown") else None,
        "disputed": disputed,
        "missed_installments": [
            {"due_date": i.due_date.isoformat(), "amount": i.amount}
            for i in account.missed_installments
        ],
        "broken_promise": _broken_promise(ledger, account),
    }


def _row(invoice: Invoice, unpaid: Decimal, days: int) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "amount": invoice.amount,
        "unpaid": unpaid,
        "unpaid_amount": unpaid,  # the name of older templates
        "days_past_due": max(days, 0),
    }


def _broken_promise(ledger: Ledger, account: Account) -> dict[str, Any] | None:
    broken = set(account.broken_promise_dates)
    promises = [p for p in ledger.promises if p.date in broken]
    if not promises:
        return None
    latest = max(promises, key=lambda p: (p.date, p.id))
    return {
        "made_on": latest.made_on.isoformat(),
        "date": latest.date.isoformat(),
        "amount": latest.amount,
    }


def sample_contexts() -> dict[str, dict[str, Any]]:
    """The sample accounts every template must render with, by label: a small one with a
    contact person, a discount, plan terms, late charges and a broken promise; the same without
    any of these; and a large one."""
    from api.nightly.terms import plan_terms

    today = date(2026, 1, 15)
    contact = ContactPerson("Anna Weber", "anna.weber@example.com", "de", "ms")
    customer = Customer("C-1", "Sample Trading Ltd", "EUR", Decimal(10000), date(2020, 1, 1))
    invoices = (
        Invoice("INV-1", "C-1", today - timedelta(60), today - timedelta(30), Decimal("1200.00")),
        Invoice("INV-2", "C-1", today - timedelta(20), today + timedelta(10), Decimal("300.50")),
        Invoice("INV-3", "C-1", today - timedelta(50), today - timedelta(20), Decimal("150.00")),
    )
    disputes = (Dispute("X-1", "INV-3", today - timedelta(12)),)
    installments = (Installment(today - timedelta(5), Decimal("400.00")),)
    plans = (PaymentPlan("PL-1", "C-1", "active", installments),)
    promises = (Promise("P-1", "C-1", today - timedelta(20), today - timedelta(6), Decimal(500)),)
    ledger = Ledger(customer, invoices, disputes=disputes, payment_plans=plans)
    small = reminder_context(ledger, today, "friendly")
    with_contact = Ledger(
        Customer("C-1", customer.name, "EUR", Decimal(10000), date(2020, 1, 1), contact=contact),
        invoices,
        disputes=disputes,
        payment_plans=plans,
        promises=promises,
    )
    charges = {
        "shown": True,
        "interest_rate": Decimal("10.27"),
        "grace_days": 0,
        "fee_currency": "EUR",
        "interest": Decimal("10.13"),
        "fees": Decimal("40.00"),
        "total": Decimal("50.13"),
        "invoices": [
            {
                "invoice_id": "INV-1",
                "unpaid": Decimal("1200.00"),
                "days": 30,
                "interest": Decimal("10.13"),
                "fee": Decimal("40.00"),
            }
        ],
    }
    offers = reminder_context(
        with_contact,
        today,
        "final",
        discount={"percent": 2, "until": (today + timedelta(5)).isoformat()},
        plan=plan_terms(Decimal("1200.00"), today, 3, 30),
        charges=charges,
    )
    issued = today - timedelta(90)
    many = tuple(
        Invoice(f"INV-{n}", "C-1", issued, today - timedelta(1 + n % 60), Decimal("99.90"))
        for n in range(LARGE_SAMPLE_INVOICES)
    )
    return {
        "small account with offers": offers,  # and a contact, charges, a broken promise
        "small account": small,
        f"large account ({LARGE_SAMPLE_INVOICES:,} invoices)": reminder_context(
            Ledger(customer, many), today, "firm"
        ),
    }
