"""Benchmark of the auditor's commands over a large decision trail (issue 15).

    python bench/audit.py [--decisions 1000000] [--databases sqlite,postgresql] [--only verify]

For each database (a new SQLite file; a fresh schema in the PostgreSQL of TEST_DATABASE_URL,
default postgresql://postgres@127.0.0.1:5432/test, when it answers) it builds a trail of
`--decisions` decisions by bulk insert (storage's batch append: prepared records, hashed and
inserted in batches, COPY on PostgreSQL; not the API), made from real evaluations of the
shipped rule sets, then runs each measurement and prints a table of figures.

Measurements are functions registered in MEASUREMENTS: `(trail) -> {figure name: text}`;
`--only NAME[,NAME]` runs some of them. Add one by writing a function and a line there.
- verify: api.audit_chain.verify_trail over the whole chain (what `credo audit verify` does):
  wall seconds, this process's CPU seconds (on a busy machine wall time is mostly waiting for a
  core), decisions per second; target under 60 s for a million decisions.
- replay: api.audit_replay.replay of a random sample of 20,000 of them (`credo audit replay
  --sample`): decisions replayed per second, and the whole trail's time at that rate.
Nothing is kept: the files and the schema are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ledger import postgres_database, postgres_reachable, sqlite_database  # noqa: E402

AS_OF = date(2025, 6, 30)
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
APPEND_BATCH = 20_000


@dataclass
class Trail:
    """A database holding `count` decisions, built in `build_seconds`."""

    name: str
    url: str
    count: int
    build_seconds: float


def build_trail(name: str, url: str, count: int) -> Trail:
    """Migrate a fresh database, load the shipped rule sets and append `count` decisions made
    from a few real evaluations (each its own id and creation time)."""
    from api.demo.portfolio import generate_portfolio
    from api.usecases import build_decision_record, load_active_rulesets, load_default_rulesets
    from engine.facts import derive_facts
    from engine.runtime import Engine
    from storage import ledger
    from storage.db import analyze, connect
    from storage.decisions import append_prepared, prepare_decisions
    from storage.migrations import migrate

    db = connect(url)
    migrate(db)
    load_default_rulesets(RULES_DIR, created_by="bench")
    ledger.upsert_records(_validated(generate_portfolio(50, 7, AS_OF)))
    engine, active = Engine(), list(load_active_rulesets().values())
    templates = []
    for customer_id, book in ledger.load_ledgers([f"C{n:06d}" for n in range(50)]).items():
        facts = derive_facts(book, AS_OF)
        for version in active:
            evaluation = engine.evaluate(version.ruleset, facts)
            record = build_decision_record(
                evaluation, version, facts, customer_id, AS_OF, "bench", via="run"
            )
            templates.append(record)
    started = time.perf_counter()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for start in range(0, count, APPEND_BATCH):
        records = [
            {
                **templates[n % len(templates)],
                "decision_id": f"bench-{n:09d}",
                "created_at": base + timedelta(seconds=n),
            }
            for n in range(start, min(start + APPEND_BATCH, count))
        ]
        append_prepared(prepare_decisions(records))
    analyze()
    return Trail(name, url, count, time.perf_counter() - started)


def _validated(records: list[dict]) -> list[dict]:
    from api.intake.schemas import validate_record

    return [validate_record(r) for r in records]


def measure_verify(trail: Trail) -> dict[str, str]:
    """Verify the whole chain (api.audit_chain.verify_trail, as `credo audit verify`)."""
    from api.audit_chain import verify_trail

    started, cpu = time.perf_counter(), time.process_time()
    result = verify_trail()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not result["ok"] or result["count"] != trail.count:
        raise SystemExit(f"{trail.name}: verify failed: {result['problems'][:3]}")
    return {
        "verify s": f"{seconds:.1f}",
        "verify CPU s": f"{cpu:.1f}",  # this process's; wall time also waits for the database
        "verified/s": f"{trail.count / seconds:,.0f}",
    }


REPLAY_SAMPLE = 20_000


def measure_replay(trail: Trail) -> dict[str, str]:
    """Replay a random sample of the trail (api.audit_replay.replay, as `credo audit replay
    --sample N`): each decision read by seq, evaluated again on its version's stored text and
    compared; the rate, and what the whole trail would take at it."""
    from api.audit_replay import Selection, replay

    size = min(REPLAY_SAMPLE, trail.count)
    started = time.perf_counter()
    report = replay(Selection(sample=size))
    seconds = time.perf_counter() - started
    if report["different"] or report["replayed"] != size:
        raise SystemExit(f"{trail.name}: replay differs: {report['differences'][:2]}")
    rate = size / seconds
    return {
        "replayed": f"{size:,}",
        "replayed/s": f"{rate:,.0f}",
        "whole trail at that rate": f"{trail.count / rate / 60:.1f} min",
    }


MEASUREMENTS: dict[str, Callable[[Trail], dict[str, str]]] = {
    "verify": measure_verify,
    "replay": measure_replay,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--only", default=",".join(MEASUREMENTS), help="measurements to run")
    args = parser.parse_args()
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(chosen) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; known: {', '.join(MEASUREMENTS)}")
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    rows: list[dict[str, str]] = []
    for name in args.databases.split(","):
        if name == "sqlite":
            context = sqlite_database()
        elif name == "postgresql" and postgres_reachable(base):
            context = postgres_database(base)
        else:
            print(f"{name}: skipped (not reachable or unknown)", file=sys.stderr)
            continue
        with context as url:
            trail = build_trail(name, url, args.decisions)
            row = {
                "database": name,
                "decisions": f"{trail.count:,}",
                "built/s": f"{trail.count / trail.build_seconds:,.0f}",
            }
            for measurement in chosen:
                row.update(MEASUREMENTS[measurement](trail))
            rows.append(row)
            from storage.db import database

            database.close()
    headers = list(dict.fromkeys(h for row in rows for h in row))
    widths = [max(len(h), *(len(row.get(h, "")) for row in rows)) for h in headers]
    for cells in ([*headers], *([row.get(h, "") for h in headers] for row in rows)):
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))


if __name__ == "__main__":
    main()
