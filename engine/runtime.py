"""Evaluation on durable_rules: the only module that imports it.

We drive the C module (`durable_rules_engine`) directly, without durable's Python Host: no
background thread, no Python actions, no state it cannot unload (shared/notes/durable_rules.md).

One evaluation, for one rule set and one set of facts:
  1. the facts are asserted as one *fact* (every matching rule lands on the agenda) on the rule
     set's single, reused state id;
  2. the agenda is walked with start_action_for_state / complete_and_start_action; the engine
     hands out rules by `pri` (we give each rule its rank, 0 first), which is the fired order;
  3. a rule that sets derived facts retracts the fact and asserts it again with them, so later
     rules see them (forward chaining); rules already fired re-match and are skipped;
  4. under `first`, the first rule that sets an outcome field decides and the walk stops;
  5. a catch-all rule with the lowest priority always matches last: the walk ends there, no
     evaluation ever ends in "no rule matched", and the state always has run an action (deleting
     a state that never ran one crashes the engine).
The fact is retracted inside the last action, so the state is empty again afterwards.

An Engine is not thread-safe (the extension never releases the GIL anyway): one per process, or
guard it with a lock.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import durable_rules_engine as _dr

from engine.compiler import MARK_FIELD, ZERO_FIELD
from engine.errors import EvaluationError, FactError
from engine.expr import facts_read
from engine.ruleset import Rule, RuleSet
from engine.trace import Evaluation, FiredRule

SID = "1"
CATCH_ALL = "__end"
MAX_ENGINE_NUMBER = 1e15


@dataclass
class _Loaded:
    name: str
    handle: int
    rules: dict[str, Rule]
    reads: frozenset[str]  # input facts any rule reads: only these are sent to the engine
    sets: dict[str, dict[str, Any]]  # engine values of each rule's `set`, by engine rule name


class PreparedFacts(dict):
    """Facts converted once for the engine (see engine_values), reusable across rule sets."""


class Engine:
    """Rule sets loaded into durable_rules, evaluated one set of facts at a time."""

    def __init__(self) -> None:
        self._loaded: dict[str, _Loaded] = {}
        self._generation = itertools.count(1)
        self.lock = threading.Lock()

    def load(self, ruleset: RuleSet) -> None:
        """Load a rule set (once per sha256); versions load side by side."""
        self._get(ruleset)

    def loaded(self) -> list[str]:
        """sha256 of every rule set currently loaded."""
        return list(self._loaded)

    def unload(self, ruleset: RuleSet | str) -> None:
        """Free a rule set's engine memory; unknown ones are ignored."""
        sha = ruleset if isinstance(ruleset, str) else ruleset.sha256
        loaded = self._loaded.pop(sha, None)
        if loaded is None:
            return
        # The state is deleted first, or delete_ruleset leaks it. The catch-all rule
        # guarantees an action has run on it, so delete_state cannot hit the engine's crash.
        try:
            _dr.delete_state(loaded.handle, SID)
        except _dr.error:
            pass
        _dr.delete_ruleset(loaded.handle)

    def evaluate(
        self, ruleset: RuleSet, facts: dict[str, Any], prepared: PreparedFacts | None = None
    ) -> Evaluation:
        """Decide one set of facts with one rule set; deterministic for equal inputs.

        `prepared` (from `prepare(facts)`) saves converting the same facts again when several
        rule sets decide one account.
        """
        loaded = self._get(ruleset)
        values = prepared if prepared is not None else prepare(facts)
        fact = {name: values[name] for name in loaded.reads if name in values}
        fact.update(_FIXED)
        started = time.perf_counter_ns()
        try:
            fired, derived = self._walk(loaded, ruleset, fact)
        except _dr.error as exc:
            # The state may hold a half-walked fact: drop this handle, load afresh next time.
            self._loaded.pop(ruleset.sha256, None)
            raise EvaluationError(f"rule set {ruleset.kind}: rules engine error: {exc}") from None
        engine_us = (time.perf_counter_ns() - started) // 1000
        return _evaluation(ruleset, facts, fired, derived, engine_us)

    def evaluate_all(self, rulesets: list[RuleSet], facts: dict[str, Any]) -> list[Evaluation]:
        """Decide one account with several rule sets, converting its facts once."""
        prepared = prepare(facts)
        return [self.evaluate(ruleset, facts, prepared) for ruleset in rulesets]

    def evaluator(self, facts: dict[str, Any]) -> Callable[[RuleSet, dict[str, Any]], Evaluation]:
        """`evaluate` for one account's rule sets, with `facts` converted once: each call may
        add facts to them (an earlier decision's outcome, engine.order.decide_in_order), and
        only those are converted again."""
        base = prepare(facts)

        def evaluate(ruleset: RuleSet, seen: dict[str, Any]) -> Evaluation:
            extra = {k: v for k, v in seen.items() if k not in facts or facts[k] is not v}
            prepared = PreparedFacts({**base, **_engine_values(extra)}) if extra else base
            return self.evaluate(ruleset, seen, prepared)

        return evaluate

    def _get(self, ruleset: RuleSet) -> _Loaded:
        loaded = self._loaded.get(ruleset.sha256)
        if loaded is None:
            name = f"{ruleset.kind}@{ruleset.sha256[:12]}#{next(self._generation)}"
            definition, keys = engine_definition(ruleset)
            try:
                handle = _dr.create_ruleset(name, dumps(definition))
            except _dr.error as exc:
                raise EvaluationError(f"rule set {ruleset.kind}: cannot load: {exc}") from None
            reads = frozenset(
                name for rule in ruleset.rules for name in facts_read(rule.when)
            ) - frozenset(ruleset.derived)
            sets = {key: _engine_values(rule.set) for key, rule in keys.items() if rule.set}
            loaded = _Loaded(name, handle, keys, reads, sets)
            self._loaded[ruleset.sha256] = loaded
        return loaded

    def _walk(
        self, loaded: _Loaded, ruleset: RuleSet, fact: dict[str, Any]
    ) -> tuple[list[tuple[Rule, dict[str, Any]]], dict[str, Any]]:
        handle = loaded.handle
        fired: list[tuple[Rule, dict[str, Any]]] = []
        seen: set[str] = set()
        derived: dict[str, Any] = {}
        versions = itertools.count(1)
        fact_json = dumps(fact)
        state = _dr.assert_fact(handle, fact_json)[1]
        result = _dr.start_action_for_state(handle, state)
        while result:
            message = result[1] if isinstance(result, tuple) else result
            key = message[2 : message.index('"', 2)]  # '{"r3":{"m":...}}' -> r3
            rule = loaded.rules.get(key)
            decided = False
            if rule is not None and key not in seen:
                seen.add(key)
                fired.append((rule, dict(derived)))
                if rule.set:
                    derived.update(rule.set)
                    fact = {**fact, **loaded.sets[key], "id": f"f{next(versions)}"}
                    _dr.retract_fact(handle, fact_json)
                    fact_json = dumps(fact)
                    _dr.assert_fact(handle, fact_json)
                decided = ruleset.hit_policy == "first" and bool(rule.then)
            if rule is None or decided:
                _dr.retract_fact(handle, fact_json)  # inside the action: the agenda empties
                if _dr.complete_and_start_action(handle, state):
                    raise EvaluationError(f"rule set {ruleset.kind}: agenda not empty")
                break
            result = _dr.complete_and_start_action(handle, state)
        return fired, derived


def _evaluation(
    ruleset: RuleSet,
    facts: dict[str, Any],
    fired: list[tuple[Rule, dict[str, Any]]],
    derived: dict[str, Any],
    engine_us: int,
) -> Evaluation:
    outcome: dict[str, Any] = {}
    trace = []
    for rule, derived_before in fired:
        for name, value in rule.then.items():
            outcome.setdefault(name, value)  # the highest-priority rule setting a field wins
        reason = rule.render_reason({**facts, **derived_before} if derived_before else facts)
        # then/set are the rule's own dicts, never mutated: shared, not copied
        trace.append(FiredRule(rule.id, rule.name, rule.priority, reason, rule.then, rule.set))
    ordered = {
        name: outcome[name] if name in outcome else field.default
        for name, field in ruleset.outcome.items()
    }
    return Evaluation(
        kind=ruleset.kind,
        outcome=ordered,
        reasons=[f.reason for f in trace if f.reason],
        fired=trace,
        derived=derived,
        ruleset_sha256=ruleset.sha256,
        engine_us=engine_us,
    )


def engine_definition(ruleset: RuleSet) -> tuple[dict[str, Any], dict[str, Rule]]:
    """The durable_rules JSON for a rule set, and the rule behind each engine rule name.

    Each rule gets its own `pri`, its rank in priority order (0 fires first); the catch-all
    comes last. Rules whose condition can never match are left out.
    """
    definition: dict[str, Any] = {}
    keys: dict[str, Rule] = {}
    for rank, rule in enumerate(ruleset.rules):
        if rule.condition is None:
            continue
        key = f"r{rank}"
        definition[key] = {"all": [{"m": rule.condition}], "pri": rank}
        keys[key] = rule
    definition[CATCH_ALL] = {"all": [{"m": {MARK_FIELD: 1}}], "pri": len(ruleset.rules)}
    return definition, keys


_FIXED = {"sid": SID, "id": "f0", ZERO_FIELD: 0.0, MARK_FIELD: 1}


def prepare(facts: dict[str, Any]) -> PreparedFacts:
    """Facts as the engine may see them: plain floats, no Decimal or dates, no exponent form."""
    return PreparedFacts(_engine_values(facts))


def _engine_values(facts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for name, value in facts.items():
        kind = type(value)
        if kind is str or kind is bool:
            out[name] = value
            continue
        if kind is Decimal or kind is int:
            number = float(value)  # money has two decimals, ints none: no rounding needed
        elif kind is float:
            number = round(value, 4)
        elif value is None:
            continue
        elif isinstance(value, bool | str):
            out[name] = value
            continue
        elif isinstance(value, int | float | Decimal):
            number = round(float(value), 4)
        else:
            problems[name] = [f"{type(value).__name__} values cannot be evaluated"]
            continue
        if not -MAX_ENGINE_NUMBER < number < MAX_ENGINE_NUMBER:  # also catches NaN
            problems[name] = [f"{value!r} is out of range for the rules engine"]
        out[name] = number
    if problems:
        raise FactError(problems)
    return out


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """JSON for the engine: numbers are plain floats below 1e15 rounded to 4 decimals, so
    Python never writes the exponent form the engine rejects."""
    return _ENCODER.encode(value)
