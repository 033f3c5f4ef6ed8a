"""Reading runs and their worklist: reports' counts, changes between runs, actions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import peewee as pw

from storage.models import JSONText, now_utc
from storage.runs import Action, Run, RunBatch, RunResult


def run_to_json(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "as_of": run.as_of.isoformat(),
        "attempt": run.attempt,
        "state": run.state,
        "requested_by": run.requested_by,
        "rulesets": run.rulesets,
        "customers_total": run.customers_total,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error or None,
        "report": run.report,
    }


def get_run(run_id: str) -> Run | None:
    return Run.get_or_none(Run.run_id == run_id)


def list_runs(limit: int = 50, before: date | None = None) -> list[Run]:
    query = Run.select().order_by(Run.as_of.desc(), Run.attempt.desc()).limit(limit)
    if before is not None:
        query = query.where(Run.as_of < before)
    return list(query)


def previous_finished_run(run: Run) -> Run | None:
    """The latest finished run before this one (earlier date, or an earlier attempt)."""
    return (
        Run.select()
        .where(
            (Run.state == "finished")
            & ((Run.as_of < run.as_of) | ((Run.as_of == run.as_of) & (Run.attempt < run.attempt)))
        )
        .order_by(Run.as_of.desc(), Run.attempt.desc())
        .first()
    )


def outcome_counts(run_id: str) -> dict[str, dict[str, int]]:
    """Decisions by kind and headline outcome."""
    query = (
        RunResult.select(RunResult.kind, RunResult.outcome, pw.fn.COUNT(RunResult.id))
        .where(RunResult.run == run_id)
        .group_by(RunResult.kind, RunResult.outcome)
        .order_by(RunResult.kind, RunResult.outcome)
    )
    counts: dict[str, dict[str, int]] = {}
    for kind, outcome, n in query.tuples():
        counts.setdefault(kind, {})[outcome] = n
    return counts


def changes(run_id: str, previous_id: str) -> dict[str, dict[str, int]]:
    """Customers whose headline outcome changed since the previous run, e.g. friendly→firm."""
    old = RunResult.alias()
    query = (
        RunResult.select(RunResult.kind, old.outcome, RunResult.outcome, pw.fn.COUNT(RunResult.id))
        .join(
            old,
            on=(
                (old.customer_id == RunResult.customer_id)
                & (old.kind == RunResult.kind)
                & (old.run == previous_id)
            ),
        )
        .where((RunResult.run == run_id) & (old.outcome != RunResult.outcome))
        .group_by(RunResult.kind, old.outcome, RunResult.outcome)
    )
    found: dict[str, dict[str, int]] = {}
    for kind, before, after, n in query.tuples():
        found.setdefault(kind, {})[f"{before}→{after}"] = n
    return found


def action_counts(run_id: str) -> dict[str, dict[str, int]]:
    query = (
        Action.select(Action.type, Action.state, pw.fn.COUNT(Action.id))
        .where(Action.run == run_id)
        .group_by(Action.type, Action.state)
    )
    counts: dict[str, dict[str, int]] = {}
    for kind, state, n in query.tuples():
        counts.setdefault(kind, {})[state] = n
    return counts


def message_errors(run_id: str) -> list[dict[str, Any]]:
    """The reminders of a run whose message failed to render, in worklist order:
    {customer_id, template, error}, from the action's payload (api/nightly/actions.py)."""
    # Filtered in the database (LIKE on SQLite, ILIKE on PostgreSQL), so only the failed ones are
    # read; JSONText puts the pattern in as it is, not JSON-encoded.
    mentions = pw.Expression(Action.payload, pw.OP.ILIKE, JSONText('%"message_error"%'))
    query = (
        Action.select(Action.customer_id, Action.payload)
        .where((Action.run == run_id) & (Action.type == "reminder") & mentions)
        .order_by(Action.id)
    )
    return [
        {
            "customer_id": action.customer_id,
            "template": action.payload.get("message_template"),
            "error": action.payload["message_error"],
        }
        for action in query.iterator()
        if action.payload.get("message_error")
    ]


def batch_totals(run_id: str) -> tuple[list[dict[str, Any]], dict[str, Decimal], float]:
    """Every batch's errors, the sum of their portfolio figures, and their busy seconds."""
    errors: list[dict[str, Any]] = []
    figures: dict[str, Decimal] = {}
    seconds = 0.0
    query = RunBatch.select(RunBatch.errors, RunBatch.figures, RunBatch.seconds).where(
        RunBatch.run == run_id
    )
    for batch in query.order_by(RunBatch.number):
        errors.extend(batch.errors)
        seconds += batch.seconds
        for name, value in batch.figures.items():
            figures[name] = figures.get(name, Decimal(0)) + Decimal(str(value))
    return errors, figures, seconds


def actions_query(
    run_id: str, type_: str | None = None, state: str | None = None, after_id: int = 0
) -> pw.ModelSelect:
    query = Action.select().where((Action.run == run_id) & (Action.id > after_id))
    if type_:
        query = query.where(Action.type == type_)
    if state:
        query = query.where(Action.state == state)
    return query.order_by(Action.id)


def iter_actions(
    run_id: str, type_: str | None = None, state: str | None = None, after: int = 0
) -> Iterator[Action]:
    """Every matching action after the cursor `after` (an action id), read in pages (exports
    stream without loading all)."""
    while True:
        page = list(actions_query(run_id, type_, state, after).limit(1000))
        if not page:
            return
        yield from page
        after = page[-1].id


def action_to_json(action: Action) -> dict[str, Any]:
    return {
        "action_id": action.id,
        "run_id": action.run_id,
        "customer_id": action.customer_id,
        "type": action.type,
        "state": action.state,
        "state_reason": action.state_reason or None,
        "decision_id": action.decision_id,
        "created_at": action.created_at.isoformat(),
        "updated_at": action.updated_at.isoformat() if action.updated_at else None,
        "payload": action.payload,
    }


def pending_actions(customer_ids: list[str]) -> list[Action]:
    return list(
        Action.select().where(Action.customer_id.in_(customer_ids) & (Action.state == "pending"))
    )


def set_action_state(action_ids: list[int], state: str, reason: str) -> int:
    if not action_ids:
        return 0
    return (
        Action.update(state=state, state_reason=reason, updated_at=now_utc())
        .where(Action.id.in_(action_ids) & (Action.state == "pending"))
        .execute()
    )


def invoice_customers(invoice_ids: list[str]) -> set[str]:
    """The customers the given invoices belong to (unknown ids are left out)."""
    from storage.models import Invoice

    found: set[str] = set()
    for start in range(0, len(invoice_ids), 500):
        chunk = invoice_ids[start : start + 500]
        query = Invoice.select(Invoice.customer).where(Invoice.id.in_(chunk)).distinct()
        found.update(customer_id for (customer_id,) in query.tuples())
    return found
