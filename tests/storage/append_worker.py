"""Run by test_storage_concurrency: one process appending decisions as fast as it can.

Usage: python append_worker.py DATABASE_URL WORKER_NAME ROUNDS GO_FILE
Waits for GO_FILE to exist so every worker starts at once; every fifth round appends a batch
of three. Not a test module (its name does not start with test_).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from storage import decisions
from storage.db import connect


def record(worker: str, n: int) -> dict:
    return {
        "decision_id": f"{worker}-{n}",
        "kind": "reminder",
        "customer_id": worker,
        "as_of": date(2024, 4, 15),
        "outcome": {"tone": "firm"},
        "reasons": [],
        "fired": [],
        "ruleset": {"kind": "reminder", "version": 1, "sha256": "ab" * 32},
        "facts": {"n": n},
        "requested_by": worker,
        "created_at": datetime.now(UTC),
        "engine_us": 1,
        "via": "api",
        "earlier": [],
        "explanation": "Firm reminder.",
        "arm": None,
    }


def main(url: str, worker: str, rounds: int, go: str) -> None:
    connect(url)
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.002)
    for n in range(rounds):
        if n % 5 == 4:
            decisions.append_decisions([record(worker, f"{n}.{k}") for k in range(3)])
        else:
            decisions.append_decision(record(worker, n))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
