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
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

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
    }


def _ratio(numerator: Decimal, denominator: Decimal, scale: Decimal) -> float | None:
    if denominator <= 0:
        return None
    return float(round(numerator / denominator * scale, 2))


def portfolio(figures: dict[str, Decimal]) -> dict[str, Any]:
    """Aging, overdue share, DSO and CEI from the summed figures of a run's batches."""
    get = lambda name: figures.get(name, Decimal(0))  # noqa: E731
    open_now, overdue, current = get("open_balance"), get("overdue_balance"), get("current_balance")
    begin, sales_30 = get("open_balance_30d_ago"), get("sales_30d")
    collectable = begin + sales_30
    return {
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
