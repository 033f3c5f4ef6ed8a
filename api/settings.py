"""Settings: config.toml loaded into a frozen object; CREDO_* environment variables override.

Unknown keys are refused (a typo in config.toml must not silently fall back to a default).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """config.toml or a CREDO_* variable is invalid."""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""


@dataclass(frozen=True)
class PathSettings:
    data_dir: str = "data"
    rules_dir: str = "rules"


@dataclass(frozen=True)
class FactSettings:
    timezone: str = "UTC"


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    ruleset_refresh_seconds: float = 2.0
    max_page_size: int = 500


@dataclass(frozen=True)
class EngineSettings:
    smoke_timeout_seconds: float = 20.0


@dataclass(frozen=True)
class RulesSettings:
    four_eyes: bool = True


@dataclass(frozen=True)
class SchedulerSettings:
    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    misfire_grace_seconds: int = 21600


@dataclass(frozen=True)
class RunSettings:
    batch_size: int = 500
    workers: int = 0
    lease_seconds: int = 300


@dataclass(frozen=True)
class ConsoleSettings:
    # Signs the console's session cookies. Empty: a random key kept in the data directory
    # (console_secret_key), made on first use; set it when several machines serve the console.
    secret_key: str = ""
    session_hours: float = 8.0


@dataclass(frozen=True)
class AuditSettings:
    # Days decisions are kept before `credo audit prune` may delete them; 0: pruning is off.
    retention_days: int = 0
    # GET /v1/audit/verify over more decisions than this runs as a job (202, GET /v1/jobs/{id}).
    verify_job_rows: int = 100_000


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    facts: FactSettings = field(default_factory=FactSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    run: RunSettings = field(default_factory=RunSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    base_dir: Path = PROJECT_ROOT

    @property
    def data_dir(self) -> Path:
        return self._resolve(self.paths.data_dir)

    @property
    def rules_dir(self) -> Path:
        return self._resolve(self.paths.rules_dir)

    @property
    def database_url(self) -> str:
        """The configured URL, or a SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data_dir / 'credo.db'}"

    def _resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database=replace(self.database, url=url))


_SECTIONS = {f.name: f for f in fields(Settings) if f.name != "base_dir"}


def _boolean(text: str) -> bool:
    """An environment variable's "true" or "false" (any case)."""
    value = {"true": True, "false": False}.get(text.strip().lower())
    if value is None:
        raise ValueError(text)
    return value


def _coerce(section: str, key: str, current: Any, raw: Any) -> Any:
    expected = type(current)
    if isinstance(raw, str) and expected is not str:
        try:
            raw = {int: int, float: float, bool: _boolean}[expected](raw)
        except (KeyError, ValueError) as exc:
            raise SettingsError(
                f"{section}.{key}: expected {expected.__name__}, got {raw!r}"
            ) from exc
    if expected is float and isinstance(raw, int) and not isinstance(raw, bool):
        raw = float(raw)
    if not isinstance(raw, expected) or isinstance(raw, bool) != isinstance(current, bool):
        raise SettingsError(f"{section}.{key}: expected {expected.__name__}, got {raw!r}")
    return raw


def _apply(settings: Settings, data: dict[str, Any], origin: str) -> Settings:
    for section, values in data.items():
        if section not in _SECTIONS:
            raise SettingsError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, dict):
            raise SettingsError(f"{origin}: [{section}] must be a table")
        current = getattr(settings, section)
        known = {f.name for f in fields(current)}
        changes = {}
        for key, raw in values.items():
            if key not in known:
                raise SettingsError(f"{origin}: unknown key {section}.{key}")
            changes[key] = _coerce(section, key, getattr(current, key), raw)
        settings = replace(settings, **{section: replace(current, **changes)})
    return settings


def load_settings(
    path: str | os.PathLike | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Read config.toml (CREDO_CONFIG or the project's), then apply CREDO_* overrides."""
    env = dict(os.environ if env is None else env)
    config_path = Path(path or env.get("CREDO_CONFIG") or PROJECT_ROOT / "config.toml")
    settings = Settings(base_dir=config_path.resolve().parent)
    if config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_path}: {exc}") from exc
        settings = _apply(settings, data, str(config_path))
    elif path or env.get("CREDO_CONFIG"):
        raise SettingsError(f"{config_path}: no such file")
    overrides: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith("CREDO_") or name == "CREDO_CONFIG":
            continue
        if name == "CREDO_DATABASE_URL":
            overrides.setdefault("database", {})["url"] = value
            continue
        rest = name[len("CREDO_") :].lower()
        for section in _SECTIONS:
            if rest.startswith(section + "_"):
                overrides.setdefault(section, {})[rest[len(section) + 1 :]] = value
                break
    return _apply(settings, overrides, "environment") if overrides else settings


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting of `settings` as a CREDO_* variable, for
    a process started to work with the same settings (a run, a job)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDO_") or k == "CREDO_CONFIG"}
    for section in fields(settings):
        values = getattr(settings, section.name)
        if section.name == "base_dir":
            continue
        for item in fields(values):
            env[f"CREDO_{section.name}_{item.name}".upper()] = str(getattr(values, item.name))
    env["CREDO_DATABASE_URL"] = settings.database_url
    env["CREDO_PATHS_DATA_DIR"] = str(settings.data_dir)
    env["CREDO_PATHS_RULES_DIR"] = str(settings.rules_dir)
    # `-m api` must import this very code, from whatever directory the app was started in.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    return env
