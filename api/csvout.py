"""Every CSV credo writes goes through here: the decisions export, the worklist (API and
console), the audit export.

A cell a spreadsheet would read as a formula — text starting with `=`, `+`, `-`, `@` (and `|`,
`%`), a tab or a carriage return — is neutralised by a leading apostrophe, which spreadsheets
show as text and do not display (OWASP's advice on CSV injection). The writer is defusedcsv's
(a maintained drop-in for the csv module, which also escapes `|` in such cells); before it, this
module prefixes the two cases it lets through: a leading tab or carriage return, and text that
reads as a negative number (an id such as `-2`), which it leaves alone. Numbers (int, Decimal)
are written as they are. The exact values are in the JSON API and the JSON-lines exports.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from defusedcsv import csv as defused

# What a cell may start with that a spreadsheet would evaluate (defusedcsv's set, and the two
# whitespace characters OWASP adds).
FORMULA_STARTS = ("=", "+", "-", "@", "|", "%", "\t", "\r")
_PREFIX = "'"


def neutral(value: Any) -> Any:
    """A cell as written: text defusedcsv would let through starting with `-`, a tab or a
    carriage return gets the apostrophe here; defusedcsv's writer handles the rest."""
    if isinstance(value, str) and value[:1] in ("-", "\t", "\r"):
        return _PREFIX + value
    return value


def csv_chunks(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text (RFC 4180 line ends) with every cell neutralised: the header, then each row as
    its own chunk (for a streamed response or file of any size)."""
    buffer = io.StringIO()
    writer = defused.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([neutral(cell) for cell in header])
    yield flush()
    for row in rows:
        writer.writerow([neutral(cell) for cell in row])
        yield flush()
