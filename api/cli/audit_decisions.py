"""`credo audit replay|evidence|why-not`: one stored decision, or many, examined from the
command line through the use cases the API answers with (api.audit_replay,
api.decision_audit); `--json` prints what the API answers. Reading needs no key.

Exit codes: 0 done (every replayed decision the same); 1 a replayed decision differs; 2 bad
input (an unknown decision, a selection that does not hold together).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from api.cli.audit import audit
from api.cli.keys import BadInput
from api.cli.lifecycle import _emit, _open, json_option
from api.cli.main import CliContext, pass_cli

DATE = click.DateTime(["%Y-%m-%d"])


@contextmanager
def _refusals() -> Iterator[None]:
    from api.audit_replay import BadSelection, UnknownDecision
    from api.decision_audit import NotExplainable
    from api.lifecycle_rules import UnknownVersion

    try:
        yield
    except (BadSelection, UnknownDecision, NotExplainable, UnknownVersion) as exc:
        raise BadInput(str(exc)) from None


@audit.command("replay")
@click.option("--decision", "decision_id", metavar="ID", help="Replay this decision only.")
@click.option(
    "--sample",
    type=click.IntRange(1, 10**9),
    metavar="N",
    help="Replay N decisions chosen at random.",
)
@click.option("--from", "first", type=DATE, help="Decisions created on or after this day (UTC).")
@click.option("--to", "last", type=DATE, help="Decisions created on or before this day (UTC).")
@json_option
@pass_cli
def replay_command(
    ctx: CliContext,
    decision_id: str | None,
    sample: int | None,
    first: datetime | None,
    last: datetime | None,
    as_json: bool,
) -> None:
    """Evaluate stored decisions again with the stored text of the version that made each
    (never today's file) and compare outcome, reasons and fired rules byte for byte. Without
    an option, every stored decision. Exit 1 when any differs, listing both sides."""
    from api.audit_replay import Selection, replay

    selection = Selection(
        decision_id, sample, first.date() if first else None, last.date() if last else None
    )
    _open(ctx)
    with _refusals():
        report = replay(selection)
    if as_json:
        _emit(report)
    else:
        for line in _replay_lines(report):
            click.echo(line)
    if report["different"]:
        sys.exit(1)


def _replay_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for result in report["differences"]:
        ref = result["ruleset"]
        lines.append(
            f"DIFFERS decision {result['decision_id']} (#{result['seq']}, {ref['kind']} "
            f"version {ref['version']}):"
        )
        for difference in result["differences"]:
            lines.append(f"  {difference['problem']}")
            lines.append(f"    stored:   {_compact(difference['stored'])}")
            lines.append(f"    replayed: {_compact(difference['replayed'])}")
    unlisted = report["different"] - len(report["differences"])
    if unlisted:
        lines.append(f"… and {unlisted} more decisions that differ (--json lists the first ones)")
    verdict = "OK" if not report["different"] else "DIFFERENT"
    lines.append(
        f"{verdict}: {report['replayed']} decisions replayed, {report['same']} the same, "
        f"{report['different']} different"
    )
    return lines


def _compact(value: Any) -> str:
    from engine.trace import canonical_json

    text = canonical_json(value)
    return text if len(text) <= 2000 else text[:2000] + "…"


@audit.command("evidence")
@click.argument("decision_id", metavar="ID")
@json_option
@pass_cli
def evidence_command(ctx: CliContext, decision_id: str, as_json: bool) -> None:
    """The rule text that made decision ID, exactly as stored, with its sha256 checked against
    the one the decision recorded, and that version's approval history (who drafted,
    proposed, approved and activated it, when, with which note)."""
    from api.decision_audit import version_evidence

    _open(ctx)
    with _refusals():
        data = version_evidence(decision_id)
    if as_json:
        _emit(data)
        return
    ref = data["decided_with"]
    click.echo(f"decision {data['decision_id']}: {ref['kind']} version {ref['version']}")
    click.echo(f"  sha256 recorded:  {ref['sha256']}")
    match = "matches" if data["matches"] else "DOES NOT MATCH"
    click.echo(f"  sha256 of text:   {data['source_sha256']} ({match})")
    click.echo(f"  state now:        {data['state']}")
    click.echo("history:")
    for e in data["events"]:
        note = f": {e['note']}" if e["note"] else ""
        when = e["at"][:19].replace("T", " ")
        click.echo(f"  {when}Z  {e['event']:<11} by {e['by']} ({e['owner']}){note}")
    click.echo(f"rule text ({ref['kind']} version {ref['version']}, exactly as stored):")
    click.echo(data["source"], nl=False)
    if not data["matches"]:
        sys.exit(1)


@audit.command("why-not")
@click.argument("decision_id", metavar="ID")
@json_option
@pass_cli
def why_not_command(ctx: CliContext, decision_id: str, as_json: bool) -> None:
    """For decision ID (a rule set under `first`): the rules ranked above the one that
    decided, each with the first condition that failed and the fact values it read."""
    from api.decision_audit import why_not_of

    _open(ctx)
    with _refusals():
        data = why_not_of(decision_id)
    if as_json:
        _emit(data)
        return
    ref = data["ruleset"]
    decided = data["decided_by"] or "no rule (the outcome fields' defaults)"
    click.echo(
        f"decision {data['decision_id']} ({ref['kind']} version {ref['version']}) was "
        f"decided by {decided}"
    )
    if data["explanation"]:
        click.echo(f"  {data['explanation']}")
    if not data["rules"]:
        click.echo("no rule is ranked above it")
    for row in data["rules"]:
        click.echo(f"  {row['message']}")
