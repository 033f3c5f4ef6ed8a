"""`credo audit verify|anchor|prune`: the decision chain's commands (api.audit_chain).

Exit codes (SPEC §7): 0 the chain holds; 1 it does not (or the anchor is not reached, or the
operator log does not hold); 2 bad input (a range, an anchor file, a date, pruning while it is
off).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from api.cli.audit import audit
from api.cli.keys import BadInput
from api.cli.main import CliContext, pass_cli


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


class _Bound(click.ParamType):
    """A range bound: a seq number or a creation date YYYY-MM-DD."""

    name = "SEQ|DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        from api.audit_chain import AuditInputError, parse_bound

        if not isinstance(value, str):
            return value
        try:
            return parse_bound(f"--{param.name if param else 'bound'}", value)
        except AuditInputError as exc:
            self.fail(exc.message, param, ctx)


@audit.command("verify")
@click.option("--from", "first", type=_Bound(), help="First decision: seq number or date.")
@click.option("--to", "last", type=_Bound(), help="Last decision: seq number or date.")
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An anchor file (credo audit anchor --output, or a run's JSON): prove it is reached.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def verify_command(ctx: CliContext, first, last, anchor_file: Path | None, as_json: bool) -> None:
    """Recompute every hash of the decision chain and of the operator log; list each altered,
    deleted, inserted or reordered decision or event (exit 1), or say OK with the counts and
    the heads' hashes."""
    from api.audit_chain import AuditInputError, read_anchor, resolve_range, verify_trail
    from api.cli.data import _open_initialised

    _open_initialised(ctx)
    try:
        anchor = read_anchor(_read(anchor_file)) if anchor_file else None
        start, end = resolve_range(first, last)
        result = verify_trail(start, end, anchor)
    except AuditInputError as exc:
        raise BadInput(str(exc)) from None
    if as_json:
        _emit(result)
    else:
        for line in _describe(result):
            click.echo(line)
    if not result["ok"]:
        sys.exit(1)


def _describe(result: dict[str, Any]) -> list[str]:
    from api.audit_chain import describe_result

    return describe_result(result)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--anchor {path}: cannot read it ({exc})") from None


@audit.command("anchor")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the anchor (JSON) to this file; keep it outside the database's reach.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the anchor as JSON.")
@pass_cli
def anchor_command(ctx: CliContext, output: Path | None, as_json: bool) -> None:
    """Print the chain's head {seq, hash, time}: kept elsewhere, it lets `credo audit verify
    --anchor FILE` catch decisions cut from the end of the chain."""
    from api.audit_chain import current_anchor, log_anchor
    from api.cli.data import _open_initialised

    _open_initialised(ctx)
    anchor = current_anchor()
    log_anchor(anchor, "anchored")
    if output is not None:
        try:
            output.write_text(json.dumps(anchor, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"--output {output}: cannot write it ({exc})") from None
    if as_json:
        _emit(anchor)
    else:
        click.echo(f"chain head: decision #{anchor['seq']} {anchor['hash']} at {anchor['time']}")


@audit.command("prune")
@click.option(
    "--before",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Delete decisions created before this day (UTC).",
)
@click.option("--yes", is_flag=True, help="Delete them; without it, only say what would go.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def prune_command(ctx: CliContext, before, yes: bool, as_json: bool) -> None:
    """Delete decisions older than the retention (audit.retention_days, off by default) after
    verifying them and recording a checkpoint that `credo audit verify` starts from."""
    from api.audit_chain import AuditInputError, RetentionOff, prune_trail
    from api.cli.data import _open_initialised

    _open_initialised(ctx)
    day: date = before.date()
    try:
        result = prune_trail(ctx.settings, day, "credo audit prune", apply=yes)
    except (RetentionOff, AuditInputError) as exc:
        raise BadInput(str(exc)) from None
    if as_json:
        _emit(result)
    elif result["problems"]:
        click.echo(f"the decisions up to #{result['through']} do not verify; nothing deleted:")
        for problem in result["problems"]:
            click.echo(f"decision #{problem['seq']}: {problem['kind']}: {problem['problem']}")
    elif result["through"] is None:
        click.echo(f"no decision was created before {day}: nothing to prune")
    elif not yes:
        click.echo(
            f"would delete {result['would_prune']} decisions (up to #{result['through']}), "
            "after recording a checkpoint; run again with --yes to delete them"
        )
    else:
        c = result["checkpoint"]
        click.echo(
            f"pruned {result['pruned']} decisions created before {day}; checkpoint: decision "
            f"#{c['seq']} {c['hash']}"
        )
    if result["problems"]:
        sys.exit(1)
