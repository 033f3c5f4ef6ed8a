"""Rule files (rules/*.toml): parsed and validated into a RuleSet, or every problem at once.

A RuleSet that exists has passed validation: parse_ruleset raises RuleFileError otherwise, so
a rule file with a problem can never be evaluated.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine import expr
from engine.compiler import compile_condition
from engine.errors import FactError, Problem, RuleFileError

HIT_POLICIES = ("first", "all")
OUTCOME_TYPES = ("string", "int", "number", "money", "bool")
MAX_RULES = 100  # the engine fails (error 303) on some accounts beyond ~110 rules
MAX_DERIVED_FACTS = 20
MAX_WHEN_LENGTH = 2000
MAX_COMPARISONS = 24
PRIORITY_RANGE = (-1_000_000, 1_000_000)
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TOP_KEYS = {"kind", "title", "description", "hit_policy", "after", "outcome", "rule", "test"}
MAX_AFTER = 10
RULE_KEYS = {"id", "name", "priority", "when", "then", "set", "reason", "description"}
TEST_KEYS = {"name", "facts", "expect", "fired"}


@dataclass(frozen=True)
class OutcomeField:
    name: str
    type: str
    values: tuple[str, ...] | None = None
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    priority: int
    when_text: str
    when: expr.Node  # as written (parsed); the compiler normalises it
    condition: dict[str, Any] | None  # durable_rules JSON; None: can never match
    then: dict[str, Any]
    set: dict[str, Any]
    reason: str
    order: int  # position in the file; breaks priority ties

    def render_reason(self, facts: dict[str, Any]) -> str:
        """The reason template with {fact} placeholders filled in (money with two decimals)."""
        out = []
        for literal, name in _template_parts(self.reason):
            out.append(literal)
            if name is not None:
                out.append(format_value(facts.get(name)))
        return "".join(out)


@functools.lru_cache(maxsize=4096)
def _template_parts(template: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((literal, name) for literal, name, _, _ in string.Formatter().parse(template))


@dataclass(frozen=True)
class RuleTest:
    name: str
    facts: dict[str, Any]
    expect: dict[str, Any]
    fired: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RuleSet:
    kind: str
    title: str
    hit_policy: str
    outcome: dict[str, OutcomeField]
    rules: tuple[Rule, ...]  # in firing order: priority high to low, ties in file order
    tests: tuple[RuleTest, ...]
    source: str
    path: str
    sha256: str
    derived: dict[str, str] = field(default_factory=dict)  # derived fact -> kind
    # `after`: the rule sets that decide first for the same account; their outcome fields are
    # facts here, named <kind>_<field>. `earlier` holds the outcome fields this file was
    # validated against, by kind (the versions active, or the files beside it, at the time).
    after: tuple[str, ...] = ()
    earlier: dict[str, dict[str, OutcomeField]] = field(default_factory=dict)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def earlier_facts(self) -> dict[str, tuple[str, OutcomeField]]:
        """The facts an earlier decision gives this rule set: name -> (kind, outcome field)."""
        return {
            earlier_fact_name(kind, name): (kind, spec)
            for kind, fields in self.earlier.items()
            for name, spec in fields.items()
        }

    def earlier_facts_read(self) -> dict[str, list[str]]:
        """The earlier-decision facts its rules read (in `when` or `reason`): name -> rule ids."""
        names = self.earlier_facts()
        read: dict[str, list[str]] = {}
        for rule in self.rules:
            used = set(expr.facts_read(rule.when))
            used |= {name for _, name in _template_parts(rule.reason) if name}
            for name in sorted(used & set(names)):
                read.setdefault(name, []).append(rule.id)
        return read


def earlier_fact_name(kind: str, field_name: str) -> str:
    """The fact under which a later rule set reads an earlier decision's outcome field."""
    return f"{kind}_{field_name}"


def format_value(value: Any) -> str:
    """How facts appear in reasons: money two decimals, floats at most four, absent as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def sha256_of(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def load_ruleset_file(path: str | Path, match_stem: bool = True) -> RuleSet:
    """Read and validate one rule file; with `match_stem` its kind must equal the file's stem
    (as in rules/; a working copy elsewhere may be named freely)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError([Problem(str(path), f"cannot read file: {exc}")]) from None
    return parse_ruleset(text, str(path), expected_kind=path.stem if match_stem else None)


def parse_ruleset(
    text: str,
    path: str = "<text>",
    expected_kind: str | None = None,
    earlier: Mapping[str, Mapping[str, OutcomeField]] | None = None,
    kinds: Iterable[str] = (),
) -> RuleSet:
    """Validate a rule file's text; raise RuleFileError listing every problem found.

    `earlier` gives the outcome fields of the rule sets this file may name in `after`, by kind
    (each named kind must be there); `kinds` the other kinds known, for hints only.
    engine.order.parse_rulesets parses several files in their declared order.
    """
    from engine.ruleset_checks import Validator  # noqa: PLC0415 (keeps this module small)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        line = int(match.group(1)) if match else None
        column = int(match.group(2)) if match else None
        raise RuleFileError(
            [Problem(path, f"TOML syntax error: {message}", line=line, column=column)]
        ) from None
    validator = Validator(path, expected_kind, earlier or {}, kinds)
    ruleset = validator.build(data, text)
    if validator.problems:
        raise RuleFileError(validator.problems)
    if ruleset is None:  # build returns None only together with problems
        raise RuleFileError([Problem(path, "invalid rule file")])
    return ruleset


def convert_outcome_value(spec: OutcomeField, value: Any) -> tuple[Any, str | None]:
    """A `then` value converted to the field's type, or an error message."""
    if spec.values is not None:
        if value not in spec.values:
            return None, f"{value!r} is not one of {list(spec.values)}"
        return value, None
    if spec.type == "string":
        return (value, None) if isinstance(value, str) else (None, "expected a string")
    if spec.type == "bool":
        return (value, None) if isinstance(value, bool) else (None, "expected true or false")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"expected a {spec.type}"
    if spec.type == "int":
        if not isinstance(value, int):
            return None, "expected a whole number"
        number: Any = value
    elif spec.type == "money":
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None, "expected an amount"
        if not number.is_finite() or number != number.quantize(Decimal("0.01")):
            return None, "an amount needs at most two decimals"
        number = number.quantize(Decimal("0.01"))
    else:
        if isinstance(value, str):
            return None, "expected a number"
        number = float(value)
    if spec.minimum is not None and number < spec.minimum:
        return None, f"{value} is below the minimum {spec.minimum}"
    if spec.maximum is not None and number > spec.maximum:
        return None, f"{value} is above the maximum {spec.maximum}"
    return number, None


def input_fact_kinds() -> dict[str, str]:
    """Every catalogue fact with its language kind (number, string, boolean)."""
    from engine.facts import FACTS

    return {name: expr.KIND_OF_TYPE[spec.type] for name, spec in FACTS.items()}


def check_test_facts(
    raw: dict[str, Any], earlier: Mapping[str, tuple[str, OutcomeField]] | None = None
) -> dict[str, Any]:
    """Facts of a [[test]] case: catalogue facts and the earlier-decision facts the rule set
    may read (`earlier`: name -> (kind, field)), any subset (absent ones stay absent)."""
    from engine.facts import check_facts

    return check_facts(raw, complete=False, earlier=earlier or {})


__all__ = [
    "FactError",
    "OutcomeField",
    "Rule",
    "RuleSet",
    "RuleTest",
    "compile_condition",
    "convert_outcome_value",
    "earlier_fact_name",
    "format_value",
    "load_ruleset_file",
    "parse_ruleset",
]
