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
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError

from api.nightly.letters import (  # noqa: F401 - reminder_context: where callers find it
    COURTESY_WINDOW_DAYS,
    LARGE_SAMPLE_INVOICES,
    reminder_context,
    sample_contexts,
)
from api.nightly.limits import DEFAULT_LIMITS, RenderLimits, TemplateLimitError
from api.nightly.locales import letter_locale
from api.nightly.sandbox import LimitedEnvironment, SizedDictLoader
from api.nightly.terms import TermsError, check_charges

TONES_WITH_MESSAGES = ("courtesy", "friendly", "firm", "final", "demand")
# Texts of their own, chosen by the reminder rule set's `notice` field, and the call script
# for a reminder by phone (api.nightly.actions.template_name).
NOTICES = ("plan_offer", "plan_default", "promise_broken", "call")
DEFAULT_LANGUAGE = "en"
COMPANY_FILE = "company.toml"
# A template that broke a limit (steps, time, size, recursion) for this many messages in a row
# is not rendered again by the same renderer (one run in one worker): each such failure can take
# up to RenderLimits.seconds, and a batch must finish well within its lease.
LIMIT_FAILURES_IN_A_ROW = 3
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
        self.late_charges = self.company.pop("late_charges", {})
        self._written = {name.split(".")[-2] for name in self.files if name.endswith(".j2")}

    @classmethod
    def from_directory(cls, directory: Path, limits: RenderLimits = DEFAULT_LIMITS):
        """A renderer of the templates in `directory` (api.nightly.templates.read_templates)."""
        from api.nightly.templates import TemplateFilesError, read_templates

        try:
            return cls(read_templates(directory), limits)
        except TemplateFilesError as exc:
            raise MessageError(str(exc)) from None

    def language_for(self, country: str, contact_language: str = "") -> str:
        """The language of a letter: the contact person's, when the templates are written in
        it, else the one company.toml's [languages] gives the country, else English."""
        language = (contact_language or "").split("-")[0].split("_")[0].lower()
        if language and language in self._written:
            return language
        return self.languages.get((country or "").upper(), DEFAULT_LANGUAGE)

    def charges_basis(self, country: str) -> dict[str, Any] | None:
        """The late-charges basis for customers in `country` (api.nightly.terms), or None."""
        return self.late_charges.get((country or "").upper())

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
        country = (context.get("customer") or {}).get("country", "")
        locale = letter_locale(language, country if isinstance(country, str) else "")
        try:
            text = self.env.render_limited(
                name, {"company": self.company, "locale": locale, **context}
            )
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
    try:
        company["late_charges"] = check_charges(company.get("late_charges", {}))
    except TermsError as exc:
        raise MessageError(str(exc), COMPANY_FILE) from None
    return company
