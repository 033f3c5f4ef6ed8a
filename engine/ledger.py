"""A customer's ledger as plain Python objects: what facts are derived from.

Storage turns rows into these; the engine never sees a database. Money is Decimal, dates are
datetime.date. Field names follow the ERP's JSON (SPEC §3, "Ledger records").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class ContactPerson:
    """Who letters are addressed to at the customer: a name, and optionally an e-mail address,
    the language letters to them are written in and a salutation ("ms" or "mr")."""

    name: str
    email: str = ""
    language: str = ""
    salutation: str = ""


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    currency: str
    credit_limit: Decimal
    since: date
    segment: str = ""
    country: str = ""
    credit_score: int | None = None
    contact: ContactPerson | None = None


@dataclass(frozen=True)
class Invoice:
    id: str
    customer_id: str
    issue_date: date
    due_date: date
    amount: Decimal


@dataclass(frozen=True)
class Allocation:
    invoice_id: str
    amount: Decimal


@dataclass(frozen=True)
class Payment:
    id: str
    customer_id: str
    date: date
    amount: Decimal
    # Empty: the payment settles open invoices oldest due date first.
    allocations: tuple[Allocation, ...] = ()


@dataclass(frozen=True)
class CreditNote:
    id: str
    customer_id: str
    invoice_id: str
    date: date
    amount: Decimal


@dataclass(frozen=True)
class Dispute:
    id: str
    invoice_id: str
    opened: date
    resolved: date | None = None
    reason: str = ""


@dataclass(frozen=True)
class Promise:
    id: str
    customer_id: str
    made_on: date
    date: date
    amount: Decimal


@dataclass(frozen=True)
class Installment:
    due_date: date
    amount: Decimal


@dataclass(frozen=True)
class PaymentPlan:
    id: str
    customer_id: str
    status: str  # active, completed, cancelled
    installments: tuple[Installment, ...] = ()


CONTACT_TYPES = ("reminder", "call", "letter", "agency_placement", "agency_recall")


@dataclass(frozen=True)
class Contact:
    id: str
    customer_id: str
    date: date
    type: str  # one of CONTACT_TYPES
    tone: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Hold:
    id: str
    customer_id: str
    reason: str
    start: date
    end: date | None = None


@dataclass(frozen=True)
class Ledger:
    """Everything known about one customer, as the facts derivation needs it."""

    customer: Customer
    invoices: tuple[Invoice, ...] = ()
    payments: tuple[Payment, ...] = ()
    credit_notes: tuple[CreditNote, ...] = ()
    disputes: tuple[Dispute, ...] = ()
    promises: tuple[Promise, ...] = ()
    payment_plans: tuple[PaymentPlan, ...] = ()
    contacts: tuple[Contact, ...] = ()
    holds: tuple[Hold, ...] = ()
