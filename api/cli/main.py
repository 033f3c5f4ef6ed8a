"""The `credo` command line: one group; each front-end module adds its commands below.

Exit codes (SPEC §7): 0 ok, 1 a failure was found (tests, verify), 2 usage or bad input.
"""

from __future__ import annotations

import click

from api.settings import Settings, SettingsError, load_settings


class CliContext:
    """Lazily loaded settings shared by every command."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except SettingsError as exc:
                raise click.UsageError(str(exc)) from exc
        return self._settings


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """credo: credit approval, reminder tone and agency hand-off decisions from account facts."""


def _register() -> None:
    # Each module defines click commands/groups and a `register(main)` function.
    from api.cli import audit, data, jobs, keys, rules, run, serve, simulate

    for module in (data, rules, keys, serve, run, simulate, jobs, audit):
        module.register(main)


_register()
