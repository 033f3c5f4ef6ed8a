"""Reminder messages: every tone renders, personalised, in the customer's language, sandboxed."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import main
from api.nightly.limits import RenderLimits
from api.nightly.messages import MessageError, MessageRenderer, reminder_context, sample_contexts
from engine.ledger import Customer, Invoice, Ledger

TEMPLATES = Path(__file__).resolve().parents[2] / "rules" / "templates"
AS_OF = date(2026, 3, 10)


def ledger(country: str = "FR") -> Ledger:
    customer = Customer(
        "K1", "Dupont SARL", "EUR", Decimal(5000), date(2021, 1, 1), country=country
    )
    return Ledger(
        customer,
        (
            Invoice("INV-7", "K1", date(2026, 1, 5), date(2026, 2, 4), Decimal("1234.50")),
            Invoice("INV-8", "K1", date(2026, 2, 20), date(2026, 3, 15), Decimal("99.00")),
        ),
    )


@pytest.mark.parametrize("tone", ["courtesy", "friendly", "firm", "final", "demand"])
def test_every_tone_is_personalised(tone):
    renderer = MessageRenderer.from_directory(TEMPLATES)
    message = renderer.render(tone, reminder_context(ledger(), AS_OF, tone), "en")
    assert "Dupont SARL" in message.body and message.subject
    invoice = "INV-8" if tone == "courtesy" else "INV-7"
    assert invoice in message.body
    if tone != "courtesy":  # an English letter to France: French amounts (CLDR en_FR)
        assert "1\u202f234,50\xa0€" in message.body and "34 days" in message.body


def test_language_follows_the_country_and_falls_back_to_english():
    renderer = MessageRenderer.from_directory(TEMPLATES)
    assert renderer.language_for("DE") == "de" and renderer.language_for("FR") == "en"
    message = renderer.render("firm", reminder_context(ledger("DE"), AS_OF, "firm"), "de")
    assert message.subject.startswith("Zweite Mahnung") and message.language == "de"


def test_templates_run_in_a_sandbox(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "reminder" / "firm.en.j2").write_text(
        "Subject: x\n{{ customer.__class__.__mro__[1].__subclasses__() }}"
    )
    renderer = MessageRenderer.from_directory(folder)
    with pytest.raises(MessageError, match="firm.en.j2"):
        renderer.render("firm", reminder_context(ledger(), AS_OF, "firm"), "en")


def test_rules_check_reports_a_broken_template(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(TEMPLATES.parent, rules)
    (rules / "templates" / "reminder" / "final.en.j2").write_text("Subject: {{ nope }}\n")
    monkeypatch.setenv("CREDO_PATHS_RULES_DIR", str(rules))
    result = CliRunner().invoke(main, ["rules", "check"])
    assert result.exit_code == 2
    assert "final.en.j2" in result.output and "nope" in result.output


# ---- limits: a template can neither hang a run nor change what later messages see ------------

HOSTILE = {
    "nested range loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "more than 1,000,000 steps (loop iterations, calls and filters): the limit per message",
    ),
    "append inside a loop over invoices": (
        "{% for i in invoices %}{{ invoices.append(i) }}{% endfor %}",
        "access to attribute 'append' of 'list' object is unsafe",
    ),
    "company.update": (
        "{{ company.update({'name': 'Hijacked'}) }}",
        "access to attribute 'update' of 'dict' object is unsafe",
    ),
    "a string of 10**9 characters": (
        "{{ 'x' * 10**9 }}",
        "a repeated value ('*') would be more than 1,000,000 characters: the limit per message",
    ),
    "a power of 10**10 digits": (
        "{{ 10 ** (10 ** 10) }}",
        "a power would have more than 1,000 digits: the limit per number",
    ),
    "a recursive macro": (
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "recursion too deep (a macro, include or extends that calls itself?)",
    ),
    "a self-include": (
        '{% include "reminder/friendly.en.j2" %}',
        "recursion too deep",
    ),
    "an extends loop": ('{% extends "reminder/friendly.en.j2" %}', "recursion too deep"),
    "range(10**9)|list": ("{{ range(10**9)|list }}", "Range too big"),
    "50 MB of text": (
        "{% for i in range(50000) %}{{ 'x' * 1000 }}{% endfor %}",
        "the text would be more than 1,000,000 characters: the limit per message",
    ),
    "50 MB in a block": (
        "{% set x %}{% for i in range(50000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}",
        "a block of text would be more than 1,000,000 characters",
    ),
    "a string doubled by a macro": (
        "{% macro d(s) %}{{ d(s ~ s) }}{% endmacro %}{{ d('x') }}",
        "a joined text ('~') would be more than 1,000,000 characters",
    ),
    "a list nested by doubling": (
        "{% set a = ['x' * 100000] * 2 %}{% set b = [a, a] %}{% set c = [b, b] %}"
        "{% set d = [c, c] %}{{ d }}",
        "a value would be more than 1,000,000 characters",
    ),
    "a huge width": ("{{ 'x'|center(10**9) }}", "a width of 1,000,000,000 is more than"),
    "a huge format width": (
        "{{ '{:>1000000000}'.format(1) }}",
        "a formatted text would be more than 1,000,000 characters",
    ),
    "a huge join": (
        "{{ range(100000)|join('x' * 1000) }}",
        "a joined text would be more than 1,000,000 characters",
    ),
}


def hostile_renderer(tmp_path, body: str, **limits) -> MessageRenderer:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "reminder" / "friendly.en.j2").write_text(f"Subject: x\n\n{body}\n")
    return MessageRenderer.from_directory(folder, RenderLimits(**limits))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_template_fails_fast_naming_its_line_and_the_limit(tmp_path, case):
    body, problem = HOSTILE[case]
    renderer = hostile_renderer(tmp_path, body)
    context = reminder_context(ledger(), AS_OF, "friendly")
    with pytest.raises(MessageError) as caught:
        renderer.render("friendly", context, "en")
    error = caught.value
    assert (error.template, error.file, error.line) == ("reminder/friendly.en.j2",) * 2 + (3,)
    assert str(error).startswith("reminder/friendly.en.j2 line 3: ") and problem in str(error)
    assert renderer.company["name"] == "Example Supplies GmbH"
    assert len(context["invoices"]) == 1


def test_a_render_stops_at_the_time_limit(tmp_path):
    """A macro calling itself twice per level: 2**40 calls, stopped by the wall clock."""
    body = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    )
    renderer = hostile_renderer(tmp_path, body, seconds=0.2)
    with pytest.raises(MessageError, match=r"line 3: rendering took more than 0.2 s"):
        renderer.render("friendly", reminder_context(ledger(), AS_OF, "friendly"), "en")


def test_the_limits_hold_off_the_main_thread(tmp_path):
    """The scheduler renders on a worker thread, where no signal can interrupt a render."""
    body = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
    renderer = hostile_renderer(tmp_path, body + "{{ f(40) }}", seconds=0.2)
    context = reminder_context(ledger(), AS_OF, "friendly")
    outcome: list[Exception] = []

    def render() -> None:
        try:
            renderer.render("friendly", context, "en")
        except MessageError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=render)
    worker.start()
    worker.join()
    assert [str(e) for e in outcome] == [
        "reminder/friendly.en.j2 line 3: rendering took more than 0.2 s: the limit per message"
    ]


def test_a_failing_piece_is_named_with_its_own_line(tmp_path):
    hostile_renderer(tmp_path, '{% include "reminder/_pay.en.j2" %}')
    (tmp_path / "templates" / "reminder" / "_pay.en.j2").write_text("ok\n{{ 1 / 0 }}\n")
    renderer = MessageRenderer.from_directory(tmp_path / "templates")
    with pytest.raises(MessageError) as caught:
        renderer.render("friendly", reminder_context(ledger(), AS_OF, "friendly"), "en")
    assert str(caught.value) == (
        "reminder/friendly.en.j2: reminder/_pay.en.j2 line 2: ZeroDivisionError: division by zero"
    )


def test_a_template_breaking_a_limit_again_and_again_is_not_rendered_again(tmp_path):
    """Each such failure can take the whole time limit; a success in between resets the count."""
    body = "{% for i in invoices %}{% for j in invoices %}{% endfor %}{% endfor %}"
    renderer = hostile_renderer(tmp_path, body, steps=1000)
    small = reminder_context(ledger(), AS_OF, "friendly")
    large = sample_contexts()["large account (2,000 invoices)"]
    for _ in range(2):
        with pytest.raises(MessageError, match="more than 1,000 steps"):
            renderer.render("friendly", large, "en")
    renderer.render("friendly", small, "en")
    for _ in range(3):
        with pytest.raises(MessageError, match="more than 1,000 steps"):
            renderer.render("friendly", large, "en")
    with pytest.raises(
        MessageError, match="not rendered: it broke a limit for 3 messages in a row"
    ):
        renderer.render("friendly", small, "en")


def test_the_shipped_templates_render_a_large_account():
    renderer = MessageRenderer.from_directory(TEMPLATES)
    assert renderer.check() == []
    large = sample_contexts()["large account (2,000 invoices)"]
    message = renderer.render("demand", large, "en")
    assert "INV-1999" in message.body


def test_rules_check_refuses_a_template_that_breaks_a_limit_on_a_large_account(
    tmp_path, monkeypatch
):
    rules = tmp_path / "rules"
    shutil.copytree(TEMPLATES.parent, rules)
    (rules / "templates" / "reminder" / "firm.de.j2").write_text(
        "Subject: x\n\n{% for i in invoices %}{% for j in invoices %}{% endfor %}{% endfor %}\n"
    )
    monkeypatch.setenv("CREDO_PATHS_RULES_DIR", str(rules))
    result = CliRunner().invoke(main, ["rules", "check"])
    assert result.exit_code == 2, result.output
    assert (
        "templates: reminder/firm.de.j2 line 3: more than 1,000,000 steps (loop iterations, "
        "calls and filters): the limit per message (sample: large account (2,000 invoices))"
    ) in result.output


def test_rules_check_reports_a_recursive_template_instead_of_crashing(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(TEMPLATES.parent, rules)
    (rules / "templates" / "reminder" / "_pay.en.j2").write_text(
        'Pay now.\n{% include "reminder/_pay.en.j2" %}\n'
    )
    monkeypatch.setenv("CREDO_PATHS_RULES_DIR", str(rules))
    result = CliRunner().invoke(main, ["rules", "check", "--json"])
    assert result.exit_code == 2, result.output
    problems = json.loads(result.output)["templates"]
    assert len(problems) == 7  # every English text but the call script includes the piece
    assert all("reminder/_pay.en.j2 line 2: recursion too deep" in p for p in problems)
