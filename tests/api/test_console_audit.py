"""The console's audit pages through Flask's test client: the chain verified in the request and
by the API's job, the anchor, the operator log, the exports (the API's bytes). Each reads the use
case the API reads; roles and hostile values as for the rest of the console."""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import replace

import pytest
from api_support import CUSTOMER, complete_facts, invoice
from console_audit_support import (
    HOSTILE,
    OVER_LIMIT,
    decide,
    squeeze,
    tamper,
    text_of,
)
from console_support import sign_in

# ---- verify and anchor ------------------------------------------------------------------------


def test_verify_shows_ok_with_the_head_hash_and_a_tampered_decision(client, auth, keys):
    made = [decide(client, auth, "credit", **OVER_LIMIT) for _ in range(3)]
    token = sign_in(client, keys["auditor"])
    assert client.get("/console/audit").status_code == 200
    ok = client.post("/console/audit/verify", data={"csrf_token": token})
    body = ok.get_data(as_text=True)
    assert ok.status_code == 200
    assert "OK: the chain holds." in body
    assert f'<code class="hash" id="head-hash">{made[-1]["hash"]}</code>' in body
    assert "3 decisions checked (#1 to #3)" in squeeze(text_of(ok))
    assert re.search(r"<dt>Operator log</dt><dd>holds: \d+ events, head #\d+", body)
    ranged = client.post(
        "/console/audit/verify", data={"csrf_token": token, "from": "2", "to": "2"}
    )
    assert "1 decision checked (#2 to #2)" in squeeze(text_of(ranged))
    # against the anchor the anchor page shows
    anchor = client.get("/console/audit/anchor").get_data(as_text=True)
    assert f'id="anchor-hash">{made[-1]["hash"]}</code>' in anchor
    copied = re.search(r'<textarea id="anchor-json"[^>]*>([^<]*)</textarea>', anchor).group(1)
    assert json.loads(html.unescape(copied))["hash"] == made[-1]["hash"]  # as credo audit anchor
    verify_link = re.search(r'href="(/console/audit\?[^"]+)"', anchor).group(1)
    prefilled = client.get(html.unescape(verify_link)).get_data(as_text=True)
    assert f'name="anchor_hash" type="text" value="{made[-1]["hash"]}"' in prefilled
    data = {"csrf_token": token, "anchor_seq": "3", "anchor_hash": made[-1]["hash"]}
    reached = client.post("/console/audit/verify", data=data)
    assert "reached, hash matches" in reached.get_data(as_text=True)
    # a decision altered behind credo's back
    tamper(made[1]["decision_id"], "outcome", json.dumps({"decision": "approve"}))
    broken = client.post("/console/audit/verify", data={"csrf_token": token})
    body = broken.get_data(as_text=True)
    assert "BROKEN: the chain does not hold." in body
    assert f'<td>#2 <a href="/console/decisions/{made[1]["decision_id"]}">' in body
    assert client.post("/console/audit/verify", data={}).status_code == 400  # CSRF


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"from": "abc"}, "from", "expected a seq number or a date"),
        ({"from": "=1+1"}, "from", "expected a seq number or a date"),
        ({"to": "2024-02-30"}, "to", "is not a date that exists"),
        ({"to": "9" * 30}, "to", "a seq number must be from 1"),
        ({"from": "3", "to": "2"}, "to", "the range ends before it starts"),
        ({"from": "1\x00"}, "from", "expected a seq number or a date"),
        ({"anchor_seq": "1"}, "anchor_hash", "give the anchor&#39;s seq and hash together"),
        ({"anchor_hash": "a" * 64}, "anchor_seq", "give the anchor&#39;s seq and hash together"),
        ({"anchor_seq": "1e3", "anchor_hash": "a" * 64}, "anchor_seq", "expected a whole number"),
        ({"anchor_seq": "1", "anchor_hash": "A" * 64}, "anchor_hash", "64 lowercase hexadecimal"),
    ],
)
def test_bad_verify_values_are_named_beside_their_field(client, auth, keys, form, field, message):
    decide(client, auth, "credit", **OVER_LIMIT)
    token = sign_in(client, keys["auditor"])
    response = client.post("/console/audit/verify", data={"csrf_token": token, **form})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    note = re.search(rf'<p class="problem" id="f-{field}-note">([^<]*)</p>', body)
    assert note and message in note.group(1), body
    assert "OK: the chain holds" not in body


@pytest.fixture
def small_jobs(settings):
    from api.app import create_app
    from api.settings import AuditSettings

    app = create_app(replace(settings, audit=AuditSettings(verify_job_rows=2)))
    yield app
    app.extensions["credo"].database.close_all()


def test_a_large_range_is_verified_by_the_apis_job_with_a_progress_page(small_jobs, keys):
    client = small_jobs.test_client()
    headers = {"Authorization": f"Bearer {keys['decide']}"}
    made = []
    for _ in range(4):
        body = {"facts": complete_facts(**OVER_LIMIT), "as_of": "2024-05-01"}
        made.append(client.post("/v1/decisions/credit", json=body, headers=headers).json)
    token = sign_in(client, keys["auditor"])
    response = client.post("/console/audit/verify", data={"csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert re.fullmatch(r"/console/audit/verify/[0-9a-f-]{36}", location)
    from storage.jobs import get_job

    job = get_job(location.rsplit("/", 1)[1])
    assert job["type"] == "audit-verify" and job["created_by"] == "console:erp-auditor"
    deadline = time.monotonic() + 60
    while "Check again" in (page := client.get(location).get_data(as_text=True)):
        assert 'aria-label="Audit pages"' in page and "<progress" in page
        assert time.monotonic() < deadline, page
        time.sleep(0.2)
    assert "OK: the chain holds." in page
    assert f'id="head-hash">{made[-1]["hash"]}</code>' in page
    auto = client.get(location + "?auto=1").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in auto  # only while it runs
    small = client.post("/console/audit/verify", data={"csrf_token": token, "to": "2"})
    assert small.status_code == 200  # two decisions: in the request
    for bad in ("nope", "0" * 36, "%00"):
        assert client.get(f"/console/audit/verify/{bad}").status_code in (404, 422), bad


# ---- operator log -------------------------------------------------------------------------


def test_the_operator_log_is_paged_newest_first_and_filtered_by_kind(client, auth, keys):
    from storage import rulesets

    source = rulesets.get_active("reminder")["source"].replace("\n", "\n# edited\n", 1)
    body = {"source": source, "note": HOSTILE}
    drafted = client.post("/v1/rulesets/reminder/versions", json=body, headers=auth("analyst"))
    assert drafted.status_code == 201, drafted.json
    sign_in(client, keys["auditor"])
    page = client.get("/console/audit/log")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert HOSTILE not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    seqs = [int(s) for s in re.findall(r'<td class="num">(\d+)</td>', body)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) >= 6
    assert "ruleset.drafted" in body
    keys_only = client.get("/console/audit/log?kind=key").get_data(as_text=True)
    assert set(re.findall(r"<td><code>([a-z_.]+)</code></td>", keys_only)) == {"key.created"}
    assert '<option value="key" selected>' in keys_only
    from api.console import audit_records

    audit_records.PAGE_SIZE, old = 2, audit_records.PAGE_SIZE
    try:
        first = client.get("/console/audit/log?kind=key").get_data(as_text=True)
        more = re.search(r'href="(/console/audit/log\?cursor=\d+[^"]*)"', first).group(1)
        second = client.get(html.unescape(more)).get_data(as_text=True)
    finally:
        audit_records.PAGE_SIZE = old
    first_seqs = re.findall(r'<td class="num">(\d+)</td>', first)
    second_seqs = re.findall(r'<td class="num">(\d+)</td>', second)
    assert (
        len(first_seqs) == 2
        and second_seqs
        and max(map(int, second_seqs)) < min(map(int, first_seqs))
    )
    assert "kind=key" in more
    for query, field in (
        ("kind=Bad!", "kind"),
        ("kind=%00", "app"),  # refused app-wide for any address, naming the parameter
        ("from=2024-13-01", "from"),
        ("to=x", "to"),
        ("actor=%ED%A0%80", "app"),  # bytes that are not UTF-8
        ("actor=" + "x" * 300, None),  # cut at 200 characters: no such actor
    ):
        response = client.get(f"/console/audit/log?{query}")
        if field is None:
            assert response.status_code == 200 and "No event matches." in response.get_data(
                as_text=True
            )
            continue
        assert response.status_code == 422, query
        page = response.get_data(as_text=True)
        assert f'id="f-{field}-note"' in page or field == "app", query


# ---- exports ------------------------------------------------------------------------------


def read(client, path: str, headers: dict | None = None):
    """A streamed response read to its end and closed (its request context popped)."""
    with client.get(path, headers=headers or {}) as response:
        response.get_data()
    return response


def test_exports_are_the_apis_bytes_and_name_the_customer_as_text(client, auth, keys):
    records = [
        {"type": "customer", "id": "EVIL1", **CUSTOMER, "name": HOSTILE},
        {"type": "invoice", **invoice("I1", "EVIL1", "2024-02-01", "2024-03-02", "950.00")},
        {"type": "customer", "id": "@SUM(A1)", **CUSTOMER},
    ]
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 200, response.json
    for customer_id in ("EVIL1", "@SUM(A1)"):
        body = {"customer_id": customer_id, "as_of": "2024-05-01"}
        made = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
        assert made.status_code == 201, made.json
    decide(client, auth, "credit", **OVER_LIMIT)
    sign_in(client, keys["auditor"])
    page = client.get("/console/audit/export?customer=EVIL1&kind=reminder")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert HOSTILE not in text and "(&lt;script&gt;alert(1)&lt;/script&gt;)" in text
    query = "customer=EVIL1&kind=reminder&from=2000-01-01&to=2199-12-31"
    chosen = client.get(f"/console/audit/export?{query}").get_data(as_text=True)
    for fmt, label in (("csv", "Download CSV"), ("jsonl", "Download JSON lines")):
        link = re.search(rf'href="([^"]+)" download>{label}</a>', chosen).group(1)
        assert link.startswith(f"/console/audit/export/{fmt}?")
        mine = read(client, html.unescape(link))
        api = read(client, f"/v1/audit/export?format={fmt}&{query}", auth("auditor"))
        assert mine.status_code == 200 and api.status_code == 200
        assert mine.data == api.data and mine.data
        assert mine.mimetype == api.mimetype
        assert mine.headers["Content-Disposition"] == f'attachment; filename="decisions.{fmt}"'
    every = read(client, "/console/audit/export/csv").data.decode()
    assert every == read(client, "/v1/audit/export?format=csv", auth("auditor")).data.decode()
    assert ",'@SUM(A1)," in every and ",@SUM(A1)," not in every  # neutralised
    assert len(every.strip().split("\r\n")) == 4  # the header and three decisions
    for query, field in (
        ("customer=%00", "app"),
        ("customer=a%09b", "app"),
        ("customer=" + "x" * 100, "customer"),
        ("kind=Bad!", "kind"),
        ("from=2024-02-30", "from"),
        ("to=%3D1%2B1", "to"),
    ):
        for path in ("/console/audit/export", "/console/audit/export/csv"):
            response = read(client, f"{path}?{query}")
            assert response.status_code == 422, (path, query)
            assert response.mimetype == "text/html"
            page = response.get_data(as_text=True)
            assert f'id="f-{field}-note"' in page or field == "app", (path, query)
    assert client.get("/console/audit/export/xlsx").status_code == 404


def test_audit_pages_are_for_auditors_and_others_are_told_what_an_auditor_adds(client, keys):
    analyst = client.application.test_client()
    sign_in(analyst, keys["analyst"])
    home = analyst.get("/console/").get_data(as_text=True)
    assert "A key of role <strong>auditor</strong> adds <strong>Audit</strong>" in home
    for path in ("/console/audit", "/console/audit/anchor", "/console/audit/log"):
        response = analyst.get(path)
        assert response.status_code == 403, path
    sign_in(client, keys["auditor"])
    page = client.get("/console/audit/log").get_data(as_text=True)
    assert "This page is for <strong>auditor</strong> keys (and admin)." in page
    nav = re.search(r'<nav aria-label="Sections">.*?</nav>', page, re.S).group(0)
    assert ">Audit</a>" in nav
