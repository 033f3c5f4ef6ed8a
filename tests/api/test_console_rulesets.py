"""Rule sets in the console: the editor shows each problem beside its line, the lifecycle moves
go through api.lifecycle with the signed-in key as the actor (four eyes by owner), a decision
becomes a test case, and two versions compare side by side."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from console_support import sign_in


@pytest.fixture
def people(app, keys):
    """Signed-in test clients: an analyst (alice) and an approver (bob), and alice's approver
    key, which four eyes refuses on her own proposal."""
    from storage.keys import create_key

    made = {
        "alice": create_key("alice-analyst", "analyst", "alice")[0],
        "bob": create_key("bob-approver", "approver", "bob")[0],
        "alice-approver": create_key("alice-approver", "approver", "alice")[0],
    }
    clients = {}
    for name, key in made.items():
        client = app.test_client()
        clients[name] = (client, sign_in(client, key))
    return clients


def _source() -> str:
    from api_support import RULES_DIR

    return (RULES_DIR / "reminder.toml").read_text(encoding="utf-8")


def test_a_draft_with_mistakes_shows_each_beside_its_line_and_stores_nothing(people):
    client, token = people["alice"]
    editor = client.get("/console/rulesets/reminder/draft").get_data(as_text=True)
    assert "kind = &#34;reminder&#34;" in editor or 'kind = "reminder"' in editor
    broken = _source().replace("days_past_due", "days_pass_due", 1)
    line = next(n for n, text in enumerate(broken.split("\n"), 1) if "days_pass_due" in text)
    response = client.post(
        "/console/rulesets/reminder/draft",
        data={"source": broken, "note": "try", "csrf_token": token},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    row = re.search(rf'<tr class="has-problem"><td class="num">{line}</td>(.*?)</tr>', html, re.S)
    assert row, html
    assert "unknown fact" in row.group(1) and "days_past_due" in row.group(1)
    assert "days_pass_due" in html  # the text the analyst wrote is kept in the editor
    page = client.get("/console/rulesets/reminder").get_data(as_text=True)
    # Attribute values (a form's random CSRF token can hold "v2") are no version shown.
    assert "v2" not in re.sub(r'value="[^"]*"', "", page)


def test_draft_test_propose_approve_activate_with_four_eyes(people):
    alice, alice_token = people["alice"]
    changed = _source().replace('title = "', 'title = "Changed: ', 1)
    response = alice.post(
        "/console/rulesets/reminder/draft",
        data={"source": changed, "note": "<b>clearer</b> title", "csrf_token": alice_token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/rulesets/reminder?version=2"
    page = alice.get("/console/rulesets/reminder?version=2").get_data(as_text=True)
    assert "&lt;b&gt;clearer&lt;/b&gt; title" in page and "Propose" in page
    tested = alice.post(
        "/console/rulesets/reminder/versions/2/test", data={"csrf_token": alice_token}
    ).get_data(as_text=True)
    assert re.search(r"Test results: \d+ passed, 0 failed", tested)
    response = alice.post(
        "/console/rulesets/reminder/versions/2/propose", data={"csrf_token": alice_token}
    )
    assert response.status_code == 302
    # alice may not approve her own proposal, whichever of her keys she uses
    own, own_token = people["alice-approver"]
    refused = own.post(
        "/console/rulesets/reminder/versions/2/approve", data={"csrf_token": own_token}
    )
    assert refused.status_code == 403  # as the API answers
    assert "four eyes" in refused.get_data(as_text=True).lower()
    # an analyst sees no approve button and is refused the move
    assert "Approve" not in alice.get("/console/rulesets/reminder?version=2").get_data(as_text=True)
    bob, bob_token = people["bob"]
    for move in ("approve", "activate"):
        response = bob.post(
            f"/console/rulesets/reminder/versions/2/{move}", data={"csrf_token": bob_token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
    listing = bob.get("/console/rulesets").get_data(as_text=True)
    assert "v2 <small" in listing
    diff = bob.get("/console/rulesets/reminder/diff?from=1&to=2").get_data(as_text=True)
    assert "version 1 → version 2" in diff and "title: Reminder tone → Changed: Reminder" in diff
    # rolling back to version 1 needs a note
    back = bob.post(
        "/console/rulesets/reminder/versions/1/activate", data={"csrf_token": bob_token}
    )
    assert back.status_code == 409 and "a rollback needs a note" in back.get_data(as_text=True)
    back = bob.post(
        "/console/rulesets/reminder/versions/1/activate",
        data={"csrf_token": bob_token, "note": "title confused people"},
    )
    assert back.status_code == 302


def test_a_decision_becomes_a_test_case_in_a_new_draft(client, auth, customer, people):
    body = {"customer_id": customer, "as_of": "2024-05-01"}
    decision = client.post("/v1/decisions/reminder", json=body, headers=auth("decide")).json
    alice, token = people["alice"]
    page = alice.get(f"/console/decisions/{decision['decision_id']}").get_data(as_text=True)
    assert "Make this a test case" in page
    response = alice.post(
        f"/console/decisions/{decision['decision_id']}/test-case",
        data={"csrf_token": token, "name": "C1 sixty days late"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/rulesets/reminder?version=2")
    draft = alice.get("/console/rulesets/reminder?version=2").get_data(as_text=True)
    assert "C1 sixty days late" in draft
    # hostile names: a NUL refused beside the form; the rest kept as text in the case
    path = f"/console/decisions/{decision['decision_id']}/test-case"
    response = alice.post(path, data={"csrf_token": token, "name": "x\x00y"})
    assert response.status_code == 422
    alert = re.search(r'role="alert">([^<]*)<', response.get_data(as_text=True)).group(1)
    assert alert == "name: must not contain a NUL character (\\u0000 at character 2)"
    # a lone surrogate as a browser sends it, bytes that are not UTF-8: werkzeug gives them
    # back %-quoted
    for name, shown in (("\ud800", "%ED%A0%80"), ("=1+1", "=1+1"), (" " * 5, "decision ")):
        body = urlencode({"csrf_token": token, "name": name}, errors="surrogatepass")
        response = alice.post(path, data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 302, name
        draft = alice.get(response.headers["Location"]).get_data(as_text=True)
        assert f"<td>{shown}" in draft, name
    bob, _ = people["bob"]
    page = bob.get(f"/console/decisions/{decision['decision_id']}")
    assert page.status_code == 403  # an approver reads rule sets, not decisions


def test_a_test_case_the_active_version_fails_is_refused_on_the_decision_page(
    client, auth, customer, people
):
    from engine.ruleset import sha256_of
    from storage.rulesets import create_version, history

    body = {"customer_id": customer, "as_of": "2024-05-01"}
    decision = client.post("/v1/decisions/reminder", json=body, headers=auth("decide")).json
    assert decision["outcome"]["cadence_days"] == 7, decision
    first_reminder = 'then = { tone = "friendly", channel = "email", cadence_days = 7 }'
    later = _source().replace(first_reminder, first_reminder.replace("= 7", "= 9"))
    assert later.count("cadence_days = 9") == _source().count("cadence_days = 9") + 1
    create_version("reminder", later, sha256_of(later), created_by="test", state="active")
    versions = len(history("reminder"))
    alice, token = people["alice"]
    path = f"/console/decisions/{decision['decision_id']}/test-case"
    response = alice.post(path, data={"csrf_token": token, "name": "=HYPERLINK(1) <b>"})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Rules that fired" in html  # the decision's own page, with why beside the form
    alert = re.search(r'<p class="error" role="alert">([^<]*)</p>', html).group(1)
    assert "the case must pass" in alert and "cadence_days: expected 7, got 9" in alert
    assert 'value="=HYPERLINK(1) &lt;b&gt;"' in html  # the name typed is kept, as text
    assert len(history("reminder")) == versions  # nothing stored
    missing = alice.post("/console/decisions/nope/test-case", data={"csrf_token": token})
    assert missing.status_code == 404
