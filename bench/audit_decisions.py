"""Benchmark of auditing stored decisions: replay rate, and what the explanation costs.

    python bench/audit_decisions.py [--decisions 20000] [--customers 2000]
        [--databases sqlite,postgresql]

For each database (a new SQLite file; a fresh schema in the PostgreSQL of TEST_DATABASE_URL,
default postgresql://postgres@127.0.0.1:5432/test, when it answers) it imports a generated
portfolio (bench/ledger.py's helpers), decides its customers with every default rule set as a
run does (api.usecases.decide_account: reminders read the hand-off's outcome, `earlier`), and
stores `--decisions` decisions in batches of 1000. Then it times `credo audit replay` over all
of them (api.audit_replay.replay: read in chunks, each version parsed once, each decision
evaluated again and compared byte for byte).

The explanation's cost on the hot path is measured without a database: build_decision_record
over the same evaluations, with the explanation and with it stubbed out, and
engine.explain.explanation alone (target: at most 10 µs per decision).
Prints a table of figures; nothing is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import (  # noqa: E402
    AS_OF,
    RULES_DIR,
    import_portfolio,
    postgres_database,
    postgres_reachable,
    sqlite_database,
    time_facts,
)

import api.usecases as usecases  # noqa: E402
from api.audit_replay import Selection, replay  # noqa: E402
from engine.explanation import explanation  # noqa: E402
from engine.runtime import Engine  # noqa: E402
from storage import decisions  # noqa: E402
from storage.db import connect  # noqa: E402
from storage.migrations import migrate  # noqa: E402

APPEND_BATCH = 1000


def store_decisions(count: int, sample: dict) -> int:
    """Decide the sample's customers again and again as a run does until `count` decisions
    are stored; how many were."""
    engine = Engine()
    versions = list(usecases.load_active_rulesets().values())
    stored, batch = 0, []
    customers = list(sample.items())
    n = 0
    while stored + len(batch) < count:
        customer_id, facts = customers[n % len(customers)]
        n += 1
        batch.extend(
            usecases.decide_account(
                engine.evaluator(facts), versions, facts, customer_id, AS_OF, "bench", via="run"
            )
        )
        if len(batch) >= APPEND_BATCH:
            decisions.append_decisions(batch)
            stored, batch = stored + len(batch), []
    decisions.append_decisions(batch)
    return stored + len(batch)


def time_replay() -> tuple[int, float]:
    started = time.perf_counter()
    report = replay(Selection())
    seconds = time.perf_counter() - started
    if report["different"]:
        raise SystemExit(f"replay differs: {report['differences'][:2]}")
    return report["replayed"], seconds


def run(name: str, url: str, customers: int, count: int, seed: int) -> list[str]:
    db = connect(url)
    migrate(db)
    usecases.load_default_rulesets(RULES_DIR, created_by="bench")
    import_portfolio(customers, seed)
    ids = [f"C{n:06d}" for n in range(customers)]
    _, _, sample = time_facts(ids)
    stored = store_decisions(count, sample)
    replayed, seconds = time_replay()
    db.close()
    return [name, f"{stored:,}", f"{seconds:.1f} s", f"{replayed / seconds:,.0f}"]


def explanation_cost(rounds: int = 200) -> list[str]:
    """µs per decision: build_decision_record with and without the explanation, and the
    explanation alone, over the shipped rule sets' typical evaluations."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "api"))
    from api_support import complete_facts  # the tests' complete fact set

    from engine.facts import check_facts

    engine = Engine()
    versions = [
        usecases.ActiveRuleSet(r.kind, 1, r.sha256, r)
        for r in usecases.load_ruleset_files(sorted(RULES_DIR.glob("*.toml")))
    ]
    cases = []
    for changes in (
        {},
        {"requested_amount": "61250.00", "credit_limit": "50000.00", "new_exposure": "61250.00"},
        {"days_past_due": 124, "overdue_balance": "4200.00", "last_reminder_tone": "final",
         "days_since_last_reminder": 21},
        {"days_past_due": 20, "overdue_balance": "400.00"},
        {"days_past_due": 200, "in_agency": True},
    ):  # fmt: skip
        facts = check_facts(complete_facts(**changes), complete=True)
        for version in versions:
            cases.append((version, facts, engine.evaluate(version.ruleset, facts)))
    real = usecases.explanation

    def build_all() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            for version, facts, evaluation in cases:
                usecases.build_decision_record(
                    evaluation, version, facts, "C1", AS_OF, "bench", via="run"
                )
        return (time.perf_counter() - started) / (rounds * len(cases)) * 1e6

    build_all()  # warm up
    with_us = min(build_all() for _ in range(3))
    usecases.explanation = lambda kind, outcome, fired: ""
    try:
        without_us = min(build_all() for _ in range(3))
    finally:
        usecases.explanation = real
    started = time.perf_counter()
    for _ in range(rounds * 5):
        for _version, _facts, evaluation in cases:
            explanation(evaluation.kind, evaluation.outcome, evaluation.fired)
    alone_us = (time.perf_counter() - started) / (rounds * 5 * len(cases)) * 1e6
    return [
        f"{with_us:.1f} µs",
        f"{without_us:.1f} µs",
        f"{with_us - without_us:.1f} µs",
        f"{alone_us:.1f} µs",
    ]


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    print("explanation on the hot path (per decision; shipped rule sets, typical outcomes)")
    table(
        ["build_decision_record", "without explanation", "explanation adds", "explanation()"],
        [explanation_cost()],
    )
    print()
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
    print(f"replay of stored decisions ({args.customers:,} customers decided as a run does)")
    table(["database", "decisions", "replay took", "replayed/s"], rows)


if __name__ == "__main__":
    main()
