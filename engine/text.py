"""Text credo can store: the one rule every string from outside passes before it is kept.

A decision's trace is hashed as UTF-8 and every record lands in SQLite or PostgreSQL, so a
string from a caller must be Unicode text that UTF-8 can encode (no lone surrogate, U+D800 to
U+DFFF, which JSON's "\\ud800" escape can produce) and must not hold NUL (U+0000), which
PostgreSQL's text refuses. The HTTP schemas (api.intake.schemas.Text), the facts given directly
(engine.facts) and `credo import` all ask `text_problem`.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, as a message for the field it came in; None if it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char, at = found.group(), found.start() + 1
    if char == "\x00":
        return f"must not contain a NUL character (\\u0000 at character {at})"
    return f"must be valid Unicode: lone surrogate \\u{ord(char):04x} at character {at}"


def printable(text: str) -> str:
    """`text` with lone surrogates written as backslash escapes, safe to print as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
