"""`credo keys create|list|revoke` and `credo serve --help`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from api.cli.main import main


@pytest.fixture
def run(db, database_url):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), env={"CREDO_DATABASE_URL": database_url})

    return invoke


def test_keys_create_prints_the_key_alone_on_the_last_line(run):
    from storage.keys import verify_key

    result = run("keys", "create", "--name", "erp", "--role", "decide")
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[-1]
    assert key.startswith("credo_") and " " not in key
    assert key not in result.stderr
    info = verify_key(key)
    assert (info.name, info.role) == ("erp", "decide")


def test_keys_list_shows_no_secret_and_revoke_stops_a_key(run):
    from storage.keys import verify_key

    key = run("keys", "create", "--name", "ledger-sync", "--role", "auditor").stdout.split()[-1]
    listed = run("keys", "list")
    assert listed.exit_code == 0
    assert "ledger-sync" in listed.stdout and "auditor" in listed.stdout
    assert key not in listed.stdout
    keys = json.loads(run("keys", "list", "--json").stdout)
    assert [k["name"] for k in keys] == ["ledger-sync"]
    assert "key" not in keys[0] and "key_hash" not in keys[0]

    revoked = run("keys", "revoke", str(keys[0]["id"]))
    assert revoked.exit_code == 0 and "Revoked key" in revoked.stdout
    assert verify_key(key) is None
    assert json.loads(run("keys", "list", "--active", "--json").stdout) == []


def test_keys_bad_input_exits_2(run):
    assert run("keys", "create", "--name", "x", "--role", "boss").exit_code == 2
    assert run("keys", "create", "--name", " ", "--role", "admin").exit_code == 2
    missing = run("keys", "revoke", "999")
    assert missing.exit_code == 2 and "no API key with id 999" in missing.output


def test_keys_on_an_uninitialised_database_say_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(main, ["keys", "list"], env={"CREDO_DATABASE_URL": url})
    assert result.exit_code == 2
    assert "credo init" in result.output


def test_keys_create_json_includes_the_key(run):
    result = run("keys", "create", "--name", "bot", "--role", "admin", "--json")
    data = json.loads(result.stdout)
    assert data["key"].startswith("credo_") and data["role"] == "admin"


def test_serve_has_host_and_port_options():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output


def test_keys_create_refuses_a_taken_name_with_exit_2(run):
    assert run("keys", "create", "--name", "erp", "--role", "decide").exit_code == 0
    again = run("keys", "create", "--name", "erp", "--role", "admin")
    assert again.exit_code == 2
    assert "an API key named 'erp' exists already" in again.output
    assert len(json.loads(run("keys", "list", "--json").stdout)) == 1


def test_keys_create_refuses_hostile_names_with_exit_2(run):
    for name in ("x" * 10_000, "erp\x00", "erp\ud800", "=cmd|' /C calc'!A0", "cli"):
        result = run("keys", "create", "--name", name, "--role", "decide")
        assert result.exit_code == 2, (name[:20], result.output)
        assert "name: " in result.output
    bad_owner = run("keys", "create", "--name", "erp", "--role", "decide", "--owner", "@SUM(1)")
    assert bad_owner.exit_code == 2 and "owner: " in bad_owner.output
    assert json.loads(run("keys", "list", "--json").stdout) == []


def test_keys_list_shows_each_keys_owner(run):
    run("keys", "create", "--name", "alice-analyst", "--role", "analyst", "--owner", "alice")
    made = run("keys", "create", "--name", "erp", "--role", "decide", "--json")
    assert json.loads(made.stdout)["owner"] == "erp"
    listed = run("keys", "list")
    assert "owner" in listed.stdout.splitlines()[0]
    assert [line.split()[1:3] for line in listed.stdout.splitlines()[1:]] == [
        ["alice-analyst", "alice"],
        ["erp", "erp"],
    ]
    as_json = json.loads(run("keys", "list", "--json").stdout)
    assert [(k["name"], k["owner"]) for k in as_json] == [
        ("alice-analyst", "alice"),
        ("erp", "erp"),
    ]
