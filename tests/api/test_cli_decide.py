"""`credo decide`: a what-if from a facts file, or a stored decision for a stored customer."""

from __future__ import annotations

import json

from api_support import CUSTOMER, invoice
from click.testing import CliRunner

from api.cli.main import main


def test_decide_for_a_stored_customer_stores_the_decision(settings, monkeypatch, tmp_path):
    from storage.decisions import get_decision
    from storage.ledger import upsert_records

    upsert_records(
        [
            {"type": "customer", "id": "K-7", **CUSTOMER},
            {"type": "invoice", **invoice("I-1", "K-7", "2026-01-02", "2026-02-01", "900.00")},
        ]
    )
    monkeypatch.setenv("CREDO_DATABASE_URL", settings.database_url)
    facts = tmp_path / "extra.json"
    facts.write_text(json.dumps({"requested_amount": 1500}))
    result = CliRunner().invoke(
        main,
        ["decide", "credit", "--customer", "K-7", "--facts", str(facts), "--store", "--json"],
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["facts"]["requested_amount"] == "1500.00"
    assert decision["ruleset"]["version"] == 1 and decision["requested_by"] == "cli"
    assert decision["via"] == "cli"
    assert get_decision(decision["decision_id"])["hash"] == decision["hash"]


def test_decide_for_an_unknown_customer_is_a_usage_error(settings, monkeypatch):
    monkeypatch.setenv("CREDO_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["decide", "credit", "--customer", "NOPE"])
    assert result.exit_code == 2 and "unknown customer 'NOPE'" in result.output


def test_a_facts_file_with_a_lone_surrogate_is_bad_input_naming_the_fact(
    settings, monkeypatch, tmp_path
):
    from api_support import complete_facts

    monkeypatch.setenv("CREDO_DATABASE_URL", settings.database_url)

    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(complete_facts(segment="smb\ud800")), encoding="ascii")
    result = CliRunner().invoke(main, ["decide", "credit", "--facts", str(facts)])
    assert result.exit_code == 2, result.output
    assert "segment: must be valid Unicode: lone surrogate \\ud800" in result.output
