"""A decision examined in the console through Flask's test client: its explanation, what would
change it, why not, replay (equal, and different with both sides, auditors only) and version
evidence, each the use case the API reads."""

from __future__ import annotations

import html
import json
import re

from console_audit_support import (
    HANDOFF,
    OVER_LIMIT,
    decide,
    squeeze,
    tamper,
    text_of,
)
from console_support import sign_in

# ---- a decision's page ----------------------------------------------------------------------


def test_a_decision_page_shows_its_explanation_and_what_would_change_it(client, auth, keys):
    decision = decide(client, auth, "credit", **OVER_LIMIT)
    sign_in(client, keys["analyst"])
    page = client.get(f"/console/decisions/{decision['decision_id']}")
    assert page.status_code == 200
    shown = squeeze(text_of(page))
    assert decision["explanation"] in shown
    assert "What would change it" in shown
    assert "approve if new_exposure ≤ 50,000.00; now 61,250.00 (rule CR-330)" in shown
    # an analyst asks why not, and is told what an auditor key adds
    assert "Why not? The rules ranked above" in shown
    assert "A key of role auditor adds Replay" in shown
    assert "/replay" not in page.get_data(as_text=True)
    why = client.get(f"/console/decisions/{decision['decision_id']}/why-not")
    assert why.status_code == 200
    rows = squeeze(text_of(why))
    assert "Rule CR-300 decided." in rows
    assert (
        "CR-200 did not apply: new_exposure 61,250.00 is not > credit_limit * 1.5 (75,000.00)"
        in rows
    )
    assert 'CR-003 applied: sets risk_band = "low"; decides no outcome field' in rows
    assert "CR-310" not in rows  # below the decider


def test_why_not_shows_the_failing_condition_and_the_values_it_read(client, auth, keys):
    decision = decide(client, auth, "handoff", **HANDOFF)
    sign_in(client, keys["auditor"])
    page = client.get(f"/console/decisions/{decision['decision_id']}/why-not")
    body = page.get_data(as_text=True)
    row = re.search(r"<tr>\s*<td><code>HO-020</code>.*?</tr>", body, re.S).group(0)
    assert "<code>days_past_due &lt; 60</code>" in row  # the first condition that failed
    assert "<code>days_past_due</code> = 61" in row  # the value it read
    assert "HO-020 did not apply: days_past_due 61 is not &lt; 60" in row
    assert "Rule <code>HO-900</code> decided" in body
    # a version under `all`: why-not does not apply, and the page says why
    from engine.ruleset import sha256_of
    from storage import rulesets

    source = rulesets.get_active("handoff")["source"].replace(
        'hit_policy = "first"', 'hit_policy = "all"', 1
    )
    rulesets.create_version("handoff", source, sha256_of(source), created_by="t", state="active")
    under_all = decide(client, auth, "handoff", **HANDOFF)
    page = client.get(f"/console/decisions/{under_all['decision_id']}/why-not")
    assert page.status_code == 200
    assert "decides under &#39;all&#39;" in page.get_data(as_text=True)
    for bad in ("nope", "%00", "x" * 300):
        assert client.get(f"/console/decisions/{bad}/why-not").status_code in (404, 422), bad


def test_replay_shows_equal_or_each_difference_with_both_sides(client, auth, keys):
    decision = decide(client, auth, "handoff", **{**HANDOFF, "days_past_due": 124})
    token = sign_in(client, keys["auditor"])
    path = f"/console/decisions/{decision['decision_id']}"
    page = client.get(path).get_data(as_text=True)
    assert f'action="{path}/replay#replay"' in page
    assert client.post(f"{path}/replay", data={}).status_code == 400  # no CSRF token
    replayed = client.post(f"{path}/replay", data={"csrf_token": token})
    assert replayed.status_code == 200
    shown = squeeze(text_of(replayed))
    assert "Replay with the stored text of handoff version 1" in shown
    assert "Equal : the outcome, reasons and rules fired are the same byte for byte" in shown
    # the stored facts altered behind credo's back: the replay decides otherwise
    tamper(decision["decision_id"], "facts", json.dumps(dict(decision["facts"], days_past_due=30)))
    replayed = client.post(f"{path}/replay", data={"csrf_token": token})
    body = replayed.get_data(as_text=True)
    assert "<strong>Different</strong>: 3 differences" in body
    row = re.search(r'<tr class="has-problem"><td><code>outcome</code>.*?</tr>', body, re.S)
    assert row, body
    assert "&#34;action&#34;: &#34;handoff&#34;" in row.group(0)  # stored
    assert "&#34;action&#34;: &#34;none&#34;" in row.group(0)  # replayed
    assert client.post(
        "/console/decisions/nope/replay", data={"csrf_token": token}
    ).status_code == (404)
    # replay is an auditor's move, as in the API
    analyst = client.application.test_client()
    token = sign_in(analyst, keys["analyst"])
    refused = analyst.post(f"{path}/replay", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "needs a key of role auditor" in refused.get_data(as_text=True)


def test_version_evidence_is_the_exact_text_and_its_approvals(client, auth, keys):
    from storage import rulesets

    decision = decide(client, auth, "credit", **OVER_LIMIT)
    sign_in(client, keys["auditor"])
    page = client.get(f"/console/decisions/{decision['decision_id']}")
    link = f"/console/decisions/{decision['decision_id']}/evidence"
    assert f'href="{link}"' in page.get_data(as_text=True)
    evidence = client.get(link)
    assert evidence.status_code == 200
    body = evidence.get_data(as_text=True)
    source = rulesets.get_active("credit")["source"]
    assert html.escape(source, quote=False) in html.unescape(body) or source in text_of(evidence)
    assert "it is the exact text that made it" in body
    assert decision["ruleset"]["sha256"] in body
    events = rulesets.events("credit", 1)
    assert events and all(e["event"] in body for e in events)
    # the stored text altered: the page says it is not the text that made the decision
    from storage.db import database

    database.execute_sql(
        'UPDATE "rule_set_version" SET "source" = "source" || \'\n# edited\' '
        "WHERE \"kind\" = 'credit'"
    )
    assert "this is not the text that made it" in client.get(link).get_data(as_text=True)
    assert client.get("/console/decisions/nope/evidence").status_code == 404
