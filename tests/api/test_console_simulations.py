"""Simulate and backtest in the console: started through the API's use case as a real job (a
`credo jobs work` process), the job page while it runs (progress, checked again by a link or,
when asked, a meta refresh) and once finished (the matrix of each field as a table and a chart,
the money per cell and currency, the changed customers by page); bad form values named beside
their field; roles and CSRF."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from console_support import sign_in
from simulation_support import (
    AS_OF,
    EXPECTED_MATRIX,
    store_decisions,
    store_portfolio,
    store_tone_versions,
)

from api.settings import RunSettings

HOSTILE = "<script>alert(1)</script>"
SIMULATE = "/console/rulesets/tone/versions/2/simulate"


@pytest.fixture
def app(settings):
    from api.app import create_app

    store_tone_versions()
    store_portfolio()
    app = create_app(replace(settings, run=RunSettings(batch_size=500, workers=1)))
    yield app
    app.extensions["credo"].database.close_all()


@pytest.fixture
def analyst(app, keys):
    client = app.test_client()
    return client, sign_in(client, keys["analyst"])


def ended(client, location: str, timeout: float = 60) -> str:
    """The job page once the job has finished or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(location)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        if "Check again" not in html:
            return html
        time.sleep(0.2)
    raise AssertionError(f"{location} still running after {timeout} s")


def job_of(location: str) -> dict:
    from storage.jobs import get_job

    return get_job(location.rsplit("/", 1)[1].split("?")[0])


def test_a_simulation_runs_as_the_apis_job_and_shows_matrix_chart_money_and_changes(
    analyst, client, auth
):
    from datetime import date
    from decimal import Decimal

    from storage.ledger import upsert_records

    hostile = {"type": "customer", "id": "E3", "name": HOSTILE, "currency": "EUR"}
    upsert_records([{**hostile, "credit_limit": Decimal("10000"), "since": date(2020, 1, 1)}])
    alice, token = analyst
    response = alice.post(SIMULATE, data={"csrf_token": token, "as_of": AS_OF.isoformat()})
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert re.fullmatch(r"/console/jobs/[0-9a-f-]{36}", location)
    html = ended(alice, location)
    job = job_of(location)
    assert job["state"] == "finished", job["error"]
    # the same job the API starts, its result read by GET /v1/jobs/{id}
    assert job["params"] == {
        "kind": "tone", "version": 2, "as_of": "2024-06-30", "sample": None, "seed": 1
    }  # fmt: skip
    assert job["created_by"] == "console:erp-analyst"
    api = client.get(f"/v1/jobs/{job['job_id']}", headers=auth("auditor")).json
    assert api["result"]["matrix"] == EXPECTED_MATRIX
    assert "6 customers evaluated: <strong>3</strong> change outcome" in html
    # the matrix of tone as a table: firm → final 2, friendly → none 1
    table = re.search(r"<caption>tone: customers by old value.*?</table>", html, re.S).group(0)
    rows = {
        m.group(1): re.findall(r'<td class="num[^"]*">(?:<span class="muted">)?([^<]+)', m.group(2))
        for m in re.finditer(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', table, re.S)
    }
    assert rows == {
        "none": ["1", "–", "–", "–", "1"],
        "friendly": ["1", "1", "–", "–", "2"],
        "firm": ["–", "–", "1", "2", "3"],
    }
    assert '<td class="num changed">2</td>' in table
    # a chart per field, a bar per old value cut by new value
    assert html.count("<svg") == 2
    assert html.index("<code>tone</code>: 3 changes") < html.index("<code>channel</code>: 2")
    assert html.count('class="flow series-3"') == 1  # firm → final, the 4th value's colour
    assert "<title>firm → final: 2</title>" in html
    # the money behind each cell, per currency
    assert re.search(
        r"<td>firm</td><td>final <span class=\"tag\">changes</span></td><td>GBP</td>"
        r'<td class="num">1</td><td class="num">1,000.00</td><td class="num">1,000.00</td>',
        html,
    )
    # the changed customers, with their name escaped, old and new outcome and reasons
    changes = html[html.index('id="changed"') :]
    assert changes.count("<tr>") == 1 + 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in changes and HOSTILE not in html
    assert "75 days late: final letter" in changes and "75 days late: firm" in changes
    assert '<span class="pill changed">tone: final</span>' in changes
    assert 'href="/console/customers/E3"' in changes


def test_the_job_page_while_running_shows_progress_and_refreshes_only_when_asked(app, keys):
    from storage.jobs import create_job, record_progress, take_job

    params = {"kind": "tone", "version": 2, "as_of": "2024-06-30", "sample": None, "seed": 1}
    job = create_job("simulate", params, "test")  # stored, no process: it stays queued
    auditor = app.test_client()
    sign_in(auditor, keys["auditor"])
    html = auditor.get(f"/console/jobs/{job['job_id']}").get_data(as_text=True)
    assert "Waiting for its process to start" in html
    assert 'http-equiv="refresh"' not in html  # axe: a timed refresh only when asked for
    take_job(job["job_id"])
    record_progress(job["job_id"], 500, 2000)
    html = auditor.get(f"/console/jobs/{job['job_id']}?auto=1").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="3">' in html
    assert "Running: 500 of 2000 customers evaluated." in html
    assert '<progress id="job-progress" max="2000" value="500">' in html
    assert "Stop checking every 3 seconds" in html
    from storage.jobs import fail_job

    fail_job(job["job_id"], "rule set tone has no version 2 <b>")
    html = auditor.get(f"/console/jobs/{job['job_id']}?auto=1").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in html
    assert "The simulation failed: rule set tone has no version 2 &lt;b&gt;" in html
    for job_id in ("0" * 36, "nope", "a" * 5000, "%00" * 36):
        assert auditor.get(f"/console/jobs/{job_id}").status_code in (404, 422), job_id


def test_changes_are_listed_a_page_at_a_time(app, keys, monkeypatch):
    from api.console import simulations
    from storage.jobs import create_job, finish_job, take_job

    changed = [
        {
            "customer_id": f"C{n:03}",
            "currency": "EUR",
            "open_balance": "10.00",
            "overdue_balance": "5.00",
            "from": {"outcome": {"tone": "firm"}, "reasons": [f"r{n}"], "fired": ["T-20"]},
            "to": {"outcome": {"tone": "final"}, "reasons": [], "fired": []},
        }
        for n in range(60)
    ]
    result = {
        "type": "simulate", "kind": "tone", "as_of": "2024-06-30", "customers": 400,
        "candidate": {"version": 2}, "active": {"version": 1}, "evaluated": 400,
        "changed_count": 250, "matrix": {}, "changed": changed, "errors_count": 0, "errors": [],
    }  # fmt: skip
    params = {"kind": "tone", "version": 2, "as_of": "2024-06-30", "sample": None, "seed": 1}
    job = create_job("simulate", params, "test")
    take_job(job["job_id"])
    finish_job(job["job_id"], result)
    auditor = app.test_client()
    sign_in(auditor, keys["auditor"])
    page = auditor.get(f"/console/jobs/{job['job_id']}?page=3").get_data(as_text=True)
    assert "51–60 of 60 listed (the first 60 of 250 by customer id" in page
    assert "C050" in page and "C049" not in page and "page 3 of 3" in page
    assert "Next page" not in page and "?page=2#changed" in page
    for bad in ("0", "-1", "99999", "x", "\u0663", "9" * 5000):
        response = auditor.get(f"/console/jobs/{job['job_id']}?page={bad}")
        assert response.status_code == 200 and "page 1 of 3" in response.get_data(as_text=True)
    # a NUL is refused by the app's check of URL text, as an error page
    response = auditor.get(f"/console/jobs/{job['job_id']}?page=%00")
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert simulations.CHANGED_PER_PAGE == 25


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"as_of": "2024-02-30"}, "as_of", "not a date that exists"),
        ({"as_of": "=1+1"}, "as_of", "not a date written YYYY-MM-DD"),
        ({"as_of": "\ud800"}, "as_of", "not a date written YYYY-MM-DD"),
        ({"as_of": "2024-06-30\x00"}, "as_of", "not a date written YYYY-MM-DD"),
        ({"sample": "0"}, "sample", "greater than or equal to 1"),
        ({"sample": "9" * 5000}, "sample", "less than or equal to 1000000"),
        ({"sample": "2.5"}, "sample", "Not a valid integer"),
        ({"seed": "-1"}, "seed", "greater than or equal to 0"),
        ({"seed": "@SUM(A1)"}, "seed", "Not a valid integer"),
    ],
)
def test_bad_simulation_values_are_named_beside_their_field(analyst, form, field, message):
    from storage.jobs import Job

    alice, token = analyst
    # as a browser sends it: a lone surrogate as the bytes of its (invalid) UTF-8
    body = urlencode({"csrf_token": token, **form}, errors="surrogatepass")
    response = alice.post(SIMULATE, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    note = re.search(rf'<p class="problem" id="f-{field}-note">([^<]*)</p>', html)
    assert note and message in note.group(1), html
    assert Job.select().count() == 0


def test_refusals_of_the_use_case_are_shown_on_the_version_page(analyst):
    from simulation_support import TONE_V2

    from engine.ruleset import sha256_of
    from storage.jobs import Job
    from storage.rulesets import create_version

    alice, token = analyst
    response = alice.post("/console/rulesets/tone/versions/9/simulate", data={"csrf_token": token})
    assert response.status_code == 404
    assert "rule set tone has no version 9" in response.get_data(as_text=True)
    source = TONE_V2.replace('kind = "tone"', 'kind = "orphan"')
    create_version("orphan", source, sha256_of(source), created_by="test")
    response = alice.post(
        "/console/rulesets/orphan/versions/1/simulate", data={"csrf_token": token}
    )
    assert response.status_code == 409
    assert "no active version to compare with" in response.get_data(as_text=True)
    response = alice.post(
        "/console/rulesets/tone/versions/2/backtest",
        data={"csrf_token": token, "from": "2024-06-30", "to": "2024-06-01"},
    )
    assert response.status_code == 422
    assert "must be on or before to" in response.get_data(as_text=True)
    assert Job.select().count() == 0


def test_a_backtest_lists_the_decisions_decided_differently(analyst):
    store_decisions()
    alice, token = analyst
    response = alice.post(
        "/console/rulesets/tone/versions/2/backtest",
        data={"csrf_token": token, "from": "2024-06-01", "to": "2024-06-30"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    html = ended(alice, response.headers["Location"])
    assert "Decisions decided differently" in html
    assert "<caption>tone: decisions by old value (rows) and new value (columns)" in html
    changes = html[html.index('id="changed"') :]
    assert changes.count('href="/console/decisions/') == 4  # as the API's backtest finds
    assert "facts given" in changes


def test_the_editor_stores_a_draft_and_starts_its_simulation(analyst):
    from simulation_support import TONE_V2

    alice, token = analyst
    changed = TONE_V2.replace("> 60", "> 70")
    response = alice.post(
        "/console/rulesets/tone/draft",
        data={"csrf_token": token, "source": changed, "note": "later", "then": "simulate"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    job = job_of(response.headers["Location"])
    assert job["type"] == "simulate" and job["params"]["version"] == 3
    ended(alice, response.headers["Location"])


def test_only_analysts_start_and_analysts_or_auditors_read(app, keys):
    from storage.jobs import Job

    for role in ("approver", "auditor", "decide"):
        client = app.test_client()
        token = sign_in(client, keys[role])
        assert client.post(SIMULATE, data={"csrf_token": token}).status_code == 403, role
        if role != "decide":  # which reads no rule sets
            page = client.get("/console/rulesets/tone?version=2").get_data(as_text=True)
            assert "Simulate" not in page and "Backtest" not in page, role
    client = app.test_client()
    sign_in(client, keys["analyst"])
    assert client.post(SIMULATE, data={"csrf_token": "forged"}).status_code == 400
    assert client.post(SIMULATE, data={}).status_code == 400
    assert Job.select().count() == 0
