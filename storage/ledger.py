"""Customers' ledgers: written by upsert (storage.upsert), read back as engine.ledger.Ledger.

`load_ledgers` reads a batch of customers in one query per table, whatever the number of
invoices, so the nightly run and simulations cost a dozen queries per few hundred customers.
Records come back sorted in Python (by date, then id), so SQLite and PostgreSQL give equal
ledgers whatever their collation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import fields
from datetime import date
from decimal import Decimal
from itertools import repeat
from operator import attrgetter
from typing import Any

import peewee as pw

from engine.ledger import (
    Allocation,
    Contact,
    ContactPerson,
    CreditNote,
    Customer,
    Dispute,
    Hold,
    Installment,
    Invoice,
    Ledger,
    Payment,
    PaymentPlan,
    Promise,
)
from storage import models as m
from storage.db import database
from storage.upsert import RECORD_TYPES, Rejection, UpsertResult, upsert_records

__all__ = [
    "RECORD_TYPES",
    "Rejection",
    "UpsertResult",
    "upsert_records",
    "load_ledger",
    "load_ledgers",
    "iter_open_customer_ids",
    "iter_customer_ids",
    "count_customers",
    "customer_currencies",
]

LOAD_CHUNK = 500
# Customers looked at per range when listing a run's customers: a few megabytes of ids.
PLAN_CHUNK = 10_000


def load_ledger(customer_id: str) -> Ledger | None:
    """One customer's ledger, or None when the customer is unknown."""
    return load_ledgers([customer_id]).get(customer_id)


def load_ledgers(customer_ids: Iterable[str]) -> dict[str, Ledger]:
    """Ledgers of the given customers (unknown ids are left out), one query per table per
    chunk of 500 customers."""
    ids = list(dict.fromkeys(customer_ids))
    ledgers: dict[str, Ledger] = {}
    for start in range(0, len(ids), LOAD_CHUNK):
        ledgers.update(_load_chunk(ids[start : start + LOAD_CHUNK]))
    return ledgers


def iter_customer_ids(page_size: int = 500, after: str | None = None) -> Iterator[list[str]]:
    """Every stored customer's id, in the database's order, in lists of `page_size`.

    Read a page at a time by keyset (`id > last id`): no list of every id is built, and a
    customer added meanwhile is seen when its id sorts after the page in hand. `after`
    resumes after that id.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    c = m.Customer
    while True:
        query = c.select(c.id).order_by(c.id).limit(page_size)
        if after is not None:
            query = query.where(c.id > after)
        page = [customer_id for (customer_id,) in query.tuples()]
        if page:
            yield page
        if len(page) < page_size:
            return
        after = page[-1]


def count_customers() -> int:
    """How many customers are stored."""
    return m.Customer.select().count()


def customer_currencies(customer_ids: Iterable[str]) -> dict[str, str]:
    """The currency of each given customer that is stored, by id."""
    ids = list(dict.fromkeys(customer_ids))
    c = m.Customer
    currencies: dict[str, str] = {}
    for start in range(0, len(ids), LOAD_CHUNK):
        chunk = ids[start : start + LOAD_CHUNK]
        currencies.update(c.select(c.id, c.currency).where(_in(c.id, chunk)).tuples())
    return currencies


def _rows(query: pw.Query) -> list[tuple]:
    """The rows of `query`, its money and date columns converted, without peewee's per-row
    machinery (which costs three quarters of the time on a large ledger). Columns are
    converted whole, by C-level maps, rather than value by value."""
    rows = database.execute_sql(*query.sql()).fetchall()
    fixes = [
        (n, *(_MONEY if isinstance(c, m.MoneyField) else _DATE))
        for n, c in enumerate(query.selected_columns)
        if isinstance(c, m.MoneyField | pw.DateField)
    ]
    if not rows or not fixes:
        return rows
    columns = list(zip(*rows, strict=True))
    for n, whole, single in fixes:
        values = columns[n]
        if None in values:  # a nullable column: value by value
            columns[n] = tuple(None if v is None else single(v) for v in values)
        else:
            columns[n] = whole(values)
    return list(zip(*columns, strict=True))


def _money_column(values: tuple) -> tuple:
    """storage.models.money_value of every value (Decimal from PostgreSQL, else a number)."""
    amounts = values if type(values[0]) is Decimal else map(Decimal, map(str, values))
    return tuple(map(Decimal.quantize, amounts, repeat(m.CENT)))


def _date_column(values: tuple) -> tuple:
    """storage.models.date_value of every value (a date from PostgreSQL, ISO text on SQLite)."""
    return values if type(values[0]) is date else tuple(map(date.fromisoformat, values))


# (a whole column's conversion, one value's) for money and date columns
_MONEY = (_money_column, m.money_value)
_DATE = (_date_column, m.date_value)


def _in(column: pw.Field, ids: list[str]) -> pw.Node:
    """`column IN (…ids)` as one node: peewee would build one node per id, slowly."""
    marks = ", ".join([database.param] * len(ids))
    return pw.NodeList((column, pw.SQL(f"IN ({marks})", ids)))


def _grouped(query: pw.Query, build) -> dict[str, list]:
    """Rows of `query` (customer id first) built into records, grouped by customer id."""
    groups: dict[str, list] = defaultdict(list)
    for customer_id, *values in _rows(query):
        groups[customer_id].append(build(customer_id, *values))
    return groups


def _load_chunk(ids: list[str]) -> dict[str, Ledger]:
    c = m.Customer
    query = c.select(
        c.id,
        c.name,
        c.currency,
        c.credit_limit,
        c.since,
        c.segment,
        c.country,
        c.credit_score,
        c.contact_name,
        c.contact_email,
        c.contact_language,
        c.contact_salutation,
    )
    customers = {row[0]: _customer(row) for row in _rows(query.where(_in(c.id, ids)))}
    if not customers:
        return {}
    ids = list(customers)
    parts = {
        "invoices": _invoices(ids),
        "payments": _payments(ids),
        "credit_notes": _credit_notes(ids),
        "disputes": _disputes(ids),
        "promises": _promises(ids),
        "payment_plans": _plans(ids),
        "contacts": _contacts(ids),
        "holds": _holds(ids),
    }
    return {
        cid: Ledger(
            customer=customer,
            **{name: _in_order(groups.get(cid, ())) for name, groups in parts.items()},
        )
        for cid, customer in customers.items()
    }


def _customer(row: tuple) -> Customer:
    """A customer row as the engine's Customer, with its contact person when it has one."""
    *fields_, name, email, language, salutation = row
    contact = ContactPerson(name, email, language, salutation) if name else None
    return Customer(*fields_, contact=contact)


def _in_order(records: list) -> tuple:
    """Records of one kind in ledger order: by date (due date for invoices), then id."""
    if len(records) < 2:
        return tuple(records)
    kind = type(records[0])
    key = _ORDER_KEYS.get(kind)
    if key is None:
        names = {f.name for f in fields(kind)}
        name = next(n for n in ("due_date", "date", "opened", "start", "id") if n in names)
        key = _ORDER_KEYS[kind] = attrgetter(name, "id")
    return tuple(sorted(records, key=key))


_ORDER_KEYS: dict[type, Any] = {}


def _invoices(ids: list[str]) -> dict[str, list]:
    t = m.Invoice
    query = t.select(t.customer, t.id, t.issue_date, t.due_date, t.amount)
    return _grouped(
        query.where(_in(t.customer, ids)),
        lambda cid, id_, issued, due, amount: Invoice(id_, cid, issued, due, amount),
    )


def _payments(ids: list[str]) -> dict[str, list]:
    a, p = m.PaymentAllocation, m.Payment
    allocations: dict[str, list[Allocation]] = defaultdict(list)
    query = (
        a.select(a.payment, a.invoice, a.amount)
        .join(p)
        .where(_in(p.customer, ids))
        .order_by(a.payment, a.position)
    )
    for payment_id, invoice_id, amount in _rows(query):
        allocations[payment_id].append(Allocation(invoice_id, amount))
    return _grouped(
        p.select(p.customer, p.id, p.date, p.amount).where(_in(p.customer, ids)),
        lambda cid, id_, day, amount: Payment(
            id_, cid, day, amount, tuple(allocations.get(id_, ()))
        ),
    )


def _credit_notes(ids: list[str]) -> dict[str, list]:
    t = m.CreditNote
    query = t.select(t.customer, t.id, t.invoice, t.date, t.amount).where(_in(t.customer, ids))
    return _grouped(query, _by_customer(CreditNote))


def _disputes(ids: list[str]) -> dict[str, list]:
    d, i = m.Dispute, m.Invoice
    query = (
        d.select(i.customer, d.id, d.invoice, d.opened, d.resolved, d.reason)
        .join(i)
        .where(_in(i.customer, ids))
    )
    return _grouped(query, lambda cid, *values: Dispute(*values))


def _promises(ids: list[str]) -> dict[str, list]:
    t = m.Promise
    query = t.select(t.customer, t.id, t.made_on, t.date, t.amount).where(_in(t.customer, ids))
    return _grouped(query, _by_customer(Promise))


def _plans(ids: list[str]) -> dict[str, list]:
    p, i = m.PaymentPlan, m.Installment
    installments: dict[str, list[Installment]] = defaultdict(list)
    query = (
        i.select(i.plan, i.due_date, i.amount)
        .join(p)
        .where(_in(p.customer, ids))
        .order_by(i.plan, i.position)
    )
    for plan_id, due, amount in _rows(query):
        installments[plan_id].append(Installment(due, amount))
    return _grouped(
        p.select(p.customer, p.id, p.status).where(_in(p.customer, ids)),
        lambda cid, id_, status: PaymentPlan(id_, cid, status, tuple(installments.get(id_, ()))),
    )


def _contacts(ids: list[str]) -> dict[str, list]:
    t = m.Contact
    query = t.select(t.customer, t.id, t.date, t.type, t.tone, t.note).where(_in(t.customer, ids))
    return _grouped(query, _by_customer(Contact))


def _holds(ids: list[str]) -> dict[str, list]:
    t = m.Hold
    query = t.select(t.customer, t.id, t.reason, t.start, t.end).where(_in(t.customer, ids))
    return _grouped(query, _by_customer(Hold))


def _by_customer(cls: type):
    """Build `cls(id, customer_id, *rest)` from a `(customer_id, id, *rest)` row."""
    return lambda customer_id, record_id, *rest: cls(record_id, customer_id, *rest)


def iter_open_customer_ids(
    batch_size: int = 500,
    *,
    as_of: date | None = None,
    after: str | None = None,
    chunk: int = PLAN_CHUNK,
) -> Iterator[list[str]]:
    """Ids of the customers the nightly run evaluates, in id order, in lists of `batch_size`.

    A customer is included when it may have an open invoice, has an active payment plan, or
    its latest agency contact is a placement. "May have an open invoice" errs on the side of
    inclusion: an invoice counts as covered only by its credit notes, its allocations and
    payments without any allocation (dated on or before `as_of` when given); so no customer
    with an open invoice is left out, and a customer with nothing open costs one evaluation.
    `after` resumes after that id.

    The customer table is walked in ranges of `chunk` ids (keyset pagination on its primary
    key), each range asked for its open customers on its own: memory stays the same whatever
    the size of the portfolio. Ranges follow the database's order of ids and every id falls
    in exactly one range, so no customer is listed twice or left out.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    pending: list[str] = []
    for low, high in _id_ranges(after, chunk):
        pending += sorted(
            _open_by_balance(as_of, low, high) | _on_plan(low, high) | _in_agency(low, high)
        )
        while len(pending) >= batch_size:
            yield pending[:batch_size]
            del pending[:batch_size]
    if pending:
        yield pending


def _id_ranges(after: str | None, size: int) -> Iterator[tuple[str | None, str | None]]:
    """Consecutive ranges (low, high] of `size` customer ids each, from `after` on; None is
    unbounded (the last range has no upper bound, so an id beyond the table's is covered)."""
    c = m.Customer
    low = after
    while True:
        query = c.select(c.id).order_by(c.id).offset(size - 1).limit(1)
        if low is not None:
            query = query.where(c.id > low)
        high = query.scalar()
        yield low, high
        if high is None:
            return
        low = high


def _in_range(column: pw.Field, low: str | None, high: str | None) -> pw.Expression:
    """`column` in (low, high], None meaning unbounded."""
    condition = pw.Value(True)
    if low is not None:
        condition = column > low
    if high is not None:
        condition = (column <= high) if low is None else condition & (column <= high)
    return condition


def _open_by_balance(as_of: date | None, low: str | None, high: str | None) -> set[str]:
    inv, cn, al, pay = m.Invoice, m.CreditNote, m.PaymentAllocation, m.Payment
    # A credit note's or allocation's invoice belongs to the customer of the note or payment
    # (storage.upsert checks it), so each table is read by its own customer index.
    credited = cn.select(cn.invoice, pw.fn.SUM(cn.amount).alias("total")).where(
        _in_range(cn.customer, low, high)
    )
    allocated = (
        al.select(al.invoice, pw.fn.SUM(al.amount).alias("total"))
        .join(pay)
        .where(_in_range(pay.customer, low, high))
    )
    if as_of is not None:
        credited = credited.where(cn.date <= as_of)
        allocated = allocated.where(pay.date <= as_of)
    credited = credited.group_by(cn.invoice).alias("credited")
    allocated = allocated.group_by(al.invoice).alias("allocated")
    remaining = (
        inv.amount - pw.fn.COALESCE(credited.c.total, 0) - pw.fn.COALESCE(allocated.c.total, 0)
    )
    owed = (
        inv.select(
            inv.customer.alias("customer_id"),
            pw.fn.SUM(pw.Case(None, [(remaining > 0, remaining)], 0)).alias("owed"),
        )
        .join(credited, pw.JOIN.LEFT_OUTER, on=(credited.c.invoice_id == inv.id))
        .join_from(inv, allocated, pw.JOIN.LEFT_OUTER, on=(allocated.c.invoice_id == inv.id))
        .where(_in_range(inv.customer, low, high))
        .group_by(inv.customer)
    )
    unallocated = pay.select(pay.customer, pw.fn.SUM(pay.amount).alias("paid")).where(
        _in_range(pay.customer, low, high)
        & ~pw.fn.EXISTS(al.select(al.id).where(al.payment == pay.id))
    )
    if as_of is not None:
        unallocated = unallocated.where(pay.date <= as_of)
    owed_by: dict[str, Any] = dict(owed.tuples().iterator())
    for customer_id, paid in unallocated.group_by(pay.customer).tuples().iterator():
        if customer_id in owed_by:
            owed_by[customer_id] -= paid
    # SQLite sums money as floats: half a cent absorbs their rounding.
    # A NaN (a broken row) counts as open: the run then records the account's error.
    return {
        cid
        for cid, value in owed_by.items()
        if value is not None and (value != value or value > 0.005)
    }


def _on_plan(low: str | None, high: str | None) -> set[str]:
    p = m.PaymentPlan
    query = p.select(p.customer).where((p.status == "active") & _in_range(p.customer, low, high))
    return {c for (c,) in query.distinct().tuples().iterator()}


def _in_agency(low: str | None, high: str | None) -> set[str]:
    c = m.Contact
    query = (
        c.select(c.customer, c.type, pw.fn.MAX(c.date))
        .where(c.type.in_(("agency_placement", "agency_recall")) & _in_range(c.customer, low, high))
        .group_by(c.customer, c.type)
    )
    placed: dict[str, date] = {}
    recalled: dict[str, date] = {}
    for customer_id, kind, day in query.tuples().iterator():
        (placed if kind == "agency_placement" else recalled)[customer_id] = day
    # A placement and a recall on the same day: include (evaluating once too often is harmless).
    return {cid for cid, day in placed.items() if cid not in recalled or day >= recalled[cid]}
