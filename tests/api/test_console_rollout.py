"""Rolling a version out from the console: the rule-set list shows a pending activation and a
challenger; an approver activates an approved version at a time (UTC) and cancels it saying
why, through the API's use cases; bad times and a missing note are named beside their field;
the experiment's report compares champion and challenger."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from console_support import sign_in
from lifecycle_support import make_people
from rollout_support import BASE, add_customers, approved_version

HOSTILE = "<script>alert(1)</script>"
VERSION_PAGE = "/console/rulesets/reminder?version={}"


@pytest.fixture
def people(app):
    keys = make_people()
    clients = {}
    for name in ("bob-approver", "alice-analyst", "dave-auditor"):
        client = app.test_client()
        clients[name] = (client, sign_in(client, keys[name]))
    return clients, lambda name: {"Authorization": f"Bearer {keys[name]}"}


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(True))))


def test_an_approver_activates_at_a_time_and_cancels_saying_why(client, people):
    clients, as_ = people
    version = approved_version(client, as_)
    bob, token = clients["bob-approver"]
    page = bob.get(VERSION_PAGE.format(version)).get_data(as_text=True)
    assert 'type="datetime-local"' in page and "Activate at (UTC)" in page
    at = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    form = {"csrf_token": token, "rollout_at": at.strftime("%Y-%m-%dT%H:%M"), "rollout_note": ""}
    moved = bob.post(f"/console/rulesets/reminder/versions/{version}/activate-at", data=form)
    assert moved.status_code == 302, moved.get_data(as_text=True)
    pending = client.get(f"{BASE}/versions/{version}", headers=as_("dave-auditor")).json
    assert pending["state"] == "approved"
    assert datetime.fromisoformat(pending["activate_at"]) == at  # the form's time read as UTC
    listed = _text(bob.get("/console/rulesets"))
    assert f"v{version} at {at.strftime('%Y-%m-%d %H:%M')} UTC" in listed
    page = bob.get(VERSION_PAGE.format(version))
    shown = _text(page)
    assert f"Version {version} becomes active at {at.strftime('%Y-%m-%d %H:%M:%S')} UTC." in shown
    assert "Schedule for this time" not in shown  # one pending activation per kind
    # the cancel needs a note, said beside the field; with it, the version stays approved
    cancel = f"/console/rulesets/reminder/versions/{version}/cancel"
    refused = bob.post(cancel, data={"csrf_token": token, "cancel_note": "  "})
    assert refused.status_code == 422
    assert re.search(r'id="f-cancel_note-note">[^<]*say why', refused.get_data(as_text=True))
    done = bob.post(cancel, data={"csrf_token": token, "cancel_note": HOSTILE})
    assert done.status_code == 302
    after = bob.get(done.headers["Location"])
    body = after.get_data(as_text=True)
    assert "stays approved: its pending activation was cancelled" in body
    assert HOSTILE not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # the note
    state = client.get(f"{BASE}/versions/{version}", headers=as_("dave-auditor")).json
    assert (state["state"], state["activate_at"]) == ("approved", None)
    events = [e["event"] for e in state["events"]]
    assert events[-2:] == ["scheduled", "cancelled"]
    assert "<strong>cancelled</strong> by bob-approver" in body


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("", "give a date and time"),
        ("2020-01-01T10:00", "is not in the future"),
        ("yesterday", "is not a date and time"),
        ("=1+1", "is not a date and time"),
        ("2027-02-30T10:00", "is not a date and time"),
        ("9" * 500, "give a date and time"),
    ],
)
def test_a_bad_time_is_named_beside_the_field(client, people, at, message):
    clients, as_ = people
    version = approved_version(client, as_)
    bob, token = clients["bob-approver"]
    response = bob.post(
        f"/console/rulesets/reminder/versions/{version}/activate-at",
        data={"csrf_token": token, "rollout_at": at},
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    note = re.search(r'id="f-rollout_at-note">([^<]*)<', response.get_data(as_text=True))
    assert note and message in html.unescape(note.group(1)), response.get_data(as_text=True)
    state = client.get(f"{BASE}/versions/{version}", headers=as_("dave-auditor")).json
    assert state["activate_at"] is None


def test_moves_are_for_approvers_and_refusals_are_shown(client, people):
    clients, as_ = people
    version = approved_version(client, as_)
    alice, token = clients["alice-analyst"]
    page = alice.get(VERSION_PAGE.format(version)).get_data(as_text=True)
    assert "activate-at" not in page and "/cancel" not in page
    path = f"/console/rulesets/reminder/versions/{version}"
    assert alice.post(f"{path}/activate-at", data={"csrf_token": token}).status_code == 403
    assert alice.post(f"{path}/cancel", data={"csrf_token": token}).status_code == 403
    bob, token = clients["bob-approver"]
    none_pending = bob.post(f"{path}/cancel", data={"csrf_token": token, "cancel_note": "why"})
    assert none_pending.status_code == 409
    assert "only a pending activation can be cancelled" in none_pending.get_data(as_text=True)
    active = bob.post(
        "/console/rulesets/reminder/versions/1/activate-at",
        data={"csrf_token": token, "rollout_at": "2099-01-01T00:00"},
    )
    assert active.status_code == 409
    assert "only an approved version" in active.get_data(as_text=True)
    assert bob.post(f"{path}/activate-at", data={}).status_code == 400  # no CSRF token


def test_the_list_shows_the_challenger_and_links_its_experiment_report(client, people, auth):
    clients, as_ = people
    customers = add_customers(client, auth("decide"), 12)
    version = approved_version(client, as_)
    started = client.post(
        f"{BASE}/versions/{version}/challenge",
        json={"share": 50, "note": "try it"},
        headers=as_("carol-approver"),
    )
    assert started.status_code == 200, started.json
    for customer_id in customers:
        body = {"customer_id": customer_id, "as_of": "2024-05-01"}
        assert client.post("/v1/decisions/reminder", json=body, headers=auth("decide")).status_code
    dave, _ = clients["dave-auditor"]
    listed = dave.get("/console/rulesets").get_data(as_text=True)
    assert f">v{version}</a> on 50%" in listed
    assert 'href="/console/rulesets/reminder/experiment"' in listed
    version_page = _text(dave.get("/console/rulesets/reminder"))
    assert f"version {version} is the challenger of version 1 on 50% of the customers" in (
        version_page
    )
    report = dave.get("/console/rulesets/reminder/experiment")
    assert report.status_code == 200
    api = client.get(f"{BASE}/experiment", headers=as_("dave-auditor")).json
    shown = _text(report)
    assert api["comparison"]["note"] in shown
    champion, challenger = api["arms"]["champion"], api["arms"]["challenger"]
    assert f"Customers {champion['customers']} {challenger['customers']}" in shown
    assert champion["customers"] + challenger["customers"] == 12
    for arm in (champion, challenger):
        window = arm["paid_within"]["30"]
        assert f"{window['customers_cleared']} of {window['customers']}" in shown
        for currency, money in window["by_currency"].items():  # never added across currencies
            assert f"Overdue balance paid within 30 days, {currency}" in shown
            assert f"of {float(money['overdue']):,.2f} ({money['customers']} customers)" in shown
    assert champion["paid_within"]["30"]["by_currency"]  # the rows above were checked
    for bad in ("99", "abc", "0"):
        response = dave.get(f"/console/rulesets/reminder/experiment?experiment={bad}")
        assert response.status_code == 404, bad
    assert dave.get("/console/rulesets/credit/experiment").status_code == 404
    assert "had no experiment" in _text(dave.get("/console/rulesets/credit/experiment"))
