"""`credo demo` replaces only what it made itself: a demo database that someone then used
(keys, imports, decisions through the API or the CLI, rule-set versions) is refused, saying
what it holds, unless --force; a running server whose SQLite file is deleted is not ready."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from api_support import make_settings
from click.testing import CliRunner

from api.cli.main import main

DEMO = ("demo", "--customers", "8", "--seed", "3", "--as-of", "2025-06-30")


@pytest.fixture
def credo(database_url, monkeypatch):
    """credo(*args) -> click Result, with the test database configured."""
    monkeypatch.setenv("CREDO_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield run
    for sig, handler in handlers.items():  # `credo run` in this process set its own
        signal.signal(sig, handler)


def _count(table: str) -> int:
    from storage.db import database

    return database.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]


def _use_the_demo_database(database_url: str, tmp_path: Path) -> None:
    """What a user following the README does after `credo demo`: keys, an import, decisions
    through the API and the CLI, a rule-set version."""
    from api.app import create_app
    from storage import keys, ledger, rulesets

    erp, _ = keys.create_key("erp", "decide")
    keys.create_key("alice", "analyst")
    customer = {"type": "customer", "id": "ACME", "name": "Acme", "currency": "EUR"}
    assert ledger.upsert_records([{**customer, "credit_limit": 10, "since": "2020-01-01"}]).inserted
    app = create_app(make_settings(database_url, tmp_path).with_database_url(database_url))
    try:
        answer = app.test_client().post(
            "/v1/decisions/credit",
            json={"customer_id": "ACME", "as_of": "2025-06-30"},
            headers={"Authorization": f"Bearer {erp}"},
        )
    finally:
        app.extensions["credo"].database.close_all()
    assert answer.status_code == 201, answer.json
    source = rulesets.get_active("credit")["source"]
    rulesets.create_version("credit", source + "\n", "f" * 64, created_by="alice")


def test_demo_refuses_a_demo_database_someone_used_and_says_what_it_holds(
    credo, empty_db, database_url, tmp_path
):
    first = credo(*DEMO, "--json")
    assert first.exit_code == 0, first.output
    _use_the_demo_database(database_url, tmp_path)
    cli = CliRunner().invoke(
        main,
        ["decide", "credit", "--customer", "C000001", "--as-of", "2025-06-30", "--store", "--json"],
    )
    assert cli.exit_code == 0, cli.output
    before = {t: _count(t) for t in ("api_key", "customer", "decision", "rule_set_version")}

    refused = credo(*DEMO)

    assert refused.exit_code == 2
    message = " ".join(refused.output.split())
    assert "refusing: database" in message
    assert "2 API keys, 1 customer, 2 decisions, 1 rule-set version" in message
    assert "use --force to replace it" in message
    assert {t: _count(t) for t in before} == before  # nothing was touched

    forced = credo(*DEMO, "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["decisions"] == json.loads(first.stdout)["decisions"]
    assert (_count("api_key"), _count("customer")) == (0, 8)


def test_a_runs_decisions_are_not_the_demos_either(credo, empty_db):
    assert credo(*DEMO).exit_code == 0
    assert credo("run", "--as-of", "2025-07-01").exit_code == 0
    refused = credo(*DEMO)
    assert refused.exit_code == 2
    assert "1 run" in refused.output and "decisions" in refused.output


def test_an_unused_demo_database_is_replaced_without_force(credo, empty_db):
    assert credo(*DEMO).exit_code == 0
    decided = _count("decision")
    again = credo(*DEMO)
    assert again.exit_code == 0, again.output
    assert "The database was replaced" in again.output
    assert _count("decision") == decided


@pytest.mark.parametrize("marker", ['{"customers": 8, "seed": 3, "as_of": "2025-06-30"}', "{"])
def test_a_demo_that_did_not_record_what_it_made_is_refused(credo, empty_db, marker):
    """An interrupted demo, or one of an earlier release, recorded no counts: the demo cannot
    tell its data from someone's, so it asks for --force."""
    from storage.models import Meta

    assert credo(*DEMO).exit_code == 0
    Meta.update(value=marker).where(Meta.key == "demo").execute()
    refused = credo(*DEMO)
    assert refused.exit_code == 2 and "did not finish" in refused.output
    assert credo(*DEMO, "--force").exit_code == 0


def test_a_database_the_demo_did_not_make_is_replaced_only_with_force(credo, empty_db):
    assert credo("init").exit_code == 0
    assert credo("keys", "create", "--name", "erp", "--role", "decide").exit_code == 0
    refused = credo(*DEMO)
    assert refused.exit_code == 2 and "(1 API key)" in " ".join(refused.output.split())
    assert credo(*DEMO, "--force").exit_code == 0
    assert _count("api_key") == 0 and _count("customer") == 8


def test_readyz_fails_when_the_sqlite_file_is_deleted_or_replaced(tmp_path):
    """A server that went on serving a deleted file answered ready: it must say it is not."""
    from api.app import create_app
    from api.usecases import init_database

    path = tmp_path / "credo.db"
    url = f"sqlite:///{path}"
    init_database(url, make_settings(url, tmp_path).rules_dir)
    app = create_app(make_settings(url, tmp_path).with_database_url(url))
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        gone = client.get("/readyz")
        assert gone.status_code == 503
        assert "is gone" in gone.json["detail"] and str(path) in gone.json["detail"]

        init_database(url, make_settings(url, tmp_path).rules_dir)  # a new file, same name
        replaced = client.get("/readyz")
        assert replaced.status_code == 503 and "was replaced" in replaced.json["detail"]
    finally:
        app.extensions["credo"].database.close_all()
