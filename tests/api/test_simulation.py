"""Simulation: a candidate version beside the active one on a hand-built portfolio — the matrix
and money worked out by hand, the same with worker processes, a deterministic sample, nothing
stored; and `credo rules simulate` with its hostile inputs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner
from simulation_support import (
    AS_OF,
    EXPECTED_MATRIX,
    TONE_V2,
    store_portfolio,
    store_tone_versions,
)

from api.cli.main import main
from api.settings import RunSettings


@pytest.fixture
def tone(settings):
    """The hand-built portfolio and versions 1 (active) and 2 (draft) of kind "tone"."""
    store_tone_versions()
    store_portfolio()
    return replace(settings, run=RunSettings(batch_size=500, workers=1))


def simulate_v2(settings, **kwargs):
    from api.simulation import simulate, stored_candidate

    return simulate(settings, stored_candidate("tone", 2), AS_OF, **kwargs)


def test_matrix_and_money_per_cell_and_currency_are_as_worked_out_by_hand(tone):
    result = simulate_v2(tone)
    assert result["matrix"] == EXPECTED_MATRIX
    assert (result["customers"], result["evaluated"], result["changed_count"]) == (6, 6, 3)
    assert result["errors_count"] == 0 and result["errors"] == []
    assert result["kind"] == "tone" and result["as_of"] == "2024-06-30"
    assert result["candidate"]["version"] == 2 and result["active"]["version"] == 1
    assert result["sample"] is None
    changed = {c["customer_id"]: c for c in result["changed"]}
    assert list(changed) == ["E1", "E3", "G1"]
    assert changed["E1"]["from"] == {
        "outcome": {"tone": "friendly", "channel": "email"},
        "reasons": ["5 days late: friendly"],
        "fired": ["T-10"],
    }
    assert changed["E1"]["to"] == {
        "outcome": {"tone": "none", "channel": "email"},
        "reasons": [],
        "fired": [],
    }
    e3 = changed["E3"]
    assert (e3["currency"], e3["open_balance"], e3["overdue_balance"]) == (
        "EUR",
        "800.00",
        "300.00",
    )
    assert e3["to"]["outcome"] == {"tone": "final", "channel": "letter"}
    assert e3["to"]["reasons"] == ["75 days late: final letter"]
    assert changed["G1"]["currency"] == "GBP"


def test_worker_processes_give_the_same_result(tone):
    alone = simulate_v2(tone)
    pooled = simulate_v2(replace(tone, run=RunSettings(batch_size=2, workers=2)))
    assert pooled == alone


def test_a_seeded_sample_is_the_same_customers_each_time(tone):
    from api.simulation import sample_customer_ids

    first = sample_customer_ids(3, 1)
    assert first == sample_customer_ids(3, 1) == ["E1", "E3", "G1"]  # on either database
    assert any(sample_customer_ids(3, seed) != first for seed in range(2, 12))
    assert sample_customer_ids(10, 1) == ["E1", "E2", "E3", "G1", "G2", "G3"]

    result = simulate_v2(tone, sample=3, seed=1)
    assert result == simulate_v2(tone, sample=3, seed=1)
    assert result["sample"] == {"size": 3, "seed": 1}
    assert result["customers"] == result["evaluated"] == 3
    assert [c["customer_id"] for c in result["changed"]] == ["E1", "E3", "G1"]
    assert result["matrix"]["tone"]["cells"][-1]["count"] == 2  # firm → final: E3, G1


def test_nothing_is_written_to_the_decision_trail(tone):
    from storage.decisions import count_decisions
    from storage.idempotency import IdempotencyKey
    from storage.jobs import Job
    from storage.models import DecisionTag

    def counts():
        tables = (IdempotencyKey, DecisionTag, Job)
        return [count_decisions(), *(t.select().count() for t in tables)]

    before = counts()
    simulate_v2(tone)
    simulate_v2(replace(tone, run=RunSettings(batch_size=2, workers=2)))
    assert cli(tone, "rules", "simulate", "tone", "2", "--as-of", "2024-06-30").exit_code == 0
    assert counts() == before == [0, 0, 0, 0]


def cli(settings, *args: str):
    env = {"CREDO_DATABASE_URL": settings.database_url, "CREDO_RUN_WORKERS": "1"}
    return CliRunner().invoke(main, list(args), env=env)


def test_cli_json_is_the_use_cases_result_and_the_tables_show_it(tone, tmp_path):
    result = cli(tone, "rules", "simulate", "tone", "2", "--as-of", "2024-06-30", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == simulate_v2(tone)

    shown = cli(tone, "rules", "simulate", "tone", "2", "--as-of", "2024-06-30")
    assert shown.exit_code == 0, shown.output
    assert "tone: version 2 vs active version 1, 6 customers as of 2024-06-30" in shown.stdout
    assert "changed: 3 of 6 customers" in shown.stdout
    assert "E3" in shown.stdout and "tone: firm → final" in shown.stdout
    assert "1,000.00" in shown.stdout  # G1's overdue balance behind firm → final, in GBP

    draft = tmp_path / "my-draft.toml"
    draft.write_text(TONE_V2, encoding="utf-8")
    from_file = cli(tone, "rules", "simulate", str(draft), "--as-of", "2024-06-30", "--json")
    assert from_file.exit_code == 0, from_file.output
    data = json.loads(from_file.stdout)
    assert data["candidate"] == {
        "kind": "tone",
        "version": None,
        "sha256": simulate_v2(tone)["candidate"]["sha256"],
        "label": f"file {draft}",
    }
    assert data["matrix"] == EXPECTED_MATRIX


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tone", "2", "--sample", "0"], "sample: must be between 1 and 1,000,000"),
        (["tone", "2", "--sample", "-5"], "sample: must be between 1 and 1,000,000"),
        (["tone", "2", "--sample", "1" + "0" * 30], "sample: must be between 1 and 1,000,000"),
        (["tone", "2", "--seed", "-1"], "seed: must be between 0 and"),
        (["tone", "2", "--as-of", "2024-02-30"], "'2024-02-30' does not match the format"),
        (["tone", "9"], "rule set tone has no version 9"),
        (["nope", "1"], "unknown rule-set kind 'nope'; known kinds: credit, handoff"),
        (["tone", "two"], "VERSION: 'two' is not a version number"),
        (["orphan", "1"], "rule set orphan has no active version to compare with"),
        (["no-such-file.toml"], "no-such-file.toml: no such rule file"),
        (["stale", "1"], "rule set stale version 1 does not validate: stale version 1: rule T-30"),
    ],
)
def test_cli_hostile_inputs_exit_2_saying_what_is_wrong(tone, args, message):
    from engine.ruleset import sha256_of
    from storage.rulesets import create_version

    orphan = TONE_V2.replace('kind = "tone"', 'kind = "orphan"')
    create_version("orphan", orphan, sha256_of(orphan), created_by="test")  # a draft only
    # stored before the validator knew better (storage stores what it is given)
    stale = orphan.replace('kind = "orphan"', 'kind = "stale"').replace("> 60", "> true")
    create_version("stale", stale, sha256_of(stale), created_by="test", state="active")
    result = cli(tone, "rules", "simulate", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_cli_a_rule_file_with_problems_exits_2_listing_them(tone, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text(TONE_V2.replace("[outcome]", "[outcome"), encoding="utf-8")
    result = cli(tone, "rules", "simulate", str(broken))
    assert result.exit_code == 2
    assert f"{broken}:6: TOML syntax error" in result.output

    wrong = tmp_path / "wrong.toml"
    wrong.write_text(TONE_V2.replace("days_past_due > 60", "days_pass_due > 60"), encoding="utf-8")
    result = cli(tone, "rules", "simulate", str(wrong))
    assert result.exit_code == 2
    assert "rule T-30: when: unknown fact 'days_pass_due' (did you mean 'days_past_due'?)" in (
        result.output
    )


GATE = """
kind = "gate"
title = "Gate (test): hands over accounts more than 50 days late"
hit_policy = "first"

[outcome]
action = { values = ["none", "handoff"], default = "none" }

[[rule]]
id = "G-10"
name = "Over 50 days late"
priority = 10
when = "days_past_due > 50"
then = { action = "handoff" }
reason = "{days_past_due} days late: handed over"
"""

# The tone versions, each waiting on the gate: no letter the night an account is handed over.
AFTER_GATE = """
after = ["gate"]

[[rule]]
id = "T-99"
name = "No letter the night of a hand-off"
priority = 99
when = "gate_action == \\"handoff\\""
then = { tone = "none" }
reason = "handed over tonight: no letter"
"""


def test_a_rule_set_ordered_after_another_is_simulated_with_its_outcome(settings):
    """A reminder-like draft sees tonight's hand-off as the nightly run does: the accounts the
    gate hands over (E3 75 days, G1 80 days late) get no letter from either version."""
    from simulation_support import TONE_V1, store_portfolio

    from api.simulation import simulate, stored_candidate
    from engine.ruleset import sha256_of
    from storage.rulesets import create_version

    def with_gate(text):
        head, rules = text.split("[[rule]]", 1)
        head = head.replace('hit_policy = "first"', 'hit_policy = "first"' + AFTER_GATE, 1)
        before, outcome = head.split("[outcome]")
        return f"{before}[outcome]{outcome}[[rule]]{rules}"

    create_version("gate", GATE, sha256_of(GATE), created_by="test", state="active")
    v1, v2 = with_gate(TONE_V1), with_gate(TONE_V2)
    create_version("tone", v1, sha256_of(v1), created_by="test", state="active")
    create_version("tone", v2, sha256_of(v2), created_by="test")
    store_portfolio()
    one_worker = replace(settings, run=RunSettings(batch_size=500, workers=1))

    result = simulate(one_worker, stored_candidate("tone", 2), AS_OF)

    assert result["errors"] == []
    changed = {c["customer_id"]: c for c in result["changed"]}
    assert list(changed) == ["E1"]  # E3 and G1 stay "none": handed over in both versions
    tone_cells = {
        (cell["from"], cell["to"]): cell["count"] for cell in result["matrix"]["tone"]["cells"]
    }
    assert tone_cells[("none", "none")] == 3  # G3 (nothing late), E3, G1 (handed over)
