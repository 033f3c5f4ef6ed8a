"""A decision's shape, declared once (SPEC §5): `FIELDS`.

Each Field names a member of the decision record, the Decision columns that hold it, how its
value is checked and encoded, and the record format that introduced it. The rest is derived
from FIELDS: the record that is hashed and the row that is stored (`encode`), a row read back
(`decode`, which verification hashes again) and the CSV export's columns (`csv_header`,
`csv_row`). A stored decision is its record plus `seq`, `prev_hash` and `hash`, where
`hash = engine.trace.chain_hash(record, prev_hash)`.

Formats. The hashed record carries the format it was written in, so rows written before a
field existed still verify: each row is read back, and hashed, with its own format's fields.
- format 1: the twelve fields of SPEC §5, no `format` member (rows written before formats
  existed; their `format` column says 1);
- format 2: adds `format` and `via` (how the decision was made: api, run or cli).
- format 4: adds `earlier`, the facts the decision took from earlier decisions of the same
  account (SPEC §4, `after`): a list of {kind, version, sha256, decision_id, facts}, where
  decision_id is the earlier decision's when it was stored too (a run), else null, and facts
# The formats in the order they were introduced (not their numbers' order: see above).
FORMAT_ORDER = (1, 2, 4, 3, 5)
FORMAT = FORMAT_ORDER[-1]  # the format of the decisions written now

To add a field to the decisions written from now on:
1. one line in FIELDS with `since=` its format number, and that number appended to
   FORMAT_ORDER (FORMAT is its last);
2. its column on storage.models.Decision (nullable: older rows have none) and a migration
   that adds it (storage.migrations);
3. the decision records given to storage carry it (api.usecases.build_decision_record).
Never change or remove a line of an earlier format: the hashes of its rows sign exactly those
fields, encoded exactly so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from json.encoder import encode_basestring  # the function json's encoder writes strings with
from typing import Any

import peewee as pw

from engine.explanation import EXPLANATION_LENGTH
from engine.trace import canonical_json, canonical_json_plain, canonical_object, to_jsonable
from storage.errors import InvalidRecord
from storage.models import ID_LENGTH, Decision

Memo = dict[int, tuple[Any, tuple]]  # id(value) -> (value, what encoding it gave)


class Codec:
    """How one field's value is checked, encoded and read back from its columns."""

    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        """(JSON value, its canonical JSON, its columns' database values) of a good value;
        raises InvalidRecord naming the field otherwise."""
        raise NotImplementedError

    def decode(self, *columns: Any) -> Any:
        """The JSON value from its columns' values, as peewee reads them."""
        return columns[0]

    def csv(self, value: Any) -> tuple:
        """The value's cells in the CSV export."""
        return ("" if value is None else value,)

    def stored_json(self, *columns: Any) -> str:
        """The canonical JSON the hash signed, from its columns' values as stored (JSON
        columns as their text): verification hashes it without parsing JSON again."""
        return canonical_json_plain(self.decode(*columns))


@dataclass(frozen=True)
class Text(Codec):
    max_length: int
    empty: bool = False  # "" allowed
    null: bool = False  # None allowed
    choices: tuple[str, ...] = ()

    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if value is None and self.null:
            return None, "null", (None,)
        if self.choices and value not in self.choices:
            raise InvalidRecord(name, f"expected one of {', '.join(self.choices)}")
        low = 0 if self.empty else 1
        if not isinstance(value, str) or not low <= len(value) <= self.max_length:
            raise InvalidRecord(name, f"expected a string of {low} to {self.max_length} characters")
        if "\x00" in value:  # PostgreSQL's text refuses it
            raise InvalidRecord(name, "NUL characters are not allowed")
        return value, _utf8(name, encode_basestring(value)), (value,)


class Day(Codec):
    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if not isinstance(value, date) or isinstance(value, datetime):
            raise InvalidRecord(name, f"expected a date, got {value!r}")
        text = value.isoformat()
        return text, f'"{text}"', (value,)

    def decode(self, value: date) -> str:
        return value.isoformat()


class Moment(Codec):
    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise InvalidRecord(name, "expected an aware datetime (UTC)")
        utc = value.astimezone(UTC)
        text = utc.isoformat()
        return text, f'"{text}"', (utc.replace(tzinfo=None),)  # as UtcDateTimeField stores it

    def decode(self, value: datetime) -> str:
        return value.isoformat()


class Count(Codec):
    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if type(value) is not int or not 0 <= value < 2**63:
            raise InvalidRecord(name, "expected a non-negative integer below 2**63")
        return value, str(value), (value,)


@dataclass(frozen=True)
class Json(Codec):
    """A dict or list, stored as its canonical JSON text; money and dates are converted."""

    type: type

    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if not isinstance(value, self.type):
            raise InvalidRecord(name, f"expected a {self.type.__name__}")
        # Records may share a value (one customer's facts, decided by three rule sets).
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        try:
            try:
                plain, text = value, canonical_json_plain(value)
            except TypeError:  # a Decimal or a date in it
                plain = to_jsonable(value)
                text = canonical_json_plain(plain)
            encoded = (plain, _utf8(name, text), (text,))
        except (TypeError, ValueError) as exc:
            raise InvalidRecord(name, f"not representable as JSON: {exc}") from None
        memo[id(value)] = (value, encoded)
        return encoded

    def csv(self, value: Any) -> tuple:
        return (canonical_json(value),)

    def stored_json(self, text: Any) -> str:
        if not isinstance(text, str):
            raise TypeError("a JSON column holds text")
        return text  # written as the canonical JSON of the value (encode)


class Fired(Json):
    """The rules that fired: a list of objects with an id; in CSV their ids, then the list."""

    def __init__(self) -> None:
        super().__init__(list)

    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if not isinstance(value, list) or not all(
            isinstance(f, dict) and isinstance(f.get("id"), str) for f in value
        ):
            raise InvalidRecord(name, "each fired rule must be an object with an id")
        return super().encode(name, value, memo)

    def csv(self, value: Any) -> tuple:
        return (" ".join(f["id"] for f in value), canonical_json(value))


class RuleSetRef(Codec):
    """{kind, version, sha256} of the rule-set version that decided, in three columns."""

    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if not (
            isinstance(value, Mapping)
            and isinstance(value.get("kind"), str)
            and type(value.get("version")) is int
            and isinstance(value.get("sha256"), str)
        ):
            raise InvalidRecord(name, "expected {kind, version, sha256}")
        plain = {"kind": value["kind"], "version": value["version"], "sha256": value["sha256"]}
        return plain, _utf8(name, canonical_json_plain(plain)), tuple(plain.values())

    def decode(self, kind: str, version: int, sha256: str) -> dict[str, Any]:
        return {"kind": kind, "version": version, "sha256": sha256}

    def csv(self, value: Any) -> tuple:
        return tuple(value.values())


ARMS = ("champion", "challenger")


class ArmRef(Codec):
    """{name, experiment} of a decision's arm under champion/challenger, or null; in two
    columns (arm, experiment_id), so an experiment's decisions are found by its id."""

    def encode(self, name: str, value: Any, memo: Memo) -> tuple[Any, str, tuple]:
        if value is None:
            return None, "null", (None, None)
        if not (
            isinstance(value, Mapping)
            and value.get("name") in ARMS
            and type(value.get("experiment")) is int
            and 1 <= value["experiment"] < 2**31
        ):
            raise InvalidRecord(name, f"expected null or {{name: {' | '.join(ARMS)}, experiment}}")
        plain = {"experiment": value["experiment"], "name": value["name"]}
        return plain, canonical_json_plain(plain), (plain["name"], plain["experiment"])

    def decode(self, arm: str | None, experiment: int | None) -> dict[str, Any] | None:
        return None if arm is None else {"experiment": experiment, "name": arm}

    def csv(self, value: Any) -> tuple:
        return ("", "") if value is None else (value["name"], value["experiment"])


@dataclass(frozen=True)
class Field:
    """One member of a decision record."""

    name: str
    codec: Codec
    since: int = 1  # the record format that introduced it
    columns: tuple[str, ...] = ()  # the Decision columns holding it (default: its name)
    csv_columns: tuple[str, ...] = ()  # its CSV export columns (default: its columns)

    def __post_init__(self) -> None:
        if not self.columns:
            object.__setattr__(self, "columns", (self.name,))
        if not self.csv_columns:
            object.__setattr__(self, "csv_columns", self.columns)


VIAS = ("api", "run", "cli")  # how a decision was made: an API call, a run (or the demo), the CLI

# In the CSV export's order; the hashed record's keys are sorted whatever this order.
FIELDS = (
    Field("decision_id", Text(ID_LENGTH)),
    Field("kind", Text(64)),
    Field("customer_id", Text(ID_LENGTH, null=True)),
    Field("as_of", Day()),
    Field("created_at", Moment()),
    Field("requested_by", Text(200, empty=True)),
    Field("ruleset", RuleSetRef(), columns=("ruleset_kind", "ruleset_version", "ruleset_sha256")),
    Field("outcome", Json(dict)),
    Field("reasons", Json(list)),
    Field("fired", Fired(), csv_columns=("fired_rules", "fired")),
    Field("facts", Json(dict)),
    Field("engine_us", Count()),
    Field("format", Count(), since=2),
    Field("via", Text(8, choices=VIAS), since=2),
    Field("explanation", Text(EXPLANATION_LENGTH), since=3),
    Field("earlier", Json(list), since=4),
    Field("arm", ArmRef(), since=5, columns=("arm", "experiment_id")),
)
# The formats in the order they were introduced (not their numbers' order: see above).
FORMAT_ORDER = (1, 2, 4, 3, 5)
FORMAT = FORMAT_ORDER[-1]  # the format of the decisions written now

_BY_FORMAT = {
    n: tuple(f for f in FIELDS if f.since in FORMAT_ORDER[: FORMAT_ORDER.index(n) + 1])
    for n in FORMAT_ORDER
}
# The Decision columns a decision's fields fill, in FIELDS order (all but seq and the hashes).
COLUMNS: tuple[pw.Field, ...] = tuple(Decision._meta.fields[c] for f in FIELDS for c in f.columns)


def fields_of(format: int) -> tuple[Field, ...]:
    """The fields of a record of `format`; ValueError for a format credo does not know."""
    try:
        return _BY_FORMAT[format]
    except (KeyError, TypeError):
        raise ValueError(f"unknown record format {format!r}") from None


def encode(record: Mapping[str, Any], memo: Memo | None = None) -> tuple[dict, str, tuple]:
    """A decision of the current FORMAT (set here) as (its record as JSON values, that record's
    canonical JSON, the database values of COLUMNS); InvalidRecord names a bad field.
    `memo` shares the encoding of values several records hold."""
    memo = {} if memo is None else memo
    given = {**record, "format": FORMAT}
    plain, texts, row = {}, {}, []
    for f in FIELDS:
        if f.name not in given:
            raise InvalidRecord(f.name, "missing")
        plain[f.name], texts[f.name], values = f.codec.encode(f.name, given[f.name], memo)
        row.extend(values)
    return plain, canonical_object(texts), tuple(row)


def decode(values: Mapping[str, Any]) -> dict[str, Any]:
    """A stored decision's record (JSON values, as hashed) from its row's values by column
    name, with the fields of the row's format."""
    return {
        f.name: f.codec.decode(*(values[c] for c in f.columns)) for f in fields_of(values["format"])
    }


def csv_header() -> list[str]:
    """The CSV export's header: seq, each field's columns, prev_hash, hash."""
    return ["seq", *(name for f in FIELDS for name in f.csv_columns), "prev_hash", "hash"]


def csv_row(stored: Mapping[str, Any]) -> list[Any]:
    """A stored decision's CSV cells under csv_header (empty where its format has no such
    field)."""
    cells: list[Any] = [stored["seq"]]
    for f in FIELDS:
        cells.extend(f.codec.csv(stored[f.name]) if f.name in stored else [""] * len(f.csv_columns))
    return [*cells, stored["prev_hash"], stored["hash"]]


def _utf8(name: str, text: str) -> str:
    """`text`, checked to be encodable as UTF-8 (hashes sign the UTF-8 bytes): a lone
    surrogate is refused naming the field."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRecord(name, "text with a lone surrogate (not valid Unicode)") from None
    return text
