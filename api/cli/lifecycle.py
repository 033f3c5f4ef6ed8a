"""`credo rules publish|propose|approve|reject|activate|history|show|diff|add-test`: the rule-set
lifecycle from the command line, through the same use cases as the HTTP API (api.lifecycle,
api.ruleset_views, api.decision_tests); `--json` prints what the API answers.

Commands that change rule sets act as an API key (`--key` or CREDO_KEY), verified as the API
verifies it: its role must allow the move, and four eyes compares its owner. Reading needs no
key. Exit codes: 0 done; 1 the [[test]] cases failed (nothing stored); 2 refused or bad input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from api import lifecycle
from api.cli.keys import BadInput
from api.cli.main import CliContext, pass_cli
from engine.checks import describe

KEY_HELP = "API key to act as (default: $CREDO_KEY); its role must allow the move."
NO_KEY = (
    "this command acts as an API key: pass --key KEY or set CREDO_KEY=KEY (make one with "
    "`credo keys create --name NAME --role analyst|approver --owner YOU`)"
)

key_option = click.option("--key", envvar="CREDO_KEY", metavar="KEY", help=KEY_HELP)
json_option = click.option("--json", "as_json", is_flag=True, help="Print what the API answers.")


def note_option(help_text: str, required: bool = False):
    return click.option("--note", required=required, help=help_text)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _open(ctx: CliContext) -> None:
    from api.cli.data import _open_initialised

    _open_initialised(ctx)


def _actor(ctx: CliContext, key: str | None) -> Any:
    """The verified key the command acts as (storage.keys.KeyInfo: name, owner, role)."""
    from storage.keys import verify_key

    _open(ctx)
    if not key or not key.strip():
        raise BadInput(NO_KEY)
    info = verify_key(key.strip())
    if info is None:
        raise BadInput("invalid or revoked API key (given by --key or CREDO_KEY)")
    return info


def _policy(ctx: CliContext) -> lifecycle.Policy:
    return lifecycle.Policy.from_settings(ctx.settings)


@contextmanager
def refusals() -> Iterator[None]:
    """The use cases' refusals as the CLI reports them: failing [[test]] cases exit 1 after
    listing them; every other refusal exits 2 with its message."""
    try:
        yield
    except lifecycle.Refused as exc:
        if not exc.cases:
            raise BadInput(str(exc)) from None
        for case in exc.cases:
            _explain(case)
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except lifecycle.LifecycleError as exc:
        raise BadInput(str(exc)) from None


def _explain(case: dict[str, Any]) -> None:
    click.echo(f"FAIL  {case['name']}", err=True)
    if case.get("error"):
        click.echo(f"      error: {case['error']}", err=True)
    for field, expected in case["expected"].items():
        actual = case["actual"].get(field)
        mark = "  " if actual == expected else "≠ "
        click.echo(
            f"    {mark}{field}: expected {describe(expected)}, got {describe(actual)}", err=True
        )


def _moved(data: dict[str, Any], actor: Any, as_json: bool, hint: str = "") -> None:
    if as_json:
        _emit(data)
        return
    click.echo(
        f"{data['kind']} version {data['version']}: {data['state']} "
        f"(by {actor.name}, owner {actor.owner})"
    )
    if hint:
        click.echo(hint)


@click.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@note_option("Why this version exists (stored with it).", required=True)
@click.option(
    "--templates",
    "templates_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Reminder only: the directory of texts and company.toml stored with the version "
    "(default: templates/ next to FILE, else rules/templates).",
)
@key_option
@json_option
@pass_cli
def publish(
    ctx: CliContext, file: Path, note: str, templates_dir: Path | None, key, as_json: bool
) -> None:
    """Validate FILE (and, for reminder, its templates), run its [[test]] cases and the smoke
    test, store it as a draft and propose it. Nothing is stored when a check fails (exit 2
    invalid, 1 tests failing)."""
    try:
        source = file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{file}: cannot read it: {exc}") from None
    folder, templates = _templates_of(ctx, file, source, templates_dir)
    actor = _actor(ctx, key)
    with refusals():
        data = lifecycle.publish(source, str(file), note, actor, _policy(ctx), templates)
    if not as_json:
        click.echo(f"{file}: {data['tests']['passed']} [[test]] cases pass, smoke test passes")
        if templates is not None:
            click.echo(
                f"{folder}: {len(templates)} template files, every text renders with the "
                f"sample accounts (templates_sha256 {data['templates_sha256'][:12]})"
            )
    hint = f"next: an approver runs `credo rules approve {data['kind']} {data['version']}`"
    _moved(data, actor, as_json, hint)


def _templates_of(
    ctx: CliContext, file: Path, source: str, folder: Path | None
) -> tuple[Path | None, dict[str, str] | None]:
    """The templates directory and files to publish with the rule set of `source`: for a kind
    with templates, --templates DIR, else templates/ next to FILE, else rules/templates."""
    import tomllib

    from api.nightly.templates import TemplateFilesError, has_templates, read_templates

    try:
        kind = tomllib.loads(source).get("kind")
    except tomllib.TOMLDecodeError:
        kind = None  # publish names the syntax error
    if not isinstance(kind, str) or not has_templates(kind):
        if folder is not None:
            raise BadInput(f"--templates: {file} is a {kind} rule set, which has no templates")
        return None, None
    if folder is None:
        beside = file.parent / "templates"
        folder = beside if beside.is_dir() else ctx.settings.rules_dir / "templates"
    try:
        return folder, read_templates(folder)
    except TemplateFilesError as exc:
        raise BadInput(f"--templates: {exc}") from None


@click.command("propose")
@click.argument("kind")
@click.argument("version", type=int)
@note_option("Why (recorded with the event).")
@key_option
@json_option
@pass_cli
def propose(ctx: CliContext, kind: str, version: int, note, key, as_json: bool) -> None:
    """Propose draft VERSION of KIND (a draft made by `credo init` or `add-test --draft`), once
    its [[test]] cases and the smoke test pass."""
    actor = _actor(ctx, key)
    with refusals():
        data = lifecycle.propose_version(kind, version, actor, _policy(ctx), note)
    _moved(data, actor, as_json, f"next: an approver runs `credo rules approve {kind} {version}`")


@click.command("approve")
@click.argument("kind")
@click.argument("version", type=int)
@note_option("Why (recorded with the event).")
@key_option
@json_option
@pass_cli
def approve(ctx: CliContext, kind: str, version: int, note, key, as_json: bool) -> None:
    """Approve proposed VERSION of KIND: four eyes, the key's owner must not have drafted or
    proposed it."""
    actor = _actor(ctx, key)
    with refusals():
        data = lifecycle.approve_version(kind, version, actor, _policy(ctx), note)
    _moved(data, actor, as_json, f"next: `credo rules activate {kind} {version}`")


@click.command("reject")
@click.argument("kind")
@click.argument("version", type=int)
@note_option("Why (recorded with the event).")
@key_option
@json_option
@pass_cli
def reject(ctx: CliContext, kind: str, version: int, note, key, as_json: bool) -> None:
    """Reject proposed VERSION of KIND (it stays on record; draft a new version instead)."""
    actor = _actor(ctx, key)
    with refusals():
        data = lifecycle.reject_version(kind, version, actor, note)
    _moved(data, actor, as_json)


@click.command("activate")
@click.argument("kind")
@click.argument("version", type=int)
@note_option("Why; required for a rollback (a retired version, or one older than the active).")
@click.option(
    "--at",
    metavar="TIME",
    help="Activate then, with nobody present (ISO 8601 with a time zone, e.g. "
    "2027-01-01T00:00:00Z): a pending activation, cancelled with `credo rules cancel`.",
)
@key_option
@json_option
@pass_cli
def activate(ctx: CliContext, kind: str, version: int, note, at, key, as_json: bool) -> None:
    """Activate approved VERSION of KIND, retiring the active version (or at a time, with
    --at); roll back to a retired or older version (with --note); or promote the challenger,
    which ends its experiment."""
    actor = _actor(ctx, key)
    with refusals():
        data = lifecycle.activate_version(kind, version, actor, note, at)
    seconds = ctx.settings.api.ruleset_refresh_seconds
    if at is not None:
        hint = (
            f"pending: it becomes active at {data['activate_at']}; API workers switch then "
            f"(within {seconds:g} s), and runs started from then use it"
        )
    else:
        hint = f"API workers decide with it within {seconds:g} s; runs started from now use it"
    _moved(data, actor, as_json, hint)


def register_into(group: click.Group) -> None:
    """Add the lifecycle commands to the `credo rules` group."""
    from api.cli.rollout import cancel, challenge, experiment, stop_challenge
    from api.cli.rule_views import add_test, diff, history, show

    for command in (publish, propose, approve, reject, activate, history, show, diff, add_test):
        group.add_command(command)
    for command in (cancel, challenge, stop_challenge, experiment):
        group.add_command(command)
