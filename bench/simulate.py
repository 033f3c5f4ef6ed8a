"""Benchmark: a simulation (`credo rules simulate`'s code path) over generated portfolios, on
SQLite and PostgreSQL.

    python bench/simulate.py [--sizes 10000,100000] [--db sqlite,postgresql] [--workers 2]

For each size and database: a fresh database with the default rule sets and the portfolio of
bench/nightly.py (about ten invoices per customer), settled the same way; then the reminder
rule set with its final notice moved from 31 to 45 days late is simulated beside the active
version on every customer. Prints wall time, customers per second, how many customers changed,
peak memory of this process and of the workers, and how busy the machine's CPUs were (the
database server included). Target: 100k customers in under 60 s on two cores.
PostgreSQL: TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test, in a fresh schema.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

# bench/nightly.py builds and settles the portfolio (loaded by path: bench/ is no package).
_spec = importlib.util.spec_from_file_location("bench_nightly", ROOT / "bench" / "nightly.py")
nightly = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nightly)


def candidate():
    """The shipped reminder rule set, its final notice from 45 days late instead of 31."""
    from api.lifecycle_rules import parse_text
    from api.simulation import Candidate

    source = (ROOT / "rules" / "reminder.toml").read_text(encoding="utf-8")
    changed = source.replace('when = "days_past_due >= 31 and', 'when = "days_past_due >= 45 and')
    if changed == source:
        raise SystemExit("rules/reminder.toml no longer has the rule this benchmark changes")
    return Candidate(parse_text(changed, "reminder (final from 45 days)"), None, "bench draft")


def bench_one(url: str, n: int, workers: int) -> dict:
    from api.settings import RunSettings, load_settings
    from api.simulation import simulate
    from api.usecases import load_default_rulesets
    from storage.db import connect
    from storage.migrations import migrate

    db = connect(url)
    migrate(db)
    load_default_rulesets(ROOT / "rules")
    load_seconds = nightly.load_portfolio(db, n)
    nightly.settle(db)
    settings = load_settings().with_database_url(url)
    settings = replace(settings, run=RunSettings(batch_size=500, workers=workers))
    nightly.reset_peak_rss()
    watcher = nightly.WorkerPeaks()
    watcher.start()
    busy_before, total_before = nightly.cpu_times()
    started = time.perf_counter()
    result = simulate(settings, candidate(), nightly.AS_OF)
    seconds = time.perf_counter() - started
    rss_workers = watcher.stop()
    busy_after, total_after = nightly.cpu_times()
    db.close()
    return {
        "customers": result["evaluated"],
        "changed": result["changed_count"],
        "errors": result["errors_count"],
        "load_s": load_seconds,
        "seconds": seconds,
        "rate": result["evaluated"] / seconds,
        "rss_main": nightly.peak_rss_mb(),
        "rss_workers": rss_workers,
        "cpu_busy": (busy_after - busy_before) / max(total_after - total_before, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    rows = []
    for kind, n, result in nightly.on_each_database(args.db, args.sizes, bench_one, args.workers):
        rows.append((kind, result))
        print(f"{kind} {n}: simulated in {result['seconds']:.1f} s", flush=True)
    print()
    print(
        f"{'db':<11}{'customers':>10}{'load s':>8}{'sim s':>8}{'cust/s':>9}{'changed':>9}"
        f"{'errors':>7}{'RSS main':>10}{'RSS wkr':>9}{'CPU busy':>9}"
    )
    for kind, r in rows:
        print(
            f"{kind:<11}{r['customers']:>10,}{r['load_s']:>8.1f}{r['seconds']:>8.1f}"
            f"{r['rate']:>9,.0f}{r['changed']:>9,}{r['errors']:>7}"
            f"{r['rss_main']:>9.0f}M{r['rss_workers']:>8.0f}M{r['cpu_busy']:>9.0%}"
        )
    print(f"workers: {args.workers}; target: 100,000 customers in under 60 s")


if __name__ == "__main__":
    main()
