"""The auditor's records over HTTP: GET /v1/audit/events (the operator log, a page at a time)
and GET /v1/audit/export (every decision of a period, streamed as CSV or JSON lines). Both call
api.audit_records, as `credo audit log` and `credo audit export` do."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView

from api.http.auth import require_role
from api.http.context import app_state
from api.http.decision_schemas import EndMoment, Moment
from api.http.decisions import json_response
from api.http.errors import ApiProblem
from api.http.smorest import Api, Blueprint
from storage.models import ID_LENGTH

blp = Blueprint(
    "audit_records", __name__, url_prefix="/v1/audit", description="Operator log and export"
)

_FROM = Moment(
    data_key="from",
    metadata={"type": "string", "description": "at or after (date or date-time, UTC)"},
)
_TO = EndMoment(
    metadata={
        "type": "string",
        "description": "before this date-time; a date includes that whole day",
    }
)


class EventListArgsSchema(ma.Schema):
    kind = ma.fields.String(
        validate=ma.validate.Regexp(
            r"^[a-z][a-z0-9_]{0,30}(\.[a-z][a-z0-9_]{0,30}){0,2}$",
            error="not an event kind (e.g. key.created, or ruleset for every ruleset.* event)",
        ),
        metadata={"description": "this kind, or every kind under it (ruleset: ruleset.*)"},
    )
    actor = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "events by this key name or command (credo init, …)"},
    )
    from_ = _FROM
    to = _TO
    limit = ma.fields.Integer(
        load_default=50,
        validate=ma.validate.Range(min=1),
        metadata={"description": "page size (at most api.max_page_size)"},
    )
    cursor = ma.fields.String(
        validate=ma.validate.Regexp(r"^[0-9]{1,18}$", error="not a cursor from a previous page"),
        metadata={"description": "next_cursor of the previous page"},
    )
    order = ma.fields.String(
        load_default="asc",
        validate=ma.validate.OneOf(["asc", "desc"]),
        metadata={"description": "asc: oldest first (default); desc: newest first"},
    )


class OperatorEventSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    format = ma.fields.Integer(required=True)
    at = ma.fields.String(required=True, metadata={"description": "ISO 8601, UTC"})
    actor = ma.fields.String(required=True, metadata={"description": "key name or command"})
    kind = ma.fields.String(required=True, metadata={"example": "ruleset.approved"})
    details = ma.fields.Dict(required=True)
    prev_hash = ma.fields.String(required=True)
    hash = ma.fields.String(required=True)


class OperatorEventPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(OperatorEventSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class AuditExportArgsSchema(ma.Schema):
    from_ = Moment(
        data_key="from",
        metadata={"type": "string", "description": "decisions made at or after (UTC)"},
    )
    to = EndMoment(
        metadata={
            "type": "string",
            "description": "made before this date-time; a date includes that whole day",
        }
    )
    format = ma.fields.String(
        load_default="jsonl",
        validate=ma.validate.OneOf(["jsonl", "csv"]),
        metadata={
            "description": "jsonl: {seq, record, prev_hash, hash} per line, record exactly as "
            "hashed (default); csv: a row per decision, cells neutralised for spreadsheets"
        },
    )
    kind = ma.fields.String(
        validate=ma.validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$", error="not a rule-set kind"),
        metadata={"description": "decisions of this kind only"},
    )
    customer = ma.fields.String(
        validate=ma.validate.Length(min=1, max=ID_LENGTH),
        metadata={"description": "decisions about this customer id only"},
    )


@blp.route("/events")
class AuditEvents(MethodView):
    @require_role("auditor")
    @blp.arguments(EventListArgsSchema(), location="query")
    @blp.response(200, OperatorEventPageSchema)
    def get(self, args: dict[str, Any]) -> Response:
        """The operator log, a page at a time (follow next_cursor): keys created and revoked,
        rule-set lifecycle moves, runs started and finished, imports, demo resets; each with
        its actor, time, details and place in the log's hash chain."""
        from api.audit_records import event_filter, list_events

        max_page = app_state().settings.api.max_page_size
        if args["limit"] > max_page:
            raise ApiProblem(
                422, "", errors={"limit": [f"must be at most {max_page} (api.max_page_size)"]}
            )
        filters = event_filter(
            args.get("kind"), args.get("from_"), args.get("to"), args.get("actor")
        )
        cursor = args.get("cursor")
        page = list_events(
            filters, int(cursor) if cursor else None, args["limit"], args["order"] == "desc"
        )
        next_cursor = str(page.next_cursor) if page.next_cursor is not None else None
        return json_response({"items": page.items, "next_cursor": next_cursor})


@blp.route("/export")
class AuditExport(MethodView):
    @require_role("auditor")
    @blp.arguments(AuditExportArgsSchema(), location="query")
    @blp.response(
        200,
        content_type="application/x-ndjson",
        description="{seq, record, prev_hash, hash} per line (format=jsonl), or CSV with a "
        "header row (format=csv)",
    )
    @blp.doc(responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, args: dict[str, Any]) -> Response:
        """Every decision made in the period (of a kind, of a customer), oldest first,
        streamed: JSON lines carry each record exactly as hashed, so the chain can be
        recomputed from the file alone."""
        from api.audit_records import BadArgument, export_decisions

        try:
            found = export_decisions(
                args["format"],
                created_from=args.get("from_"),
                created_to=args.get("to"),
                kind=args.get("kind"),
                customer_id=args.get("customer"),
            )
        except BadArgument as exc:
            raise ApiProblem(422, "", errors={exc.name: [exc.message]}) from None
        return Response(
            stream_with_context(found.chunks),
            mimetype=found.mimetype,
            headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
        )


def init_app(api: Api) -> None:
    """Register the operator log and export endpoints."""
    api.register_blueprint(blp)
