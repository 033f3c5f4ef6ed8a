"""Auditing one stored decision (issue 15 items 3, 6, 7, 8): replay with the stored version's
text, version evidence, the explanation and what would change it, why not — over HTTP and
`credo audit`, on SQLite and PostgreSQL, with rows tampered with directly in SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from api_support import complete_facts
from click.testing import CliRunner

from api import lifecycle
from api.cli.main import main

# A hand-off the agency gets: 124 days past due, final notice 21 days ago.
HANDOFF = {
    "days_past_due": 124,
    "overdue_balance": "4200.00",
    "last_reminder_tone": "final",
    "days_since_last_reminder": 21,
    "promises_broken_12m": 2,
}
# A credit order over the limit by a low-risk customer: CR-300 refers it.
OVER_LIMIT = {
    "requested_amount": "61250.00",
    "open_balance": "0.00",
    "credit_limit": "50000.00",
    "new_exposure": "61250.00",
    "invoices_paid_12m": 5,
}


class Key:
    def __init__(self, name: str, owner: str, role: str):
        self.name, self.owner, self.role = name, owner, role


ALICE = Key("alice-analyst", "alice", "analyst")
BOB = Key("bob-approver", "bob", "approver")


def decide(client, auth, kind: str, **facts) -> dict:
    body = {"facts": complete_facts(**facts), "as_of": "2024-05-01"}
    response = client.post(f"/v1/decisions/{kind}", json=body, headers=auth("decide"))
    assert response.status_code == 201, response.json
    return response.json


def credo(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def cli_db(settings, monkeypatch):
    monkeypatch.setenv("CREDO_DATABASE_URL", settings.database.url)
    return settings.database.url


def activate_new_handoff(reason: str, note: str = "reworded") -> int:
    """A new hand-off version through the lifecycle (drafted, proposed, approved, activated):
    HO-020's reason reworded, so decisions it makes differ from version 1's."""
    from storage import rulesets

    source = rulesets.get_active("handoff")["source"]
    edited = source.replace("no hand-off before 60 days", reason, 1)
    assert edited != source
    version = lifecycle.draft_version("handoff", edited, "why: " + note, ALICE)["version"]
    policy = lifecycle.Policy()
    lifecycle.propose_version("handoff", version, ALICE, policy, note="please review")
    lifecycle.approve_version("handoff", version, BOB, policy, note="looks right")
    lifecycle.activate_version("handoff", version, BOB, note="go live")
    return version


# ---- the explanation and what would change it ------------------------------------------------


def test_every_stored_decision_carries_its_explanation(client, auth):
    handoff = decide(client, auth, "handoff", **HANDOFF)
    assert handoff["explanation"] == (
        "Handed to the standard agency: 4200.00 overdue, oldest invoice 124 days past due; "
        "final notice sent 21 days ago (rule HO-120)."
    )
    read = client.get(f"/v1/decisions/{handoff['decision_id']}", headers=auth("auditor")).json
    assert read["explanation"] == handoff["explanation"] and read["format"] == 5
    assert "what_would_change" not in read  # hand-offs: nothing of the kind
    page = client.get("/v1/decisions?kind=handoff", headers=auth("auditor")).json
    assert page["items"][0]["explanation"] == handoff["explanation"]


def test_a_referred_credit_decision_says_what_would_change_it(client, auth):
    decision = decide(client, auth, "credit", **OVER_LIMIT)
    assert decision["outcome"]["decision"] == "refer"
    assert decision["explanation"].startswith(
        "Referred to a controller, account on watch: Exposure with this order 61250.00 exceeds "
        "the 50000.00 limit"
    )
    assert decision["explanation"].endswith("(rules CR-300, CR-003).")
    read = client.get(f"/v1/decisions/{decision['decision_id']}", headers=auth("auditor")).json
    assert read["what_would_change"] == [
        {
            "fact": "new_exposure",
            "now": "61250.00",
            "must_be": "<= 50000.00",
            "outcome": {"decision": "approve"},
            "rule": "CR-330",
            "text": "approve if new_exposure ≤ 50,000.00; now 61,250.00",
        }
    ]
    # Not part of the record: the decision as stored is the rest, unchanged.
    assert {k: v for k, v in read.items() if k != "what_would_change"} == decision


def test_a_declined_order_says_what_would_make_it_a_referral(client, auth):
    declined = decide(
        client,
        auth,
        "credit",
        **{**OVER_LIMIT, "new_exposure": "80000.00", "credit_limit": "50000.00"},
    )
    assert declined["outcome"]["decision"] == "decline"
    read = client.get(f"/v1/decisions/{declined['decision_id']}", headers=auth("auditor")).json
    texts = [c["text"] for c in read["what_would_change"]]
    assert texts == ["refer if new_exposure ≤ 75,000.00; now 80,000.00"]


# ---- why not ----------------------------------------------------------------------------------


def test_why_not_lists_the_rules_above_the_decider_with_the_condition_that_failed(client, auth):
    decision = decide(client, auth, "handoff", **{**HANDOFF, "days_past_due": 61})
    assert decision["fired"][-1]["id"] == "HO-900"  # the catch-all: no hand-off at 61 days
    url = f"/v1/decisions/{decision['decision_id']}?why_not=1"
    read = client.get(url, headers=auth("auditor"))
    assert read.status_code == 200, read.json
    why = read.json["why_not"]
    assert why["decided_by"] == "HO-900"
    ids = [row["id"] for row in why["rules"]]
    assert ids == ["HO-010", "HO-015", "HO-020", "HO-030", "HO-040", "HO-050", "HO-060",
                   "HO-065", "HO-070", "HO-080", "HO-090", "HO-095", "HO-100", "HO-110",
                   "HO-120", "HO-130"]  # fmt: skip
    rows = {row["id"]: row for row in why["rules"]}
    assert rows["HO-020"]["message"] == "HO-020 did not apply: days_past_due 61 is not < 60"
    assert rows["HO-020"]["read"] == {"days_past_due": 61}
    assert rows["HO-020"]["failed"] == "days_past_due < 60"
    assert rows["HO-030"]["message"] == "HO-030 did not apply: has_open_dispute is false"
    assert rows["HO-015"]["message"] == "HO-015 did not apply: oldest_dispute_days is absent"
    assert rows["HO-080"]["message"] == (
        "HO-080 did not apply: overdue_balance 4,200.00 is not < 250"
    )
    assert rows["HO-100"]["message"] == (
        "HO-100 did not apply: plan_eligible was not set: no rule that sets it fired"
    )
    assert rows["HO-110"]["message"] == (
        "HO-110 did not apply: days_past_due 61 is not >= 90"  # the first part that fails
    )
    assert rows["HO-130"]["message"] == "HO-130 did not apply: days_past_due 61 is not >= 90"
    assert not any(row["applied"] for row in why["rules"])
    # Without why_not=1, nothing is computed.
    plain = client.get(f"/v1/decisions/{decision['decision_id']}", headers=auth("auditor")).json
    assert "why_not" not in plain


def test_why_not_names_rules_that_applied_without_deciding(client, auth):
    decision = decide(client, auth, "credit", **OVER_LIMIT)
    read = client.get(
        f"/v1/decisions/{decision['decision_id']}?why_not=true", headers=auth("auditor")
    )
    rows = {row["id"]: row for row in read.json["why_not"]["rules"]}
    assert read.json["why_not"]["decided_by"] == "CR-300"
    assert rows["CR-003"]["applied"] is True
    assert rows["CR-003"]["message"] == (
        'CR-003 applied: sets risk_band = "low"; decides no outcome field'
    )
    assert rows["CR-200"]["message"] == (
        "CR-200 did not apply: new_exposure 61,250.00 is not > credit_limit * 1.5 (75,000.00)"
    )
    assert rows["CR-004"]["message"] == "CR-004 did not apply: invoices_paid_12m is 5, not 0"
    assert "CR-300" not in rows and "CR-310" not in rows  # the decider and below


def test_why_not_refuses_a_version_under_all(client, auth):
    from engine.ruleset import sha256_of
    from storage import rulesets

    source = rulesets.get_active("handoff")["source"].replace(
        'hit_policy = "first"', 'hit_policy = "all"', 1
    )
    rulesets.create_version("handoff", source, sha256_of(source), created_by="t", state="active")
    decision = decide(client, auth, "handoff", **HANDOFF)
    assert decision["ruleset"]["version"] == 2
    read = client.get(f"/v1/decisions/{decision['decision_id']}?why_not=1", headers=auth("auditor"))
    assert read.status_code == 422
    assert "decides under 'all'" in read.json["errors"]["why_not"][0]
    code, output = credo_in(client, "audit", "why-not", decision["decision_id"])
    assert code == 2 and "decides under 'all'" in output


def credo_in(client, *args: str) -> tuple[int, str]:
    """`credo` on the database of the app behind `client`."""
    url = client.application.extensions["credo"].settings.database.url
    old = os.environ.get("CREDO_DATABASE_URL")
    os.environ["CREDO_DATABASE_URL"] = url
    try:
        return credo(*args)
    finally:
        if old is None:
            del os.environ["CREDO_DATABASE_URL"]
        else:
            os.environ["CREDO_DATABASE_URL"] = old


def test_why_not_from_the_command_line(client, auth, cli_db):
    decision = decide(client, auth, "handoff", **{**HANDOFF, "days_past_due": 61})
    code, output = credo("audit", "why-not", decision["decision_id"])
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == (
        f"decision {decision['decision_id']} (handoff version 1) was decided by HO-900"
    )
    assert "  HO-020 did not apply: days_past_due 61 is not < 60" in lines
    code, output = credo("audit", "why-not", decision["decision_id"], "--json")
    assert json.loads(output)["decided_by"] == "HO-900"
    assert credo("audit", "why-not", "no-such-decision")[0] == 2


# ---- replay -----------------------------------------------------------------------------------


def test_replay_of_an_untouched_decision_is_the_same(client, auth, cli_db):
    ids = [decide(client, auth, kind, **HANDOFF)["decision_id"] for kind in ("handoff", "credit")]
    ids.append(
        decide(client, auth, "reminder", days_past_due=20, overdue_balance="400.00")["decision_id"]
    )
    answer = client.post(f"/v1/decisions/{ids[0]}/replay", headers=auth("auditor"))
    assert answer.status_code == 200, answer.json
    assert answer.json["same"] is True and answer.json["differences"] == []
    assert answer.json["replayed"]["outcome"]["action"] == "handoff"
    code, output = credo("audit", "replay")
    assert code == 0, output
    assert output.strip() == "OK: 3 decisions replayed, 3 the same, 0 different"
    code, output = credo("audit", "replay", "--sample", "2", "--json")
    assert code == 0 and json.loads(output)["replayed"] == 2
    code, output = credo("audit", "replay", "--from", "2000-01-01", "--to", "9999-12-31")
    assert code == 0 and "3 decisions replayed" in output
    # The decide role reads no decisions, let alone replays them.
    assert client.post(f"/v1/decisions/{ids[0]}/replay", headers=auth("decide")).status_code == 403


def test_replay_reports_tampered_facts_with_both_sides(client, auth, settings, cli_db):
    from storage.db import database

    decision = decide(client, auth, "handoff", **HANDOFF)
    facts = dict(decision["facts"], days_past_due=30)
    database.execute_sql(
        'UPDATE "decision" SET "facts" = '
        + database.param
        + ' WHERE "decision_id" = '
        + database.param,
        (json.dumps(facts), decision["decision_id"]),
    )
    answer = client.post(
        f"/v1/decisions/{decision['decision_id']}/replay", headers=auth("auditor")
    ).json
    assert answer["same"] is False
    by_field = {d["field"]: d for d in answer["differences"]}
    assert set(by_field) == {"outcome", "reasons", "fired"}
    assert by_field["outcome"]["stored"] == {
        "action": "handoff",
        "agency": "standard",
        "plan_instalments": 3,
        "plan_interval_days": 30,
    }
    assert by_field["outcome"]["replayed"] == {
        "action": "none",
        "agency": "",
        "plan_instalments": 3,
        "plan_interval_days": 30,
    }
    assert by_field["fired"]["replayed"][0]["id"] == "HO-020"
    code, output = credo("audit", "replay", "--decision", decision["decision_id"])
    assert code == 1
    assert f"DIFFERS decision {decision['decision_id']}" in output
    plan = ',"plan_instalments":3,"plan_interval_days":30}'
    assert '    stored:   {"action":"handoff","agency":"standard"' + plan in output
    assert '    replayed: {"action":"none","agency":""' + plan in output
    assert output.splitlines()[-1] == "DIFFERENT: 1 decisions replayed, 0 the same, 1 different"


def test_replay_reports_a_tampered_rule_text(client, auth, cli_db):
    from storage.db import database

    decision = decide(client, auth, "handoff", **HANDOFF)
    database.execute_sql(
        'UPDATE "rule_set_version" SET "source" = REPLACE("source", '
        "'days_past_due >= 90 and last_reminder_tone', 'days_past_due >= 200 and "
        "last_reminder_tone') WHERE \"kind\" = 'handoff'"
    )
    answer = client.post(
        f"/v1/decisions/{decision['decision_id']}/replay", headers=auth("auditor")
    ).json
    by_field = {d["field"]: d for d in answer["differences"]}
    assert by_field["ruleset.sha256"]["stored"] == decision["ruleset"]["sha256"]
    assert by_field["ruleset.sha256"]["replayed"] != decision["ruleset"]["sha256"]
    assert "changed after the decision" in by_field["ruleset.sha256"]["problem"]
    assert by_field["outcome"]["replayed"] == {
        "action": "none",
        "agency": "",
        "plan_instalments": 3,
        "plan_interval_days": 30,
    }
    assert credo("audit", "replay")[0] == 1
    evidence = client.get(
        f"/v1/decisions/{decision['decision_id']}/evidence", headers=auth("auditor")
    )
    assert evidence.json["matches"] is False


def test_replay_uses_the_stored_version_after_a_newer_one_is_activated(
    client, auth, settings, cli_db
):
    old = decide(client, auth, "handoff", **{**HANDOFF, "days_past_due": 30})
    assert old["reasons"] == [
        "Oldest undisputed invoice 30 days past due: no hand-off before 60 days"
    ]
    version = activate_new_handoff("no hand-off before sixty days")
    new = decide(client, auth, "handoff", **{**HANDOFF, "days_past_due": 30})
    assert new["ruleset"]["version"] == version == 2
    assert new["reasons"] == [
        "Oldest undisputed invoice 30 days past due: no hand-off before sixty days"
    ]
    for decision in (old, new):
        answer = client.post(
            f"/v1/decisions/{decision['decision_id']}/replay", headers=auth("auditor")
        )
        assert answer.json["same"] is True, answer.json
    # …and in a process started afterwards, reading only the database.
    command = [
        sys.executable,
        "-m",
        "api",
        "audit",
        "replay",
        "--decision",
        old["decision_id"],
        "--json",
    ]
    done = subprocess.run(
        command, env={**os.environ, "CREDO_DATABASE_URL": settings.database.url},
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["same"] == 1


def test_replay_of_decisions_with_earlier_facts(client, auth, customer, cli_db):
    """A run stores the hand-off and the reminder that read it (`earlier`, with the hand-off's
    decision id); an API reminder decides the hand-off unstored. Both replay the same, the
    earlier facts checked as the hand-off's outcome fields they are; a tampered word is not."""
    from api.usecases import decide_customers, load_active_rulesets
    from engine.runtime import Engine
    from storage.db import database
    from storage.ledger import load_ledger

    stored = decide_customers(
        Engine(), load_active_rulesets(), {customer: load_ledger(customer)}, date(2024, 7, 1), "run"
    )
    reminder = next(d for d in stored if d["kind"] == "reminder")
    assert reminder["earlier"][0]["kind"] == "handoff" and reminder["earlier"][0]["decision_id"]
    assert "handoff_action" in reminder["facts"]
    body = {"customer_id": customer, "as_of": "2024-07-01"}
    api = client.post("/v1/decisions/reminder", json=body, headers=auth("decide")).json
    assert api["earlier"] and api["earlier"][0]["decision_id"] is None
    code, output = credo("audit", "replay", "--json")
    assert code == 0, output
    assert (json.loads(output)["same"], json.loads(output)["different"]) == (4, 0)  # 3 by the run
    # A word the hand-off version never decides fails the facts check as an earlier fact.
    facts = dict(api["facts"], handoff_action="bogus")
    database.execute_sql(
        'UPDATE "decision" SET "facts" = '
        + database.param
        + ' WHERE "decision_id" = '
        + database.param,
        (json.dumps(facts), api["decision_id"]),
    )
    answer = client.post(f"/v1/decisions/{api['decision_id']}/replay", headers=auth("auditor")).json
    (difference,) = answer["differences"]
    assert difference["field"] == "facts" and "handoff_action" in difference["problem"]
    assert "the handoff decision's action" in difference["problem"]


@pytest.mark.parametrize(
    ("column", "garbage"),
    [
        ("facts", "[1, 2]"),
        ("facts", "7"),
        ("fired", '[{"no": "id"}]'),
        ("fired", '"text"'),
        ("outcome", "[]"),
        ("earlier", '[1, {"kind": 5}]'),
    ],
)
def test_rows_altered_into_nonsense_are_reported_never_a_500(client, auth, column, garbage):
    from storage.db import database

    decision = decide(client, auth, "credit", **OVER_LIMIT)
    database.execute_sql(
        f'UPDATE "decision" SET "{column}" = {database.param} WHERE "decision_id" = '
        + database.param,
        (garbage, decision["decision_id"]),
    )
    base = f"/v1/decisions/{decision['decision_id']}"
    headers = auth("auditor")
    for response in (
        client.get(base, headers=headers),
        client.get(f"{base}?why_not=1", headers=headers),
        client.post(f"{base}/replay", headers=headers),
        client.get(f"{base}/evidence", headers=headers),
    ):
        assert response.status_code in (200, 422), (response.status_code, response.data[:500])
    replayed = client.post(f"{base}/replay", headers=headers).json
    assert replayed["same"] is (column == "earlier")  # earlier is not read to evaluate


def test_replay_refuses_a_muddled_selection(cli_db):
    code, output = credo("audit", "replay", "--sample", "3", "--decision", "x")
    assert code == 2 and "give one of decision, sample or from/to" in output
    assert credo("audit", "replay", "--sample", "0")[0] == 2
    code, output = credo("audit", "replay", "--from", "2024-05-02", "--to", "2024-05-01")
    assert code == 2 and "from: must be on or before to" in output
    code, output = credo("audit", "replay", "--decision", "nope")
    assert code == 2 and "no decision 'nope'" in output


# ---- version evidence -------------------------------------------------------------------------


def test_evidence_gives_the_rule_text_and_its_approval_history(client, auth, cli_db):
    version = activate_new_handoff("no hand-off before sixty days", note="plainer words")
    decision = decide(client, auth, "handoff", **HANDOFF)
    answer = client.get(
        f"/v1/decisions/{decision['decision_id']}/evidence", headers=auth("auditor")
    )
    assert answer.status_code == 200, answer.json
    data = answer.json
    assert (
        answer.headers["Link"]
        == f'</v1/rulesets/handoff/versions/{version}>; rel="ruleset-version"'
    )
    assert data["decided_with"] == decision["ruleset"] and data["matches"] is True
    assert "no hand-off before sixty days" in data["source"]
    from engine.ruleset import sha256_of

    assert sha256_of(data["source"]) == data["source_sha256"] == decision["ruleset"]["sha256"]
    events = [(e["event"], e["by"], e["owner"], e["note"]) for e in data["events"]]
    assert events == [
        ("drafted", "alice-analyst", "alice", "why: plainer words"),
        ("proposed", "alice-analyst", "alice", "please review"),
        ("approved", "bob-approver", "bob", "looks right"),
        ("activated", "bob-approver", "bob", "go live"),
    ]
    code, output = credo("audit", "evidence", decision["decision_id"])
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == f"decision {decision['decision_id']}: handoff version {version}"
    assert f"  sha256 of text:   {data['source_sha256']} (matches)" in lines
    assert any(line.endswith("approved    by bob-approver (bob): looks right") for line in lines)
    assert output.endswith(data["source"])
    assert json.loads(credo("audit", "evidence", decision["decision_id"], "--json")[1]) == data


# ---- hostile ids ------------------------------------------------------------------------------

HOSTILE = [
    "no-such-id",
    "x" * 65,
    "x" * 5000,
    "=HYPERLINK(%22http://x%22)",
    "%00",
    "a%00b",
    "%ED%A0%80",
    "%F0%9F%98%80",
    "..%2F..%2Fetc",
    "'%20OR%201=1--",
    "+1",
    "@x",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_ids_are_404_or_422_never_500(client, auth, bad):
    headers = auth("auditor")
    for method, path in (
        ("get", f"/v1/decisions/{bad}"),
        ("get", f"/v1/decisions/{bad}?why_not=1"),
        ("post", f"/v1/decisions/{bad}/replay"),
        ("get", f"/v1/decisions/{bad}/evidence"),
    ):
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code in (404, 422), (path, response.status_code, response.data[:300])
        assert response.mimetype == "application/problem+json"


def test_a_bad_why_not_flag_is_422(client, auth):
    decision = decide(client, auth, "handoff", **HANDOFF)
    for flag in ("maybe", "%00", "2"):
        response = client.get(
            f"/v1/decisions/{decision['decision_id']}?why_not={flag}", headers=auth("auditor")
        )
        assert response.status_code == 422, flag
