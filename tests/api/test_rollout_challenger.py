"""Champion/challenger (issue 17 item 2): an approved version decides for a share of the stored
customers, chosen by a hash that keeps each customer in one arm, and every decision records its
arm; refused moves name their rule; on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
from api_support import complete_facts
from lifecycle_support import make_people
from rollout_support import BASE, add_customers, approved_version

from api.arms import arm_of, bucket_of


@pytest.fixture
def as_(app):
    keys = make_people()
    return lambda name: {"Authorization": f"Bearer {keys[name]}"}


def _challenge(client, as_, version, who="carol-approver", **body):
    body = {"share": 30, "note": "try the clearer wording", **body}
    return client.post(f"{BASE}/versions/{version}/challenge", json=body, headers=as_(who))


def _decide(client, auth, customer_id):
    body = {"customer_id": customer_id, "as_of": "2024-05-01"}
    response = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert response.status_code == 201, response.json
    return response.json


def test_a_challenger_decides_for_its_arm_and_every_decision_records_the_arm(client, as_, auth):
    customers = add_customers(client, auth("decide"), 40)
    version = approved_version(client, as_)
    started = _challenge(client, as_, version)
    assert started.status_code == 200, started.json
    experiment = started.json["experiment"]
    assert (started.json["state"], experiment["champion"], experiment["share"]) == (
        "challenger",
        1,
        30,
    )
    overview = client.get(BASE, headers=as_("dave-auditor")).json
    assert overview["active"]["version"] == 1  # not a second active version
    assert overview["experiment"]["id"] == experiment["id"]
    assert [v["state"] for v in overview["history"]] == ["active", "challenger"]

    arms = {}
    for cid in customers:
        decision = _decide(client, auth, cid)
        expected = arm_of(experiment["id"], cid, 30)
        assert decision["arm"] == {"name": expected, "experiment": experiment["id"]}
        assert decision["ruleset"]["version"] == (version if expected == "challenger" else 1)
        assert decision["format"] == 5
        arms[cid] = expected
        again = _decide(client, auth, cid)  # the same customer, the same arm
        assert again["arm"] == decision["arm"]
    assert set(arms.values()) == {"champion", "challenger"}

    given = client.post(
        "/v1/decisions/reminder", json={"facts": complete_facts()}, headers=auth("decide")
    )
    assert (given.json["ruleset"]["version"], given.json["arm"]) == (1, None)
    from storage.decisions import verify_chain

    assert verify_chain() == []  # format 5 rows, with and without an arm, verify

    stopped = client.post(
        f"{BASE}/experiment/stop", json={"note": "seen enough"}, headers=as_("bob-approver")
    )
    assert stopped.status_code == 200, stopped.json
    assert (stopped.json["ended_how"], stopped.json["ended_by"]) == ("stopped", "bob-approver")
    challenger_customer = next(c for c, a in arms.items() if a == "challenger")
    after = _decide(client, auth, challenger_customer)
    assert (after["ruleset"]["version"], after["arm"]) == (1, None)
    overview = client.get(BASE, headers=as_("dave-auditor")).json
    assert [v["state"] for v in overview["history"]] == ["active", "approved"]
    tail = [(e["version"], e["event"], e["by"], e["note"]) for e in overview["events"][-2:]]
    assert tail == [
        (
            version,
            "challenge_start",
            "carol-approver",
            f"experiment {experiment['id']}: 30% of customers against version 1: "
            "try the clearer wording",
        ),
        (
            version,
            "challenge_stop",
            "bob-approver",
            f"experiment {experiment['id']} stopped: seen enough",
        ),
    ]


def test_promoting_the_challenger_is_an_activation_that_ends_the_experiment(client, as_, auth):
    version = approved_version(client, as_)
    experiment = _challenge(client, as_, version).json["experiment"]
    promoted = client.post(f"{BASE}/versions/{version}/activate", headers=as_("bob-approver"))
    assert promoted.status_code == 200, promoted.json
    overview = client.get(BASE, headers=as_("dave-auditor")).json
    assert overview["active"]["version"] == version
    assert overview["experiment"]["ended_how"] == "promoted"
    events = [(e["version"], e["event"]) for e in overview["events"][-3:]]
    assert events == [(version, "activated"), (1, "retired"), (version, "challenge_stop")]
    assert overview["events"][-1]["note"] == (
        f"experiment {experiment['id']} promoted: version {version} activated"
    )
    (customer,) = add_customers(client, auth("decide"), 1)
    decision = _decide(client, auth, customer)
    assert (decision["ruleset"]["version"], decision["arm"]) == (version, None)


def test_activating_another_version_replaces_the_challenger(client, as_):
    challenger = approved_version(client, as_)
    other = approved_version(client, as_, tag="another wording")
    _challenge(client, as_, challenger)
    moved = client.post(f"{BASE}/versions/{other}/activate", headers=as_("bob-approver"))
    assert moved.status_code == 200, moved.json
    overview = client.get(BASE, headers=as_("dave-auditor")).json
    assert overview["experiment"]["ended_how"] == "replaced"
    states = {v["version"]: v["state"] for v in overview["history"]}
    assert states == {1: "retired", challenger: "approved", other: "active"}


@pytest.mark.parametrize(
    ("share", "status"),
    [(0, 422), (51, 422), (-5, 422), (10**40, 422), ("10", 422), (10.5, 422), (None, 422)],
)
def test_a_share_outside_1_to_50_is_refused_naming_share(client, as_, share, status):
    version = approved_version(client, as_)
    response = _challenge(client, as_, version, share=share)
    assert response.status_code == status, response.json
    assert list(response.json["errors"]) == ["share"]
    assert client.get(BASE, headers=as_("dave-auditor")).json["experiment"] is None


def test_refused_challenges_name_the_rule(client, as_):
    version = approved_version(client, as_)
    second = approved_version(client, as_, tag="another wording")
    draft = client.post(
        f"{BASE}/versions",
        json={"source": approved_source(), "note": "draft"},
        headers=as_("alice-analyst"),
    ).json["version"]

    not_approved = _challenge(client, as_, draft)
    assert not_approved.status_code == 409
    assert not_approved.json["detail"] == (
        f"only an approved version can be a challenger; version {draft} is draft"
    )
    active = _challenge(client, as_, 1)
    assert active.status_code == 409
    assert (
        active.json["detail"] == "only an approved version can be a challenger; version 1 is active"
    )
    own = _challenge(client, as_, version, who="alice-approver")
    assert own.status_code == 403
    assert own.json["detail"].startswith(f"four eyes: alice drafted and proposed version {version}")
    analyst = _challenge(client, as_, version, who="bob-analyst")
    assert analyst.status_code == 403 and "needs 'approver'" in analyst.json["detail"]
    no_note = _challenge(client, as_, version, note="")
    assert no_note.status_code == 422 and "note" in no_note.json["errors"]
    other_kind = client.post(
        f"/v1/rulesets/credit/versions/{version}/challenge",
        json={"share": 10, "note": "x"},
        headers=as_("carol-approver"),
    )
    assert other_kind.status_code == 404
    assert other_kind.json["detail"] == "rule set credit has no version 2 (versions 1 to 1)"

    assert _challenge(client, as_, version).status_code == 200
    twice = _challenge(client, as_, second)
    assert twice.status_code == 409
    assert twice.json["detail"].startswith(
        f"one challenger per kind: version {version} is the challenger of reminder (experiment "
    )
    at = client.post(
        f"{BASE}/versions/{version}/activate",
        json={"at": "2099-01-01T00:00:00Z"},
        headers=as_("bob-approver"),
    )
    assert at.status_code == 409  # the challenger is not an approved version
    nothing = client.post(
        "/v1/rulesets/credit/experiment/stop", json={"note": "x"}, headers=as_("bob-approver")
    )
    assert nothing.status_code == 409
    assert nothing.json["detail"] == "rule set credit has no challenger to stop"


def approved_source() -> str:
    from lifecycle_support import edited_reminder

    return edited_reminder("a draft wording")


def test_the_arm_is_the_same_in_another_process():
    ids = [f"C-{n}" for n in range(200)] + ["Ünïcode-客户", "=1+1", "x" * 300]
    here = [arm_of(7, cid, 25) for cid in ids]
    script = (
        "import json, sys; from api.arms import arm_of; "
        "print(json.dumps([arm_of(7, c, 25) for c in json.load(sys.stdin)]))"
    )
    import json

    there = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    ).stdout
    assert json.loads(there) == here


@pytest.mark.parametrize("share", [1, 10, 33, 50])
def test_the_share_holds_over_10000_customers(share):
    ids = [f"CUST-{n:05d}" for n in range(10_000)]
    on = sum(arm_of(42, cid, share) == "challenger" for cid in ids)
    # binomial: 10,000 draws at p = share %; 4 standard deviations either side
    expected = 100 * share
    spread = 4 * (10_000 * share / 100 * (1 - share / 100)) ** 0.5
    assert abs(on - expected) <= spread, (on, expected)
    # another experiment draws anew: not the same customers
    other = {cid for cid in ids if arm_of(43, cid, share) == "challenger"}
    mine = {cid for cid in ids if arm_of(42, cid, share) == "challenger"}
    assert other != mine
    assert all(0 <= bucket_of(42, cid) < 10_000 for cid in ids[:100])


@pytest.mark.parametrize("note", ["nul \x00 inside", "lone \ud800 surrogate", "x" * 2001])
def test_hostile_notes_are_422_naming_note(client, as_, note):
    version = approved_version(client, as_)
    response = _challenge(client, as_, version, note=note)
    assert response.status_code == 422 and list(response.json["errors"]) == ["note"]
    stop = client.post(f"{BASE}/experiment/stop", json={"note": note}, headers=as_("bob-approver"))
    assert stop.status_code == 422 and list(stop.json["errors"]) == ["note"]


def test_a_formula_like_note_is_kept_as_text(client, as_):
    version = approved_version(client, as_)
    assert _challenge(client, as_, version, note="=HYPERLINK(1)").status_code == 200
    events = client.get(BASE, headers=as_("dave-auditor")).json["events"]
    assert events[-1]["note"].endswith(": =HYPERLINK(1)")


@pytest.mark.parametrize("kind", ["%00", "Reminder", "a" * 300, "%F0%9F%92%A9", "=1+1"])
def test_hostile_kinds_in_the_path_are_never_500(client, as_, kind):
    for method, path, body in (
        ("get", f"/v1/rulesets/{kind}/experiment", None),
        ("post", f"/v1/rulesets/{kind}/experiment/stop", {"note": "x"}),
        ("post", f"/v1/rulesets/{kind}/versions/1/challenge", {"share": 10, "note": "x"}),
        ("post", f"/v1/rulesets/{kind}/versions/1/cancel", {"note": "x"}),
    ):
        who = "dave-auditor" if method == "get" else "bob-approver"
        response = getattr(client, method)(path, json=body, headers=as_(who))
        assert response.status_code in (404, 409, 422), (path, response.status_code)


def test_a_huge_experiment_id_is_422(client, as_):
    response = client.get(f"{BASE}/experiment?experiment={10**30}", headers=as_("dave-auditor"))
    assert response.status_code == 422 and "experiment" in response.json["errors"]
