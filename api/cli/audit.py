"""`credo audit …`: the auditor's commands. The group is defined here; each part of it (the
chain, the decisions, the records) adds its commands in a module of its own, listed in _PARTS."""

from __future__ import annotations

import importlib

import click

# Modules of api/cli that add commands to the `audit` group when imported.
_PARTS: tuple[str, ...] = ("audit_chain", "audit_records", "audit_decisions")


@click.group("audit")
def audit() -> None:
    """Verify, replay, explain and export the decision trail; read the operator log."""


def register(main: click.Group) -> None:
    for part in _PARTS:
        importlib.import_module(f"api.cli.{part}")
    main.add_command(audit)
