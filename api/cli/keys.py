"""`credo keys create|list|revoke`: API keys for the HTTP API (SPEC §6, §7).

A key is shown once, by `create`, alone on the last line of standard output; only its SHA-256
is stored. Names are unique (a revoked key keeps its name); the owner is the person or system
behind the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import peewee as pw

from api.cli.main import CliContext, pass_cli

ROLES = ("decide", "analyst", "approver", "auditor", "admin")


class BadInput(click.ClickException):
    """Bad input or setup: exit code 2 (SPEC §7)."""

    exit_code = 2


@contextmanager
def _database(ctx: CliContext) -> Iterator[None]:
    from storage.db import connect, redact
    from storage.errors import StorageError

    url = ctx.settings.database_url
    try:
        db = connect(url)
    except StorageError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        with db.connection_context():
            yield
    except (pw.OperationalError, pw.ProgrammingError) as exc:
        raise BadInput(f"database {redact(url)}: {exc} (has `credo init` been run?)") from exc
    finally:
        db.close()


@click.group("keys")
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option(
    "--name",
    required=True,
    help="Unique name of the key, e.g. erp-orders; recorded on decisions as requested_by.",
)
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do.")
@click.option(
    "--owner",
    help="The person or system behind the key (default: the name); four eyes compares owners.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the key's description as JSON.")
@pass_cli
def create(ctx: CliContext, name: str, role: str, owner: str | None, as_json: bool) -> None:
    """Make a key and print it (once; it cannot be shown again) on the last line."""
    from storage import keys as stored_keys
    from storage.errors import Conflict

    with _database(ctx):
        try:
            key, info = stored_keys.create_key(name, role, owner)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        except Conflict as exc:
            raise BadInput(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({**info.to_json(), "key": key}, indent=2))
        return
    click.echo(
        f"Created key {info.id} '{info.name}' (owner {info.owner}) with role {info.role}.",
        err=True,
    )
    click.echo("Store it now: it is shown only this once.", err=True)
    click.echo(key)


@keys.command("list")
@click.option("--active", is_flag=True, help="Leave revoked keys out.")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@pass_cli
def list_(ctx: CliContext, active: bool, as_json: bool) -> None:
    """List keys (never the keys themselves: id, name, owner, role, prefix and dates)."""
    from storage import keys as stored_keys

    with _database(ctx):
        found = stored_keys.list_keys(include_revoked=not active)
    if as_json:
        click.echo(json.dumps([k.to_json() for k in found], indent=2))
        return
    if not found:
        click.echo("No API keys. Make one with `credo keys create --name NAME --role ROLE`.")
        return
    click.echo(
        f"{'id':>4}  {'name':<20} {'owner':<16} {'role':<9} {'prefix':<13} {'created':<20} state"
    )
    for k in found:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        click.echo(
            f"{k.id:>4}  {k.name:<20} {k.owner:<16} {k.role:<9} {k.prefix:<13} "
            f"{k.created_at:%Y-%m-%d %H:%M:%S}  {state}"
        )


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the revoked key as JSON.")
@pass_cli
def revoke(ctx: CliContext, key_id: int, as_json: bool) -> None:
    """Revoke the key with id KEY_ID (see `credo keys list`); it stops working at once."""
    from storage import keys as stored_keys
    from storage.errors import NotFound

    with _database(ctx):
        try:
            info = stored_keys.revoke_key(key_id)
        except NotFound as exc:
            raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(info.to_json(), indent=2))
    else:
        click.echo(f"Revoked key {info.id} '{info.name}' ({info.role}).")


def register(main: click.Group) -> None:
    """Add `credo keys` to the command line."""
    main.add_command(keys)
