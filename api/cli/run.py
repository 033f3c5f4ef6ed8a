"""`credo run` (one nightly run now) and `credo scheduler` (the APScheduler process)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import date, datetime
from typing import Any

import click

from api.cli.main import CliContext, pass_cli


def _today(ctx: CliContext) -> date:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(ctx.settings.facts.timezone)).date()


class _Bar:
    """A rich progress bar on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, interactive: bool):
        self.total, self.interactive, self.last_line = total, interactive, 0.0
        self.progress = None
        if interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("customers"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.task = self.progress.add_task("run", total=total, rate="-")
            self.progress.start()
        import time

        self.clock, self.started = time.monotonic, time.monotonic()

    def __call__(self, state: dict[str, Any]) -> None:
        done = state["customers_done"]
        elapsed = max(self.clock() - self.started, 1e-6)
        if self.progress is not None:
            self.progress.update(self.task, completed=done, rate=f"{done / elapsed:,.0f}")
        elif self.clock() - self.last_line >= 5 or done >= self.total:
            self.last_line = self.clock()
            click.echo(
                f"run: {done}/{self.total} customers, {state['batches_done']}/"
                f"{state['batches_total']} batches, {done / elapsed:,.0f}/s, "
                f"{state['errors']} errors",
                err=True,
            )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@click.command("run")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Date of the run (default today).")
@click.option("--force", is_flag=True, help="Run again even if the date's run has finished.")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: config).")
@click.option("--wait", is_flag=True, help="Wait for a run in progress instead of exiting.")
@click.option("--join", is_flag=True, help="Help the date's unfinished run (PostgreSQL).")
@click.option("--run-id", hidden=True, help="Execute this prepared run (used by POST /v1/runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its report as JSON.")
@pass_cli
def run_command(ctx: CliContext, as_of, force, workers, wait, join, run_id, as_json) -> None:
    """Re-evaluate every open account now, with every active rule set (resumes a stopped run)."""
    from api.cli.data import _open_initialised
    from api.nightly.run import RunError, StopFlag, execute_run, join_run, prepare_run

    _open_initialised(ctx)
    settings = ctx.settings
    day = as_of.date() if as_of else _today(ctx)
    stop = StopFlag()
    stop.install()
    try:
        if join:
            done = join_run(settings, day, stop)
            click.echo(f"joined the run of {day}: {done} customers done so far")
            return
        if run_id is None:
            run, status = prepare_run(settings, day, force, "credo run")
            if status == "finished":
                _print_run(run_json(run), as_json, note="already finished; --force to run again")
                return
            run_id = run.run_id
        from storage.worklist import get_run

        bar = _Bar(get_run(run_id).customers_total, sys.stderr.isatty() and not as_json)
        try:
            result = execute_run(settings, run_id, workers, bar, stop, wait)
        finally:
            bar.close()
    except RunError as exc:
        click.echo(f"credo run: {exc}", err=True)
        sys.exit(2)
    if stop.stopped:
        click.echo(f"run {run_id} stopped; `credo run --as-of {day}` resumes it", err=True)
        sys.exit(1)
    _print_run(result, as_json)


def run_json(run) -> dict[str, Any]:
    from storage.worklist import run_to_json

    return run_to_json(run)


def _print_run(run: dict[str, Any], as_json: bool, note: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps({**run, **({"note": note} if note else {})}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    report = run["report"] or {}
    console = Console()
    console.print(
        f"run {run['run_id']} of {run['as_of']} (attempt {run['attempt']}): {run['state']}"
        + (f" — {note}" if note else "")
    )
    if not report:
        return
    console.print(
        f"{report['customers_evaluated']} customers in {report['seconds']} s "
        f"({report['customers_per_second']}/s), {report['errors_count']} errors"
    )
    table = Table("kind", "outcome", "customers", "changes since last run")
    for kind, counts in report["decisions"].items():
        changes = report["changes"].get(kind, {})
        for outcome, n in counts.items():
            moved = ", ".join(f"{k}: {v}" for k, v in changes.items() if k.endswith(f"→{outcome}"))
            table.add_row(kind, outcome, str(n), moved)
    console.print(table)
    actions = Table("action", "pending", "void", "acknowledged")
    for kind, states in report["actions"].items():
        actions.add_row(kind, *(str(states.get(s, 0)) for s in ("pending", "void", "acknowledged")))
    console.print(actions)
    p = report["portfolio"]
    console.print(
        f"open {p['open_balance']}, overdue {p['overdue_balance']} (share {p['overdue_share']}), "
        f"aging 1-30 {p['aging']['1_30']} / 31-60 {p['aging']['31_60']} / "
        f"61-90 {p['aging']['61_90']} / 90+ {p['aging']['90_plus']}; "
        f"DSO {p['dso_days']} days, CEI {p['cei_percent']}%"
    )
    for error in report["errors"][:10]:
        console.print(f"[red]error[/red] {error['customer_id']}: {error['error']}")
    if report.get("message_errors_count"):  # reports of older runs have no such key
        counts = report["message_errors_by_template"].items()
        by_template = ", ".join(f"{template}: {n}" for template, n in counts)
        console.print(
            f"{report['message_errors_count']} reminders without a message ({by_template})",
            markup=False,
        )
        for error in report["message_errors"][:10]:
            console.print(f"[yellow]message[/yellow] {error['customer_id']}: ", end="")
            console.print(error["error"], markup=False, highlight=False)


@click.command("scheduler")
@pass_cli
def scheduler_command(ctx: CliContext) -> None:
    """Run the nightly schedule (cron and timezone from config.toml) until SIGTERM/SIGINT."""
    from api.cli.data import _open_initialised
    from api.nightly.scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _open_initialised(ctx)
    run_scheduler(ctx.settings)


def register(main: click.Group) -> None:
    main.add_command(run_command)
    main.add_command(scheduler_command)
