"""The nightly run: resumable, single-flight, every customer once, errors recorded, cadence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from api.nightly.run import RunError, StopFlag, execute_run, prepare_run
from api.settings import RunSettings

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 3, 2)


def portfolio(customers: int, seed: int = 3) -> None:
    from api.demo.portfolio import generate_portfolio
    from storage.ledger import upsert_records

    batch: list[dict] = []
    for record in generate_portfolio(customers, seed, AS_OF):
        batch.append(record)
        if len(batch) >= 2000:
            upsert_records(batch)
            batch = []
    if batch:
        upsert_records(batch)


def small(settings, batch_size: int = 10, workers: int = 1):
    return replace(
        settings, run=RunSettings(batch_size=batch_size, workers=workers, lease_seconds=300)
    )


def run_once(settings, as_of=AS_OF, force=False, workers=1):
    run, status = prepare_run(settings, as_of, force, "test")
    if status == "finished":
        return run.run_id, None
    return run.run_id, execute_run(settings, run.run_id, workers=workers)


def results_of(run_id: str) -> list[tuple[str, str]]:
    from storage.runs import RunResult

    return [(r.customer_id, r.kind) for r in RunResult.select().where(RunResult.run == run_id)]


def test_a_run_evaluates_every_open_customer_once(settings):
    portfolio(40)
    settings = small(settings)
    run_id, result = run_once(settings)
    report = result["report"]
    from storage.ledger import iter_open_customer_ids

    expected = [c for ids in iter_open_customer_ids(1000, as_of=AS_OF) for c in ids]
    seen = results_of(run_id)
    assert len(seen) == len(set(seen)) == 3 * len(expected)
    assert {c for c, _ in seen} == set(expected)
    assert report["customers_evaluated"] == len(expected) and report["errors_count"] == 0
    assert set(report["decisions"]) == {"credit", "reminder", "handoff"}
    by_currency = report["portfolio"]["by_currency"]
    assert all(figures["dso_days"] is not None for figures in by_currency.values())
    assert "open_balance" not in report["portfolio"]  # never a sum across currencies
    # the same date again does nothing; --force makes a new attempt
    assert run_once(settings)[1] is None
    forced, result = run_once(settings, force=True)
    assert forced != run_id and result["attempt"] == 2
    assert result["report"]["previous_run_id"] == run_id


def test_the_decision_chain_verifies_after_a_run(settings):
    from storage.decisions import verify_chain
    from storage.models import Decision

    portfolio(15)
    run_once(small(settings, batch_size=4), workers=1)
    assert verify_chain() == []
    assert {d.via for d in Decision.select(Decision.via)} == {"run"}


def test_a_customer_with_broken_data_is_recorded_and_the_run_goes_on(settings, db):
    portfolio(12)
    # An amount beyond what the engine takes, written past the import's validation.
    from storage.db import is_postgres
    from storage.models import Invoice

    victim = Invoice.select().order_by(Invoice.id).first()
    if is_postgres():  # numeric(14, 2) refuses 9e16 but takes NaN
        db.execute_sql("UPDATE invoice SET amount = 'NaN' WHERE id = %s", (victim.id,))
    else:
        Invoice.update(amount=9 * 10**16).where(Invoice.id == victim.id).execute()
    run_id, result = run_once(small(settings))
    report = result["report"]
    assert [e["customer_id"] for e in report["errors"]] == [victim.customer_id]
    assert report["errors"][0]["error"]
    assert victim.customer_id not in {c for c, _ in results_of(run_id)}
    assert report["customers_evaluated"] >= 5


def test_two_runs_started_at_once_only_one_runs(settings, database_url):
    """Another process holds the run lock: a second starter exits with a clear message."""
    portfolio(5)
    run, _ = prepare_run(settings, AS_OF, False, "test")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, database_url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match="another run is in progress"):
            execute_run(small(settings), run.run_id)
    finally:
        holder.communicate("release\n", timeout=30)
    assert execute_run(small(settings), run.run_id)["state"] == "finished"


HOLD_LOCK = """
import sys
from storage.db import connect
from storage.nightly import owner_id, release_run_lock, try_run_lock
connect(sys.argv[1])
assert try_run_lock(owner_id(), ttl_seconds=60)
print("locked", flush=True)
sys.stdin.readline()
release_run_lock(owner_id())
"""


def test_a_stop_request_checkpoints_and_the_run_resumes(settings):
    portfolio(30)
    settings = small(settings, batch_size=5)
    run, _ = prepare_run(settings, AS_OF, False, "test")
    stop = StopFlag()
    calls = []

    def progress(state):
        calls.append(state)
        stop.stopped = True  # as SIGTERM does, after the first batch

    stopped = execute_run(settings, run.run_id, 1, progress, stop)
    assert stopped["state"] == "running" and len(calls) == 1
    assert len(set(results_of(run.run_id))) == 3 * calls[0]["customers_done"]
    resumed = execute_run(settings, run.run_id, 1)
    seen = results_of(run.run_id)
    assert resumed["state"] == "finished" and len(seen) == len(set(seen))
    assert resumed["report"]["customers_evaluated"] * 3 == len(seen)


def test_reminder_cadence_over_consecutive_nights(settings):
    """A reminder is due, the ERP sends it, and the same tone is not asked for again within
    the cadence; when the account ages into the next tone, the next reminder is asked for."""
    from storage.ledger import upsert_records
    from storage.worklist import iter_actions

    upsert_records(
        [
            {
                "type": "customer",
                "id": "K1",
                "name": "Kadence GmbH",
                "currency": "EUR",
                "credit_limit": "10000",
                "since": "2020-01-01",
                "country": "DE",
            },
            {
                "type": "invoice",
                "id": "K1-1",
                "customer_id": "K1",
                "issue_date": "2026-01-01",
                "due_date": "2026-01-31",
                "amount": "1200.00",
            },
        ]
    )
    tones = {}
    for offset in range(0, 22):
        day = date(2026, 2, 3) + timedelta(days=offset)
        run_id, result = run_once(small(settings), as_of=day)
        reminders = [a for a in iter_actions(run_id, "reminder")]
        tones[day] = [a.payload["tone"] for a in reminders]
        for action in reminders:  # the ERP sends it and acknowledges with a contact
            upsert_records(
                [
                    {
                        "type": "reminder",
                        "id": f"C-{day}",
                        "customer_id": "K1",
                        "date": day.isoformat(),
                        "tone": action.payload["tone"],
                    }
                ]
            )
    asked = {day: t for day, t in tones.items() if t}
    friendly_days = [d for d, t in asked.items() if t == ["friendly"]]
    assert friendly_days[0] == date(2026, 2, 3)
    assert all((b - a).days >= 7 for a, b in zip(friendly_days, friendly_days[1:], strict=False))
    assert any(t == ["firm"] for t in asked.values())  # 15+ days late: firm, sent at once
    assert len(asked) < len(tones) / 2


@pytest.mark.skipif(sys.platform != "linux", reason="uses POSIX signals")
def test_resume_after_sigkill_mid_run(settings, database_url, tmp_path):
    portfolio(120)
    env = {
        **os.environ,
        "CREDO_DATABASE_URL": database_url,
        "CREDO_RUN_BATCH_SIZE": "5",
        "CREDO_RUN_WORKERS": "1",
        "CREDO_PATHS_RULES_DIR": str(ROOT / "rules"),
    }
    cmd = [sys.executable, "-m", "api", "run", "--as-of", AS_OF.isoformat(), "--json"]
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    from storage.nightly import latest_run
    from storage.runs import RunBatch

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = latest_run(AS_OF)
        if (
            run
            and RunBatch.select()
            .where((RunBatch.run == run.run_id) & (RunBatch.state == "done"))
            .count()
            >= 2
        ):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = latest_run(AS_OF)
    assert run.state == "running"
    done_before = len(results_of(run.run_id))
    assert 0 < done_before < 3 * run.customers_total
    finished = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    seen = results_of(run.run_id)
    assert len(seen) == len(set(seen)) == 3 * run.customers_total


def test_two_worker_processes_share_one_run_on_postgresql(settings, database_url):
    from storage.db import is_postgres
    from storage.runs import RunBatch

    if not is_postgres():
        pytest.skip("worker processes claim batches themselves on PostgreSQL only")
    portfolio(90)
    settings = small(settings, batch_size=2)
    run, _ = prepare_run(settings, AS_OF, False, "test")
    env = {
        **os.environ,
        "CREDO_DATABASE_URL": database_url,
        "CREDO_RUN_BATCH_SIZE": "2",
        "CREDO_PATHS_RULES_DIR": str(ROOT / "rules"),
    }
    cmd = [sys.executable, "-m", "api", "run", "--as-of", AS_OF.isoformat(), "--join"]
    workers = [
        subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL) for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=180) == 0
    owners = {b.lease_owner for b in RunBatch.select().where(RunBatch.run == run.run_id)}
    assert len(owners) == 2
    result = execute_run(settings, run.run_id, workers=1)
    seen = results_of(run.run_id)
    assert result["state"] == "finished"
    assert len(seen) == len(set(seen)) == 3 * run.customers_total


def test_local_worker_processes_give_the_same_decisions(settings):
    """Several processes (SQLite: a coordinator writing, workers computing) decide exactly
    what one process decides."""
    from storage.models import Decision

    portfolio(30)
    settings = small(settings, batch_size=4)
    one, _ = run_once(settings, workers=1)
    two, _ = run_once(settings, force=True, workers=2)

    def outcomes(run_id):
        return sorted(
            (d.customer_id, d.kind, json_dumps(d.outcome), json_dumps(d.fired))
            for d in Decision.select().where(Decision.requested_by == f"run:{run_id}")
        )

    assert outcomes(one) == outcomes(two) and outcomes(one)


def json_dumps(value) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def test_the_scheduler_fires_a_run_on_its_cron(settings):
    import threading

    from api.nightly.scheduler import run_scheduler
    from api.settings import SchedulerSettings
    from storage.nightly import latest_run

    portfolio(6)
    settings = replace(
        small(settings),
        scheduler=SchedulerSettings(cron="*/2 * * * * *", timezone="UTC", misfire_grace_seconds=1),
    )
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(settings, stop), daemon=True)
    thread.start()
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    deadline = time.monotonic() + 60
    run = None
    while time.monotonic() < deadline:
        run = latest_run(today)
        if run is not None and run.state == "finished":
            break
        time.sleep(0.2)
    stop.set()
    thread.join(timeout=60)
    assert run is not None and run.state == "finished"
    assert run.requested_by == "scheduler" and run.report["customers_evaluated"] > 0


def test_a_failing_reminder_template_costs_only_its_messages(settings):
    """Every reminder text of the active version recurses endlessly: the customers keep all
    their decisions, the reminders are in the worklist with the render error, and the report
    lists them. (The version is stored directly: the lifecycle refuses texts that fail on its
    sample accounts, but a text may still fail on an account the samples do not have.)"""
    from storage import rulesets
    from storage.worklist import iter_actions

    broken = {
        path: "Subject: x\n{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}\n"
        if path.startswith("reminder/") and not path.startswith("reminder/_")
        else text
        for path, text in rulesets.get_files("reminder", 1).items()
    }
    active = rulesets.get_active("reminder")
    rulesets.create_version(
        "reminder", active["source"], active["sha256"], created_by="t", state="active", files=broken
    )
    settings = small(settings)
    portfolio(40)
    run_id, result = run_once(settings)
    report = result["report"]
    reminders = list(iter_actions(run_id, "reminder"))
    assert reminders and report["errors"] == [] and report["errors_count"] == 0
    kinds: dict[str, set[str]] = {}
    for customer_id, kind in results_of(run_id):
        kinds.setdefault(customer_id, set()).add(kind)
    for action in reminders:
        assert kinds[action.customer_id] == {"credit", "reminder", "handoff"}
        assert "message" not in action.payload
        assert "line 2: recursion too deep" in action.payload["message_error"]
    assert report["message_errors_count"] == len(reminders)
    listed = {(e["customer_id"], e["template"]) for e in report["message_errors"]}
    assert listed == {(a.customer_id, a.payload["message_template"]) for a in reminders}
    assert sum(report["message_errors_by_template"].values()) == len(reminders)


def run_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CREDO_DATABASE_URL": database_url,
        "CREDO_RUN_BATCH_SIZE": "5",
        "CREDO_RUN_WORKERS": "1",
        "CREDO_PATHS_RULES_DIR": str(ROOT / "rules"),
        **extra,
    }


def test_runs_started_at_once_make_one_run_and_decide_each_customer_once(settings, database_url):
    """Three `credo run` of one date released together: one claims the date and runs it, the
    others find the lock taken (exit 2) or the run finished (exit 0) and make nothing; the next
    start of the date finds it finished. Each customer and kind is decided once."""
    from api_support import decision_counts, wait_until_held_back, writers_held

    from storage.runs import Run

    portfolio(30)
    cmd = [sys.executable, "-m", "api", "run", "--as-of", AS_OF.isoformat()]
    env = run_env(database_url)
    with writers_held(database_url):
        starters = [
            subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        wait_until_held_back(starters, database_url)
    outcomes = [(p.communicate(timeout=180)[1], p.returncode)[::-1] for p in starters]
    assert sorted(code for code, _ in outcomes)[0] == 0, outcomes
    for code, err in outcomes:
        assert code == 0 or (code == 2 and "another run is in progress" in err), outcomes
    runs = list(Run.select().where(Run.as_of == AS_OF))
    assert [(r.attempt, r.state) for r in runs] == [(1, "finished")]
    decided, pairs = decision_counts(AS_OF)
    assert decided == pairs == 3 * runs[0].customers_total > 0

    again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already finished" in again.stdout, again.stderr
    assert decision_counts(AS_OF) == (decided, pairs)
    assert Run.select().where(Run.as_of == AS_OF).count() == 1


@pytest.mark.skipif(sys.platform != "linux", reason="uses POSIX signals and /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_end_with_the_run_process(settings, database_url, sig):
    """The process of `credo run` is killed or stopped mid-run: its worker processes end with
    it, and no batch is committed once it is gone (on PostgreSQL workers commit batches)."""
    from storage.models import Decision
    from storage.nightly import latest_run
    from storage.runs import RunBatch

    portfolio(150)
    env = run_env(database_url, CREDO_RUN_BATCH_SIZE="3", CREDO_RUN_WORKERS="2")
    cmd = [sys.executable, "-m", "api", "run", "--as-of", AS_OF.isoformat()]
    main = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and main.poll() is None:
        run = latest_run(AS_OF)
        done = (
            run
            and RunBatch.select()
            .where((RunBatch.run == run.run_id) & (RunBatch.state == "done"))
            .count()
        )
        workers = children(main.pid)
        if done and len(workers) >= 1:
            break
        time.sleep(0.05)
    assert main.poll() is None and workers, "the run ended before it could be stopped"
    main.send_signal(sig)
    main.wait(timeout=120)
    stored = Decision.select().count()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not [pid for pid in workers if alive(pid)], "worker processes outlived the run's"
    time.sleep(1.0)
    assert Decision.select().count() == stored
    assert latest_run(AS_OF).state == "running"  # resumable


def children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_run_stopped_while_listing_its_customers_lists_them_again(settings, monkeypatch):
    """The listing is committed a few hundred batches at a time: a run whose listing stopped
    halfway is not executed as it is, but listed again, and every customer decided once."""
    from storage.ledger import iter_open_customer_ids
    from storage.nightly import create_run, owner_id, plan_run
    from storage.runs import RunBatch

    portfolio(40)
    settings = small(settings, batch_size=2)
    run = create_run(AS_OF, "test", pinned_versions(), 2)

    def broken():
        for number, ids in enumerate(iter_open_customer_ids(2, as_of=AS_OF)):
            if number == 3:
                raise OSError("power cut")
            yield ids

    monkeypatch.setattr("storage.nightly.PLAN_ROWS_PER_COMMIT", 2)
    with pytest.raises(OSError):
        plan_run(run.run_id, broken(), owner_id())
    assert RunBatch.select().where(RunBatch.run == run.run_id).count() == 2
    run_id, result = run_once(settings)
    assert run_id == run.run_id and result["state"] == "finished"
    seen = results_of(run_id)
    expected = [c for ids in iter_open_customer_ids(1000, as_of=AS_OF) for c in ids]
    assert len(seen) == len(set(seen)) == 3 * len(expected) == 3 * result["customers_total"]


def pinned_versions() -> dict:
    from storage.rulesets import list_active

    return {r["kind"]: {"version": r["version"], "sha256": r["sha256"]} for r in list_active()}
