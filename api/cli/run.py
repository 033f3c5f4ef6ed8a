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

    def __init__(self, interactive: bool):
        import time

        self.interactive, self.last_line = interactive, 0.0
        self.progress = self.task = None
        self.clock, self.started = time.monotonic, time.monotonic()

    def _start(self, total: int) -> None:
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

    def __call__(self, state: dict[str, Any]) -> None:
        done, total = state["customers_done"], state["customers_total"]
        elapsed = max(self.clock() - self.started, 1e-6)
        if self.interactive and self.progress is None:
            self._start(total)  # the total is known once the customers are listed
        if self.progress is not None:
            self.progress.update(self.task, completed=done, rate=f"{done / elapsed:,.0f}")
        elif self.clock() - self.last_line >= 5 or done >= total:
            self.last_line = self.clock()
            click.echo(
                f"run: {done}/{total} customers, {state['batches_done']}/"
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
@click.option(
    "--requested-by",
    hidden=True,
    default='"credo run"',
    callback=lambda _ctx, _param, value: _json_string(value),
    help="Who asked, as a JSON string (POST /v1/runs).",
)
@click.option(
    "--announce-fd",
    type=int,
    hidden=True,
    help="Write the claimed run to this pipe (POST /v1/runs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run and its report as JSON.")
@pass_cli
def run_command(
    ctx: CliContext, as_of, force, workers, wait, join, requested_by, announce_fd, as_json
) -> None:
    """Re-evaluate every open account now, with every active rule set (resumes a stopped run)."""
    from api.cli.data import _open_initialised
    from api.nightly.run import RunError, RunLockBusy, StopFlag, join_run, start_run

    announcer = _Announcer(announce_fd)
    _open_initialised(ctx)
    settings = ctx.settings
    day = as_of.date() if as_of else _today(ctx)
    stop = StopFlag()
    stop.install()
    bar = _Bar(sys.stderr.isatty() and not as_json)
    try:
        if join:
            done = join_run(settings, day, stop)
            click.echo(f"joined the run of {day}: {done} customers done so far")
            return
        result, status = start_run(
            settings,
            day,
            force,
            requested_by,
            workers=workers,
            progress=bar,
            stop=stop,
            wait=wait,
            on_claim=announcer.claimed,
        )
    except RunError as exc:
        announcer.refused(str(exc))
        hint = "; try again later or --wait" if isinstance(exc, RunLockBusy) else ""
        click.echo(f"credo run: {exc}{hint}", err=True)
        sys.exit(2)
    finally:
        announcer.close()
        bar.close()
    if status == "finished":
        _print_run(result, as_json, note="already finished; --force to run again")
        return
    if stop.stopped:
        click.echo(
            f"run {result['run_id']} stopped; `credo run --as-of {day}` resumes it", err=True
        )
        sys.exit(1)
    _print_run(result, as_json)


def _json_string(value: str) -> str:
    try:
        text = json.loads(value)
    except ValueError:
        text = None
    if not isinstance(text, str):
        raise click.BadParameter(f"expected a JSON string, got {value[:80]!r}")
    return text


class _Announcer:
    """Tells the process that started this one (POST /v1/runs) which run was claimed, or why
    none was, as one JSON line on the pipe `fd`; nothing without a pipe."""

    def __init__(self, fd: int | None):
        self.stream = open(fd, "w", encoding="utf-8") if fd is not None else None  # noqa: SIM115

    def claimed(self, run, status: str) -> None:
        self._say({"run_id": run.run_id, "start": status, "state": run.state})

    def refused(self, reason: str) -> None:
        self._say({"refused": reason})

    def _say(self, message: dict[str, Any]) -> None:
        if self.stream is not None:
            try:
                self.stream.write(json.dumps(message) + "\n")
            except OSError:  # the reader has gone: nothing to tell
                pass
            self.close()  # one message; the reader gets it with the end of the pipe

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.close()
            except OSError:
                pass
            self.stream = None


def run_json(run) -> dict[str, Any]:
    from storage.worklist import run_to_json

    return run_to_json(run)


def _print_run(run: dict[str, Any], as_json: bool, note: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps({**run, **({"note": note} if note else {})}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    from api.nightly.report import portfolio_lines

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
    for line in portfolio_lines(report["portfolio"]):  # one per currency, never a sum
        console.print(line, markup=False, highlight=False)
    head = report.get("chain_head")  # reports of older runs have none
    if head:
        console.print(
            f"chain head (keep it as an anchor): decision #{head['seq']} {head['hash']} "
            f"at {head['time']}",
            markup=False,
            highlight=False,
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
