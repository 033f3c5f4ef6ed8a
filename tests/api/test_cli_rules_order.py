"""`credo rules check|test` read rules/*.toml as a set: each file after those it names in
`after`, a file named alone with the files beside it, and the set checked as a whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import main

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def rules(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    monkeypatch.setenv("CREDO_PATHS_RULES_DIR", str(folder))
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_files_check_and_test_together(rules):
    assert CliRunner().invoke(main, ["rules", "check"]).exit_code == 0
    alone = CliRunner().invoke(main, ["rules", "check", str(rules / "reminder.toml")])
    assert alone.exit_code == 0, alone.output
    tested = CliRunner().invoke(main, ["rules", "test", str(rules / "reminder.toml")])
    assert tested.exit_code == 0 and "0 failed" in tested.output


def test_a_misspelt_hand_off_value_is_reported_with_the_values_allowed(rules):
    edit(
        rules / "reminder.toml",
        'handoff_action == \\"handoff\\"',
        'handoff_action == \\"hnadoff\\"',
    )
    result = CliRunner().invoke(main, ["rules", "check", str(rules / "reminder.toml")])
    assert result.exit_code == 2
    assert (
        "reminder.toml: rule RT-015: when: 'hnadoff' is not a value of handoff_action (the "
        "handoff rule set decides action as one of none, hold, review_dispute, offer_plan, "
        "handoff) (did you mean 'handoff'?)"
    ) in result.output


def test_rule_sets_waiting_on_each_other_are_reported_for_each(rules):
    edit(
        rules / "handoff.toml", 'hit_policy = "first"', 'hit_policy = "first"\nafter = ["reminder"]'
    )
    result = CliRunner().invoke(main, ["rules", "check"])
    assert result.exit_code == 2
    cycle = "after: the rule sets wait on each other: handoff → reminder → handoff"
    assert f"handoff.toml: {cycle}" in result.output
    assert f"reminder.toml: {cycle}" in result.output


HANDOFF_WITHOUT_AGENCY = """
kind = "handoff"
[outcome]
action = { values = ["none", "hold", "review_dispute", "offer_plan", "handoff"], default = "none" }
[[rule]]
id = "HO-1"
name = "Hand off"
priority = 1
when = "days_past_due >= 90"
then = { action = "handoff" }
reason = "late"
"""


def test_a_hand_off_file_without_the_field_the_reminder_reads_fails_the_reminder(rules):
    (rules / "handoff.toml").write_text(HANDOFF_WITHOUT_AGENCY, encoding="utf-8")
    result = CliRunner().invoke(main, ["rules", "check"])
    assert result.exit_code == 2
    assert "ok  " + str(rules / "handoff.toml") in result.output
    assert (
        "reminder.toml: rule RT-015: reason: placeholder {handoff_agency} is not a fact"
    ) in result.output
