"""Where in a rule file's text a validation problem is: the line of the rule, field or test.

tomllib gives no positions, so the line is found in the text: the `id = "…"` of the rule, then
the field's `key =` within that rule's table; the `name = "…"` of a [[test]]; a key of the
[outcome] table. A problem whose place cannot be found this way keeps no line.
"""

from __future__ import annotations

import re
from dataclasses import replace

from engine.errors import Problem

_HEADER = re.compile(r"^\s*\[")
_TEST_LABEL = re.compile(r"^test '(.*?)': ")


def locate_problems(problems: list[Problem], source: str) -> list[Problem]:
    """The problems with `line` filled in where the text shows where they are."""
    lines = source.split("\n")  # TOML counts lines by newlines alone
    located = []
    for problem in problems:
        if problem.line is None:
            line = _locate(problem, lines)
            if line is not None:
                problem = replace(problem, line=line)
        located.append(problem)
    return located


def _locate(problem: Problem, lines: list[str]) -> int | None:
    if problem.rule_id:
        table = _table_with(lines, "rule", "id", problem.rule_id)
    else:
        test = _TEST_LABEL.match(problem.message)
        if test:
            table = _table_with(lines, "test", "name", test.group(1))
            field = problem.message[test.end() :].split(":", 1)[0].split(".", 1)[0]
            return _key_line(lines, table, field) if table else None
        if problem.field and problem.field.startswith("outcome."):
            table = _table_named(lines, "outcome")
            name = problem.field.split(".", 1)[1]
            return _key_line(lines, table, name) if table else None
        return None
    if table is None:
        return None
    field = (problem.field or "").split(".", 1)[0]
    return _key_line(lines, table, field) if field else table[2]


def _table_with(lines: list[str], array: str, key: str, value: str) -> tuple[int, int, int] | None:
    """(first, end, line of the key) of the [[array]] table whose `key` is `value` (1-based)."""
    wanted = re.compile(rf"^\s*{key}\s*=\s*([\"'])" + re.escape(value) + r"\1\s*(#.*)?$")
    header = re.compile(rf"^\s*\[\[\s*{array}\s*\]\]")
    start = None
    for number, text in enumerate(lines):
        if header.match(text):
            start = number
        elif _HEADER.match(text):
            start = None
        elif start is not None and wanted.match(text):
            return start, _table_end(lines, start), number + 1
    return None


def _table_named(lines: list[str], name: str) -> tuple[int, int, int] | None:
    header = re.compile(rf"^\s*\[\s*{name}\s*\]")
    for number, text in enumerate(lines):
        if header.match(text):
            return number, _table_end(lines, number), number + 1
    return None


def _table_end(lines: list[str], start: int) -> int:
    for number in range(start + 1, len(lines)):
        if _HEADER.match(lines[number]):
            return number
    return len(lines)


def _key_line(lines: list[str], table: tuple[int, int, int], key: str) -> int:
    """The line of `key =` in the table, else the table's own line."""
    first, end, fallback = table
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number in range(first, end):
        if pattern.match(lines[number]):
            return number + 1
    return fallback
