"""`credo audit export` and `credo audit log`: the decisions export and the operator log
(api.audit_records, which the HTTP API's /v1/audit/export and /v1/audit/events call too)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from api.cli.audit import audit
from api.cli.data import _open_initialised
from api.cli.keys import BadInput
from api.cli.main import CliContext, pass_cli


def _moments(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    from api.audit_records import BadArgument, parse_moment

    try:
        return (
            parse_moment("--from", start) if start is not None else None,
            parse_moment("--to", end, end=True) if end is not None else None,
        )
    except BadArgument as exc:
        raise click.UsageError(str(exc)) from None


_FROM = click.option("--from", "start", help="From this date or date-time (UTC), inclusive.")
_TO = click.option("--to", "end", help="Up to this date (the whole day) or date-time, exclusive.")


@audit.command("export")
@_FROM
@_TO
@click.option(
    "--format",
    "format_",
    type=click.Choice(["csv", "jsonl"]),
    default="jsonl",
    show_default=True,
    help="jsonl: each decision's record exactly as hashed, with seq, prev_hash and hash; "
    "csv: one row per decision, cells neutralised for spreadsheets.",
)
@click.option("--kind", help="Only decisions of this rule-set kind (credit, reminder, handoff).")
@click.option("--customer", help="Only decisions about this customer id.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (default: standard output).",
)
@pass_cli
def export_command(
    ctx: CliContext,
    start: str | None,
    end: str | None,
    format_: str,
    kind: str | None,
    customer: str | None,
    output: Path | None,
) -> None:
    """Export the decisions made in a period (by when they were made), oldest first, streamed:
    any number of them in constant memory."""
    from api.audit_records import BadArgument, export_decisions

    created_from, created_to = _moments(start, end)
    db = _open_initialised(ctx)
    try:
        found = export_decisions(
            format_,
            created_from=created_from,
            created_to=created_to,
            kind=kind,
            customer_id=customer,
        )
        _write(found.chunks, output)
    except BadArgument as exc:
        raise click.UsageError(f"--{exc}") from None
    finally:
        db.close()


def _write(chunks: Iterator[str], output: Path | None) -> None:
    if output is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as handle:
            for chunk in chunks:
                handle.write(chunk)
    except OSError as exc:
        raise BadInput(f"--output {output}: {exc.strerror or exc}") from None


@audit.command("log")
@_FROM
@_TO
@click.option("--kind", help="Only events of this kind (key.created), or under it (ruleset).")
@click.option("--json", "as_json", is_flag=True, help="Print the events (or --verify) as JSON.")
@click.option(
    "--verify",
    is_flag=True,
    help="Check the log's hash chain instead: OK with the head, or each altered, removed or "
    "reordered event (exit code 1).",
)
@pass_cli
def log_command(
    ctx: CliContext,
    start: str | None,
    end: str | None,
    kind: str | None,
    as_json: bool,
    verify: bool,
) -> None:
    """The operator log: keys created and revoked, rule-set lifecycle moves, runs, imports and
    demo resets, oldest first, each with who did it, when and the details."""
    from api.audit_records import (
        BadArgument,
        check_audit_log,
        describe_check,
        event_filter,
        iter_log,
    )

    at_from, at_to = _moments(start, end)
    try:
        filters = event_filter(kind, at_from, at_to)
    except BadArgument as exc:
        raise click.UsageError(f"--{exc}") from None
    db = _open_initialised(ctx)
    try:
        if verify:
            result = check_audit_log()
            if as_json:
                click.echo(json.dumps(result, indent=2))
            else:
                click.echo("\n".join(describe_check(result)))
            if not result["ok"]:
                sys.exit(1)
            return
        events = iter_log(filters)
        if as_json:
            _echo_json_list(events)
        else:
            _echo_table(events)
    finally:
        db.close()


def _echo_json_list(events: Iterator[dict[str, Any]]) -> None:
    """A JSON list written an event at a time (a large log is never held whole)."""
    first = True
    for event in events:
        sys.stdout.write(("[\n  " if first else ",\n  ") + json.dumps(event, ensure_ascii=False))
        first = False
    sys.stdout.write("[]\n" if first else "\n]\n")
    sys.stdout.flush()


def _echo_table(events: Iterator[dict[str, Any]]) -> None:
    from engine.text import printable

    shown = 0
    for event in events:
        details = json.dumps(event["details"], ensure_ascii=False, sort_keys=True)
        at = event["at"][:19].replace("T", " ")
        line = f"{event['seq']:>5}  {at}  {event['actor']:<18} {event['kind']:<20} {details}"
        click.echo(printable(line))
        shown += 1
    if not shown:
        click.echo("No operator events match.")
