"""A stored decision's conditions read against its facts, for people: why the rules ranked
above the deciding one did not apply (why-not: the first part of each condition that failed,
with the fact values it read), and which single fact, moved past the number a deciding
condition compares it with, would make a different rule decide (what would change it).

Pure: computed when a decision is read, from a parsed rule set (engine.expr's tree) and the
decision's facts. The sentence stored with each decision is engine.explanation's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine import expr
from engine.ruleset import Rule, RuleSet, format_value

# ---- values as people read them --------------------------------------------------------------


def show(value: Any, money: bool = False) -> str:
    """A fact's value for a message: money with thousands separators and two decimals, text
    quoted, absent as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, Decimal) or (money and isinstance(value, int | float)):
        return f"{Decimal(str(value)).quantize(Decimal('0.01')):,}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return format_value(value)
    return str(value)


def render(node: expr.Node) -> str:
    """A value expression written back as the rule language reads it."""
    if isinstance(node, expr.Fact):
        return node.name
    if isinstance(node, expr.Lit):
        return show(node.value)
    if isinstance(node, expr.Arith):
        sides = [
            render(s) if not isinstance(s, expr.Arith) else f"({render(s)})"
            for s in (node.left, node.right)
        ]
        return f"{sides[0]} {node.op} {sides[1]}"
    return "(condition)"


def _is_money(node: expr.Node, facts: Mapping[str, Any]) -> bool:
    return any(isinstance(facts.get(name), Decimal) for name in expr.facts_read(node))


def _side(node: expr.Node, facts: Mapping[str, Any], money: bool) -> str:
    """A comparison's side with its value: `days_past_due 61`, `credit_limit * 1.5
    (75,000.00)`, or a literal as written."""
    if isinstance(node, expr.Lit):
        return show(node.value)
    value = show(_value(node, facts), money)
    return f"{node.name} {value}" if isinstance(node, expr.Fact) else f"{render(node)} ({value})"


def _value(node: expr.Node, facts: Mapping[str, Any]) -> Any:
    if isinstance(node, expr.Fact):
        return facts[node.name]
    return expr.evaluate(node, facts)


# ---- why a condition did not hold ------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """The first part of a `when` that does not hold for some facts."""

    condition: str  # that part, as the rule language writes it
    read: dict[str, Any]  # the facts it reads, with their values (None: absent)
    message: str  # e.g. "days_past_due 61 is not > 90"


def first_failure(
    when: expr.Node, facts: Mapping[str, Any], derived: Iterable[str] = ()
) -> Failure | None:
    """Why `when` does not match `facts` (expr.matches' semantics): the first part of its
    `and` that fails, described with the fact values it read; None when it matches.
    `derived` names the facts rules derive (`set`): absent, they were never set."""
    node = expr.normalize(when)
    if expr.matches(node, facts):
        return None
    return _failure(node, facts, frozenset(derived))


def _failure(node: expr.Node, facts: Mapping[str, Any], derived: frozenset[str]) -> Failure:
    if isinstance(node, expr.And):
        for item in node.items:
            if not expr.matches(item, facts):
                return _failure(item, facts, derived)
    read = {name: facts.get(name) for name in dict.fromkeys(expr.facts_read(node))}
    text = _condition_text(node)
    absent = [name for name in read if name not in facts]
    if absent:
        unset = [name for name in absent if name in derived]
        if unset:
            return Failure(text, read, f"{unset[0]} was not set: no rule that sets it fired")
        verb = "is" if len(absent) == 1 else "are"
        return Failure(text, read, f"{', '.join(absent)} {verb} absent")
    if isinstance(node, expr.Or):
        parts = [_failure(item, facts, derived).message for item in node.items]
        return Failure(text, read, "none of these holds: " + "; ".join(parts))
    if isinstance(node, expr.Lit):
        return Failure(text, read, "the condition is always false")
    if isinstance(node, expr.In):
        value = show(facts[node.fact.name])
        items = ", ".join(show(i.value) for i in node.items)
        if node.negated:
            return Failure(text, read, f"{node.fact.name} is {value}, one of {items}")
        return Failure(text, read, f"{node.fact.name} is {value}, not one of {items}")
    if isinstance(node, expr.Cmp):
        try:
            return Failure(text, read, _compare_message(node, facts))
        except ZeroDivisionError:
            return Failure(text, read, f"{text} divides by zero")
    return Failure(text, read, "does not hold")


def _condition_text(node: expr.Node) -> str:
    if isinstance(node, expr.Cmp):
        return f"{render(node.left)} {node.op} {render(node.right)}"
    if isinstance(node, expr.In):
        items = ", ".join(show(i.value) for i in node.items)
        return f"{node.fact.name} {'not in' if node.negated else 'in'} [{items}]"
    if isinstance(node, expr.And | expr.Or):
        joiner = " and " if isinstance(node, expr.And) else " or "
        return joiner.join(f"({_condition_text(i)})" for i in node.items)
    if isinstance(node, expr.Lit):
        return show(node.value)
    return render(node)


def _compare_message(node: expr.Cmp, facts: Mapping[str, Any]) -> str:
    left, op, right = node.left, node.op, node.right
    if isinstance(left, expr.Lit) and not isinstance(right, expr.Lit):
        left, op, right = right, expr.FLIPPED[op], left  # the fact first
    if (
        isinstance(left, expr.Fact)
        and isinstance(right, expr.Lit)
        and isinstance(right.value, bool)
    ):
        value = facts[left.name]
        return f"{left.name} is {show(value)}"
    money = _is_money(node, facts)
    if op in ("==", "!="):
        now = show(_value(left, facts), money)
        name = left.name if isinstance(left, expr.Fact) else render(left)
        if op == "==":
            return f"{name} is {now}, not {_bare(right, facts, money)}"
        return f"{name} is {now}, which it must not be"
    return f"{_side(left, facts, money)} is not {op} {_side(right, facts, money)}"


def _bare(node: expr.Node, facts: Mapping[str, Any], money: bool) -> str:
    if isinstance(node, expr.Lit):
        return show(node.value)
    return f"{render(node)} ({show(_value(node, facts), money)})"


# ---- why not: the rules ranked above the deciding one ----------------------------------------


def deciding_rule(ruleset: RuleSet, fired_ids: Sequence[str]) -> Rule | None:
    """Under `first`, the rule that decided: the last fired one that sets an outcome field
    (None when none did and the fields took their defaults)."""
    for rule_id in reversed(fired_ids):
        rule = ruleset.rule(rule_id)
        if rule is not None and rule.then:
            return rule
    return None


def why_not(
    ruleset: RuleSet, facts: Mapping[str, Any], fired: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Under `first`, each rule ranked above the one that decided (all rules when none did),
    in rank order: those that did not apply with the first condition that failed against the
    facts the decision saw (its facts and the facts derived by the rules that fired), and those
    that applied but set no outcome field."""
    fired_ids = [f["id"] for f in fired]
    decider = deciding_rule(ruleset, fired_ids)
    seen = dict(facts)
    for f in fired:
        seen.update(f.get("set") or {})
    rows = []
    for rule in ruleset.rules:
        if decider is not None and rule.id == decider.id:
            break
        row: dict[str, Any] = {
            "id": rule.id,
            "name": rule.name,
            "priority": rule.priority,
            "when": rule.when_text,
        }
        if rule.id in fired_ids:
            sets = ", ".join(f"{k} = {show(v)}" for k, v in rule.set.items())
            row.update(
                applied=True,
                failed=None,
                read={},
                message=f"{rule.id} applied: sets {sets or 'nothing'}; decides no outcome field",
            )
        else:
            failure = first_failure(rule.when, seen, ruleset.derived)
            if failure is None:
                message = f"{rule.id} did not fire although its condition holds on the stored facts"
                row.update(applied=False, failed=None, read={}, message=message)
            else:
                read = {k: _json_value(v) for k, v in failure.read.items()}
                row.update(
                    applied=False, failed=failure.condition, read=read,
                    message=f"{rule.id} did not apply: {failure.message}",
                )  # fmt: skip
        rows.append(row)
    return rows


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


# ---- what would change it --------------------------------------------------------------------

_WORDS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}


@dataclass(frozen=True)
class Change:
    """One fact moved just past the number a deciding condition compares it with."""

    fact: str
    op: str  # what the fact must be: <, <=, >, >=
    limit: Any  # the number on the other side, in the fact's type
    value: Any  # the fact's value nearest now that meets it
    now: Any

    def text(self, outcome: str) -> str:
        """e.g. "approve if new_exposure ≤ 50,000.00; now 61,250.00"."""
        money = isinstance(self.now, Decimal)
        limit, now = show(self.limit, money), show(self.now, money)
        return f"{outcome} if {self.fact} {_WORDS[self.op]} {limit}; now {now}"


def changes(rule: Rule, facts: Mapping[str, Any], inputs: Iterable[str]) -> list[Change]:
    """For each part of `rule`'s `and` that compares one input fact (`inputs`) with a number
    (a literal, or an expression of other facts), the change of that fact that makes the part
    fail: the rule would then not decide. A guard `fact > 0` is left alone: zero means no order
    or no limit at all, not a different one."""
    node = expr.normalize(rule.when)
    items = node.items if isinstance(node, expr.And) else (node,)
    inputs = set(inputs)
    found = []
    for item in items:
        if not isinstance(item, expr.Cmp) or item.op in ("==", "!="):
            continue
        left, op, right = item.left, item.op, item.right
        if not isinstance(left, expr.Fact):
            left, op, right = right, expr.FLIPPED[op], left
        if (
            not isinstance(left, expr.Fact)
            or left.name not in inputs
            or left.name in set(expr.facts_read(right))
        ):
            continue
        if op == ">" and isinstance(right, expr.Lit) and right.value == 0:
            continue  # a guard (there is an order, a limit): zeroing it is no change to offer
        now = facts.get(left.name)
        if isinstance(now, bool) or not isinstance(now, int | float | Decimal):
            continue
        if any(name not in facts for name in expr.facts_read(right)):
            continue
        try:
            limit = expr.evaluate(right, facts)
        except ZeroDivisionError:
            continue
        change = _moved(left.name, expr.COMPLEMENT[op], limit, now)
        if change is not None:
            found.append(change)
    return found


def _moved(name: str, op: str, limit: Any, now: Any) -> Change | None:
    """The value of a fact like `now` nearest `limit` that satisfies `fact op limit`."""
    if isinstance(now, Decimal):
        step, exact = Decimal("0.01"), Decimal(str(limit)).quantize(Decimal("0.01"))
    elif isinstance(now, int):
        step = 1
        exact = math.floor(limit) if op in ("<", "<=") else math.ceil(limit)
    else:
        step, exact = 0.0001, round(float(limit), 4)
    if op == "<" and exact >= limit:
        exact -= step
    elif op == ">" and exact <= limit:
        exact += step
    elif op == "<=" and exact > limit:
        exact -= step
    elif op == ">=" and exact < limit:
        exact += step
    if isinstance(now, Decimal | int) and exact < 0:
        return None  # amounts and counts are never negative
    shown = Decimal(str(limit)).quantize(Decimal("0.01")) if isinstance(now, Decimal) else limit
    if isinstance(now, int) and float(limit).is_integer():
        shown = int(limit)
    return Change(name, op, shown, exact, now)


__all__ = [
    "Change",
    "Failure",
    "changes",
    "deciding_rule",
    "first_failure",
    "show",
    "why_not",
]
