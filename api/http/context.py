"""What every request of one app shares: settings, the database and the rule-set cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from api.http.evaluator import RuleSetCache
from api.settings import Settings


@dataclass(frozen=True)
class AppState:
    settings: Settings
    database: Any  # the peewee Database the storage package is bound to
    rulesets: RuleSetCache


def app_state() -> AppState:
    """The state of the current app (set by api.app.create_app)."""
    return current_app.extensions["credo"]
