"""Ledger records from the ERP: one endpoint per record type, and POST /v1/ledger/batch.

Records are upserted by the ERP's id within their type; sending the same record twice changes
nothing. Validation is api.intake.schemas (strict: unknown fields, impossible dates, negative or
absurd amounts are refused); what only the database knows (the customer or invoice a record
names exists) is checked by storage. A batch is all or nothing: if any record is refused, none
is written and the 422 lists every problem as records.<index>.<field>. After a write, the
customers' pending actions are acknowledged or made void as the records say (api.nightly.worklist).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.http.auth import require_role
from api.http.decisions import today
from api.http.errors import ApiProblem
from api.http.smorest import Api, Blueprint
from api.intake import schemas as ledger_schemas
from api.nightly.worklist import refresh_worklist

blp = Blueprint("ledger", __name__, url_prefix="/v1", description="Ledger records from the ERP")

MAX_BATCH_RECORDS = 10_000


class UpsertResultSchema(ma.Schema):
    inserted = ma.fields.Integer(required=True)
    updated = ma.fields.Integer(required=True)
    unchanged = ma.fields.Integer(required=True)


class BatchSchema(ma.Schema):
    # Raw items: every record is validated by its type's schema, so that all problems of a
    # batch are reported together (records.<index>.<field>).
    records = ma.fields.List(
        ma.fields.Raw(metadata={"type": "object"}),
        required=True,
        validate=ma.validate.Length(max=MAX_BATCH_RECORDS),
        metadata={
            "description": 'ledger records, each with its "type" (customer, invoice, payment, '
            "credit_note, dispute, promise, payment_plan, hold; a contact's type is its contact "
            "type: reminder, call, letter, agency_placement, agency_recall) and the fields of "
            "that type's endpoint",
            "example": [
                {
                    "type": "invoice",
                    "id": "INV-1001",
                    "customer_id": "C-42",
                    "issue_date": "2024-05-01",
                    "due_date": "2024-05-31",
                    "amount": "1250.00",
                }
            ],
        },
    )


def upsert(records: list[dict[str, Any]], field_prefix: str = "") -> dict[str, int]:
    """Write validated records in one transaction, all or nothing; 422 naming each refusal."""
    from storage.db import database
    from storage.upsert import upsert_records

    with database.atomic() as transaction:
        result = upsert_records(records)
        if result.rejected:
            transaction.rollback()
            errors = {
                f"{field_prefix.format(index=r.index)}{field}": messages
                for r in result.rejected
                for field, messages in r.errors.items()
            }
            raise ApiProblem(422, "", errors=errors)
    # Pending actions the records answer are acknowledged, those they make moot void.
    refresh_worklist(records, today())
    return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}


def upsert_one(record_type: str, loaded: dict[str, Any]) -> dict[str, int]:
    """Write one record loaded by its type's schema (a contact's "type" is its contact type)."""
    record = dict(loaded)
    if record_type != "contact":
        record["type"] = record_type
    return upsert([record])


def _record_view(record_type: str, schema: type[ma.Schema], path: str) -> None:
    """Register POST /v1/<path> upserting one record of `record_type`."""

    @require_role("decide")
    @blp.arguments(schema(), description=f"one {record_type.replace('_', ' ')} record")
    @blp.response(200, UpsertResultSchema)
    def post(self: MethodView, body: dict[str, Any]) -> dict[str, int]:
        return upsert_one(record_type, body)

    post.__doc__ = (
        f"Upsert one {record_type.replace('_', ' ')} by its id (counts of what happened)."
    )
    view = type(f"{schema.__name__.removesuffix('Schema')}s", (MethodView,), {"post": post})
    blp.route(f"/{path}")(view)


for _type, _schema, _path in (
    ("invoice", ledger_schemas.InvoiceSchema, "invoices"),
    ("payment", ledger_schemas.PaymentSchema, "payments"),
    ("credit_note", ledger_schemas.CreditNoteSchema, "credit-notes"),
    ("dispute", ledger_schemas.DisputeSchema, "disputes"),
    ("promise", ledger_schemas.PromiseSchema, "promises"),
    ("payment_plan", ledger_schemas.PaymentPlanSchema, "payment-plans"),
    ("contact", ledger_schemas.ContactSchema, "contacts"),
    ("hold", ledger_schemas.HoldSchema, "holds"),
):
    _record_view(_type, _schema, _path)


@blp.route("/ledger/batch")
class LedgerBatch(MethodView):
    @require_role("decide")
    @blp.arguments(BatchSchema())
    @blp.response(200, UpsertResultSchema)
    def post(self, body: dict[str, Any]) -> dict[str, int]:
        """Upsert many records of any types at once, all or nothing."""
        records, errors = [], {}
        for index, data in enumerate(body["records"]):
            try:
                records.append(ledger_schemas.validate_record(data))
            except ledger_schemas.LedgerRecordError as exc:
                for field, messages in exc.errors.items():
                    errors[f"records.{index}.{field}"] = messages
        if errors:
            raise ApiProblem(422, "", errors=errors)
        return upsert(records, "records.{index}.")


def init_app(api: Api) -> None:
    """Register the ledger endpoints."""
    api.register_blueprint(blp)
