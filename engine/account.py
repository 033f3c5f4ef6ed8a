"""A customer's ledger read as of a date: who paid what, what is still owed, what is late.

`Account` does the arithmetic that several facts share, once per derivation (engine.facts reads
it). The rules, chosen as a credit controller reads an account:

- Scope: invoices issued after as_of, payments and credit notes dated after it, and promises made
  after it do not exist yet. Payments and credit notes with a non-positive amount are ignored.
- Settlement: credit notes and payments are applied in date order (on one day credit notes first,
  then by id). A credit note reduces its own invoice (an excess is ignored). A payment's allocations
  settle their invoices; what a payment does not settle that way (no allocations, an allocation over
  the invoice's unpaid amount or to an invoice not in scope) settles open invoices oldest due date
  first (then issue date, then id), including invoices issued after the payment (a prepayment).
  Money left once every invoice is settled is unapplied cash and reduces nothing. An invoice is
  *settled* on the date of the event that brings its unpaid amount to zero.
- An invoice is open while amount − paid − credited > 0, overdue when its due date is before as_of;
  days past due = (as_of − due_date).days; aging buckets are 1–30, 31–60, 61–90 and 91+ days.
- A dispute is open on as_of when opened <= as_of and it is unresolved or resolved after as_of.
  Disputed invoices count in balances, buckets and counts, but not in days_past_due.
- "The last 12 months" are the 365 days ending on as_of (as_of − 364 … as_of).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property

from engine.ledger import Contact, Dispute, Installment, Invoice, Ledger

ZERO = Decimal(0)
YEAR_DAYS = 365
PLAN_LOOKBACK = timedelta(days=30)


def _open_on(dispute: Dispute, day: date) -> bool:
    """A dispute is open on a day from its opening until the day before it is resolved."""
    return dispute.opened <= day and (dispute.resolved is None or dispute.resolved > day)


def _due_order(invoice: Invoice) -> tuple[date, date, str]:
    return (invoice.due_date, invoice.issue_date, invoice.id)


class Account:
    """One customer's ledger as of `as_of`; balances are computed on construction, the rest lazily.

    Attributes: `invoices` (in scope, oldest due first), `payments` (in scope, by date), `unpaid`
    (invoice id → amount still owed), `settled_on` (invoice id → settlement date), `open_balance`,
    `overdue_balance`, `buckets` (the four aging buckets), `disputed_amount`,
    `undisputed_overdue_balance`, `days_past_due`, `invoices_open`, `invoices_overdue`,
    `days_until_next_due` (None when nothing is coming due).
    """

    def __init__(self, ledger: Ledger, as_of: date):
        self.ledger = ledger
        self.customer = ledger.customer
        self.as_of = as_of
        self.invoices = sorted(
            (i for i in ledger.invoices if i.issue_date <= as_of), key=_due_order
        )
        self.payments = sorted(
            (p for p in ledger.payments if p.date <= as_of and p.amount > 0),
            key=lambda p: (p.date, p.id),
        )
        self.unpaid = {inv.id: inv.amount for inv in self.invoices}
        self.settled_on: dict[str, date] = {}
        self._settle()
        self._aggregate()

    def in_last_year(self, day: date) -> bool:
        """Whether `day` falls in the 365 days ending on as_of."""
        return 0 <= (self.as_of - day).days < YEAR_DAYS

    def _apply(self, invoice: Invoice, amount: Decimal, day: date) -> Decimal:
        """Settle up to `amount` of `invoice` on `day`; return what is left of `amount`."""
        owed = self.unpaid[invoice.id]
        if owed <= 0:
            return amount
        if amount < owed:
            self.unpaid[invoice.id] = owed - amount
            return ZERO
        self.unpaid[invoice.id] = ZERO
        self.settled_on[invoice.id] = day
        return amount - owed

    def _settle(self) -> None:
        invoices = self.invoices
        by_id = {inv.id: inv for inv in invoices}
        events: list[tuple] = [
            (n.date, 0, n.id, n) for n in self.ledger.credit_notes if n.date <= self.as_of
        ]
        events += [(p.date, 1, p.id, p) for p in self.payments]
        events.sort(key=lambda e: e[:3])
        first_open = 0  # every invoice before this index is settled (unpaid never grows again)
        for day, kind, _, record in events:
            if kind == 0:
                invoice = by_id.get(record.invoice_id)
                if invoice is not None and record.amount > 0:
                    self._apply(invoice, record.amount, day)
                continue
            rest = record.amount
            for allocation in record.allocations:
                share = min(allocation.amount, rest)
                invoice = by_id.get(allocation.invoice_id)
                if share > 0 and invoice is not None:
                    rest -= share - self._apply(invoice, share, day)
            while rest > 0 and first_open < len(invoices):
                rest = self._apply(invoices[first_open], rest, day)
                if self.unpaid[invoices[first_open].id] <= 0:
                    first_open += 1

    def _aggregate(self) -> None:
        """One pass over open invoices for balances, buckets, counts and due dates."""
        as_of, disputed_ids = self.as_of, self.disputed_invoice_ids
        self.open_balance = self.overdue_balance = self.disputed_amount = ZERO
        self.undisputed_overdue_balance = ZERO
        self.buckets = [ZERO, ZERO, ZERO, ZERO]
        self.days_past_due = self.invoices_open = self.invoices_overdue = 0
        self.days_until_next_due: int | None = None
        for inv in self.invoices:
            owed = self.unpaid[inv.id]
            if owed <= 0:
                continue
            self.invoices_open += 1
            self.open_balance += owed
            disputed = inv.id in disputed_ids
            if disputed:
                self.disputed_amount += owed
            days = (as_of - inv.due_date).days
            if days <= 0:
                if self.days_until_next_due is None or -days < self.days_until_next_due:
                    self.days_until_next_due = -days
                continue
            self.invoices_overdue += 1
            self.overdue_balance += owed
            self.buckets[0 if days <= 30 else 1 if days <= 60 else 2 if days <= 90 else 3] += owed
            if not disputed:
                self.undisputed_overdue_balance += owed
                self.days_past_due = max(self.days_past_due, days)

    @cached_property
    def disputed_invoice_ids(self) -> set[str]:
        """Ids of invoices with a dispute open on as_of."""
        return {d.invoice_id for d in self.ledger.disputes if _open_on(d, self.as_of)}

    @cached_property
    def oldest_dispute_opened(self) -> date | None:
        """When the oldest dispute open on as_of on an invoice still owed was opened."""
        owed = {i for i, amount in self.unpaid.items() if amount > 0}
        opened = [
            d.opened
            for d in self.ledger.disputes
            if d.invoice_id in owed and _open_on(d, self.as_of)
        ]
        return min(opened, default=None)

    @cached_property
    def invoices_paid_12m(self) -> int:
        """Invoices settled (by payments or credit notes) in the last 12 months, late or not."""
        return sum(1 for day in self.settled_on.values() if self.in_last_year(day))

    @cached_property
    def late_days(self) -> list[int]:
        """Days late of each invoice settled in the last 12 months after its due date."""
        late = []
        for inv in self.invoices:
            settled = self.settled_on.get(inv.id)
            if settled is not None and settled > inv.due_date and self.in_last_year(settled):
                late.append((settled - inv.due_date).days)
        return late

    @cached_property
    def active_promise(self) -> bool:
        """A promise made on or before as_of whose date is on or after as_of (not broken yet,
        whether or not it is already kept)."""
        as_of = self.as_of
        return any(p.made_on <= as_of <= p.date for p in self.ledger.promises)

    @cached_property
    def broken_promise_dates(self) -> list[date]:
        """Dates of promises broken by as_of: the date is before as_of and payments dated from
        made_on to the date (inclusive) do not add up to the amount."""
        broken = []
        for promise in self.ledger.promises:
            if promise.date >= self.as_of or promise.made_on > self.as_of:
                continue
            start, end = promise.made_on, promise.date
            paid = sum((p.amount for p in self.payments if start <= p.date <= end), ZERO)
            if paid < promise.amount:
                broken.append(promise.date)
        return broken

    @cached_property
    def plan_missed_installments(self) -> int:
        """How many installments of active plans are missed (see missed_installments)."""
        return len(self.missed_installments)

    @cached_property
    def missed_installments(self) -> list[Installment]:
        """Installments of active plans due before as_of that payments do not cover.

        Payments dated from 30 days before the first installment's due date up to as_of form one
        pool, applied to installments in due order; an installment is paid when the pool covers
        it in full, so a late catch-up payment cures earlier misses. Several active plans are read
        as one schedule.
        """
        installments = sorted(
            (
                i
                for plan in self.ledger.payment_plans
                if plan.status == "active"
                for i in plan.installments
            ),
            key=lambda i: i.due_date,
        )
        if not installments:
            return []
        start = installments[0].due_date - PLAN_LOOKBACK
        pool = sum((p.amount for p in self.payments if p.date >= start), ZERO)
        missed = []
        for installment in installments:
            if installment.due_date >= self.as_of:
                break
            if pool >= installment.amount:
                pool -= installment.amount
            else:
                missed.append(installment)
                pool = ZERO
        return missed

    @cached_property
    def last_reminder(self) -> Contact | None:
        """The latest reminder dated on or before as_of (ties: the greatest id)."""
        reminders = [
            c for c in self.ledger.contacts if c.type == "reminder" and c.date <= self.as_of
        ]
        return max(reminders, key=lambda c: (c.date, c.id)) if reminders else None
