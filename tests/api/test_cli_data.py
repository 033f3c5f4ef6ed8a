"""`credo init`, `credo import` and `credo demo` through the real command line group."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from api.cli.main import main


@pytest.fixture
def credo(database_url, monkeypatch):
    """credo(*args) -> click Result, with the test database configured."""
    monkeypatch.setenv("CREDO_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def _tables_and_counts(db) -> dict:
    tables = ("rule_set_version", "ruleset_event", "schema_version", "customer", "decision")
    return {t: db.execute_sql(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


def test_init_twice_changes_nothing(credo, empty_db):
    first = credo("init", "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert [r["action"] for r in report["rulesets"]] == ["loaded"] * 3
    counts = _tables_and_counts(empty_db)
    second = credo("init")
    assert second.exit_code == 0
    assert "up to date" in second.stdout
    assert "rule set credit: version 1 active (as shipped)" in second.stdout
    assert _tables_and_counts(empty_db) == counts
    from storage import rulesets

    assert [v["kind"] for v in rulesets.list_active()] == ["credit", "handoff", "reminder"]


def test_import_reports_rejections_and_exits_2(credo, empty_db, tmp_path):
    path = tmp_path / "customers.jsonl"
    path.write_text(
        '{"type": "customer", "id": "C1", "name": "A", "currency": "EUR", '
        '"credit_limit": 10, "since": "2020-01-01"}\n'
        '{"type": "customer", "id": "C2", "name": "B", "currency": "EUR", '
        '"credit_limit": 10.001, "since": "2020-01-01"}\n',
        encoding="utf-8",
    )
    before_init = credo("import", str(path))
    assert before_init.exit_code == 2 and "credo init" in before_init.output
    credo("init")
    result = credo("import", str(path), "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert (report["inserted"], report["rejected"][0]["line"]) == (1, 2)
    assert report["rejected"][0]["errors"] == {"credit_limit": ["must have at most two decimals"]}
    plain = credo("import", str(path))
    assert "line 2 (customer C2): credit_limit: must have at most two decimals" in plain.output
    assert "1 unchanged, 1 rejected" in plain.stdout


def test_demo_decides_the_portfolio_and_refuses_other_data(credo, empty_db, tmp_path):
    result = credo("demo", "--customers", "40", "--seed", "3", "--as-of", "2025-06-30", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["customers"] == 40 and summary["records"] > 40 * 20
    assert set(summary["decisions"]) == {"credit", "handoff", "reminder"}
    decided = sum(summary["decisions"]["credit"].values())
    assert decided == sum(summary["decisions"]["reminder"].values()) > 20
    assert len(summary["riskiest"]) == 10

    from storage import decisions

    assert decisions.verify_chain() == []
    again = credo("demo", "--customers", "40", "--seed", "3", "--as-of", "2025-06-30", "--json")
    assert json.loads(again.stdout)["decisions"] == summary["decisions"]
    assert decisions.count_decisions() == decided * 3  # started afresh, not added to

    from storage.models import Meta

    # The command left the storage proxy bound to the demo database.
    Meta.delete().execute()  # now it looks like someone's real data
    refused = credo("demo", "--customers", "5")
    assert refused.exit_code == 2 and "did not make" in refused.output


def test_import_stores_the_good_lines_around_unstorable_ones_and_exits_2(credo, empty_db, tmp_path):
    def customer(customer_id: str, name: str) -> str:
        record = {"type": "customer", "id": customer_id, "name": name, "currency": "EUR"}
        return json.dumps({**record, "credit_limit": 10, "since": "2020-01-01"})

    credo("init")
    first = tmp_path / "first.jsonl"
    first.write_text(customer("C0", "Stored before") + "\n", encoding="utf-8")
    assert credo("import", str(first)).exit_code == 0
    path = tmp_path / "ledger.jsonl"
    lines = [("C1", "Good"), ("C2", "Bad \ud800"), ("C3", "Good"), ("C4", "Bad \x00"), ("C5", "Ok")]
    path.write_text("\n".join(customer(*line) for line in lines) + "\n", encoding="ascii")
    result = credo("import", str(path))
    assert result.exit_code == 2, result.output
    assert "line 2 (customer C2): name: must be valid Unicode: lone surrogate" in result.stderr
    assert "line 4 (customer C4): name: must not contain a NUL character" in result.stderr
    assert "3 inserted, 0 updated, 0 unchanged, 2 rejected" in result.stdout
    report = json.loads(credo("import", str(path), "--json").stdout)
    assert [(r["line"], list(r["errors"])) for r in report["rejected"]] == [
        (2, ["name"]),
        (4, ["name"]),
    ]
    from storage.models import Customer

    stored = sorted(i for (i,) in Customer.select(Customer.id).tuples())
    assert stored == ["C0", "C1", "C3", "C5"]
