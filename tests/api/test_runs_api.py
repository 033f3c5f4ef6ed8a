"""Runs over HTTP: start one (a detached `credo run` process), read its report, collect the
worklist as JSON pages or CSV; roles, unknown runs, a run lock held elsewhere."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from api.settings import RunSettings

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 3, 2)
PROBLEM = "application/problem+json"


@pytest.fixture
def run_settings(settings):
    """One worker process and small batches: a run of a few customers takes a second."""
    return replace(settings, run=RunSettings(batch_size=4, workers=1, lease_seconds=300))


@pytest.fixture
def app(run_settings):
    from api.app import create_app

    app = create_app(run_settings)
    yield app
    app.extensions["credo"].database.close_all()


def portfolio(customers: int) -> None:
    from api.demo.portfolio import generate_portfolio
    from storage.ledger import upsert_records

    result = upsert_records(list(generate_portfolio(customers, 5, AS_OF)))
    assert not result.rejected


def wait_finished(client, auth, run_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1/runs/{run_id}", headers=auth("decide"))
        assert response.status_code == 200, response.json
        if response.json["state"] != "running":
            return response.json
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still running after {timeout} s: {response.json}")


def test_post_starts_a_run_that_finishes_and_is_listed(client, auth):
    portfolio(10)
    response = client.post("/v1/runs", json={"as_of": "2026-03-02"}, headers=auth("admin"))
    assert response.status_code == 202, response.json
    started = response.json
    assert started["as_of"] == "2026-03-02" and started["start"] == "new"
    assert started["state"] in ("running", "finished")
    assert response.headers["Location"].endswith(f"/v1/runs/{started['run_id']}")
    run = wait_finished(client, auth, started["run_id"])
    assert run["state"] == "finished", run["error"]
    report = run["report"]
    assert report["customers_evaluated"] == run["customers_total"] > 0
    assert report["errors"] == [] and set(report["decisions"]) == {"credit", "reminder", "handoff"}
    assert run["progress"]["batches_done"] == run["progress"]["batches_total"] > 1
    assert run["requested_by"] == "api:erp-admin" and run["error"] is None

    # the date's run finished: asking again answers it (200), force makes a new attempt
    again = client.post("/v1/runs", json={"as_of": "2026-03-02"}, headers=auth("admin"))
    assert again.status_code == 200 and again.json["run_id"] == started["run_id"]
    forced = client.post(
        "/v1/runs", json={"as_of": "2026-03-02", "force": True}, headers=auth("admin")
    )
    assert forced.status_code == 202, forced.json
    second = wait_finished(client, auth, forced.json["run_id"])
    assert second["attempt"] == 2 and second["report"]["previous_run_id"] == started["run_id"]

    listed = client.get("/v1/runs", headers=auth("auditor")).json
    assert [r["run_id"] for r in listed["items"]] == [second["run_id"], started["run_id"]]
    assert listed["next_before"] is None


def test_runs_are_listed_newest_first_a_page_at_a_time(client, auth, run_settings):
    from api.nightly.run import execute_run, prepare_run

    portfolio(3)
    days = [date(2026, 3, d) for d in (1, 2, 3, 4)]
    ids = {}
    for as_of in days:
        run, _ = prepare_run(run_settings, as_of, False, "test")
        ids[as_of] = execute_run(run_settings, run.run_id)["run_id"]
    rerun, _ = prepare_run(run_settings, days[1], True, "test")  # two attempts on March 2
    execute_run(run_settings, rerun.run_id)
    seen, before = [], None
    while True:
        query = {"limit": 2, **({"before": before} if before else {})}
        page = client.get("/v1/runs", query_string=query, headers=auth("decide")).json
        seen += [(r["as_of"], r["attempt"]) for r in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [
        ("2026-03-04", 1),
        ("2026-03-03", 1),
        ("2026-03-02", 2),
        ("2026-03-02", 1),
        ("2026-03-01", 1),
    ]


@pytest.fixture
def finished_run(client, auth, run_settings) -> str:
    """A run of 12 customers executed in this process (the worklist tests need no process)."""
    from api.nightly.run import execute_run, prepare_run

    portfolio(12)
    run, _ = prepare_run(run_settings, AS_OF, False, "test")
    assert execute_run(run_settings, run.run_id)["state"] == "finished"
    return run.run_id


def test_actions_filter_and_page_with_a_cursor(client, auth, finished_run):
    from storage.runs import Action

    url = f"/v1/runs/{finished_run}/actions"
    reminders = Action.select().where((Action.run == finished_run) & (Action.type == "reminder"))
    expected = sorted(a.id for a in reminders)
    assert len(expected) >= 3
    seen, cursor = [], None
    while True:
        query = {"type": "reminder", "state": "pending", "limit": 2}
        if cursor:
            query["cursor"] = cursor
        page = client.get(url, query_string=query, headers=auth("decide"))
        assert page.status_code == 200, page.json
        seen += [a["action_id"] for a in page.json["items"]]
        assert {a["type"] for a in page.json["items"]} <= {"reminder"}
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    first = client.get(url, query_string={"type": "reminder"}, headers=auth("auditor")).json
    action = first["items"][0]
    assert action["state"] == "pending" and action["payload"]["tone"] != "none"
    assert action["payload"]["message"]["subject"]
    voided = client.get(url, query_string={"state": "void"}, headers=auth("decide")).json
    assert voided == {"items": [], "next_cursor": None}


def test_actions_export_as_csv(client, auth, finished_run):
    from storage.runs import Action

    response = client.get(
        f"/v1/runs/{finished_run}/actions",
        query_string={"format": "csv", "type": "reminder"},
        headers=auth("decide"),
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    stored = {
        a.id: a
        for a in Action.select().where((Action.run == finished_run) & (Action.type == "reminder"))
    }
    assert sorted(int(r["action_id"]) for r in rows) == sorted(stored)
    for row in rows:
        payload = stored[int(row["action_id"])].payload
        assert row["type"] == "reminder" and row["state"] == "pending"
        assert row["customer_id"] == stored[int(row["action_id"])].customer_id
        assert row["tone"] == payload["tone"] and row["channel"] == payload["channel"]
        assert row["overdue_balance"] == payload["overdue_balance"]
        assert row["message_subject"] == payload["message"]["subject"]
        oldest = payload["oldest_invoice"] or {}
        assert row["oldest_invoice_id"] == oldest.get("invoice_id", "")
        assert row["oldest_invoice_due_date"] == oldest.get("due_date", "")


def test_keys_roles_unknown_runs_and_bad_arguments(client, auth, finished_run):
    paths = ["/v1/runs", f"/v1/runs/{finished_run}", f"/v1/runs/{finished_run}/actions"]
    for path in paths:
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=auth("analyst")).status_code == 403, path
        assert client.get(path, headers=auth("auditor")).status_code == 200, path
    assert client.post("/v1/runs", json={}).status_code == 401
    denied = client.post("/v1/runs", json={}, headers=auth("decide"))
    assert denied.status_code == 403 and denied.mimetype == PROBLEM
    for path in ("/v1/runs/no-such-run", "/v1/runs/no-such-run/actions", "/v1/runs/" + "x" * 300):
        missing = client.get(path, headers=auth("auditor"))
        assert missing.status_code == 404 and missing.mimetype == PROBLEM, path
        assert "no run" in missing.json["detail"]
    for body, field in (
        ({"as_of": "2026-02-30"}, "as_of"),
        ({"force": "yes"}, "force"),
        ({"as_of": "2026-03-02", "extra": 1}, "extra"),
    ):
        bad = client.post("/v1/runs", json=body, headers=auth("admin"))
        assert bad.status_code == 422 and field in bad.json["errors"], body
    actions = f"/v1/runs/{finished_run}/actions"
    for query, field in (
        ({"type": "telegram"}, "type"),
        ({"format": "xml"}, "format"),
        ({"limit": 100_000}, "limit"),
        ({"cursor": "abc"}, "cursor"),
    ):
        bad = client.get(actions, query_string=query, headers=auth("decide"))
        assert bad.status_code == 422 and field in bad.json["errors"], query


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


def test_a_run_in_progress_elsewhere_is_409_and_nothing_starts(client, auth, database_url):
    from storage.runs import Run

    portfolio(3)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, database_url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = client.post("/v1/runs", headers=auth("admin"))  # no body: today's run
        assert busy.status_code == 409 and busy.mimetype == PROBLEM
        assert "another run is in progress" in busy.json["detail"]
        assert Run.select().count() == 0
    finally:
        holder.communicate("release\n", timeout=30)
    started = client.post("/v1/runs", json={"as_of": "2026-03-02"}, headers=auth("admin"))
    assert started.status_code == 202, started.json
    assert wait_finished(client, auth, started.json["run_id"])["state"] == "finished"


def test_a_run_process_that_cannot_start_is_reported_and_nothing_is_left_behind(
    client, auth, monkeypatch
):
    """The process exits before claiming a run (here: its config file is missing): 500 with
    its last words, no run is made, and the next start makes the run."""
    from storage.runs import Run

    portfolio(3)
    monkeypatch.setenv("CREDO_CONFIG", "/nonexistent/credo.toml")
    failed = client.post("/v1/runs", json={"as_of": "2026-03-02"}, headers=auth("admin"))
    assert failed.status_code == 500 and failed.mimetype == PROBLEM
    assert "/nonexistent/credo.toml" in failed.json["detail"]
    assert Run.select().count() == 0
    monkeypatch.delenv("CREDO_CONFIG")
    started = client.post("/v1/runs", json={"as_of": "2026-03-02"}, headers=auth("admin"))
    assert started.status_code == 202 and started.json["start"] == "new"
    run = wait_finished(client, auth, started.json["run_id"])
    assert run["state"] == "finished" and run["error"] is None


def test_posts_at_once_make_one_run_and_decide_each_customer_once(app, auth, database_url):
    """Four POST /v1/runs of one date at once: one run is made and runs, the other answers
    say another run is in progress (nothing was started: no run is left failed or running)
    or give the same run; asking again answers the finished run. Each customer and kind is
    decided once."""
    import threading

    from api_support import decision_counts, writers_held

    from storage.runs import Run

    portfolio(20)
    answers = []

    def post() -> None:
        client = app.test_client()
        response = client.post("/v1/runs", json={"as_of": "2026-03-02"}, headers=auth("admin"))
        answers.append((response.status_code, response.json))

    with writers_held(database_url):
        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2)  # every request reaches the database before it lets go
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 4 and {code for code, _ in answers} <= {200, 202, 409}, answers
    started = {body["run_id"] for code, body in answers if code in (200, 202)}
    assert len(started) == 1, answers
    for code, body in answers:
        assert code != 409 or "nothing was started" in body["detail"], body
    client = app.test_client()
    run = wait_finished(client, auth, started.pop())
    runs = list(Run.select().where(Run.as_of == AS_OF))
    assert [(r.run_id, r.attempt, r.state) for r in runs] == [(run["run_id"], 1, "finished")]
    decided, pairs = decision_counts(AS_OF)
    assert decided == pairs == 3 * run["customers_total"] > 0

    again = client.post("/v1/runs", json={"as_of": "2026-03-02"}, headers=auth("admin"))
    assert again.status_code == 200 and again.json["run_id"] == run["run_id"]
    assert decision_counts(AS_OF) == (decided, pairs)


def test_the_run_process_gets_the_apps_settings(run_settings, tmp_path):
    from api.http.run_launch import child_env
    from api.settings import load_settings

    env = child_env(replace(run_settings, base_dir=tmp_path))
    loaded = load_settings(env=env)
    assert loaded.database_url == run_settings.database_url
    assert loaded.run == run_settings.run and loaded.api == run_settings.api
    assert loaded.rules_dir == run_settings.rules_dir
    assert loaded.data_dir == tmp_path / "data"
