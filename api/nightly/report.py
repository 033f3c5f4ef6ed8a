"""The report of a nightly run: counts, changes since the previous run, errors, portfolio figures.

Portfolio figures a controller watches (over the accounts the run evaluated):
- aging: overdue balance in the 1–30, 31–60, 61–90 and 90+ day buckets;
- overdue share = overdue balance / open balance;
- DSO (days sales outstanding, count-back over 90 days) = open balance / sales of the last
  90 days × 90;
- CEI (collection effectiveness index, over the last 30 days) =
  (receivables 30 days ago + sales of the last 30 days − receivables now)
  / (receivables 30 days ago + sales of the last 30 days − current, not yet due, receivables now)
  × 100. 100 means everything collectable was collected. Receivables 30 days ago are what
  was invoiced by then minus what was paid and credited by then (never below zero).

Money of different currencies is never added up: `portfolio.by_currency` holds the figures of
each currency's customers alone, and `portfolio.currencies` lists them; there is no total across
currencies (a sum of euros and pounds means nothing).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from engine.ledger import Ledger

MAX_ERRORS_LISTED = 200


def build_report(run_id: str, seconds: float) -> dict[str, Any]:
    """Everything `GET /v1/runs/{id}` and the end of `credo run` show about a run."""
    from storage.worklist import (
        action_counts,
        batch_totals,
        changes,
        get_run,
        message_errors,
        outcome_counts,
        previous_finished_run,
    )

    run = get_run(run_id)
    errors, figures, busy = batch_totals(run_id)
    evaluated = int(figures.get("customers", 0))
    previous = previous_finished_run(run)
    # A reminder whose message failed is in the worklist without it; its customer's decisions
    # are stored like any other's, so these are listed apart from `errors`.
    failed_messages = message_errors(run_id)
    return {
        "customers_total": run.customers_total,
        "customers_evaluated": evaluated,
        "errors_count": len(errors),
        "errors": errors[:MAX_ERRORS_LISTED],
        "message_errors_count": len(failed_messages),
        "message_errors": failed_messages[:MAX_ERRORS_LISTED],
        "message_errors_by_template": dict(
            Counter(e["template"] or "" for e in failed_messages).most_common()
        ),
        "seconds": round(seconds, 2),
        "worker_seconds": round(busy, 2),
        "customers_per_second": round(evaluated / seconds, 1) if seconds > 0 else None,
        "decisions": outcome_counts(run_id),
        "previous_run_id": previous.run_id if previous else None,
        "changes": changes(run_id, previous.run_id) if previous else {},
        "actions": action_counts(run_id),
        "portfolio": portfolio(figures),
        "rulesets": run.rulesets,
        # The decision chain's head as the run ends: an anchor to keep outside the database
        # (`credo audit verify --anchor` proves the chain still reaches it).
        "chain_head": run_anchor(run_id),
    }


def run_anchor(run_id: str) -> dict[str, Any]:
    """The chain's head {seq, hash, time} at the end of a run, also logged (credo.audit)."""
    from api.audit_chain import current_anchor, log_anchor

    anchor = current_anchor()
    log_anchor(anchor, f"at the end of run {run_id}")
    return anchor


def _ratio(numerator: Decimal, denominator: Decimal, scale: Decimal) -> float | None:
    if denominator <= 0:
        return None
    return float(round(numerator / denominator * scale, 2))


def portfolio(figures: dict[str, Decimal]) -> dict[str, Any]:
    """Aging, overdue share, DSO and CEI from the summed figures of a run's batches, for each
    currency's customers (by_currency), never across currencies."""
    currencies: dict[str, dict[str, Decimal]] = {}
    for name, value in figures.items():
        currency, slash, figure = name.partition(CURRENCY_SEPARATOR)
        if slash:
            currencies.setdefault(currency, {})[figure] = value
    return {
        "currencies": sorted(currencies),
        "by_currency": {c: _figures(currencies[c]) for c in sorted(currencies)},
    }


def _figures(figures: dict[str, Decimal]) -> dict[str, Any]:
    get = lambda name: figures.get(name, Decimal(0))  # noqa: E731
    open_now, overdue, current = get("open_balance"), get("overdue_balance"), get("current_balance")
    begin, sales_30 = get("open_balance_30d_ago"), get("sales_30d")
    collectable = begin + sales_30
    return {
        "customers": int(get("customers")),
        "open_balance": f"{open_now:.2f}",
        "overdue_balance": f"{overdue:.2f}",
        "disputed_amount": f"{get('disputed_amount'):.2f}",
        "aging": {
            "1_30": f"{get('overdue_1_30'):.2f}",
            "31_60": f"{get('overdue_31_60'):.2f}",
            "61_90": f"{get('overdue_61_90'):.2f}",
            "90_plus": f"{get('overdue_90_plus'):.2f}",
        },
        "overdue_share": _ratio(overdue, open_now, Decimal(1)),
        "sales_30d": f"{sales_30:.2f}",
        "sales_90d": f"{get('sales_90d'):.2f}",
        "dso_days": _ratio(open_now, get("sales_90d"), Decimal(90)),
        "cei_percent": _ratio(collectable - open_now, collectable - current, Decimal(100)),
    }


CURRENCY_SEPARATOR = "/"  # a batch figure "EUR/open_balance" is that currency's alone


def add_figures(
    totals: dict[str, Decimal], facts: dict[str, Any], ledger: Ledger, as_of: date
) -> None:
    """Add one account to a batch's portfolio sums: balances, aging, sales, receivables 30
    days earlier, under the account's currency ("EUR/open_balance"), never across currencies;
    `customers` counts the accounts in all."""
    currency = ledger.customer.currency

    def add(name: str, value: Any) -> None:
        key = f"{currency}{CURRENCY_SEPARATOR}{name}"
        totals[key] = totals.get(key, Decimal(0)) + Decimal(value)

    open_balance = facts["open_balance"]
    add("open_balance", open_balance)
    add("overdue_balance", facts["overdue_balance"])
    add("current_balance", open_balance - facts["overdue_balance"])
    for bucket in ("overdue_1_30", "overdue_31_60", "overdue_61_90", "overdue_90_plus"):
        add(bucket, facts[bucket])
    add("disputed_amount", facts["disputed_amount"])
    month_ago = as_of - timedelta(days=30)
    quarter_ago = as_of - timedelta(days=90)
    sales_30 = sales_90 = billed_before = Decimal(0)
    for invoice in ledger.invoices:
        issued = invoice.issue_date
        if issued <= month_ago:
            billed_before += invoice.amount
        elif issued <= as_of:
            sales_30 += invoice.amount
        if quarter_ago < issued <= as_of:
            sales_90 += invoice.amount
    settled_before = sum(
        (p.amount for p in ledger.payments if p.date <= month_ago), Decimal(0)
    ) + sum((c.amount for c in ledger.credit_notes if c.date <= month_ago), Decimal(0))
    add("sales_30d", sales_30)
    add("sales_90d", sales_90)
    # Receivables 30 days ago: billed minus paid and credited by then (never below zero).
    add("open_balance_30d_ago", max(billed_before - settled_before, Decimal(0)))
    add("customers", 1)
    totals["customers"] = totals.get("customers", Decimal(0)) + 1


def portfolio_lines(portfolio: dict[str, Any]) -> list[str]:
    """The portfolio figures in words, one line per currency: money of different currencies
    is never added up."""
    lines = []
    for currency, p in (portfolio.get("by_currency") or {}).items():
        aging, count = p["aging"], p.get("customers", 0)
        lines.append(
            f"{currency} ({count} customer{'' if count == 1 else 's'}): open {p['open_balance']}, "
            f"overdue {p['overdue_balance']} (share {p['overdue_share']}), aging "
            f"1-30 {aging['1_30']} / 31-60 {aging['31_60']} / 61-90 {aging['61_90']} / "
            f"90+ {aging['90_plus']}; DSO {p['dso_days']} days, CEI {p['cei_percent']}%"
        )
    return lines
