"""The tables. Ledger records keep the ERP's ids as primary keys (upserts by id, SPEC §3).

Money is DECIMAL(14,2) (exact NUMERIC on PostgreSQL; on SQLite read back through Decimal and
quantized, and never summed in SQL where exactness matters). Timestamps are stored as naive UTC
and read back as aware UTC datetimes. JSON is stored as text, so both databases read the same.
Run and action tables are in storage.runs. Schema changes go through storage.migrations.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import peewee as pw

from storage.db import database

CENT = Decimal("0.01")
MAX_MONEY = Decimal("999999999999.99")
ID_LENGTH = 64


class MoneyField(pw.DecimalField):
    """Two-decimal money: DECIMAL(14,2), read back as a Decimal quantized to cents."""

    def __init__(self, **kwargs: Any):
        super().__init__(max_digits=14, decimal_places=2, auto_round=True, **kwargs)

    def python_value(self, value: Any) -> Decimal | None:
        return None if value is None else money_value(value)


def money_value(value: Any) -> Decimal:
    """A money column's value as read by the driver (Decimal, or float/int on SQLite) in cents."""
    if type(value) is not Decimal:
        value = Decimal(str(value))
    return value.quantize(CENT)


def date_value(value: Any) -> date:
    """A date column's value as read by the driver (a date, or ISO text on SQLite)."""
    return value if type(value) is date else date.fromisoformat(value)


class UtcDateTimeField(pw.DateTimeField):
    """An aware UTC datetime, stored naive (the same on SQLite and PostgreSQL)."""

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value: Any) -> datetime | None:
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class JSONText(str):
    """JSON already encoded (compact, sorted keys): stored as it is, not encoded again."""


class JSONField(pw.TextField):
    """A JSON value stored as compact text with sorted keys."""

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if type(value) is JSONText:
            return str(value)
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


def erp_id(**kwargs: Any) -> pw.CharField:
    """A primary key holding the ERP's id."""
    return pw.CharField(max_length=ID_LENGTH, primary_key=True, **kwargs)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row per applied migration."""

    version = pw.IntegerField(primary_key=True)
    name = pw.CharField(max_length=200)
    applied_at = UtcDateTimeField()


class Meta(BaseModel):
    """Key/value facts about the database itself (e.g. that it holds demo data)."""

    key = pw.CharField(max_length=64, primary_key=True)
    value = pw.TextField()


# --- ledger (SPEC §3) -------------------------------------------------------------------------


class Customer(BaseModel):
    id = erp_id()
    name = pw.CharField(max_length=200)
    segment = pw.CharField(max_length=64, default="")
    country = pw.CharField(max_length=2, default="")
    currency = pw.CharField(max_length=3)
    credit_limit = MoneyField()
    credit_score = pw.IntegerField(null=True)
    since = pw.DateField()
    # The contact person letters are addressed to (migration 16); "" when none is known.
    contact_name = pw.CharField(max_length=200, default="")
    contact_email = pw.CharField(max_length=254, default="")
    contact_language = pw.CharField(max_length=16, default="")
    contact_salutation = pw.CharField(max_length=8, default="")


def customer_fk(**kwargs: Any) -> pw.ForeignKeyField:
    return pw.ForeignKeyField(Customer, column_name="customer_id", **kwargs)


class Invoice(BaseModel):
    id = erp_id()
    customer = customer_fk(backref="invoices")
    issue_date = pw.DateField()
    due_date = pw.DateField()
    amount = MoneyField()


class Payment(BaseModel):
    id = erp_id()
    customer = customer_fk(backref="payments")
    date = pw.DateField()
    amount = MoneyField()


class PaymentAllocation(BaseModel):
    payment = pw.ForeignKeyField(
        Payment, column_name="payment_id", on_delete="CASCADE", index=False
    )
    position = pw.IntegerField()
    invoice = pw.ForeignKeyField(Invoice, column_name="invoice_id")
    amount = MoneyField()

    class Meta:
        indexes = ((("payment", "position"), True),)


class CreditNote(BaseModel):
    id = erp_id()
    customer = customer_fk(backref="credit_notes")
    invoice = pw.ForeignKeyField(Invoice, column_name="invoice_id")
    date = pw.DateField()
    amount = MoneyField()


class Dispute(BaseModel):
    id = erp_id()
    invoice = pw.ForeignKeyField(Invoice, column_name="invoice_id")
    opened = pw.DateField()
    resolved = pw.DateField(null=True)
    reason = pw.TextField(default="")


class Promise(BaseModel):
    id = erp_id()
    customer = customer_fk(backref="promises")
    made_on = pw.DateField()
    date = pw.DateField()
    amount = MoneyField()


class PaymentPlan(BaseModel):
    id = erp_id()
    customer = customer_fk(backref="payment_plans")
    status = pw.CharField(max_length=16, index=True)


class Installment(BaseModel):
    plan = pw.ForeignKeyField(PaymentPlan, column_name="plan_id", on_delete="CASCADE", index=False)
    position = pw.IntegerField()
    due_date = pw.DateField()
    amount = MoneyField()

    class Meta:
        indexes = ((("plan", "position"), True),)


class Contact(BaseModel):
    id = erp_id()
    customer = customer_fk(backref="contacts")
    date = pw.DateField()
    type = pw.CharField(max_length=32)
    tone = pw.CharField(max_length=32, null=True)
    note = pw.TextField(default="")

    class Meta:
        indexes = ((("type", "customer", "date"), False),)


class Hold(BaseModel):
    """A collections pause (dunning block); added by migration 2."""

    id = erp_id()
    customer = customer_fk(backref="holds")
    reason = pw.TextField()
    start = pw.DateField()
    end = pw.DateField(null=True)


LEDGER_MODELS = (
    Customer,
    Invoice,
    Payment,
    PaymentAllocation,
    CreditNote,
    Dispute,
    Promise,
    PaymentPlan,
    Installment,
    Contact,
    Hold,
)

# --- decisions (SPEC §5), rule-set versions, API keys -----------------------------------------


class Decision(BaseModel):
    """One stored decision, append-only, chained by hash in `seq` order."""

    seq = pw.BigIntegerField(primary_key=True)
    decision_id = pw.CharField(max_length=ID_LENGTH, unique=True)
    kind = pw.CharField(max_length=64)
    customer_id = pw.CharField(max_length=ID_LENGTH, null=True)
    as_of = pw.DateField()
    outcome = JSONField()
    reasons = JSONField()
    fired = JSONField()
    facts = JSONField()
    ruleset_kind = pw.CharField(max_length=64)
    ruleset_version = pw.IntegerField()
    ruleset_sha256 = pw.CharField(max_length=64)
    requested_by = pw.CharField(max_length=200)
    created_at = UtcDateTimeField(index=True)
    engine_us = pw.BigIntegerField()
    # Not indexed (migration 7). Two decisions cannot claim the same predecessor all the same:
    # every writer places a decision at seq = head's seq + 1 with prev_hash = head's hash, both
    # read under the chain lock, so a writer with a stale head collides on the primary key.
    prev_hash = pw.CharField(max_length=64)
    hash = pw.CharField(max_length=64)
    # Migration 8. The record format the hash signs (storage.decisions.shape); 1 for rows
    # written before formats existed.
    format = pw.SmallIntegerField()
    via = pw.CharField(max_length=8, null=True)  # api, run or cli; null in format 1
    # Migration 15. The facts it took from earlier decisions of the account (format 4).
    earlier = JSONField(null=True)
    # Migration 17. Under champion/challenger, the arm that decided and its experiment
    # (format 5); null for the rest.
    arm = pw.CharField(max_length=16, null=True)
    experiment_id = pw.IntegerField(null=True)
    # Migration 20. One or two plain sentences from its outcome and reasons (format 3).
    explanation = pw.TextField(null=True)

    class Meta:
        indexes = ((("customer_id", "kind", "seq"), False),)


class DecisionTag(BaseModel):
    """What decisions are searched by: `outcome.<field>` = value, and `rule` = each fired id.

    Keyed by (name, value, seq), the order searches read it in (on SQLite a WITHOUT ROWID
    table: one B-tree). `seq` is not declared a foreign key: tags are written with their
    decision, in its transaction, and decisions are never deleted, while a key check for each
    tag row cost PostgreSQL a third of a tag's insert (migration 5).
    """

    decision = pw.BigIntegerField(column_name="seq")
    name = pw.CharField(max_length=80)
    value = pw.TextField()

    class Meta:
        primary_key = pw.CompositeKey("name", "value", "decision")


class RuleSetVersion(BaseModel):
    """Version n of one kind's rule set and its state; the who/when columns keep the latest
    move of each sort, the whole history is in RuleSetEvent."""

    kind = pw.CharField(max_length=64)
    version = pw.IntegerField()
    source = pw.TextField()
    sha256 = pw.CharField(max_length=64)
    state = pw.CharField(max_length=16)
    note = pw.TextField(default="")
    created_by = pw.CharField(max_length=200)
    created_at = UtcDateTimeField()
    proposed_by = pw.CharField(max_length=200, null=True)
    proposed_at = UtcDateTimeField(null=True)
    approved_by = pw.CharField(max_length=200, null=True)
    approved_at = UtcDateTimeField(null=True)
    activated_by = pw.CharField(max_length=200, null=True)
    activated_at = UtcDateTimeField(null=True)
    retired_at = UtcDateTimeField(null=True)
    # A scheduled activation, for versions approved to take effect later.
    activate_at = UtcDateTimeField(null=True)

    class Meta:
        indexes = ((("kind", "version"), True),)


class RuleSetEvent(BaseModel):
    """One move in a rule set's lifecycle, append-only (migration 13): drafted, proposed,
    approved, rejected, activated, rolled_back or retired; by which key (`actor`, its name),
    whose key (`owner`), when, and the note given with it."""

    id = pw.BigAutoField()
    kind = pw.CharField(max_length=64)
    version = pw.IntegerField()
    event = pw.CharField(max_length=16)
    actor = pw.CharField(max_length=200)
    owner = pw.CharField(max_length=200)
    at = UtcDateTimeField()
    note = pw.TextField(default="")

    class Meta:
        table_name = "ruleset_event"
        indexes = ((("kind", "version"), False),)


class RuleSetFile(BaseModel):
    """A file stored with a rule-set version (migration 18): a reminder template or the company
    settings they use, by its path relative to the templates directory (`reminder/firm.en.j2`,
    `company.toml`), with the SHA-256 of its UTF-8 text. A version's files never change."""

    kind = pw.CharField(max_length=64)
    version = pw.IntegerField()
    path = pw.CharField(max_length=200)
    text = pw.TextField()
    sha256 = pw.CharField(max_length=64)

    class Meta:
        table_name = "ruleset_file"
        primary_key = pw.CompositeKey("kind", "version", "path")


class Experiment(BaseModel):
    """Champion/challenger (migration 17): approved version `challenger` of `kind` decides for
    `share` percent of the customers (chosen by api.arms), the active version `champion` for
    the rest, from `started_at` until it is stopped, promoted or replaced (`ended_how`)."""

    kind = pw.CharField(max_length=64, index=True)
    champion = pw.IntegerField()
    challenger = pw.IntegerField()
    share = pw.SmallIntegerField()
    started_at = UtcDateTimeField()
    started_by = pw.CharField(max_length=200)
    ended_at = UtcDateTimeField(null=True)
    ended_by = pw.CharField(max_length=200, null=True)
    ended_how = pw.CharField(max_length=16, null=True)


class ApiKey(BaseModel):
    """An API key, stored hashed (storage.keys). `name` is unique, revoked keys included: it is
    the requested_by of what the key did. `owner` is the person or system behind the key."""

    name = pw.CharField(max_length=100, unique=True)
    owner = pw.CharField(max_length=100)
    role = pw.CharField(max_length=16)
    key_hash = pw.CharField(max_length=64, unique=True)
    prefix = pw.CharField(max_length=16)
    created_at = UtcDateTimeField()
    revoked_at = UtcDateTimeField(null=True)
    last_used_at = UtcDateTimeField(null=True)


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


# At most one active version per kind, enforced by the database (partial unique index).
RuleSetVersion.add_index(
    RuleSetVersion.index(
        RuleSetVersion.kind,
        unique=True,
        where=(RuleSetVersion.state == "active"),
        name="rule_set_version_one_active",
    )
)
