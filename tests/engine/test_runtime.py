"""Evaluation on durable_rules: hit policies, forward chaining, determinism, versions."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from engine.errors import FactError
from engine.ruleset import parse_ruleset
from engine.runtime import Engine
from engine.trace import canonical_json

TONE = """
kind = "reminder"
hit_policy = "{policy}"
[outcome]
tone    = {{ values = ["none", "friendly", "firm", "final"], default = "none" }}
channel = {{ values = ["email", "letter", "phone"], default = "email" }}

[[rule]]
id = "R-LOW"
name = "friendly when a little late"
priority = 10
when = "days_past_due >= 1"
then = {{ tone = "friendly" }}
reason = "{{days_past_due}} days late"

[[rule]]
id = "R-HIGH"
name = "firm when two weeks late"
priority = 20
when = "days_past_due >= 14"
then = {{ tone = "firm", channel = "letter" }}
reason = "{{days_past_due}} days late, {{overdue_balance}} overdue"

[[rule]]
id = "R-TIE"
name = "phone for big balances (same priority as R-HIGH, later in file)"
priority = 20
when = "overdue_balance > 5000"
then = {{ channel = "phone" }}
reason = "big balance {{overdue_balance}}"
"""


def ruleset(policy: str):
    return parse_ruleset(TONE.format(policy=policy), "reminder.toml")


@pytest.fixture(scope="module")
def engine():
    return Engine()


def test_first_policy_takes_the_highest_priority_match(engine):
    ev = engine.evaluate(ruleset("first"), {"days_past_due": 20, "overdue_balance": Decimal(9000)})
    assert [f.id for f in ev.fired] == ["R-HIGH"]
    assert ev.outcome == {"tone": "firm", "channel": "letter"}
    assert ev.reasons == ["20 days late, 9000.00 overdue"]


def test_first_policy_ties_follow_file_order(engine):
    ev = engine.evaluate(ruleset("first"), {"days_past_due": 3, "overdue_balance": Decimal(9000)})
    assert [f.id for f in ev.fired] == ["R-TIE"]
    assert ev.outcome == {"tone": "none", "channel": "phone"}  # tone from its default


def test_all_policy_fires_every_match_and_highest_priority_wins_per_field(engine):
    ev = engine.evaluate(ruleset("all"), {"days_past_due": 20, "overdue_balance": Decimal(9000)})
    assert [f.id for f in ev.fired] == ["R-HIGH", "R-TIE", "R-LOW"]
    assert ev.outcome == {"tone": "firm", "channel": "letter"}
    assert len(ev.reasons) == 3


def test_no_match_gives_defaults_and_an_empty_trace(engine):
    ev = engine.evaluate(ruleset("all"), {"days_past_due": 0, "overdue_balance": Decimal(0)})
    assert ev.fired == [] and ev.outcome == {"tone": "none", "channel": "email"}


CHAIN = """
kind = "credit"
hit_policy = "{policy}"
[outcome]
decision = {{ values = ["approve", "refer", "decline"], default = "approve" }}

[[rule]]
id = "C-BAND-HIGH"
name = "high risk band"
priority = 100
when = "days_past_due > 60 or utilization > 0.9"
set = {{ risk_band = "high" }}
reason = "risk band high"

[[rule]]
id = "C-BAND-SCORE"
name = "score points"
priority = 90
when = "risk_band == 'high' and credit_score < 500"
set = {{ risk_points = 3 }}
reason = "weak score {{credit_score}} in band {{risk_band}}"

[[rule]]
id = "C-DECLINE"
name = "decline high band with points"
priority = 50
when = "risk_points >= 3"
then = {{ decision = "decline" }}
reason = "declined: band {{risk_band}}, points {{risk_points}}"

[[rule]]
id = "C-REFER"
name = "refer the high band"
priority = 40
when = "risk_band == 'high'"
then = {{ decision = "refer" }}
reason = "referred: band {{risk_band}}"
"""


@pytest.mark.parametrize("policy", ["first", "all"])
def test_forward_chaining_through_derived_facts(engine, policy):
    rs = parse_ruleset(CHAIN.format(policy=policy), "credit.toml")
    ev = engine.evaluate(rs, {"days_past_due": 70, "utilization": 0.2, "credit_score": 400})
    expected = ["C-BAND-HIGH", "C-BAND-SCORE", "C-DECLINE"] + (
        ["C-REFER"] if policy == "all" else []
    )
    assert [f.id for f in ev.fired] == expected
    assert ev.outcome == {"decision": "decline"}
    assert ev.derived == {"risk_band": "high", "risk_points": 3}
    assert ev.reasons[2] == "declined: band high, points 3"
    ev = engine.evaluate(rs, {"days_past_due": 70, "utilization": 0.2, "credit_score": 700})
    assert [f.id for f in ev.fired][:2] == ["C-BAND-HIGH", "C-REFER"]
    assert ev.outcome == {"decision": "refer"}


def test_derived_fact_can_only_be_read_by_later_rules():
    bad = CHAIN.format(policy="all").replace("priority = 100", "priority = 10")
    with pytest.raises(Exception) as info:
        parse_ruleset(bad, "credit.toml")
    assert "reads derived fact 'risk_band', which rule C-BAND-HIGH sets" in str(info.value)


def test_evaluation_is_deterministic_across_processes(engine):
    rs = parse_ruleset(CHAIN.format(policy="all"), "credit.toml")
    facts = {"days_past_due": 70, "utilization": 0.95, "credit_score": 100}
    here = canonical_json(engine.evaluate(rs, facts).trace_json())
    code = (
        "import json,sys; from engine.ruleset import parse_ruleset;"
        "from engine.runtime import Engine;"
        "from engine.trace import canonical_json; d=json.load(sys.stdin);"
        "rs=parse_ruleset(d['src'],'credit.toml');"
        "print(canonical_json(Engine().evaluate(rs,d['facts']).trace_json()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps({"src": rs.source, "facts": facts}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == here
    for _ in range(50):
        assert canonical_json(engine.evaluate(rs, facts).trace_json()) == here


def test_versions_load_side_by_side_and_unload(engine):
    old, new = ruleset("first"), ruleset("all")
    facts = {"days_past_due": 20, "overdue_balance": Decimal(9000)}
    assert len(engine.evaluate(old, facts).fired) == 1
    assert len(engine.evaluate(new, facts).fired) == 3
    assert {old.sha256, new.sha256} <= set(engine.loaded())
    engine.unload(old)
    assert old.sha256 not in engine.loaded()
    assert len(engine.evaluate(new, facts).fired) == 3
    assert len(engine.evaluate(old, facts).fired) == 1  # loads again on demand


def test_facts_the_engine_cannot_take_are_refused(engine):
    with pytest.raises(FactError) as info:
        engine.evaluate(ruleset("first"), {"days_past_due": 1e300})
    assert "days_past_due" in info.value.errors


def test_many_evaluations_reuse_one_state(engine):
    rs = ruleset("all")
    for i in range(3000):
        ev = engine.evaluate(rs, {"days_past_due": i % 40, "overdue_balance": Decimal(i)})
        assert ev.outcome["tone"] == ("firm" if i % 40 >= 14 else "friendly" if i % 40 else "none")
