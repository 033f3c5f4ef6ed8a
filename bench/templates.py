"""Benchmark of reminder rendering: the shipped templates in the limited sandbox, and how fast a
runaway template is stopped.

1. Every shipped English template rendered for accounts of 2, 200, 2,000 and 10,000 overdue
   invoices, with the limited sandbox (api/nightly/sandbox.py) and, for comparison, Jinja2's
   plain SandboxedEnvironment: milliseconds per message (median of 5) and the text's length.
2. Hostile templates: seconds until the render is refused, and the error.

Run alone: `python bench/templates.py`.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.nightly.locales import FILTERS as LETTER_FILTERS  # noqa: E402
from api.nightly.messages import MessageError, MessageRenderer, reminder_context  # noqa: E402
from engine.ledger import Customer, Invoice, Ledger  # noqa: E402

TEMPLATES = Path(__file__).resolve().parents[1] / "rules" / "templates"
AS_OF = date(2026, 3, 10)
HOSTILE = {
    "nested range(100000) loops": "{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% endfor %}{% endfor %}",
    "invoices.append in a loop": "{% for i in invoices %}{{ invoices.append(i) }}{% endfor %}",
    "'x' * 10**9": "{{ 'x' * 10**9 }}",
    "10 ** 10 ** 10 ** 10 ** 10": "{{ 10 ** 10 ** 10 ** 10 ** 10 }}",
    "recursive macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "macro calling itself twice": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}"
    "{% endif %}{% endmacro %}{{ f(40) }}",
    "self-include": '{% include "reminder/friendly.en.j2" %}',
    "50 MB of output": "{% for i in range(50000) %}{{ 'x' * 1000 }}{% endfor %}",
}


def account(invoices: int) -> Ledger:
    customer = Customer("K1", "Dupont SARL", "EUR", Decimal(5000), date(2021, 1, 1))
    rows = tuple(
        Invoice(f"INV-{n}", "K1", AS_OF - timedelta(90), AS_OF - timedelta(1 + n % 80), Decimal(99))
        for n in range(invoices)
    )
    return Ledger(customer, rows)


def timed(render) -> tuple[float, int]:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        size = render()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000, size


def main() -> None:
    renderer = MessageRenderer.from_directory(TEMPLATES)
    plain = SandboxedEnvironment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined)
    plain.filters.update(LETTER_FILTERS)  # money, date, number: the texts use them
    print(f"{'template':28} {'invoices':>8} {'limited ms':>11} {'plain ms':>9} {'chars':>9}")
    for tone in ("friendly", "firm", "final", "demand"):
        for count in (2, 200, 2000, 10000):
            context = reminder_context(account(count), AS_OF, tone)
            name = f"reminder/{tone}.en.j2"
            limited, size = timed(lambda: len(renderer.render(tone, context, "en").body))  # noqa: B023
            template = plain.get_template(name)
            base, _ = timed(lambda: len(template.render(company=renderer.company, **context)))  # noqa: B023
            print(f"{name:28} {count:>8} {limited:>11.2f} {base:>9.2f} {size:>9,}")
    print()
    folder = Path(tempfile.mkdtemp()) / "templates"
    shutil.copytree(TEMPLATES, folder)
    context = reminder_context(account(2), AS_OF, "friendly")
    print(f"{'hostile template':30} {'seconds':>8}  error")
    for label, body in HOSTILE.items():
        (folder / "reminder" / "friendly.en.j2").write_text("Subject: x\n" + body)
        hostile = MessageRenderer.from_directory(folder)
        started = time.perf_counter()
        try:
            hostile.render("friendly", context, "en")
            error = "rendered"
        except MessageError as exc:
            error = str(exc)
        print(f"{label:30} {time.perf_counter() - started:>8.2f}  {error[:110]}")
    shutil.rmtree(folder.parent)


if __name__ == "__main__":
    main()
