"""`credo import`: ledger records from a JSONL or CSV file, validated line by line, upserted in
batches (docs/import.md).

A bad line is reported with its number and reasons and never stops the good ones: validation
happens before anything is written, references are checked by storage, and a batch the database
still refuses is retried record by record, so one bad record cannot take its batch with it. A
line that is not UTF-8 is one bad line too: the file is read with undecodable bytes kept as
lone surrogates (Python's "surrogateescape"), which valid UTF-8 never yields, so a surrogate
in the text marks the line (or CSV cell) that held them.
After each batch, the pending actions of its customers are acknowledged or made void as the
stored records say (api.nightly.worklist).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import peewee as pw

from api.intake.schemas import LedgerRecordError, validate_record
from api.nightly.worklist import refresh_worklist, today_in
from engine.text import printable
from storage.audit_log import append_event
from storage.db import analyze
from storage.ledger import UpsertResult, upsert_records

NESTED_COLUMNS = ("allocations", "installments")
# CSV columns of a nested object: a customer's contact_name, contact_email, … are its contact.
OBJECT_COLUMNS = ("contact",)
# Refresh the planner's statistics after writing this many records.
ANALYZE_AFTER = 10_000
FORMATS = ("jsonl", "csv")
_UNDECODED = re.compile("[\udc80-\udcff]")  # a byte that was not UTF-8 (surrogateescape)


@dataclass(frozen=True)
class LineRejection:
    """A line that was not stored, and why (by field)."""

    line: int
    type: str | None
    id: str | None
    errors: dict[str, list[str]]

    def __str__(self) -> str:
        """The rejection in one line, printable whatever the line held."""
        what = " ".join(str(p) for p in (self.type, self.id) if p)
        reasons = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items())
        return printable(f"line {self.line}" + (f" ({what})" if what else "") + f": {reasons}")


@dataclass
class ImportReport:
    """What an import did."""

    file: str
    format: str
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[LineRejection] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "records": self.lines,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [
                {"line": r.line, "type": r.type, "id": r.id, "errors": r.errors}
                for r in self.rejected
            ],
        }


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing, unreadable, no usable CSV header)."""


def detect_format(path: Path) -> str:
    """jsonl for .jsonl/.ndjson/.json, csv for .csv, else by the first character."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "csv"


def import_file(
    path: Path,
    record_type: str | None = None,
    *,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
    today: date | None = None,
    actor: str = "credo import",
) -> ImportReport:
    """Import every record of `path`; `on_progress(bytes_read)` is called as it goes.

    `today` is the date pending actions are checked as of (default: today in UTC). The
    import's counts go to the operator log (`import.done`, by `actor`) once it is done.
    """
    path = Path(path)
    today = today or today_in("UTC")
    report = ImportReport(str(path), detect_format(path))
    batch: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            lines = _counted(handle, on_progress)
            reader = _read_jsonl(lines) if report.format == "jsonl" else _read_csv(lines)
            for line, raw in reader:
                report.lines += 1
                record = _validated(line, raw, record_type, report)
                if record is not None:
                    batch.append((line, record))
                if len(batch) >= batch_size:
                    _store(batch, report, today)
                    batch = []
    except OSError as exc:
        raise ImportFileError(f"{path}: {exc.strerror or exc}") from None
    _store(batch, report, today)
    if report.inserted + report.updated >= ANALYZE_AFTER:
        analyze()
    report.rejected.sort(key=lambda r: r.line)
    append_event("import.done", actor, _event_details(report))
    return report


def _event_details(report: ImportReport) -> dict[str, Any]:
    """What the operator log keeps of an import: the file and the counts, not the records."""
    return {
        "file": printable(report.file)[:1000],
        "format": report.format,
        "records": report.lines,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": len(report.rejected),
    }


def _counted(handle: TextIO, on_progress: Callable[[int], None] | None) -> Iterator[str]:
    """The lines of `handle`, reporting the bytes read every 64 KB and at the end."""
    done = reported = 0
    for line in handle:
        done += len(line.encode("utf-8", "surrogateescape"))
        if on_progress is not None and done - reported >= 65536:
            on_progress(done)
            reported = done
        yield line
    if on_progress is not None:
        on_progress(done)


def _validated(
    line: int, raw: Any, record_type: str | None, report: ImportReport
) -> dict[str, Any] | None:
    if isinstance(raw, LedgerRecordError):
        report.rejected.append(LineRejection(line, record_type, None, raw.errors))
        return None
    try:
        return validate_record(raw, record_type)
    except LedgerRecordError as exc:
        given = raw.get("type") if isinstance(raw, dict) else None
        record_id = raw.get("id") if isinstance(raw, dict) else None
        kind = str(given) if given is not None else record_type
        record_id = str(record_id) if record_id is not None else None
        report.rejected.append(LineRejection(line, kind, record_id, exc.errors))
        return None


# What the database driver raises for a record it cannot take: the server's refusals, and the
# ValueError (UnicodeEncodeError; psycopg2's "cannot contain NUL") of a value it cannot send.
# Validation refuses such values first; this keeps a line it missed from sinking its batch.
_REFUSED = (pw.DatabaseError, ValueError)


def _store(batch: list[tuple[int, dict[str, Any]]], report: ImportReport, today: date) -> None:
    if not batch:
        return
    try:
        results = [(batch, upsert_records([record for _, record in batch]))]
    except _REFUSED:
        # The database refused the batch (rolled back whole): find the culprit one by one.
        results = []
        for item in batch:
            try:
                results.append(([item], upsert_records([item[1]])))
            except _REFUSED as exc:
                line, record = item
                errors = {"_record": [f"the database refused it: {exc}"]}
                report.rejected.append(LineRejection(line, record["type"], record["id"], errors))
    for items, result in results:
        _count(items, result, report)
        refused = {rejection.index for rejection in result.rejected}
        stored = [record for n, (_, record) in enumerate(items) if n not in refused]
        refresh_worklist(stored, today)


def _count(items: list[tuple[int, dict]], result: UpsertResult, report: ImportReport) -> None:
    report.inserted += result.inserted
    report.updated += result.updated
    report.unchanged += result.unchanged
    for rejection in result.rejected:
        line = items[rejection.index][0]
        report.rejected.append(LineRejection(line, rejection.type, rejection.id, rejection.errors))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"field {key!r} appears twice")
        result[key] = value
    return result


def parse_json(text: str) -> Any:
    """Strict JSON: numbers with decimals as Decimal, no NaN or Infinity, no repeated keys."""
    return json.loads(
        text,
        parse_float=Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_no_duplicate_keys,
    )


def _read_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        undecoded = _UNDECODED.search(text)
        if undecoded is not None:
            yield number, LedgerRecordError({"_record": [_not_utf8(undecoded)]})
            continue
        try:
            yield number, parse_json(text)
        except ValueError as exc:
            yield number, LedgerRecordError({"_record": [f"not valid JSON: {exc}"]})


def _read_csv(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(lines, strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise ImportFileError(f"CSV header: {exc}") from None
    if not header or "" in header or len(set(header)) != len(header):
        raise ImportFileError("CSV header: every column needs a distinct name")
    undecoded = next(filter(None, map(_UNDECODED.search, header)), None)
    if undecoded is not None:
        raise ImportFileError(f"CSV header: {_not_utf8(undecoded)}")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, LedgerRecordError({"_record": [f"not valid CSV: {exc}"]})
            continue
        if not any(v.strip() for v in values):
            continue
        yield reader.line_num, _csv_record(header, values)


def _csv_record(header: list[str], values: list[str]) -> dict[str, Any] | LedgerRecordError:
    if len(values) > len(header):
        return LedgerRecordError({"_record": [f"{len(values)} values for {len(header)} columns"]})
    record: dict[str, Any] = {}
    for name, value in zip(header, values, strict=False):
        if value == "":
            continue  # an empty cell is a missing field
        undecoded = _UNDECODED.search(value)
        if undecoded is not None:
            return LedgerRecordError({name: [_not_utf8(undecoded)]})
        group, _, key = name.partition("_")
        if name in NESTED_COLUMNS:
            try:
                record[name] = parse_json(value)
            except ValueError as exc:
                return LedgerRecordError({name: [f"not a valid JSON list: {exc}"]})
        elif group in OBJECT_COLUMNS and key:
            target = record.setdefault(group, {})
            if not isinstance(target, dict):
                return LedgerRecordError({name: [f"cannot come with a {group!r} column"]})
            target[key] = value
        else:
            record[name] = value
    return record


def _not_utf8(found: re.Match[str]) -> str:
    byte = ord(found.group()) - 0xDC00
    return f"not UTF-8 text: byte 0x{byte:02x} at character {found.start() + 1}"
