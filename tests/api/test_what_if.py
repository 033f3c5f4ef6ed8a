"""What-if that matches production (issue 14 item 7): `credo decide` and POST /v1/decisions/{kind}
decide through one use case with the active stored version; a what-if (a dry run, another
version, another text) is never stored; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from api_support import complete_facts
from click.testing import CliRunner
from lifecycle_support import reminder_source

from api.cli.main import main
from storage import rulesets

# Facts the reminder rules decide as "firm" (RT-130), whose reason version 2 rewords.
FACTS = complete_facts(
    days_past_due=16,
    overdue_balance="1000.00",
    overdue_1_30="1000.00",
    invoices_overdue=1,
    last_reminder_tone="friendly",
    days_since_last_reminder=9,
)
AS_OF = "2024-05-20"
FIRM = "16 days past due, 1000.00 overdue; after the friendly reminder a firm one is next"
SAME = ("kind", "customer_id", "as_of", "outcome", "reasons", "fired", "ruleset", "facts")


def reworded() -> str:
    source = reminder_source()
    changed = source.replace(
        "Oldest undisputed invoice {days_past_due} days",
        "Eldest undisputed invoice {days_past_due} days",
    )
    assert changed != source
    return changed


def store_version(source: str, state: str) -> int:
    """A version stored directly (the lifecycle's moves are tested elsewhere)."""
    from api.lifecycle_rules import parse_text

    parsed = parse_text(source, "test")  # after the active hand-off rule set
    files = rulesets.get_files("reminder", 1)
    stored = rulesets.create_version(
        "reminder", source, parsed.sha256, created_by="t", state=state, files=files
    )
    return stored["version"]


@pytest.fixture
def credo(settings, tmp_path):
    """credo("decide", ...) on the test database, the facts (if any) in a file."""

    def run(*args: str, facts: dict | None = None):
        extra = []
        if facts is not None:
            path = tmp_path / "facts.json"
            path.write_text(json.dumps(facts))
            extra = ["--facts", str(path)]
        env = {"CREDO_DATABASE_URL": settings.database_url}
        return CliRunner().invoke(main, [*args, *extra], env=env)

    return run


def stored_rows() -> tuple:
    """Everything a decision leaves behind: rows, tags, the chain's head, idempotency keys."""
    import peewee as pw

    from storage.idempotency import IdempotencyKey
    from storage.models import Decision, DecisionTag

    head = Decision.select(pw.fn.MAX(Decision.seq)).scalar()
    return (
        Decision.select().count(),
        DecisionTag.select().count(),
        head,
        IdempotencyKey.select().count(),
    )


def test_the_cli_and_the_api_decide_the_same_facts_with_the_active_version(client, auth, credo):
    version = store_version(reworded(), "active")  # rules/reminder.toml says "Oldest" still
    api = client.post(
        "/v1/decisions/reminder",
        json={"facts": FACTS, "as_of": AS_OF, "dry_run": True},
        headers=auth("decide"),
    )
    assert api.status_code == 200, api.json
    cli = credo("decide", "reminder", "--as-of", AS_OF, "--json", facts=FACTS)
    assert cli.exit_code == 0, cli.output
    what_if = json.loads(cli.stdout)
    assert {k: what_if[k] for k in SAME} == {k: api.json[k] for k in SAME}
    assert what_if["ruleset"]["version"] == version
    assert what_if["reasons"] == [f"Eldest undisputed invoice {FIRM}"]

    stored_api = client.post(
        "/v1/decisions/reminder", json={"facts": FACTS, "as_of": AS_OF}, headers=auth("decide")
    )
    stored_cli = credo("decide", "reminder", "--as-of", AS_OF, "--store", "--json", facts=FACTS)
    assert stored_api.status_code == 201 and stored_cli.exit_code == 0, stored_cli.output
    stored = json.loads(stored_cli.stdout)
    assert {k: stored[k] for k in SAME} == {k: stored_api.json[k] for k in SAME}
    assert {k: stored[k] for k in SAME} == {k: what_if[k] for k in SAME}
    assert stored["requested_by"] == "cli" and stored_api.json["requested_by"] == "erp-decide"
    assert (stored["via"], stored_api.json["via"], api.json["via"]) == ("cli", "api", "api")
    assert stored["format"] == stored_api.json["format"] == 5


def test_a_what_if_is_marked_and_leaves_the_decision_table_and_chain_untouched(
    client, auth, credo, customer
):
    from storage.decisions import verify_chain

    client.post("/v1/decisions/credit", json={"customer_id": customer}, headers=auth("decide"))
    before = stored_rows()
    draft = store_version(reworded(), "draft")
    asks = (
        {"customer_id": customer, "dry_run": True},
        {"customer_id": customer, "facts": {"requested_amount": "900.00"}, "dry_run": True},
        {"facts": FACTS, "dry_run": True, "version": draft},
        {"facts": FACTS, "dry_run": True, "version": 1},
    )
    for body in asks:
        for headers in (auth("decide"), {**auth("decide"), "Idempotency-Key": "order-1"}):
            kind = "credit" if "customer_id" in body else "reminder"
            answer = client.post(f"/v1/decisions/{kind}", json=body, headers=headers)
            assert answer.status_code == 200, answer.json
            assert answer.json["dry_run"] is True and "decision_id" not in answer.json
            assert "Location" not in answer.headers and "hash" not in answer.json
    for args in (
        ("decide", "credit", "--customer", customer),
        ("decide", "reminder", "--customer", customer, "--version", str(draft)),
    ):
        decided = credo(*args, "--json")
        assert decided.exit_code == 0, decided.output
        assert json.loads(decided.stdout)["dry_run"] is True
    shown = credo("decide", "credit", "--customer", customer)
    assert "(what-if, version 1)" in shown.stdout and "not stored" in shown.stdout
    assert stored_rows() == before
    assert verify_chain() == []
    # the same key once stored still answers the stored decision, untouched by the dry runs
    kept = client.post(
        "/v1/decisions/credit",
        json={"customer_id": customer},
        headers={**auth("decide"), "Idempotency-Key": "order-1"},
    )
    assert kept.status_code == 201 and stored_rows()[3] == before[3] + 1


def test_a_draft_or_retired_version_is_evaluated_as_a_what_if(client, auth, credo):
    draft = store_version(reworded(), "draft")
    body = {"facts": FACTS, "as_of": AS_OF, "dry_run": True}
    drafted = client.post(
        "/v1/decisions/reminder", json={**body, "version": draft}, headers=auth("decide")
    )
    assert drafted.status_code == 200, drafted.json
    assert drafted.json["ruleset"] == {
        "kind": "reminder",
        "version": draft,
        "sha256": rulesets.get_version("reminder", draft)["sha256"],
    }
    assert drafted.json["reasons"] == [f"Eldest undisputed invoice {FIRM}"]
    active = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert active.json["ruleset"]["version"] == 1
    assert active.json["reasons"] == [f"Oldest undisputed invoice {FIRM}"]

    rulesets.set_state("reminder", draft, "active", by="t")  # version 1 is retired now
    retired = client.post(
        "/v1/decisions/reminder", json={**body, "version": 1}, headers=auth("decide")
    )
    assert retired.json["ruleset"]["version"] == 1
    assert retired.json["reasons"] == active.json["reasons"]
    cli = credo("decide", "reminder", "--version", "1", "--as-of", AS_OF, "--json", facts=FACTS)
    assert cli.exit_code == 0, cli.output
    assert {k: json.loads(cli.stdout)[k] for k in SAME} == {k: retired.json[k] for k in SAME}


def test_a_rule_file_is_a_what_if_only(credo, tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(reworded())
    decided = credo("decide", "reminder", "--rules", str(mine), "--json", facts=FACTS)
    assert decided.exit_code == 0, decided.output
    answer = json.loads(decided.stdout)
    assert answer["ruleset"]["version"] is None and answer["dry_run"] is True
    assert answer["reasons"][0].startswith("Eldest undisputed invoice")
    for what in (("--rules", str(mine)), ("--version", "1")):
        refused = credo("decide", "reminder", *what, "--store", facts=FACTS)
        assert refused.exit_code == 2
        assert "a stored decision is always made by the active version" in refused.output
    other = credo("decide", "credit", "--rules", str(mine), facts=FACTS)
    assert other.exit_code == 2 and "a reminder rule set, not credit" in other.output


def test_an_unknown_version_or_kind_is_404_and_exit_2(client, auth, credo):
    body = {"facts": FACTS, "dry_run": True, "version": 99}
    missing = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert missing.status_code == 404
    assert missing.json["detail"] == "rule set reminder has no version 99 (versions 1 to 1)"
    cli = credo("decide", "reminder", "--version", "99", facts=FACTS)
    assert cli.exit_code == 2 and "rule set reminder has no version 99" in cli.output
    kind = client.post("/v1/decisions/nope", json=body, headers=auth("decide"))
    assert kind.status_code == 404 and "unknown rule-set kind 'nope'" in kind.json["detail"]
    cli = credo("decide", "nope", facts=FACTS)
    assert cli.exit_code == 2 and "unknown decision kind 'nope'" in cli.output


@pytest.mark.parametrize("version", [0, -1, 10**30, "1", True, 1.5, None, [1]])
def test_hostile_versions_are_422_naming_version(client, auth, version):
    body = {"facts": FACTS, "dry_run": True, "version": version}
    refused = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["version"]


@pytest.mark.parametrize("dry_run", [False, None])
def test_a_version_without_a_dry_run_is_422_naming_version(client, auth, dry_run):
    body = {"facts": FACTS, "version": 1}
    if dry_run is not None:
        body["dry_run"] = dry_run
    refused = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert refused.status_code == 422
    assert refused.json["errors"] == {
        "version": [
            'evaluates another stored version: dry runs only (add "dry_run": true); a stored '
            "decision is always made by the active version"
        ]
    }


@pytest.mark.parametrize("dry_run", ["true", 1, "yes", None])
def test_dry_run_is_true_or_false_nothing_else(client, auth, dry_run):
    body = {"facts": FACTS, "dry_run": dry_run}
    refused = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["dry_run"]


@pytest.mark.parametrize("version", ["0", "-1", str(10**30), "one"])
def test_hostile_cli_versions_exit_2(credo, version):
    refused = credo("decide", "reminder", "--version", version, facts=FACTS)
    assert refused.exit_code == 2 and "--version" in refused.output


def test_the_openapi_document_describes_dry_runs(client):
    spec = client.get("/openapi.json").json
    request = spec["components"]["schemas"]["DecisionRequest"]["properties"]
    assert request["dry_run"]["type"] == "boolean" and request["version"]["minimum"] == 1
    answers = spec["paths"]["/v1/decisions/{kind_or_id}"]["post"]["responses"]
    refs = [s["$ref"] for s in answers["200"]["content"]["application/json"]["schema"]["oneOf"]]
    assert refs == ["#/components/schemas/Decision", "#/components/schemas/WhatIfDecision"]
    what_if = spec["components"]["schemas"]["WhatIfDecision"]
    assert "dry_run" in what_if["required"] and "decision_id" not in what_if["properties"]
