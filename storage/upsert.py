"""Writing ledger records: upsert by the ERP's id within each type, in batches (SPEC §3).

Records arrive validated (api.intake.schemas); what only the database can check is checked here:
the customer or invoice a record points to exists, an invoice a credit note or allocation names
belongs to the same customer, and a record does not move to another customer. A record that fails
is rejected with the reason and the others are written. Unchanged records are not written, so
importing the same file twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import peewee as pw

from engine.ledger import CONTACT_TYPES
from storage.db import database, insert_many_fast
from storage.models import (
    Contact,
    CreditNote,
    Customer,
    Dispute,
    Hold,
    Installment,
    Invoice,
    Payment,
    PaymentAllocation,
    PaymentPlan,
    Promise,
)

# Parents before children, so one batch may carry a customer and its invoices. In a batch a
# record's "type" names its type, except that a contact is named by its own type (reminder, …).
RECORD_TYPES = (
    "customer",
    "invoice",
    "payment",
    "credit_note",
    "dispute",
    "promise",
    "payment_plan",
    "contact",
    "hold",
)
MODELS: dict[str, type[pw.Model]] = {
    "customer": Customer,
    "invoice": Invoice,
    "payment": Payment,
    "credit_note": CreditNote,
    "dispute": Dispute,
    "promise": Promise,
    "payment_plan": PaymentPlan,
    "contact": Contact,
    "hold": Hold,
}
# The record key of each foreign-key field (its column name).
_RECORD_KEYS = {"customer": "customer_id", "invoice": "invoice_id"}
# Nested lists stored as child rows: type -> (record key, child model, parent field, columns).
_CHILDREN: dict[str, tuple[str, type[pw.Model], str, tuple[str, ...]]] = {
    "payment": ("allocations", PaymentAllocation, "payment", ("invoice", "amount")),
    "payment_plan": ("installments", Installment, "plan", ("due_date", "amount")),
}
_CHUNK = 400


@dataclass(frozen=True)
class Rejection:
    """A record that was not written: its position in the input, and why, by field."""

    index: int
    type: str
    id: str | None
    errors: dict[str, list[str]]


@dataclass
class UpsertResult:
    """What an upsert did: counts of records inserted, updated and left unchanged; rejections."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def add(self, other: UpsertResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected.extend(other.rejected)


def upsert_records(records: Sequence[dict[str, Any]]) -> UpsertResult:
    """Insert or update validated ledger records (each with a "type" key), in one transaction.

    Records are written in type order (customers first); within a type, in input order, so
    when an id repeats the later record wins. Rejections carry each record's input index.
    """
    result = UpsertResult()
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, record in enumerate(records):
        given = record.get("type") if isinstance(record, dict) else None
        kind = record_type_of(given)
        if kind is None:
            message = unknown_type_message(given)
            result.rejected.append(Rejection(index, str(given), None, {"type": [message]}))
            continue
        groups[kind].append((index, record))
    with database.atomic():
        for kind in RECORD_TYPES:
            for round_ in _rounds(groups.get(kind, ())):
                result.add(_upsert_round(kind, round_))
    result.rejected.sort(key=lambda r: r.index)
    return result


def record_type_of(value: object) -> str | None:
    """The record type a "type" value names: a contact is named by its contact type."""
    if not isinstance(value, str):  # a list or object from JSON names none (and is unhashable)
        return None
    if value in CONTACT_TYPES:
        return "contact"
    return value if value in MODELS and value != "contact" else None  # type: ignore[return-value]


def unknown_type_message(value: object) -> str:
    """Why a "type" value names no record type."""
    contact_types = ", ".join(CONTACT_TYPES)
    if value == "contact":
        return f"a contact's type is its contact type: one of {contact_types}"
    others = ", ".join(t for t in RECORD_TYPES if t != "contact")
    return (
        f"unknown record type {value!r}; expected one of {others}, or for a contact {contact_types}"
    )


def _rounds(items: Iterable[tuple[int, dict]]) -> list[list[tuple[int, dict]]]:
    """Split into runs with distinct ids, keeping order (a repeated id starts a new run)."""
    rounds: list[list[tuple[int, dict]]] = [[]]
    seen: set[str] = set()
    for item in items:
        if item[1].get("id") in seen:
            rounds.append([])
            seen = set()
        rounds[-1].append(item)
        seen.add(item[1].get("id"))
    return [r for r in rounds if r]


def _upsert_round(kind: str, items: list[tuple[int, dict]]) -> UpsertResult:
    model = MODELS[kind]
    result = UpsertResult()
    fields = [f for f in model._meta.sorted_fields if f.name != "id"]
    rows: dict[str, dict[str, Any]] = {}
    children: dict[str, list[tuple]] = {}
    indexes: dict[str, int] = {}
    for index, record in items:
        try:
            row = _row(record, fields)
            nested = _child_rows(kind, record) if kind in _CHILDREN else []
        except KeyError as exc:
            errors = {str(exc.args[0]): ["missing"]}
            result.rejected.append(Rejection(index, kind, record.get("id"), errors))
            continue
        rows[row["id"]] = row
        indexes[row["id"]] = index
        children[row["id"]] = nested
    existing = _existing_rows(model, fields, list(rows))
    existing_children = _existing_children(kind, [i for i in rows if i in existing])
    problems = _check_references(kind, rows, children, existing)
    changed: list[str] = []
    for record_id, row in rows.items():
        if record_id in problems:
            errors = problems[record_id]
            result.rejected.append(Rejection(indexes[record_id], kind, record_id, errors))
        elif record_id not in existing:
            result.inserted += 1
            changed.append(record_id)
        elif existing[record_id] != row or existing_children.get(record_id, []) != children.get(
            record_id, []
        ):
            result.updated += 1
            changed.append(record_id)
        else:
            result.unchanged += 1
    _write(kind, model, fields, [rows[i] for i in changed], children, existing)
    return result


def _row(record: dict[str, Any], fields: list[pw.Field]) -> dict[str, Any]:
    row = {"id": record["id"]}
    for f in fields:
        key = f.column_name if isinstance(f, pw.ForeignKeyField) else f.name
        if key in record and record[key] is not None:
            row[f.name] = record[key]
        elif f.null:
            row[f.name] = None
        elif f.default is not None:
            row[f.name] = f.default
        else:
            raise KeyError(key)
    return row


def _child_rows(kind: str, record: dict[str, Any]) -> list[tuple]:
    key, _, _, columns = _CHILDREN[kind]
    names = [_RECORD_KEYS.get(c, c) for c in columns]
    return [tuple(item[n] for n in names) for item in record.get(key) or ()]


def _existing_rows(
    model: type[pw.Model], fields: list[pw.Field], ids: list[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        query = model.select(model.id, *fields).where(model.id.in_(chunk)).dicts()
        found.update((row["id"], row) for row in query)
    return found


def _existing_children(kind: str, parent_ids: list[str]) -> dict[str, list[tuple]]:
    if kind not in _CHILDREN or not parent_ids:
        return {}
    _, child, parent, columns = _CHILDREN[kind]
    parent_field = getattr(child, parent)
    found: dict[str, list[tuple]] = defaultdict(list)
    for chunk in _chunks(parent_ids):
        query = (
            child.select(parent_field, *(getattr(child, c) for c in columns))
            .where(parent_field.in_(chunk))
            .order_by(parent_field, child.position)
            .tuples()
        )
        for parent_id, *values in query:
            found[parent_id].append(tuple(values))
    return found


def _check_references(
    kind: str,
    rows: dict[str, dict[str, Any]],
    children: dict[str, list[tuple]],
    existing: dict[str, dict[str, Any]],
) -> dict[str, dict[str, list[str]]]:
    """Problems by record id: unknown customer or invoice, another customer's invoice, a move."""
    problems: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    if kind == "customer":
        return {}
    if "customer" in next(iter(rows.values()), {}):
        known = _known_ids(Customer, {r["customer"] for r in rows.values()})
        for record_id, row in rows.items():
            if row["customer"] not in known:
                problems[record_id]["customer_id"].append(f"unknown customer {row['customer']!r}")
            old = existing.get(record_id)
            if old is not None and old["customer"] != row["customer"]:
                problems[record_id]["customer_id"].append(
                    f"{kind} {record_id!r} belongs to customer {old['customer']!r}; "
                    "a record cannot move to another customer"
                )
    invoice_refs = {r["invoice"] for r in rows.values() if "invoice" in r}
    if kind == "payment":
        invoice_refs |= {c[0] for items in children.values() for c in items}
    owners = _invoice_owners(invoice_refs)
    for record_id, row in rows.items():
        if "invoice" in row:
            _check_invoice(problems[record_id], "invoice_id", row["invoice"], row, owners)
        if kind == "payment":
            for n, (invoice_id, _) in enumerate(children[record_id]):
                key = f"allocations.{n}.invoice_id"
                _check_invoice(problems[record_id], key, invoice_id, row, owners)
    return {k: dict(v) for k, v in problems.items() if v}


def _check_invoice(
    problems: dict[str, list[str]],
    key: str,
    invoice_id: str,
    row: dict[str, Any],
    owners: dict[str, str],
) -> None:
    owner = owners.get(invoice_id)
    if owner is None:
        problems[key].append(f"unknown invoice {invoice_id!r}")
    elif "customer" in row and owner != row["customer"]:
        problems[key].append(
            f"invoice {invoice_id!r} belongs to customer {owner!r}, not {row['customer']!r}"
        )


def _known_ids(model: type[pw.Model], ids: set[str]) -> set[str]:
    known: set[str] = set()
    for chunk in _chunks(sorted(ids)):
        known.update(r for (r,) in model.select(model.id).where(model.id.in_(chunk)).tuples())
    return known


def _invoice_owners(ids: set[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for chunk in _chunks(sorted(ids)):
        query = Invoice.select(Invoice.id, Invoice.customer).where(Invoice.id.in_(chunk)).tuples()
        owners.update(query)
    return owners


def _write(
    kind: str,
    model: type[pw.Model],
    fields: list[pw.Field],
    rows: list[dict[str, Any]],
    children: dict[str, list[tuple]],
    existing: dict[str, dict[str, Any]],
) -> None:
    if not rows:
        return
    columns = [model.id, *fields]
    upsert = model.insert_many([[None] * len(columns)], fields=columns).on_conflict(
        conflict_target=[model.id], preserve=fields
    )
    insert_many_fast(upsert, columns, [[r[f.name] for f in columns] for r in rows])
    if kind not in _CHILDREN:
        return
    _, child, parent, child_columns = _CHILDREN[kind]
    parent_field = getattr(child, parent)
    ids = [r["id"] for r in rows]
    for chunk in _chunks([i for i in ids if i in existing]):
        child.delete().where(parent_field.in_(chunk)).execute()
    child_fields = [parent_field, child.position, *(getattr(child, c) for c in child_columns)]
    child_rows = [
        (parent_id, position, *values)
        for parent_id in ids
        for position, values in enumerate(children[parent_id])
    ]
    if child_rows:
        insert = child.insert_many([[None] * len(child_fields)], fields=child_fields)
        insert_many_fast(insert, child_fields, child_rows)


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
