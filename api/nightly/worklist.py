"""Keeping the worklist true between nightly runs: acknowledge and void pending actions.

Called after ledger records are stored, by the HTTP ledger endpoints and by `credo import`, for
the customers the records touch (a dispute touches its invoice's customer):

1. A record that reports what an action asked for acknowledges it: a `reminder` contact the
   customer's pending reminder (of the same tone when the contact names one), an
   `agency_placement` contact a pending hand-off, an active payment plan a pending plan offer.
   Only actions of a run dated on or before the contact count: a contact replayed from the
   ERP's history does not acknowledge tonight's reminder.
2. Every action still pending is checked against the customer's facts as of today (or as of
   the run's date, when that is later) and made void when `api.nightly.actions.void_reason` gives a
   reason, so the worklist never asks to chase a customer who has paid, disputes an invoice, is
   on hold or has been placed with an agency in the meantime.

An account whose facts cannot be derived keeps its actions (and is logged), as in the run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.nightly.actions import void_reason

log = logging.getLogger("credo.worklist")

# Contact type -> the action types it acknowledges.
ACKNOWLEDGED_BY = {"reminder": ("reminder",), "agency_placement": ("handoff",)}
_CHUNK = 500


@dataclass
class WorklistUpdate:
    """How many pending actions a refresh acknowledged and made void."""

    acknowledged: int = 0
    voided: int = 0


def today_in(timezone: str) -> date:
    """Today's date in `timezone` (e.g. settings.facts.timezone)."""
    return datetime.now(ZoneInfo(timezone)).date()


def refresh_worklist(records: Iterable[Mapping[str, Any]], today: date) -> WorklistUpdate:
    """Acknowledge, then void, the pending actions of the customers `records` touch.

    `records` are ledger records as storage.upsert takes them (each with its "type"; a
    contact's type is its contact type). Pass the records that were stored; records that were
    refused only widen the check, they acknowledge nothing the database does not hold.
    """
    from storage.worklist import pending_actions

    records = list(records)
    customers = sorted(_customers_of(records))
    pending = []
    for start in range(0, len(customers), _CHUNK):
        pending.extend(pending_actions(customers[start : start + _CHUNK]))
    if not pending:
        return WorklistUpdate()
    run_dates = _RunDates()
    reasons = _acknowledgements(records, pending, run_dates)
    acknowledged = _set_state(reasons, "acknowledged")
    remaining = [a for a in pending if a.id not in reasons]
    return WorklistUpdate(acknowledged, _void(remaining, today, run_dates))


def _customers_of(records: Sequence[Mapping[str, Any]]) -> set[str]:
    from storage.worklist import invoice_customers

    customers: set[str] = set()
    invoices: set[str] = set()
    for record in records:
        if record.get("type") == "customer":
            customers.add(str(record["id"]))
        elif record.get("customer_id"):
            customers.add(str(record["customer_id"]))
        elif record.get("invoice_id"):  # a dispute names its invoice only
            invoices.add(str(record["invoice_id"]))
    return customers | (invoice_customers(sorted(invoices)) if invoices else set())


class _RunDates:
    """The as_of date of each action's run, read once per run."""

    def __init__(self) -> None:
        self._dates: dict[str, date] = {}

    def of(self, action: Any) -> date:
        from storage.worklist import get_run

        run_id = action.run_id
        if run_id not in self._dates:
            self._dates[run_id] = get_run(run_id).as_of
        return self._dates[run_id]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _acknowledgements(
    records: Sequence[Mapping[str, Any]], pending: list[Any], run_dates: _RunDates
) -> dict[int, str]:
    """The pending actions the records report done, by id, with what acknowledges each."""
    by_customer: dict[str, list[Any]] = defaultdict(list)
    for action in pending:
        by_customer[action.customer_id].append(action)
    reasons: dict[int, str] = {}
    for record in records:
        kind = record.get("type")
        if kind in ACKNOWLEDGED_BY:
            day = _day(record["date"])
            tone = record.get("tone")
            for action in by_customer.get(str(record["customer_id"]), ()):
                if (
                    action.id not in reasons
                    and action.type in ACKNOWLEDGED_BY[kind]
                    and day >= run_dates.of(action)
                    and not (kind == "reminder" and tone and action.payload.get("tone") != tone)
                ):
                    reasons[action.id] = f"{kind} contact {record['id']} of {day.isoformat()}"
        elif kind == "payment_plan" and record.get("status") == "active":
            for action in by_customer.get(str(record["customer_id"]), ()):
                if action.id not in reasons and action.type == "offer_plan":
                    reasons[action.id] = f"payment plan {record['id']} is active"
    return reasons


def _void(actions: list[Any], today: date, run_dates: _RunDates) -> int:
    """Void the actions whose customer's current facts give a reason; how many."""
    from engine.facts import derive_facts_and_account
    from storage.ledger import load_ledgers

    if not actions:
        return 0
    ledgers = load_ledgers(sorted({a.customer_id for a in actions}))
    facts_by: dict[tuple[str, date], tuple[dict[str, Any], frozenset[str]] | None] = {}
    reasons: dict[int, str] = {}
    for action in actions:
        ledger = ledgers.get(action.customer_id)
        if ledger is None:
            continue
        key = (action.customer_id, max(today, run_dates.of(action)))
        if key not in facts_by:
            try:
                facts, account = derive_facts_and_account(ledger, key[1])
                facts_by[key] = (facts, frozenset(account.disputed_invoice_ids))
            except Exception:  # noqa: BLE001 - one broken account must not block the others
                log.warning("worklist: facts of %s failed", action.customer_id, exc_info=True)
                facts_by[key] = None
        found = facts_by[key]
        reason = void_reason(action.type, action.payload, *found) if found is not None else None
        if reason:
            reasons[action.id] = reason
    return _set_state(reasons, "void")


def _set_state(reasons: dict[int, str], state: str) -> int:
    """Move the still pending actions among `reasons` to `state`, one update per reason."""
    from storage.worklist import set_action_state

    groups: dict[str, list[int]] = defaultdict(list)
    for action_id, reason in reasons.items():
        groups[reason].append(action_id)
    return sum(set_action_state(ids, state, reason) for reason, ids in groups.items())
