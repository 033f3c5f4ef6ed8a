"""Order between rule sets (`after`): parsing in declared order, validation of what one rule
set reads of another, the activation check, and deciding an account in order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import RuleFileError
from engine.order import (
    check_cross_references,
    decide_in_order,
    evaluation_order,
    needed_for,
    parse_rulesets,
)
from engine.ruleset import parse_ruleset
from engine.runtime import Engine

HANDOFF = """
kind = "handoff"
[outcome]
action = { values = ["none", "hold", "handoff"], default = "none" }
agency = { type = "string", default = "" }
fee = { type = "money" }
[[rule]]
id = "H-1"
name = "Long overdue"
priority = 10
when = "days_past_due >= 90"
then = { action = "handoff", agency = "standard" }
reason = "{days_past_due} days"
[[rule]]
id = "H-9"
name = "Else"
priority = 0
when = "true"
then = { action = "none" }
reason = "nothing"
"""

REMINDER = """
kind = "reminder"
after = ["handoff"]
[outcome]
tone = { values = ["none", "friendly", "demand"], default = "none" }
[[rule]]
id = "R-1"
name = "No reminder the night of a hand-off"
priority = 20
when = 'handoff_action == "handoff"'
then = { tone = "none" }
reason = "Handed to {handoff_agency} tonight"
[[rule]]
id = "R-2"
name = "Demand"
priority = 10
when = "days_past_due >= 60"
then = { tone = "demand" }
reason = "late"
[[test]]
name = "hand-off night"
facts = { days_past_due = 100, handoff_action = "handoff" }
expect = { tone = "none" }
"""


def parse(**sources: str):
    return parse_rulesets({kind: (text, f"{kind}.toml") for kind, text in sources.items()})


def messages(problems) -> list[str]:
    return [str(p) for p in problems]


def test_a_rule_set_reads_the_earlier_decision_as_kind_field_facts():
    parsed, problems = parse(reminder=REMINDER, handoff=HANDOFF)
    assert problems == []
    reminder = parsed["reminder"]
    assert reminder.after == ("handoff",)
    assert set(reminder.earlier_facts()) == {"handoff_action", "handoff_agency", "handoff_fee"}
    assert reminder.earlier_facts_read() == {"handoff_action": ["R-1"], "handoff_agency": ["R-1"]}
    assert [r.kind for r in evaluation_order(parsed.values())] == ["handoff", "reminder"]


def test_a_misspelt_value_of_an_earlier_outcome_field_is_a_validation_error():
    text = REMINDER.replace('handoff_action == "handoff"', 'handoff_action == "hnadoff"')
    _, problems = parse(reminder=text, handoff=HANDOFF)
    assert messages(problems) == [
        "reminder.toml: rule R-1: when: 'hnadoff' is not a value of handoff_action (the handoff "
        "rule set decides action as one of none, hold, handoff) (did you mean 'handoff'?) at "
        "column 19"
    ]
    listed = REMINDER.replace('handoff_action == "handoff"', 'handoff_action in ["hold", "x"]')
    _, problems = parse(reminder=listed, handoff=HANDOFF)
    assert "'x' is not a value of handoff_action" in messages(problems)[0]


def test_an_earlier_fact_has_the_kind_its_outcome_field_declares():
    text = REMINDER.replace('handoff_action == "handoff"', "handoff_action > 3")
    _, problems = parse(reminder=text, handoff=HANDOFF)
    assert "cannot compare a string with a number" in messages(problems)[0]
    money = REMINDER.replace('handoff_action == "handoff"', "handoff_fee > 3")
    assert parse(reminder=money, handoff=HANDOFF)[1] == []


def test_reading_an_earlier_decision_needs_after():
    text = REMINDER.replace('after = ["handoff"]\n', "")
    _, problems = parse(reminder=text, handoff=HANDOFF)
    assert messages(problems)[:2] == [
        "reminder.toml: rule R-1: when: unknown fact 'handoff_action' (the handoff decision's "
        'outcome is read as handoff_<field> only with after = ["handoff"]) at column 1',
        "reminder.toml: rule R-1: reason: placeholder {handoff_agency} is not a fact (the "
        "handoff decision's outcome is read as handoff_<field> only with after = "
        '["handoff"])',
    ]


def test_unknown_kinds_self_references_and_cycles_are_errors_naming_the_rule_sets():
    _, problems = parse(reminder=REMINDER.replace('["handoff"]', '["hanfoff"]'), handoff=HANDOFF)
    assert messages(problems)[0] == (
        "reminder.toml: after: no rule set 'hanfoff' to decide first (known: handoff) "
        "(did you mean 'handoff'?)"
    )
    _, problems = parse(reminder=REMINDER.replace('["handoff"]', '["reminder"]'))
    assert "after: a rule set cannot come after itself ('reminder')" in messages(problems)[0]
    looped = HANDOFF.replace('kind = "handoff"', 'kind = "handoff"\nafter = ["reminder"]')
    parsed, problems = parse(reminder=REMINDER, handoff=looped)
    assert parsed == {}
    assert messages(problems) == [
        "handoff.toml: after: the rule sets wait on each other: handoff → reminder → handoff",
        "reminder.toml: after: the rule sets wait on each other: handoff → reminder → handoff",
    ]


def test_a_file_after_a_rule_set_with_problems_says_so():
    _, problems = parse(reminder=REMINDER, handoff=HANDOFF.replace("priority = 10", "priority = x"))
    assert any("rule set 'handoff' has problems of its own" in m for m in messages(problems))


def test_a_test_case_may_give_earlier_facts_checked_against_their_outcome():
    text = REMINDER.replace('handoff_action = "handoff" }', 'handoff_action = "hanf" }')
    _, problems = parse(reminder=text, handoff=HANDOFF)
    assert messages(problems) == [
        "reminder.toml: test 'hand-off night': facts.handoff_action: 'hanf' is not one of "
        "['none', 'hold', 'handoff'] (the handoff decision's action)"
    ]


def test_after_must_be_a_list_of_kinds():
    _, problems = parse(reminder=REMINDER.replace('["handoff"]', '"handoff"'), handoff=HANDOFF)
    assert "after must be a list of rule-set kinds" in messages(problems)[0]
    # a derived fact cannot take an earlier fact's name
    shadow = REMINDER.replace('then = { tone = "demand" }', 'set = { handoff_action = "x" }')
    _, problems = parse(reminder=shadow, handoff=HANDOFF)
    assert "cannot overwrite the input fact 'handoff_action'" in messages(problems)[0]


# ---- the activation check --------------------------------------------------------------------


def test_a_version_dropping_a_field_another_rule_set_reads_is_refused_naming_both():
    parsed, _ = parse(reminder=REMINDER, handoff=HANDOFF)
    assert check_cross_references(parsed) == []
    dropped = HANDOFF.replace('agency = { type = "string", default = "" }\n', "")
    dropped = dropped.replace(', agency = "standard"', "")
    candidate = parse_ruleset(dropped, "handoff version 2", "handoff")
    problems = check_cross_references({**parsed, "handoff": candidate})
    assert messages(problems) == [
        "handoff version 2: outcome field 'agency' is gone, but rule set reminder "
        "(reminder.toml, rules R-1) reads it as handoff_agency"
    ]


def test_a_version_dropping_a_value_or_changing_a_type_another_reads_is_refused():
    parsed, _ = parse(reminder=REMINDER, handoff=HANDOFF)
    no_handoff = HANDOFF.replace('"hold", "handoff"]', '"hold", "agency"]')
    no_handoff = no_handoff.replace('action = "handoff"', 'action = "agency"')
    candidate = parse_ruleset(no_handoff, "handoff version 3", "handoff")
    (problem,) = check_cross_references({**parsed, "handoff": candidate})
    assert str(problem).startswith(
        "handoff version 3: rule set reminder (reminder.toml, rule R-1) compares handoff_action "
        "with a value this version no longer decides: 'handoff' is not a value"
    )
    typed = HANDOFF.replace(
        'agency = { type = "string", default = "" }', "agency = { type = 'int' }"
    )
    typed = typed.replace(', agency = "standard"', "")
    candidate = parse_ruleset(typed, "handoff version 4", "handoff")
    (problem,) = check_cross_references({**parsed, "handoff": candidate})
    assert "outcome field 'agency' is now a int value, not a string value" in str(problem)


def test_a_set_missing_the_kind_another_waits_on_is_refused():
    parsed, _ = parse(reminder=REMINDER, handoff=HANDOFF)
    problems = check_cross_references({"reminder": parsed["reminder"]})
    assert messages(problems) == ["reminder.toml: after: no active rule set 'handoff'"]
    with pytest.raises(RuleFileError):
        evaluation_order([parsed["reminder"]])


# ---- deciding an account in order ----------------------------------------------------------


def test_an_account_is_decided_in_order_and_each_step_says_where_facts_came_from():
    parsed, _ = parse(reminder=REMINDER, handoff=HANDOFF)
    engine = Engine()
    steps = decide_in_order(engine.evaluate, parsed.values(), {"days_past_due": 100})
    handoff, reminder = steps
    assert handoff.ruleset.kind == "handoff" and handoff.earlier == ()
    assert reminder.facts == {
        "days_past_due": 100,
        "handoff_action": "handoff",
        "handoff_agency": "standard",
    }  # handoff_fee has no value: absent
    assert [(e.kind, e.facts) for e in reminder.earlier] == [
        ("handoff", ("handoff_action", "handoff_agency"))
    ]
    assert reminder.evaluation.outcome == {"tone": "none"}
    assert reminder.evaluation.reasons == ["Handed to standard tonight"]


def test_facts_the_caller_gives_win_and_none_makes_them_absent():
    parsed, _ = parse(reminder=REMINDER, handoff=HANDOFF)
    evaluate = Engine().evaluate
    given = decide_in_order(
        evaluate, parsed.values(), {"days_past_due": 100}, {"handoff_action": "hold"}
    )
    assert given[1].facts["handoff_action"] == "hold"
    assert given[1].earlier[0].facts == ("handoff_agency",)
    assert given[1].evaluation.outcome == {"tone": "demand"}
    absent = decide_in_order(
        evaluate, parsed.values(), {"days_past_due": 100}, {"handoff_action": None}
    )
    assert "handoff_action" not in absent[1].facts
    assert absent[1].evaluation.outcome == {"tone": "demand"}


def test_the_engine_evaluator_converts_the_accounts_facts_once_and_adds_the_earlier_ones():
    parsed, _ = parse(reminder=REMINDER, handoff=HANDOFF)
    engine = Engine()
    facts = {"days_past_due": 100, "overdue_balance": Decimal("12.50")}
    steps = decide_in_order(engine.evaluator(facts), parsed.values(), facts)
    assert [s.evaluation.outcome for s in steps] == [
        {"action": "handoff", "agency": "standard", "fee": None},
        {"tone": "none"},
    ]


def test_needed_for_is_the_kind_and_everything_it_waits_on():
    parsed, _ = parse(reminder=REMINDER, handoff=HANDOFF)
    assert {r.kind for r in needed_for("reminder", parsed)} == {"reminder", "handoff"}
    assert [r.kind for r in needed_for("handoff", parsed)] == ["handoff"]
