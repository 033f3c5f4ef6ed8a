"""[[test]] cases written as TOML (engine.test_cases) and problems located on their line
(engine.locate): any text round-trips, the written case reads back as written."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import Problem
from engine.locate import locate_problems
from engine.test_cases import append_test_case, render_test_case, toml_string

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@given(TEXT)
def test_any_text_reads_back_from_its_toml_string(text: str) -> None:
    assert tomllib.loads(f"a = {toml_string(text)}")["a"] == text


def test_hostile_text_is_escaped_or_refused() -> None:
    for text in ('=HYPERLINK("x")', 'a"b\\c', "line\nbreak\x00\x7f", "@SUM(1)", "-1+2"):
        assert tomllib.loads(f"a = {toml_string(text)}")["a"] == text
    with pytest.raises(ValueError, match="lone surrogate"):
        toml_string("\ud800")


def test_a_case_reads_back_with_its_facts_and_outcome() -> None:
    facts = {
        "days_past_due": 14,
        "overdue_balance": "800.00",
        "utilization": 0.1234,
        "has_open_dispute": False,
        "segment": 'a "b"',
        "credit_score": None,
    }
    case = render_test_case("pinned", facts, {"tone": "friendly", "credit_limit": None}, ["why"])
    source = append_test_case('kind = "reminder"', case)
    assert source.startswith('kind = "reminder"\n\n# why\n[[test]]\n')
    test = tomllib.loads(source)["test"][0]
    assert test["name"] == "pinned" and test["expect"] == {"tone": "friendly"}
    assert test["facts"] == {k: v for k, v in facts.items() if v is not None}


def test_problems_are_located_on_their_rule_field_and_test_lines() -> None:
    source = (
        'kind = "reminder"\n[outcome]\ntone = { values = ["a"] }\n\n'
        '[[rule]]\nname = "x"\nid = "R-1"\npriority = 1\nwhen = "nope"\n\n'
        "[[test]]\nname = 't1'\nexpect = { tone = 'b' }\n"
    )
    problems = [
        Problem("f", "unknown fact 'nope'", rule_id="R-1", field="when"),
        Problem("f", "missing key 'reason'", rule_id="R-1"),
        Problem("f", "bad", field="outcome.tone"),
        Problem("f", "test 't1': expect.tone: 'b' is not one of ['a']"),
        Problem("f", "a rule set needs at least one [[rule]]"),
        Problem("f", "syntax", line=99),
    ]
    lines = [p.line for p in locate_problems(problems, source)]
    assert lines == [9, 7, 3, 13, None, 99]
