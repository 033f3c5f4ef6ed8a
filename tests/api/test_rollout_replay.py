"""A decision a challenger made replays on that version's stored text (audit replay after
rollout: record format 5 names the arm, the ruleset ref names the version), whichever version
is active when it is replayed; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from lifecycle_support import edited_reminder, make_people
from rollout_support import BASE, add_customers

CHAMPION_WORDS = "so a friendly one comes first"
CHALLENGER_WORDS = "so a friendly note opens"


@pytest.fixture
def as_(app):
    keys = make_people()
    return lambda name: {"Authorization": f"Bearer {keys[name]}"}


def _version(client, as_, source: str) -> int:
    """A reminder version of `source`, drafted and proposed by alice, approved by bob."""
    draft = client.post(
        f"{BASE}/versions",
        json={"source": source, "note": "reworded"},
        headers=as_("alice-analyst"),
    )
    assert draft.status_code == 201, draft.json
    version = draft.json["version"]
    for who, move in (("alice-analyst", "propose"), ("bob-approver", "approve")):
        moved = client.post(f"{BASE}/versions/{version}/{move}", headers=as_(who))
        assert moved.status_code == 200, moved.json
    return version


def _replay(client, auth, decision_id: str) -> dict:
    answer = client.post(f"/v1/decisions/{decision_id}/replay", headers=auth("auditor"))
    assert answer.status_code == 200, answer.json
    return answer.json


def test_a_challengers_decision_replays_on_the_challengers_stored_text(client, as_, auth):
    from api.audit_replay import Selection, replay

    customers = add_customers(client, auth("decide"), 30)
    source = edited_reminder().replace(CHAMPION_WORDS, CHALLENGER_WORDS, 1)
    assert source != edited_reminder()
    challenger = _version(client, as_, source)
    started = client.post(
        f"{BASE}/versions/{challenger}/challenge",
        json={"share": 50, "note": "try the wording"},
        headers=as_("carol-approver"),
    )
    assert started.status_code == 200, started.json
    experiment = started.json["experiment"]["id"]
    made = {}
    for cid in customers:
        body = {"customer_id": cid, "as_of": "2024-05-01"}
        decided = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
        assert decided.status_code == 201, decided.json
        made.setdefault(decided.json["arm"]["name"], decided.json)
    assert set(made) == {"champion", "challenger"}
    by_challenger = made["challenger"]
    assert by_challenger["arm"] == {"name": "challenger", "experiment": experiment}
    assert by_challenger["ruleset"]["version"] == challenger
    # The two versions decide these customers in different words: a replay on the wrong text
    # would differ.
    assert any(CHALLENGER_WORDS in r for r in by_challenger["reasons"])
    assert not any(CHALLENGER_WORDS in r for r in made["champion"]["reasons"])

    # The experiment ends and a third version becomes active: neither arm's version is.
    stopped = client.post(
        f"{BASE}/experiment/stop", json={"note": "seen enough"}, headers=as_("bob-approver")
    )
    assert stopped.status_code == 200, stopped.json
    third = _version(client, as_, edited_reminder("a third wording"))
    activated = client.post(f"{BASE}/versions/{third}/activate", headers=as_("bob-approver"))
    assert activated.status_code == 200, activated.json

    for arm, decision in made.items():
        replayed = _replay(client, auth, decision["decision_id"])
        assert replayed["same"], (arm, replayed["differences"])
        assert replayed["ruleset"] == decision["ruleset"]
        assert replayed["replayed"]["reasons"] == decision["reasons"]
    report = replay(Selection())
    assert report["replayed"] == len(customers) and report["different"] == 0, report
