"""engine/ is pure: it imports no Flask, peewee, APScheduler, storage or api (SPEC §2)."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {
    "flask",
    "flask_smorest",
    "peewee",
    "playhouse",
    "apscheduler",
    "storage",
    "api",
    "marshmallow",
    "psycopg2",
    "click",
    "rich",
}
ENGINE = Path(__file__).resolve().parents[2] / "engine"


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_engine_imports_nothing_from_the_edges() -> None:
    for path in ENGINE.glob("*.py"):
        bad = imported_roots(path) & FORBIDDEN
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_only_the_runtime_imports_durable_rules() -> None:
    users = {
        p.name
        for p in ENGINE.glob("*.py")
        if imported_roots(p) & {"durable", "durable_rules_engine"}
    }
    assert users == {"runtime.py"}
