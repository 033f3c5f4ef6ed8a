"""GET /v1/audit/verify (in the request, or as a job for a large range) and /v1/audit/anchor:
the same results as `credo audit verify --json`; roles; hostile query values get 422."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from api_support import complete_facts
from click.testing import CliRunner

from api.cli.main import main
from api.settings import AuditSettings

PROBLEM = "application/problem+json"


def _decide(client, auth, count: int) -> list[dict]:
    made = []
    for n in range(count):
        body = {"facts": complete_facts(requested_amount=f"{500 + n}.00")}
        response = client.post("/v1/decisions/credit", json=body, headers=auth("decide"))
        assert response.status_code == 201, response.json
        made.append(response.json)
    return made


def _cli(database_url: str, *args: str) -> dict:
    result = CliRunner().invoke(
        main, ["audit", *args, "--json"], env={"CREDO_DATABASE_URL": database_url}
    )
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_a_small_range_is_verified_in_the_request_like_the_cli(client, auth, database_url, db):
    made = _decide(client, auth, 5)
    response = client.get("/v1/audit/verify", headers=auth("auditor"))
    assert response.status_code == 200, response.json
    assert response.json == _cli(database_url, "verify")
    assert response.json["ok"] and response.json["head"]["hash"] == made[-1]["hash"]
    ranged = client.get("/v1/audit/verify?from=2&to=3", headers=auth("auditor")).json
    assert (ranged["from"], ranged["to"], ranged["count"]) == (2, 3, 2)
    today = made[0]["created_at"][:10]
    by_day = client.get(f"/v1/audit/verify?from={today}&to={today}", headers=auth("auditor"))
    assert by_day.json["count"] == 5
    with db.atomic():
        db.execute_sql("UPDATE decision SET reasons = '[]' WHERE seq = 3")
    broken = client.get("/v1/audit/verify", headers=auth("auditor")).json
    assert not broken["ok"] and broken["problems_count"] == 1
    assert broken["problems"][0] == {
        "seq": 3,
        "decision_id": made[2]["decision_id"],
        "kind": "altered",
        "problem": broken["problems"][0]["problem"],
    }
    assert broken == _cli(database_url, "verify")


def test_the_anchor_endpoint_and_an_anchor_in_the_query(client, auth, db):
    made = _decide(client, auth, 4)
    anchor = client.get("/v1/audit/anchor", headers=auth("auditor")).json
    assert (anchor["seq"], anchor["hash"]) == (4, made[-1]["hash"]) and anchor["time"]
    query = f"anchor_seq=4&anchor_hash={anchor['hash']}"
    reached = client.get(f"/v1/audit/verify?{query}", headers=auth("auditor")).json
    assert reached["ok"] and reached["anchor"]["ok"]
    with db.atomic():
        db.execute_sql("DELETE FROM decision WHERE seq = 4")
    cut = client.get(f"/v1/audit/verify?{query}", headers=auth("auditor")).json
    assert not cut["ok"] and cut["problems"] == []
    assert cut["anchor"]["problem"].startswith("truncated: the chain ends at decision #3")


def test_only_auditors_and_admins_verify(client, auth):
    for role, status in (("auditor", 200), ("admin", 200), ("decide", 403), ("analyst", 403)):
        for path in ("/v1/audit/verify", "/v1/audit/anchor"):
            assert client.get(path, headers=auth(role)).status_code == status, (role, path)
    assert client.get("/v1/audit/verify").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=%00", "from"),
        ("to=%ED%A0%80", "to"),  # a lone surrogate's bytes
        ("from=99999999999999999999999", "from"),
        ("from=0", "from"),
        ("to=2024-02-30", "to"),
        ("to=9999-12-31", "to"),
        ("from=0001-01-01", "from"),
        ("from=%D9%A3", "from"),  # an Arabic-Indic digit three
        ("from==HYPERLINK(1)", "from"),
        ("from=" + "9" * 5000, "from"),
        ("from=5&to=2", "to"),
        ("anchor_seq=99999999999999999999999999&anchor_hash=" + "a" * 64, "anchor_seq"),
        ("anchor_seq=-1&anchor_hash=" + "a" * 64, "anchor_seq"),
        ("anchor_seq=1&anchor_hash=XYZ", "anchor_hash"),
        ("anchor_seq=1", "anchor_hash"),
        ("anchor_hash=" + "a" * 64, "anchor_seq"),
        ("anchor_seq=1e3&anchor_hash=" + "a" * 64, "anchor_seq"),
    ],
)
def test_hostile_query_values_get_422_naming_the_parameter(client, auth, query, field):
    response = client.get(f"/v1/audit/verify?{query}", headers=auth("auditor"))
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert field in json.dumps(response.json["errors"]), response.json


@pytest.fixture
def small_jobs_app(settings):
    from api.app import create_app

    app = create_app(replace(settings, audit=AuditSettings(verify_job_rows=3)))
    yield app
    app.extensions["credo"].database.close_all()


def test_a_large_range_runs_as_a_job_with_the_same_result(small_jobs_app, auth, database_url, db):
    client = small_jobs_app.test_client()
    made = _decide(client, auth, 5)
    direct = client.get("/v1/audit/verify?to=3", headers=auth("auditor"))
    assert direct.status_code == 200 and direct.json["count"] == 3
    query = f"anchor_seq=5&anchor_hash={made[-1]['hash']}"
    started = client.get(f"/v1/audit/verify?{query}", headers=auth("auditor"))
    assert started.status_code == 202, started.json
    assert started.headers["Location"].endswith(f"/v1/jobs/{started.json['job_id']}")
    job = _wait_ended(client, auth, started.json["job_id"])
    assert job["state"] == "finished", job
    assert job["type"] == "audit-verify"
    assert job["result"]["ok"] and job["result"]["anchor"]["ok"]
    assert job["result"] == {**_cli(database_url, "verify"), "anchor": job["result"]["anchor"]}


def _wait_ended(client, auth, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}", headers=auth("auditor"))
        if response.json["state"] in ("finished", "failed"):
            return response.json
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not done: {response.json}")
