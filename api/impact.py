"""What a rule-set change does to outcomes, tallied: the from→to matrix of each outcome field,
the money behind each cell per currency, and the subjects whose outcome changes.

Shared by simulation (api.simulation: subjects are customers) and backtest (api.backtest:
subjects are stored decisions). A tally is built batch by batch, in worker processes or not,
and tallies merge in any order into the same result: counts and sums are exact (Decimal), and
the capped lists keep the first subjects by their key, whatever order they arrived in.
Money is never summed across currencies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.ruleset import RuleSet
from engine.trace import Evaluation, to_jsonable

CHANGED_CAP = 100  # subjects listed with their old and new outcome; the total is counted
ERRORS_CAP = 100
ZERO = Decimal("0.00")
UNKNOWN_CURRENCY = "unknown"  # a stored decision without a customer (facts given directly)


def side(evaluation: Evaluation) -> dict[str, Any]:
    """One side of a comparison: an evaluation's outcome, reasons and fired rule ids."""
    return {
        "outcome": to_jsonable(evaluation.outcome),
        "reasons": list(evaluation.reasons),
        "fired": [rule.id for rule in evaluation.fired],
    }


@dataclass
class _Cell:
    count: int = 0
    # currency: [count, open balance, overdue balance]
    money: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, money: Mapping[str, Sequence[Any]]) -> None:
        for currency, (count, open_balance, overdue_balance) in money.items():
            self.count += count
            sums = self.money.setdefault(currency, [0, ZERO, ZERO])
            sums[0] += count
            sums[1] += open_balance
            sums[2] += overdue_balance


@dataclass
class Impact:
    """The tally of one comparison; `order_key` names the subject field lists are sorted by."""

    order_key: str
    evaluated: int = 0
    changed_count: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    errors_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # outcome field -> (from, to) as typed values (see _typed) -> cell
    cells: dict[str, dict[tuple[Typed, Typed], _Cell]] = field(default_factory=dict)

    def add(
        self,
        subject: dict[str, Any],
        currency: str,
        open_balance: Decimal,
        overdue_balance: Decimal,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> None:
        """Count one subject: `before` and `after` are sides (see `side`)."""
        self.evaluated += 1
        old, new = before["outcome"], after["outcome"]
        money = {currency: (1, open_balance, overdue_balance)}
        for name in [*new, *(n for n in old if n not in new)]:
            key = (_typed(old.get(name)), _typed(new.get(name)))
            cells = self.cells.setdefault(name, {})
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = _Cell()
            cell.add(money)
        if _differs(old, new):
            self.changed_count += 1
            entry = {
                **subject,
                "currency": currency,
                "open_balance": str(open_balance),
                "overdue_balance": str(overdue_balance),
                "from": before,
                "to": after,
            }
            self.changed.append(entry)
            if len(self.changed) >= 2 * CHANGED_CAP:
                self.changed = self._first(self.changed, CHANGED_CAP)

    def add_error(self, subject: dict[str, Any], error: Exception | str) -> None:
        """Count a subject that could not be evaluated, with why."""
        self.errors_count += 1
        text = error if isinstance(error, str) else _describe(error)
        self.errors.append({**subject, "error": text})
        if len(self.errors) >= 2 * ERRORS_CAP:
            self.errors = self._first(self.errors, ERRORS_CAP)

    def merge(self, other: Impact) -> None:
        """Add another tally (of other subjects) to this one."""
        self.evaluated += other.evaluated
        self.changed_count += other.changed_count
        self.errors_count += other.errors_count
        self.changed = self._first([*self.changed, *other.changed], CHANGED_CAP)
        self.errors = self._first([*self.errors, *other.errors], ERRORS_CAP)
        for name, cells in other.cells.items():
            mine = self.cells.setdefault(name, {})
            for key, cell in cells.items():
                mine.setdefault(key, _Cell()).add(cell.money)

    def to_json(self, *rulesets: RuleSet) -> dict[str, Any]:
        """The tally as JSON values; cells in the order the rule sets declare their values."""
        order = _value_order(rulesets)
        matrix = {}
        names = [*(n for n in order if n in self.cells), *sorted(set(self.cells) - set(order))]
        for name in names:
            cells, rank = self.cells[name], order.get(name, {})
            keys = sorted(cells, key=lambda k: (_rank(rank, k[0]), _rank(rank, k[1])))
            values = sorted({typed for key in keys for typed in key}, key=lambda t: _rank(rank, t))
            matrix[name] = {
                "values": [value for _type, value in values],
                "cells": [_cell_json(key, cells[key]) for key in keys],
            }
        return {
            "evaluated": self.evaluated,
            "changed_count": self.changed_count,
            "matrix": matrix,
            "changed": self._first(self.changed, CHANGED_CAP),
            "errors_count": self.errors_count,
            "errors": self._first(self.errors, ERRORS_CAP),
        }

    def _first(self, entries: list[dict[str, Any]], cap: int) -> list[dict[str, Any]]:
        return sorted(entries, key=lambda e: e[self.order_key])[:cap]


Typed = tuple[str, Any]


def _typed(value: Any) -> Typed:
    """An outcome value (a JSON scalar) with its type: 1, 1.0 and true, which Python's ==
    takes for one another, stay apart."""
    return (type(value).__name__, value)


def _differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(_typed(old.get(n)) != _typed(new.get(n)) for n in {*old, *new})


def _value_order(rulesets: Sequence[RuleSet]) -> dict[str, dict[Typed, int]]:
    """Each outcome field's declared values (and default), ranked in declared order."""
    order: dict[str, dict[Typed, int]] = {}
    for ruleset in rulesets:
        for name, spec in ruleset.outcome.items():
            rank = order.setdefault(name, {})
            for value in (*(spec.values or ()), spec.default):
                rank.setdefault(_typed(to_jsonable(value)), len(rank))
    return order


def _rank(rank: dict[Typed, int], typed: Typed) -> tuple[int, str, str]:
    """Declared values first, in their order; then any other by type and text."""
    return (rank.get(typed, len(rank)), typed[0], json.dumps(typed[1]))


def _cell_json(key: tuple[Typed, Typed], cell: _Cell) -> dict[str, Any]:
    (_, old), (_, new) = key
    return {
        "from": old,
        "to": new,
        "changed": key[0] != key[1],
        "count": cell.count,
        "money": {
            currency: {
                "count": sums[0],
                "open_balance": str(sums[1]),
                "overdue_balance": str(sums[2]),
            }
            for currency, sums in sorted(cell.money.items())
        },
    }


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500]
