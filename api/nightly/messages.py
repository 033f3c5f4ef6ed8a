"""Reminder messages: subject and body rendered from analyst-editable templates.

The templates are stored with the reminder rule set's version (api/nightly/templates.py): a
run renders with the files of the version it pinned, {path: text}, e.g.
`reminder/<tone>.<language>.j2` (first line `Subject: ...`) and `company.toml` (the sender's
details). They run in Jinja2's sandbox with strict undefined variables, so a template can
neither reach Python internals nor silently print an empty placeholder, and with hard limits
(api/nightly/sandbox.py), so a template can neither hang a run nor change what later messages
see. Every tone has a courteous text; the language follows the customer's country
(company.toml [languages]) and falls back to English.
"""

from __future__ import annotations

import time
import tomllib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError

from api.nightly.limits import DEFAULT_LIMITS, RenderLimits, TemplateLimitError
from api.nightly.sandbox import LimitedEnvironment, SizedDictLoader
from engine.account import Account
from engine.ledger import Customer, Dispute, Installment, Invoice, Ledger, PaymentPlan

TONES_WITH_MESSAGES = ("courtesy", "friendly", "firm", "final", "demand")
# Texts of their own, chosen by the reminder rule set's `notice` field, and the call script
# for a reminder by phone (api.nightly.actions.template_name).
NOTICES = ("plan_offer", "plan_default", "promise_broken", "call")
DEFAULT_LANGUAGE = "en"
COMPANY_FILE = "company.toml"
COURTESY_WINDOW_DAYS = 14
# A template that broke a limit (steps, time, size, recursion) for this many messages in a row
# is not rendered again by the same renderer (one run in one worker): each such failure can take
# up to RenderLimits.seconds, and a batch must finish well within its lease.
LIMIT_FAILURES_IN_A_ROW = 3
# The large sample account `credo rules check` renders every template with: a template whose
# work grows faster than the number of invoices breaks a limit on it.
LARGE_SAMPLE_INVOICES = 2000
# How long checking one set of templates may take in all (each message has its own limits):
# a draft with very many slow texts is refused rather than holding its request for minutes.
CHECK_SECONDS = 30.0


class MessageError(Exception):
    """A template is missing or fails to render. Names the template and, where known, the file
    (the template or a piece it includes) and line where rendering failed, and the sample
    account of a check: `reminder/firm.en.j2 line 7: more than 1,000,000 steps (...): the limit
    per message`."""

    def __init__(
        self,
        problem: str,
        template: str | None = None,
        file: str | None = None,
        line: int = 0,
        sample: str | None = None,
    ):
        self.problem, self.template, self.file, self.line = problem, template, file, line
        self.sample = sample
        where = f"{template}: {file}" if file and file != template else template or ""
        where += f" line {line}" if where and line else ""
        text = f"{where}: {problem}" if where else problem
        super().__init__(f"{text} (sample: {sample})" if sample else text)


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    language: str
    template: str


class MessageRenderer:
    """Renders reminder messages from a set of templates: {path: text}, as stored with a
    reminder version (or read from a directory by `from_directory`)."""

    def __init__(self, files: Mapping[str, str], limits: RenderLimits = DEFAULT_LIMITS):
        self.files = dict(files)
        self.env = LimitedEnvironment(
            limits,
            loader=SizedDictLoader(self.files),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=False,
            auto_reload=False,  # a version's templates never change
        )
        self._limit_failures: dict[str, tuple[int, MessageError]] = {}  # in a row, the last
        self.company = read_company(self.files.get(COMPANY_FILE))
        self.languages = {k.upper(): v for k, v in self.company.pop("languages", {}).items()}

    @classmethod
    def from_directory(cls, directory: Path, limits: RenderLimits = DEFAULT_LIMITS):
        """A renderer of the templates in `directory` (api.nightly.templates.read_templates)."""
        from api.nightly.templates import TemplateFilesError, read_templates

        try:
            return cls(read_templates(directory), limits)
        except TemplateFilesError as exc:
            raise MessageError(str(exc)) from None

    def language_for(self, country: str) -> str:
        return self.languages.get((country or "").upper(), DEFAULT_LANGUAGE)

    def render(self, tone: str, context: dict[str, Any], language: str) -> Message:
        """Render the message for a tone; falls back to English when the language has none.

        Raises MessageError, and nothing else, whatever the template does: a missing name, a
        broken limit, endless recursion, an overflow.
        """
        name = self._template_name(tone, language)
        if name is None:
            raise MessageError("no such template", f"reminder/{tone}.{DEFAULT_LANGUAGE}.j2")
        failures, last = self._limit_failures.get(name, (0, None))
        if last is not None and failures >= LIMIT_FAILURES_IN_A_ROW:
            where = f"{last.file} line {last.line}" if last.line else last.file
            raise MessageError(
                f"not rendered: it broke a limit for {failures} messages in a row, the last time "
                f"{where}: {last.problem}",
                name,
            )
        try:
            text = self.env.render_limited(name, {"company": self.company, **context})
        except Exception as exc:  # noqa: BLE001 - a broken message costs only that message
            error = self._failure(name, exc)
            if isinstance(exc, TemplateLimitError | RecursionError | MemoryError):
                self._limit_failures[name] = (failures + 1, error)
            raise error from None
        self._limit_failures.pop(name, None)
        first, _, rest = text.lstrip().partition("\n")
        if not first.startswith("Subject:"):
            raise MessageError("the first line must be 'Subject: ...'", name, name, 1)
        return Message(first[len("Subject:") :].strip(), rest.strip() + "\n", language, name)

    def _failure(self, name: str, exc: Exception) -> MessageError:
        """A MessageError naming the file and line where rendering template `name` failed."""
        file, line = name, 0
        if isinstance(exc, TemplateSyntaxError):
            file, line = exc.name or name, exc.lineno
        # The loader compiles each file under its own path (SizedDictLoader): the innermost
        # frame of a template file is where it failed.
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename in self.files:
                file, line = frame.filename, frame.lineno or 0
        if isinstance(exc, RecursionError):
            problem = "recursion too deep (a macro, include or extends that calls itself?)"
        elif isinstance(exc, TemplateSyntaxError):
            problem = exc.message or "syntax error"
        else:
            text = str(exc).splitlines()[0] if str(exc) else ""
            problem = text if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {text}"
        return MessageError(problem[:300], name, file, line)

    def _template_name(self, tone: str, language: str) -> str | None:
        """The template for a tone in a language, else in English; None when neither exists."""
        names = (f"reminder/{tone}.{language}.j2", f"reminder/{tone}.{DEFAULT_LANGUAGE}.j2")
        return next((name for name in names if name in self.files), None)

    def check(self, seconds: float = CHECK_SECONDS) -> list[MessageError]:
        """Render every template (not the pieces, `reminder/_*.j2`, which they include) with
        each sample account (sample_contexts); the problems found, at most one per template,
        each naming the sample it failed on; and a problem for each tone without its English
        text. Stops with a problem when the whole check takes more than `seconds`."""
        problems = []
        samples = sample_contexts()
        deadline = time.monotonic() + seconds
        for name in sorted(self.files):
            base = name.rpartition("/")[2]
            if not name.startswith("reminder/") or base.startswith("_"):
                continue
            tone, language = base.split(".")[:2]
            if time.monotonic() > deadline:
                problems.append(
                    MessageError(f"not checked: checking took more than {seconds:g} s", name)
                )
                break
            for label, sample in samples.items():
                try:
                    self.render(tone, sample, language)
                except MessageError as exc:
                    problems.append(MessageError(exc.problem, name, exc.file, exc.line, label))
                    break
        for tone in (*TONES_WITH_MESSAGES, *NOTICES):
            name = f"reminder/{tone}.{DEFAULT_LANGUAGE}.j2"
            if name not in self.files:
                problems.append(MessageError(f"missing: the {tone} tone needs a text", name))
        return problems


def read_company(text: str | None) -> dict[str, Any]:
    """company.toml's settings as a table; MessageError naming what is wrong with it."""
    if text is None:
        raise MessageError("missing: the sender's details are needed", COMPANY_FILE)
    try:
        company = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MessageError(str(exc), COMPANY_FILE) from None
    languages = company.get("languages", {})
    if not isinstance(languages, dict) or not all(isinstance(v, str) for v in languages.values()):
        raise MessageError('[languages] must map countries to languages: DE = "de"', COMPANY_FILE)
    return company


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


def sample_contexts() -> dict[str, dict[str, Any]]:
    """The sample accounts every template must render with, by label: a small one with a
    discount and a payment plan offered, the same without either, and a large one."""
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
    small = reminder_context(ledger, today, "friendly")
    offers = {
        **small,
        "discount": {"percent": 2, "until": (today + timedelta(5)).isoformat()},
        "plan": "3 monthly installments",
    }
    issued = today - timedelta(90)
    many = tuple(
        Invoice(f"INV-{n}", "C-1", issued, today - timedelta(1 + n % 60), Decimal("99.90"))
        for n in range(LARGE_SAMPLE_INVOICES)
    )
    return {
        "small account with offers": offers,
        "small account": small,
        f"large account ({LARGE_SAMPLE_INVOICES:,} invoices)": reminder_context(
            Ledger(customer, many), today, "firm"
        ),
    }
