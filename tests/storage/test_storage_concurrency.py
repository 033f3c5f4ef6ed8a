"""Several real processes append decisions at once: the chain stays one line, with no fork."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from storage import decisions
from storage.models import Decision

WORKERS = 4
ROUNDS = 40  # every fifth round is a batch of three
PER_WORKER = ROUNDS + 2 * (ROUNDS // 5)


def test_concurrent_appends_from_several_processes_keep_one_chain(db, database_url, tmp_path):
    go = tmp_path / "go"
    script = Path(__file__).with_name("append_worker.py")
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), database_url, f"w{i}", str(ROUNDS), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        go.touch()  # every worker is connected and waiting: they start at once
        for worker in workers:
            _out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    rows = list(
        Decision.select(Decision.seq, Decision.prev_hash, Decision.hash).order_by(Decision.seq)
    )
    assert len(rows) == WORKERS * PER_WORKER
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert len({r.prev_hash for r in rows}) == len(rows)  # nobody shares a predecessor: no fork
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    assert decisions.verify_chain() == []
