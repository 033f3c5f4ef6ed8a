"""`credo serve`: the API on werkzeug's development server (gunicorn for production)."""

from __future__ import annotations

import click

from api.cli.main import CliContext, pass_cli


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on [default: api.host, 127.0.0.1].")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port [default: api.port, 8000]."
)
@pass_cli
def serve(cli: CliContext, host: str | None, port: int | None) -> None:
    """Run the HTTP API (development server; see the README for gunicorn in production)."""
    from werkzeug.serving import run_simple

    from api.app import create_app

    settings = cli.settings
    app = create_app(settings)
    host = host or settings.api.host
    port = settings.api.port if port is None else port
    click.echo(f"credo API on http://{host}:{port}/ (docs at /docs); Ctrl-C stops it", err=True)
    # Threads are safe: every evaluation holds the process engine's lock.
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


def register(main: click.Group) -> None:
    """Add `credo serve` to the command line."""
    main.add_command(serve)
