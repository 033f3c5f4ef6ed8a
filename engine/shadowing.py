"""Rules that can never fire under `first`, where a simple proof exists.

A condition that is a conjunction of fact-vs-literal comparisons describes a box: an interval
per numeric fact, an allowed or excluded set per string or boolean fact. Rule B is shadowed by
an earlier deciding rule A when every constraint of A holds wherever B's constraints hold, i.e.
B's box lies inside A's. Conditions of any other shape are never reported (no false alarms).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from engine import expr


@dataclass(frozen=True)
class Interval:
    lo: float = -math.inf
    lo_open: bool = True
    hi: float = math.inf
    hi_open: bool = True

    def within(self, other: Interval) -> bool:
        lo_ok = self.lo > other.lo or (self.lo == other.lo and (self.lo_open or not other.lo_open))
        hi_ok = self.hi < other.hi or (self.hi == other.hi and (self.hi_open or not other.hi_open))
        return lo_ok and hi_ok

    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open))

    def meet(self, other: Interval) -> Interval:
        lo, lo_open = max((self.lo, self.lo_open), (other.lo, other.lo_open))
        hi, hi_closed = min((self.hi, not self.hi_open), (other.hi, not other.hi_open))
        return Interval(lo, lo_open, hi, not hi_closed)


@dataclass(frozen=True)
class Choice:
    """Allowed values (include=True) or excluded values (include=False)."""

    values: frozenset
    include: bool

    def within(self, other: Choice) -> bool:
        if self.include and other.include:
            return self.values <= other.values
        if self.include:
            return not (self.values & other.values)
        return (not other.include) and other.values <= self.values

    def empty(self) -> bool:
        return self.include and not self.values

    def meet(self, other: Choice) -> Choice:
        if self.include and other.include:
            return Choice(self.values & other.values, True)
        if self.include or other.include:
            inc, exc = (self, other) if self.include else (other, self)
            return Choice(inc.values - exc.values, True)
        return Choice(self.values | other.values, False)


Box = dict[str, Interval | Choice]


def box_of(node: expr.Node) -> Box | None:
    """The box a normalised condition describes, or None when it is not one."""
    if isinstance(node, expr.Lit):
        return {} if node.value else None
    items = node.items if isinstance(node, expr.And) else (node,)
    box: Box = {}
    for item in items:
        constraint = _constraint(item)
        if constraint is None:
            return None
        name, bound = constraint
        current = box.get(name)
        if current is not None and type(current) is not type(bound):
            return None
        box[name] = bound if current is None else current.meet(bound)  # type: ignore[arg-type]
    return box


def _constraint(node: expr.Node) -> tuple[str, Interval | Choice] | None:
    if isinstance(node, expr.In):
        return node.fact.name, Choice(frozenset(i.value for i in node.items), not node.negated)
    if not isinstance(node, expr.Cmp):
        return None
    if isinstance(node.left, expr.Fact) and isinstance(node.right, expr.Lit):
        name, op, value = node.left.name, node.op, node.right.value
    elif isinstance(node.right, expr.Fact) and isinstance(node.left, expr.Lit):
        name, op, value = node.right.name, expr.FLIPPED[node.op], node.left.value
    else:
        return None
    if isinstance(value, bool | str):
        if op not in ("==", "!="):
            return None
        return name, Choice(frozenset([value]), op == "==")
    value = float(value)
    bounds = {
        "==": Interval(value, False, value, False),
        "<": Interval(hi=value, hi_open=True),
        "<=": Interval(hi=value, hi_open=False),
        ">": Interval(lo=value, lo_open=True),
        ">=": Interval(lo=value, lo_open=False),
    }
    return (name, bounds[op]) if op in bounds else None


def contradictory(node: expr.Node) -> bool:
    """True when the condition is a box with an empty side, e.g. `x > 1 and x < 0`."""
    box = box_of(node)
    return box is not None and any(bound.empty() for bound in box.values())


def _inside(inner: Box, outer: Box) -> bool:
    for name, bound in outer.items():
        mine = inner.get(name)
        if mine is None or type(mine) is not type(bound) or not mine.within(bound):  # type: ignore[arg-type]
            return False
    return True


def find_shadowed(rules: Iterable, derived: set[str]) -> list[tuple]:
    """(rule, shadowing rule) pairs among rules given in firing order."""
    found = []
    deciders: list[tuple[object, Box]] = []
    for rule in rules:
        box = box_of(expr.fold_constants(expr.normalize(rule.when)))
        reads = set(expr.facts_read(rule.when))
        if box is not None and set(box) != reads:  # a fact read but folded away still matters
            box = None
        reads_derived = bool(reads & derived)
        if box is not None and not reads_derived:
            for earlier, earlier_box in deciders:
                if _inside(box, earlier_box):
                    found.append((rule, earlier))
                    break
        if rule.then and box is not None and not reads_derived:
            deciders.append((rule, box))
    return found
