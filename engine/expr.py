"""The `when` language: parsed with Python's `ast` under a whitelist, never `eval`ed.

A `when` is a boolean expression over facts: comparisons (chained too), `and`, `or`, `not`,
parentheses, `+ - * /` between facts and numbers, `in [...]`/`not in [...]` over literal lists,
`true`/`false`, numbers and strings. Everything else (calls, attributes, subscripts, lambdas,
comprehensions, f-strings, ...) is an error that names the column.

This module parses, type-checks, normalises (negation pushed down to the comparisons) and
interprets expressions. The interpreter is the reference semantics the compiled durable_rules
conditions are tested against; it also evaluates expressions that read no fact at all.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

MAX_LITERAL = 1e12
LITERAL_DECIMALS = 4
MAX_DEPTH = 40

NUM, STR, BOOL = "number", "string", "boolean"
# Catalogue types (engine.facts) to the three kinds the language knows.
KIND_OF_TYPE = {"int": NUM, "float": NUM, "money": NUM, "str": STR, "bool": BOOL}

COMPLEMENT = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class ExprError(Exception):
    """A problem in one expression; `column` is 1-based within the `when` text."""

    def __init__(self, message: str, column: int | None = None, suggestion: str | None = None):
        super().__init__(message)
        self.message = message
        self.column = column
        self.suggestion = suggestion


# ---- the tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    name: str
    col: int = 0


@dataclass(frozen=True)
class Lit:
    value: float | int | str | bool
    col: int = 0


@dataclass(frozen=True)
class Arith:
    op: str  # + - * /
    left: Node
    right: Node
    col: int = 0


@dataclass(frozen=True)
class Cmp:
    op: str  # == != < <= > >=
    left: Node
    right: Node
    col: int = 0


@dataclass(frozen=True)
class In:
    fact: Fact
    items: tuple[Lit, ...]
    negated: bool = False
    col: int = 0


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Fact | Lit | Arith | Cmp | In | And | Or | Not

_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_NOT_ALLOWED = {
    ast.Call: "function calls",
    ast.Attribute: "attributes",
    ast.Subscript: "indexing",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "f-strings",
    ast.IfExp: "if-expressions",
    ast.NamedExpr: "assignments",
    ast.Dict: "dictionaries",
    ast.Set: "sets",
    ast.Tuple: "tuples",
    ast.Starred: "starred expressions",
    ast.Await: "await",
    ast.Yield: "yield",
}


# ---- parsing --------------------------------------------------------------------------------


def parse(text: str) -> Node:
    """Parse a `when` expression into the tree, or raise ExprError naming the column."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError("empty expression")
    if "\n" in text.strip() or "\r" in text:
        text = " ".join(text.split())
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        msg = exc.msg.replace("invalid syntax", "syntax error")
        if re.search(r"(?<![=!<>])=(?!=)", text):
            msg += " (use == to compare)"
        raise ExprError(msg, exc.offset) from None
    return _convert(tree.body, 0)


def _col(node: ast.AST) -> int:
    return getattr(node, "col_offset", 0) + 1


def _convert(node: ast.AST, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", _col(node))
    depth += 1
    if isinstance(node, ast.BoolOp):
        items = tuple(_convert(v, depth) for v in node.values)
        return And(items) if isinstance(node.op, ast.And) else Or(items)
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return Not(_convert(node.operand, depth))
        operand = _convert(node.operand, depth)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.USub):
            if isinstance(operand, Lit) and _is_number(operand.value):
                return Lit(-operand.value, _col(node))
            return Arith("-", Lit(0, _col(node)), operand, _col(node))
        raise ExprError("'~' is not part of the language", _col(node))
    if isinstance(node, ast.BinOp):
        op = _ARITH.get(type(node.op))
        if op is None:
            raise ExprError("only + - * / are allowed in arithmetic", _col(node))
        return Arith(op, _convert(node.left, depth), _convert(node.right, depth), _col(node))
    if isinstance(node, ast.Compare):
        return _convert_compare(node, depth)
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return Lit(node.id == "true", _col(node))
        if node.id in ("True", "False", "None", "null"):
            raise ExprError(
                f"'{node.id}' is not part of the language; use true or false", _col(node)
            )
        if node.id.startswith("_"):
            raise ExprError(f"names starting with '_' are not allowed ('{node.id}')", _col(node))
        return Fact(node.id, _col(node))
    if isinstance(node, ast.Constant):
        return _literal(node)
    if isinstance(node, ast.List):
        raise ExprError("a list is only allowed after 'in' or 'not in'", _col(node))
    what = _NOT_ALLOWED.get(type(node), type(node).__name__)
    raise ExprError(f"{what} are not part of the rule language", _col(node))


def _literal(node: ast.Constant) -> Lit:
    value = node.value
    if isinstance(value, bool) or value is None:
        raise ExprError("use true or false", _col(node))
    if isinstance(value, str):
        return Lit(value, _col(node))
    if isinstance(value, int | float):
        if abs(value) >= MAX_LITERAL or value != value:
            raise ExprError(f"number {value!r} is too large (limit {MAX_LITERAL:.0e})", _col(node))
        if isinstance(value, float) and round(value, LITERAL_DECIMALS) != value:
            raise ExprError(
                f"number {value!r} has more than {LITERAL_DECIMALS} decimals", _col(node)
            )
        return Lit(value, _col(node))
    raise ExprError(f"literal {value!r} is not part of the language", _col(node))


def _convert_compare(node: ast.Compare, depth: int) -> Node:
    parts: list[Node] = []
    left = _convert(node.left, depth)
    for op_node, right_ast in zip(node.ops, node.comparators, strict=True):
        if isinstance(op_node, ast.In | ast.NotIn):
            if len(node.ops) > 1:
                raise ExprError("'in' cannot be chained with other comparisons", _col(node))
            parts.append(_convert_in(left, right_ast, isinstance(op_node, ast.NotIn), node))
            break
        op = _CMP.get(type(op_node))
        if op is None:
            raise ExprError("'is' is not part of the language; use == or !=", _col(node))
        right = _convert(right_ast, depth)
        parts.append(Cmp(op, left, right, _col(node)))
        left = right
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _convert_in(left: Node, right: ast.AST, negated: bool, node: ast.Compare) -> In:
    if not isinstance(left, Fact):
        raise ExprError("the left side of 'in' must be a fact", _col(node))
    if not isinstance(right, ast.List):
        raise ExprError("'in' needs a list of literals, e.g. segment in [\"retail\"]", _col(node))
    if not right.elts:
        raise ExprError("'in' needs a non-empty list", _col(right))
    items = []
    for elt in right.elts:
        if not isinstance(elt, ast.Constant):
            raise ExprError("lists may hold only literal strings or numbers", _col(elt))
        items.append(_literal(elt))
    return In(left, tuple(items), negated, _col(node))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_engine_value(value: object) -> object:
    """Numbers as the engine sees them: every int, float and Decimal becomes a float."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | Decimal):
        return float(value)
    return value


# ---- type checking --------------------------------------------------------------------------


def check(node: Node, kinds: Mapping[str, str]) -> list[ExprError]:
    """Every type problem of a parsed `when`; `kinds` maps fact names to number/string/boolean."""
    problems: list[ExprError] = []
    _check_condition(node, kinds, problems)
    return problems


def _unknown(fact: Fact, kinds: Mapping[str, str]) -> ExprError:
    close = difflib.get_close_matches(fact.name, list(kinds), n=1, cutoff=0.6)
    return ExprError(f"unknown fact '{fact.name}'", fact.col, close[0] if close else None)


def _check_condition(node: Node, kinds: Mapping[str, str], problems: list[ExprError]) -> None:
    if isinstance(node, And | Or):
        for item in node.items:
            _check_condition(item, kinds, problems)
    elif isinstance(node, Not):
        _check_condition(node.item, kinds, problems)
    elif isinstance(node, Cmp):
        _check_compare(node, kinds, problems)
    elif isinstance(node, In):
        kind = _kind(node.fact, kinds, problems)
        for item in node.items:
            item_kind = _lit_kind(item)
            if kind is not None and item_kind != kind:
                problems.append(
                    ExprError(
                        f"'{node.fact.name}' is a {kind} but the list holds a {item_kind}", item.col
                    )
                )
        if kind == BOOL:
            problems.append(ExprError("'in' does not apply to a boolean fact", node.col))
    else:
        kind = _kind(node, kinds, problems)
        if kind is not None and kind != BOOL:
            name = node.name if isinstance(node, Fact) else "this"
            problems.append(
                ExprError(f"'{name}' is a {kind}, not a condition; compare it", _node_col(node))
            )


def _check_compare(node: Cmp, kinds: Mapping[str, str], problems: list[ExprError]) -> None:
    left = _kind(node.left, kinds, problems)
    right = _kind(node.right, kinds, problems)
    if left is None or right is None:
        return
    if left != right:
        problems.append(
            ExprError(f"cannot compare a {left} with a {right} ('{node.op}')", node.col)
        )
    elif left in (STR, BOOL) and node.op not in ("==", "!="):
        problems.append(
            ExprError(f"'{node.op}' does not apply to a {left}; use == or !=", node.col)
        )


def _kind(node: Node, kinds: Mapping[str, str], problems: list[ExprError]) -> str | None:
    """The kind of a value expression, recording problems; None when unknown."""
    if isinstance(node, Fact):
        if node.name not in kinds:
            problems.append(_unknown(node, kinds))
            return None
        return kinds[node.name]
    if isinstance(node, Lit):
        return _lit_kind(node)
    if isinstance(node, Arith):
        ok = True
        for side in (node.left, node.right):
            kind = _kind(side, kinds, problems)
            if kind is not None and kind != NUM:
                problems.append(
                    ExprError(f"arithmetic '{node.op}' needs numbers, not a {kind}", node.col)
                )
            ok = ok and kind == NUM
        if node.op == "/" and isinstance(node.right, Lit) and node.right.value == 0:
            problems.append(ExprError("division by zero", node.right.col))
        return NUM if ok else None
    problems.append(ExprError("a condition cannot be used as a value", _node_col(node)))
    return None


def _lit_kind(lit: Lit) -> str:
    if isinstance(lit.value, bool):
        return BOOL
    return STR if isinstance(lit.value, str) else NUM


def _node_col(node: Node) -> int | None:
    return getattr(node, "col", None) or None


# ---- normal form ----------------------------------------------------------------------------


def normalize(node: Node, negate: bool = False) -> Node:
    """Negation pushed down to comparisons (NNF); bare boolean facts become `fact == true`.

    The result holds only And, Or, Cmp, In and boolean Lit nodes; And/Or are flattened and
    constant operands folded away.
    """
    if isinstance(node, Not):
        return normalize(node.item, not negate)
    if isinstance(node, And | Or):
        is_and = isinstance(node, And) != negate
        items = [normalize(item, negate) for item in node.items]
        return _join(is_and, items)
    if isinstance(node, Cmp):
        op = COMPLEMENT[node.op] if negate else node.op
        return Cmp(op, fold_arithmetic(node.left), fold_arithmetic(node.right), node.col)
    if isinstance(node, In):
        return In(node.fact, node.items, node.negated != negate, node.col)
    if isinstance(node, Fact):
        return Cmp("==", node, Lit(not negate, node.col), node.col)
    if isinstance(node, Lit):
        return Lit(bool(node.value) != negate, node.col)
    raise ExprError("a value cannot be used as a condition", _node_col(node))


def _join(is_and: bool, items: list[Node]) -> Node:
    flat: list[Node] = []
    for item in items:
        if isinstance(item, Lit):
            if bool(item.value) != is_and:  # false in and, true in or: decides the whole
                return Lit(not is_and)
            continue
        if isinstance(item, And if is_and else Or):
            flat.extend(item.items)
        else:
            flat.append(item)
    if not flat:
        return Lit(is_and)
    if len(flat) == 1:
        return flat[0]
    return And(tuple(flat)) if is_and else Or(tuple(flat))


def fold_arithmetic(node: Node) -> Node:
    """Arithmetic on literals only is computed now (the engine cannot evaluate it).

    A division by a literal zero is left in place for the validator to report.
    """
    if not isinstance(node, Arith):
        return node
    left, right = fold_arithmetic(node.left), fold_arithmetic(node.right)
    if isinstance(left, Lit) and isinstance(right, Lit):
        if not (node.op == "/" and right.value == 0):
            folded = _value(Arith(node.op, left, right), {})
            return Lit(folded, node.col)
    return Arith(node.op, left, right, node.col)


def fold_constants(node: Node) -> Node:
    """Comparisons that read no fact are decided now; the result is normalised again."""
    if isinstance(node, And | Or):
        return _join(isinstance(node, And), [fold_constants(i) for i in node.items])
    if isinstance(node, Cmp) and not any(True for _ in facts_read(node)):
        value = evaluate(node, {})
        return Lit(bool(value))
    return node


# ---- walking and the reference interpreter --------------------------------------------------


def subnodes(node: Node) -> Iterator[Node]:
    """The node and every node below it, depth first, left to right."""
    yield node
    if isinstance(node, Arith | Cmp):
        yield from subnodes(node.left)
        yield from subnodes(node.right)
    elif isinstance(node, In):
        yield node.fact
        yield from node.items
    elif isinstance(node, And | Or):
        for item in node.items:
            yield from subnodes(item)
    elif isinstance(node, Not):
        yield from subnodes(node.item)


def facts_read(node: Node) -> Iterator[str]:
    """Names of every fact the expression reads (with repeats)."""
    return (n.name for n in subnodes(node) if isinstance(n, Fact))


def literals(node: Node) -> Iterator[Lit]:
    """Every literal of an expression, divisors included."""
    return (n for n in subnodes(node) if isinstance(n, Lit))


def divisors(node: Node) -> Iterator[Node]:
    """Every right-hand side of a division that is not a literal."""
    return (
        n.right
        for n in subnodes(node)
        if isinstance(n, Arith) and n.op == "/" and not isinstance(n.right, Lit)
    )


def zero_divisions(node: Node) -> Iterator[Arith]:
    """Divisions whose divisor is the literal zero."""
    return (
        n
        for n in subnodes(node)
        if isinstance(n, Arith) and n.op == "/" and isinstance(n.right, Lit) and n.right.value == 0
    )


def matches(node: Node, facts: Mapping[str, object]) -> bool:
    """Reference semantics of a whole `when`.

    A `when` that reads an absent fact does not match, whatever operators surround it; nor does
    one whose division has a zero divisor. Otherwise it is ordinary boolean logic.
    """
    if any(name not in facts for name in facts_read(node)):
        return False
    try:
        if any(_value(d, facts) == 0 for d in divisors(node)):
            return False
        return bool(evaluate(node, facts))
    except ZeroDivisionError:  # a divisor inside a divisor was zero
        return False


def evaluate(node: Node, facts: Mapping[str, object]) -> object:
    """Evaluate with every read fact present and every divisor non-zero (see `matches`)."""
    if isinstance(node, And):
        return all(evaluate(i, facts) for i in node.items)
    if isinstance(node, Or):
        return any(evaluate(i, facts) for i in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, facts)
    if isinstance(node, Cmp):
        return _compare(node.op, _value(node.left, facts), _value(node.right, facts))
    if isinstance(node, In):
        value = facts[node.fact.name]
        found = any(value == item.value for item in node.items)
        return found != node.negated
    return _value(node, facts)


def _value(node: Node, facts: Mapping[str, object]) -> object:
    if isinstance(node, Fact):
        return as_engine_value(facts[node.name])
    if isinstance(node, Lit):
        return as_engine_value(node.value)
    if isinstance(node, Arith):
        left, right = _value(node.left, facts), _value(node.right, facts)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        return left / right
    return evaluate(node, facts)


def _compare(op: str, left: object, right: object) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right
