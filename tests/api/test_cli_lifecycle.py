"""`credo rules publish|propose|approve|reject|activate|history|show|diff|add-test` and `credo
init` offering a changed shipped default as a draft, on SQLite and PostgreSQL (issue 14)."""

from __future__ import annotations

import json
import shutil

import pytest
from api_support import RULES_DIR
from click.testing import CliRunner
from lifecycle_support import edited_reminder, failing_reminder, make_people, reminder_source

from api.cli.main import main


@pytest.fixture
def credo(settings):
    """credo(*args, key=None) -> the result of one command acting as a key of PEOPLE."""
    keys = make_people()
    runner = CliRunner()

    def run(*args: str, key: str | None = None, raw_key: str | None = None):
        env = {"CREDO_DATABASE_URL": settings.database_url, "CREDO_KEY": raw_key}
        if key is not None:
            env["CREDO_KEY"] = keys[key]
        return runner.invoke(main, list(args), env=env)

    return run


@pytest.fixture
def my_rules(credo, tmp_path):
    """my.toml, started as the docs say: `credo rules show reminder > my.toml`, then edited."""
    shown = credo("rules", "show", "reminder")
    assert shown.exit_code == 0 and shown.stdout == reminder_source()
    path = tmp_path / "my.toml"
    path.write_text(shown.stdout.replace("the agency does the chasing", "the agency chases"))
    assert path.read_text() == edited_reminder()
    return path


def test_publish_approve_activate_and_history(credo, my_rules, client, auth):
    published = credo("rules", "publish", str(my_rules), "--note", "shorter", key="alice-analyst")
    assert published.exit_code == 0, published.output
    assert published.stdout.splitlines()[-2:] == [
        "reminder version 2: proposed (by alice-analyst, owner alice)",
        "next: an approver runs `credo rules approve reminder 2`",
    ]
    assert "34 [[test]] cases pass, smoke test passes" in published.stdout
    approved = credo("rules", "approve", "reminder", "2", "--json", key="bob-approver")
    assert approved.exit_code == 0 and json.loads(approved.stdout)["state"] == "approved"
    activated = credo("rules", "activate", "reminder", "2", key="bob-approver")
    assert activated.stdout.startswith("reminder version 2: active (by bob-approver, owner bob)")

    history = credo("rules", "history", "reminder")
    assert history.exit_code == 0
    lines = history.stdout.splitlines()
    assert lines[0] == "reminder: active version 2"
    events = [line.split("Z  ", 1)[1] for line in lines if "Z  version" in line]
    loaded = "by credo init (credo init): default rule set loaded from reminder.toml"
    assert events == [
        f"version 1    drafted     {loaded}",
        f"version 1    activated   {loaded}",
        "version 2    drafted     by alice-analyst (alice): shorter",
        "version 2    proposed    by alice-analyst (alice): shorter",
        "version 2    approved    by bob-approver (bob)",
        "version 2    activated   by bob-approver (bob)",
        "version 1    retired     by bob-approver (bob): replaced by version 2",
    ]
    # --json answers what the API answers
    auditor = auth("auditor")
    for args, path in (
        (("history", "reminder"), "/v1/rulesets/reminder"),
        (("show", "reminder", "1"), "/v1/rulesets/reminder/versions/1"),
        (("diff", "reminder", "1", "2"), "/v1/rulesets/reminder/diff?from=1&to=2"),
    ):
        cli = json.loads(credo("rules", *args, "--json").stdout)
        assert cli == client.get(path, headers=auditor).json, args


def test_lifecycle_commands_need_a_valid_key(credo, my_rules):
    missing = credo("rules", "publish", str(my_rules), "--note", "x")
    assert missing.exit_code == 2
    assert "pass --key KEY or set CREDO_KEY=KEY" in missing.output
    wrong = credo("rules", "approve", "reminder", "1", raw_key="credo_nope")
    assert wrong.exit_code == 2 and "invalid or revoked API key" in wrong.output
    role = credo("rules", "publish", str(my_rules), "--note", "x", key="bob-approver")
    assert role.exit_code == 2
    assert "roles: key 'bob-approver' has role 'approver'; draft needs 'analyst'" in role.output
    assert json.loads(credo("rules", "history", "reminder", "--json").stdout)["history"][1:] == []


def test_self_approval_out_of_order_moves_and_rollbacks_are_refused(credo, my_rules):
    credo("rules", "publish", str(my_rules), "--note", "x", key="alice-analyst")
    own = credo("rules", "approve", "reminder", "2", key="alice-approver")
    assert own.exit_code == 2
    assert "four eyes: alice drafted and proposed version 2; a different person must approve" in (
        own.output
    )
    early = credo("rules", "activate", "reminder", "2", key="bob-approver")
    assert early.exit_code == 2
    assert "only an approved or retired version can be activated; version 2 is proposed" in (
        early.output
    )
    credo("rules", "approve", "reminder", "2", key="bob-approver")
    late = credo("rules", "reject", "reminder", "2", key="bob-approver")
    assert late.exit_code == 2
    assert "only a proposed version can be rejected; version 2 is approved" in late.output
    credo("rules", "activate", "reminder", "2", key="bob-approver")
    back = credo("rules", "activate", "reminder", "1", key="bob-approver")
    assert back.exit_code == 2 and "a rollback needs a note: version 1 was active before" in (
        back.output
    )
    noted = credo("rules", "activate", "reminder", "1", "--note", "undo", key="bob-approver")
    assert noted.exit_code == 0
    last = json.loads(credo("rules", "history", "reminder", "--json").stdout)["events"][-2]
    assert (last["version"], last["event"], last["note"]) == (1, "rolled_back", "undo")


def test_publishing_failing_or_invalid_rules_stores_nothing(credo, tmp_path):
    failing = tmp_path / "failing.toml"
    failing.write_text(failing_reminder())
    result = credo("rules", "publish", str(failing), "--note", "x", key="alice-analyst")
    assert result.exit_code == 1
    assert "FAIL  a kept payment plan stays friendly however late" in result.stderr
    assert "≠ cadence_days: expected 14, got 21" in result.stderr
    assert "tests must pass before" in result.stderr
    invalid = tmp_path / "invalid.toml"
    invalid.write_text(reminder_source().replace('when = "in_agency"', 'when = "in_agencyy"'))
    result = credo("rules", "publish", str(invalid), "--note", "x", key="alice-analyst")
    assert result.exit_code == 2
    line = invalid.read_text().split("\n").index('when = "in_agencyy"') + 1
    assert f"{invalid}:{line}: rule RT-010: when: unknown fact 'in_agencyy'" in result.stderr
    assert json.loads(credo("rules", "history", "reminder", "--json").stdout)["history"][1:] == []

    from api.lifecycle import Credo, draft_version

    draft_version("reminder", failing_reminder(), "stored as a draft", Credo())
    proposed = credo("rules", "propose", "reminder", "2", key="alice-analyst")
    assert proposed.exit_code == 1
    assert "tests must pass before version 2 is proposed: 1 of 34 [[test]] cases fail" in (
        proposed.stderr
    )


def test_show_prints_the_exact_source_and_diff_the_changes(credo, my_rules):
    credo("rules", "publish", str(my_rules), "--note", "x", key="alice-analyst")
    assert credo("rules", "show", "reminder", "2").stdout == edited_reminder()
    assert credo("rules", "show", "reminder").stdout == reminder_source()  # the active one
    diff = credo("rules", "diff", "reminder", "1", "2")
    assert diff.exit_code == 0
    assert diff.stdout.splitlines()[:3] == [
        "reminder: version 1 (active) → version 2 (proposed)",
        "~ rule RT-010",
        '      reason: "The account is with a collection agency ({overdue_balance} overdue); the '
        'agency does the chasing" → "The account is with a collection agency ({overdue_balance} '
        'overdue); the agency chases"',
    ]
    missing = credo("rules", "show", "reminder", "7")
    assert missing.exit_code == 2 and "rule set reminder has no version 7" in missing.output


def test_add_test_pins_a_decision_in_a_file_or_a_new_draft(credo, customer, tmp_path):
    decided = credo(
        "decide", "reminder", "--customer", customer, "--as-of", "2024-05-01", "--store", "--json"
    )
    decision_id = json.loads(decided.stdout)["decision_id"]
    path = tmp_path / "my.toml"
    original = credo("rules", "show", "reminder").stdout.encode() + b"# no newline at the end"
    path.write_bytes(original)
    added = credo(
        "rules", "add-test", decision_id, "--file", str(path), "--name", 'C1 "as audited"'
    )
    assert added.exit_code == 0, added.output
    assert added.stdout == f"{path}: appended [[test]] 'C1 \"as audited\"'; it passes there\n"
    after = path.read_bytes()
    assert after.startswith(original + b"\n\n# Pinned from decision " + decision_id.encode())
    tested = credo("rules", "test", str(path))
    assert tested.exit_code == 0 and f'PASS  {path}: C1 "as audited"' in tested.stdout

    twice = credo(
        "rules", "add-test", decision_id, "--file", str(path), "--name", 'C1 "as audited"'
    )
    assert twice.exit_code == 2 and "has a [[test]] named" in twice.output
    assert path.read_bytes() == after
    both = credo("rules", "add-test", decision_id, "--file", str(path), "--draft")
    assert both.exit_code == 2
    keyless = credo("rules", "add-test", decision_id, "--draft")
    assert keyless.exit_code == 2 and "CREDO_KEY" in keyless.output
    drafted = credo("rules", "add-test", decision_id, "--draft", "--json", key="alice-analyst")
    assert drafted.exit_code == 0, drafted.output
    draft = json.loads(drafted.stdout)
    assert (draft["version"], draft["state"], draft["base_version"]) == (2, "draft", 1)
    for move in ("approve", "activate"):
        early = credo("rules", move, "reminder", "2", key="bob-approver")
        assert early.exit_code == 2
        assert "version 2 is draft" in early.output
    proposed = credo("rules", "propose", "reminder", "2", key="bob-analyst")
    assert proposed.exit_code == 0, proposed.output


def test_add_test_refuses_a_case_the_file_decides_otherwise(credo, customer, tmp_path):
    decided = credo(
        "decide", "reminder", "--customer", customer, "--as-of", "2024-05-01", "--store", "--json"
    )
    decision = json.loads(decided.stdout)
    tone = decision["outcome"]["tone"]
    path = tmp_path / "my.toml"
    path.write_text(
        reminder_source().replace(f'then = {{ tone = "{tone}"', 'then = { tone = "none"')
    )
    before = path.read_bytes()
    refused = credo("rules", "add-test", decision["decision_id"], "--file", str(path))
    assert refused.exit_code == 1
    assert f"tone: expected {tone}, got none" in refused.stderr
    assert path.read_bytes() == before


def test_init_offers_a_changed_shipped_default_as_a_draft(credo, settings, tmp_path):
    from storage import rulesets

    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    credit = rules / "credit.toml"
    credit.write_text(credit.read_text() + "\n# a new release's default\n")
    result = CliRunner().invoke(
        main,
        ["init"],
        env={"CREDO_DATABASE_URL": settings.database_url, "CREDO_PATHS_RULES_DIR": str(rules)},
    )
    assert result.exit_code == 0, result.output
    assert (
        f"rule set credit: version 1 stays active; the shipped {credit} differs from every "
        "stored version and is stored as draft version 2, not activated (compare: credo rules "
        "diff credit 1 2; then credo rules propose credit 2)"
    ) in result.stdout
    assert "rule set reminder: version 1 active (as shipped)" in result.stdout
    assert rulesets.get_active("credit")["version"] == 1
    assert rulesets.get_version("credit", 2)["state"] == "draft"
