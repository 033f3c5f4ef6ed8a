"""Memory over many evaluations: RSS stays flat over a million evaluations, and loading and
unloading rule-set versions does not leak.

    python bench/engine_memory.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.usecases import load_ruleset_files  # noqa: E402
from engine.ruleset import parse_ruleset  # noqa: E402
from engine.runtime import Engine  # noqa: E402

RULES = Path(__file__).resolve().parent.parent / "rules"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def facts(rng: random.Random) -> dict:
    return {
        "customer_id": f"C{rng.randrange(10**6)}",
        "days_past_due": rng.choice([0, 0, 3, 12, 25, 40, 70, 120]),
        "overdue_balance": Decimal(rng.randrange(0, 5_000_000)) / 100,
        "open_balance": Decimal(rng.randrange(0, 9_000_000)) / 100,
        "credit_limit": Decimal(rng.choice([0, 5000, 20000, 100000])),
        "utilization": round(rng.random() * 1.5, 4),
        "has_open_dispute": rng.random() < 0.05,
        "on_hold": rng.random() < 0.02,
        "in_agency": False,
        "last_reminder_tone": rng.choice(["none", "friendly", "firm", "final"]),
        "promises_broken_12m": rng.choice([0, 0, 0, 1, 3]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = random.Random(7)
    engine = Engine()
    rulesets = load_ruleset_files(sorted(RULES.glob("*.toml")))  # credit first: no `after`
    pool = [facts(rng) for _ in range(1000)]
    print(f"{'evaluations':>12} {'RSS MB':>8} {'µs/eval':>8}")
    start, done, step = time.perf_counter(), 0, max(args.n // 10, 1)
    base = None
    while done < args.n:
        t0 = time.perf_counter()
        for i in range(step):
            f = pool[(done + i) % len(pool)]
            for rs in rulesets:
                engine.evaluate(rs, f)
        done += step
        per = (time.perf_counter() - t0) / (step * len(rulesets)) * 1e6
        base = base or rss_mb()
        print(f"{done * len(rulesets):>12,} {rss_mb():>8.1f} {per:>8.1f}")
    print(
        f"RSS growth after warm-up: {rss_mb() - base:+.1f} MB "
        f"over {done * len(rulesets):,} evaluations in {time.perf_counter() - start:.0f} s"
    )
    # Versions loaded and unloaded: each a new rule set in the engine.
    source = rulesets[0].source
    before = rss_mb()
    for i in range(2000):
        rs = parse_ruleset(source + f"\n# version {i}\n", rulesets[0].path)
        engine.evaluate(rs, pool[i % len(pool)])
        engine.unload(rs)
    print(f"2,000 versions loaded, evaluated and unloaded: RSS {before:.1f} -> {rss_mb():.1f} MB")


if __name__ == "__main__":
    main()
