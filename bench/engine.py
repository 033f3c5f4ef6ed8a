"""Benchmark: the default rule sets on durable_rules vs the same logic written as plain Python.

    python bench/engine.py [--n 100000] [--seed 7]

Generates N random but realistic account fact sets (seeded), then for each default rule set
(rules/credit.toml, reminder.toml, handoff.toml) and for all three together per account measures
the real Engine (each evaluation returns the full trace: fired rules and rendered reasons)
against bench/handwritten.py. Every hand-written outcome and fired list is compared with the
engine's; mismatches are reported. Prints RSS before and after the evaluations and the peak.
Target: the three decisions for one account in at most 100 µs together, trace included.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path, and this file would shadow
# the `engine` package: put the repository root there instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.handwritten import DECIDERS, decide_account, decide_handoff  # noqa: E402
from engine.facts import check_facts  # noqa: E402
from engine.order import decide_in_order, parse_rulesets  # noqa: E402
from engine.ruleset import RuleSet  # noqa: E402
from engine.runtime import Engine  # noqa: E402

KINDS = ("credit", "reminder", "handoff")
TARGET_US = 100.0
SEGMENTS = ("retail", "wholesale", "manufacturing", "services", "public", "")
COUNTRIES = ("DE", "FR", "NL", "GB", "US", "")
LIMITS = (5000, 10000, 20000, 25000, 50000, 100000, 250000)


# ---- fact sets ------------------------------------------------------------------------------


def _money(rng: random.Random, high: float) -> Decimal:
    return Decimal(rng.randrange(0, max(int(high * 100), 1) + 1)).scaleb(-2)


def _days_past_due(rng: random.Random) -> int:
    """Most accounts are current or a little late; a tail is long overdue."""
    roll = rng.random()
    if roll < 0.40:
        return 0
    if roll < 0.65:
        return rng.randint(1, 30)
    if roll < 0.85:
        return rng.randint(31, 89)
    return rng.randint(90, 240)


def _last_reminder_tone(rng: random.Random, late: int) -> str:
    if late >= 61:
        return rng.choice(("final", "final", "demand", "firm"))
    if late >= 31:
        return rng.choice(("firm", "final", "final"))
    if late >= 15:
        return rng.choice(("friendly", "firm"))
    if late >= 1:
        return rng.choice(("none", "courtesy", "friendly"))
    return rng.choice(("none", "none", "courtesy"))


def random_facts(rng: random.Random, index: int) -> dict[str, Any]:
    """One account's facts, consistent with each other as derive_facts would give them."""
    new = rng.random() < 0.05
    limit = Decimal(0) if new and rng.random() < 0.6 else Decimal(rng.choice(LIMITS))
    late = 0 if new else _days_past_due(rng)
    open_balance = Decimal(0) if new else _money(rng, float(limit or 2000) * rng.uniform(0, 1.3))
    overdue = (open_balance * Decimal(rng.uniform(0.2, 1))).quantize(Decimal("0.01")) if late else 0
    buckets = [Decimal(0)] * 4
    buckets[min((late - 1) // 30, 3) if late else 0] = Decimal(overdue)
    disputed = rng.random() < 0.06 and open_balance > 0
    in_dispute = (open_balance * Decimal("0.3")).quantize(Decimal("0.01")) if disputed else 0
    plan = rng.random() < (0.15 if late > 30 else 0.02)
    broken = rng.choices((0, 1, 2, 3, 4), weights=(80, 12, 5, 2, 1))[0]
    late_count = rng.choices(range(13), weights=(40, 15, 10, 8, 6, 5, 4, 3, 3, 2, 2, 1, 1))[0]
    requested = _money(rng, float(limit or 5000) * 0.5) if rng.random() < 0.7 else Decimal(0)
    tone = _last_reminder_tone(rng, late)
    facts: dict[str, Any] = {
        "customer_id": f"C{index:06d}",
        "segment": rng.choice(SEGMENTS),
        "country": rng.choice(COUNTRIES),
        "tenure_months": rng.randint(0, 3) if new else rng.randint(1, 180),
        "credit_limit": limit,
        "credit_score": min(max(round(rng.gauss(660, 130)), 0), 1000),
        "open_balance": open_balance,
        "overdue_balance": Decimal(overdue),
        "overdue_1_30": buckets[0],
        "overdue_31_60": buckets[1],
        "overdue_61_90": buckets[2],
        "overdue_90_plus": buckets[3],
        "days_past_due": late,
        "invoices_open": rng.randint(1, 20) if open_balance else 0,
        "invoices_overdue": rng.randint(1, 5) if late else 0,
        "days_until_next_due": rng.randint(0, 30),
        "utilization": _utilization(open_balance, limit),
        "disputed_amount": Decimal(in_dispute),
        "has_open_dispute": disputed,
        "undisputed_overdue_balance": max(Decimal(overdue) - in_dispute, Decimal(0)),
        "oldest_dispute_days": rng.randint(0, 90),
        "on_payment_plan": plan,
        "plan_missed_installments": rng.choices((0, 1, 2), weights=(75, 15, 10))[0] if plan else 0,
        "has_active_promise": rng.random() < 0.06,
        "promises_broken_12m": broken,
        "late_payments_12m": late_count,
        "invoices_paid_12m": late_count + rng.choice((0, 0, 1, 4, 12)),
        "avg_days_late_12m": round(rng.uniform(1, 60), 2) if late_count else 0.0,
        "days_since_last_payment": rng.randint(0, 200),
        "last_reminder_tone": tone,
        "days_since_last_reminder": rng.randint(0, 45),
        "in_agency": late >= 90 and rng.random() < 0.3,
        "on_hold": rng.random() < 0.02,
        "days_since_broken_promise": rng.randint(1, 365),
        "requested_amount": requested,
        "new_exposure": open_balance + requested,
    }
    _drop_absent(rng, facts, new, broken, tone)
    return facts


def _utilization(balance: Decimal, limit: Decimal) -> float:
    if limit <= 0:
        return 999.0 if balance > 0 else 0.0
    return round(float(balance / limit), 4)


def _drop_absent(rng: random.Random, facts: dict[str, Any], new: bool, broken: int, tone: str):
    """Optional facts are absent where the ledger would not give them."""
    if rng.random() < 0.3:
        del facts["credit_score"]
    if rng.random() < 0.5 or not facts["open_balance"]:
        del facts["days_until_next_due"]
    if new or rng.random() < 0.05:
        del facts["days_since_last_payment"]
    if tone == "none":
        del facts["days_since_last_reminder"]
    if not broken and rng.random() < 0.8:
        del facts["days_since_broken_promise"]
    if not facts["has_open_dispute"]:
        del facts["oldest_dispute_days"]


def generate(n: int, seed: int) -> list[dict[str, Any]]:
    """N fact sets; the first 1000 are checked against the fact catalogue."""
    rng = random.Random(seed)
    sets = [random_facts(rng, i) for i in range(n)]
    for facts in sets[:1000]:
        check_facts(facts, complete=True)
    return sets


# ---- measuring ------------------------------------------------------------------------------


def _status_mb(key: str) -> float | None:
    """A memory figure from /proc/self/status (Linux), in MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size so far, in MB."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def rss_mb() -> float:
    """Current resident set size in MB (the peak where the current one is not available)."""
    current = _status_mb("VmRSS")
    return current if current is not None else peak_rss_mb()


def time_loop(call: Callable[[dict[str, Any]], Any], fact_sets: list[dict[str, Any]]) -> float:
    """Mean µs per call over every fact set."""
    started = time.perf_counter()
    for facts in fact_sets:
        call(facts)
    return (time.perf_counter() - started) / len(fact_sets) * 1e6


class Results:
    """What one benchmark run measured."""

    def __init__(self, n: int):
        self.rows: list[tuple[str, float, float]] = []  # (decision, engine µs, python µs)
        self.timings = array("d", bytes(8 * n))  # µs per account, all three decisions
        self.walk_us = 0  # of which inside the engine walk (Evaluation.engine_us)
        self.mismatches: list[str] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self.rss: dict[str, float] = {}


def with_handoff(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts the reminder rule set sees in a run: the account's and the hand-off
    decision's outcome (handoff_action, handoff_agency)."""
    outcome = decide_handoff(facts)[0]
    return {**facts, "handoff_action": outcome["action"], "handoff_agency": outcome["agency"]}


def per_account(engine: Engine, rulesets: list[RuleSet], fact_sets, results: Results) -> None:
    """All three decisions per account, in their declared order as a run makes them, timed
    one account at a time; compares each decision with the hand-written functions and counts
    the first outcome field's values."""
    clock = time.perf_counter_ns
    for index, facts in enumerate(fact_sets):
        started = clock()
        steps = decide_in_order(engine.evaluator(facts), rulesets, facts)
        results.timings[index] = (clock() - started) / 1000
        expected = decide_account(facts)
        for step in steps:
            evaluation = step.evaluation
            results.walk_us += evaluation.engine_us
            outcome, fired = expected[evaluation.kind]
            engine_fired = [f.id for f in evaluation.fired]
            results.counts[evaluation.kind, str(next(iter(evaluation.outcome.values())))] += 1
            if outcome != evaluation.outcome or fired != engine_fired:
                results.mismatches.append(
                    f"{facts['customer_id']} {evaluation.kind}: engine {evaluation.outcome} "
                    f"{engine_fired}, hand-written {outcome} {fired}"
                )


def measure(rulesets: list[RuleSet], fact_sets: list[dict[str, Any]]) -> Results:
    """Every figure the report prints."""
    results = Results(len(fact_sets))
    engine = Engine()
    seen = [with_handoff(f) for f in fact_sets]  # what the reminder rule set reads
    for ruleset in rulesets:  # load, and warm up, outside the timings
        for facts in seen[:200]:
            engine.evaluate(ruleset, facts)
    results.rss["before"] = rss_mb()
    for ruleset in rulesets:
        sets = seen if ruleset.after else fact_sets
        engine_us = time_loop(lambda f, r=ruleset: engine.evaluate(r, f), sets)
        hand_us = time_loop(DECIDERS[ruleset.kind], sets)
        results.rows.append((f"{ruleset.kind} ({len(ruleset.rules)} rules)", engine_us, hand_us))
    results.rss["middle"] = rss_mb()
    per_account(engine, rulesets, fact_sets, results)
    results.rss["after"] = rss_mb()
    hand_all = time_loop(decide_account, fact_sets)
    mean = sum(results.timings) / len(results.timings)
    results.rows.append(("all three per account", mean, hand_all))
    return results


def percentile(values: array, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def report(results: Results, n: int) -> bool:
    """Print the table and the figures below it; True when the target is met, no mismatch."""
    print_table(results.rows)
    for kind in KINDS:
        mix = sorted(((c, v) for (k, v), c in results.counts.items() if k == kind), reverse=True)
        print(f"  {kind}: " + ", ".join(f"{v} {100 * c / n:.1f}%" for c, v in mix))
    timings, mean = results.timings, results.rows[-1][1]
    print(
        f"\nall three per account, engine with trace: mean {mean:.1f} µs, "
        f"p50 {percentile(timings, 0.5):.1f} µs, p99 {percentile(timings, 0.99):.1f} µs, "
        f"max {max(timings):.0f} µs; inside the engine walk {results.walk_us / n:.1f} µs"
    )
    rss = results.rss
    print(
        f"RSS: {rss['start']:.1f} MB at start, {rss['before']:.1f} MB with the fact sets loaded, "
        f"{rss['middle']:.1f} MB after {3 * n} evaluations, {rss['after']:.1f} MB after "
        f"{3 * n} more; peak {peak_rss_mb():.1f} MB"
    )
    print(f"hand-written vs engine: {len(results.mismatches)} mismatches in {3 * n} decisions")
    for line in results.mismatches[:10]:
        print("  " + line)
    met = mean <= TARGET_US
    print(
        f"target ≤ {TARGET_US:.0f} µs for the three decisions per account: "
        f"{'met' if met else 'MISSED'} (mean {mean:.1f} µs)"
    )
    return met and not results.mismatches


def print_table(rows: list[tuple[str, float, float]]) -> None:
    header = f"{'decision':<26}{'engine µs':>11}{'engine/s':>11}{'python µs':>11}{'python/s':>11}"
    print("\n" + header + f"{'ratio':>8}")
    print("-" * (len(header) + 8))
    for name, engine_us, hand_us in rows:
        print(
            f"{name:<26}{engine_us:>11.1f}{1e6 / engine_us:>11,.0f}{hand_us:>11.2f}"
            f"{1e6 / hand_us:>11,.0f}{engine_us / hand_us:>7.0f}x"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report; exit 1 on a mismatch or a missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="fact sets (default 100000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    rss_start = rss_mb()
    sources = {k: ((ROOT / "rules" / f"{k}.toml").read_text(), f"rules/{k}.toml") for k in KINDS}
    parsed, problems = parse_rulesets(sources)
    if problems:
        sys.exit("\n".join(str(p) for p in problems))
    rulesets = [parsed[kind] for kind in ("credit", "handoff", "reminder")]  # declared order
    started = time.perf_counter()
    fact_sets = generate(args.n, args.seed)
    elapsed = time.perf_counter() - started
    print(f"{args.n} fact sets generated in {elapsed:.1f} s (seed {args.seed})")
    results = measure(rulesets, fact_sets)
    results.rss["start"] = rss_start
    return 0 if report(results, args.n) else 1


if __name__ == "__main__":
    sys.exit(main())
