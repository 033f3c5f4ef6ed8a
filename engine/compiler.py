"""Compile parsed `when` expressions into durable_rules condition JSON.

durable_rules compares a *field* (left) with a value or an arithmetic expression over other
fields (right). We map the language onto that:

- `fact op expr` compiles directly; `expr op fact` is flipped;
- anything else, e.g. `a + b > 100` or `a * b > c * d`, becomes `0 op (R - L)` against the
  constant field ZERO_FIELD that every asserted fact carries (exact in floating point: the sign
  of a rounded difference is the sign of the difference);
- negation is pushed down to the comparisons first (durable_rules has no `not`);
- durable_rules treats a missing field inside a right-hand expression as if present, and an
  `or` can match around a missing field, so every fact read in those positions gets an `$ex`
  guard: a rule that reads an absent fact never matches (SPEC §3);
- every non-literal divisor gets a `divisor != 0` guard (an integer division by zero kills the
  engine's process); numbers are always sent as floats, so division is never integer division.

The result never contains a lone `$nex` (which loops forever in the engine).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from engine.expr import (
    FLIPPED,
    And,
    Arith,
    Cmp,
    Fact,
    In,
    Lit,
    Node,
    Or,
    divisors,
    facts_read,
    fold_arithmetic,
    fold_constants,
    normalize,
)

ZERO_FIELD = "__z"  # always 0.0 in an asserted fact
MARK_FIELD = "__c"  # always 1 in an asserted fact; `true` and the catch-all rule test it
ALWAYS: dict[str, Any] = {MARK_FIELD: 1}

_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "==": "$eq"}
_ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}


def compile_condition(node: Node) -> dict[str, Any] | None:
    """durable_rules condition for a parsed, type-checked `when`.

    Returns None for a condition that can never match (constant false). The guards come from
    the expression as written: a fact it reads, or a divisor, that normalising folds away still
    makes the rule not match when absent, or zero (the reference semantics, engine.expr.matches).
    """
    normal = fold_constants(normalize(node))
    if isinstance(normal, Lit) and not normal.value:
        return None
    guards: list[dict[str, Any]] = []
    safe = set() if isinstance(normal, Lit) else _safe_fields(normal)
    for name in dict.fromkeys(facts_read(node)):
        if name not in safe:
            guards.append({"$ex": {name: 1}})
    for divisor in _unique(fold_arithmetic(d) for d in divisors(node)):
        if isinstance(divisor, Lit):
            continue
        if isinstance(divisor, Fact):
            guards.append({"$neq": {divisor.name: 0.0}})
        else:
            guards.append({"$neq": {ZERO_FIELD: _value(divisor)}})
    if isinstance(normal, Lit):
        return {"$and": guards} if len(guards) > 1 else (guards[0] if guards else dict(ALWAYS))
    body = _condition(normal)
    if not guards:
        return body
    return {"$and": guards + (body["$and"] if "$and" in body else [body])}


def _unique(nodes: Any) -> list[Node]:
    seen: list[Node] = []
    for node in nodes:
        if node not in seen:
            seen.append(node)
    return seen


def _safe_fields(node: Node) -> set[str]:
    """Facts read only as the compared field of top-level conjuncts.

    The engine's comparison with a missing field is false, so such facts need no `$ex` guard.
    A fact read anywhere else (inside an `or`, inside an arithmetic expression) is not safe.
    """
    conjuncts = node.items if isinstance(node, And) else (node,)
    field_uses: Counter[str] = Counter()
    for item in conjuncts:
        if isinstance(item, In):
            field_uses[item.fact.name] += 1
        elif isinstance(item, Cmp):
            field = _orient(item)[0]
            if field != ZERO_FIELD:
                field_uses[field] += 1
    total = Counter(facts_read(node))
    return {name for name, uses in field_uses.items() if uses == total[name]}


def _orient(node: Cmp) -> tuple[str, str, Node]:
    """(field, operator, right-hand side) with a fact as the field wherever possible."""
    if isinstance(node.left, Fact):
        return node.left.name, node.op, node.right
    if isinstance(node.right, Fact):
        return node.right.name, FLIPPED[node.op], node.left
    return ZERO_FIELD, node.op, Arith("-", node.right, node.left)


def _condition(node: Node) -> dict[str, Any]:
    if isinstance(node, And):
        return {"$and": [_condition(item) for item in node.items]}
    if isinstance(node, Or):
        return {"$or": [_condition(item) for item in node.items]}
    if isinstance(node, In):
        name = node.fact.name
        if node.negated:
            items = [{"$neq": {name: _value(item)}} for item in node.items]
            return items[0] if len(items) == 1 else {"$and": items}
        items = [{name: _value(item)} for item in node.items]
        return items[0] if len(items) == 1 else {"$or": items}
    if isinstance(node, Cmp):
        field, op, rhs = _orient(node)
        value = _value(rhs)
        if op == "==" and not isinstance(value, dict):
            return {field: value}
        return {_OPS[op]: {field: value}}
    if isinstance(node, Lit):
        return dict(ALWAYS) if node.value else {MARK_FIELD: 0}
    raise TypeError(f"not a normalised condition: {node!r}")


def _value(node: Node) -> Any:
    if isinstance(node, Lit):
        value = node.value
        if isinstance(value, bool | str):
            return value
        return float(value)  # never an integer: integer $div truncates and can divide by 0
    if isinstance(node, Fact):
        return {"$m": node.name}
    if isinstance(node, Arith):
        return {_ARITH[node.op]: {"$l": _value(node.left), "$r": _value(node.right)}}
    raise TypeError(f"not a value: {node!r}")
