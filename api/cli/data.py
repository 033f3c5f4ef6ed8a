"""`credo init`, `credo import FILE` and `credo demo`: the database, the ledger, a demo portfolio.

Exit codes (SPEC §7): 0 ok; 2 for bad input, including an import with rejected lines.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
import peewee as pw
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from api.cli.keys import BadInput
from api.cli.main import CliContext, pass_cli
from storage.upsert import RECORD_TYPES


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _open_initialised(ctx: CliContext) -> pw.Database:
    """The configured database, refusing one `credo init` has not brought up to date."""
    from storage.db import connect, redact
    from storage.errors import StorageError
    from storage.migrations import LATEST, current_version

    url = ctx.settings.database_url
    try:
        db = connect(url)
        version = current_version(db)
    except (StorageError, pw.DatabaseError) as exc:
        raise BadInput(f"database {redact(url)}: {exc}") from exc
    if version < LATEST:
        raise BadInput(
            f"database {redact(url)} is at schema version {version}, not {LATEST}: "
            "run `credo init` first"
        )
    return db


@click.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def init_command(ctx: CliContext, as_json: bool) -> None:
    """Create or upgrade the database and load the default rule sets (safe to run again)."""
    from api.usecases import init_database
    from engine.errors import RuleFileError
    from storage.errors import StorageError

    try:
        report = init_database(ctx.settings.database_url, ctx.settings.rules_dir)
    except RuleFileError as exc:
        raise BadInput(f"default rule sets:\n{exc}") from exc
    except (StorageError, pw.DatabaseError) as exc:
        raise BadInput(str(exc)) from exc
    if as_json:
        _emit(report)
        return
    applied = report["migrations_applied"]
    click.echo(
        f"database {report['database']}: schema version {report['schema_version']}"
        + (f" (applied migrations {', '.join(map(str, applied))})" if applied else " (up to date)")
    )
    for entry in report["rulesets"]:
        if entry.get("templates_added"):
            versions = ", ".join(map(str, entry["templates_added"]))
            click.echo(
                f"rule set {entry['kind']}: versions {versions} stored with the templates of "
                f"{entry['templates']} (stored before versions carried their own)"
            )
        click.echo(_ruleset_line(entry))


def _ruleset_line(entry: dict[str, Any]) -> str:
    """What `credo init` did with one shipped rule set."""
    kind, version, active = entry["kind"], entry["version"], entry["active"]
    if entry["action"] == "loaded":
        return f"rule set {kind}: loaded {entry['file']} as active version {version}"
    if entry["action"] == "kept":
        shipped = "as shipped" if version == active else f"{entry['file']} is version {version}"
        return f"rule set {kind}: version {active or 'none'} active ({shipped})"
    shipped = entry["file"] + (f" with {entry['templates']}" if "templates" in entry else "")
    return (
        f"rule set {kind}: version {active or 'none'} stays active; the shipped {shipped} "
        f"differs from every stored version and is stored as draft version {version}, not "
        f"activated (compare: credo rules diff {kind} {active or 1} {version}; "
        f"then credo rules propose {kind} {version})"
    )


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--type",
    "record_type",
    type=click.Choice(RECORD_TYPES),
    help="The type of every record, for a file without a `type` column or key.",
)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_cli
def import_command(
    ctx: CliContext, file: Path, record_type: str | None, batch_size: int, as_json: bool
) -> None:
    """Import ledger records from a JSONL or CSV FILE (see docs/import.md).

    Records are upserted by id; importing the same file again changes nothing. Every rejected
    line is reported with its reasons; the others are stored. Exit code 2 if any was rejected.
    """
    from api.intake.importer import ImportFileError, import_file

    _open_initialised(ctx)
    from api.nightly.worklist import today_in

    today = today_in(ctx.settings.facts.timezone)
    console = Console(stderr=True)
    try:
        if console.is_terminal and not as_json:
            with Progress(
                TextColumn("importing {task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task(file.name, total=file.stat().st_size)
                report = import_file(
                    file,
                    record_type,
                    batch_size=batch_size,
                    on_progress=lambda done: progress.update(task, completed=done),
                    today=today,
                )
        else:
            report = import_file(file, record_type, batch_size=batch_size, today=today)
    except ImportFileError as exc:
        raise BadInput(str(exc)) from exc
    if as_json:
        _emit(report.to_json())
    else:
        for rejection in report.rejected:
            click.echo(str(rejection), err=True)
        click.echo(
            f"{file}: {report.lines} records: {report.inserted} inserted, {report.updated} "
            f"updated, {report.unchanged} unchanged, {len(report.rejected)} rejected"
        )
    if report.rejected:
        sys.exit(2)


@click.command("demo")
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", default=7, show_default=True, type=int, help="Same seed, same portfolio.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The portfolio's today (default: today).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the database even if it holds data that `credo demo` did not make.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_cli
def demo_command(
    ctx: CliContext, customers: int, seed: int, as_of: Any, force: bool, as_json: bool
) -> None:
    """Build a synthetic portfolio, decide every open account and print a summary.

    Uses the configured database (by default a fresh SQLite file in the data directory). A
    database made by an earlier `credo demo` is replaced; one holding anything else (API keys,
    imported records, decisions, rule-set versions, runs) is refused with exit code 2, saying
    what it holds, unless --force.
    """
    from api.demo.run import DemoRefused, run_demo

    day = as_of.date() if as_of else date.today()
    console = Console(stderr=as_json)
    try:
        summary = run_demo(ctx.settings, customers, seed, day, console=console, force=force)
    except DemoRefused as exc:
        raise BadInput(str(exc)) from exc
    if as_json:
        _emit(summary)


def register(main: click.Group) -> None:
    """Add init, import and demo to the `credo` group."""
    for command in (init_command, import_command, demo_command):
        main.add_command(command)
