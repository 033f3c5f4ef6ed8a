"""storage/ sits under api/: it imports nothing from api/ nor from the web and command-line
frameworks the edges use (SPEC §2). Every import counts, those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

STORAGE = Path(__file__).resolve().parents[2] / "storage"
FORBIDDEN = {"api", "flask", "flask_smorest", "werkzeug", "marshmallow", "click"}


def imported_modules(source: str, package: tuple[str, ...]) -> set[str]:
    """Every module the source imports, at any depth of its syntax tree (function bodies
    included); relative imports resolved against `package`, the source's package."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            found.add(".".join([*base, *([node.module] if node.module else [])]))
    return found


def test_storage_imports_nothing_from_the_edges() -> None:
    modules = sorted(STORAGE.rglob("*.py"))
    assert STORAGE / "decisions" / "shape.py" in modules  # packages are walked too
    for path in modules:
        package = path.relative_to(STORAGE.parent).parent.parts
        imported = imported_modules(path.read_text(encoding="utf-8"), package)
        bad = {m for m in imported if m.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.relative_to(STORAGE.parent)} imports {sorted(bad)}"


def test_imports_inside_functions_and_relative_ones_are_seen() -> None:
    source = (
        "import peewee\n"
        "def later():\n"
        "    from api.http import errors\n"
        "    if True:\n"
        "        import flask.json\n"
        "from . import shape\n"
        "from ..db import database\n"
    )
    assert imported_modules(source, ("storage", "decisions")) == {
        "peewee",
        "api.http",
        "flask.json",
        "storage.decisions",
        "storage.db",
    }
