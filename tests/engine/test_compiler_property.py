"""Property: the compiled durable_rules evaluation agrees with the reference interpreter.

Random well-typed `when` expressions over real catalogue facts go through the whole path
(validation, normal form, compiler, durable_rules); random facts, some absent, are decided by
both the engine and engine.expr.matches.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine import expr
from engine.errors import RuleFileError
from engine.ruleset import parse_ruleset
from engine.runtime import Engine

NUMERIC = ["days_past_due", "overdue_balance", "utilization", "credit_score"]
BOOLEAN = ["has_open_dispute", "on_hold"]
STRINGS = ["segment"]
SEGMENTS = ["retail", "wholesale", "public", ""]

ENGINE = Engine()

numbers = st.one_of(
    st.integers(-2000, 2000),
    st.decimals(-2000, 2000, places=2, allow_nan=False).map(float),
    st.sampled_from([0, 0.5, 1, 14, 30, 0.0001]),
)


def _number_text(value: float) -> str:
    return repr(value) if value >= 0 else f"({value!r})"


arith = st.deferred(
    lambda: st.one_of(
        st.sampled_from(NUMERIC),
        numbers.map(_number_text),
        st.tuples(arith, st.sampled_from(["+", "-", "*", "/"]), arith).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
    )
)

comparison = st.one_of(
    st.tuples(arith, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), arith).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    ),
    st.tuples(arith, st.sampled_from(["<", "<="]), arith, st.sampled_from(["<", "<="]), arith).map(
        lambda t: f"{t[0]} {t[1]} {t[2]} {t[3]} {t[4]}"
    ),
    st.sampled_from(BOOLEAN),
    st.tuples(st.sampled_from(BOOLEAN), st.sampled_from(["true", "false"])).map(
        lambda t: f"{t[0]} == {t[1]}"
    ),
    st.tuples(
        st.sampled_from(["in", "not in"]),
        st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3),
    ).map(lambda t: f"segment {t[0]} [{', '.join(repr(s) for s in t[1])}]"),
    st.sampled_from(SEGMENTS).map(lambda s: f"segment != {s!r}"),
)

condition = st.deferred(
    lambda: st.one_of(
        comparison,
        comparison,
        condition.map(lambda c: f"not ({c})"),
        st.tuples(condition, st.sampled_from(["and", "or"]), condition).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
    )
)

facts_strategy = st.fixed_dictionaries(
    {
        "days_past_due": st.integers(-5, 400),
        "overdue_balance": st.decimals(0, 50000, places=2, allow_nan=False),
        "utilization": st.decimals(0, 3, places=4, allow_nan=False).map(float),
        "has_open_dispute": st.booleans(),
        "on_hold": st.booleans(),
        "segment": st.sampled_from(SEGMENTS),
    },
    optional={"credit_score": st.integers(0, 1000)},
)

TEMPLATE = """
kind = "prop"
hit_policy = "first"
[outcome]
hit = {{ values = ["no", "yes"], default = "no" }}
[[rule]]
id = "P-1"
name = "generated"
priority = 1
when = {when!r}
then = {{ hit = "yes" }}
reason = "matched"
"""


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(when=condition, facts=facts_strategy, drop=st.sets(st.sampled_from(NUMERIC), max_size=2))
def test_engine_agrees_with_reference_interpreter(when: str, facts: dict, drop: set) -> None:
    assume(len(when) < 600)
    facts = {k: v for k, v in facts.items() if k not in drop}
    source = TEMPLATE.replace("{when!r}", _toml_string(when)).replace("{{", "{").replace("}}", "}")
    try:
        ruleset = parse_ruleset(source, "prop.toml")
    except RuleFileError as exc:
        messages = " ".join(p.message for p in exc.problems)
        # Constant-false conditions and division by zero are refused; anything else is a bug.
        assert (
            "never match" in messages
            or "division by zero" in messages
            or "comparisons" in messages
            or "constant part" in messages
        ), messages
        return
    reference = expr.matches(expr.parse(when), facts)
    try:
        decided = ENGINE.evaluate(ruleset, facts).outcome["hit"] == "yes"
    finally:
        ENGINE.unload(ruleset)
    assert decided == reference, (when, facts)


@pytest.mark.parametrize(
    "when, facts, expected",
    [
        ("not (credit_score > 600)", {"days_past_due": 1}, False),  # absent fact: no match
        ("credit_score > 600 or days_past_due > 0", {"days_past_due": 1}, False),
        ("days_past_due / credit_score > 1", {"days_past_due": 5, "credit_score": 0}, False),
        (
            "overdue_balance / days_past_due > 1",
            {"days_past_due": 7, "overdue_balance": Decimal(15)},
            True,
        ),
        ("days_past_due / 2 > 3.4", {"days_past_due": 7}, True),  # 3.5: never integer division
        (
            "overdue_balance + days_past_due > 100",
            {"overdue_balance": Decimal("90.5"), "days_past_due": 10},
            True,
        ),
    ],
)
def test_reference_cases(when: str, facts: dict, expected: bool) -> None:
    source = TEMPLATE.replace("{when!r}", _toml_string(when)).replace("{{", "{").replace("}}", "}")
    ruleset = parse_ruleset(source, "prop.toml")
    assert expr.matches(expr.parse(when), facts) is expected
    assert (ENGINE.evaluate(ruleset, facts).outcome["hit"] == "yes") is expected
