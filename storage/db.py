"""Database setup: one peewee proxy, bound from a URL (SQLite by default, PostgreSQL in production).

SQLite files get WAL mode (readers never block the writer; SQLite checkpoints the log itself),
foreign keys on and a busy timeout, so several processes (API workers, the nightly run, `credo
import`) can share one file. Servers take connections from a pool (open_pooled).
"""

from __future__ import annotations

import enum
import io
import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import peewee as pw
from playhouse import db_url

from storage.errors import StorageError

database = pw.DatabaseProxy()

SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("busy_timeout", 30_000),  # milliseconds a writer waits for the lock before failing
    ("synchronous", "normal"),  # safe with WAL: a power cut may lose the last commits, not data
    ("cache_size", -32_000),  # 32 MB page cache
)
_SCHEMES = ("sqlite", "postgres", "postgresql")


def connect(url: str, *, pool_size: int = 0) -> pw.Database:
    """Open the database at `url`, bind the `database` proxy to it and return it.

    `sqlite:///relative.db`, `sqlite:////absolute/path.db` or `postgresql://user@host:port/db`.
    The parent directory of a SQLite file is created when missing. With `pool_size`, see
    open_pooled.
    """
    parsed = urlparse(url)
    if parsed.scheme not in _SCHEMES:
        raise StorageError(f"database url {url!r}: scheme must be one of {', '.join(_SCHEMES)}")
    options: dict = {}
    if parsed.scheme == "sqlite":
        path = parsed.path[1:]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options = {"pragmas": SQLITE_PRAGMAS, "timeout": 30}
    if pool_size:
        url = url.replace("://", "+pool://", 1)  # playhouse.db_url's name for the pooled kind
        # timeout: seconds a thread waits for a free connection (SQLite's lock: busy_timeout)
        options.update(max_connections=pool_size, stale_timeout=300, timeout=30)
        if parsed.scheme == "sqlite":  # a pooled connection may serve another thread later
            options["check_same_thread"] = False
    db = db_url.connect(url, **options)
    database.initialize(db)
    try:
        db.connect(reuse_if_open=True)
    except pw.OperationalError as exc:
        raise StorageError(f"cannot open database {redact(url)}: {exc}") from exc
    return db


def open_pooled(url: str, pool_size: int = 32) -> pw.Database:
    """connect(url) for a server: connections come from peewee's pool (playhouse.pool), at
    most `pool_size` at once (one per thread of a development server; gunicorn's sync workers
    use one).

    Open the database for a request and close it afterwards: close() hands the connection back
    to the pool, so a request skips a login (PostgreSQL) or re-reading the schema and PRAGMAs
    (SQLite). The pool checks a connection before handing it out and drops one the server has
    closed, so after a database restart requests get new connections.
    """
    db = connect(url, pool_size=pool_size)
    db.close()  # back to the pool: connect() only checked that the database opens
    return db


@dataclass(frozen=True)
class SqliteFile:
    """A SQLite database file as it was when a process opened it.

    Deleting or replacing the file under a running process goes unnoticed by SQLite: the
    process keeps reading and writing the old, unlinked file, whose contents nobody will see
    again. `problem()` tells: one stat of the path, compared by device and inode.
    """

    path: str
    device: int
    inode: int

    @classmethod
    def of(cls, path: str) -> SqliteFile:
        status = os.stat(path)
        return cls(path, status.st_dev, status.st_ino)

    def problem(self) -> str | None:
        """None while the path still names the file opened; else what happened to it."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return f"database file {self.path} is gone (deleted since it was opened): restart"
        except OSError as exc:
            return f"database file {self.path}: {exc}"
        if (status.st_dev, status.st_ino) != (self.device, self.inode):
            return f"database file {self.path} was replaced since it was opened: restart"
        return None


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def is_postgres(db: pw.Database | None = None) -> bool:
    """Whether the bound (or given) database is PostgreSQL."""
    db = db or database.obj
    return isinstance(db, pw.PostgresqlDatabase)


_INSERT_SQL: dict[tuple, str] = {}


def analyze() -> None:
    """Refresh the query planner's statistics, after a bulk import: without them PostgreSQL
    scans whole tables for a batch of customers (autovacuum catches up only later)."""
    database.execute_sql("ANALYZE")


def insert_rows(model: type[pw.Model], columns: Sequence[pw.Field], rows: list) -> None:
    """insert_many_fast for rows that hold database values already (Field.db_value applied),
    without building a peewee query per call: the INSERT is built once per table and columns."""
    if not rows:
        return
    if len(rows) >= COPY_MIN_ROWS and is_postgres():
        _copy(model, columns, rows)
        return
    _execute_many(insert_sql(model, columns), len(columns), rows)


def insert_sql(model: type[pw.Model], columns: Sequence[pw.Field]) -> str:
    """The single-row INSERT of `columns` into the model's table, built once per database kind,
    table and columns."""
    key = (type(database.obj), model, tuple(columns))
    sql = _INSERT_SQL.get(key)
    if sql is None:
        sql = _INSERT_SQL[key] = model.insert_many([[None] * len(columns)], columns).sql()[0]
    return sql


# From this many rows PostgreSQL gets them by COPY: a fraction of the server's work for INSERT
# (no statement to parse, no parameters to bind) and no client-side quoting of each value.
COPY_MIN_ROWS = 50


def _copy(model: type[pw.Model], columns: Sequence[pw.Field], rows: list) -> None:
    """COPY rows of database values into the model's table (PostgreSQL, text format)."""
    names = ", ".join(f'"{f.column_name}"' for f in columns)
    table = model._meta.table_name
    text = "".join(["\t".join([_copy_text(v) for v in row]) + "\n" for row in rows])
    with pw.__exception_wrapper__:
        cursor = database.cursor()
        cursor.copy_expert(f'COPY "{table}" ({names}) FROM STDIN', io.StringIO(text))


def _copy_text(value: object) -> str:
    """One value in COPY's text format: NULL as \\N; backslash, tab, newline and carriage
    return escaped."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is int or kind is float or kind is Decimal:
        return str(value)
    if kind is date or kind is datetime:
        return value.isoformat()  # type: ignore[union-attr]
    text = value if isinstance(value, str) else str(value)
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def insert_many_fast(
    one_row: pw.Query, columns: list[pw.Field], rows: list, *, converted: bool = False
) -> None:
    """Run the single-row INSERT `one_row` (built by peewee for `columns`) for every row of
    values, in as few round trips as the driver allows. peewee would build the SQL text value by
    value, the slow part of a large import or of storing thousands of decisions. `converted`:
    the rows hold database values already (Field.db_value applied)."""
    if not rows:
        return
    key = (type(database.obj), one_row.model._meta.table_name, tuple(f.name for f in columns))
    sql = _INSERT_SQL.get(key)
    if sql is None:  # building the text is most of peewee's cost for a small insert
        sql = _INSERT_SQL[key] = one_row.sql()[0]
    if converted:  # the rows hold database values already
        params = rows
    else:
        params = [[f.db_value(v) for f, v in zip(columns, row, strict=True)] for row in rows]
    _execute_many(sql, len(columns), params)


def _execute_many(sql: str, width: int, params: list) -> None:
    """Run the single-row INSERT `sql` for every row of `params`, in as few round trips as the
    driver allows."""
    # peewee's wrapper turns driver errors into peewee's (IntegrityError, …) as execute_sql does.
    with pw.__exception_wrapper__:
        cursor = database.cursor()
        if is_postgres():
            from psycopg2.extras import execute_values

            # One multi-row VALUES list per page: execute_values fills the single %s.
            values = "(" + ", ".join(["%s"] * width) + ")"
            execute_values(cursor, sql.replace(values, "%s", 1), params, page_size=500)
        else:
            cursor.executemany(sql, params)


@enum.unique  # two purposes sharing a key would wait for each other: refused at import
class LockKey(enum.IntEnum):
    """Every advisory-lock key credo takes ("credo" + n), in one table so no two collide.

    PostgreSQL: keys of `write_lock` (transaction-level, database-wide). SQLite: write_lock is
    the file's one writer lock whatever the key. The nightly run's own lock on PostgreSQL is
    a session lock in the separate two-key space: (RUN_LOCK_CLASS, the schema's hash).
    """

    MIGRATIONS = 0x6372_6564_6F01
    DECISION_CHAIN = 0x6372_6564_6F02
    RULESET_NUMBERING = 0x6372_6564_6F03
    RUN_QUEUE = 0x6372_6564_6F04  # claiming and committing a run's batches
    RUN = 0x6372_6564_6F05  # the run lock row (SQLite) and a run's creation
    AUDIT_LOG = 0x6372_6564_6F0E  # appends to the operator log (storage.audit_log)


RUN_LOCK_CLASS = 0x6372_6564  # "cred": pg_advisory_lock(RUN_LOCK_CLASS, hashtext(schema))


@contextmanager
def write_lock(key: LockKey):
    """A transaction that holds the database-wide writer lock named by `key`.

    PostgreSQL: a transaction-level advisory lock (other holders of `key` wait; everyone else
    goes on). SQLite: BEGIN IMMEDIATE, the file's single writer lock. Inside an open transaction
    on SQLite this is a savepoint: the caller's transaction must already be a writer.
    """
    db = database.obj
    if db is None:
        raise StorageError("no database: call storage.db.connect(url) first")
    if is_postgres(db):
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (int(key),))
            yield db
    elif db.in_transaction():
        with db.atomic():
            yield db
    else:
        with db.atomic(lock_type="IMMEDIATE"):
            yield db
