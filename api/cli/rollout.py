"""`credo rules cancel|challenge|stop-challenge|experiment`: pending activations and
champion/challenger from the command line, through the same use cases as the HTTP API
(api.rollout, api.experiment); `--json` prints what the API answers. `credo rules activate
--at` is in api/cli/lifecycle.py."""

from __future__ import annotations

from typing import Any

import click

from api.cli.lifecycle import (
    _actor,
    _emit,
    _moved,
    _open,
    _policy,
    json_option,
    key_option,
    note_option,
    refusals,
)
from api.cli.main import CliContext, pass_cli


@click.command("cancel")
@click.argument("kind")
@click.argument("version", type=int)
@note_option("Why it is cancelled (recorded with the event).", required=True)
@key_option
@json_option
@pass_cli
def cancel(ctx: CliContext, kind: str, version: int, note: str, key, as_json: bool) -> None:
    """Cancel the pending activation of VERSION of KIND (`activate --at`); it stays
    approved."""
    from api.rollout import cancel_activation

    actor = _actor(ctx, key)
    with refusals():
        data = cancel_activation(kind, version, actor, note)
    _moved(data, actor, as_json, "no activation pending: the active version stays")


@click.command("challenge")
@click.argument("kind")
@click.argument("version", type=int)
@click.option(
    "--share",
    type=int,
    required=True,
    help="Percent of the stored customers it decides for, 1 to 50.",
)
@note_option("Why this experiment (recorded with the event).", required=True)
@key_option
@json_option
@pass_cli
def challenge(
    ctx: CliContext, kind: str, version: int, share: int, note: str, key, as_json: bool
) -> None:
    """Try approved VERSION of KIND on a share of the customers beside the active version (an
    experiment: four eyes as for an approval). The same customers stay on it until it is
    stopped (`credo rules stop-challenge`) or promoted (`credo rules activate`)."""
    from api.rollout import start_challenger

    actor = _actor(ctx, key)
    with refusals():
        data = start_challenger(kind, version, share, actor, _policy(ctx), note)
    experiment = data["experiment"]
    hint = (
        f"experiment {experiment['id']}: version {version} decides for {share}% of the "
        f"customers, version {experiment['champion']} for the rest; compare them with "
        f"`credo rules experiment {kind}`"
    )
    _moved(data, actor, as_json, hint)


@click.command("stop-challenge")
@click.argument("kind")
@note_option("Why it stops (recorded with the event).", required=True)
@key_option
@json_option
@pass_cli
def stop_challenge(ctx: CliContext, kind: str, note: str, key, as_json: bool) -> None:
    """End the experiment of KIND: every customer is decided by the active version again, and
    the challenger goes back to approved."""
    from api.rollout import stop_challenger

    actor = _actor(ctx, key)
    with refusals():
        data = stop_challenger(kind, actor, note)
    if as_json:
        _emit(data)
        return
    click.echo(
        f"{kind}: experiment {data['id']} stopped (by {actor.name}, owner {actor.owner}); "
        f"version {data['challenger']} is approved again"
    )


@click.command("experiment")
@click.argument("kind")
@click.option("--id", "experiment_id", type=int, help="The experiment (default: the last).")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Payments known until this date (default: today).",
)
@json_option
@pass_cli
def experiment(ctx: CliContext, kind: str, experiment_id, as_of, as_json: bool) -> None:
    """Compare the arms of KIND's experiment over the same period: customers, outcomes by
    value, and the share of the overdue balance paid within 14 and 30 days of the decision."""
    from api.experiment import compare_arms

    _open(ctx)
    with refusals():
        data = compare_arms(kind, experiment_id, as_of.date() if as_of else None)
    if as_json:
        _emit(data)
        return
    _print_report(data)


def _print_report(data: dict[str, Any]) -> None:
    exp = data["experiment"]
    state = f"ended ({exp['ended_how']})" if exp["ended_at"] else "running"
    click.echo(
        f"{data['kind']}: experiment {exp['id']}, {state}: version {exp['challenger']} on "
        f"{exp['share']}% of customers against version {exp['champion']}"
    )
    click.echo(f"period {data['period']['from']} to {data['period']['to']}")
    for name, arm in data["arms"].items():
        click.echo(
            f"{name} (version {arm['version']}): {arm['customers']} customers, "
            f"{arm['decisions']} decisions"
        )
        for field, counts in arm["outcomes"].items():
            values = ", ".join(f"{value} {n}" for value, n in counts.items())
            click.echo(f"  {field}: {values}")
        for paid in arm["paid_within"].values():
            shares = "; ".join(
                f"{m['share']:.1%} in {currency} ({m['paid']} of {m['overdue']} overdue)"
                for currency, m in paid["by_currency"].items()
            )
            click.echo(
                f"  paid within {paid['days']} days: {shares or 'n/a'} ({paid['customers']} "
                f"customers, {paid['customers_cleared']} cleared, {paid['not_yet']} not yet due)"
            )
    click.echo(data["comparison"]["note"])
