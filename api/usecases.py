"""Use cases shared by the HTTP API, the command line and the nightly run.

Each loads what it needs from storage, calls the engine, and stores the result; the front ends
only translate arguments and errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from engine.errors import EngineError, Problem, RuleFileError
from engine.explanation import explanation
from engine.facts import derive_facts
from engine.ledger import Ledger
from engine.order import (
    Evaluate,
    Step,
    check_cross_references,
    decide_in_order,
    needed_for,
    parse_rulesets,
)
from engine.ruleset import RuleSet
from engine.runtime import Engine
from engine.trace import Evaluation, to_jsonable

DEFAULT_KINDS = ("credit", "reminder", "handoff")


class RuleSetVersionLike(Protocol):
    """A parsed rule set with the stored version it came from."""

    kind: str
    version: int
    sha256: str
    ruleset: RuleSet


@dataclass(frozen=True)
class ActiveRuleSet:
    """One parsed, stored rule-set version (usually the active one of its kind)."""

    kind: str
    version: int
    sha256: str
    ruleset: RuleSet


def parse_versions(
    stored: Iterable[Mapping[str, Any]], ready: Mapping[str, RuleSet] | None = None
) -> tuple[dict[str, ActiveRuleSet], list[Problem]]:
    """Stored versions ({kind, version, sha256, source}) that decide together, parsed in their
    declared order (engine.order.parse_rulesets), by kind; and the problems of those that do
    not parse. `ready` holds rule sets parsed before that the versions may name in `after`."""
    by_kind = {s["kind"]: s for s in stored}
    sources = {k: (s["source"], f"{k} version {s['version']}") for k, s in by_kind.items()}
    parsed, problems = parse_rulesets(sources, ready)
    active = {
        kind: ActiveRuleSet(kind, by_kind[kind]["version"], by_kind[kind]["sha256"], ruleset)
        for kind, ruleset in parsed.items()
    }
    return active, problems


def load_active_rulesets() -> dict[str, ActiveRuleSet]:
    """Every kind's active version from storage, parsed, by kind (RuleFileError if one does
    not parse)."""
    from storage import rulesets

    active, problems = parse_versions(rulesets.list_active())
    if problems:
        raise RuleFileError(problems)
    return active


def cross_reference_problems(candidate: RuleSet) -> list[Problem]:
    """What would break if `candidate` became the active version of its kind: the active rule
    sets, with the candidate in its kind's place, must hold together (engine.order.
    check_cross_references: a rule set after another reads its outcome fields). Activation
    must refuse a candidate with problems; each names the rule set that reads what is gone."""
    together = {kind: a.ruleset for kind, a in load_active_rulesets().items()}
    together[candidate.kind] = candidate
    return check_cross_references(together)


class UnknownCustomer(Exception):
    """No customer with that id in the stored ledger."""

    def __init__(self, customer_id: str):
        super().__init__(f"unknown customer {customer_id!r}")
        self.customer_id = customer_id


def gather_facts(
    customer_id: str | None,
    given: Mapping[str, Any] | None,
    as_of: date,
    ruleset: RuleSet | None = None,
) -> dict[str, Any]:
    """The facts a decision request evaluates (HTTP and CLI alike).

    Without a customer: the given facts, which must be complete. With one: the facts derived
    from its stored ledger as of `as_of`, the given facts adding to or overriding them (None
    makes a fact absent); new_exposure and undisputed_overdue_balance follow overridden
    balances. Given facts may also hold the facts an earlier decision gives `ruleset`
    (handoff_action for a rule set after handoff), checked against that decision's outcome.
    Raises FactError naming each bad fact, UnknownCustomer.
    """
    from engine.errors import FactError
    from engine.facts import check_facts, fill_defaults
    from storage.ledger import load_ledger

    earlier = ruleset.earlier_facts() if ruleset is not None else {}
    if customer_id is None:
        return check_facts(dict(given or {}), complete=True, earlier=earlier)
    given = dict(given or {})
    overrides = check_facts(given, complete=False, earlier=earlier)
    if overrides.get("customer_id", customer_id) != customer_id:
        raise FactError({"customer_id": ["must equal customer_id when both are given"]})
    ledger = load_ledger(customer_id)
    if ledger is None:
        raise UnknownCustomer(customer_id)
    facts = derive_facts(ledger, as_of, overrides.get("requested_amount", Decimal("0.00")))
    for name, value in given.items():
        if value is None:
            facts.pop(name, None)
    facts.update(overrides)
    fill_defaults(facts, overrides)
    return facts


def build_decision_record(
    evaluation: Evaluation,
    ruleset_version_info: RuleSetVersionLike | Mapping[str, Any],
    facts: Mapping[str, Any],
    customer_id: str | None,
    as_of: date,
    requested_by: str,
    facts_json: dict[str, Any] | None = None,
    *,
    via: str,
    earlier: Iterable[Mapping[str, Any]] = (),
    arm: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The decision to store (SPEC §5) for one evaluation: a new id, now as created_at, facts
    and outcome as JSON values. `ruleset_version_info` gives kind, version and sha256;
    `facts_json`, the facts already as JSON values, is shared by the records that pass it;
    `via` is how the decision is made: "api", "run" or "cli"; `earlier` lists where facts
    came from earlier decisions ({kind, version, sha256, decision_id, facts}); `arm` is the
    arm that decided under champion/challenger ({name, experiment}: api.arms), else None.
    Its `explanation` says it in plain words (engine.explanation)."""
    info = ruleset_version_info
    if isinstance(info, Mapping):
        ruleset = {"kind": info["kind"], "version": info["version"], "sha256": info["sha256"]}
    else:
        ruleset = {"kind": info.kind, "version": info.version, "sha256": info.sha256}
    return {
        "decision_id": str(uuid.uuid4()),
        "kind": evaluation.kind,
        "customer_id": customer_id,
        "as_of": as_of,
        "outcome": to_jsonable(evaluation.outcome),
        "reasons": list(evaluation.reasons),
        "fired": [rule.to_json() for rule in evaluation.fired],
        "ruleset": ruleset,
        "facts": facts_json if facts_json is not None else to_jsonable(dict(facts)),
        "requested_by": requested_by,
        "created_at": datetime.now(UTC),
        "engine_us": evaluation.engine_us,
        "via": via,
        "earlier": [dict(e) for e in earlier],
        "explanation": explanation(evaluation.kind, evaluation.outcome, evaluation.fired),
        "arm": dict(arm) if arm is not None else None,
    }


def _ref(version: RuleSetVersionLike, decision_id: str | None, facts: Iterable[str]) -> dict:
    """Where a decision's facts came from an earlier decision (the record's `earlier`)."""
    return {
        "kind": version.kind,
        "version": version.version,
        "sha256": version.sha256,
        "decision_id": decision_id,
        "facts": list(facts),
    }


def decide_account(
    evaluate: Evaluate,
    versions: Iterable[RuleSetVersionLike],
    facts: dict[str, Any],
    customer_id: str | None,
    as_of: date,
    requested_by: str,
    *,
    via: str,
    facts_json: dict[str, Any] | None = None,
    arms: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One account decided by several rule-set versions, each after those it names in
    `after` (engine.order.decide_in_order): a decision record per version, in evaluation order,
    ready to be stored together. A record whose rule set read earlier decisions holds them in
    its facts and names them, with their decision ids, in `earlier`. `facts_json` (the facts
    as JSON values) is shared by the records that read nothing earlier. `arms` gives, by
    kind, the arm of the kinds under champion/challenger (their `versions` are the arm's)."""
    by_sha = {v.ruleset.sha256: v for v in versions}
    steps = decide_in_order(evaluate, [v.ruleset for v in by_sha.values()], facts)
    made: dict[str, tuple[dict[str, Any], RuleSetVersionLike]] = {}
    for step in steps:
        version = by_sha[step.ruleset.sha256]
        refs = [
            _ref(made[e.kind][1], made[e.kind][0]["decision_id"], e.facts) for e in step.earlier
        ]
        shared = facts_json if not step.earlier else None
        record = build_decision_record(
            step.evaluation, version, step.facts, customer_id, as_of, requested_by, shared,
            via=via, earlier=refs, arm=(arms or {}).get(version.kind),
        )  # fmt: skip
        made[version.kind] = (record, version)
    return [record for record, _ in made.values()]


def decide_one(
    evaluate: Evaluate,
    active: Mapping[str, RuleSetVersionLike],
    kind: str,
    customer_id: str | None,
    given: Mapping[str, Any] | None,
    as_of: date,
    requested_by: str,
    *,
    via: str,
    arm: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The decision record for one request (POST /v1/decisions/{kind}, `credo decide`), not
    yet stored. For a stored customer, the rule sets `kind` is ordered after decide first, and
    their outcome becomes its facts without being stored themselves; facts the caller gives
    (handoff_action, or null to leave it absent) win. Facts given without a customer are
    taken as they are: an earlier-decision fact not given is absent.
    Raises FactError, UnknownCustomer, EngineError."""
    version = active[kind]
    facts = gather_facts(customer_id, given, as_of, version.ruleset)
    earlier_names = version.ruleset.earlier_facts()
    given_earlier = {k: facts.get(k) for k in given or {} if k in earlier_names}
    if customer_id is None or not version.ruleset.after:
        evaluation = evaluate(version.ruleset, facts)
        return build_decision_record(
            evaluation, version, facts, customer_id, as_of, requested_by, via=via, arm=arm
        )
    base = {k: v for k, v in facts.items() if k not in earlier_names}
    chain = needed_for(kind, {k: v.ruleset for k, v in active.items()})
    steps = decide_in_order(evaluate, chain, base, given_earlier)
    by_kind: dict[str, Step] = {s.ruleset.kind: s for s in steps}
    step = by_kind[kind]
    refs = [_ref(active[e.kind], None, e.facts) for e in step.earlier if e.facts]
    return build_decision_record(
        step.evaluation, version, step.facts, customer_id, as_of, requested_by,
        via=via, earlier=refs, arm=arm,
    )  # fmt: skip


def decide_customers(
    engine: Engine,
    rulesets: Iterable[RuleSetVersionLike] | Mapping[str, RuleSetVersionLike],
    ledgers: Mapping[str, Ledger],
    as_of: date,
    requested_by: str,
    *,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every customer with every rule set and store the decisions in one append.

    Facts are derived as of `as_of` (no requested amount). A customer whose facts or evaluation
    fail raises EngineError, or, with `on_error`, is reported there and skipped, so one bad
    account does not stop a batch. Takes `engine.lock` while evaluating. Returns the stored
    decisions (with seq and hash, made via "run"), customer by customer, in evaluation order
    (each rule set after those it names in `after`).
    """
    from storage.decisions import append_decisions

    versions = list(rulesets.values() if isinstance(rulesets, Mapping) else rulesets)
    records: list[dict[str, Any]] = []
    with engine.lock:
        for customer_id, ledger in ledgers.items():
            try:
                facts = derive_facts(ledger, as_of)
                decided = decide_account(
                    engine.evaluator(facts), versions, facts, customer_id, as_of,
                    requested_by, via="run",
                )  # fmt: skip
            except EngineError as exc:
                if on_error is None:
                    raise
                on_error(customer_id, exc)
                continue
            records.extend(decided)
    return append_decisions(records)


def load_default_rulesets(rules_dir: Path, created_by: str = "credo init") -> list[dict[str, Any]]:
    """Store the shipped rule sets (rules/<kind>.toml): the site's policy lives in the database.
    A reminder version is stored with the shipped templates (rules/templates: its texts and
    company.toml), which belong to it as much as its rules do.

    A kind with no version gets the file as active version 1. A kind with versions keeps its
    active version; when the file (with its templates) differs from every stored version of
    the kind (an upgrade shipped a new default), it is stored as a new draft noted "shipped
    default from credo X.Y", never activated: a controller reviews, proposes and activates it
    through the lifecycle. Versions stored before versions had templates are given the shipped
    ones (what every run read until then), each recorded as a `templates_added` event.
    Running it twice changes nothing. Raises RuleFileError for an invalid file, before storing
    anything. Each entry says what was done: loaded, drafted or kept.
    """
    from api.lifecycle import Credo
    from api.nightly.templates import has_templates
    from storage import rulesets

    actor = Credo(name=created_by, owner=created_by)
    files = sorted(Path(rules_dir).glob("*.toml"))
    parsed = load_ruleset_files(files)
    shipped_templates = _shipped_templates(Path(rules_dir) / "templates")
    report = []
    for path, ruleset in zip(files, parsed, strict=True):
        kind = ruleset.kind
        templates = shipped_templates if has_templates(kind) else None
        with rulesets.locked():
            active = rulesets.get_active(kind)
            entry = {"kind": kind, "file": str(path), "active": active and active["version"]}
            if templates is not None:
                entry["templates"] = str(Path(rules_dir) / "templates")
            if not rulesets.history(kind):
                note = f"default rule set loaded from {path.name}"
                stored = _store_shipped(ruleset, templates, actor, note, "active")
                report.append({**entry, "action": "loaded", "version": stored["version"]})
                report[-1]["active"] = stored["version"]
                continue
            if templates is not None:
                entry["templates_added"] = _add_missing_templates(kind, templates, actor)
            same = _same_version(kind, ruleset, templates)
            if same is not None:
                report.append({**entry, "action": "kept", "version": same})
                continue
            note = f"shipped default from credo {credo_version()} ({path.name})"
            stored = _store_shipped(ruleset, templates, actor, note, "draft")
            report.append({**entry, "action": "drafted", "version": stored["version"]})
    return report


def load_ruleset_files(paths: Iterable[Path]) -> list[RuleSet]:
    """Rule files that decide together (rules/*.toml), each validated against those it names
    in `after`, in the order given; RuleFileError with every problem of every file, and with
    those of the set as a whole (engine.order.check_cross_references)."""
    paths = list(paths)
    sources: dict[str, tuple[str, str]] = {}
    problems: list[Problem] = []
    for path in paths:
        try:
            sources[path.stem] = (path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), f"cannot read file: {exc}"))
    parsed, more = parse_rulesets(sources)
    problems += more
    if not problems:
        problems = check_cross_references(parsed)
    if problems:
        raise RuleFileError(problems)
    return [parsed[path.stem] for path in paths]


def _shipped_templates(directory: Path) -> dict[str, str] | None:
    """The templates shipped in `directory`, or None when there is no such directory."""
    from api.nightly.templates import read_templates

    return read_templates(directory) if directory.is_dir() else None


def _same_version(kind: str, ruleset: RuleSet, templates: dict[str, str] | None) -> int | None:
    """The lowest stored version of `kind` with this text and these templates, or None."""
    from api.nightly.templates import templates_sha256
    from storage import rulesets

    files_sha = templates_sha256(templates) if templates is not None else None
    for stored in rulesets.history(kind):
        if stored["sha256"] == ruleset.sha256 and stored["templates_sha256"] == files_sha:
            return stored["version"]
    return None


def _add_missing_templates(kind: str, templates: dict[str, str], actor: Any) -> list[int]:
    """Give `templates` to every version of `kind` stored without any; the versions given."""
    from storage import rulesets

    added = []
    note = (
        "stored with the shipped templates, which runs read from rules/templates before "
        "versions carried their own"
    )
    for stored in rulesets.history(kind):
        if stored["templates_sha256"] is None:
            rulesets.add_files(kind, stored["version"], templates)
            rulesets.record_event(
                kind,
                stored["version"],
                "templates_added",
                by=actor.name,
                owner=actor.owner,
                note=note,
            )
            added.append(stored["version"])
    return added


def _store_shipped(
    ruleset: RuleSet, templates: dict[str, str] | None, actor: Any, note: str, state: str
) -> dict[str, Any]:
    """Store a shipped rule set as `state` (active: a kind's first version), with its templates
    and its events."""
    from storage import rulesets

    stored = rulesets.create_version(
        ruleset.kind,
        ruleset.source,
        ruleset.sha256,
        created_by=actor.name,
        note=note,
        state=state,
        files=templates,
    )
    events = ("drafted", "activated") if state == "active" else ("drafted",)
    for event in events:
        rulesets.record_event(
            ruleset.kind, stored["version"], event, by=actor.name, owner=actor.owner, note=note
        )
    return stored


def credo_version() -> str:
    """The installed credo's version (pyproject.toml's), e.g. 0.1.0."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("credo")
    except PackageNotFoundError:
        return "unknown"


def init_database(database_url: str, rules_dir: Path) -> dict[str, Any]:
    """`credo init`: open the database, apply migrations, load the default rule sets.

    Idempotent. Returns what was done: migrations applied, schema version, rule sets.
    """
    from storage.db import connect, redact
    from storage.migrations import current_version, migrate

    db = connect(database_url)
    applied = migrate(db)
    return {
        "database": redact(database_url),
        "migrations_applied": applied,
        "schema_version": current_version(db),
        "rulesets": load_default_rulesets(rules_dir),
    }
