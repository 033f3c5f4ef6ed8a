"""marshmallow schemas of the ledger records the ERP sends (SPEC §3), shared by the HTTP API and
`credo import`.

Strict by design, because a typo must not silently become a default: unknown fields are refused;
dates must exist (2024-02-30 does not) and lie between 1900 and 2199; money is a JSON number or a
string with at most two decimals, finite, not negative and below 10^12; enumerations are checked;
every string is `Text`: bounded in length and storable (no NUL, no lone surrogate).
Loaded records hold Decimal and date values, ready for storage.ledger.upsert_records.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from engine.ledger import CONTACT_TYPES
from engine.text import text_problem
from storage.models import ID_LENGTH, MAX_MONEY
from storage.upsert import RECORD_TYPES, record_type_of, unknown_type_message

CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
    RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
    TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW
    ZWG""".split()
)
PLAN_STATUSES = ("active", "completed", "cancelled")
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
# Lengths of text fields, in characters (docs/import.md, docs/erp.md).
MAX_NAME, MAX_SEGMENT, MAX_NOTE = 200, 64, 2000
_MONEY_TEXT = re.compile(r"-?\d+(\.\d+)?")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
# Anchored at both ends: validate.Regexp only matches at the start.
_ERP_ID = re.compile(r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?\Z")
_TONE = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")


def _shown(value: Any) -> str:
    """`value` as quoted in a message: its repr, cut short (a body may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Text(fields.String):
    """A string the databases can store (engine.text: no NUL, no lone surrogate) of
    `min_length` to `max_length` characters, then `validate`'s checks.

    Every string field of a request body is one, so that no string reaches storage, a hash or
    a log unchecked; the length limits appear in the OpenAPI document as minLength/maxLength.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, **kwargs: Any):
        more = kwargs.pop("validate", None) or []
        more = [more] if callable(more) else list(more)
        length = validate.Length(min=min_length or None, max=max_length)
        super().__init__(validate=[length, *more], **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text)
        if problem is not None:
            raise ValidationError(problem)
        return text


class Money(fields.Field):
    """A non-negative amount with at most two decimals: JSON number or string -> Decimal."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValidationError("must be a number or a string such as '1250.00'")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError("must be a finite number")
        text = value.strip() if isinstance(value, str) else repr(value)
        if isinstance(value, str) and not _MONEY_TEXT.fullmatch(text):
            raise ValidationError(f"{_shown(value)} is not an amount such as '1250.00'")
        try:
            amount = Decimal(text) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            raise ValidationError(f"{_shown(value)} is not an amount such as '1250.00'") from None
        if not amount.is_finite():
            raise ValidationError("must be a finite number")
        if amount < 0:
            raise ValidationError("must not be negative")
        if amount > MAX_MONEY:
            raise ValidationError(f"must be at most {MAX_MONEY} (is it in cents by mistake?)")
        if amount != amount.quantize(Decimal("0.01")):
            raise ValidationError("must have at most two decimals")
        return amount.quantize(Decimal("0.01")) + 0  # + 0 turns -0.00 into 0.00


class Day(fields.Field):
    """A calendar date written YYYY-MM-DD that exists, between 1900-01-01 and 2199-12-31."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if isinstance(value, date) and not hasattr(value, "hour"):
            day = value
        elif isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                raise ValidationError(f"{_shown(value)} is not a date that exists") from None
        else:
            raise ValidationError(f"{_shown(value)} is not a date written YYYY-MM-DD")
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValidationError(f"must be between {FIRST_DAY} and {LAST_DAY}")
        return day


class WholeNumber(fields.Field):
    """An integer given as a JSON integer or a string of digits (CSV)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValidationError(f"{_shown(value)} is not a whole number")


def _erp_id(**kwargs: Any) -> Text:
    return Text(
        ID_LENGTH,
        min_length=1,
        validate=validate.Regexp(
            _ERP_ID, error="must not contain control characters or start or end with a space"
        ),
        **kwargs,
    )


def _choice(values: Any, **kwargs: Any) -> Text:
    return Text(max(map(len, values)), validate=validate.OneOf(values), **kwargs)


def _not_before(data: dict, later: str, earlier: str) -> None:
    if data.get(later) is not None and data.get(earlier) is not None:
        if data[later] < data[earlier]:
            raise ValidationError(f"must not be before {earlier} ({data[earlier]})", later)


SALUTATIONS = ("ms", "mr")
MAX_EMAIL = 254
# Not a spreadsheet formula (= + - @ first) and no control character: a contact's name and
# e-mail address reach letters, worklist exports and the console.
_NO_FORMULA = re.compile(r"^(?![=+\-@])[^\x00-\x1f\x7f]*\Z")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?\Z")


class ContactPersonSchema(Schema):
    """The person letters are addressed to: name, and optionally e-mail, language, salutation."""

    name = Text(
        MAX_NAME,
        min_length=1,
        required=True,
        validate=validate.Regexp(
            _NO_FORMULA, error="must not start with =, +, - or @ nor hold control characters"
        ),
    )
    email = Text(
        MAX_EMAIL,
        load_default="",
        validate=[
            validate.Regexp(_NO_FORMULA, error="must not start with =, +, - or @"),
            validate.Email(error="must be an e-mail address such as 'anna.weber@example.com'"),
        ],
    )
    language = Text(
        16,
        load_default="",
        validate=validate.Regexp(_LANGUAGE, error="must be a language code such as 'de' or 'en'"),
    )
    salutation = Text(
        2,
        load_default="",
        validate=validate.Regexp(r"^(?:ms|mr)?\Z", error="must be 'ms', 'mr' or empty"),
    )


class CustomerSchema(Schema):
    id = _erp_id(required=True)
    name = Text(MAX_NAME, min_length=1, required=True)
    segment = Text(MAX_SEGMENT, load_default="")
    country = Text(
        2,
        load_default="",
        validate=validate.Regexp(
            r"^(?:[A-Z]{2})?\Z", error="must be an ISO 3166 code such as 'DE'"
        ),
    )
    currency = Text(
        3,
        required=True,
        validate=validate.OneOf(sorted(CURRENCIES), error="must be an ISO 4217 code such as 'EUR'"),
    )
    credit_limit = Money(required=True)
    credit_score = WholeNumber(load_default=None, validate=validate.Range(0, 1000))
    since = Day(required=True)
    contact = fields.Nested(
        ContactPersonSchema,
        load_default=None,
        allow_none=True,
        metadata={"description": "the person letters are addressed to (optional)"},
    )

    @post_load
    def _contact_columns(self, data: dict, **kwargs: Any) -> dict:
        """The contact person as the customer's contact_* columns ("" when none)."""
        contact = data.pop("contact", None) or {}
        for name in ("name", "email", "language", "salutation"):
            data[f"contact_{name}"] = contact.get(name, "")
        return data


class InvoiceSchema(Schema):
    id = _erp_id(required=True)
    customer_id = _erp_id(required=True)
    issue_date = Day(required=True)
    due_date = Day(required=True)
    amount = Money(required=True)

    @validates_schema
    def _due_after_issue(self, data: dict, **kwargs: Any) -> None:
        _not_before(data, "due_date", "issue_date")


class AllocationSchema(Schema):
    invoice_id = _erp_id(required=True)
    amount = Money(required=True)


class PaymentSchema(Schema):
    id = _erp_id(required=True)
    customer_id = _erp_id(required=True)
    date = Day(required=True)
    amount = Money(required=True)
    allocations = fields.List(
        fields.Nested(AllocationSchema), load_default=list, validate=validate.Length(max=1000)
    )

    @validates_schema
    def _allocations_fit(self, data: dict, **kwargs: Any) -> None:
        allocations = data.get("allocations") or []
        ids = [a["invoice_id"] for a in allocations]
        if len(ids) != len(set(ids)):
            raise ValidationError("names an invoice twice", "allocations")
        if "amount" in data and sum(a["amount"] for a in allocations) > data["amount"]:
            raise ValidationError(f"add up to more than the amount {data['amount']}", "allocations")


class CreditNoteSchema(Schema):
    id = _erp_id(required=True)
    customer_id = _erp_id(required=True)
    invoice_id = _erp_id(required=True)
    date = Day(required=True)
    amount = Money(required=True)


class DisputeSchema(Schema):
    id = _erp_id(required=True)
    invoice_id = _erp_id(required=True)
    opened = Day(required=True)
    resolved = Day(load_default=None)
    reason = Text(MAX_NOTE, load_default="")

    @validates_schema
    def _resolved_after_opened(self, data: dict, **kwargs: Any) -> None:
        _not_before(data, "resolved", "opened")


class PromiseSchema(Schema):
    id = _erp_id(required=True)
    customer_id = _erp_id(required=True)
    made_on = Day(required=True)
    date = Day(required=True)
    amount = Money(required=True)

    @validates_schema
    def _date_after_made_on(self, data: dict, **kwargs: Any) -> None:
        _not_before(data, "date", "made_on")


class InstallmentSchema(Schema):
    due_date = Day(required=True)
    amount = Money(required=True)


class PaymentPlanSchema(Schema):
    id = _erp_id(required=True)
    customer_id = _erp_id(required=True)
    status = _choice(PLAN_STATUSES, required=True)
    installments = fields.List(
        fields.Nested(InstallmentSchema), required=True, validate=validate.Length(max=600)
    )


class ContactSchema(Schema):
    id = _erp_id(required=True)
    customer_id = _erp_id(required=True)
    date = Day(required=True)
    type = _choice(CONTACT_TYPES, required=True)
    tone = Text(
        32,
        load_default=None,
        validate=validate.Regexp(_TONE, error="must be a tone such as 'friendly' (lower case)"),
    )
    note = Text(MAX_NOTE, load_default="")

    @validates_schema
    def _reminder_has_tone(self, data: dict, **kwargs: Any) -> None:
        if data.get("type") == "reminder" and not data.get("tone"):
            raise ValidationError("a reminder needs its tone (e.g. 'friendly')", "tone")


class HoldSchema(Schema):
    id = _erp_id(required=True)
    customer_id = _erp_id(required=True)
    reason = Text(MAX_NOTE, min_length=1, required=True)
    start = Day(required=True)
    end = Day(load_default=None)

    @validates_schema
    def _end_after_start(self, data: dict, **kwargs: Any) -> None:
        _not_before(data, "end", "start")


SCHEMAS: dict[str, Schema] = {
    "customer": CustomerSchema(),
    "invoice": InvoiceSchema(),
    "payment": PaymentSchema(),
    "credit_note": CreditNoteSchema(),
    "dispute": DisputeSchema(),
    "promise": PromiseSchema(),
    "payment_plan": PaymentPlanSchema(),
    "contact": ContactSchema(),
    "hold": HoldSchema(),
}
if set(SCHEMAS) != set(RECORD_TYPES):  # pragma: no cover - a guard for whoever adds a type
    raise RuntimeError("ledger schemas and storage record types differ")


class LedgerRecordError(ValueError):
    """A record failed validation; `errors` maps each field (dotted for nested) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def validate_record(data: Any, record_type: str | None = None) -> dict[str, Any]:
    """Validate one record and return it loaded, with its "type".

    The type comes from the record's "type" key (a contact's is its contact type, e.g.
    "reminder") or, for a file or endpoint of one type, from `record_type`; when both are given
    they must agree. Raises LedgerRecordError.
    """
    if not isinstance(data, dict):
        raise LedgerRecordError({"_record": ["must be a JSON object"]})
    given = data.get("type")
    kind = record_type_of(given) if given is not None else record_type
    if kind is None:
        message = unknown_type_message(given) if given is not None else "missing record type"
        raise LedgerRecordError({"type": [message]})
    if record_type is not None and kind != record_type:
        raise LedgerRecordError({"type": [f"expected a {record_type} record, got {given!r}"]})
    body = dict(data)
    if kind != "contact":
        body.pop("type", None)
    try:
        loaded = SCHEMAS[kind].load(body)
    except ValidationError as exc:
        raise LedgerRecordError(flatten_errors(exc.messages)) from None
    loaded["type"] = loaded["type"] if kind == "contact" else kind
    return loaded


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as {"allocations.0.amount": [...]}."""
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "_record": list(messages)}
        messages = dict(enumerate(messages))
    if not isinstance(messages, dict):
        return {prefix or "_record": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = "_record" if key == "_schema" and not prefix else str(key)
        if key == "_schema" and prefix:
            name = ""
        path = ".".join(p for p in (prefix, name) if p)
        for field, texts in flatten_errors(value, path).items():
            flat.setdefault(field, []).extend(texts)
    return flat
