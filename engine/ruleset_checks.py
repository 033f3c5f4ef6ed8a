"""Validation of a rule file's parsed TOML: every problem, with file, rule id and field."""

from __future__ import annotations

import difflib
import math
import string
from collections.abc import Iterable, Mapping
from typing import Any

from engine import expr
from engine.compiler import compile_condition
from engine.errors import FactError, Problem
from engine.ruleset import (
    HIT_POLICIES,
    ID_RE,
    KIND_RE,
    MAX_AFTER,
    MAX_COMPARISONS,
    MAX_DERIVED_FACTS,
    MAX_RULES,
    MAX_WHEN_LENGTH,
    NAME_RE,
    OUTCOME_TYPES,
    PRIORITY_RANGE,
    RULE_KEYS,
    TEST_KEYS,
    TOP_KEYS,
    OutcomeField,
    Rule,
    RuleSet,
    RuleTest,
    check_test_facts,
    convert_outcome_value,
    earlier_fact_name,
    input_fact_kinds,
    sha256_of,
)
from engine.shadowing import contradictory, find_shadowed


def _kind_of_literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return expr.BOOL
    if isinstance(value, str):
        return expr.STR
    if isinstance(value, int | float):
        return expr.NUM
    return None


def _unknown_key(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{hint}"


class Validator:
    """Collects problems while building a RuleSet from parsed TOML.

    `earlier` holds the outcome fields of the rule sets the file may name in `after`, by kind;
    `kinds` the other kinds known (for hints).
    """

    def __init__(
        self,
        path: str,
        expected_kind: str | None,
        earlier: Mapping[str, Mapping[str, OutcomeField]],
        kinds: Iterable[str] = (),
    ):
        self.path = path
        self.expected_kind = expected_kind
        self.earlier_outcomes = earlier
        self.known_kinds = set(kinds) | set(earlier)
        self.problems: list[Problem] = []

    def problem(self, message: str, rule_id: str | None = None, field: str | None = None, **kw):
        self.problems.append(Problem(self.path, message, rule_id=rule_id, field=field, **kw))

    # ---- whole file ----

    def build(self, data: dict[str, Any], source: str) -> RuleSet | None:
        for key in data:
            if key not in TOP_KEYS:
                self.problem(_unknown_key(key, TOP_KEYS))
        kind = self._kind(data.get("kind"))
        title = data.get("title", "")
        if not isinstance(title, str):
            self.problem("title must be a string")
        policy = data.get("hit_policy", "first")
        if policy not in HIT_POLICIES:
            self.problem(f"hit_policy must be one of {list(HIT_POLICIES)}, not {policy!r}")
        after = self._after(data.get("after"), kind)
        earlier = {k: dict(self.earlier_outcomes[k]) for k in after if k in self.earlier_outcomes}
        self.earlier_facts = {
            earlier_fact_name(k, name): (k, spec)
            for k, fields in earlier.items()
            for name, spec in fields.items()
        }
        outcome = self._outcome(data.get("outcome"))
        raw_rules = self._table_list(data.get("rule"), "rule")
        raw_tests = self._table_list(data.get("test"), "test")
        if not raw_rules:
            self.problem("a rule set needs at least one [[rule]]")
        if len(raw_rules) > MAX_RULES:
            self.problem(
                f"{len(raw_rules)} rules: the limit is {MAX_RULES} per rule set "
                "(the rules engine fails on some accounts beyond it); split the rule set"
            )
        derived = self._derived_kinds(raw_rules)
        kinds = {**input_fact_kinds(), **derived}
        kinds.update((name, _kind_of_field(spec)) for name, (_, spec) in self.earlier_facts.items())
        self._duplicate_ids(raw_rules)
        rules = [self._rule(i, raw, outcome, kinds, derived) for i, raw in enumerate(raw_rules)]
        rules = [r for r in rules if r is not None]
        rules.sort(key=lambda r: (-r.priority, r.order))
        self._derived_order(rules, derived)
        if policy == "first":
            for rule, by in find_shadowed(rules, set(derived)):
                self.problem(
                    f'can never fire under hit_policy "first": rule {by.id} '
                    f"(priority {by.priority}) always matches first",
                    rule.id,
                )
        tests = [self._test(i, raw, outcome, rules) for i, raw in enumerate(raw_tests)]
        if self.problems:
            return None
        return RuleSet(
            kind=kind,
            title=title,
            hit_policy=policy,
            outcome=outcome,
            rules=tuple(rules),
            tests=tuple(t for t in tests if t is not None),
            source=source,
            path=self.path,
            sha256=sha256_of(source),
            derived=derived,
            after=after,
            earlier=earlier,
        )

    def _kind(self, kind: Any) -> str:
        if kind is None:
            self.problem("missing key 'kind'")
            return ""
        if not isinstance(kind, str) or not KIND_RE.match(kind):
            self.problem(f"kind {kind!r} must be lowercase letters, digits and _")
            return ""
        if self.expected_kind and kind != self.expected_kind:
            self.problem(f"kind '{kind}' must match the file name '{self.expected_kind}.toml'")
        return kind

    def _after(self, raw: Any, kind: str) -> tuple[str, ...]:
        """The kinds named in `after`: each a known rule set, not this one, named once."""
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
            self.problem('after must be a list of rule-set kinds, like after = ["handoff"]')
            return ()
        if len(raw) > MAX_AFTER:
            self.problem(f"after names {len(raw)} rule sets: the limit is {MAX_AFTER}")
            return ()
        named: list[str] = []
        for name in raw:
            if name == kind:
                self.problem(f"after: a rule set cannot come after itself ('{name}')")
            elif name in named:
                self.problem(f"after: '{name}' is named twice")
            elif name not in self.earlier_outcomes:
                known = sorted(self.known_kinds - {kind})
                close = difflib.get_close_matches(name, known, n=1)
                self.problem(
                    f"after: no rule set '{name}' to decide first (known: "
                    f"{', '.join(known) or 'none'})",
                    suggestion=close[0] if close else None,
                )
            else:
                named.append(name)
        return tuple(named)

    def _table_list(self, value: Any, name: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(f"'{name}' must be written as [[{name}]] tables")
            return []
        return value

    # ---- outcome ----

    def _outcome(self, raw: Any) -> dict[str, OutcomeField]:
        if not isinstance(raw, dict) or not raw:
            self.problem("missing [outcome] table naming the fields this rule set decides")
            return {}
        fields = {}
        for name, spec in raw.items():
            where = f"outcome.{name}"
            if not NAME_RE.match(name):
                self.problem("field names are lowercase letters, digits and _", field=where)
                continue
            if not isinstance(spec, dict):
                self.problem("must be a table like { values = [...], default = ... }", field=where)
                continue
            built = self._outcome_field(name, spec, where)
            if built is not None:
                fields[name] = built
        return fields

    def _outcome_field(self, name: str, spec: dict[str, Any], where: str) -> OutcomeField | None:
        for key in spec:
            if key not in {"values", "type", "default", "min", "max", "description"}:
                self.problem(
                    _unknown_key(key, {"values", "type", "default", "min", "max"}), field=where
                )
        values = spec.get("values")
        if values is not None:
            if not values or not all(isinstance(v, str) for v in values):
                self.problem("values must be a non-empty list of strings", field=where)
                return None
            if len(set(values)) != len(values):
                self.problem("values has duplicates", field=where)
            field = OutcomeField(name, "string", tuple(values))
        else:
            ftype = spec.get("type")
            if ftype not in OUTCOME_TYPES:
                self.problem(f"needs 'values' or a 'type' among {list(OUTCOME_TYPES)}", field=where)
                return None
            bounds = {k: spec.get(k) for k in ("min", "max")}
            for key, bound in bounds.items():
                if bound is not None and (
                    isinstance(bound, bool) or not isinstance(bound, int | float)
                ):
                    self.problem(f"{key} must be a number", field=where)
                    bounds[key] = None
            field = OutcomeField(name, ftype, None, None, bounds["min"], bounds["max"])
        if "default" in spec:
            default, error = convert_outcome_value(field, spec["default"])
            if error:
                self.problem(f"default: {error}", field=where)
            field = OutcomeField(
                field.name, field.type, field.values, default, field.minimum, field.maximum
            )
        return field

    # ---- rules ----

    def _derived_kinds(self, raw_rules: list[dict[str, Any]]) -> dict[str, str]:
        derived: dict[str, str] = {}
        inputs = input_fact_kinds()
        for raw in raw_rules:
            rule_id = str(raw.get("id", "?"))
            sets = raw.get("set", {})
            if not isinstance(sets, dict):
                continue
            for name, value in sets.items():
                where = f"set.{name}"
                kind = _kind_of_literal(value)
                if name in inputs or name in self.earlier_facts:
                    self.problem(f"cannot overwrite the input fact '{name}'", rule_id, where)
                elif not NAME_RE.match(name):
                    self.problem(
                        "derived fact names are lowercase letters, digits and _", rule_id, where
                    )
                elif kind is None:
                    self.problem(
                        "a derived fact must be a string, number or boolean", rule_id, where
                    )
                elif derived.setdefault(name, kind) != kind:
                    self.problem(
                        f"'{name}' is set as a {derived[name]} elsewhere, here as a {kind}",
                        rule_id,
                        where,
                    )
        if len(derived) > MAX_DERIVED_FACTS:
            self.problem(f"{len(derived)} derived facts: the limit is {MAX_DERIVED_FACTS}")
        return derived

    def _rule(
        self,
        order: int,
        raw: dict[str, Any],
        outcome: dict[str, OutcomeField],
        kinds: dict[str, str],
        derived: dict[str, str],
    ) -> Rule | None:
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not ID_RE.match(rule_id):
            self.problem(
                f"rule #{order + 1}: 'id' must be a short string of letters, digits, - _ ."
            )
            rule_id = f"#{order + 1}"
        ok = True
        for key in raw:
            if key not in RULE_KEYS:
                self.problem(_unknown_key(key, RULE_KEYS), rule_id)
                ok = False
        for key in ("name", "priority", "when", "reason"):
            if key not in raw:
                self.problem(f"missing key '{key}'", rule_id)
                ok = False
        name, reason = raw.get("name", ""), raw.get("reason", "")
        if not isinstance(name, str):
            self.problem("must be a string", rule_id, "name")
            ok = False
        priority = raw.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            self.problem("must be a whole number", rule_id, "priority")
            ok = False
        elif not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            self.problem(
                f"must be between {PRIORITY_RANGE[0]} and {PRIORITY_RANGE[1]}", rule_id, "priority"
            )
            ok = False
        then = self._then(raw.get("then", {}), outcome, rule_id)
        sets = raw.get("set", {})
        if not isinstance(sets, dict):
            self.problem('must be a table like { risk_band = "high" }', rule_id, "set")
            ok, sets = False, {}
        if then is None:
            ok, then = False, {}
        elif not then and not sets:
            self.problem("sets nothing: give 'then' outcome fields or 'set' derived facts", rule_id)
            ok = False
        when_node, condition = self._when(raw.get("when"), kinds, rule_id)
        ok = ok and when_node is not None
        ok = self._reason(reason, kinds, rule_id) and ok
        if not ok or when_node is None:
            return None
        return Rule(
            rule_id, name, priority, raw["when"], when_node, condition, then, sets, reason, order
        )

    def _then(
        self, raw: Any, outcome: dict[str, OutcomeField], rule_id: str
    ) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.problem('must be a table like { tone = "firm" }', rule_id, "then")
            return None
        result, ok = {}, True
        for name, value in raw.items():
            spec = outcome.get(name)
            if spec is None:
                close = difflib.get_close_matches(name, list(outcome), n=1)
                self.problem(
                    f"'{name}' is not an outcome field of this rule set",
                    rule_id,
                    "then",
                    suggestion=close[0] if close else None,
                )
                ok = False
                continue
            converted, error = convert_outcome_value(spec, value)
            if error:
                self.problem(f"{name}: {error}", rule_id, "then")
                ok = False
            result[name] = converted
        return result if ok else None

    def _when(self, text: Any, kinds: dict[str, str], rule_id: str):
        if text is None:
            return None, None
        if not isinstance(text, str):
            self.problem("must be a string", rule_id, "when")
            return None, None
        if len(text) > MAX_WHEN_LENGTH:
            self.problem(f"longer than {MAX_WHEN_LENGTH} characters", rule_id, "when")
            return None, None
        try:
            node = expr.parse(text)
        except expr.ExprError as exc:
            self.problem(exc.message, rule_id, "when", column=exc.column, suggestion=exc.suggestion)
            return None, None
        errors = expr.check(node, kinds) + earlier_value_errors(node, self.earlier_facts)
        for exc in errors:
            self.problem(
                exc.message + self._after_hint(exc.message),
                rule_id,
                "when",
                column=exc.column,
                suggestion=exc.suggestion,
            )
        if errors:
            return None, None
        comparisons = sum(1 for _ in _comparisons(node))
        if comparisons > MAX_COMPARISONS:
            self.problem(
                f"{comparisons} comparisons: the limit is {MAX_COMPARISONS} per rule",
                rule_id,
                "when",
            )
            return None, None
        normal = expr.normalize(node)
        for division in expr.zero_divisions(normal):
            self.problem("division by zero", rule_id, "when", column=division.col or None)
            return None, None
        for lit in expr.literals(normal):
            value = lit.value
            if isinstance(value, float) and (
                not math.isfinite(value) or abs(value) >= 1e15 or "e" in repr(value)
            ):
                self.problem(
                    f"a constant part of the expression evaluates to {value!r}, outside what "
                    "the engine can take (below 1e15, at least 0.0001 apart from 0)",
                    rule_id,
                    "when",
                )
                return None, None
        condition = compile_condition(node)
        if condition is None or contradictory(expr.fold_constants(normal)):
            self.problem("can never match (the condition is always false)", rule_id, "when")
            return None, None
        return node, condition

    def _after_hint(self, message: str) -> str:
        """For an unknown fact named like another rule set's outcome: how to read it."""
        if not message.startswith("unknown fact '"):
            return ""
        return self._after_hint_for(message[len("unknown fact '") : -1])

    def _after_hint_for(self, name: str) -> str:
        for kind in sorted(self.known_kinds, key=len, reverse=True):
            if name.startswith(f"{kind}_"):
                return (
                    f" (the {kind} decision's outcome is read as {kind}_<field> only with "
                    f'after = ["{kind}"])'
                )
        return ""

    def _reason(self, template: Any, kinds: dict[str, str], rule_id: str) -> bool:
        if not isinstance(template, str):
            self.problem("must be a string", rule_id, "reason")
            return False
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as exc:
            self.problem(
                f"bad template: {exc} (write {{{{ and }}}} for literal braces)", rule_id, "reason"
            )
            return False
        ok = True
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if spec or conversion or not name:
                self.problem(f"placeholder {{{name}}} must be a plain fact name", rule_id, "reason")
                ok = False
            elif name not in kinds:
                close = difflib.get_close_matches(name, list(kinds), n=1)
                hint = self._after_hint_for(name)
                self.problem(
                    f"placeholder {{{name}}} is not a fact{hint}",
                    rule_id,
                    "reason",
                    suggestion=close[0] if close and not hint else None,
                )
                ok = False
        return ok

    def _duplicate_ids(self, raw_rules: list[dict[str, Any]]) -> None:
        seen: set[str] = set()
        for raw in raw_rules:
            rule_id = raw.get("id")
            if isinstance(rule_id, str) and rule_id in seen:
                self.problem("duplicate rule id (each rule needs its own id)", rule_id)
            seen.add(rule_id)

    def _derived_order(self, rules: list[Rule], derived: dict[str, str]) -> None:
        """A rule may read a derived fact only if every rule setting it fires before it."""
        position = {id(rule): i for i, rule in enumerate(rules)}
        for rule in rules:
            for name in set(expr.facts_read(rule.when)) & set(derived):
                later = [
                    r for r in rules if name in r.set and position[id(r)] >= position[id(rule)]
                ]
                for setter in later:
                    self.problem(
                        f"reads derived fact '{name}', which rule {setter.id} sets at the same "
                        "or a lower priority; only rules that fire earlier can provide it",
                        rule.id,
                        "when",
                    )

    # ---- tests ----

    def _test(
        self, index: int, raw: dict[str, Any], outcome: dict[str, OutcomeField], rules
    ) -> RuleTest | None:
        name = raw.get("name")
        label = f"test '{name}'" if isinstance(name, str) else f"test #{index + 1}"
        for key in raw:
            if key not in TEST_KEYS:
                self.problem(f"{label}: {_unknown_key(key, TEST_KEYS)}")
        facts, expect = raw.get("facts", {}), raw.get("expect")
        if not isinstance(facts, dict):
            self.problem(f"{label}: facts must be a table")
            return None
        if not isinstance(expect, dict) or not expect:
            self.problem(f"{label}: expect must be a non-empty table of outcome fields")
            return None
        try:
            checked = check_test_facts(facts, self.earlier_facts)
        except FactError as exc:
            for fact, messages in exc.errors.items():
                for message in messages:
                    self.problem(f"{label}: facts.{fact}: {message}")
            return None
        converted = {}
        for field, value in expect.items():
            spec = outcome.get(field)
            if spec is None:
                self.problem(f"{label}: expect.{field}: not an outcome field of this rule set")
                continue
            converted[field], error = convert_outcome_value(spec, value)
            if error and value is not None:
                self.problem(f"{label}: expect.{field}: {error}")
        fired = raw.get("fired")
        if fired is not None:
            known = {r.id for r in rules}
            if not isinstance(fired, list) or not all(isinstance(f, str) for f in fired):
                self.problem(f"{label}: fired must be a list of rule ids")
                fired = None
            else:
                for rule_id in fired:
                    if rule_id not in known:
                        self.problem(f"{label}: fired: no rule '{rule_id}'")
        return RuleTest(
            str(name or f"#{index + 1}"), checked, converted, tuple(fired) if fired else None
        )


def _kind_of_field(spec: OutcomeField) -> str:
    """The `when` language's kind of an outcome field read as a fact."""
    if spec.type == "bool":
        return expr.BOOL
    return expr.STR if spec.type == "string" else expr.NUM


def earlier_value_errors(
    node: expr.Node, earlier: Mapping[str, tuple[str, OutcomeField]]
) -> list[expr.ExprError]:
    """Words compared with an earlier decision's outcome field that the field cannot take
    (`handoff_action == "hnadoff"`): one error each, naming the allowed values."""
    errors = []
    for name, word, column in _compared_words(node):
        spec = earlier.get(name, (None, None))[1]
        if spec is None or spec.values is None or word in spec.values:
            continue
        close = difflib.get_close_matches(word, list(spec.values), n=1)
        errors.append(
            expr.ExprError(
                f"'{word}' is not a value of {name} (the {earlier[name][0]} rule set decides "
                f"{spec.name} as one of {', '.join(spec.values)})",
                column or None,
                close[0] if close else None,
            )
        )
    return errors


def _compared_words(node: expr.Node):
    """(fact, word, column) of every word a fact is compared with (==, !=, in)."""
    for item in expr.subnodes(node):
        if isinstance(item, expr.In):
            for lit in item.items:
                if isinstance(lit.value, str):
                    yield item.fact.name, lit.value, lit.col
        elif isinstance(item, expr.Cmp):
            for fact, lit in ((item.left, item.right), (item.right, item.left)):
                if isinstance(fact, expr.Fact) and isinstance(lit, expr.Lit):
                    if isinstance(lit.value, str) and not isinstance(lit.value, bool):
                        yield fact.name, lit.value, lit.col


def _comparisons(node: expr.Node):
    if isinstance(node, expr.Cmp | expr.In):
        yield node
    elif isinstance(node, expr.And | expr.Or):
        for item in node.items:
            yield from _comparisons(item)
    elif isinstance(node, expr.Not):
        yield from _comparisons(node.item)
