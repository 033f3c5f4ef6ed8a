"""Facts derived from hand-worked ledgers (SPEC §3), and facts given directly (check_facts).

Every expected figure is worked out in the comments beside it. 2024 is a leap year: February has
29 days, so e.g. Feb 10 → Mar 15 is 19 + 15 = 34 days.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from engine.errors import FactError
from engine.facts import FACTS, check_facts, derive_facts, fact_catalogue_markdown
from engine.ledger import (
    Allocation,
    Contact,
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

D = Decimal
AS_OF = date(2024, 3, 15)
SPEC_TABLE = [
    ("customer_id", "str"),
    ("segment", "str"),
    ("country", "str"),
    ("tenure_months", "int"),
    ("credit_limit", "money"),
    ("credit_score", "int"),
    ("open_balance", "money"),
    ("overdue_balance", "money"),
    ("overdue_1_30", "money"),
    ("overdue_31_60", "money"),
    ("overdue_61_90", "money"),
    ("overdue_90_plus", "money"),
    ("days_past_due", "int"),
    ("invoices_open", "int"),
    ("invoices_overdue", "int"),
    ("days_until_next_due", "int"),
    ("utilization", "float"),
    ("disputed_amount", "money"),
    ("has_open_dispute", "bool"),
    ("undisputed_overdue_balance", "money"),  # beyond SPEC §3: disputes per invoice
    ("oldest_dispute_days", "int"),  # beyond SPEC §3
    ("on_payment_plan", "bool"),
    ("plan_missed_installments", "int"),
    ("has_active_promise", "bool"),
    ("promises_broken_12m", "int"),
    ("late_payments_12m", "int"),
    ("invoices_paid_12m", "int"),  # beyond SPEC §3: no history is its own risk band
    ("avg_days_late_12m", "float"),
    ("days_since_last_payment", "int"),
    ("last_reminder_tone", "str"),
    ("days_since_last_reminder", "int"),
    ("in_agency", "bool"),
    ("on_hold", "bool"),
    ("days_since_broken_promise", "int"),
    ("requested_amount", "money"),
    ("new_exposure", "money"),
    ("requested_limit", "money"),  # beyond SPEC §3: a limit asked for, given only
]
# Always derived, but a complete fact set given directly may leave them out (item 9).
NOT_REQUIRED = {"undisputed_overdue_balance", "invoices_paid_12m"}
OPTIONAL = {
    "oldest_dispute_days",
    "requested_limit",
    "credit_score",
    "days_until_next_due",
    "days_since_last_payment",
    "days_since_last_reminder",
    "days_since_broken_promise",
}


def d(text: str) -> date:
    return date.fromisoformat(text)


def inv(id: str, due: str, amount: str, issued: str | None = None) -> Invoice:
    """An invoice due on `due`, issued 30 days earlier unless told."""
    issue = d(issued) if issued else d(due) - timedelta(days=30)
    return Invoice(id, "C1", issue, d(due), D(amount))


def pay(id: str, day: str, amount: str, *allocations: tuple[str, str]) -> Payment:
    allocs = tuple(Allocation(i, D(a)) for i, a in allocations)
    return Payment(id, "C1", d(day), D(amount), allocs)


def ledger(limit: str = "1000", since: str = "2020-01-01", **records) -> Ledger:
    customer = Customer("C1", "Acme", "EUR", D(limit), d(since), "smb", "DE", None)
    return Ledger(customer, **{k: tuple(v) for k, v in records.items()})


def facts(led: Ledger, as_of: date = AS_OF, **kw) -> dict[str, object]:
    return derive_facts(led, as_of, **kw)


# --- the catalogue -----------------------------------------------------------------------------


def test_catalogue_is_the_spec_table_in_order():
    assert [(s.name, s.type) for s in FACTS.values()] == SPEC_TABLE
    assert {s.name for s in FACTS.values() if s.optional} == OPTIONAL
    assert {s.name for s in FACTS.values() if not s.required} == OPTIONAL | NOT_REQUIRED


def test_every_fact_has_a_description():
    for spec in FACTS.values():
        assert spec.description.strip(), spec.name


def test_derive_returns_only_catalogue_names_in_catalogue_order():
    bare = facts(ledger())
    assert list(bare) == [n for n in FACTS if n not in OPTIONAL]
    full = facts(_busy_ledger(), d("2024-03-20"))
    assert list(full) == [n for n in FACTS if n in full]
    # this ledger has every optional fact but a score, a dispute and a requested limit
    assert OPTIONAL - {"credit_score", "oldest_dispute_days", "requested_limit"} <= set(full)


def test_money_facts_are_decimals_with_two_places():
    result = facts(_busy_ledger(), d("2024-03-20"))
    for name, spec in FACTS.items():
        if spec.type == "money" and name != "requested_limit":  # given only, never derived
            assert isinstance(result[name], Decimal) and result[name].as_tuple().exponent == -2


def test_markdown_table_lists_every_fact():
    text = fact_catalogue_markdown()
    lines = text.strip().splitlines()
    assert lines[0] == "| fact | type | may be absent | meaning |"
    assert len(lines) == 2 + len(FACTS)
    assert "| `credit_score` | int | yes |" in text
    assert "| `days_past_due` | int | no | Days past due of the oldest" in text


# --- customer record ---------------------------------------------------------------------------


def test_customer_id_segment_country_and_defaults():
    result = facts(ledger())
    assert (result["customer_id"], result["segment"], result["country"]) == ("C1", "smb", "DE")
    plain = Ledger(Customer("C9", "Bare", "EUR", D("0"), d("2024-01-01")))
    assert (facts(plain)["segment"], facts(plain)["country"]) == ("", "")


def test_credit_limit_and_score():
    assert facts(ledger(limit="2500.5"))["credit_limit"] == D("2500.50")
    assert "credit_score" not in facts(ledger())  # the ERP sent no score: absent
    scored = Ledger(Customer("C1", "Acme", "EUR", D(1), d("2020-01-01"), credit_score=712))
    assert facts(scored)["credit_score"] == 712


@pytest.mark.parametrize(
    ("since", "as_of", "months"),
    [
        ("2024-01-31", "2024-02-29", 1),  # Jan 31 + 1 month clamps to Feb 29 (leap year)
        ("2024-01-31", "2024-02-28", 0),  # ... which has not come yet on Feb 28
        ("2023-01-31", "2023-02-28", 1),  # Feb 28 is February's last day in 2023
        ("2024-02-29", "2024-03-28", 0),  # from Feb 29: one month is Mar 29
        ("2024-02-29", "2024-03-29", 1),
        ("2024-02-29", "2025-02-28", 12),  # 12 months later clamps to Feb 28 2025
        ("2024-03-31", "2024-04-30", 1),  # April has no 31st: Apr 30 ends the month
        ("2020-01-15", "2024-01-14", 47),  # 48 months would be Jan 15 2024
        ("2020-01-15", "2024-01-15", 48),
        ("2024-03-15", "2024-03-15", 0),
        ("2024-05-01", "2024-03-15", 0),  # since after as_of
    ],
)
def test_tenure_months(since, as_of, months):
    assert facts(ledger(since=since), d(as_of))["tenure_months"] == months


# --- balances, aging, settlement ---------------------------------------------------------------


def test_partial_unallocated_payment_settles_oldest_due_first():
    # A 100 due Jan 10, B 200 due Feb 10, C 300 due Mar 20; as_of Mar 15.
    # Payment Feb 1 of 150 without allocations: A 100 (settled), then B 50 → B owes 150.
    led = ledger(
        invoices=[
            inv("C", "2024-03-20", "300"),
            inv("A", "2024-01-10", "100"),
            inv("B", "2024-02-10", "200"),
        ],
        payments=[pay("P1", "2024-02-01", "150")],
    )
    result = facts(led)
    assert result["open_balance"] == D("450.00")  # B 150 + C 300
    assert result["overdue_balance"] == D("150.00")  # B only: C is due after as_of
    assert result["days_past_due"] == 34  # B: Feb 10 → Mar 15 = 19 + 15
    assert result["overdue_31_60"] == D("150.00")
    assert result["overdue_1_30"] == result["overdue_61_90"] == result["overdue_90_plus"] == 0
    assert (result["invoices_open"], result["invoices_overdue"]) == (2, 1)
    assert result["days_until_next_due"] == 5  # C: Mar 15 → Mar 20


def test_same_due_date_settles_by_issue_date_then_id():
    # X and Y both due Mar 1; Y issued earlier → Y is settled first by the 100 paid.
    led = ledger(
        invoices=[
            inv("X", "2024-03-01", "100", issued="2024-02-01"),
            inv("Y", "2024-03-01", "100", issued="2024-01-15"),
        ],
        payments=[pay("P1", "2024-03-02", "100")],
    )
    assert facts(led)["late_payments_12m"] == 1  # Y settled Mar 2, one day late; X still open
    assert facts(led)["open_balance"] == D("100.00")


def test_allocations_then_remainder_oldest_first():
    # A 100 due Jan 10, B 200 due Feb 10, C 300 due Mar 20. Payment Mar 1 of 500 allocated:
    # C 300 (settles C), "NOPE" 50 (unknown invoice → remainder); remainder 500 − 300 = 200
    # goes oldest first: A 100 (settled), B 100 → B owes 100.
    led = ledger(
        invoices=[
            inv("A", "2024-01-10", "100"),
            inv("B", "2024-02-10", "200"),
            inv("C", "2024-03-20", "300"),
        ],
        payments=[pay("P1", "2024-03-01", "500", ("C", "300"), ("NOPE", "50"))],
    )
    result = facts(led)
    assert result["open_balance"] == D("100.00")
    assert result["days_past_due"] == 34  # B is the oldest open invoice
    assert "days_until_next_due" not in result  # C, the only invoice not yet due, is settled


def test_allocation_above_unpaid_spills_to_oldest():
    # A 100, B 200. Payment of 250 allocated entirely to B (owes 200): 50 left → A owes 50.
    led = ledger(
        invoices=[inv("A", "2024-01-10", "100"), inv("B", "2024-02-10", "200")],
        payments=[pay("P1", "2024-02-15", "250", ("B", "250"))],
    )
    result = facts(led)
    assert result["open_balance"] == D("50.00")
    assert result["days_past_due"] == 65  # A: Jan 10 → Mar 15 = 21 + 29 + 15


def test_overpayment_never_makes_a_balance_negative():
    led = ledger(
        invoices=[inv("A", "2024-01-10", "100"), inv("B", "2024-02-10", "200")],
        payments=[pay("P1", "2024-02-01", "1000")],  # 700 more than owed: unapplied cash
    )
    result = facts(led)
    assert result["open_balance"] == D("0.00")
    assert (result["invoices_open"], result["days_past_due"]) == (0, 0)


def test_prepayment_settles_an_invoice_issued_later():
    # 300 paid Jan 2; A 100 (issued Jan 5, due Feb 4) and B 250 (issued Feb 1, due Mar 2) come
    # later: A is settled, B owes 250 − 200 = 50, 13 days past due (Mar 2 → Mar 15); nothing
    # was paid late (A was settled before it was even issued).
    led = ledger(
        invoices=[inv("A", "2024-02-04", "100"), inv("B", "2024-03-02", "250")],
        payments=[pay("P1", "2024-01-02", "300")],
    )
    result = facts(led)
    assert (result["open_balance"], result["days_past_due"]) == (D("50.00"), 13)
    assert result["late_payments_12m"] == 0


def test_credit_notes_reduce_their_own_invoice():
    # A 500 due Jan 10, B 300 due Feb 10. Credit note 120 on B (not the oldest), payment of 200
    # unallocated → A. A owes 500 − 200 = 300; B owes 300 − 120 = 180.
    # A second credit note of 999 on a fully paid invoice Z changes nothing.
    led = ledger(
        invoices=[
            inv("A", "2024-01-10", "500"),
            inv("B", "2024-02-10", "300"),
            inv("Z", "2024-01-01", "50"),
        ],
        payments=[pay("P0", "2023-12-20", "50", ("Z", "50")), pay("P1", "2024-02-20", "200")],
        credit_notes=[
            CreditNote("N1", "C1", "B", d("2024-02-12"), D("120")),
            CreditNote("N2", "C1", "Z", d("2024-02-12"), D("999")),
        ],
    )
    result = facts(led)
    assert result["open_balance"] == D("480.00")  # 300 + 180
    assert result["overdue_61_90"] == D("300.00")  # A: 65 days past due
    assert result["overdue_31_60"] == D("180.00")  # B: 34 days past due


def test_credit_note_applies_before_a_payment_on_the_same_day():
    # A 100 due Jan 10, B 100 due Feb 10. On Mar 1: credit note 100 on A, payment 100 unallocated.
    # Credit note first settles A, so the payment settles B: nothing is owed.
    led = ledger(
        invoices=[inv("A", "2024-01-10", "100"), inv("B", "2024-02-10", "100")],
        payments=[pay("P1", "2024-03-01", "100")],
        credit_notes=[CreditNote("N1", "C1", "A", d("2024-03-01"), D("100"))],
    )
    assert facts(led)["open_balance"] == D("0.00")


def test_records_after_as_of_are_ignored():
    # A 100 due Jan 10 is still owed on Mar 15: the payment and credit note come later.
    # Invoice L is issued Mar 20, after as_of: it does not exist yet.
    led = ledger(
        invoices=[
            inv("A", "2024-01-10", "100"),
            inv("L", "2024-04-20", "900", issued="2024-03-20"),
        ],
        payments=[pay("P1", "2024-03-16", "100")],
        credit_notes=[CreditNote("N1", "C1", "A", d("2024-03-16"), D("50"))],
    )
    result = facts(led)
    assert result["open_balance"] == D("100.00")
    assert result["invoices_open"] == 1
    assert "days_since_last_payment" not in result
    assert "days_until_next_due" not in result


@pytest.mark.parametrize(
    ("due", "bucket"),
    [
        ("2024-03-14", "overdue_1_30"),  # 1 day
        ("2024-02-14", "overdue_1_30"),  # 30 days: Feb 14 → Mar 15 = 15 + 15
        ("2024-02-13", "overdue_31_60"),  # 31
        ("2024-01-15", "overdue_31_60"),  # 60: 16 + 29 + 15
        ("2024-01-14", "overdue_61_90"),  # 61
        ("2023-12-16", "overdue_61_90"),  # 90: 15 + 31 + 29 + 15
        ("2023-12-15", "overdue_90_plus"),  # 91
    ],
)
def test_aging_bucket_boundaries(due, bucket):
    result = facts(ledger(invoices=[inv("A", due, "75")]))
    assert result[bucket] == D("75.00")
    assert result["overdue_balance"] == D("75.00")
    buckets = ("overdue_1_30", "overdue_31_60", "overdue_61_90", "overdue_90_plus")
    assert sum(result[b] for b in buckets) == D("75.00")


def test_invoice_due_on_leap_day_is_one_day_past_due_on_march_first():
    led = ledger(invoices=[inv("A", "2024-02-29", "40")])
    result = facts(led, d("2024-03-01"))
    assert (result["days_past_due"], result["overdue_1_30"]) == (1, D("40.00"))
    on_the_day = facts(led, d("2024-02-29"))  # due today: not overdue, due in 0 days
    assert (on_the_day["days_past_due"], on_the_day["invoices_overdue"]) == (0, 0)
    assert on_the_day["days_until_next_due"] == 0
    assert facts(led, d("2024-02-28"))["days_until_next_due"] == 1


def test_disputed_invoice_counts_in_balances_but_not_days_past_due():
    # A 100 due Jan 10 (65 days) disputed since Feb 1; B 50 due Mar 5 (10 days) undisputed.
    # A dispute on C (settled) and one resolved before as_of on B do not count.
    led = ledger(
        invoices=[
            inv("A", "2024-01-10", "100"),
            inv("B", "2024-03-05", "50"),
            inv("C", "2024-01-01", "10"),
        ],
        payments=[pay("P1", "2024-01-01", "10", ("C", "10"))],
        disputes=[
            Dispute("D1", "A", d("2024-02-01")),
            Dispute("D2", "C", d("2024-02-01")),
            Dispute("D3", "B", d("2024-03-06"), resolved=d("2024-03-10")),
        ],
    )
    result = facts(led)
    assert result["days_past_due"] == 10  # B; A is disputed
    assert result["open_balance"] == result["overdue_balance"] == D("150.00")
    assert result["overdue_61_90"] == D("100.00")  # A still ages
    assert (result["invoices_open"], result["invoices_overdue"]) == (2, 2)
    assert result["disputed_amount"] == D("100.00")
    assert result["has_open_dispute"] is True
    assert result["undisputed_overdue_balance"] == D("50.00")  # B: what reminders may chase
    assert result["oldest_dispute_days"] == 43  # D1 on A, open since Feb 1 (D2's C is paid)


def test_undisputed_overdue_and_oldest_dispute_follow_partial_payments_and_resolutions():
    # as_of Mar 15. A 5000 due Feb 14 (30 days), 1000 paid; B 150 due Feb 1, disputed Feb 10;
    # C 70 due Feb 20, disputed Mar 1 and resolved Mar 10; D 40 not yet due, disputed Mar 12.
    led = ledger(
        invoices=[
            inv("A", "2024-02-14", "5000"),
            inv("B", "2024-02-01", "150"),
            inv("C", "2024-02-20", "70"),
            inv("D", "2024-03-30", "40"),
        ],
        payments=[pay("P1", "2024-03-01", "1000", ("A", "1000"))],
        disputes=[
            Dispute("X1", "B", d("2024-02-10")),
            Dispute("X2", "C", d("2024-03-01"), resolved=d("2024-03-10")),
            Dispute("X3", "D", d("2024-03-12")),
        ],
    )
    result = facts(led)
    assert result["overdue_balance"] == D("4220.00")
    assert result["undisputed_overdue_balance"] == D("4070.00")  # A's 4000 and C's 70
    assert result["disputed_amount"] == D("190.00")  # B and D (not yet due)
    assert result["oldest_dispute_days"] == 34  # X1
    assert result["days_past_due"] == 30
    no_dispute = facts(ledger(invoices=[inv("A", "2024-02-14", "80")]))
    assert no_dispute["undisputed_overdue_balance"] == no_dispute["overdue_balance"] == D("80.00")
    assert "oldest_dispute_days" not in no_dispute


@pytest.mark.parametrize(
    ("opened", "resolved", "is_open"),
    [
        ("2024-03-15", None, True),  # opened on as_of
        ("2024-03-16", None, False),  # opened after as_of
        ("2024-02-01", "2024-03-15", False),  # resolved on as_of
        ("2024-02-01", "2024-03-16", True),  # resolved after as_of
    ],
)
def test_dispute_open_on_as_of(opened, resolved, is_open):
    dispute = Dispute("D1", "A", d(opened), d(resolved) if resolved else None)
    led = ledger(invoices=[inv("A", "2024-02-14", "80")], disputes=[dispute])
    result = facts(led)
    assert result["has_open_dispute"] is is_open
    assert result["disputed_amount"] == (D("80.00") if is_open else D("0.00"))
    assert result["days_past_due"] == (0 if is_open else 30)


@pytest.mark.parametrize(
    ("limit", "balance", "expected"),
    [
        ("1000", "450", 0.45),
        ("3000", "1000", 0.3333),  # 1/3 rounded to 4 decimals
        ("0", "0", 0.0),
        ("0", "10", 999.0),  # no limit, something owed: a large finite value
        ("100", "250", 2.5),
    ],
)
def test_utilization(limit, balance, expected):
    invoices = [inv("A", "2024-04-01", balance)] if D(balance) else []
    assert facts(ledger(limit=limit, invoices=invoices))["utilization"] == expected


# --- payment history ---------------------------------------------------------------------------


def test_late_payments_and_average_days_late():
    # as_of Mar 15. A 300 due Jan 10: 100 on Jan 5, 200 on Jan 20 → settled Jan 20, 10 days late.
    # B 100 due Feb 10, paid Feb 5: on time. C 100 due Mar 1, credited in full Mar 11: 10 days
    # late. D 100 due Feb 1, paid Mar 1: 29 days late. E due 2023-01-10, paid 2023-02-09: 30 days
    # late, but more than 365 days before as_of. F 100 due Mar 1, half paid: not settled.
    led = ledger(
        invoices=[
            inv("A", "2024-01-10", "300"),
            inv("B", "2024-02-10", "100"),
            inv("C", "2024-03-01", "100"),
            inv("D", "2024-02-01", "100"),
            inv("E", "2023-01-10", "100"),
            inv("F", "2024-03-01", "100"),
        ],
        payments=[
            pay("P0", "2023-02-09", "100", ("E", "100")),
            pay("P1", "2024-01-05", "100", ("A", "100")),
            pay("P2", "2024-01-20", "200", ("A", "200")),
            pay("P3", "2024-02-05", "100", ("B", "100")),
            pay("P4", "2024-03-01", "100", ("D", "100")),
            pay("P5", "2024-03-02", "50", ("F", "50")),
        ],
        credit_notes=[CreditNote("N1", "C1", "C", d("2024-03-11"), D("100"))],
    )
    result = facts(led)
    assert result["late_payments_12m"] == 3  # A, C, D
    assert result["avg_days_late_12m"] == 16.33  # (10 + 10 + 29) / 3 = 16.333…
    assert result["open_balance"] == D("50.00")  # F
    assert result["invoices_paid_12m"] == 4  # A, B, C, D settled in 12 months; E too long ago
    assert facts(ledger())["avg_days_late_12m"] == 0.0
    assert facts(ledger())["invoices_paid_12m"] == 0  # no payment history


def test_late_payment_window_is_the_365_days_ending_on_as_of():
    # Settled 2023-03-17: as_of − 364 days → counts. Settled 2023-03-16 (365 days back) → not.
    for paid_on, counted in (("2023-03-17", 1), ("2023-03-16", 0)):
        led = ledger(invoices=[inv("A", "2023-03-01", "10")], payments=[pay("P", paid_on, "10")])
        assert facts(led)["late_payments_12m"] == counted


def test_days_since_last_payment():
    led = ledger(
        payments=[
            pay("P1", "2024-02-10", "5"),
            pay("P2", "2024-03-01", "5"),
            pay("P3", "2024-03-20", "5"),
        ]
    )
    assert facts(led)["days_since_last_payment"] == 14  # Mar 1; the Mar 20 payment is later
    assert "days_since_last_payment" not in facts(ledger())


# --- promises ----------------------------------------------------------------------------------


def test_promise_kept_broken_and_active():
    # as_of Mar 31 2024.
    # K: made Mar 1 for Mar 10, 300: payments Mar 5 200 + Mar 10 100 = 300 → kept.
    # B: made Feb 1 for Feb 15, 300: only Feb 10 200 in its window (Feb 16 is late) → broken.
    # A: made Mar 20 for Apr 5 → active. F: made Apr 2, after as_of → does not exist yet.
    led = ledger(
        payments=[
            pay("P1", "2024-02-10", "200"),
            pay("P2", "2024-02-16", "100"),
            pay("P3", "2024-03-05", "200"),
            pay("P4", "2024-03-10", "100"),
        ],
        promises=[
            Promise("K", "C1", d("2024-03-01"), d("2024-03-10"), D("300")),
            Promise("B", "C1", d("2024-02-01"), d("2024-02-15"), D("300")),
            Promise("A", "C1", d("2024-03-20"), d("2024-04-05"), D("500")),
            Promise("F", "C1", d("2024-04-02"), d("2024-04-09"), D("500")),
        ],
    )
    result = facts(led, d("2024-03-31"))
    assert result["has_active_promise"] is True
    assert result["promises_broken_12m"] == 1
    assert result["days_since_broken_promise"] == 45  # Feb 15 → Mar 31 = 14 + 31


def test_promise_due_on_as_of_is_active_not_broken():
    led = ledger(promises=[Promise("A", "C1", d("2024-03-01"), AS_OF, D("100"))])
    result = facts(led)
    assert result["has_active_promise"] is True
    assert result["promises_broken_12m"] == 0
    assert "days_since_broken_promise" not in result
    later = facts(led, AS_OF + timedelta(days=1))  # the day after, with nothing paid: broken
    assert (later["has_active_promise"], later["promises_broken_12m"]) == (False, 1)
    assert later["days_since_broken_promise"] == 1


def test_promises_broken_12m_window_and_most_recent_broken():
    # Broken promises dated 2023-03-17 (364 days before as_of, counts), 2023-03-16 (365, not),
    # and 2022-01-10. days_since_broken_promise reads the most recent: 364.
    promises = [
        Promise(p, "C1", day - timedelta(days=5), day, D("10"))
        for p, day in (("P1", d("2023-03-17")), ("P2", d("2023-03-16")), ("P3", d("2022-01-10")))
    ]
    result = facts(ledger(promises=promises))
    assert result["promises_broken_12m"] == 1
    assert result["days_since_broken_promise"] == 364
    assert result["has_active_promise"] is False


# --- payment plans -----------------------------------------------------------------------------


def _plan(status: str = "active") -> PaymentPlan:
    dues = ("2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30")
    return PaymentPlan("PL", "C1", status, tuple(Installment(d(x), D("100")) for x in dues))


def test_plan_missed_installments():
    # as_of Apr 15. Payments count from Jan 1 (first installment Jan 31 − 30 days): the Dec 20
    # payment does not. Pool = 100 (Jan 20) + 150 (Mar 5) = 250: Jan 31 paid (150 left), Feb 29
    # paid (50 left), Mar 31 not covered → missed. Apr 30 is not due yet.
    led = ledger(
        payments=[
            pay("P0", "2023-12-20", "500"),
            pay("P1", "2024-01-20", "100"),
            pay("P2", "2024-03-05", "150"),
        ],
        payment_plans=[_plan()],
    )
    result = facts(led, d("2024-04-15"))
    assert result["on_payment_plan"] is True
    assert result["plan_missed_installments"] == 1
    # Two days later a 100 catch-up cures it: pool 350 covers Jan, Feb and Mar.
    led2 = ledger(payments=[*led.payments, pay("P3", "2024-04-16", "100")], payment_plans=[_plan()])
    assert facts(led2, d("2024-04-17"))["plan_missed_installments"] == 0
    # Nothing paid at all by May 1: all four installments are missed.
    assert facts(ledger(payment_plans=[_plan()]), d("2024-05-01"))["plan_missed_installments"] == 4


def test_plan_partial_cover_leaves_nothing_for_later_installments():
    # Installments 100 (Jan 10), 200 (Feb 10), 50 (Mar 10); 150 paid Jan 5; as_of Mar 15.
    # 150 pays Jan (50 left); Feb needs 200 → missed, and its 50 is spent on it; Mar → missed.
    plan = PaymentPlan(
        "PL",
        "C1",
        "active",
        tuple(
            Installment(d(day), D(amount))
            for day, amount in (("2024-03-10", "50"), ("2024-01-10", "100"), ("2024-02-10", "200"))
        ),
    )
    led = ledger(payments=[pay("P1", "2024-01-05", "150")], payment_plans=[plan])
    assert facts(led)["plan_missed_installments"] == 2


def test_plan_installment_due_on_as_of_is_not_missed_yet():
    result = facts(ledger(payment_plans=[_plan()]), d("2024-01-31"))
    assert result["plan_missed_installments"] == 0


def test_completed_or_cancelled_plan_is_not_a_plan():
    led = ledger(payment_plans=[_plan("completed"), _plan("cancelled")])
    result = facts(led, d("2024-05-01"))
    assert (result["on_payment_plan"], result["plan_missed_installments"]) == (False, 0)


# --- contacts and holds ------------------------------------------------------------------------


def _contact(id: str, day: str, type: str, tone: str | None = None) -> Contact:
    return Contact(id, "C1", d(day), type, tone)


def test_last_reminder_tone_and_days_since():
    # as_of Mar 15: friendly Mar 1, firm Mar 10; the call on Mar 12 is no reminder; the final
    # reminder of Mar 20 is after as_of.
    led = ledger(
        contacts=[
            _contact("K1", "2024-03-01", "reminder", "friendly"),
            _contact("K2", "2024-03-10", "reminder", "firm"),
            _contact("K3", "2024-03-12", "call"),
            _contact("K4", "2024-03-20", "reminder", "final"),
        ]
    )
    result = facts(led)
    assert (result["last_reminder_tone"], result["days_since_last_reminder"]) == ("firm", 5)
    never = facts(ledger(contacts=[_contact("K3", "2024-03-12", "call")]))
    assert never["last_reminder_tone"] == "none"
    assert "days_since_last_reminder" not in never


def test_in_agency_placement_then_recall():
    placed = _contact("A1", "2024-02-01", "agency_placement")
    recalled = _contact("A2", "2024-02-20", "agency_recall")
    placed_again = _contact("A3", "2024-03-05", "agency_placement")
    assert facts(ledger(contacts=[placed]), d("2024-02-10"))["in_agency"] is True
    assert facts(ledger(contacts=[placed]), d("2024-01-31"))["in_agency"] is False
    assert facts(ledger(contacts=[placed, recalled]), d("2024-02-19"))["in_agency"] is True
    assert facts(ledger(contacts=[placed, recalled]), d("2024-02-20"))["in_agency"] is False
    again = ledger(contacts=[placed, recalled, placed_again])
    assert facts(again, d("2024-03-10"))["in_agency"] is True
    assert facts(ledger())["in_agency"] is False


@pytest.mark.parametrize(
    ("as_of", "end", "on_hold"),
    [
        ("2024-02-29", "2024-03-10", False),  # before the start (Mar 1)
        ("2024-03-01", "2024-03-10", True),
        ("2024-03-10", "2024-03-10", True),  # the end date is covered
        ("2024-03-11", "2024-03-10", False),
        ("2030-01-01", None, True),  # no end: covers every later day
    ],
)
def test_on_hold(as_of, end, on_hold):
    hold = Hold("H1", "C1", "ERP dunning block", d("2024-03-01"), d(end) if end else None)
    assert facts(ledger(holds=[hold]), d(as_of))["on_hold"] is on_hold


# --- requested amount --------------------------------------------------------------------------


def test_requested_amount_and_new_exposure():
    led = ledger(invoices=[inv("A", "2024-04-01", "450")])
    result = facts(led, requested_amount=D("250.5"))
    assert result["requested_amount"] == D("250.50")
    assert result["new_exposure"] == D("700.50")  # 450 + 250.50
    default = facts(led)
    assert (default["requested_amount"], default["new_exposure"]) == (D("0.00"), D("450.00"))


@pytest.mark.parametrize("bad", [D("-1"), D("1.005"), D("NaN"), D("1e12")])
def test_requested_amount_must_be_sane(bad):
    with pytest.raises(FactError) as caught:
        facts(ledger(), requested_amount=bad)
    assert list(caught.value.errors) == ["requested_amount"]


def _busy_ledger() -> Ledger:
    """Something of everything, for the catalogue-wide checks (as_of Mar 20 2024)."""
    return ledger(
        invoices=[inv("A", "2024-01-10", "100"), inv("B", "2024-04-10", "200")],
        payments=[pay("P1", "2024-02-01", "30")],
        promises=[Promise("R", "C1", d("2024-01-01"), d("2024-01-15"), D("50"))],
        contacts=[_contact("K", "2024-03-01", "reminder", "friendly")],
    )


# --- facts given directly ----------------------------------------------------------------------


def _complete_raw() -> dict[str, object]:
    """A complete fact set as JSON would give it: every required fact but the defaulted two."""
    values = {"str": "x", "int": 3, "money": "10.50", "float": 0.25, "bool": False}
    skip = OPTIONAL | NOT_REQUIRED | {"requested_amount", "new_exposure"}
    return {name: values[kind] for name, kind in SPEC_TABLE if name not in skip}


def test_check_complete_facts_converts_and_defaults():
    raw = _complete_raw() | {"open_balance": 100, "credit_limit": 2.5, "days_past_due": 3.0}
    raw["customer_id"] = "12345"  # a numeric string is a fine str
    result = check_facts(raw, complete=True)
    assert result["open_balance"] == D("100.00") and isinstance(result["open_balance"], Decimal)
    assert result["credit_limit"] == D("2.50")
    assert result["days_past_due"] == 3 and type(result["days_past_due"]) is int
    assert result["utilization"] == 0.25 and result["has_open_dispute"] is False
    assert result["customer_id"] == "12345"
    assert result["requested_amount"] == D("0.00")
    assert result["new_exposure"] == D("100.00")  # open_balance + requested_amount
    assert list(result) == [n for n in FACTS if n in result]  # catalogue order


def test_check_complete_facts_may_omit_the_facts_added_after_callers_were_written():
    """Item 9: a caller written before undisputed_overdue_balance, oldest_dispute_days,
    invoices_paid_12m and requested_limit existed goes on working: nothing missing, and
    undisputed_overdue_balance follows overdue_balance while no dispute is open."""
    raw = _complete_raw() | {"overdue_balance": "800.00"}
    assert not set(raw) & (NOT_REQUIRED | {"oldest_dispute_days", "requested_limit"})
    result = check_facts(raw, complete=True)
    assert result["undisputed_overdue_balance"] == D("800.00")
    assert "invoices_paid_12m" not in result and "oldest_dispute_days" not in result
    disputed = check_facts(raw | {"has_open_dispute": True}, complete=True)
    assert "undisputed_overdue_balance" not in disputed  # unknown: absent
    given = check_facts(raw | {"undisputed_overdue_balance": "10"}, complete=True)
    assert given["undisputed_overdue_balance"] == D("10.00")


def test_check_earlier_decision_facts_against_their_outcome_field():
    from engine.ruleset import OutcomeField

    action = OutcomeField("action", "string", ("none", "handoff"), "none")
    earlier = {"handoff_action": ("handoff", action)}
    assert check_facts({"handoff_action": "handoff"}, complete=False, earlier=earlier) == {
        "handoff_action": "handoff"
    }
    assert check_facts({"handoff_action": None}, complete=False, earlier=earlier) == {}
    with pytest.raises(FactError) as info:
        check_facts(
            {"handoff_action": "hnadoff", "handof_action": 1}, complete=False, earlier=earlier
        )
    assert info.value.errors == {
        "handoff_action": [
            "'hnadoff' is not one of ['none', 'handoff'] (the handoff decision's action)"
        ],
        "handof_action": ["unknown fact (did you mean 'handoff_action'?)"],
    }


def test_check_given_new_exposure_and_requested_amount_are_kept():
    raw = _complete_raw() | {"requested_amount": "40", "credit_score": 700.0}
    result = check_facts(raw, complete=True)
    assert result["new_exposure"] == D("50.50")  # 10.50 + 40
    assert result["credit_score"] == 700
    assert check_facts(raw | {"new_exposure": 1}, complete=True)["new_exposure"] == D("1.00")


def test_check_missing_facts_are_listed_all_at_once():
    raw = _complete_raw()
    del raw["days_past_due"], raw["on_hold"]
    with pytest.raises(FactError) as caught:
        check_facts(raw, complete=True)
    assert set(caught.value.errors) == {"days_past_due", "on_hold"}
    assert "missing" in caught.value.errors["on_hold"][0]
    assert check_facts({"days_past_due": 4}, complete=False) == {"days_past_due": 4}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("days_past_due", 3.5, "whole number"),
        ("days_past_due", "3", "whole number, not a string"),
        ("days_past_due", True, "not true/false"),
        ("days_past_due", 10**9, "out of range"),
        ("days_past_due", -(10**9), "out of range"),
        ("days_past_due", float("nan"), "finite"),
        ("utilization", float("inf"), "finite"),
        ("utilization", False, "not true/false"),
        ("utilization", 1e12, "out of range"),
        ("open_balance", "12.345", "at most 2 decimals"),
        ("open_balance", 12.345, "at most 2 decimals"),
        ("open_balance", "1e3", "12.50"),
        ("open_balance", "NaN", "12.50"),
        ("open_balance", D("NaN"), "finite"),
        ("open_balance", float("-inf"), "finite"),
        ("open_balance", True, "not true/false"),
        ("open_balance", 1e12, "out of range"),
        ("open_balance", "1000000000000", "out of range"),
        ("open_balance", -5, "negative"),
        ("open_balance", [1], "not a list"),
        ("has_open_dispute", 1, "true or false, not a number"),
        ("has_open_dispute", "true", "true or false, not a string"),
        ("segment", 5, "string, not a number"),
        ("segment", "x" * 201, "at most 200 characters"),
        ("segment", "smb\ud800", "lone surrogate \\ud800 at character 4"),
        ("last_reminder_tone", "\udfff", "lone surrogate \\udfff"),
        ("customer_id", "C\x001", "NUL character (\\u0000 at character 2)"),
        ("days_past_due", None, "must not be null"),
    ],
)
def test_check_rejects(name, value, message):
    with pytest.raises(FactError) as caught:
        check_facts({name: value}, complete=False)
    assert list(caught.value.errors) == [name]
    assert message in caught.value.errors[name][0]


def test_check_accepts_edge_values():
    result = check_facts(
        {
            "open_balance": "999999999999.99",
            "days_past_due": 999_999_999,
            "credit_limit": 0,
            "segment": "x" * 200,
            "country": "\U0001f600",  # an astral character (JSON's surrogate pair)
        },
        complete=False,
    )
    assert result["segment"] == "x" * 200
    assert result["open_balance"] == D("999999999999.99")
    assert result["days_past_due"] == 999_999_999
    assert result["credit_limit"] == D("0.00")


def test_check_null_means_absent_for_optional_facts_only():
    assert check_facts({"credit_score": None, "segment": "smb"}, complete=False) == {
        "segment": "smb"
    }


def test_check_unknown_names_with_did_you_mean():
    with pytest.raises(FactError) as caught:
        check_facts({"days_pass_due": 3, "zzz": 1, "open_balance": "x"}, complete=False)
    errors = caught.value.errors
    assert errors["days_pass_due"] == ["unknown fact (did you mean 'days_past_due'?)"]
    assert errors["zzz"] == ["unknown fact"]
    assert "open_balance" in errors  # every problem at once
    assert "days_pass_due: unknown fact (did you mean 'days_past_due'?)" in str(caught.value)


def test_an_unknown_name_holding_a_lone_surrogate_is_named_printably():
    with pytest.raises(FactError) as caught:
        check_facts({"seg\ud800": "x"}, complete=False)
    assert caught.value.errors == {"seg\\ud800": ["unknown fact"]}
    str(caught.value).encode("utf-8")  # the CLI prints it


def test_check_extra_names_are_accepted_only_when_listed():
    with pytest.raises(FactError) as caught:
        check_facts({"risk_band": "high"}, complete=False)
    assert caught.value.errors == {"risk_band": ["unknown fact"]}
    result = check_facts(
        {"risk_band": "high", "on_hold": True}, complete=False, extra_names={"risk_band"}
    )
    assert list(result.items()) == [("on_hold", True), ("risk_band", "high")]
    with pytest.raises(FactError) as caught:
        check_facts({"risk_bnd": "x"}, complete=False, extra_names={"risk_band"})
    assert caught.value.errors["risk_bnd"] == ["unknown fact (did you mean 'risk_band'?)"]


def test_check_rejects_a_non_object():
    with pytest.raises(FactError) as caught:
        check_facts([("days_past_due", 3)], complete=False)  # type: ignore[arg-type]
    assert list(caught.value.errors) == ["facts"]


def test_derived_facts_pass_check_facts_unchanged():
    derived = facts(_busy_ledger(), d("2024-03-20"))
    assert check_facts(derived, complete=True) == derived
