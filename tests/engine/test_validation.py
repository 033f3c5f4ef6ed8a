"""Every validation message of rule files, located with file, rule id and field."""

from __future__ import annotations

import pytest

from engine.errors import RuleFileError
from engine.ruleset import load_ruleset_file, parse_ruleset

HEADER = """
kind = "reminder"
hit_policy = "first"
[outcome]
tone = { values = ["none", "friendly", "firm"], default = "none" }
"""


def rule(
    when="days_past_due > 1", then='{ tone = "firm" }', reason="late", rid="RT-1", pri=10, extra=""
):
    return f"""
[[rule]]
id = "{rid}"
name = "a rule"
priority = {pri}
when = {when!r}
then = {then}
reason = {reason!r}
{extra}
"""


def problems(text: str, path: str = "rules/reminder.toml") -> list[str]:
    with pytest.raises(RuleFileError) as info:
        parse_ruleset(text, path)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            rule(when="days_pass_due > 3"),
            "rules/reminder.toml: rule RT-1: when: unknown fact 'days_pass_due' "
            "(did you mean 'days_past_due'?) at column 1",
        ),
        (
            rule(when="has_open_dispute > 3"),
            "rule RT-1: when: cannot compare a boolean with a number ('>')",
        ),
        (rule(when="segment < 'b'"), "'<' does not apply to a string; use == or !="),
        (rule(when="days_past_due"), "'days_past_due' is a number, not a condition"),
        (rule(when="days_past_due > 1 and len(segment) > 2"), "function calls are not part"),
        (rule(when="customer_id.upper() == 'X'"), "function calls are not part"),
        (rule(when="segment.x == 'a'"), "attributes are not part"),
        (rule(when="segment[0] == 'a'"), "indexing are not part"),
        (rule(when="(lambda: 1)() == 1"), "function calls are not part"),
        (rule(when="[x for x in segment] == 1"), "comprehensions are not part"),
        (rule(when="__import__('os') == 1"), "function calls are not part"),
        (rule(when="f'{segment}' == 'a'"), "f-strings are not part"),
        (rule(when="days_past_due = 3"), "syntax error (use == to compare)"),
        (rule(when="days_past_due / 0 > 1"), "division by zero"),
        (rule(when="days_past_due > 0.00001"), "more than 4 decimals"),
        (rule(when="days_past_due > 1e13"), "too large"),
        (rule(when="segment in ['a', 1]"), "the list holds a number"),
        (rule(when="days_past_due > 1 and days_past_due < 0"), "can never match"),
        (rule(when="True"), "use true or false"),
        (rule(then='{ tone = "loud" }'), "then: tone: 'loud' is not one of"),
        (
            rule(then='{ tonne = "firm" }'),
            "'tonne' is not an outcome field of this rule set (did you mean 'tone'?)",
        ),
        (rule(reason="late {nope}"), "reason: placeholder {nope} is not a fact"),
        (rule(reason="late {days_past_due:>4}"), "must be a plain fact name"),
        (rule(reason="late {"), "reason: bad template"),
        (rule(extra="colour = 1"), "rule RT-1: unknown key 'colour'"),
        (
            rule(extra="set = { days_past_due = 3 }"),
            "cannot overwrite the input fact 'days_past_due'",
        ),
        (rule() + rule(rid="RT-1", when="days_past_due > 5"), "rule RT-1: duplicate rule id"),
        (
            rule(when="days_past_due >= 10", rid="A", pri=20)
            + rule(when="days_past_due > 20", rid="B"),
            'rule B: can never fire under hit_policy "first": '
            "rule A (priority 20) always matches first",
        ),
        (
            rule(when="segment in ['a', 'b']", rid="A", pri=20)
            + rule(when="segment == 'a'", rid="B"),
            "rule B: can never fire",
        ),
        (rule(when="true", rid="A", pri=20) + rule(rid="B"), "rule B: can never fire"),
        (rule(pri='"high"'), "priority: must be a whole number"),
    ],
)
def test_rule_problems(body: str, message: str) -> None:
    found = problems(HEADER + body)
    assert any(message in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    body = (
        rule(when="days_pass_due > 3", rid="A")
        + rule(then='{ tone = "loud" }', rid="B")
        + rule(reason="{x}", rid="C")
    )
    found = problems(HEADER + "colour = 2\n" + body)
    assert len(found) == 3 or len(found) == 4
    assert {"A", "B", "C"} <= {p.split("rule ")[1].split(":")[0] for p in found if "rule " in p}


def test_shadowing_is_not_reported_when_it_cannot_be_shown() -> None:
    body = rule(when="days_past_due >= 10", rid="A", pri=20) + rule(
        when="days_past_due > 5 and segment == 'x'", rid="B"
    )
    assert parse_ruleset(HEADER + body, "reminder.toml").rule("B") is not None


@pytest.mark.parametrize(
    "text, message",
    [
        ('kind = "reminder"\n[outcome\n', "rules/reminder.toml:2: TOML syntax error"),
        (
            "hit_policy = 'first'\n[outcome]\nt={values=['a'],default='a'}" + rule(then="{t='a'}"),
            "missing key 'kind'",
        ),
        (HEADER.replace('"first"', '"some"') + rule(), "hit_policy must be one of"),
        (
            HEADER.replace('default = "none"', 'default = "meh"') + rule(),
            "default: 'meh' is not one",
        ),
        ('kind = "reminder"\n' + rule(), "missing [outcome] table"),
        (HEADER, "a rule set needs at least one [[rule]]"),
        (
            HEADER.replace('kind = "reminder"', 'kind = "credit"') + rule(),
            "kind 'credit' must match the file name 'reminder.toml'",
        ),
        (
            HEADER + rule() + "[[test]]\nname='t'\nfacts={days_past_du=3}\nexpect={tone='firm'}\n",
            "test 't': facts.days_past_du",
        ),
        (
            HEADER + rule() + "[[test]]\nname='t'\nfacts={}\nexpect={tonee='firm'}\n",
            "test 't': expect.tonee: not an outcome field",
        ),
    ],
)
def test_file_problems(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "rules" / "reminder.toml"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(RuleFileError) as info:
        load_ruleset_file(path)
    found = [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]
    assert any(message in p for p in found), found


def test_too_many_rules_is_refused_naming_the_limit() -> None:
    body = "".join(rule(rid=f"R{i}", when=f"days_past_due == {i}") for i in range(101))
    found = problems(HEADER + body)
    assert any("101 rules: the limit is 100" in p for p in found)
