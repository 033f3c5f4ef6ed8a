"""The operator log through its faces (issue 15, item 4): each operator action — a key created
and revoked, a rule set published, approved and activated, a run, an import, a demo reset —
appears in `credo audit log` and GET /v1/audit/events with who did it; a row altered in SQL is
found by `credo audit log --verify` (exit 1); hostile query values are 422 naming the parameter.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal

import pytest
from click.testing import CliRunner
from lifecycle_support import edited_reminder, make_people

from api.cli.main import main


@pytest.fixture
def credo(settings, monkeypatch):
    """credo(*args, key=None) -> the click Result, on the test database; `key` names a key of
    lifecycle_support.PEOPLE to act as."""
    monkeypatch.setenv("CREDO_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CREDO_RUN_WORKERS", "1")
    people = make_people()
    runner = CliRunner()

    def run(*args: str, key: str | None = None):
        env = {"CREDO_KEY": people[key]} if key else {}
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield run
    for sig, handler in handlers.items():  # `credo run` in this process sets its own
        signal.signal(sig, handler)


def _log(credo, *args: str) -> list[dict]:
    result = credo("audit", "log", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ledger_file(tmp_path):
    path = tmp_path / "ledger.jsonl"
    records = [
        {"type": "customer", "id": "C9", "name": "Nine Ltd", "currency": "EUR",
         "credit_limit": "5000.00", "since": "2020-01-01"},
        {"type": "invoice", "id": "I9", "customer_id": "C9", "issue_date": "2024-04-01",
         "due_date": "2024-05-01", "amount": "700.00"},
        {"type": "invoice", "id": "bad", "customer_id": "NOBODY", "issue_date": "2024-04-01",
         "due_date": "2024-05-01", "amount": "1.00"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_every_operator_action_is_in_the_log_with_its_actor(credo, client, auth, tmp_path):
    created = credo("keys", "create", "--name", "erp-orders", "--role", "decide", "--json")
    key_id = json.loads(created.stdout)["id"]
    assert credo("keys", "revoke", str(key_id)).exit_code == 0
    path = tmp_path / "my.toml"
    path.write_text(edited_reminder(), encoding="utf-8")
    published = credo("rules", "publish", str(path), "--note", "shorter", key="alice-analyst")
    assert published.exit_code == 0, published.output
    assert credo("rules", "approve", "reminder", "2", key="bob-approver").exit_code == 0
    assert credo("rules", "activate", "reminder", "2", key="bob-approver").exit_code == 0
    imported = credo("import", str(_ledger_file(tmp_path)))
    assert imported.exit_code == 2  # one line rejected; the others stored
    ran = credo("run", "--as-of", "2024-06-03", "--json")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(ran.stdout)["run_id"]

    events = _log(credo)
    seen = [(e["kind"], e["actor"]) for e in events]
    assert seen[:6] == [("ruleset.drafted", "credo init"), ("ruleset.activated", "credo init")] * 3
    names = [e["details"].get("name") for e in events]
    mine = names.index("erp-orders")  # after the fixtures' keys (key.created, credo keys)
    assert set(seen[6:mine]) == {("key.created", "credo keys")}
    assert seen[mine:] == [
        ("key.created", "credo keys"),
        ("key.revoked", "credo keys"),
        ("ruleset.drafted", "alice-analyst"),
        ("ruleset.proposed", "alice-analyst"),
        ("ruleset.approved", "bob-approver"),
        ("ruleset.activated", "bob-approver"),
        ("ruleset.retired", "bob-approver"),
        ("import.done", "credo import"),
        ("run.started", "credo run"),
        ("run.finished", "credo run"),
    ]
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["key.revoked"]["details"] == {
        "id": key_id,
        "name": "erp-orders",
        "owner": "erp-orders",
        "role": "decide",
    }
    assert by_kind["ruleset.approved"]["details"]["owner"] == "bob"
    assert by_kind["import.done"]["details"] == {
        "file": str(tmp_path / "ledger.jsonl"),
        "format": "jsonl",
        "records": 3,
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
    }
    finished = by_kind["run.finished"]["details"]
    assert finished["run_id"] == run_id and finished["as_of"] == "2024-06-03"
    assert finished["customers_evaluated"] == 1 and finished["errors_count"] == 0
    assert by_kind["run.started"]["details"]["rulesets"]["reminder"]["version"] == 2

    # the API reads the same log, a page at a time
    page = client.get("/v1/audit/events?limit=10", headers=auth("auditor")).json
    assert page["items"] == events[:10] and page["next_cursor"] == "10"
    rulesets = client.get(
        "/v1/audit/events?kind=ruleset&actor=bob-approver", headers=auth("auditor")
    )
    assert [e["kind"] for e in rulesets.json["items"]] == [
        "ruleset.approved",
        "ruleset.activated",
        "ruleset.retired",
    ]
    newest = client.get("/v1/audit/events?order=desc&limit=1", headers=auth("auditor")).json
    assert newest["items"] == [events[-1]]
    assert [e["kind"] for e in _log(credo, "--kind", "run")] == ["run.started", "run.finished"]
    assert _log(credo, "--from", "2199-01-01") == []

    verified = credo("audit", "log", "--verify")
    assert verified.exit_code == 0
    head = events[-1]
    assert verified.stdout == (
        f"operator log OK: {len(events)} events, head #{head['seq']} {head['hash']}\n"
    )


def test_a_row_altered_in_sql_is_found_by_the_verify(credo):
    from storage.db import database

    credo("keys", "create", "--name", "erp-x", "--role", "admin")
    events = _log(credo)
    target = next(
        e for e in events if e["kind"] == "key.created" and e["details"]["name"] == "erp-x"
    )
    database.execute_sql(
        "UPDATE audit_event SET details = REPLACE(details, '\"admin\"', '\"auditor\"') "
        f"WHERE seq = {target['seq']}"
    )
    verified = credo("audit", "log", "--verify")
    assert verified.exit_code == 1
    assert verified.stdout.splitlines() == [
        "operator log BROKEN: 1 problem",
        f"  event #{target['seq']} (key.created): hash does not match the event's contents: "
        "the event was altered",
    ]
    as_json = json.loads(credo("audit", "log", "--verify", "--json").stdout)
    assert as_json["ok"] is False and as_json["problems"][0]["seq"] == target["seq"]
    database.execute_sql(f"DELETE FROM audit_event WHERE seq = {target['seq'] - 1}")
    problems = json.loads(credo("audit", "log", "--verify", "--json").stdout)["problems"]
    assert [p["seq"] for p in problems] == [target["seq"], target["seq"]]
    assert "missing (removed)" in problems[0]["problem"]


def test_the_demo_reset_starts_a_new_log_that_says_so(database_url, empty_db, monkeypatch):
    monkeypatch.setenv("CREDO_DATABASE_URL", database_url)
    runner = CliRunner()
    demo = ("demo", "--customers", "4", "--seed", "3", "--as-of", "2025-06-30")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(2):
            assert runner.invoke(main, list(demo), catch_exceptions=False).exit_code == 0
        events = json.loads(runner.invoke(main, ["audit", "log", "--json"]).stdout)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    kinds = [(e["kind"], e["actor"]) for e in events]
    assert kinds[6:] == [
        ("demo.reset", "credo demo"),
        ("run.started", "credo demo"),
        ("run.finished", "credo demo"),
        ("key.created", "credo demo"),
    ]
    assert events[6]["details"] == {
        "replaced": True,
        "customers": 4,
        "seed": 3,
        "as_of": "2025-06-30",
    }
    assert runner.invoke(main, ["audit", "log", "--verify"]).exit_code == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=%3DHYPERLINK(%22x%22)", "kind"),
        ("kind=+1", "kind"),
        ("kind=" + "a" * 100, "kind"),
        ("from=2024-13-01", "from"),
        ("to=-2", "to"),
        ("from=99999-01-01", "from"),
        ("actor=" + "x" * 201, "actor"),
        ("actor=%09tab", "actor"),
        ("actor=%ED%A0%80", "actor"),
        ("limit=0", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("cursor=@SUM(A1)", "cursor"),
        ("order=sideways", "order"),
    ],
)
def test_hostile_event_queries_are_422_naming_the_parameter(client, auth, query, field):
    response = client.get(f"/v1/audit/events?{query}", headers=auth("auditor"))
    assert response.status_code == 422, response.json
    assert field in response.json["errors"], response.json


def test_the_log_is_for_auditors(client, auth):
    assert client.get("/v1/audit/events", headers=auth("decide")).status_code == 403
    assert client.get("/v1/audit/events").status_code == 401
    assert client.get("/v1/audit/events", headers=auth("auditor")).status_code == 200


def test_bad_cli_arguments_exit_2_naming_the_option(credo):
    for args, option in (
        (("--kind", "=cmd"), "--kind"),
        (("--from", "yesterday"), "--from"),
        (("--to", "2024-02-30"), "--to"),
    ):
        result = credo("audit", "log", *args)
        assert result.exit_code == 2 and option in result.output, (args, result.output)


def test_the_openapi_document_has_the_audit_endpoints_behind_a_key(client):
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/v1/audit/events", "/v1/audit/export"):
        assert paths[path]["get"]["security"] == [{"bearerAuth": []}], path
    names = {p["name"] for p in paths["/v1/audit/export"]["get"]["parameters"]}
    assert names == {"from", "to", "format", "kind", "customer"}
