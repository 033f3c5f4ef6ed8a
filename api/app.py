"""The Flask app factory: `create_app(settings)`; each piece plugs itself in with init_app.

Settings come from config.toml and CREDO_* variables (api.settings). The database is opened by
the first query of a request and closed when the request ends (streamed exports included);
connections come from a per-process pool (storage.db.open_pooled).
"""

from __future__ import annotations

import peewee as pw
from flask import Flask

from api import console
from api.http import (
    audit,
    audit_records,
    customers,
    decisions,
    docs,
    errors,
    health,
    jobs,
    ledger,
    rollout,
    rulesets,
    runs,
    simulations,
    url_text,
)
from api.http.context import AppState
from api.http.evaluator import RuleSetCache
from api.http.smorest import loads_strict, make_api
from api.settings import Settings, load_settings
from storage.db import SqliteFile, open_pooled

API_VERSION = "1"


class _StrictJSON(Flask.json_provider_class):
    """request.get_json() with the same strict parsing as the API bodies; responses keep their
    keys in order (facts in catalogue order)."""

    sort_keys = False

    def loads(self, s, **kwargs):  # type: ignore[no-untyped-def, override]
        return loads_strict(s)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the credo HTTP API for `settings` (default: config.toml + CREDO_* variables)."""
    settings = settings or load_settings()
    # No static folder: Flask's default would serve the working directory's static/ to anyone
    # at /static/; the /docs assets come from their package (api.http.docs).
    app = Flask(__name__, static_folder=None)
    app.json = _StrictJSON(app)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.api.max_body_bytes,
        API_TITLE="credo",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Credit approval, reminder tone and agency hand-off decisions "
                "for an ERP. Every call except /healthz and /readyz needs "
                "'Authorization: Bearer <key>' (`credo keys create`). Errors are "
                "application/problem+json."
            }
        },
    )
    database = open_pooled(settings.database_url)
    state = AppState(
        settings=settings,
        database=database,
        rulesets=RuleSetCache(settings.api.ruleset_refresh_seconds),
    )
    app.extensions["credo"] = state

    @app.teardown_appcontext
    def _close_database(_exc: BaseException | None) -> None:
        if not database.is_closed():
            database.close()

    if isinstance(database, pw.SqliteDatabase) and database.database not in ("", ":memory:"):
        app.extensions["credo.file"] = SqliteFile.of(database.database)  # for /readyz
    errors.init_app(app)
    url_text.init_app(app)
    api = make_api(app)
    modules = (health, decisions, ledger, customers, rulesets, rollout, runs, simulations, jobs)
    for module in (*modules, audit, audit_records):
        module.init_app(api)
    docs.init_app(app)
    console.init_app(app, settings)
    return app
