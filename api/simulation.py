"""Simulation (impact analysis): a candidate rule set beside the active version of its kind, on
every stored customer (or a seeded sample) as of a date. Nothing is stored: no decision, no
idempotency key; the result is the tally of api.impact.

Customers are read in keyset pages of `run.batch_size` ids, and the pages are evaluated by a
pool of `run.workers` processes (0: one per core), each with its own database connection and
engine, a bounded number of pages in flight. A portfolio of one page is evaluated here.
The result is deterministic: the same inputs give the same JSON, whatever the pool did.
"""

from __future__ import annotations

import hashlib
import heapq
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from api.impact import Impact
from api.impact import side as side_of
from api.lifecycle_rules import parse_text
from api.settings import Settings
from engine.order import decide_in_order, needed_for
from engine.ruleset import KIND_RE, RuleSet
from engine.runtime import Engine
from engine.trace import Evaluation

Progress = Callable[[int, int], None]  # (done, total)

MAX_SAMPLE = 1_000_000  # the sample's ids are held in memory
MAX_SEED = 2**63 - 1
DEFAULT_SEED = 1
MAX_VERSION = 2**31 - 1


class SimulationError(Exception):
    """A simulation or backtest cannot be made as asked; the message says why."""


class UnknownVersion(SimulationError):
    """No such rule-set kind or version."""


class NoActiveVersion(SimulationError):
    """The kind has no active version to compare with."""


class InvalidVersion(SimulationError):
    """A stored version that today's validator refuses (stored before a check was added)."""


class BadParameters(SimulationError):
    """Parameters out of range: `errors` maps each parameter to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


@dataclass(frozen=True)
class Candidate:
    """The rule set to try, with where it came from (a stored version, or a file)."""

    ruleset: RuleSet
    version: int | None
    label: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.ruleset.kind,
            "version": self.version,
            "sha256": self.ruleset.sha256,
            "label": self.label,
        }


def stored_candidate(kind: str, version: int) -> Candidate:
    """Version `version` of `kind`, parsed; UnknownVersion when there is none."""
    from storage.rulesets import get_version, list_kinds

    stored = None
    if KIND_RE.match(kind) and 1 <= version <= MAX_VERSION:
        stored = get_version(kind, version)
    if stored is None:
        known = list_kinds()
        if kind not in known:
            shown = ", ".join(known) or "none"
            raise UnknownVersion(f"unknown rule-set kind {kind[:64]!r}; known kinds: {shown}")
        raise UnknownVersion(f"rule set {kind} has no version {version}")
    return _parsed(stored)


def file_candidate(path: Path) -> Candidate:
    """A rule file, its kind read from it (any file name); RuleFileError when invalid."""
    from engine.errors import Problem, RuleFileError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError([Problem(str(path), f"cannot read file: {exc}")]) from None
    return Candidate(parse_text(text, str(path)), None, f"file {path}")


def active_version(kind: str) -> Candidate:
    """The active version of `kind`, what a candidate is compared with."""
    from storage.rulesets import get_active

    stored = get_active(kind)
    if stored is None:
        raise NoActiveVersion(f"rule set {kind} has no active version to compare with")
    return _parsed(stored)


def _parsed(stored: dict[str, Any]) -> Candidate:
    from engine.errors import RuleFileError

    label = f"version {stored['version']}"
    try:
        ruleset = parse_text(stored["source"], f"{stored['kind']} {label}")
    except RuleFileError as exc:
        raise InvalidVersion(
            f"rule set {stored['kind']} {label} does not validate: {exc}"
        ) from None
    return Candidate(ruleset, stored["version"], label)


def check_sample(sample: int | None, seed: int) -> None:
    """BadParameters unless the sample size and seed are in range."""
    errors = {}
    if sample is not None and not 1 <= sample <= MAX_SAMPLE:
        errors["sample"] = [f"must be between 1 and {MAX_SAMPLE:,} customers"]
    if not 0 <= seed <= MAX_SEED:
        errors["seed"] = [f"must be between 0 and {MAX_SEED}"]
    if errors:
        raise BadParameters(errors)


def simulate(
    settings: Settings,
    candidate: Candidate,
    as_of: date,
    sample: int | None = None,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate `candidate` and the active version of its kind for every stored customer (or
    `sample` customers chosen by `seed`) as of `as_of`; the from→to matrix, money per cell and
    currency, and the customers whose outcome changes. Stores nothing."""
    check_sample(sample, seed)
    baseline = active_version(candidate.ruleset.kind)
    size = settings.run.batch_size
    if sample is None:
        from storage.ledger import count_customers, iter_customer_ids

        total, pages = count_customers(), iter_customer_ids(size)
    else:
        ids = sample_customer_ids(sample, seed)
        total = len(ids)
        pages = (ids[start : start + size] for start in range(0, len(ids), size))
    spec = _Spec(
        as_of,
        baseline.ruleset.source,
        candidate.ruleset.source,
        candidate.label,
        _earlier_sources(candidate.ruleset, baseline.ruleset),
    )
    workers = settings.run.workers or os.cpu_count() or 1
    if workers > 1 and total > size:
        impact = _in_pool(settings.database_url, spec, pages, workers, total, progress)
    else:
        impact = _here(spec, pages, total, progress)
    return {
        "type": "simulate",
        "kind": candidate.ruleset.kind,
        "as_of": as_of.isoformat(),
        "candidate": candidate.to_json(),
        "active": baseline.to_json(),
        "sample": None if sample is None else {"size": sample, "seed": seed},
        "customers": total,
        **impact.to_json(candidate.ruleset, baseline.ruleset),
    }


def simulate_job(settings: Settings, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """The "simulate" job type (api.jobs): params kind, version, as_of, sample?, seed?."""
    candidate = stored_candidate(params["kind"], params["version"])
    as_of = date.fromisoformat(params["as_of"])
    seed = params.get("seed", DEFAULT_SEED)
    return simulate(settings, candidate, as_of, params.get("sample"), seed, progress)


def sample_customer_ids(size: int, seed: int) -> list[str]:
    """`size` stored customers chosen by `seed` (all of them when there are fewer), sorted.

    The customers whose ids rank lowest under a hash keyed by the seed: the same seed picks the
    same customers whatever order the database lists them in, and a customer added later
    changes the sample only if it ranks in. Holds `size` ids, not every id.
    """
    from storage.ledger import iter_customer_ids

    key = seed.to_bytes(8, "big")

    def rank(customer_id: str) -> bytes:
        return hashlib.blake2b(customer_id.encode("utf-8"), digest_size=8, key=key).digest()

    every = (customer_id for page in iter_customer_ids(5000) for customer_id in page)
    return sorted(heapq.nsmallest(size, every, key=rank))


def _earlier_sources(*rulesets: RuleSet) -> tuple[tuple[str, str], ...]:
    """(kind, source) of the active rule sets the candidate or the baseline wait on (`after`),
    directly or not: an account's simulated decision sees their outcome as the nightly run's
    does (a reminder draft sees tonight's hand-off)."""
    from api.usecases import load_active_rulesets

    kind = rulesets[0].kind
    active = {k: v.ruleset for k, v in load_active_rulesets().items() if k != kind}
    needed = {
        r.kind: r.source
        for ruleset in rulesets
        for r in needed_for(kind, {**active, kind: ruleset})
    }
    return tuple((k, source) for k, source in needed.items() if k != kind)


# ---- evaluating pages of customers ------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """What an evaluator needs, sent to worker processes: sources, not parsed rule sets."""

    as_of: date
    baseline_source: str
    candidate_source: str
    candidate_label: str
    earlier_sources: tuple[tuple[str, str], ...]  # the active rule sets both wait on


class _Evaluator:
    """Both rule sets, and the active ones they wait on, parsed and loaded in one engine;
    evaluates pages of customers."""

    def __init__(self, spec: _Spec):
        self.as_of = spec.as_of
        self.earlier = [parse_text(source, f"active {k}") for k, source in spec.earlier_sources]
        self.baseline = parse_text(spec.baseline_source, "active version")
        self.candidate = parse_text(spec.candidate_source, spec.candidate_label)
        self.engine = Engine()

    def decide(self, facts: dict[str, Any]) -> tuple[Evaluation, Evaluation]:
        """The account's evaluation by the baseline and by the candidate, each after the rule
        sets it waits on; those decide once for both."""
        evaluate = self.engine.evaluator(facts)
        kind, decided = self.baseline.kind, {}

        def once(ruleset: RuleSet, seen: dict[str, Any]) -> Evaluation:
            if ruleset.kind == kind:
                return evaluate(ruleset, seen)
            if ruleset.kind not in decided:
                decided[ruleset.kind] = evaluate(ruleset, seen)
            return decided[ruleset.kind]

        old, new = (
            next(
                step.evaluation
                for step in decide_in_order(once, [*self.earlier, ruleset], facts)
                if step.ruleset.kind == kind
            )
            for ruleset in (self.baseline, self.candidate)
        )
        return old, new

    def compute(self, customer_ids: list[str]) -> Impact:
        """The tally of one page of customers (a customer gone meanwhile is left out)."""
        from engine.facts import derive_facts

        impact = Impact(order_key="customer_id")
        ledgers = _load(customer_ids, impact)
        for customer_id in customer_ids:
            ledger = ledgers.get(customer_id)
            if ledger is None:
                continue
            subject = {"customer_id": customer_id}
            try:
                facts = derive_facts(ledger, self.as_of)
                old, new = self.decide(facts)
            except Exception as exc:  # noqa: BLE001 - one account's failure is counted, not fatal
                impact.add_error(subject, exc)
                continue
            impact.add(
                subject,
                ledger.customer.currency,
                facts["open_balance"],
                facts["overdue_balance"],
                side_of(old),
                side_of(new),
            )
        return impact


def _load(customer_ids: list[str], impact: Impact) -> dict[str, Any]:
    """The page's ledgers; when a row cannot be read, customer by customer, so one broken
    account is counted as an error and the rest of its page is evaluated."""
    from storage.ledger import load_ledgers

    try:
        return load_ledgers(customer_ids)
    except Exception:  # noqa: BLE001 - narrowed down below, customer by customer
        pass
    ledgers = {}
    for customer_id in customer_ids:
        try:
            ledgers.update(load_ledgers([customer_id]))
        except Exception as exc:  # noqa: BLE001 - counted in the result's errors
            impact.add_error({"customer_id": customer_id}, exc)
    return ledgers


def _here(spec: _Spec, pages: Iterator[list[str]], total: int, progress: Progress | None) -> Impact:
    evaluator, impact, done = _Evaluator(spec), Impact(order_key="customer_id"), 0
    for page in pages:
        impact.merge(evaluator.compute(page))
        done += len(page)
        if progress:
            progress(done, total)
    return impact


_WORKER: _Evaluator | None = None


def _worker_init(database_url: str, spec: _Spec) -> None:
    global _WORKER
    from storage.db import connect

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    connect(database_url)
    _WORKER = _Evaluator(spec)


def _worker_compute(customer_ids: list[str]) -> tuple[int, Impact]:
    if _WORKER is None:
        raise SimulationError("worker not initialised")
    return len(customer_ids), _WORKER.compute(customer_ids)


def _in_pool(
    database_url: str,
    spec: _Spec,
    pages: Iterator[list[str]],
    workers: int,
    total: int,
    progress: Progress | None,
) -> Impact:
    """Pages evaluated by `workers` spawned processes, at most two pages each in flight."""
    impact, done = Impact(order_key="customer_id"), 0
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, _worker_init, (database_url, spec)) as pool:
        pending: set[Future] = set()

        def collect() -> None:
            nonlocal pending, done
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                count, part = future.result()
                impact.merge(part)
                done += count
                if progress:
                    progress(done, total)

        try:
            for page in pages:
                pending.add(pool.submit(_worker_compute, page))
                if len(pending) >= 2 * workers:
                    collect()
            while pending:
                collect()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return impact
