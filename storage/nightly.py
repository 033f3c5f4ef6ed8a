"""Queries of the nightly run: the run lock, runs and batches, committing a batch, the worklist.

Only one run at a time across processes and machines: a session advisory lock on PostgreSQL
(released by the server if the holder dies), a lock row with an expiry on SQLite (renewed while
the run works; a holder on this machine whose process is gone is taken over at once). A run of
a date is claimed (resumed, or made with `create_run`) and its customers listed (`plan_run`)
by the holder of that lock only, so two starters never make two runs of one date.
Batches are claimed under a lease: `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, a
BEGIN IMMEDIATE transaction on SQLite. A batch is committed in one transaction with its
decisions, results and actions, after checking the committing worker still holds its lease.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import peewee as pw

from storage.audit_log import append_event, storable
from storage.db import RUN_LOCK_CLASS, LockKey, database, insert_rows, is_postgres, write_lock
from storage.decisions import PreparedDecision, append_prepared
from storage.errors import Conflict
from storage.models import JSONText, now_utc
from storage.runs import Action, Run, RunBatch, RunLock, RunResult

# PostgreSQL: a (class, object) session advisory lock, the object being the schema, so that
# credo instances in separate schemas of one database never block each other.
PG_RUN_LOCK = f"SELECT {{fn}}({RUN_LOCK_CLASS}, hashtext(current_schema()))"
LOCK_NAME = "nightly"
PLAN_ROWS_PER_COMMIT = 200  # batches listed per transaction while a run is planned


def owner_id() -> str:
    """This process, as lock and lease owners are named: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(owner: str) -> bool:
    """True when `owner` is a process on this host that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# ---- the run lock ---------------------------------------------------------------------------


def try_run_lock(owner: str, ttl_seconds: float = 120) -> bool:
    """Take the run lock for `owner`; False when another live owner holds it."""
    db = database.obj
    if is_postgres(db):
        return bool(db.execute_sql(PG_RUN_LOCK.format(fn="pg_try_advisory_lock")).fetchone()[0])
    now = now_utc()
    with write_lock(LockKey.RUN):
        held = RunLock.get_or_none(RunLock.name == LOCK_NAME)
        if held and held.owner != owner and held.expires_at > now and not _owner_gone(held.owner):
            return False
        RunLock.insert(
            name=LOCK_NAME, owner=owner, expires_at=now + timedelta(seconds=ttl_seconds)
        ).on_conflict_replace().execute()
    return True


def renew_run_lock(owner: str, ttl_seconds: float = 120) -> None:
    """Keep the SQLite lock row alive while the run works (PostgreSQL needs nothing)."""
    if is_postgres():
        return
    with write_lock(LockKey.RUN):
        RunLock.update(expires_at=now_utc() + timedelta(seconds=ttl_seconds)).where(
            (RunLock.name == LOCK_NAME) & (RunLock.owner == owner)
        ).execute()


def release_run_lock(owner: str) -> None:
    db = database.obj
    if is_postgres(db):
        db.execute_sql(PG_RUN_LOCK.format(fn="pg_advisory_unlock"))
        return
    with write_lock(LockKey.RUN):
        RunLock.delete().where((RunLock.name == LOCK_NAME) & (RunLock.owner == owner)).execute()


def run_lock_holder() -> str | None:
    """Who holds the SQLite lock row (None on PostgreSQL or when free)."""
    if is_postgres():
        return None
    held = RunLock.get_or_none(RunLock.name == LOCK_NAME)
    return held.owner if held and held.expires_at > now_utc() else None


# ---- runs and batches -----------------------------------------------------------------------


def latest_run(as_of: date) -> Run | None:
    return Run.select().where(Run.as_of == as_of).order_by(Run.attempt.desc()).first()


def create_run(
    as_of: date, requested_by: str, rulesets: dict[str, dict[str, Any]], batch_size: int
) -> Run:
    """A new run of `as_of` (the next attempt for its date), its customers not listed yet
    (`plan_run` does that). Call it holding the run lock: the lock makes "is there a run of
    this date?" and the new run one step."""
    with write_lock(LockKey.RUN):
        previous = latest_run(as_of)
        run = Run.create(
            run_id=str(uuid.uuid4()),
            as_of=as_of,
            attempt=(previous.attempt + 1) if previous else 1,
            requested_by=requested_by,
            rulesets=rulesets,
            batch_size=batch_size,
            started_at=now_utc(),
            heartbeat_at=now_utc(),
        )
        details = {**_run_details(run), "rulesets": rulesets}
        append_event("run.started", storable(requested_by), details, at=run.started_at)
        return run


def resume_run(run: Run) -> None:
    """Mark an unfinished run as running again, by this process (holding the run lock); the
    operator log records it (`run.resumed`)."""
    with write_lock(LockKey.RUN):
        Run.update(state="running", error="").where(Run.run_id == run.run_id).execute()
        append_event("run.resumed", storable(run.requested_by), _run_details(run))


def _run_details(run: Run) -> dict[str, Any]:
    return {"run_id": run.run_id, "as_of": run.as_of, "attempt": run.attempt}


def plan_run(run_id: str, batches: Iterator[list[str]], owner: str) -> int:
    """Record `batches` of customer ids as the run's batches, a few hundred per transaction
    (writers are never held up for long, memory stays flat), then mark the run planned;
    return its number of customers. Call it holding the run lock. Batches recorded by a
    listing that stopped halfway are dropped first: no batch of an unplanned run has been
    worked on, since a run is executed only once planned."""
    with write_lock(LockKey.RUN):
        RunBatch.delete().where(RunBatch.run == run_id).execute()
    total, rows = 0, []

    def record() -> None:
        with write_lock(LockKey.RUN):
            RunBatch.insert_many(rows).execute()
        renew_run_lock(owner)  # listing a large portfolio takes a while
        rows.clear()

    for number, ids in enumerate(batches, start=1):
        total += len(ids)
        rows.append({"run": run_id, "number": number, "customer_ids": JSONText(_id_list(ids))})
        if len(rows) >= PLAN_ROWS_PER_COMMIT:
            record()
    if rows:
        record()
    Run.update(customers_total=total, planned_at=now_utc()).where(Run.run_id == run_id).execute()
    return total


def _id_list(ids: list[str]) -> str:
    """A batch's ids as the JSON text JSONField stores (compact)."""
    return json.dumps(ids, separators=(",", ":"), ensure_ascii=False)


def reset_stale_leases(run_id: str) -> int:
    """Hand out again batches whose lease expired or whose owner process here is gone."""
    now = now_utc()
    stale = [
        b.id
        for b in RunBatch.select(
            RunBatch.id, RunBatch.lease_owner, RunBatch.lease_expires_at
        ).where((RunBatch.run == run_id) & (RunBatch.state == "leased"))
        if b.lease_expires_at <= now or _owner_gone(b.lease_owner or "")
    ]
    if stale:
        with write_lock(LockKey.RUN_QUEUE):
            RunBatch.update(state="pending", lease_owner=None, lease_expires_at=None).where(
                RunBatch.id.in_(stale) & (RunBatch.state == "leased")
            ).execute()
    return len(stale)


def claim_batch(run_id: str, owner: str, lease_seconds: float) -> RunBatch | None:
    """The next pending (or lease-expired) batch of the run, leased to `owner`; None when none."""
    now = now_utc()
    claimable = (RunBatch.run == run_id) & (
        (RunBatch.state == "pending")
        | ((RunBatch.state == "leased") & (RunBatch.lease_expires_at < now))
    )
    db = database.obj
    if is_postgres(db):
        with db.atomic():
            query = RunBatch.select().where(claimable).order_by(RunBatch.number).limit(1)
            batch = query.for_update("FOR UPDATE SKIP LOCKED").first()
            if batch is not None:
                _lease(batch, owner, now, lease_seconds)
        return batch
    with write_lock(LockKey.RUN_QUEUE):
        batch = RunBatch.select().where(claimable).order_by(RunBatch.number).first()
        if batch is not None:
            _lease(batch, owner, now, lease_seconds)
    return batch


def _lease(batch: RunBatch, owner: str, now: datetime, lease_seconds: float) -> None:
    batch.state, batch.lease_owner = "leased", owner
    batch.lease_expires_at = now + timedelta(seconds=lease_seconds)
    batch.attempts += 1
    batch.save(
        only=[RunBatch.state, RunBatch.lease_owner, RunBatch.lease_expires_at, RunBatch.attempts]
    )


def commit_batch(
    batch_id: int,
    owner: str,
    decisions: Sequence[PreparedDecision],
    actions: Sequence[dict[str, Any]],
    errors: list[dict[str, Any]],
    figures: dict[str, Any],
    seconds: float,
) -> None:
    """Store a batch's decisions, results and actions and mark it done, all or nothing.

    `decisions` come from storage.decisions.prepare_decisions (done by the worker); `actions`
    are {customer_id, type, payload, decision_id}. Raises Conflict when the batch is no longer
    leased to `owner` (its lease expired and another worker took it): then nothing is stored,
    so no customer is evaluated twice.
    """
    with write_lock(LockKey.RUN_QUEUE):
        batch = RunBatch.get_by_id(batch_id)
        if batch.state != "leased" or batch.lease_owner != owner:
            raise Conflict(f"batch {batch.number} is no longer leased to {owner}")
        run_id = batch.run_id
        append_prepared(decisions)
        results = [
            [
                run_id,
                d.record["customer_id"],
                d.record["kind"],
                headline(d.record["outcome"]),
                d.record["decision_id"],
            ]
            for d in decisions
        ]
        _insert(RunResult, _RESULT_COLUMNS, results)
        customers = sorted({d.record["customer_id"] for d in decisions})
        now = now_utc()
        for chunk in _chunks(customers, 500):
            Action.update(
                state="void", state_reason=f"superseded by run {run_id}", updated_at=now
            ).where(
                Action.customer_id.in_(chunk) & (Action.state == "pending") & (Action.run != run_id)
            ).execute()
        rows = [
            [
                run_id,
                a["customer_id"],
                a["type"],
                a["payload"],
                a.get("decision_id"),
                now,
                "pending",
                "",
            ]
            for a in actions
        ]
        _insert(Action, _ACTION_COLUMNS, rows)
        batch.state, batch.finished_at, batch.seconds = "done", now, seconds
        batch.customers_evaluated = len(customers)
        batch.errors, batch.figures = errors, figures
        batch.save()
        Run.update(heartbeat_at=now).where(Run.run_id == run_id).execute()


_RESULT_COLUMNS = [
    RunResult.run,
    RunResult.customer_id,
    RunResult.kind,
    RunResult.outcome,
    RunResult.decision_id,
]
_ACTION_COLUMNS = [
    Action.run,
    Action.customer_id,
    Action.type,
    Action.payload,
    Action.decision_id,
    Action.created_at,
    Action.state,
    Action.state_reason,
]


def _insert(model: type, columns: list, rows: list[list]) -> None:
    """Bulk insert without peewee building the SQL value by value (storage.db.insert_rows)."""
    converters = [f.db_value for f in columns]
    insert_rows(
        model, columns, [[c(v) for c, v in zip(converters, row, strict=True)] for row in rows]
    )


def headline(outcome: dict[str, Any]) -> str:
    """The first outcome field's value: what the report counts and compares."""
    if not outcome:
        return ""
    return str(next(iter(outcome.values())))[:200]


def progress(run_id: str) -> dict[str, int]:
    """Batches and customers done so far."""
    done = RunBatch.select(
        pw.fn.COUNT(RunBatch.id), pw.fn.COALESCE(pw.fn.SUM(RunBatch.customers_evaluated), 0)
    ).where((RunBatch.run == run_id) & (RunBatch.state == "done"))
    batches_done, customers_done = done.tuples().first()
    batches_total = RunBatch.select().where(RunBatch.run == run_id).count()
    errors = sum(
        len(b.errors)
        for b in RunBatch.select(RunBatch.errors).where(
            (RunBatch.run == run_id) & (RunBatch.state == "done")
        )
    )
    return {
        "batches_done": batches_done,
        "batches_total": batches_total,
        "customers_done": int(customers_done) + errors,
        "errors": errors,
    }


def finish_run(run_id: str, state: str, report: dict[str, Any], error: str = "") -> None:
    """Record the end of a run (`finished` with its report, or `failed` with the error), and
    its event in the operator log (`run.finished`, `run.failed`) with the report's counts."""
    now = now_utc()
    with write_lock(LockKey.RUN):
        Run.update(state=state, report=report, error=error, finished_at=now).where(
            Run.run_id == run_id
        ).execute()
        run = Run.get_by_id(run_id)
        details = _run_details(run)
        for name in ("customers_total", "customers_evaluated", "errors_count"):
            if name in report:
                details[name] = report[name]
        if error:
            details["error"] = storable(error, 2000)
        append_event(f"run.{state}", storable(run.requested_by), details, at=now)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
