"""Activation at a time (issue 17 item 1): `activate` with `at` makes a pending activation
that API workers switch to at the moment, with nobody present, and that can be cancelled;
on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from api_support import complete_facts
from lifecycle_support import make_people
from rollout_support import BASE, Clock, approved_version, in_an_hour

from api.http.evaluator import RuleSetCache


@pytest.fixture
def as_(app):
    keys = make_people()
    return lambda name: {"Authorization": f"Bearer {keys[name]}"}


@pytest.fixture
def clock(app) -> Clock:
    """The app's rule-set cache on a clock the test moves; no refresh by interval (an hour),
    so only the pending time switches versions."""
    clock = Clock(in_an_hour())
    state = app.extensions["credo"]
    app.extensions["credo"] = dataclasses.replace(state, rulesets=RuleSetCache(3600, clock))
    return clock


def _decide(client, auth) -> int:
    response = client.post(
        "/v1/decisions/reminder", json={"facts": complete_facts()}, headers=auth("decide")
    )
    assert response.status_code == 201, response.json
    return response.json["ruleset"]["version"]


def test_decisions_switch_version_at_the_moment_with_nobody_present(client, as_, auth, clock, app):
    version = approved_version(client, as_)
    moment = clock.now + timedelta(minutes=30)
    clock.advance(hours=-1)  # now: an hour before the clock's start, 90 minutes before moment
    scheduled = client.post(
        f"{BASE}/versions/{version}/activate",
        json={"at": moment.isoformat().replace("+00:00", "Z"), "note": "new year"},
        headers=as_("bob-approver"),
    )
    assert scheduled.status_code == 200, scheduled.json
    assert (scheduled.json["state"], scheduled.json["activate_at"]) == (
        "approved",
        moment.isoformat(),
    )
    overview = client.get(BASE, headers=as_("dave-auditor")).json
    assert overview["pending"] == {
        "version": version,
        "at": moment.isoformat(),
        "by": "bob-approver",
        "owner": "bob",
        "note": f"activates at {moment.isoformat()}: new year",
    }
    assert overview["active"]["version"] == 1

    assert _decide(client, auth) == 1  # the cache learns of the pending version
    clock.now = moment - timedelta(milliseconds=1)
    assert _decide(client, auth) == 1
    clock.now = moment
    assert _decide(client, auth) == version
    assert _decide(client, auth) == version  # the refresh made the move in the database

    overview = client.get(BASE, headers=as_("dave-auditor")).json
    assert overview["active"]["version"] == version and overview["pending"] is None
    assert overview["active"]["activated_at"] == moment.isoformat()
    tail = [(e["version"], e["event"], e["by"], e["at"]) for e in overview["events"][-3:]]
    assert tail == [
        (version, "scheduled", "bob-approver", tail[0][3]),
        (version, "activated", "bob-approver", moment.isoformat()),
        (1, "retired", "bob-approver", moment.isoformat()),
    ]


def test_a_pending_activation_is_made_by_a_read_once_its_time_has_passed(client, as_):
    """Nobody decides: the first look at the rule sets after the time makes the move."""
    from datetime import UTC, datetime

    from api.rollout import activate_due

    version = approved_version(client, as_)
    moment = datetime.now(UTC) + timedelta(minutes=5)
    response = client.post(
        f"{BASE}/versions/{version}/activate",
        json={"at": moment.isoformat()},
        headers=as_("carol-approver"),
    )
    assert response.status_code == 200, response.json
    assert activate_due(moment - timedelta(seconds=1)) == []
    made = activate_due(moment + timedelta(seconds=1))
    assert [(m["version"], m["state"]) for m in made] == [(version, "active")]
    assert activate_due(moment + timedelta(seconds=2)) == []  # once only
    assert client.get(BASE, headers=as_("dave-auditor")).json["active"]["version"] == version


def test_a_pending_activation_is_cancelled_with_who_and_why(client, as_, auth, clock):
    version = approved_version(client, as_)
    at = (clock.now).isoformat()
    clock.advance(hours=-1)
    assert (
        client.post(
            f"{BASE}/versions/{version}/activate", json={"at": at}, headers=as_("bob-approver")
        ).status_code
        == 200
    )
    no_note = client.post(f"{BASE}/versions/{version}/cancel", json={}, headers=as_("bob-approver"))
    assert no_note.status_code == 422 and "note" in no_note.json["errors"]
    cancelled = client.post(
        f"{BASE}/versions/{version}/cancel",
        json={"note": "board wants another month"},
        headers=as_("carol-approver"),
    )
    assert cancelled.status_code == 200, cancelled.json
    assert (cancelled.json["state"], cancelled.json["activate_at"]) == ("approved", None)
    overview = client.get(BASE, headers=as_("dave-auditor")).json
    assert overview["pending"] is None
    last = overview["events"][-1]
    assert (last["event"], last["by"], last["owner"]) == ("cancelled", "carol-approver", "carol")
    assert last["note"] == f"activation at {at} cancelled: board wants another month"
    assert _decide(client, auth) == 1
    clock.advance(hours=2)
    assert _decide(client, auth) == 1  # cancelled: nothing switches
    again = client.post(
        f"{BASE}/versions/{version}/cancel", json={"note": "x"}, headers=as_("carol-approver")
    )
    assert again.status_code == 409
    assert again.json["detail"] == (
        f"only a pending activation can be cancelled; version {version} of reminder has none "
        "(it is approved)"
    )
    analyst = client.post(
        f"{BASE}/versions/{version}/cancel", json={"note": "x"}, headers=as_("alice-analyst")
    )
    assert analyst.status_code == 403


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2020-01-01T00:00:00Z", "is not in the future"),
        ("2027-13-01T00:00:00Z", "is not a date and time"),
        ("2027-01-01T00:00:00", "give the time zone too"),
        ("tomorrow", "is not a date and time"),
        ("", "give a date and time with a time zone"),
        ("=1+1", "is not a date and time"),
        ("2027-01-01T00:00:00Z\u0000", "is not a date and time"),
        ("\ud800", "is not a date and time"),
        ("9" * 5000, "give a date and time with a time zone"),
    ],
)
def test_a_bad_time_is_422_naming_at(client, as_, at, message):
    version = approved_version(client, as_)
    response = client.post(
        f"{BASE}/versions/{version}/activate", json={"at": at}, headers=as_("bob-approver")
    )
    assert response.status_code == 422, response.json
    assert list(response.json["errors"]) == ["at"]
    assert message in response.json["errors"]["at"][0]
    assert client.get(BASE, headers=as_("dave-auditor")).json["pending"] is None


def test_only_an_approved_version_is_activated_at_a_time_and_one_per_kind(client, as_):
    at = in_an_hour().isoformat()
    first = approved_version(client, as_)
    second = approved_version(client, as_, tag="a second wording")
    active = client.post(
        f"{BASE}/versions/1/activate", json={"at": at}, headers=as_("bob-approver")
    )
    assert active.status_code == 409
    assert active.json["detail"] == (
        "only an approved version can be activated at a time; version 1 is active"
    )
    ok = client.post(
        f"{BASE}/versions/{first}/activate", json={"at": at}, headers=as_("bob-approver")
    )
    assert ok.status_code == 200
    other = client.post(
        f"{BASE}/versions/{second}/activate", json={"at": at}, headers=as_("bob-approver")
    )
    assert other.status_code == 409
    assert other.json["detail"] == (
        f"one pending activation per kind: version {first} of reminder becomes active at "
        f"{ok.json['activate_at']}; cancel it first "
        f"(`credo rules cancel reminder {first}`)"
    )
    # Activating the pending version now is an ordinary activation: nothing stays pending.
    now = client.post(f"{BASE}/versions/{first}/activate", headers=as_("bob-approver"))
    assert now.status_code == 200 and now.json["activate_at"] is None
    assert client.get(BASE, headers=as_("dave-auditor")).json["pending"] is None
