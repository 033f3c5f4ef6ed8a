"""Benchmark of the ledger storage: facts from the ledger and decisions stored, per second.

    python bench/ledger.py [--customers 100000] [--decisions 20000] [--databases sqlite,postgresql]

For each database (a new SQLite file; a fresh schema in the PostgreSQL of TEST_DATABASE_URL,
default postgresql://postgres@127.0.0.1:5432/test, when it answers) it imports a generated
portfolio (`credo demo`'s generator, through the ledger schemas and upsert_records), then times:
- facts: load_ledgers in batches of 500 customers + derive_facts for each, as the nightly run does;
- decisions: append_decisions in batches of 1000 (the nightly run's write path), records with
  real facts and traces, the hash chain included; then verify_chain over all of them.
Prints a table of figures. Nothing is kept: the files and the schema are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.demo.portfolio import generate_portfolio  # noqa: E402
from api.intake.schemas import validate_record  # noqa: E402
from api.usecases import build_decision_record, load_active_rulesets, load_default_rulesets  # noqa: E402
from engine.facts import derive_facts  # noqa: E402
from engine.runtime import Engine  # noqa: E402
from storage import decisions, ledger  # noqa: E402
from storage.db import analyze, connect  # noqa: E402
from storage.migrations import migrate  # noqa: E402

AS_OF = date(2025, 6, 30)
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
IMPORT_BATCH = 5000
LOAD_BATCH = 500
APPEND_BATCH = 1000


@contextmanager
def sqlite_database():
    with tempfile.TemporaryDirectory(prefix="credo-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@contextmanager
def postgres_database(base: str):
    import psycopg2

    schema = f"credo_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options={quote(f'-c search_path={schema}')}"
    finally:
        admin.cursor().execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def postgres_reachable(base: str) -> bool:
    try:
        import psycopg2

        psycopg2.connect(base, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable" here
        return False


def import_portfolio(customers: int, seed: int) -> tuple[int, float]:
    started = time.perf_counter()
    count, batch = 0, []
    for record in generate_portfolio(customers, seed, AS_OF):
        batch.append(validate_record(record))
        if len(batch) >= IMPORT_BATCH:
            count += ledger.upsert_records(batch).accepted
            batch = []
    count += ledger.upsert_records(batch).accepted
    analyze()  # as `credo import` does after a bulk import
    return count, time.perf_counter() - started


def time_facts(ids: list[str]) -> tuple[float, float, dict]:
    """Seconds loading ledgers and deriving facts for every customer; a sample of facts."""
    load_seconds = facts_seconds = 0.0
    sample: dict = {}
    for start in range(0, len(ids), LOAD_BATCH):
        t0 = time.perf_counter()
        books = ledger.load_ledgers(ids[start : start + LOAD_BATCH])
        t1 = time.perf_counter()
        for customer_id, book in books.items():
            facts = derive_facts(book, AS_OF)
            if len(sample) < 200:
                sample[customer_id] = facts
        facts_seconds += time.perf_counter() - t1
        load_seconds += t1 - t0
    return load_seconds, facts_seconds, sample


def time_decisions(count: int, sample: dict) -> tuple[float, float]:
    """Seconds appending `count` decisions in batches, and verifying the whole chain."""
    engine = Engine()
    active = list(load_active_rulesets().values())
    traces = [
        (customer_id, facts, version, engine.evaluate(version.ruleset, facts))
        for customer_id, facts in sample.items()
        for version in active
    ]
    records = [
        build_decision_record(evaluation, version, facts, customer_id, AS_OF, "bench", via="run")
        for n in range(count)
        for customer_id, facts, version, evaluation in [traces[n % len(traces)]]
    ]
    started = time.perf_counter()
    for start in range(0, count, APPEND_BATCH):
        decisions.append_decisions(records[start : start + APPEND_BATCH])
    append_seconds = time.perf_counter() - started
    started = time.perf_counter()
    problems = decisions.verify_chain()
    if problems:
        raise SystemExit(f"chain broken: {problems[:3]}")
    return append_seconds, time.perf_counter() - started


def run(name: str, url: str, customers: int, count: int, seed: int) -> list[str]:
    db = connect(url)
    migrate(db)
    load_default_rulesets(RULES_DIR, created_by="bench")
    records, import_seconds = import_portfolio(customers, seed)
    ids = [f"C{n:06d}" for n in range(customers)]
    load_seconds, facts_seconds, sample = time_facts(ids)
    append_seconds, verify_seconds = time_decisions(count, sample)
    db.close()
    facts_total = load_seconds + facts_seconds
    return [
        name,
        f"{records:,} in {import_seconds:.0f} s ({records / import_seconds:,.0f}/s)",
        f"{customers / load_seconds:,.0f}",
        f"{customers / facts_total:,.0f}",
        f"{count / append_seconds:,.0f}",
        f"{count / verify_seconds:,.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    rows = []
    for name in args.databases.split(","):
        if name == "sqlite":
            with sqlite_database() as url:
                rows.append(run(name, url, args.customers, args.decisions, args.seed))
        elif name == "postgresql" and postgres_reachable(base):
            with postgres_database(base) as url:
                rows.append(run(name, url, args.customers, args.decisions, args.seed))
        else:
            print(f"{name}: skipped (not reachable or unknown)", file=sys.stderr)
    headers = [
        "database",
        "ledger records imported",
        "ledgers loaded/s",
        "customers' facts/s",
        "decisions stored/s",
        "decisions verified/s",
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(f"{args.customers:,} customers, {args.decisions:,} decisions, as of {AS_OF}")
    for row in (headers, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
