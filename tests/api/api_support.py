"""Helpers shared by the API tests (imported as `api_support`: tests/ has no packages)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

from api.settings import ApiSettings, Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def make_settings(database_url: str, base_dir: Path, **api: object) -> Settings:
    """Settings for a test app; rule-set changes are seen at once unless told otherwise."""
    api_settings = replace(ApiSettings(ruleset_refresh_seconds=0.0), **api)
    settings = Settings(base_dir=base_dir, api=api_settings)
    return replace(settings, paths=replace(settings.paths, rules_dir=str(RULES_DIR)))


CUSTOMER = {
    "name": "Acme GmbH",
    "segment": "mid_market",
    "country": "DE",
    "currency": "EUR",
    "credit_limit": "20000.00",
    "credit_score": 640,
    "since": "2020-02-29",
}


def invoice(invoice_id: str, customer_id: str, issued: str, due: str, amount: str) -> dict:
    return {
        "id": invoice_id,
        "customer_id": customer_id,
        "issue_date": issued,
        "due_date": due,
        "amount": amount,
    }


def complete_facts(**overrides: object) -> dict:
    """A complete fact set given directly (credit and reminder decide from it)."""
    facts = {
        "customer_id": "X9",
        "segment": "smb",
        "country": "DE",
        "tenure_months": 40,
        "credit_limit": "10000.00",
        "credit_score": 720,
        "open_balance": "1000.00",
        "overdue_balance": "0.00",
        "overdue_1_30": "0.00",
        "overdue_31_60": "0.00",
        "overdue_61_90": "0.00",
        "overdue_90_plus": "0.00",
        "days_past_due": 0,
        "invoices_open": 1,
        "invoices_overdue": 0,
        "days_until_next_due": 12,
        "utilization": 0.1,
        "disputed_amount": "0.00",
        "has_open_dispute": False,
        "on_payment_plan": False,
        "plan_missed_installments": 0,
        "has_active_promise": False,
        "promises_broken_12m": 0,
        "late_payments_12m": 0,
        "avg_days_late_12m": 0.0,
        "last_reminder_tone": "none",
        "in_agency": False,
        "on_hold": False,
        "requested_amount": "500.00",
    }
    facts.update(overrides)
    return facts


@contextmanager
def writers_held(database_url: str) -> Iterator[None]:
    """Hold back every writer of the run table for the block (reads go on), from a connection
    of its own: starters released together meet in the race the run lock must settle.
    SQLite: the file's write lock (BEGIN IMMEDIATE); PostgreSQL: LOCK TABLE run."""
    if database_url.startswith("sqlite:///"):
        import sqlite3

        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    import psycopg2

    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute('LOCK TABLE "run" IN EXCLUSIVE MODE')
        yield
    finally:
        connection.rollback()
        connection.close()


def decision_counts(as_of: date) -> tuple[int, int]:
    """(decisions stored for `as_of`, distinct customer/kind pairs among them)."""
    from storage.models import Decision

    pairs = Decision.select(Decision.customer_id, Decision.kind).where(Decision.as_of == as_of)
    return pairs.count(), pairs.distinct().count()


def wait_until_held_back(processes: list, database_url: str, timeout: float = 90) -> None:
    """Wait until each process has ended or reached the writers held by `writers_held`:
    PostgreSQL, it waits for the table lock; SQLite, it has the file open (a second more lets
    its reads before the first write pass). Raises when that takes longer than `timeout`."""
    import os
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [p for p in processes if p.poll() is None]
        if database_url.startswith("sqlite:///"):
            path = os.path.realpath(database_url.removeprefix("sqlite:///"))
            if all(path in _open_files(p.pid) for p in running):
                time.sleep(1.0)
                return
        elif _waiting_for_run_table(database_url) >= len(running):
            return
        time.sleep(0.05)
    raise AssertionError("the processes did not reach the database in time")


def _open_files(pid: int) -> set[str]:
    import os

    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return set()
    found = set()
    for name in names:
        try:
            found.add(os.readlink(f"{folder}/{name}"))
        except OSError:
            pass
    return found


def _waiting_for_run_table(database_url: str) -> int:
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'run'::regclass"
        )
        (waiting,) = cursor.fetchone()
    connection.close()
    return waiting
