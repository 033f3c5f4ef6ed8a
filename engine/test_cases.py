"""[[test]] cases written as TOML text, to be appended to a rule file (issue 14, decision → test).

The text is appended, never merged: the rest of the file stays byte for byte. Values are the
JSON values of a stored decision (money as strings with two decimals, which a [[test]] case
reads exactly; absent facts are left out, as the decision left them out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_string(text: str) -> str:
    """A TOML basic string holding `text` exactly; ValueError for text TOML cannot hold
    (lone surrogates)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"character U+{code:04X} (a lone surrogate) cannot be written")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    """A JSON value (string, number, boolean, list of them) as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be written in a [[test]] case")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise ValueError(f"{type(value).__name__} cannot be written in a [[test]] case")


def render_test_case(
    name: str, facts: Mapping[str, Any], expect: Mapping[str, Any], comment: list[str]
) -> str:
    """A [[test]] case: comment lines, the name, `expect` inline and the facts as a table.
    Facts and expected fields that are None (absent, or a field left empty) are left out."""
    lines = [""] + [f"# {line}".rstrip() for line in comment]
    lines += ["[[test]]", f"name = {toml_string(name)}"]
    fields = [f"{key} = {toml_value(value)}" for key, value in expect.items() if value is not None]
    lines.append("expect = { " + ", ".join(fields) + " }")
    lines += ["", "[test.facts]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in facts.items() if value is not None]
    return "\n".join(lines) + "\n"


def append_test_case(source: str, case: str) -> str:
    """`source` with `case` appended (a newline first if the text does not end with one)."""
    separator = "" if source.endswith("\n") or not source else "\n"
    return source + separator + case
