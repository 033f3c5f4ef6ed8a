"""The nightly run (SPEC §8): every open account re-evaluated with every active rule set.

A run of a date is claimed under the run lock — resumed if unfinished, else made (the next
attempt, only with force once a run of the date finished) with the rule-set versions it will use
pinned — and, still under that lock, its customers are listed into batches and executed by
workers that claim batches, evaluate them and commit each batch with its decisions, results and
actions in one transaction. So concurrent starters never make two runs of a date, a run resumes
where it stopped, and never evaluates a customer twice. Worker processes end with the process
that started them, however it ends.

Execution: one process works alone; with more workers, on SQLite this process coordinates —
local worker processes compute and this process does all the writing (SQLite has one writer) —
and on PostgreSQL every worker process claims and commits batches itself (`FOR UPDATE SKIP
LOCKED`), which is also how `credo run --join` on other machines helps a run along.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from api.arms import Challenger, arm_versions, parse_challengers
from api.nightly.actions import derive_actions
from api.nightly.messages import MessageError, MessageRenderer
from api.nightly.report import add_figures
from api.nightly.templates import TEMPLATE_KINDS, pinned_templates
from api.settings import Settings
from api.usecases import ActiveRuleSet, decide_account, parse_versions
from engine.errors import RuleFileError
from engine.facts import derive_facts_and_account
from engine.ledger import Ledger
from engine.runtime import Engine
from engine.trace import canonical_json, canonical_json_plain, to_jsonable

log = logging.getLogger("credo.run")
Progress = Callable[[dict[str, Any]], None]


class RunError(Exception):
    """A run cannot start or cannot go on (no rule sets, lock busy, ...)."""


class RunLockBusy(RunError):
    """Another run holds the run lock: nothing was claimed."""


@dataclass
class StopFlag:
    """Set by SIGTERM/SIGINT: workers finish the batch in hand, commit it and stop."""

    stopped: bool = False

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if self.stopped:  # a second signal: stop now
            raise KeyboardInterrupt
        self.stopped = True
        log.warning("stopping after the batch in hand (signal %s)", signal.Signals(signum).name)


@dataclass
class BatchOutput:
    decisions: list[Any] = field(default_factory=list)  # storage PreparedDecision
    actions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


# ---- claiming -------------------------------------------------------------------------------


def start_run(
    settings: Settings,
    as_of: date,
    force: bool,
    requested_by: str,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    stop: StopFlag | None = None,
    wait: bool = False,
    on_claim: Callable[[Any, str], None] | None = None,
) -> tuple[dict[str, Any], str]:
    """Claim the run of `as_of` and work it to its end, holding the run lock throughout:
    (the run with its report, "new" | "resume" | "finished").

    `on_claim(run, status)` is called as soon as the run is claimed, before its customers
    are listed. Raises RunError when another run holds the lock (after waiting for it, with
    `wait`): then nothing was claimed. A stop request leaves the run resumable.
    """
    from storage.nightly import owner_id
    from storage.worklist import run_to_json

    owner, stop = owner_id(), stop or StopFlag()
    with _run_lock(owner, wait):
        run, status = _claim(settings, as_of, force, requested_by)
        if on_claim is not None:
            on_claim(run, status)
        if status == "finished":
            return run_to_json(run), status
        return _execute(settings, run.run_id, owner, workers, progress, stop), status


def prepare_run(
    settings: Settings, as_of: date, force: bool, requested_by: str, wait: bool = False
) -> tuple[Any, str]:
    """Claim the run of `as_of` and list its customers, under the run lock, without executing
    it (`execute_run` does): (run, "new" | "resume" | "finished")."""
    from storage.nightly import owner_id

    owner = owner_id()
    with _run_lock(owner, wait):
        run, status = _claim(settings, as_of, force, requested_by)
        if status != "finished":
            _plan(settings, run.run_id, owner)
        return _reload(run), status


def _claim(settings: Settings, as_of: date, force: bool, requested_by: str) -> tuple[Any, str]:
    """The run to work on for `as_of`; call it holding the run lock, which makes the look for
    a run of the date and the new run one step (SPEC §8: a date is never evaluated twice).

    An unfinished run of the date is resumed; a finished one is left alone unless `force`,
    which makes a new run (the next attempt).
    """
    from storage.nightly import create_run, latest_run, resume_run
    from storage.rulesets import list_active

    run = latest_run(as_of)
    if run is not None and run.state != "finished":
        # Under the lock, no process works on it: it is this process's run now.
        resume_run(run)
        return _reload(run), "resume"
    if run is not None and not force:
        return run, "finished"
    from api.arms import running_challengers
    from api.rollout import activate_due

    activate_due()  # the versions active now: a pending activation whose time came is made
    active = list_active()
    if not active:
        raise RunError("no active rule sets: run `credo init` first")
    pinned = {r["kind"]: {"version": r["version"], "sha256": r["sha256"]} for r in active}
    for kind, challenger in running_challengers().items():
        if kind in pinned:  # the run decides with it for its arm's customers (api.arms)
            pinned[kind]["challenger"] = challenger
    return create_run(as_of, requested_by, pinned, settings.run.batch_size), "new"


def _plan(settings: Settings, run_id: str, owner: str) -> None:
    """List the run's customers into batches, unless done already (holding the run lock)."""
    from storage.ledger import iter_open_customer_ids
    from storage.nightly import plan_run
    from storage.worklist import get_run

    run = get_run(run_id)
    if run.planned_at is None:
        plan_run(run_id, iter_open_customer_ids(run.batch_size, as_of=run.as_of), owner)


def _reload(run: Any) -> Any:
    from storage.worklist import get_run

    return get_run(run.run_id)


@contextmanager
def _run_lock(owner: str, wait: bool) -> Iterator[None]:
    """Hold the run lock for a block; RunError when another run holds it (after waiting for
    it to be free, with `wait`)."""
    from storage.nightly import release_run_lock, run_lock_holder, try_run_lock

    while not try_run_lock(owner):
        if not wait:
            holder = run_lock_holder()
            raise RunLockBusy(f"another run is in progress{f' ({holder})' if holder else ''}")
        time.sleep(2)
    try:
        yield
    finally:
        release_run_lock(owner)


# ---- executing ------------------------------------------------------------------------------


def execute_run(
    settings: Settings,
    run_id: str,
    workers: int | None = None,
    progress: Progress | None = None,
    stop: StopFlag | None = None,
    wait: bool = False,
) -> dict[str, Any]:
    """Work a claimed run to its end under the run lock; return the run with its report.

    Raises RunError when another run holds the lock (after waiting for it, with `wait`).
    A stop request leaves the run resumable (state running) after the batch in hand.
    """
    from storage.nightly import owner_id

    owner, stop = owner_id(), stop or StopFlag()
    with _run_lock(owner, wait):
        return _execute(settings, run_id, owner, workers, progress, stop)


def _execute(settings, run_id: str, owner: str, workers, progress, stop) -> dict[str, Any]:
    """List the run's customers if not done yet, then work its batches (holding the lock)."""
    from storage.nightly import finish_run, reset_stale_leases
    from storage.runs import Run
    from storage.worklist import get_run, run_to_json

    Run.update(state="running", error="").where(Run.run_id == run_id).execute()
    started = time.monotonic()
    try:
        _plan(settings, run_id, owner)
        reset_stale_leases(run_id)
        run = get_run(run_id)
        count = workers or settings.run.workers or os.cpu_count() or 1
        _work(settings, run, owner, count, progress, stop)
        _await_batches(settings, run.run_id, owner, progress, stop)
    except Exception as exc:
        finish_run(run_id, "failed", {}, f"{type(exc).__name__}: {exc}")
        raise
    if not stop.stopped:
        from api.nightly.report import build_report

        report = build_report(run_id, time.monotonic() - started)
        finish_run(run_id, "finished", report)
    return run_to_json(get_run(run_id))


def _await_batches(settings, run_id: str, owner: str, progress, stop) -> None:
    """Wait for batches other workers (`--join`) still hold; take over any whose lease lapses.

    Only when every batch is done is the run finished and its report written.
    """
    from storage.nightly import progress as run_progress
    from storage.nightly import renew_run_lock, reset_stale_leases
    from storage.worklist import get_run

    context = None
    while not stop.stopped:
        state = run_progress(run_id)
        if state["batches_done"] >= state["batches_total"]:
            return
        if reset_stale_leases(run_id):
            context = context or WorkerContext.load(settings, get_run(run_id))
            _claim_loop(settings, get_run(run_id), owner, progress, stop, context)
            continue
        renew_run_lock(owner)
        time.sleep(1.0)


def _work(settings, run, owner, count, progress, stop) -> None:
    from storage.db import is_postgres

    if count <= 1:
        _claim_loop(settings, run, owner, progress, stop, WorkerContext.load(settings, run))
    elif is_postgres():
        _work_postgres(settings, run, owner, count, progress, stop)
    else:
        _work_sqlite(settings, run, owner, count, progress, stop)


def _claim_loop(settings, run, owner, progress, stop, context) -> None:
    """Claim, compute and commit batches until none is left (or a stop is requested)."""
    from storage.nightly import claim_batch

    lease = settings.run.lease_seconds
    while not stop.stopped:
        batch = claim_batch(run.run_id, owner, lease)
        if batch is None:
            return
        output = context.compute(batch.customer_ids)
        _commit(run, batch.id, owner, output, progress)


def _commit(run: Any, batch_id: int, owner: str, output: BatchOutput, progress) -> None:
    """Store a computed batch, keep the run lock alive, report progress."""
    from storage.nightly import commit_batch, renew_run_lock
    from storage.nightly import progress as run_progress

    commit_batch(
        batch_id,
        owner,
        output.decisions,
        output.actions,
        output.errors,
        output.figures,
        output.seconds,
    )
    renew_run_lock(owner)
    if progress:
        progress({**run_progress(run.run_id), "customers_total": run.customers_total})


def _work_postgres(settings, run, owner, count, progress, stop) -> None:
    """count − 1 worker processes plus this one, all claiming and committing batches."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_join_main, args=(settings, run.run_id, os.getpid()), daemon=True)
        for _ in range(count - 1)
    ]
    for proc in procs:
        proc.start()
    try:
        _claim_loop(settings, run, owner, progress, stop, WorkerContext.load(settings, run))
    finally:
        if stop.stopped:
            for proc in procs:
                proc.terminate()  # their SIGTERM handler finishes the batch in hand
        for proc in procs:
            proc.join()


def _join_main(settings: Settings, run_id: str, parent: int) -> None:
    """A worker process spawned by the run's process: claims and commits batches."""
    from storage.db import connect
    from storage.nightly import owner_id
    from storage.worklist import get_run

    _end_with_parent(parent)
    stop = StopFlag()
    stop.install()
    connect(settings.database_url)
    run = get_run(run_id)
    context = WorkerContext.load(settings, run)
    _claim_loop(settings, run, owner_id(), None, stop, context)


def join_run(settings: Settings, as_of: date, stop: StopFlag | None = None) -> int:
    """Help the unfinished run of `as_of` (PostgreSQL): claim batches until none is left."""
    from storage.db import is_postgres
    from storage.nightly import latest_run, owner_id
    from storage.nightly import progress as run_progress

    if not is_postgres():
        raise RunError("--join needs PostgreSQL: on SQLite one process coordinates a run")
    run = latest_run(as_of)
    if run is None or run.state == "finished":
        raise RunError(f"no unfinished run for {as_of}")
    if run.planned_at is None:
        raise RunError(f"the run of {as_of} is still listing its customers: try again shortly")
    _claim_loop(
        settings, run, owner_id(), None, stop or StopFlag(), WorkerContext.load(settings, run)
    )
    return run_progress(run.run_id)["customers_done"]


def _end_with_parent(parent: int) -> None:
    """End this worker process the moment the run's process ends, however it ends (SIGKILL
    included): without it, workers would go on committing batches with the run lock gone.

    Linux: the kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG; sent when
    the thread that started the worker ends: the run starts its workers from the thread that
    works the run and outlives them). Elsewhere a thread watches the parent's pid.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it ended before the watch began
        os._exit(1)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


_POOL_CONTEXT: WorkerContext | None = None


def _pool_init(settings: Settings, run_id: str, parent: int) -> None:
    global _POOL_CONTEXT
    from storage.db import connect
    from storage.worklist import get_run

    _end_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when to stop
    connect(settings.database_url)
    _POOL_CONTEXT = WorkerContext.load(settings, get_run(run_id))


def _pool_compute(customer_ids: list[str]) -> BatchOutput:
    if _POOL_CONTEXT is None:
        raise RunError("worker not initialised")
    return _POOL_CONTEXT.compute(customer_ids)


def _work_sqlite(settings, run, owner, count, progress, stop) -> None:
    """Local worker processes compute; this process claims batches and does all the writing."""
    from storage.nightly import claim_batch

    ctx = multiprocessing.get_context("spawn")
    lease = settings.run.lease_seconds
    init = (settings, run.run_id, os.getpid())
    with ctx.Pool(count, initializer=_pool_init, initargs=init) as pool:
        in_flight: list[tuple[Any, Any]] = []
        exhausted = False
        while in_flight or not exhausted:
            while not exhausted and not stop.stopped and len(in_flight) < 2 * count:
                batch = claim_batch(run.run_id, owner, lease)
                if batch is None:
                    exhausted = True
                    break
                in_flight.append((batch, pool.apply_async(_pool_compute, (batch.customer_ids,))))
            if stop.stopped:
                exhausted = True
            if not in_flight:
                break
            batch, pending = in_flight.pop(0)
            output = pending.get()
            _commit(run, batch.id, owner, output, progress)
        if stop.stopped:
            # batches claimed but not committed go back to the queue at once
            from storage.nightly import reset_stale_leases

            reset_stale_leases(run.run_id)


# ---- computing one batch --------------------------------------------------------------------


@dataclass
class WorkerContext:
    """What a worker needs to compute batches: the pinned rule sets, an engine, and the
    templates stored with the pinned reminder version."""

    run_id: str
    as_of: date
    versions: list[ActiveRuleSet]
    engine: Engine
    renderer: MessageRenderer | None
    challengers: dict[str, Challenger] = field(default_factory=dict)
    challenger_renderer: MessageRenderer | None = None

    @classmethod
    def load(cls, settings: Settings, run: Any) -> WorkerContext:
        from storage.rulesets import get_version

        pinned_versions = []
        for kind, pinned in sorted(run.rulesets.items()):
            stored = get_version(kind, pinned["version"])
            if stored is None or stored["sha256"] != pinned["sha256"]:
                raise RunError(f"rule set {kind} version {pinned['version']} is missing or changed")
            pinned_versions.append(stored)
        parsed, problems = parse_versions(pinned_versions)  # each after those it names
        if problems:
            raise RunError("; ".join(str(p) for p in problems))
        versions = [parsed[kind] for kind in sorted(parsed)]
        pins = {k: p["challenger"] for k, p in run.rulesets.items() if p.get("challenger")}
        try:
            challengers = parse_challengers(pins, parsed)
        except (LookupError, RuleFileError) as exc:
            raise RunError(str(exc)) from None
        return cls(
            run.run_id, run.as_of, versions, Engine(), _renderer(run.rulesets),
            challengers, _renderer(pins) if pins else None,
        )  # fmt: skip

    def compute(self, customer_ids: list[str]) -> BatchOutput:
        """Decisions, actions, errors and portfolio figures of one batch (nothing stored)."""
        from storage.decisions import prepare_decisions
        from storage.models import JSONText

        started = time.perf_counter()
        output = BatchOutput()
        ledgers, failed = _load(customer_ids)
        output.errors.extend(failed)
        totals: dict[str, Decimal] = {}
        requested_by = f"run:{self.run_id}"
        for customer_id in customer_ids:
            ledger = ledgers.get(customer_id)
            try:
                if ledger is None:
                    if any(e["customer_id"] == customer_id for e in failed):
                        continue
                    raise RunError("customer not found")
                facts, account = derive_facts_and_account(ledger, self.as_of)
                versions, arms = self._arm_versions(customer_id)
                records = decide_account(  # one account's rule sets, in their declared order
                    self.engine.evaluator(facts), versions, facts, customer_id, self.as_of,
                    requested_by, via="run", facts_json=to_jsonable(facts), arms=arms,
                )  # fmt: skip
                by_kind = {r["kind"]: r for r in records}
                renderer = self._renderer_for(arms)
                actions = derive_actions(by_kind, facts, ledger, self.as_of, renderer, account)
                # encoded here, not by the writer, and sent to it without facts and trace
                prepared = [d.for_writer() for d in prepare_decisions(records)]
                for action in actions:
                    action["decision_id"] = action["payload"].get("decision_id")
                    action["payload"] = JSONText(_payload_json(action["payload"]))
                add_figures(totals, facts, ledger, self.as_of)
            except Exception as exc:  # one account's failure is recorded; the run goes on
                output.errors.append({"customer_id": customer_id, "error": _describe(exc)})
                continue
            output.decisions.extend(prepared)
            output.actions.extend(actions)
        output.figures = {name: str(value) for name, value in totals.items()}
        output.seconds = time.perf_counter() - started
        return output

    def _arm_versions(self, customer_id: str) -> tuple[list[ActiveRuleSet], dict[str, Any]]:
        """The pinned versions that decide for the customer (its arm's, under an experiment)
        and the arm of each kind under one."""
        if not self.challengers:
            return self.versions, {}
        champions = {v.kind: v for v in self.versions}
        chosen, arms = arm_versions(champions, self.challengers, customer_id)
        return [chosen[kind] for kind in sorted(chosen)], arms

    def _renderer_for(self, arms: dict[str, Any]) -> MessageRenderer | None:
        """A reminder challenger's customers get its letters (the templates stored with it)."""
        if any(arms.get(k, {}).get("name") == "challenger" for k in TEMPLATE_KINDS):
            return self.challenger_renderer
        return self.renderer


def _renderer(pinned: dict[str, Any]) -> MessageRenderer | None:
    try:
        return MessageRenderer(pinned_templates(pinned))
    except MessageError as exc:
        log.warning("reminder messages disabled: %s", exc)
        return None


def _payload_json(payload: dict[str, Any]) -> str:
    """An action's payload as canonical JSON; most are JSON values already (no conversion)."""
    try:
        return canonical_json_plain(payload)
    except TypeError:  # a Decimal or date left in it
        return canonical_json(payload)


def _load(customer_ids: list[str]) -> tuple[dict[str, Ledger], list[dict[str, Any]]]:
    """The batch's ledgers in a few queries; when a row cannot be read, customer by customer,
    so one broken account is recorded as an error and does not sink its batch."""
    from storage.ledger import load_ledgers

    try:
        return load_ledgers(customer_ids), []
    except Exception:  # noqa: BLE001 - narrowed down below, customer by customer
        pass
    ledgers, errors = {}, []
    for customer_id in customer_ids:
        try:
            ledgers.update(load_ledgers([customer_id]))
        except Exception as exc:  # noqa: BLE001 - recorded in the run report
            errors.append({"customer_id": customer_id, "error": _describe(exc)})
    return ledgers, errors


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500]
