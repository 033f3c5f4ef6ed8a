"""A stored decision's hash, recomputed from its row (storage.decisions.chain verifies with it).

The JSON columns hold the canonical JSON the hash signed (shape.encode), and the other columns
values whose canonical JSON is quick to write: the quick path builds the record's canonical JSON
from the columns as stored, with no JSON parsed. A row that fails it is read back field by
field (shape.decode) and hashed again before it is called altered, so the quick path only ever
saves time: a quick match means the app reads the very values that were signed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from json.encoder import encode_basestring

from engine.trace import chain_hash, chain_hash_text
from storage.decisions import shape
from storage.models import Decision


def altered(row: tuple) -> str | None:
    """None when a row (the values of COLUMNS) gives its stored hash; else what does not
    match."""
    prev, stored = row[_PREV], row[_HASH]
    try:
        if chain_hash_text(_stored_canonical(row), prev) == stored:
            return None
    except (TypeError, ValueError, AttributeError, KeyError):
        pass
    try:
        read = {c.name: c.python_value(row[INDEX[c.name]]) for c in shape.COLUMNS}
        record = shape.decode(read)
    except (TypeError, ValueError, AttributeError) as exc:
        return f"contents unreadable ({exc}): the row was altered"
    computed = chain_hash(record, prev)
    if computed == stored:
        return None
    return (
        f"its contents hash to {computed[:16]}…, not to its stored hash "
        f"{str(stored)[:16]}…: the row was altered"
    )


def _stored_canonical(row: tuple) -> str:
    """The row's record as canonical JSON (engine.trace.canonical_object), built from its
    columns as stored."""
    plan = _PLANS.get(row[_FORMAT])
    if plan is None:
        plan = _PLANS[row[_FORMAT]] = _plan(row[_FORMAT])
    return "{" + ",".join([key + member(row) for key, member in plan]) + "}"


def _plan(format: int) -> list[tuple[str, Callable[[tuple], str]]]:
    """For each field of `format`, in key order: its key as JSON and how its member's JSON is
    made from the row's values (a text or count column directly, the others by their codec)."""
    plan = []
    for f in sorted(shape.fields_of(format), key=lambda f: f.name):
        column = INDEX[f.columns[0]]
        if isinstance(f.codec, shape.Json):
            member = partial(_json_text, column)
        elif isinstance(f.codec, shape.Text):
            member = partial(_text, column)
        elif isinstance(f.codec, shape.Count):
            member = partial(_count, column)
        elif isinstance(f.codec, shape.Day):
            member = partial(_day, column)
        elif isinstance(f.codec, shape.Moment):
            member = partial(_moment, column)
        elif isinstance(f.codec, shape.RuleSetRef):
            member = partial(_ruleset, *(INDEX[c] for c in f.columns))
        else:
            member = partial(_by_codec, f.codec, tuple(INDEX[c] for c in f.columns))
        plan.append((encode_basestring(f.name) + ":", member))
    return plan


def _json_text(column: int, values: tuple) -> str:
    text = values[column]
    if type(text) is not str:
        raise TypeError(f"{column}: not text")
    return text  # written as the canonical JSON of the value (shape.encode)


def _text(column: int, values: tuple) -> str:
    text = values[column]
    return "null" if text is None else encode_basestring(text)


def _count(column: int, values: tuple) -> str:
    number = values[column]
    if type(number) is not int:
        raise TypeError(f"{column}: not an integer")
    return str(number)


# The quick forms of dates and times: a value not in the exact form the database writes is
# left to its codec, so a quick match always means the app reads the value that was signed.
_DAY = re.compile(r"\d{4}-\d\d-\d\d")
_MOMENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?")


def _day(column: int, values: tuple) -> str:
    value = values[column]
    if type(value) is date:  # PostgreSQL
        return f'"{value.isoformat()}"'
    if type(value) is str and _DAY.fullmatch(value):  # SQLite, as peewee writes it
        return f'"{value}"'
    return shape.Day().stored_json(_READ[column](value))


def _moment(column: int, values: tuple) -> str:
    value = values[column]
    if type(value) is datetime and value.tzinfo is None:  # PostgreSQL: naive UTC
        return f'"{value.isoformat()}+00:00"'
    if type(value) is str and _MOMENT.fullmatch(value):  # SQLite: "YYYY-MM-DD HH:MM:SS[.ffffff]"
        return f'"{value[:10]}T{value[11:]}+00:00"'
    return shape.Moment().stored_json(_READ[column](value))


def _ruleset(kind: int, version: int, sha256: int, values: tuple) -> str:
    number = values[version]
    if type(number) is not int:
        raise TypeError(f"{version}: not an integer")
    kind_text, sha_text = values[kind], values[sha256]
    if type(kind_text) is not str or type(sha_text) is not str:
        raise TypeError(f"{kind}, {sha256}: not text")
    return (
        f'{{"kind":{encode_basestring(kind_text)},"sha256":{encode_basestring(sha_text)},'
        f'"version":{number}}}'
    )


def _by_codec(codec: shape.Codec, columns: tuple[int, ...], values: tuple) -> str:
    return codec.stored_json(*(_READ[c](values[c]) for c in columns))


_PLANS: dict[int, list[tuple[str, Callable[[tuple], str]]]] = {}
# The columns a row is read with, and where each is in it.
COLUMNS = (Decision.seq, *shape.COLUMNS, Decision.prev_hash, Decision.hash)
INDEX = {c.name: i for i, c in enumerate(COLUMNS)}
_FORMAT, _PREV, _HASH = INDEX["format"], INDEX["prev_hash"], INDEX["hash"]
# Each column's database value as its codec's stored_json takes it: JSON columns as text.
_READ = {
    INDEX[c.name]: (lambda v: v) if isinstance(c, type(Decision.facts)) else c.python_value
    for c in shape.COLUMNS
}
