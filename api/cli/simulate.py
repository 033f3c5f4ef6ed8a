"""`credo rules simulate` and `credo rules backtest`: what a rule-set change would do, tried on
the stored portfolio or replayed over stored decisions. Nothing is stored.

The candidate is a rule FILE (its kind read from it) or a stored KIND VERSION. `--json` prints
the result the API's job gives (GET /v1/jobs/{id}, `result`).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from api.cli.keys import BadInput
from api.cli.main import CliContext, pass_cli
from api.simulation import DEFAULT_SEED, Candidate, SimulationError

SHOWN = 20  # changed customers or decisions printed; --json has the result's whole list


def _candidate(target: str, version: str | None) -> Candidate:
    """A rule FILE, or the stored KIND VERSION; BadInput naming what is wrong."""
    from api.simulation import file_candidate, stored_candidate
    from engine.errors import RuleFileError

    if version is None:
        path = Path(target)
        if not path.is_file():
            raise BadInput(
                f"{target}: no such rule file (give a rule FILE, or KIND VERSION for a stored "
                "version)"
            )
        try:
            return file_candidate(path)
        except RuleFileError as exc:
            raise BadInput("\n".join(str(p) for p in exc.problems)) from None
    if not version.isdigit() or len(version) > 10:
        raise BadInput(f"VERSION: {version[:40]!r} is not a version number (1, 2, …)")
    try:
        return stored_candidate(target, int(version))
    except SimulationError as exc:
        raise BadInput(str(exc)) from None


def _resolve(ctx: CliContext, target: str, version: str | None) -> Candidate:
    """The candidate, from an initialised database; a bad FILE is refused before opening it."""
    from api.cli.data import _open_initialised

    candidate = _candidate(target, version) if version is None else None
    _open_initialised(ctx)
    return candidate or _candidate(target, version)


def _day(value: Any, ctx: CliContext) -> date:
    """The given --as-of, else today in the configured timezone."""
    if value is not None:
        return value.date()
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(ctx.settings.facts.timezone)).date()


class _Bar:
    """A rich progress bar on a terminal (stderr), nothing otherwise."""

    def __init__(self, what: str, show: bool):
        self.progress = None
        if show:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn(what),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task(what, total=None)
            self.progress.start()

    def __call__(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@click.command("simulate")
@click.argument("target", metavar="FILE|KIND")
@click.argument("version", required=False)
@click.option(
    "--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Date of the facts (default today)."
)
@click.option("--sample", type=int, help="Evaluate N customers chosen by --seed, not all.")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Picks the sample.")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: config).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (as the API).")
@pass_cli
def simulate_command(ctx: CliContext, target, version, as_of, sample, seed, workers, as_json):
    """Try a rule FILE, or stored KIND VERSION, on the stored customers beside the active version.

    Prints, for each outcome field, how many customers move from which value to which, the
    money behind each move per currency, and the first customers whose outcome changes.
    Nothing is stored.
    """
    from dataclasses import replace

    from api.simulation import simulate

    candidate = _resolve(ctx, target, version)
    settings = ctx.settings
    if workers:
        settings = replace(settings, run=replace(settings.run, workers=workers))
    bar = _Bar("customers", sys.stderr.isatty() and not as_json)
    try:
        result = simulate(settings, candidate, _day(as_of, ctx), sample, seed, bar)
    except SimulationError as exc:
        raise BadInput(str(exc)) from None
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    scope = f"{result['customers']:,} customers"
    if result["sample"]:
        scope = f"a sample of {scope} (seed {seed})"
    _print(result, f"{scope} as of {result['as_of']}", "customers", "customer_id")


@click.command("backtest")
@click.argument("target", metavar="FILE|KIND")
@click.argument("version", required=False)
@click.option(
    "--from",
    "first",
    type=click.DateTime(["%Y-%m-%d"]),
    required=True,
    help="First day of the period (decisions' creation date, UTC).",
)
@click.option(
    "--to",
    "last",
    type=click.DateTime(["%Y-%m-%d"]),
    required=True,
    help="Last day of the period (included).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (as the API).")
@pass_cli
def backtest_command(ctx: CliContext, target, version, first, last, as_json):
    """Replay a rule FILE, or stored KIND VERSION, over the stored decisions of its kind made
    from --from to --to, on the facts each one saw; list those it would decide differently.
    Nothing is stored."""
    from api.backtest import backtest

    candidate = _resolve(ctx, target, version)
    bar = _Bar("decisions", sys.stderr.isatty() and not as_json)
    try:
        result = backtest(candidate, first.date(), last.date(), bar)
    except SimulationError as exc:
        raise BadInput(str(exc)) from None
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    scope = f"{result['decisions']:,} decisions made {result['from']} to {result['to']}"
    _print(result, scope, "decisions", "seq")


def _print(result: dict[str, Any], scope: str, subjects: str, key: str) -> None:
    """The result for a person: the matrices, the money of each change, the first changes."""
    console = Console()
    candidate, active = result["candidate"], result.get("active")
    against = f" vs active {active['label']}" if active else " vs the stored outcomes"
    console.print(f"{result['kind']}: {candidate['label']}{against}, {scope}")
    console.print(
        f"changed: {result['changed_count']:,} of {result['evaluated']:,} {subjects}"
        + (f", {result['errors_count']:,} could not be evaluated" if result["errors_count"] else "")
    )
    for name, matrix in result["matrix"].items():
        console.print(_matrix_table(name, matrix))
    money = _money_table(result["matrix"])
    if money.row_count:
        console.print(money)
    shown = result["changed"][:SHOWN]
    if shown:
        console.print(_changes_table(shown, key))
    if result["changed_count"] > len(shown):
        console.print(f"… and {result['changed_count'] - len(shown):,} more (--json lists more)")
    for error in result["errors"][:10]:
        console.print(f"[red]error[/red] {error[key]}: {error['error']}")


def _text(value: Any) -> str:
    from engine.checks import describe

    return "(absent)" if value is None else describe(value)


def _amount(text: str) -> str:
    """Money for a person: thousands separated (JSON keeps '1234.50')."""
    from decimal import Decimal

    return f"{Decimal(text):,}"


def _matrix_table(name: str, matrix: dict[str, Any]) -> Table:
    froms = [v for v in matrix["values"] if any(c["from"] == v for c in matrix["cells"])]
    tos = [v for v in matrix["values"] if any(c["to"] == v for c in matrix["cells"])]
    counts = {(_text(c["from"]), _text(c["to"])): c["count"] for c in matrix["cells"]}
    table = Table(f"{name}: from ↓ to →", *(_text(v) for v in tos), title=name)
    for old in froms:
        row = []
        for new in tos:
            count = counts.get((_text(old), _text(new)))
            changed = _text(old) != _text(new)
            row.append(
                "" if count is None else f"[bold]{count:,}[/bold]" if changed else f"{count:,}"
            )
        table.add_row(_text(old), *row)
    return table


def _money_table(matrices: dict[str, Any]) -> Table:
    table = Table(
        "field",
        "from",
        "to",
        "currency",
        "count",
        "open balance",
        "overdue balance",
        title="money behind each change, per currency",
    )
    for name, matrix in matrices.items():
        for cell in matrix["cells"]:
            if not cell["changed"]:
                continue
            for currency, money in cell["money"].items():
                table.add_row(
                    name,
                    _text(cell["from"]),
                    _text(cell["to"]),
                    currency,
                    f"{money['count']:,}",
                    _amount(money["open_balance"]),
                    _amount(money["overdue_balance"]),
                )
    return table


def _changes_table(changed: list[dict[str, Any]], key: str) -> Table:
    title = "customer" if key == "customer_id" else "decision (seq, customer)"
    table = Table(title, "overdue", "change", "new reasons", title=f"first {len(changed)} changes")
    for entry in changed:
        old, new = entry["from"]["outcome"], entry["to"]["outcome"]
        moves = [
            f"{n}: {_text(old.get(n))} → {_text(new.get(n))}"
            for n in [*new, *(n for n in old if n not in new)]
            if json.dumps(old.get(n)) != json.dumps(new.get(n))
        ]
        who = entry[key] if key == "customer_id" else f"#{entry['seq']} {entry['customer_id']}"
        table.add_row(
            str(who),
            f"{_amount(entry['overdue_balance'])} {entry['currency']}",
            "; ".join(moves),
            "; ".join(entry["to"]["reasons"]),
        )
    return table


def register(main: click.Group) -> None:
    from api.cli.rules import rules

    rules.add_command(simulate_command)
    rules.add_command(backtest_command)
