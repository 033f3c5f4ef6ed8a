"""Benchmark of the auditors' export: decisions per second and the memory it takes.

    python bench/audit_export.py [--decisions 200000] [--databases sqlite,postgresql]

For each database (a new SQLite file; a fresh schema in the PostgreSQL of TEST_DATABASE_URL,
default postgresql://postgres@127.0.0.1:5432/test, when it answers) it appends generated
decisions (~1.5 kB of facts each, a year of them by created_at) with append_decisions in
batches of 1000, then exports them all with api.audit_records.export_decisions as JSON lines
and as CSV, counting the bytes written, and exports one month with a kind and customer filter.
Each export is timed, then run again under tracemalloc for the Python memory it held at most
(peak MB): it does not grow with the number of decisions.
Prints a table. Nothing is kept: the file and the schema are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.audit_records import export_decisions  # noqa: E402
from bench.ledger import postgres_database, sqlite_database  # noqa: E402
from storage.db import connect  # noqa: E402
from storage.decisions import append_decisions  # noqa: E402
from storage.migrations import migrate  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 1000


def record(n: int, total: int) -> dict:
    kind = ("credit", "reminder", "handoff")[n % 3]
    return {
        "decision_id": f"bench-{n}",
        "kind": kind,
        "customer_id": f"C{n // 3 % 5000:06d}",
        "as_of": date(2025, 1, 1) + timedelta(days=n * 365 // total),
        "outcome": {"tone": "firm", "cadence_days": 7},
        "reasons": [f"Overdue {n % 90} days; last reminder was friendly"],
        "fired": [
            {"id": "RT-040", "name": "Firm", "priority": 40, "reason": "r", "then": {}, "set": {}}
        ],
        "ruleset": {"kind": kind, "version": 1, "sha256": "ab" * 32},
        "facts": {f"fact_{i}": Decimal(n % 1000 + i) / 7 for i in range(60)},
        "requested_by": "run:bench",
        "created_at": START + timedelta(seconds=n * 365 * 86400 // total),
        "engine_us": 40,
        "via": "run",
        "earlier": [],
        "explanation": f"Firm reminder: overdue {n % 90} days; last reminder was friendly "
        "(rule RT-040).",
        "arm": None,
    }


def measure(label: str, rows: int, **query) -> tuple:
    """Time an export, then run it again under tracemalloc (which slows Python down several
    times) for its peak memory."""
    started = time.perf_counter()
    written = sum(len(chunk) for chunk in export_decisions(**query).chunks)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    for _chunk in export_decisions(**query).chunks:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return label, rows, seconds, written, peak


def bench(url: str, count: int) -> list[tuple]:
    db = connect(url)
    migrate(db)
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        append_decisions([record(n, count) for n in range(start, min(start + BATCH, count))])
    stored = time.perf_counter() - started
    print(f"  stored {count:,} decisions in {stored:.1f} s", file=sys.stderr)
    february = {
        "created_from": START + timedelta(days=31),
        "created_to": START + timedelta(days=59),
    }
    in_february = sum(1 for n in range(count) if 31 <= n * 365 // count < 59)
    of_one = sum(1 for n in range(0, count, 3) if n // 3 % 5000 == 3)  # credit: n % 3 == 0
    results = [
        measure("all, jsonl", count, format="jsonl"),
        measure("all, csv", count, format="csv"),
        measure("February, jsonl", in_february, format="jsonl", **february),
        measure(
            "credit of one customer, jsonl",
            of_one,
            format="jsonl",
            kind="credit",
            customer_id="C000003",
        ),
    ]
    db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    print(f"{'database':<11} {'export':<32} {'rows':>9} {'s':>7} {'rows/s':>9} "
          f"{'MB out':>8} {'peak MB':>8}")  # fmt: skip
    for name in args.databases.split(","):
        maker = sqlite_database() if name == "sqlite" else postgres_database(base)
        try:
            with maker as url:
                for label, rows, seconds, written, peak in bench(url, args.decisions):
                    rate = f"{rows / seconds:,.0f}" if rows else "-"
                    print(
                        f"{name:<11} {label:<32} {rows or '':>9} {seconds:>7.2f} {rate:>9} "
                        f"{written / 1e6:>8.2f} {peak / 1e6:>8.1f}"
                    )
        except Exception as exc:  # a PostgreSQL that does not answer: say so, go on
            print(f"{name:<11} skipped: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
