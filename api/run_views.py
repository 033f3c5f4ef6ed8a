"""Reading nightly runs, for the HTTP API and the console alike: pages of runs, one run's
worklist and its CSV, and the portfolio figures per currency over the last runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from api.csvout import csv_chunks

WORKLIST_COLUMNS = (
    "action_id",
    "run_id",
    "customer_id",
    "type",
    "state",
    "state_reason",
    "tone",
    "channel",
    "agency",
    "currency",
    "open_balance",
    "overdue_balance",
    "days_past_due",
    "oldest_invoice_id",
    "oldest_invoice_due_date",
    "message_subject",
    "decision_id",
    "created_at",
)


def find_run(run_id: str) -> Any | None:
    """The run with this id (a storage Run row), or None."""
    from storage.models import ID_LENGTH
    from storage.worklist import get_run

    return get_run(run_id) if 0 < len(run_id) <= ID_LENGTH else None


def run_json(run: Any) -> dict[str, Any]:
    """A run with its report and, read now, its progress."""
    from storage.nightly import progress
    from storage.worklist import run_to_json

    return {**run_to_json(run), "progress": progress(run.run_id)}


def runs_page(limit: int, before: date | None) -> tuple[list[Any], date | None]:
    """Up to `limit` runs dated before `before`, newest first, and the `before` of the next
    page. A page never splits a date: its attempts are all on one page."""
    from storage.worklist import list_runs

    runs = list_runs(limit + 1, before)
    if len(runs) <= limit:
        return runs, None
    cut = runs[limit].as_of  # the date of the first run left out
    page = [r for r in runs[:limit] if r.as_of > cut]
    if page:
        return page, cut + timedelta(days=1)
    # Every run of the page is of that one date: show all its attempts.
    return [r for r in list_runs(10_000, cut + timedelta(days=1)) if r.as_of == cut], cut


def worklist_page(
    run_id: str, type_: str | None, state: str | None, after: int, limit: int
) -> tuple[list[Any], int | None]:
    """A page of the run's actions after the action id `after`, and the next page's cursor."""
    from storage.worklist import actions_query

    found = list(actions_query(run_id, type_, state, after).limit(limit + 1))
    page = found[:limit]
    return page, (page[-1].id if len(found) > limit else None)


def worklist_csv_row(action: Any) -> list[Any]:
    """An action flattened to WORKLIST_COLUMNS: the payload's main fields, the rest left out."""
    payload = action.payload or {}
    invoices = payload.get("invoices") or []
    oldest = payload.get("oldest_invoice") or (invoices[0] if invoices else None) or {}
    message = payload.get("message") or payload.get("call_script") or {}
    return [
        action.id,
        action.run_id,
        action.customer_id,
        action.type,
        action.state,
        action.state_reason,
        payload.get("tone", ""),
        payload.get("channel", ""),
        payload.get("agency", ""),
        payload.get("currency", ""),
        payload.get("open_balance", ""),
        payload.get("overdue_balance", ""),
        payload.get("days_past_due", ""),
        oldest.get("invoice_id", ""),
        oldest.get("due_date", ""),
        message.get("subject", ""),
        action.decision_id or "",
        action.created_at.isoformat(),
    ]


def worklist_csv(
    run_id: str, type_: str | None = None, state: str | None = None, after: int = 0
) -> Iterator[str]:
    """The run's matching actions as CSV text, a header row first, one chunk per row (for a
    streamed response of any size), cells neutralised for spreadsheets (api.csvout); the
    action_id column is the id the ERP acknowledges an action by."""
    from storage.worklist import iter_actions

    return csv_chunks(
        WORKLIST_COLUMNS, (worklist_csv_row(a) for a in iter_actions(run_id, type_, state, after))
    )


# ---- portfolio figures per currency ----------------------------------------------------------

_LEDGER_FIGURES: dict[str, dict[str, Any]] = {}  # run_id -> by_currency, computed from the ledger
_LEDGER_LOCK = threading.Lock()


def portfolio_by_currency(run: Any) -> dict[str, dict[str, Any]]:
    """A finished run's portfolio figures by currency (api.nightly.report.portfolio): from its
    report, or, for a run whose report predates them, computed once from the ledger as of the
    run's date over the customers a run of that date evaluates (kept for the process)."""
    stored = ((run.report or {}).get("portfolio") or {}).get("by_currency")
    if stored is not None:
        return stored
    with _LEDGER_LOCK:
        if run.run_id not in _LEDGER_FIGURES:
            _LEDGER_FIGURES[run.run_id] = ledger_portfolio(run.as_of)
        return _LEDGER_FIGURES[run.run_id]


def ledger_portfolio(as_of: date) -> dict[str, dict[str, Any]]:
    """The portfolio figures by currency of the accounts a run of `as_of` evaluates."""
    from api.nightly.report import add_figures, portfolio
    from engine.errors import EngineError
    from engine.facts import derive_facts
    from storage.ledger import iter_open_customer_ids, load_ledgers

    totals: dict[str, Decimal] = {}
    for ids in iter_open_customer_ids(500, as_of=as_of):
        for ledger in load_ledgers(ids).values():
            try:
                add_figures(totals, derive_facts(ledger, as_of), ledger, as_of)
            except EngineError:  # the run records such an account as an error and goes on
                continue
    return portfolio(totals)["by_currency"]


def portfolio_trend(limit: int = 8) -> list[dict[str, Any]]:
    """The last `limit` finished runs, oldest first: {run_id, as_of, by_currency}."""
    from storage.worklist import list_runs

    finished = [r for r in list_runs(limit * 4) if r.state == "finished"]
    latest: dict[date, Any] = {}
    for run in finished:  # newest attempt of each date
        latest.setdefault(run.as_of, run)
    runs = sorted(latest.values(), key=lambda r: r.as_of)[-limit:]
    return [
        {"run_id": r.run_id, "as_of": r.as_of.isoformat(), "by_currency": portfolio_by_currency(r)}
        for r in runs
    ]
