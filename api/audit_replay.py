"""Replay (SPEC §5): a stored decision's facts evaluated again with the stored text of the
version that made it, never today's file nor the active version, and the outcome, reasons and
fired list compared with the stored ones byte for byte (canonical JSON). The one use case
behind `credo audit replay` and `POST /v1/decisions/{id}/replay`.

Everything replay reads is in the database: the decision (its facts, with the facts it took
from earlier decisions of the account) and the version's source. So it gives the same answer
after newer versions are activated and in a process started later. A version that reads an
earlier decision (`after`) is parsed with the outcome fields of the version that decision was
made with (the record's `earlier`), else of the active one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from engine.errors import EngineError, FactError, RuleFileError
from engine.ruleset import RuleSet, sha256_of
from engine.runtime import Engine
from engine.trace import canonical_json, canonical_json_plain, to_jsonable

MAX_LISTED = 100  # differing decisions listed in a report; all are counted
COMPARED = ("outcome", "reasons", "fired")


class UnknownDecision(LookupError):
    """No stored decision has that id (HTTP 404, exit 2)."""

    def __init__(self, decision_id: str):
        super().__init__(f"no decision {decision_id[:80]!r}")


class BadSelection(ValueError):
    """The decisions asked for cannot be selected (HTTP 422, exit 2); `field` names why."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class Parsed:
    """A decision's version parsed for replay, or why it cannot be, and what does not match."""

    ruleset: RuleSet | None
    differences: list[dict[str, Any]] = field(default_factory=list)


class StoredVersions:
    """Stored rule-set versions parsed as the decisions that name them need, each once."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Parsed] = {}

    def for_decision(self, decision: Mapping[str, Any]) -> Parsed:
        """The version that made `decision`, parsed from its stored source; a difference when
        that source no longer hashes to the sha256 the decision recorded."""
        ref = decision["ruleset"]
        earlier = tuple(
            (e.get("kind"), e.get("version"))
            for e in decision.get("earlier") or ()
            if isinstance(e, dict)  # anything else was written behind credo's back
        )
        key = (ref["kind"], ref["version"], ref["sha256"], earlier)
        if key not in self._cache:
            self._cache[key] = self._parse(ref, earlier)
        return self._cache[key]

    def _parse(self, ref: Mapping[str, Any], earlier: tuple) -> Parsed:
        from api.lifecycle_rules import parse_text
        from storage import rulesets

        name = f"{ref['kind']} version {ref['version']}"
        stored = rulesets.get_version(ref["kind"], ref["version"])
        if stored is None:
            return Parsed(None, [_problem("ruleset", ref["sha256"], None, f"{name} is not stored")])
        differences = []
        found = sha256_of(stored["source"])
        if found != ref["sha256"]:
            differences.append(
                _problem(
                    "ruleset.sha256",
                    ref["sha256"],
                    found,
                    f"the stored source of {name} does not hash to the sha256 the decision "
                    "recorded: it was changed after the decision",
                )
            )
        providers = {}
        for kind, version in earlier:
            if not isinstance(kind, str) or type(version) is not int:
                continue
            provider = rulesets.get_version(kind, version)
            if provider is not None:
                try:
                    providers[kind] = parse_text(provider["source"], f"{kind} version {version}")
                except RuleFileError:
                    pass  # the active version's fields are used instead
        try:
            ruleset = parse_text(stored["source"], name, ref["kind"], providers)
        except RuleFileError as exc:
            reason = f"the stored source of {name} does not parse: {exc}"
            return Parsed(None, [*differences, _problem("ruleset", ref["sha256"], None, reason)])
        return Parsed(ruleset, differences)


def _canonical(value: Any) -> str:
    """Canonical JSON of a value that is JSON already (stored and replayed traces are)."""
    try:
        return canonical_json_plain(value)
    except TypeError:
        return canonical_json(value)


def _problem(name: str, stored: Any, replayed: Any, problem: str) -> dict[str, Any]:
    return {"field": name, "stored": stored, "replayed": replayed, "problem": problem}


def typed_facts(decision: Mapping[str, Any], ruleset: RuleSet) -> dict[str, Any]:
    """A stored decision's facts (JSON values) in their types again, as the engine saw them:
    catalogue facts converted by their type, facts from earlier decisions as the outcome
    fields they are (`ruleset`'s `earlier`), any other name unchanged; FactError."""
    from engine.facts import FACTS, check_facts

    stored = decision["facts"]
    if not isinstance(stored, dict):
        raise FactError({"facts": ["must be an object mapping fact names to values"]})
    earlier = ruleset.earlier_facts()
    others = {name for name in stored if name not in FACTS and name not in earlier}
    return check_facts(dict(stored), complete=False, earlier=earlier, extra_names=others)


def replay_decision(
    decision: Mapping[str, Any], versions: StoredVersions, engine: Engine
) -> dict[str, Any]:
    """Replay one stored decision: `same` when the outcome, reasons and fired list are equal
    byte for byte and its version's source is the one it recorded; otherwise each
    `difference` with the stored and the replayed side. `replayed` holds the new trace."""
    parsed = versions.for_decision(decision)
    differences = list(parsed.differences)
    replayed = None
    if parsed.ruleset is not None:
        try:
            facts = typed_facts(decision, parsed.ruleset)
            evaluation = engine.evaluate(parsed.ruleset, facts)
        except FactError as exc:
            differences.append(_problem("facts", decision["facts"], None, f"facts: {exc}"))
        except EngineError as exc:
            differences.append(_problem("evaluation", None, None, str(exc)))
        else:
            replayed = evaluation.trace_json()
            for name in COMPARED:
                if _canonical(decision[name]) != _canonical(replayed[name]):
                    differences.append(
                        _problem(name, decision[name], replayed[name], f"{name} differs")
                    )
    return {
        "decision_id": decision["decision_id"],
        "seq": decision["seq"],
        "kind": decision["kind"],
        "ruleset": decision["ruleset"],
        "same": not differences,
        "differences": to_jsonable(differences),
        "replayed": replayed,
    }


@dataclass(frozen=True)
class Selection:
    """Which stored decisions to replay: one by id, a random sample, those created in a
    period (dates, UTC, both included), or all of them."""

    decision_id: str | None = None
    sample: int | None = None
    first: date | None = None
    last: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "sample": self.sample,
            "from": self.first.isoformat() if self.first else None,
            "to": self.last.isoformat() if self.last else None,
        }


def check_selection(selection: Selection) -> None:
    """BadSelection unless at most one way of choosing is given, and it is sound."""
    ways = [
        name
        for name, given in (
            ("decision", selection.decision_id is not None),
            ("sample", selection.sample is not None),
            ("from/to", selection.first is not None or selection.last is not None),
        )
        if given
    ]
    if len(ways) > 1:
        raise BadSelection(
            ways[1], f"give one of decision, sample or from/to, not {' and '.join(ways)}"
        )
    if selection.sample is not None and selection.sample < 1:
        raise BadSelection("sample", "must be at least 1")
    if selection.first and selection.last and selection.first > selection.last:
        raise BadSelection("from", f"must be on or before to ({selection.last.isoformat()})")


def selected(selection: Selection) -> Iterator[dict[str, Any]]:
    """The stored decisions a selection names, in seq order, read in chunks."""
    from api.decision_views import find_decision
    from storage.decisions import DecisionFilter, iter_decisions

    check_selection(selection)
    if selection.decision_id is not None:
        found = find_decision(selection.decision_id)
        if found is None:
            raise UnknownDecision(selection.decision_id)
        yield found
        return
    if selection.sample is not None:
        yield from _sample(selection.sample)
        return
    start = datetime.combine(selection.first, time(), UTC) if selection.first else None
    end = None
    if selection.last is not None and selection.last < date.max:
        end = datetime.combine(selection.last + timedelta(days=1), time(), UTC)
    yield from iter_decisions(DecisionFilter(created_from=start, created_to=end))


def _sample(size: int) -> Iterator[dict[str, Any]]:
    import peewee as pw

    from storage.decisions import get_decision_by_seq
    from storage.models import Decision

    seqs = sorted(Decision.select(Decision.seq).order_by(pw.fn.Random()).limit(size).scalars())
    for seq in seqs:
        found = get_decision_by_seq(seq)
        if found is not None:
            yield found


def replay(
    selection: Selection, decisions: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Replay the selected decisions (or `decisions`, already read): how many, how many are
    the same, and the first MAX_LISTED that differ with their differences."""
    versions, engine = StoredVersions(), Engine()
    count = same = 0
    listed: list[dict[str, Any]] = []
    try:
        for decision in decisions if decisions is not None else selected(selection):
            result = replay_decision(decision, versions, engine)
            count += 1
            if result["same"]:
                same += 1
            elif len(listed) < MAX_LISTED:
                listed.append({k: v for k, v in result.items() if k != "replayed"})
    finally:
        for sha in engine.loaded():
            engine.unload(sha)
    return {
        "selection": selection.to_json(),
        "replayed": count,
        "same": same,
        "different": count - same,
        "differences": listed,
    }


def replay_one(decision_id: str) -> dict[str, Any]:
    """Replay one stored decision by id (UnknownDecision): replay_decision's answer."""
    from api.decision_views import find_decision

    found = find_decision(decision_id)
    if found is None:
        raise UnknownDecision(decision_id)
    engine = Engine()
    try:
        return replay_decision(found, StoredVersions(), engine)
    finally:
        for sha in engine.loaded():
            engine.unload(sha)


__all__ = [
    "BadSelection",
    "Selection",
    "StoredVersions",
    "UnknownDecision",
    "replay",
    "replay_decision",
    "replay_one",
    "typed_facts",
]
