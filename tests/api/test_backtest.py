"""Backtest: a candidate replayed over the stored decisions of its kind in a period finds
exactly the ones it would decide differently, on the facts each stored; nothing is stored."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner
from simulation_support import (
    TONE_V2,
    cell,
    money,
    store_decisions,
    store_portfolio,
    store_tone_versions,
)

from api.cli.main import main

JUNE = (date(2024, 6, 1), date(2024, 6, 30))


@pytest.fixture
def seqs(settings) -> dict[str, int]:
    store_tone_versions()
    store_portfolio()
    return store_decisions()


def backtest_v2(first: date, last: date) -> dict:
    from api.backtest import backtest
    from api.simulation import stored_candidate

    return backtest(stored_candidate("tone", 2), first, last)


def test_backtest_finds_exactly_the_decisions_decided_differently(seqs):
    from storage.decisions import count_decisions

    stored = count_decisions()
    result = backtest_v2(*JUNE)
    assert (result["decisions"], result["evaluated"], result["errors_count"]) == (8, 7, 1)
    assert result["changed_count"] == 4
    changed = [c["seq"] for c in result["changed"]]
    assert changed == [seqs["E1"], seqs["E3"], seqs["G1"], seqs["facts-only"]]
    first = result["changed"][0]
    assert first["customer_id"] == "E1" and first["ruleset"]["version"] == 1
    assert first["from"] == {
        "outcome": {"tone": "friendly", "channel": "email"},
        "reasons": ["5 days late: friendly"],
        "fired": ["T-10"],
    }
    assert first["to"] == {
        "outcome": {"tone": "none", "channel": "email"},
        "reasons": [],
        "fired": [],
    }
    assert result["changed"][3]["currency"] == "unknown"  # decided from facts alone
    assert result["errors"][0]["seq"] == seqs["broken"]
    assert "days_past_due" in result["errors"][0]["error"]
    assert result["matrix"]["tone"]["cells"] == [
        cell("none", "none", 1, GBP=money(1, "70.00", "0.00")),
        cell("friendly", "none", 1, EUR=money(1, "100.00", "100.00")),
        cell("friendly", "friendly", 1, GBP=money(1, "50.00", "50.00")),
        cell("firm", "firm", 1, EUR=money(1, "200.00", "200.00")),
        cell(
            "firm",
            "final",
            3,
            EUR=money(1, "800.00", "300.00"),
            GBP=money(1, "1000.00", "1000.00"),
            unknown=money(1, "1000.00", "900.00"),
        ),
    ]
    assert count_decisions() == stored  # nothing added


def test_the_period_includes_both_days_and_nothing_outside(seqs):
    may = backtest_v2(date(2024, 5, 31), date(2024, 5, 31))
    assert may["decisions"] == 1 and [c["seq"] for c in may["changed"]] == [seqs["may"]]
    july = backtest_v2(date(2024, 7, 1), date(2024, 7, 1))
    assert [c["seq"] for c in july["changed"]] == [seqs["july"]]
    assert backtest_v2(date(2024, 8, 1), date(2024, 8, 31))["decisions"] == 0
    assert backtest_v2(date(2024, 5, 31), date(2024, 7, 1))["decisions"] == 10


def test_the_active_version_itself_changes_nothing(seqs):
    from api.backtest import backtest
    from api.simulation import stored_candidate

    result = backtest(stored_candidate("tone", 1), *JUNE)
    assert result["changed_count"] == 0 and result["evaluated"] == 7


def cli(settings, *args: str):
    return CliRunner().invoke(main, list(args), env={"CREDO_DATABASE_URL": settings.database_url})


def test_cli_backtest_of_a_file_and_its_errors(seqs, settings, tmp_path):
    draft = tmp_path / "draft.toml"
    draft.write_text(TONE_V2, encoding="utf-8")
    period = ("--from", "2024-06-01", "--to", "2024-06-30")
    result = cli(settings, "rules", "backtest", str(draft), *period, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["matrix"] == backtest_v2(*JUNE)["matrix"] and data["candidate"]["version"] is None

    shown = cli(settings, "rules", "backtest", "tone", "2", *period)
    assert shown.exit_code == 0, shown.output
    assert "changed: 4 of 7 decisions, 1 could not be evaluated" in shown.stdout
    assert f"#{seqs['E3']} E3" in shown.stdout

    backwards = cli(
        settings, "rules", "backtest", "tone", "2", "--from", "2024-06-30", "--to", "2024-06-01"
    )
    assert (
        backwards.exit_code == 2
        and "from: must be on or before to (2024-06-01)" in backwards.output
    )
    missing = cli(settings, "rules", "backtest", "tone", "2", "--from", "2024-06-30")
    assert missing.exit_code == 2 and "--to" in missing.output
