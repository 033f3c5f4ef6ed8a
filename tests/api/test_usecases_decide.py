"""The shared use cases: deciding stored customers with the active rule sets, and loading the
default rule sets."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from api.usecases import (
    build_decision_record,
    decide_customers,
    load_active_rulesets,
    load_default_rulesets,
)
from engine.errors import EngineError
from engine.facts import derive_facts
from engine.runtime import Engine
from engine.trace import to_jsonable
from storage import decisions, ledger, rulesets

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
AS_OF = date(2025, 6, 30)


@pytest.fixture
def portfolio(db):
    from api.demo.portfolio import generate_portfolio
    from api.intake.schemas import validate_record

    load_default_rulesets(RULES_DIR)
    records = [validate_record(r) for r in generate_portfolio(25, seed=2, as_of=AS_OF)]
    ledger.upsert_records(records)
    return [r["id"] for r in records if r["type"] == "customer"]


def test_decide_customers_stores_one_decision_per_customer_and_rule_set(portfolio):
    active = load_active_rulesets()
    assert sorted(active) == ["credit", "handoff", "reminder"]
    engine = Engine()
    ledgers = ledger.load_ledgers(portfolio[:10])
    stored = decide_customers(engine, active, ledgers, AS_OF, "test")
    assert len(stored) == 30 and {d["via"] for d in stored} == {"run"}
    assert [d["customer_id"] for d in stored[:3]] == [portfolio[0]] * 3
    assert decisions.verify_chain() == []

    first = decisions.get_decision(stored[0]["decision_id"])
    assert first == stored[0]
    facts = derive_facts(ledgers[portfolio[0]], AS_OF)
    assert first["facts"] == to_jsonable(facts)
    assert first["ruleset"] == {
        "kind": first["kind"],
        "version": 1,
        "sha256": active[first["kind"]].sha256,
    }
    # Replay: the stored facts with the stored version give the same trace.
    again = engine.evaluate(active[first["kind"]].ruleset, facts)
    assert to_jsonable(again.trace_json()) == {
        "outcome": first["outcome"],
        "reasons": first["reasons"],
        "fired": first["fired"],
    }


def test_a_failing_customer_is_reported_and_the_others_are_decided(portfolio):
    active = load_active_rulesets()
    ledgers = ledger.load_ledgers(portfolio[:3])

    class Broken(Engine):
        def evaluate(self, ruleset, facts, prepared=None):
            if facts["customer_id"] == portfolio[1]:
                raise EngineError("rules engine error 303")
            return super().evaluate(ruleset, facts, prepared)

    failures = []
    stored = decide_customers(
        Broken(), active, ledgers, AS_OF, "test", on_error=lambda c, e: failures.append((c, e))
    )
    assert {d["customer_id"] for d in stored} == {portfolio[0], portfolio[2]}
    assert [c for c, _ in failures] == [portfolio[1]]
    with pytest.raises(EngineError):
        decide_customers(Broken(), active, ledgers, AS_OF, "test")


def test_build_decision_record_takes_version_info_as_a_mapping(portfolio):
    active = load_active_rulesets()["reminder"]
    facts = derive_facts(ledger.load_ledger(portfolio[0]), AS_OF)
    evaluation = Engine().evaluate(active.ruleset, facts)
    info = {"kind": "reminder", "version": 1, "sha256": active.sha256}
    record = build_decision_record(evaluation, info, facts, portfolio[0], AS_OF, "erp", via="api")
    assert record["ruleset"] == info and record["created_at"].tzinfo is not None
    assert decisions.append_decision(record)["seq"] == 1


def test_default_rule_sets_load_once_and_a_changed_shipped_file_becomes_a_draft(db, tmp_path):
    from api.usecases import credo_version

    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    first = load_default_rulesets(rules)
    assert [(r["kind"], r["action"], r["version"]) for r in first] == [
        ("credit", "loaded", 1),
        ("handoff", "loaded", 1),
        ("reminder", "loaded", 1),
    ]
    assert [e["event"] for e in rulesets.events("credit")] == ["drafted", "activated"]
    credit = rules / "credit.toml"
    credit.write_text(credit.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    second = load_default_rulesets(rules)
    assert [(r["action"], r["version"], r["active"]) for r in second] == [
        ("drafted", 2, 1),
        ("kept", 1, 1),
        ("kept", 1, 1),
    ]
    drafted = rulesets.get_version("credit", 2)
    assert drafted["state"] == "draft"  # never activated silently
    assert drafted["note"] == f"shipped default from credo {credo_version()} (credit.toml)"
    assert rulesets.get_active("credit")["version"] == 1
    assert [e["event"] for e in rulesets.events("credit", 2)] == ["drafted"]
    third = load_default_rulesets(rules)  # the draft is a stored version now: nothing new
    assert [(r["action"], r["version"]) for r in third] == [("kept", 2), ("kept", 1), ("kept", 1)]
    assert [len(rulesets.history(k)) for k in ("credit", "handoff", "reminder")] == [2, 1, 1]


def test_activation_check_refuses_a_version_dropping_what_an_active_rule_set_reads(db):
    """api.usecases.cross_reference_problems: what activation must call (engine.order.
    check_cross_references against the active versions, the candidate in its kind's place)."""
    from api.usecases import cross_reference_problems
    from engine.ruleset import parse_ruleset

    load_default_rulesets(RULES_DIR)
    source = (RULES_DIR / "handoff.toml").read_text(encoding="utf-8")
    same = parse_ruleset(source + "\n# a comment\n", "handoff version 2", "handoff")
    assert cross_reference_problems(same) == []
    dropped = source.replace(
        '"review_dispute", "offer_plan", "handoff"]', '"review_dispute", "handoff"]'
    )
    dropped = dropped[: dropped.index('[[rule]]\nid = "HO-095"')]  # cut the plan offers and tests
    dropped += CATCH_ALL
    candidate = parse_ruleset(dropped, "handoff version 2", "handoff")
    (problem,) = cross_reference_problems(candidate)
    assert str(problem).startswith(
        "handoff version 2: rule set reminder (reminder version 1, rule RT-035) compares "
        "handoff_action with a value this version no longer decides: 'offer_plan' is not a value"
    )


CATCH_ALL = """[[rule]]
id = "HO-999"
name = "Else"
priority = 0
when = "true"
then = { action = "none" }
reason = "nothing"
"""
