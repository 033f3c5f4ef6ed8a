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

from engine.errors import EngineError
from engine.facts import derive_facts
from engine.ledger import Ledger
from engine.ruleset import RuleSet, load_ruleset_file, parse_ruleset
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


def load_active_rulesets() -> dict[str, ActiveRuleSet]:
    """Every kind's active version from storage, parsed, by kind."""
    from storage import rulesets

    active = {}
    for stored in rulesets.list_active():
        kind, version = stored["kind"], stored["version"]
        parsed = parse_ruleset(stored["source"], f"{kind} version {version}")
        active[kind] = ActiveRuleSet(kind, version, stored["sha256"], parsed)
    return active


class UnknownCustomer(Exception):
    """No customer with that id in the stored ledger."""

    def __init__(self, customer_id: str):
        super().__init__(f"unknown customer {customer_id!r}")
        self.customer_id = customer_id


def gather_facts(
    customer_id: str | None, given: Mapping[str, Any] | None, as_of: date
) -> dict[str, Any]:
    """The facts a decision request evaluates (HTTP and CLI alike).

    Without a customer: the given facts, which must be complete. With one: the facts derived
    from its stored ledger as of `as_of`, the given facts adding to or overriding them (None
    makes a fact absent); new_exposure follows an overridden balance or requested amount.
    Raises FactError naming each bad fact, UnknownCustomer.
    """
    from engine.errors import FactError
    from engine.facts import check_facts
    from storage.ledger import load_ledger

    if customer_id is None:
        return check_facts(dict(given or {}), complete=True)
    given = dict(given or {})
    overrides = check_facts(given, complete=False)
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
    if "new_exposure" not in overrides:
        facts["new_exposure"] = facts["open_balance"] + facts["requested_amount"]
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
) -> dict[str, Any]:
    """The decision to store (SPEC §5) for one evaluation: a new id, now as created_at, facts
    and outcome as JSON values. `ruleset_version_info` gives kind, version and sha256;
    `facts_json`, the facts already as JSON values, is shared by the records that pass it;
    `via` is how the decision is made: "api", "run" or "cli"."""
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
    }


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
    decisions (with seq and hash, made via "run"), customer by customer, in rule-set order.
    """
    from storage.decisions import append_decisions

    versions = list(rulesets.values() if isinstance(rulesets, Mapping) else rulesets)
    records: list[dict[str, Any]] = []
    with engine.lock:
        for customer_id, ledger in ledgers.items():
            try:
                facts = derive_facts(ledger, as_of)
                decided = [
                    build_decision_record(
                        engine.evaluate(v.ruleset, facts),
                        v,
                        facts,
                        customer_id,
                        as_of,
                        requested_by,
                        via="run",
                    )
                    for v in versions
                ]
            except EngineError as exc:
                if on_error is None:
                    raise
                on_error(customer_id, exc)
                continue
            records.extend(decided)
    return append_decisions(records)


def load_default_rulesets(rules_dir: Path, created_by: str = "credo init") -> list[dict[str, Any]]:
    """Store the shipped rule sets (rules/<kind>.toml): the site's policy lives in the database.

    A kind with no version gets the file as active version 1. A kind with versions keeps its
    active version; when the file differs from every stored version of the kind (an upgrade
    shipped a new default), it is stored as a new draft noted "shipped default from credo X.Y",
    never activated: a controller reviews, proposes and activates it through the lifecycle.
    Running it twice changes nothing. Raises RuleFileError for an invalid file, before storing
    anything. Each entry says what was done: loaded, drafted or kept.
    """
    from api.lifecycle import Credo
    from storage import rulesets

    actor = Credo(name=created_by, owner=created_by)
    files = sorted(Path(rules_dir).glob("*.toml"))
    parsed = [load_ruleset_file(path) for path in files]
    report = []
    for path, ruleset in zip(files, parsed, strict=True):
        kind = ruleset.kind
        with rulesets.locked():
            active = rulesets.get_active(kind)
            entry = {"kind": kind, "file": str(path), "active": active and active["version"]}
            if not rulesets.history(kind):
                note = f"default rule set loaded from {path.name}"
                stored = _store_shipped(ruleset, actor, note, "active")
                report.append({**entry, "action": "loaded", "version": stored["version"]})
                report[-1]["active"] = stored["version"]
                continue
            same = rulesets.version_with_sha256(kind, ruleset.sha256)
            if same is not None:
                report.append({**entry, "action": "kept", "version": same})
                continue
            note = f"shipped default from credo {credo_version()} ({path.name})"
            stored = _store_shipped(ruleset, actor, note, "draft")
            report.append({**entry, "action": "drafted", "version": stored["version"]})
    return report


def _store_shipped(ruleset: RuleSet, actor: Any, note: str, state: str) -> dict[str, Any]:
    """Store a shipped rule set as `state` (active: a kind's first version), with its events."""
    from storage import rulesets

    stored = rulesets.create_version(
        ruleset.kind, ruleset.source, ruleset.sha256, created_by=actor.name, note=note, state=state
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
