"""Reminder messages: subject and body rendered from analyst-editable templates.

Templates live in rules/templates/reminder/<tone>.<language>.j2 (first line `Subject: ...`),
with the sender's details in rules/templates/company.toml. They run in Jinja2's sandbox with
strict undefined variables, so a template can neither reach Python internals nor silently print
an empty placeholder. Every tone has a courteous text; the language follows the customer's
country (company.toml [languages]) and falls back to English.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from engine.account import Account
from engine.ledger import Customer, Dispute, Installment, Invoice, Ledger, PaymentPlan

TONES_WITH_MESSAGES = ("courtesy", "friendly", "firm", "final", "demand")
# Texts of their own, chosen by the reminder rule set's `notice` field, and the call script
# for a reminder by phone (api.nightly.actions.template_name).
NOTICES = ("plan_offer", "plan_default", "promise_broken", "call")
DEFAULT_LANGUAGE = "en"
COURTESY_WINDOW_DAYS = 14


class MessageError(Exception):
    """A template is missing or fails to render; names the template."""


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    language: str
    template: str


class MessageRenderer:
    """Renders reminder messages from a templates directory (usually rules/templates)."""

    def __init__(self, templates_dir: Path):
        self.templates_dir = Path(templates_dir)
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(self.templates_dir)),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=False,
            auto_reload=False,  # templates are read once per process, not stat'ed per message
        )
        self._names: dict[tuple[str, str], str | None] = {}
        company_file = self.templates_dir / "company.toml"
        try:
            self.company = tomllib.loads(company_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise MessageError(f"{company_file}: {exc}") from None
        self.languages = {k.upper(): v for k, v in self.company.pop("languages", {}).items()}

    def language_for(self, country: str) -> str:
        return self.languages.get((country or "").upper(), DEFAULT_LANGUAGE)

    def render(self, tone: str, context: dict[str, Any], language: str) -> Message:
        """Render the message for a tone; falls back to English when the language has none."""
        name = self._template_name(tone, language)
        if name is None:
            raise MessageError(f"no template reminder/{tone}.{DEFAULT_LANGUAGE}.j2")
        try:
            text = self.env.get_template(name).render(company=self.company, **context)
        except TemplateError as exc:
            raise MessageError(f"{name}: {exc}") from None
        first, _, rest = text.lstrip().partition("\n")
        if not first.startswith("Subject:"):
            raise MessageError(f"{name}: the first line must be 'Subject: ...'")
        return Message(first[len("Subject:") :].strip(), rest.strip() + "\n", language, name)

    def _template_name(self, tone: str, language: str) -> str | None:
        """The template for a tone in a language, else in English; None when neither exists."""
        key = (tone, language)
        if key not in self._names:
            names = [f"reminder/{tone}.{language}.j2", f"reminder/{tone}.{DEFAULT_LANGUAGE}.j2"]
            found = [n for n in names if (self.templates_dir / n).is_file()]
            self._names[key] = found[0] if found else None
        return self._names[key]

    def check(self) -> list[str]:
        """Render every template with a sample account; the problems found."""
        problems = []
        sample = sample_context()
        for path in sorted((self.templates_dir / "reminder").glob("[!_]*.j2")):
            tone, language = path.name.split(".")[:2]
            try:
                self.render(tone, sample, language)
            except MessageError as exc:
                problems.append(str(exc))
        for tone in (*TONES_WITH_MESSAGES, *NOTICES):
            if not (self.templates_dir / f"reminder/{tone}.{DEFAULT_LANGUAGE}.j2").exists():
                problems.append(f"missing template reminder/{tone}.{DEFAULT_LANGUAGE}.j2")
        return problems


def reminder_context(
    ledger: Ledger,
    as_of: date,
    tone: str,
    discount: dict[str, Any] | None = None,
    plan: str | None = None,
    account: Account | None = None,
) -> dict[str, Any]:
    """What a reminder template may use: the customer, the invoices it is about, totals, offers.

    A courtesy reminder lists invoices falling due within the next two weeks; every other tone
    lists the overdue ones, oldest first, but not those in dispute, which are listed apart
    (`disputed`): a reminder never chases an invoice under dispute. Amounts are what is still
    unpaid. `missed_installments` lists the active plan's missed installments (due date,
    amount).
    """
    account = account or Account(ledger, as_of)
    rows, disputed = [], []
    for invoice in account.invoices:
        unpaid = account.unpaid[invoice.id]
        if unpaid <= 0:
            continue
        days = (as_of - invoice.due_date).days
        coming = -COURTESY_WINDOW_DAYS <= days <= 0
        if invoice.id in account.disputed_invoice_ids:
            disputed.append(_row(invoice, unpaid, days))
        elif (tone == "courtesy" and coming) or (tone != "courtesy" and days > 0):
            rows.append(_row(invoice, unpaid, days))
    customer = ledger.customer
    total = sum((r["unpaid_amount"] for r in rows), Decimal(0))
    return {
        "customer": {"id": customer.id, "name": customer.name, "country": customer.country},
        "currency": customer.currency,
        "tone": tone,
        "as_of": as_of.isoformat(),
        "invoices": rows,
        "total_overdue": f"{total:,.2f}",
        "next_due_date": min((r["due_date"] for r in rows), default=as_of.isoformat()),
        "discount": discount,
        "plan": plan,
        "disputed": disputed,
        "missed_installments": [
            {"due_date": i.due_date.isoformat(), "amount": f"{i.amount:,.2f}"}
            for i in account.missed_installments
        ],
    }


def _row(invoice: Invoice, unpaid: Decimal, days: int) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "amount": f"{invoice.amount:,.2f}",
        "unpaid": f"{unpaid:,.2f}",
        "unpaid_amount": unpaid,
        "days_past_due": max(days, 0),
    }


def sample_context() -> dict[str, Any]:
    """A small account used to check that every template renders."""
    today = date(2026, 1, 15)
    customer = Customer("C-1", "Sample Trading Ltd", "EUR", Decimal(10000), date(2020, 1, 1))
    invoices = (
        Invoice("INV-1", "C-1", today - timedelta(60), today - timedelta(30), Decimal("1200.00")),
        Invoice("INV-2", "C-1", today - timedelta(20), today + timedelta(10), Decimal("300.50")),
        Invoice("INV-3", "C-1", today - timedelta(50), today - timedelta(20), Decimal("150.00")),
    )
    disputes = (Dispute("X-1", "INV-3", today - timedelta(12)),)
    installments = (Installment(today - timedelta(5), Decimal("400.00")),)
    plans = (PaymentPlan("PL-1", "C-1", "active", installments),)
    ledger = Ledger(customer, invoices, disputes=disputes, payment_plans=plans)
    context = reminder_context(ledger, today, "friendly")
    context["discount"] = {"percent": 2, "until": (today + timedelta(5)).isoformat()}
    context["plan"] = "3 monthly installments"
    return context
