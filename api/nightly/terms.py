"""The money terms a letter states: a payment plan's instalments and late-payment charges.

Both are worked out from the ledger when the nightly run builds the action, and stored on it,
so the ERP, the console and the letter all show the same figures (docs/templates.md):

- **Plan terms**: the handoff rule set's `plan_instalments` and `plan_interval_days` split the
  undisputed overdue balance into that many instalments, instalment k due k × interval days
  after the run's date; each is the balance divided by their number rounded down to the cent,
  the last one absorbs the rest, so they add up to the balance exactly.
- **Late charges**: the basis is a table per customer country in the templates' company.toml,
  `[late_charges.DE]`: `interest_rate` (percent a year), `fixed_fee` (per overdue invoice: an
  amount, or tiers `[{below = 1000.00, fee = 40.00}, {fee = 70.00}]`), `fee_currency` (the
  fixed fee is charged only on invoices in it) and `grace_days` (charges start after that many
  days past due). Per overdue, undisputed invoice: interest = unpaid × rate / 100 × (days past
  due − grace days) / 365, rounded half up to the cent, and the fixed fee once. A country
  without a table is charged nothing. The reminder rule set's outcome `show_charges` says
  whether the letter states them; the action carries them either way.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
CHARGE_KEYS = ("interest_rate", "fixed_fee", "fee_currency", "grace_days")
MAX_RATE = Decimal(100)
MAX_FEE = Decimal(1_000_000)


class TermsError(ValueError):
    """A late-charges table that cannot be used: names the country and the key."""


def plan_terms(
    balance: Decimal, as_of: date, instalments: int, interval_days: int
) -> dict[str, Any] | None:
    """The instalments (number, due_date, amount) a plan of `balance` offers; None when there
    is nothing to split. At most one instalment per cent of the balance."""
    cents = int((balance / CENT).to_integral_value(ROUND_DOWN)) if balance > 0 else 0
    count = min(max(int(instalments), 1), cents)
    if count <= 0:
        return None
    interval = max(int(interval_days), 1)
    each = (balance / count).quantize(CENT, rounding=ROUND_DOWN)
    rows = []
    for k in range(1, count + 1):
        amount = each if k < count else balance - each * (count - 1)
        due = as_of + timedelta(days=k * interval)
        rows.append({"number": k, "due_date": due.isoformat(), "amount": amount})
    return {
        "count": count,
        "interval_days": interval,
        "total": balance,
        "first_due_date": rows[0]["due_date"],
        "last_due_date": rows[-1]["due_date"],
        "instalments": rows,
    }


def _decimal(value: Any, where: str, maximum: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TermsError(f"{where} must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise TermsError(f"{where} must be a number") from None
    if not number.is_finite() or not 0 <= number <= maximum:
        raise TermsError(f"{where} must be between 0 and {maximum}")
    return number


def check_charges(table: Any) -> dict[str, dict[str, Any]]:
    """company.toml's [late_charges] as {COUNTRY: basis}; TermsError naming what is wrong."""
    if not isinstance(table, dict):
        raise TermsError("[late_charges] must be a table of countries: [late_charges.DE]")
    bases = {}
    for country, basis in table.items():
        where = f"late_charges.{country}"
        if not (isinstance(country, str) and len(country) == 2 and country.isupper()):
            raise TermsError(f"{where}: a country must be an ISO 3166 code such as DE")
        if not isinstance(basis, dict):
            raise TermsError(f"{where} must be a table")
        unknown = sorted(set(basis) - set(CHARGE_KEYS))
        if unknown:
            known = ", ".join(CHARGE_KEYS)
            raise TermsError(f"{where}: unknown key {unknown[0]!r}; known: {known}")
        grace = basis.get("grace_days", 0)
        if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 3650:
            raise TermsError(f"{where}.grace_days must be a whole number of days, 0 to 3650")
        currency = basis.get("fee_currency", "")
        if not isinstance(currency, str) or (currency and not _is_currency(currency)):
            raise TermsError(f"{where}.fee_currency must be an ISO 4217 code such as EUR")
        tiers = _tiers(basis.get("fixed_fee", 0), f"{where}.fixed_fee")
        if any(fee for _, fee in tiers) and not currency:
            raise TermsError(f"{where}: a fixed_fee needs its fee_currency")
        rate = _decimal(basis.get("interest_rate", 0), f"{where}.interest_rate", MAX_RATE)
        bases[country] = {
            "interest_rate": rate,
            "fixed_fee": tiers,
            "fee_currency": currency,
            "grace_days": grace,
        }
    return bases


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isalpha() and code.isupper()


def _tiers(value: Any, where: str) -> list[tuple[Decimal | None, Decimal]]:
    """A fixed fee as tiers [(below, fee)], the last one with below None (any amount)."""
    if not isinstance(value, list):
        return [(None, _decimal(value, where, MAX_FEE))]
    tiers: list[tuple[Decimal | None, Decimal]] = []
    for n, tier in enumerate(value):
        at = f"{where}[{n}]"
        if not isinstance(tier, dict) or "fee" not in tier or set(tier) - {"below", "fee"}:
            raise TermsError(f"{at} must be {{below = 1000.00, fee = 40.00}} (below optional)")
        below = tier.get("below")
        limit = None if below is None else _decimal(below, f"{at}.below", MAX_FEE * 1000)
        if tiers and (tiers[-1][0] is None or (limit is not None and limit <= tiers[-1][0])):
            raise TermsError(f"{at}: tiers must rise, and only the last may leave out below")
        tiers.append((limit, _decimal(tier["fee"], f"{at}.fee", MAX_FEE)))
    if not tiers or tiers[-1][0] is not None:
        raise TermsError(f"{where}: the last tier must leave out below (any larger amount)")
    return tiers


def _fee_for(tiers: list[tuple[Decimal | None, Decimal]], amount: Decimal) -> Decimal:
    return next(fee for below, fee in tiers if below is None or amount < below)


def late_charges(
    basis: dict[str, Any] | None,
    currency: str,
    invoices: list[dict[str, Any]],
    shown: bool,
) -> dict[str, Any] | None:
    """The charges on `invoices` (overdue, undisputed: {invoice_id, unpaid, amount,
    days_past_due}) under `basis` (check_charges' table for the customer's country); None when
    there is no basis."""
    if basis is None:
        return None
    rate, grace = basis["interest_rate"], basis["grace_days"]
    fee_applies = basis["fee_currency"] == currency
    rows, interest_total, fees_total = [], Decimal(0), Decimal(0)
    for invoice in invoices:
        days = int(invoice["days_past_due"]) - grace
        if days <= 0:
            continue
        unpaid = Decimal(str(invoice["unpaid"]))
        interest = (unpaid * rate / 100 * days / 365).quantize(CENT, rounding=ROUND_HALF_UP)
        amount = Decimal(str(invoice.get("amount", unpaid)))
        fee = _fee_for(basis["fixed_fee"], amount) if fee_applies else Decimal(0)
        fee = fee.quantize(CENT)
        interest_total += interest
        fees_total += fee
        rows.append(
            {
                "invoice_id": invoice["invoice_id"],
                "unpaid": unpaid,
                "days": days,
                "interest": interest,
                "fee": fee,
            }
        )
    return {
        "shown": bool(shown),
        "interest_rate": rate,
        "grace_days": grace,
        "fee_currency": basis["fee_currency"],
        "interest": interest_total,
        "fees": fees_total,
        "total": interest_total + fees_total,
        "invoices": rows,
    }
