"""Benchmark: a full nightly run over generated portfolios, on SQLite and PostgreSQL.

    python bench/nightly.py [--sizes 10000,100000] [--db sqlite,postgresql] [--workers 2]

For each size and database: a fresh database with the default rule sets and a generated
portfolio of about ten invoices per customer (100k customers ≈ a million invoices), written
with bulk inserts, then settled (statistics, checkpoint: see `settle`); then one run
(`credo run`'s code path) with the given worker processes.
Prints the time to list the run's customers into batches ("plan s", part of "run s"),
customers per second, the peak memory of the run's process and of its busiest worker during
the run (Linux VmHWM: this process's peak is reset after the portfolio's load, the workers'
sampled while they live), the ratio of the run's rate to the bare engine's rate for the same
three decisions (facts derivation and evaluation only, measured in this process), and how busy
the machine's CPUs were during the run (the database server's work included).
Target: 100k customers in under 60 s on two cores, peak memory under 500 MB and flat with the
portfolio's size, cost linear in the number of customers.
PostgreSQL: TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test, in a fresh schema.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

AS_OF = date(2026, 6, 30)
SEGMENTS = ("retail", "wholesale", "manufacturing", "services", "public")


def generate(n: int, seed: int = 11):
    """Rows per table: customers, invoices (≈10 each), payments, reminder contacts."""
    rng = random.Random(seed)
    for i in range(n):
        cid = f"C{i:07d}"
        limit = rng.choice((5000, 10000, 25000, 50000, 100000))
        customer = (
            cid,
            f"Customer {i}",
            rng.choice(SEGMENTS),
            "DE",
            "EUR",
            Decimal(limit),
            rng.choice((None, rng.randrange(300, 950))),
            AS_OF - timedelta(days=rng.randrange(60, 3000)),
        )
        lateness = rng.choice((0, 0, 0, 5, 12, 30, 75))
        invoices, payments, contacts = [], [], []
        for k in range(10):
            issued = AS_OF - timedelta(days=30 * (10 - k) + rng.randrange(0, 20))
            due = issued + timedelta(days=30)
            amount = Decimal(rng.randrange(20000, 800000)) / 100
            iid = f"{cid}-I{k}"
            invoices.append((iid, cid, issued, due, amount))
            paid_on = due + timedelta(days=lateness + rng.randrange(-5, 10))
            if paid_on <= AS_OF and rng.random() > 0.08:
                part = amount if rng.random() > 0.1 else (amount / 2).quantize(Decimal("0.01"))
                payments.append((f"{cid}-P{k}", cid, paid_on, part))
        if lateness >= 12:
            contacts.append(
                (
                    f"{cid}-R",
                    cid,
                    AS_OF - timedelta(days=rng.randrange(1, 20)),
                    "reminder",
                    rng.choice(("friendly", "firm")),
                    "",
                )
            )
        yield customer, invoices, payments, contacts


def bulk_insert(db, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    from storage.db import is_postgres

    if is_postgres(db):
        from psycopg2.extras import execute_values

        with db.cursor() as cursor:
            execute_values(
                cursor, f'INSERT INTO "{table}" ({names}) VALUES %s', rows, page_size=2000
            )
    else:
        marks = ", ".join("?" for _ in columns)
        db.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)


def load_portfolio(db, n: int) -> float:
    from storage import models as m

    started = time.perf_counter()
    tables = {
        "customer": (
            m.Customer,
            (
                "id",
                "name",
                "segment",
                "country",
                "currency",
                "credit_limit",
                "credit_score",
                "since",
            ),
        ),
        "invoice": (m.Invoice, ("id", "customer_id", "issue_date", "due_date", "amount")),
        "payment": (m.Payment, ("id", "customer_id", "date", "amount")),
        "contact": (m.Contact, ("id", "customer_id", "date", "type", "tone", "note")),
    }
    buffers: dict[str, list[tuple]] = {name: [] for name in tables}

    def flush() -> None:
        with db.atomic():
            for name, (model, columns) in tables.items():
                rows = [
                    tuple(str(v) if isinstance(v, Decimal) else v for v in row)
                    for row in buffers[name]
                ]
                bulk_insert(db, model._meta.table_name, columns, rows)
                buffers[name].clear()

    for customer, invoices, payments, contacts in generate(n):
        buffers["customer"].append(customer)
        buffers["invoice"].extend(invoices)
        buffers["payment"].extend(payments)
        buffers["contact"].extend(contacts)
        if len(buffers["customer"]) >= 5000:
            flush()
    flush()
    return time.perf_counter() - started


def settle(db) -> None:
    """What the database is like at night, hours after the day's imports: statistics
    refreshed (as `credo import` does after a bulk import) and the loaded pages written out,
    so the run is not timed against the load's checkpoint and autovacuum."""
    from storage.db import analyze, is_postgres

    analyze()
    if is_postgres(db):
        db.execute_sql("CHECKPOINT")
    else:
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def engine_rate(sample: int = 2000) -> float:
    """Customers per second for facts + the three decisions, bare, in this process."""
    from api.usecases import load_active_rulesets
    from engine.facts import derive_facts
    from engine.order import decide_in_order
    from engine.runtime import Engine
    from storage.ledger import load_ledgers

    rulesets = [a.ruleset for a in load_active_rulesets().values()]
    ids = [f"C{i:07d}" for i in range(sample)]
    ledgers = list(load_ledgers(ids).values())
    engine = Engine()

    def decide(facts):  # as a run does: each rule set after those it names
        return decide_in_order(engine.evaluator(facts), rulesets, facts)

    for ledger in ledgers[:100]:
        decide(derive_facts(ledger, AS_OF))
    started = time.perf_counter()
    for ledger in ledgers:
        decide(derive_facts(ledger, AS_OF))
    return len(ledgers) / (time.perf_counter() - started)


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far (Linux; zeros elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory (VmHWM, Linux), 0 when unknown or gone.

    Not getrusage: on Linux a spawned worker's ru_maxrss starts at its parent's peak (the
    kernel keeps the larger of the two across fork and exec), so RUSAGE_CHILDREN reports the
    coordinator's memory for every worker.
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if pid == "self":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return 0.0


def reset_peak_rss() -> None:
    """Start this process's VmHWM again from its current size (Linux 4.0+), so that the peak
    read after the run is the run's, not the portfolio load's."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


class WorkerPeaks(threading.Thread):
    """Polls the peak memory (VmHWM) of this process's descendants while a run works."""

    def __init__(self, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval, self.peaks, self.done = interval, {}, threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            for pid in descendants(os.getpid()):
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak_rss_mb(pid))

    def stop(self) -> float:
        """The largest peak of any worker process seen (MB)."""
        self.done.set()
        self.join()
        return max(self.peaks.values(), default=0.0)


def descendants(root: int) -> list[int]:
    """Pids of every process below `root` (Linux /proc), children before grandchildren."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def bench_one(url: str, n: int, workers: int) -> dict:
    from api.nightly.run import execute_run, prepare_run
    from api.settings import RunSettings, load_settings
    from api.usecases import load_default_rulesets
    from storage.db import connect
    from storage.migrations import migrate

    db = connect(url)
    migrate(db)
    load_default_rulesets(ROOT / "rules")
    load_seconds = load_portfolio(db, n)
    settle(db)
    settings = load_settings().with_database_url(url)
    settings = replace(settings, run=RunSettings(batch_size=500, workers=workers))
    reset_peak_rss()
    watcher = WorkerPeaks()
    watcher.start()
    busy_before, total_before = cpu_times()
    started = time.perf_counter()
    run, _ = prepare_run(settings, AS_OF, True, "bench")
    planned = time.perf_counter() - started
    result = execute_run(settings, run.run_id, workers=workers)
    seconds = time.perf_counter() - started
    rss_workers = watcher.stop()
    rss_main = peak_rss_mb()
    busy_after, total_after = cpu_times()
    busy = (busy_after - busy_before) / max(total_after - total_before, 1)
    report = result["report"]
    rate = report["customers_evaluated"] / seconds
    bare = engine_rate()
    return {
        "customers": report["customers_evaluated"],
        "errors": report["errors_count"],
        "load_s": load_seconds,
        "run_s": seconds,
        "plan_s": planned,
        "rate": rate,
        "bare": bare,
        "ratio": rate / bare,
        "rss_main": rss_main,
        "rss_workers": rss_workers,
        "cpu_busy": busy,
    }


def on_each_database(databases: str, sizes: str, bench: Callable[..., dict], *args: Any):
    """(database, size, bench(url, size, *args)) for each comma-separated database (sqlite in
    a temporary folder removed after, postgresql in a fresh schema of TEST_DATABASE_URL or the
    local server) and size; an unreachable PostgreSQL is said and skipped."""
    from storage.db import database

    for kind in databases.split(","):
        for n in (int(s) for s in sizes.split(",")):
            if kind == "sqlite":
                with tempfile.TemporaryDirectory(prefix="credo-bench-") as folder:
                    result = bench(f"sqlite:///{folder}/credo.db", n, *args)
                    database.close()  # the file goes with its folder (gigabytes at 1M)
            else:
                base = os.environ.get(
                    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
                )
                sys.path.insert(0, str(ROOT / "tests"))
                from conftest import postgres_schema

                try:
                    with postgres_schema(base) as url:
                        result = bench(url, n, *args)
                except Exception as exc:  # noqa: BLE001 - unreachable server: say so, go on
                    print(f"postgresql {n}: skipped ({type(exc).__name__}: {exc})")
                    continue
            yield kind, n, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    rows = []
    for kind, n, result in on_each_database(args.db, args.sizes, bench_one, args.workers):
        rows.append((kind, n, result))
        print(f"{kind} {n}: done in {result['run_s']:.1f} s", flush=True)
    print()
    print(
        f"{'db':<11}{'customers':>10}{'load s':>8}{'plan s':>8}{'run s':>8}{'cust/s':>9}"
        f"{'engine/s':>10}{'ratio':>7}{'RSS main':>10}{'RSS wkr':>9}{'errors':>7}{'CPU busy':>9}"
    )
    for kind, _n, r in rows:
        print(
            f"{kind:<11}{r['customers']:>10,}{r['load_s']:>8.1f}{r['plan_s']:>8.1f}{r['run_s']:>8.1f}"
            f"{r['rate']:>9,.0f}{r['bare']:>10,.0f}{r['ratio']:>7.2f}"
            f"{r['rss_main']:>9.0f}M{r['rss_workers']:>8.0f}M{r['errors']:>7}"
            f"{r['cpu_busy']:>9.0%}"
        )
    print(f"workers: {args.workers}; target: 100,000 customers in under 60 s, RSS under 500 MB")


if __name__ == "__main__":
    main()
