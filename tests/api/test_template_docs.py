"""docs/templates.md's examples hold: every row of its locale table prints what it shows, its
example text renders with the shipped pieces, and its late-charges example is the shipped basis."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from api.nightly.messages import MessageRenderer, sample_contexts
from api.nightly.templates import read_templates

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
TEMPLATES = ROOT / "rules" / "templates"
ROW = re.compile(
    r"^\| `(?P<code>.+?)`(?: \(currency (?P<currency>[A-Z]{3})\))?"
    r" \| (?P<locale>\w+) \| `(?P<shown>.+)` \|$"
)


def table_rows() -> list[tuple[str, str, str, str]]:
    start = DOC.index("| in a text | locale | prints |")
    rows = []
    for line in DOC[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        found = ROW.match(line)
        assert found, f"docs/templates.md: a row the test cannot read: {line}"
        code = found["code"].replace("\\|", "|")
        rows.append((code, found["currency"] or "EUR", found["locale"], found["shown"]))
    return rows


def plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pytest.mark.parametrize(("code", "currency", "locale", "shown"), table_rows())
def test_every_row_of_the_locale_table_prints_what_it_shows(code, currency, locale, shown):
    language, _, country = locale.partition("_")
    files = {"company.toml": 'name = "x"\n', "reminder/row.en.j2": f"Subject: s\n{code}\n"}
    files[f"reminder/row.{language}.j2"] = files["reminder/row.en.j2"]
    context = {"currency": currency, "customer": {"country": country}}
    message = MessageRenderer(files).render("row", context, language)
    assert plain(message.body.strip()) == shown


def test_the_table_covers_german_and_english_money_and_dates():
    shown = {row[3] for row in table_rows()}
    assert {"49.443,72 €", "£1,234.50", "7. Dezember 2026", "7 December 2026"} <= shown


def test_the_example_text_renders_with_the_shipped_pieces():
    example = DOC.split("```jinja\n", 1)[1].split("```", 1)[0]
    files = {**read_templates(TEMPLATES), "reminder/example.en.j2": example}
    context = sample_contexts()["small account with offers"]
    message = MessageRenderer(files).render("example", context, "en")
    assert message.subject == "Friendly reminder: €1,200.00 past due"
    assert "Dear Ms Weber," in message.body and "January 15, 2026" in message.body


def test_the_late_charges_example_is_the_shipped_basis():
    example = DOC.split("```toml\n", 1)[1].split("```", 1)[0]
    shipped = tomllib.loads((TEMPLATES / "company.toml").read_text())["late_charges"]
    for country, basis in tomllib.loads(example)["late_charges"].items():
        assert {k: v for k, v in shipped[country].items() if k in basis} == basis


def test_a_malformed_late_charges_table_is_refused_by_the_check_naming_it():
    from api.nightly.messages import MessageError

    files = read_templates(TEMPLATES)
    for table, words in (
        ("[late_charges.DE]\ninterest_rate = 500\n", "late_charges.DE.interest_rate must be"),
        (
            "[late_charges.DE]\nfixed_fee = 40.0\n",
            "late_charges.DE: a fixed_fee needs its fee_currency",
        ),
        ("[late_charges.DE]\nrate = 5\n", "late_charges.DE: unknown key 'rate'"),
        ("[late_charges.de]\ninterest_rate = 5\n", "a country must be an ISO 3166 code"),
        (
            '[late_charges.GB]\nfee_currency = "GBP"\nfixed_fee = [{fee = 40.0}, {fee = 70.0}]\n',
            "tiers must rise",
        ),
    ):
        company = files["company.toml"].split("[late_charges.DE]")[0] + table
        with pytest.raises(MessageError, match=re.escape(words)):
            MessageRenderer({**files, "company.toml": company})


def test_the_plan_terms_example_of_rules_md_is_a_shipped_rules_then():
    rules_md = " ".join((ROOT / "docs" / "rules.md").read_text(encoding="utf-8").split())
    shown = re.search(r"`then = \{ (action = \"offer_plan\".*?) \}`", rules_md)
    assert shown, "docs/rules.md: the plan terms example is gone"
    example = tomllib.loads(f"then = {{ {shown[1]} }}")["then"]
    handoff = tomllib.loads((ROOT / "rules" / "handoff.toml").read_text(encoding="utf-8"))
    assert example in [rule.get("then") for rule in handoff["rule"]]
