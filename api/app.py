"""The Flask app factory: `create_app(settings)`; each piece plugs itself in with init_app.

Settings come from config.toml and CREDO_* variables (api.settings). The database is opened by
the first query of a request and closed when the request ends (streamed exports included);
connections come from a per-process pool.
"""

from __future__ import annotations

import time

import peewee as pw
from flask import Flask, Response
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from api import console
from api.http import customers, decisions, docs, errors, health, ledger, rulesets, runs, url_text
from api.http.context import AppState
from api.http.evaluator import RuleSetCache
from api.http.smorest import loads_strict, make_api
from api.http.writers import TagSettler, Upkeep, WalCheckpointer
from api.settings import Settings, load_settings
from storage.db import SqliteFile

API_VERSION = "1"
# Connections per process: one per thread of the development server; gunicorn's sync workers
# use one.
POOL_SIZE = 32


class _StrictJSON(Flask.json_provider_class):
    """request.get_json() with the same strict parsing as the API bodies; responses keep their
    keys in order (facts in catalogue order)."""

    sort_keys = False

    def loads(self, s, **kwargs):  # type: ignore[no-untyped-def, override]
        return loads_strict(s)


class _PostgresPool(PooledPostgresqlDatabase):
    """PostgreSQL's connection pool, without a round trip for a connection just handed back.

    peewee's pool asks the server (SELECT 1) whether a connection is alive each time it hands
    one out: a third of the round trips of a decision. This pool asks only for a connection
    that has sat unused for PING_AFTER seconds or more; one used a moment ago is taken as it
    is. Should the server have gone away in that moment, the request fails with 503 and the
    broken connection is discarded at its next check-out (psycopg2 marks it closed).
    """

    PING_AFTER = 5.0  # seconds

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._returned_at: dict[int, float] = {}

    def _is_closed(self, conn):  # type: ignore[no-untyped-def]
        returned = self._returned_at.pop(self.conn_key(conn), None)
        if (
            returned is not None
            and time.monotonic() - returned < self.PING_AFTER
            and not conn.closed
            and self._adapter.txn_status(conn) == self._adapter.txn_idle
        ):
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn=False):  # type: ignore[no-untyped-def]
        if len(self._returned_at) > 4 * POOL_SIZE:  # keys of connections closed as stale
            self._returned_at.clear()
        if not close_conn:
            self._returned_at[self.conn_key(conn)] = time.monotonic()
        super()._close(conn, close_conn)


def open_pooled(url: str) -> pw.Database:
    """storage's database at `url`, as a connection pool, bound to the storage proxy.

    A request still opens the database and closes it when it ends, but close() hands the
    connection back to the pool: SQLite then skips re-reading the schema and the PRAGMAs on
    every request (milliseconds each), PostgreSQL a new login.
    """
    from storage import db as storage_db

    plain = storage_db.connect(url)  # checks the URL, creates a SQLite file's directory
    plain.close()
    pool = {"max_connections": POOL_SIZE, "stale_timeout": 300, "timeout": 30}
    if isinstance(plain, pw.SqliteDatabase):
        # A pooled connection may serve another thread later, one thread at a time.
        params = {**plain.connect_params, "check_same_thread": False}
        # The log is checkpointed after responses instead (see _after_responses).
        pragmas = (*plain._pragmas, ("wal_autocheckpoint", 0))
        pooled: pw.Database = PooledSqliteDatabase(
            plain.database, pragmas=pragmas, **pool, **params
        )
    else:
        pooled = _PostgresPool(plain.database, **pool, **plain.connect_params)
    storage_db.database.initialize(pooled)
    return pooled


def _after_responses(app: Flask, *chores: Upkeep) -> None:
    """Start each chore that is due once a response has gone out (api.http.writers): SQLite's
    upkeep, never inside a commit that other workers queue behind, nor before a caller has
    its answer, nor in the way of the next request."""

    @app.after_request
    def _schedule(response: Response) -> Response:
        for chore in chores:
            if chore.due():
                response.call_on_close(chore.start)
        return response


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
        app.extensions["credo.wal"] = WalCheckpointer(database.database)
        app.extensions["credo.tags"] = TagSettler()
        _after_responses(app, app.extensions["credo.tags"], app.extensions["credo.wal"])
    errors.init_app(app)
    url_text.init_app(app)
    api = make_api(app)
    for module in (health, decisions, ledger, customers, rulesets, runs):
        module.init_app(api)
    docs.init_app(app)
    console.init_app(app, settings)
    return app
