"""`credo jobs work JOB_ID` (hidden): run a stored job; the process api.jobs.start_job launches."""

from __future__ import annotations

import logging
import sys

import click

from api.cli.keys import BadInput
from api.cli.main import CliContext, pass_cli


@click.group("jobs", hidden=True)
def jobs() -> None:
    """Jobs started over HTTP (simulations, backtests); see GET /v1/jobs/{id}."""


@jobs.command("work")
@click.argument("job_id")
@pass_cli
def work(ctx: CliContext, job_id: str) -> None:
    """Run the queued job JOB_ID here; exit 1 when it fails (the job records why)."""
    from api.cli.data import _open_initialised
    from api.jobs import JobError, run_job

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _open_initialised(ctx)
    try:
        job = run_job(ctx.settings, job_id)
    except JobError as exc:
        raise BadInput(str(exc)) from None
    click.echo(f"job {job_id} ({job['type']}): {job['state']}")
    if job["state"] != "finished":
        click.echo(job["error"] or "failed", err=True)
        sys.exit(1)


def register(main: click.Group) -> None:
    main.add_command(jobs)
