"""The rule-set lifecycle over HTTP: every allowed move and every refused one, with the message
that names the rule, on SQLite and PostgreSQL (issue 14, SPEC §6)."""

from __future__ import annotations

import pytest
from api_support import complete_facts
from lifecycle_support import edited_reminder, failing_reminder, make_people, reminder_source

BASE = "/v1/rulesets/reminder"


@pytest.fixture
def as_(app):
    """as_(key name) -> the Authorization header of one of lifecycle_support.PEOPLE."""
    keys = make_people()
    return lambda name: {"Authorization": f"Bearer {keys[name]}"}


@pytest.fixture
def lc(client, as_):
    """lc(key name, move, version=None, **body) -> the response of one lifecycle call."""

    def call(name: str, move: str, version: int | None = None, **body):
        if move == "draft":
            return client.post(f"{BASE}/versions", json=body, headers=as_(name))
        path = f"{BASE}/versions/{version}/{move}"
        return client.post(path, json=body or None, headers=as_(name))

    return call


def _draft(lc, source=None, by="alice-analyst") -> int:
    response = lc(by, "draft", source=source or edited_reminder(), note="clearer reason")
    assert response.status_code == 201, response.json
    return response.json["version"]


def _events(client, as_) -> list[tuple]:
    events = client.get(BASE, headers=as_("dave-auditor")).json["events"]
    return [(e["version"], e["event"], e["by"], e["owner"], e["note"]) for e in events]


def test_a_version_goes_from_draft_to_active_and_decisions_follow(client, as_, lc, auth):
    response = lc("alice-analyst", "draft", source=edited_reminder(), note="clearer reason")
    assert response.status_code == 201
    assert {k: response.json[k] for k in ("kind", "version", "state")} == {
        "kind": "reminder",
        "version": 2,
        "state": "draft",
    }
    assert response.headers["Location"].endswith("/v1/rulesets/reminder/versions/2")
    tested = lc("alice-analyst", "test", 2)
    assert tested.status_code == 200 and tested.json["failed"] == 0
    assert tested.json["passed"] == len(tested.json["cases"]) >= 18
    assert lc("alice-analyst", "propose", 2).json["state"] == "proposed"
    assert lc("bob-approver", "approve", 2, note="read it").json["state"] == "approved"
    assert lc("bob-approver", "activate", 2).json["state"] == "active"

    decided = client.post(
        "/v1/decisions/reminder", json={"facts": complete_facts()}, headers=auth("decide")
    )
    assert decided.json["ruleset"]["version"] == 2
    assert [
        (v["version"], v["state"])
        for v in client.get(BASE, headers=as_("dave-auditor")).json["history"]
    ] == [
        (1, "retired"),
        (2, "active"),
    ]
    assert _events(client, as_) == [
        (1, "drafted", "credo init", "credo init", "default rule set loaded from reminder.toml"),
        (1, "activated", "credo init", "credo init", "default rule set loaded from reminder.toml"),
        (
            2,
            "drafted",
            "alice-analyst",
            "alice",
            "clearer reason (templates carried over from version 1)",
        ),
        (2, "proposed", "alice-analyst", "alice", ""),
        (2, "approved", "bob-approver", "bob", "read it"),
        (2, "activated", "bob-approver", "bob", ""),
        (1, "retired", "bob-approver", "bob", "replaced by version 2"),
    ]
    shown = client.get(f"{BASE}/versions/2", headers=as_("dave-auditor")).json
    assert shown["source"] == edited_reminder() and shown["state"] == "active"
    assert [e["event"] for e in shown["events"]] == ["drafted", "proposed", "approved", "activated"]
    linked = client.get(f"/v1/decisions/{decided.json['decision_id']}", headers=auth("auditor"))
    assert linked.headers["Link"] == '</v1/rulesets/reminder/versions/2>; rel="ruleset-version"'
    assert linked.json == decided.json  # the record as stored


def test_a_draft_that_fails_validation_is_not_stored_and_every_problem_is_named(client, as_, lc):
    bad = (
        reminder_source()
        .replace('when = "in_agency"', 'when = "in_agencyy"', 1)
        .replace(
            'then = { tone = "friendly", channel = "email", cadence_days = 14 }',
            'then = { tone = "stern" }',
            1,
        )
    )
    response = lc("alice-analyst", "draft", source=bad, note="typo")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problems = {(p.get("rule_id"), p.get("field")): p for p in response.json["problems"]}
    lines = bad.split("\n")
    when = problems[("RT-010", "when")]
    assert "unknown fact 'in_agencyy'" in when["message"] and when["suggestion"] == "in_agency"
    assert lines[when["line"] - 1].strip() == 'when = "in_agencyy"'
    then = problems[("RT-040", "then")]
    assert "'stern' is not one of" in then["message"]
    assert lines[then["line"] - 1].strip().startswith('then = { tone = "stern"')
    assert all(text.startswith("reminder (draft):") for text in response.json["errors"]["source"])
    assert len(client.get(BASE, headers=as_("dave-auditor")).json["history"]) == 1


def test_a_draft_of_another_kind_or_with_unstorable_text_is_refused(lc):
    wrong = lc(
        "alice-analyst",
        "draft",
        source=reminder_source().replace('kind = "reminder"', 'kind = "handoff"'),
        note="x",
    )
    assert wrong.status_code == 422
    assert "kind 'handoff' must be 'reminder'" in wrong.json["detail"]
    syntax = lc("alice-analyst", "draft", source="kind = \n", note="x")
    assert syntax.status_code == 422 and syntax.json["problems"][0]["line"] == 1
    surrogate = lc("alice-analyst", "draft", source=reminder_source() + "# \ud800\n", note="x")
    assert surrogate.status_code == 422 and "lone surrogate" in surrogate.json["detail"]
    for note, message in (("", "say why"), ("a\x00b", "NUL"), ("x" * 2001, "2000")):
        response = lc("alice-analyst", "draft", source=edited_reminder(), note=note)
        assert response.status_code == 422, note[:5]
        assert message in " ".join(response.json["errors"]["note"])


def test_self_approval_is_refused_by_owner_whatever_the_keys_role(client, as_, lc):
    version = _draft(lc)
    assert lc("alice-analyst", "propose", version).status_code == 200
    for key in ("alice-approver", "alice-analyst"):
        response = lc(key, "approve", version)
        assert response.status_code == 403, key
    response = lc("alice-approver", "approve", version)
    assert response.json["detail"].startswith(
        "four eyes: alice drafted and proposed version 2; a different person must approve it"
    )
    assert (
        lc("alice-analyst", "approve", version)
        .json["detail"]
        .startswith(
            "API key 'alice-analyst' has role 'analyst'"  # the role, checked first
        )
    )
    assert lc("carol-approver", "approve", version).status_code == 200


def test_the_proposer_may_not_approve_a_version_someone_else_drafted(lc):
    version = _draft(lc, by="alice-analyst")
    assert lc("bob-analyst", "propose", version).status_code == 200
    response = lc("bob-approver", "approve", version)
    assert response.status_code == 403
    assert response.json["detail"].startswith("four eyes: bob proposed version 2;")
    assert lc("alice-approver", "approve", version).status_code == 403  # alice drafted it
    assert lc("carol-approver", "approve", version).json["state"] == "approved"


def test_moves_out_of_order_are_refused_naming_the_state(lc):
    version = _draft(lc)
    for key, move, message in (
        ("bob-approver", "approve", "only a proposed version can be approved; version 2 is draft"),
        ("bob-approver", "reject", "only a proposed version can be rejected; version 2 is draft"),
        (
            "bob-approver",
            "activate",
            "only an approved or retired version can be activated; version 2 is draft",
        ),
    ):
        response = lc(key, move, version)
        assert (response.status_code, response.json["detail"]) == (409, message)
    lc("alice-analyst", "propose", version)
    again = lc("alice-analyst", "propose", version)
    assert again.json["detail"] == "only a draft can be proposed; version 2 is proposed"
    assert lc("bob-approver", "activate", version).json["detail"].endswith("version 2 is proposed")
    lc("bob-approver", "approve", version)
    assert lc("bob-approver", "reject", version).json["detail"] == (
        "only a proposed version can be rejected; version 2 is approved"
    )
    assert lc("bob-approver", "activate", 1).json["detail"] == "version 1 is already active"


def test_a_rejected_version_stays_rejected(client, as_, lc):
    version = _draft(lc)
    lc("alice-analyst", "propose", version)
    rejected = lc("bob-approver", "reject", version, note="reason too long")
    assert rejected.status_code == 200 and rejected.json["state"] == "rejected"
    assert lc("bob-approver", "approve", version).status_code == 409
    assert lc("bob-approver", "activate", version).status_code == 409
    assert lc("alice-analyst", "propose", version).status_code == 409
    assert _events(client, as_)[-1] == (2, "rejected", "bob-approver", "bob", "reason too long")


def test_a_version_whose_tests_fail_cannot_be_proposed(client, as_, lc):
    version = _draft(lc, source=failing_reminder())
    tested = lc("alice-analyst", "test", version).json
    failed = [case for case in tested["cases"] if not case["passed"]]
    assert tested["failed"] == len(failed) == 1
    assert (failed[0]["expected"]["cadence_days"], failed[0]["actual"]["cadence_days"]) == (14, 21)
    response = lc("alice-analyst", "propose", version)
    assert response.status_code == 409
    assert response.json["detail"].startswith(
        "tests must pass before version 2 is proposed: 1 of 34 [[test]] cases fail: "
        "'a kept payment plan stays friendly however late' (cadence_days: expected 14, got 21)"
    )
    assert response.json["cases"] == failed
    state = client.get(f"{BASE}/versions/{version}", headers=as_("dave-auditor")).json["state"]
    assert state == "draft"


def test_a_rollback_needs_a_note_and_is_recorded_as_one(client, as_, lc):
    version = _draft(lc)
    lc("alice-analyst", "propose", version)
    lc("bob-approver", "approve", version)
    lc("bob-approver", "activate", version)
    refused = lc("bob-approver", "activate", 1)
    assert refused.status_code == 409
    assert refused.json["detail"] == (
        "a rollback needs a note: version 1 was active before; say why it goes back into use"
    )
    back = lc("bob-approver", "activate", 1, note="the new reason confused customers")
    assert back.status_code == 200 and back.json["state"] == "active"
    assert _events(client, as_)[-2:] == [
        (1, "rolled_back", "bob-approver", "bob", "the new reason confused customers"),
        (2, "retired", "bob-approver", "bob", "replaced by version 1"),
    ]
    assert lc("carol-approver", "activate", 2).status_code == 409  # retired: a rollback too
    assert lc("carol-approver", "activate", 2, note="fixed").json["state"] == "active"


def test_activating_an_approved_version_older_than_the_active_one_is_a_rollback(lc):
    older, newer = _draft(lc), _draft(lc, source=edited_reminder("agency's turn"))
    for version in (older, newer):
        lc("alice-analyst", "propose", version)
        lc("bob-approver", "approve", version)
    assert lc("bob-approver", "activate", newer).status_code == 200
    refused = lc("bob-approver", "activate", older)
    assert refused.json["detail"] == (
        "a rollback needs a note: version 2 is older than the active version 3; "
        "say why it goes back into use"
    )


def test_activation_at_a_time_is_pending_until_then(lc):
    """Issue 17: `at` makes a pending activation (tests/api/test_rollout_pending.py)."""
    version = _draft(lc)
    lc("alice-analyst", "propose", version)
    lc("bob-approver", "approve", version)
    response = lc("bob-approver", "activate", version, at="2030-01-01T00:00:00Z")
    assert response.status_code == 200, response.json
    assert (response.json["state"], response.json["activate_at"]) == (
        "approved",
        "2030-01-01T00:00:00+00:00",
    )


def test_roles_guard_each_move(client, as_, lc, auth):
    version = _draft(lc)
    assert lc("bob-approver", "draft", source=edited_reminder(), note="x").status_code == 403
    assert lc("bob-approver", "propose", version).status_code == 403
    assert lc("dave-auditor", "test", version).status_code == 403
    assert lc("bob-approver", "test", version).status_code == 200  # checking before approving
    admin = client.post(f"{BASE}/versions/{version}/propose", headers=auth("admin"))
    assert admin.status_code == 200
    for name in ("dave-auditor", "bob-approver", "alice-analyst"):
        assert client.get(f"{BASE}/versions/{version}", headers=as_(name)).status_code == 200
    assert client.get(f"{BASE}/versions/{version}", headers=auth("decide")).status_code == 403


def test_four_eyes_off_lets_one_person_approve(app, client, as_, lc):
    from dataclasses import replace

    settings = app.extensions["credo"].settings
    relaxed = replace(settings, rules=replace(settings.rules, four_eyes=False))
    app.extensions["credo"] = replace(app.extensions["credo"], settings=relaxed)
    version = _draft(lc)
    lc("alice-analyst", "propose", version)
    assert lc("alice-approver", "approve", version).status_code == 200


def test_unknown_kinds_versions_and_hostile_values_are_404_or_422(client, as_):
    header = as_("dave-auditor")
    for path, detail in (
        (f"{BASE}/versions/9", "rule set reminder has no version 9 (versions 1 to 1)"),
        (f"{BASE}/versions/99999999999999999999999", "rule set reminder has no version"),
        (
            "/v1/rulesets/reminders/versions/1",
            "unknown rule-set kind 'reminders'; known kinds: credit, handoff, reminder",
        ),
        (f"/v1/rulesets/{'x' * 5000}", "unknown rule-set kind"),
        (f"{BASE}/diff?from=1&to=7", "rule set reminder has no version 7"),
    ):
        response = client.get(path, headers=header)
        assert response.status_code == 404, path[:60]
        assert response.json["detail"].startswith(detail), response.json
    nul = client.get("/v1/rulesets/%00/versions/1", headers=header)  # not text: 422
    assert nul.status_code == 422 and "kind" in nul.json["errors"]
    # bytes that are not UTF-8: werkzeug's test client reads them as U+FFFD (an unknown kind)
    assert client.get("/v1/rulesets/%ED%A0%80", headers=header).status_code in (404, 422)
    bad = client.get(f"{BASE}/diff?from=0&to=x", headers=header)
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"from", "to"}
    analyst = as_("alice-analyst")
    for decision_id in ("a\x00b", "\ud800", "x" * 64):
        body = {"decision_id": decision_id}
        pinned = client.post(f"{BASE}/versions/1/test-cases", json=body, headers=analyst)
        assert pinned.status_code == 404 and pinned.json["detail"].startswith("no decision")
    for note in ("\ud800", "\x00"):
        moved = client.post(f"{BASE}/versions/1/propose", json={"note": note}, headers=analyst)
        assert moved.status_code == 422 and "cannot be stored" in moved.json["errors"]["note"][0]


def test_diff_names_rules_added_removed_and_changed_field_by_field(client, as_, lc):
    values = '"final", "demand"], default = "none"'
    source = edited_reminder().replace(values, values.replace('"demand"', '"demand", "call"'), 1)
    start = source.index('[[rule]]\nid = "RT-020"')
    end = source.index("[[rule]]", start + 1)
    source = source[:start] + source[end:]
    source = source.replace(
        'priority = 90\nwhen = "has_open_dispute', 'priority = 91\nwhen = "has_open_dispute'
    )
    source += (
        '\n[[rule]]\nid = "RT-999"\nname = "Call big debtors"\npriority = 1\n'
        'when = "overdue_balance > 500000"\nthen = { tone = "call" }\n'
        'reason = "{overdue_balance}"\n'
    )
    start = source.index('[[test]]\nname = "a collections hold pauses reminders"')
    end = source.index("[[test]]", start + 1)
    source = source[:start] + source[end:]  # it names RT-020 in `fired`
    version = _draft(lc, source=source)
    diff = client.get(f"{BASE}/diff?from=1&to={version}", headers=as_("dave-auditor")).json
    assert diff["from"]["version"] == 1 and diff["to"]["version"] == version
    assert [r["id"] for r in diff["rules"]["added"]] == ["RT-999"]
    assert diff["rules"]["added"][0]["when"] == "overdue_balance > 500000"
    assert [r["id"] for r in diff["rules"]["removed"]] == ["RT-020"]
    changed = {r["id"]: r["changes"] for r in diff["rules"]["changed"]}
    assert changed["RT-030"] == [{"field": "priority", "from": 90, "to": 91}]
    assert [c["field"] for c in changed["RT-010"]] == ["reason"]
    tone = diff["outcome"]["changed"][0]
    assert tone["field"] == "tone" and tone["changes"][0]["attribute"] == "values"
    assert "call" in tone["changes"][0]["to"] and "call" not in tone["changes"][0]["from"]
    assert diff["tests"] == {"added": [], "removed": ["a collections hold pauses reminders"]}
    assert diff["same_rules"] is False and diff["firing_order"] is None


def test_a_stored_decision_becomes_a_test_case_of_a_new_draft(client, as_, auth, customer):
    decided = client.post(
        "/v1/decisions/reminder",
        json={"customer_id": customer, "as_of": "2024-05-01"},
        headers=auth("decide"),
    ).json
    path = f"{BASE}/versions/1/test-cases"
    response = client.post(
        path, json={"decision_id": decided["decision_id"]}, headers=as_("alice-analyst")
    )
    assert response.status_code == 201, response.json
    draft = response.json
    assert (draft["version"], draft["state"]) == (2, "draft")
    case = draft["test_case"]
    assert case["name"] == f"decision {decided['decision_id'][:8]}: C1 as of 2024-05-01"
    stored = client.get(f"{BASE}/versions/2", headers=as_("alice-analyst")).json["source"]
    assert stored == reminder_source() + case["text"]
    tested = client.post(f"{BASE}/versions/2/test", headers=as_("alice-analyst")).json
    assert tested["failed"] == 0
    assert any(c["name"] == case["name"] and c["passed"] for c in tested["cases"])

    again = client.post(
        path, json={"decision_id": decided["decision_id"]}, headers=as_("alice-analyst")
    )
    assert again.status_code == 201  # base 1 does not have it yet
    named = client.post(
        f"{BASE}/versions/2/test-cases",
        json={"decision_id": decided["decision_id"], "name": case["name"]},
        headers=as_("alice-analyst"),
    )
    assert named.status_code == 422 and "has a [[test]] named" in named.json["errors"]["name"][0]
    nul = client.post(
        path,
        json={"decision_id": decided["decision_id"], "name": "a\u0000b"},
        headers=as_("alice-analyst"),
    )
    assert nul.status_code == 422, nul.json
    assert nul.json["errors"]["name"] == [
        "must not contain a NUL character (\\u0000 at character 2)"
    ]
    wrong = client.post(
        "/v1/rulesets/credit/versions/1/test-cases",
        json={"decision_id": decided["decision_id"]},
        headers=as_("alice-analyst"),
    )
    assert wrong.status_code == 422
    assert "is a reminder decision, not credit" in wrong.json["detail"]
    missing = client.post(path, json={"decision_id": "nope"}, headers=as_("alice-analyst"))
    assert missing.status_code == 404 and missing.json["detail"] == "no decision 'nope'"


def test_a_case_that_the_version_decides_otherwise_is_refused(client, as_, auth, customer, lc):
    decided = client.post(
        "/v1/decisions/reminder",
        json={"customer_id": customer, "as_of": "2024-05-01"},
        headers=auth("decide"),
    ).json
    tone = decided["outcome"]["tone"]
    source = reminder_source().replace(f'then = {{ tone = "{tone}"', 'then = { tone = "none"')
    version = _draft(lc, source=source) if source != reminder_source() else None
    assert version is not None, tone
    response = client.post(
        f"{BASE}/versions/{version}/test-cases",
        json={"decision_id": decided["decision_id"]},
        headers=as_("alice-analyst"),
    )
    assert response.status_code == 409
    assert f"tone: expected {tone}, got none" in response.json["detail"]
    assert len(client.get(BASE, headers=as_("dave-auditor")).json["history"]) == version


def test_activation_is_refused_when_an_active_rule_set_reads_what_the_version_drops(client, as_):
    """A hand-off version that no longer decides `offer_plan`, which the active reminder rule
    set (after handoff) compares handoff_action with: 409 naming both rule sets, nothing moved
    (api.usecases.cross_reference_problems, checked under the lock)."""
    from api_support import RULES_DIR

    source = (RULES_DIR / "handoff.toml").read_text(encoding="utf-8")
    dropped = source.replace(
        '"review_dispute", "offer_plan", "handoff"]', '"review_dispute", "handoff"]'
    )
    dropped = dropped[: dropped.index('[[rule]]\nid = "HO-095"')]  # the plan offers and tests
    dropped += '[[rule]]\nid = "HO-999"\nname = "Else"\npriority = 0\nwhen = "true"\n'
    dropped += 'then = { action = "none" }\nreason = "nothing"\n'
    base = "/v1/rulesets/handoff/versions"
    drafted = client.post(
        base, json={"source": dropped, "note": "no plans"}, headers=as_("alice-analyst")
    )
    assert drafted.status_code == 201, drafted.json
    version = drafted.json["version"]
    moved = client.post(f"{base}/{version}/propose", headers=as_("alice-analyst"))
    assert moved.status_code == 200, moved.json
    moved = client.post(f"{base}/{version}/approve", headers=as_("bob-approver"))
    assert moved.status_code == 200, moved.json

    refused = client.post(f"{base}/{version}/activate", headers=as_("bob-approver"))
    assert refused.status_code == 409, refused.json
    detail = refused.json["detail"]
    assert detail.startswith(f"version {version} of handoff cannot be activated")
    assert f"handoff version {version}" in detail and "rule set reminder" in detail
    assert "'offer_plan'" in detail
    history = client.get("/v1/rulesets/handoff", headers=as_("dave-auditor")).json["history"]
    assert [(v["version"], v["state"]) for v in history] == [(1, "active"), (version, "approved")]
