"""`credo rules history|show|diff|add-test`: read stored rule-set versions, and pin a stored
decision as a [[test]] case (api.ruleset_views, api.decision_tests; `--json` prints what the
API answers). Reading needs no key; `add-test --draft` stores a draft and acts as one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from api.cli.keys import BadInput
from api.cli.lifecycle import _actor, _emit, _open, _policy, json_option, key_option, refusals
from api.cli.main import CliContext, pass_cli


@click.command("history")
@click.argument("kind")
@json_option
@pass_cli
def history(ctx: CliContext, kind: str, as_json: bool) -> None:
    """Every version of KIND (the sha256 of its text and, for reminder, of its templates) and
    every lifecycle event, oldest first."""
    from api.ruleset_views import ruleset_overview

    _open(ctx)
    with refusals():
        data = ruleset_overview(kind)
    if as_json:
        _emit(data)
        return
    active = data["active"]
    click.echo(f"{kind}: active version {active['version'] if active else 'none'}")
    pending = data["pending"]
    if pending:
        click.echo(
            f"pending: version {pending['version']} becomes active at {pending['at']} "
            f"(scheduled by {pending['by']}, {pending['owner']})"
        )
    experiment = data["experiment"]
    if experiment and experiment["ended_at"] is None:
        click.echo(
            f"challenger: version {experiment['challenger']} on {experiment['share']}% of "
            f"customers against version {experiment['champion']} (experiment "
            f"{experiment['id']}, since {experiment['started_at'][:19].replace('T', ' ')}Z)"
        )
    click.echo("versions:")
    width = max(len(v["created_by"]) for v in data["history"])
    for v in data["history"]:
        texts = f"  texts {v['templates_sha256'][:12]}" if v["templates_sha256"] else ""
        line = (
            f"  {v['version']:>4}  {v['state']:<9} {v['sha256'][:12]}{texts}  "
            f"{v['created_by']:<{width}}"
        )
        click.echo(f"{line}  {v['note']}".rstrip())
    click.echo("events:")
    for e in data["events"]:
        note = f": {e['note']}" if e["note"] else ""
        when = e["at"][:19].replace("T", " ")
        click.echo(
            f"  {when}Z  version {e['version']:<4} {e['event']:<11} by {e['by']} "
            f"({e['owner']}){note}"
        )


@click.command("show")
@click.argument("kind")
@click.argument("version", type=int, required=False)
@click.option(
    "--templates",
    "templates_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the version's templates into this new (or empty) directory, to edit.",
)
@json_option
@pass_cli
def show(
    ctx: CliContext, kind: str, version: int | None, templates_dir: Path | None, as_json: bool
) -> None:
    """Print the TOML source of VERSION of KIND (default: the active one) exactly as stored,
    so that `credo rules show reminder --templates my-templates > my.toml` starts an edit."""
    from api.ruleset_views import version_detail

    _open(ctx)
    with refusals():
        data = version_detail(kind, version, template_text=templates_dir is not None)
    if templates_dir is not None:
        _write_templates(templates_dir, data)
    if as_json:
        _emit(data)
    else:
        click.echo(data["source"], nl=False)


def _write_templates(folder: Path, data: dict[str, Any]) -> None:
    """Write a version's templates into `folder`, which must be new or empty."""
    if data["templates"] is None:
        raise BadInput(f"--templates: {data['kind']} versions have no templates")
    if folder.exists() and any(folder.iterdir()):
        raise BadInput(f"--templates: {folder} is not empty; name a new directory")
    for entry in data["templates"]:
        path = folder / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry["text"].encode("utf-8"))
    click.echo(
        f"{data['kind']} version {data['version']}: {len(data['templates'])} template files "
        f"written to {folder}",
        err=True,
    )


@click.command("diff")
@click.argument("kind")
@click.argument("old", metavar="A", type=int)
@click.argument("new", metavar="B", type=int)
@json_option
@pass_cli
def diff(ctx: CliContext, kind: str, old: int, new: int, as_json: bool) -> None:
    """What changed from version A to version B of KIND, rule by rule and field by field."""
    from api.ruleset_views import diff_versions

    _open(ctx)
    with refusals():
        data = diff_versions(kind, old, new)
    if as_json:
        _emit(data)
        return
    for line in _diff_lines(data):
        click.echo(line)


def _diff_lines(data: dict[str, Any]) -> list[str]:
    first, last = data["from"], data["to"]
    lines = [
        f"{data['kind']}: version {first['version']} ({first['state']}) → version "
        f"{last['version']} ({last['state']})"
    ]
    for change in data["settings"]:
        lines.append(f"  {change['field']}: {_show(change['from'])} → {_show(change['to'])}")
    outcome = data["outcome"]
    for spec in outcome["added"]:
        lines.append(f"+ outcome {spec['field']}: {_spec(spec)}")
    for spec in outcome["removed"]:
        lines.append(f"- outcome {spec['field']}: {_spec(spec)}")
    for field in outcome["changed"]:
        for c in field["changes"]:
            change = f"{c['attribute']}: {_show(c['from'])} → {_show(c['to'])}"
            lines.append(f"~ outcome {field['field']}: {change}")
    rules = data["rules"]
    for rule in rules["added"]:
        lines.append(f"+ rule {rule['id']} (priority {rule['priority']}) {rule['name']}")
        lines.append(f"      when {_show(rule['when'])} then {_show(rule['then'] or rule['set'])}")
    for rule in rules["removed"]:
        lines.append(f"- rule {rule['id']} (priority {rule['priority']}) {rule['name']}")
    for rule in rules["changed"]:
        lines.append(f"~ rule {rule['id']}")
        for c in rule["changes"]:
            lines.append(f"      {c['field']}: {_show(c['from'])} → {_show(c['to'])}")
    if data["firing_order"]:
        lines.append("~ firing order: " + " ".join(data["firing_order"]["to"]))
    for name in data["tests"]["added"]:
        lines.append(f"+ test {_show(name)}")
    for name in data["tests"]["removed"]:
        lines.append(f"- test {_show(name)}")
    templates = data["templates"] or {"added": [], "removed": [], "changed": []}
    lines += [f"+ template {path}" for path in templates["added"]]
    lines += [f"- template {path}" for path in templates["removed"]]
    for change in templates["changed"]:
        lines.append(f"~ template {change['path']}")
        lines += [f"      {line}" for line in change["diff"].splitlines()[2:]]
    if data["same_rules"] and any(templates.values()):
        lines.append("  no rule, outcome or setting changed: the templates did")
    elif data["same_rules"]:
        lines.append("  no rule, outcome or setting changed (comments, layout or tests only)")
    if data["templates"] is not None and not any(templates.values()):
        lines.append("  the templates are the same")
    return lines


def _show(value: Any) -> str:
    import json

    return (
        json.dumps(value, ensure_ascii=False) if not isinstance(value, int | float) else str(value)
    )


def _spec(spec: dict[str, Any]) -> str:
    parts = [f"values {_show(spec['values'])}" if spec["values"] else spec["type"]]
    if spec["default"] is not None:
        parts.append(f"default {_show(spec['default'])}")
    return ", ".join(parts)


@click.command("add-test")
@click.argument("decision_id")
@click.option("--name", help="Name of the case (default: from the decision).")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Append the case to this rule file (the rest of it stays byte for byte).",
)
@click.option("--draft", is_flag=True, help="Store a new draft: the active version + the case.")
@click.option("--note", help="With --draft: why (default names the decision).")
@key_option
@json_option
@pass_cli
def add_test(ctx: CliContext, decision_id, name, file, draft, note, key, as_json) -> None:
    """Turn stored decision DECISION_ID (its facts and outcome) into a [[test]] case, appended
    to a rule --file or to a new --draft of the active version; the case must pass there."""
    from api.decision_tests import add_test_to_draft, add_test_to_file

    if (file is None) == (not draft):
        raise click.UsageError("give either --file FILE or --draft")
    if draft:
        actor = _actor(ctx, key)
        with refusals():
            data = add_test_to_draft(None, None, decision_id, actor, _policy(ctx), name, note)
        summary = (
            f"{data['kind']} version {data['version']}: draft (by {actor.name}, owner "
            f"{actor.owner}): version {data['base_version']} + [[test]] "
            f"{data['test_case']['name']!r}\nnext: `credo rules propose {data['kind']} "
            f"{data['version']}`"
        )
    else:
        if note:
            raise BadInput("--note goes with --draft (a file has no history)")
        _open(ctx)
        with refusals():
            data = add_test_to_file(file, decision_id, name, _policy(ctx))
        summary = f"{file}: appended [[test]] {data['name']!r}; it passes there"
    if as_json:
        _emit(data)
    else:
        click.echo(summary)
