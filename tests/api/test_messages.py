"""Reminder messages: every tone renders, personalised, in the customer's language, sandboxed."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import main
from api.nightly.messages import MessageError, MessageRenderer, reminder_context
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
    renderer = MessageRenderer(TEMPLATES)
    message = renderer.render(tone, reminder_context(ledger(), AS_OF, tone), "en")
    assert "Dupont SARL" in message.body and message.subject
    invoice = "INV-8" if tone == "courtesy" else "INV-7"
    assert invoice in message.body
    if tone != "courtesy":
        assert "1,234.50 EUR" in message.body and "34 days" in message.body


def test_language_follows_the_country_and_falls_back_to_english():
    renderer = MessageRenderer(TEMPLATES)
    assert renderer.language_for("DE") == "de" and renderer.language_for("FR") == "en"
    message = renderer.render("firm", reminder_context(ledger("DE"), AS_OF, "firm"), "de")
    assert message.subject.startswith("Zweite Mahnung") and message.language == "de"


def test_templates_run_in_a_sandbox(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "reminder" / "firm.en.j2").write_text(
        "Subject: x\n{{ customer.__class__.__mro__[1].__subclasses__() }}"
    )
    renderer = MessageRenderer(folder)
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
