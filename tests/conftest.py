"""Shared fixtures: databases for every storage test, on SQLite and, when TEST_DATABASE_URL is
set, on PostgreSQL (each test in a fresh schema, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

POSTGRES_SKIP = "TEST_DATABASE_URL is not set: PostgreSQL tests skipped (.ci/run sets it)"


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """The URL of a fresh schema in the PostgreSQL database `base`, dropped afterwards."""
    import psycopg2

    schema = f"credo_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options={quote(f'-c search_path={schema}')}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema's URL; skips the test without TEST_DATABASE_URL."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip(POSTGRES_SKIP)
    with postgres_schema(base) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'credo.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def empty_db(database_url: str):
    """A connected database with no tables (the storage proxy is bound to it)."""
    from storage.db import connect

    database = connect(database_url)
    yield database
    database.close()


@pytest.fixture
def db(empty_db):
    """A connected database migrated to the latest schema."""
    from storage.migrations import migrate

    migrate(empty_db)
    return empty_db
