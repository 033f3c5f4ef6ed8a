"""Customers: PUT /v1/customers/{id} (upsert) and GET /v1/customers/{id}/facts?as_of=."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.http.auth import require_role
from api.http.decisions import today
from api.http.errors import ApiProblem
from api.http.ledger import UpsertResultSchema, upsert_one
from api.http.smorest import Api, Blueprint
from api.intake import schemas as ledger_schemas
from engine.trace import to_jsonable

blp = Blueprint("customers", __name__, url_prefix="/v1/customers", description="Customers")


class CustomerBodySchema(ledger_schemas.CustomerSchema):
    """A customer; `id` may be left out (the path names it) or must equal the path's."""

    def __init__(self, **kwargs: Any):
        super().__init__(partial=("id",), **kwargs)


class FactsArgsSchema(ma.Schema):
    as_of = ledger_schemas.Day(metadata={"description": "default: today (facts.timezone)"})


class CustomerFactsSchema(ma.Schema):
    customer_id = ma.fields.String(required=True)
    as_of = ma.fields.String(required=True, metadata={"format": "date"})
    facts = ma.fields.Dict(
        required=True,
        metadata={"description": "facts by name (SPEC §3); absent facts are left out"},
    )


@blp.route("/<erp_id:customer_id>")
class CustomerById(MethodView):
    @require_role("decide")
    @blp.arguments(CustomerBodySchema())
    @blp.response(200, UpsertResultSchema)
    def put(self, body: dict[str, Any], customer_id: str) -> dict[str, int]:
        """Upsert the customer named in the path."""
        if body.setdefault("id", customer_id) != customer_id:
            raise ApiProblem(422, "", errors={"id": [f"must equal the path's id {customer_id!r}"]})
        try:
            ledger_schemas.CustomerSchema().load({"id": customer_id}, partial=True)
        except ma.ValidationError as exc:
            raise ApiProblem(422, "", errors={"id": exc.messages.get("id", [])}) from exc
        return upsert_one("customer", body)


@blp.route("/<erp_id:customer_id>/facts")
class CustomerFacts(MethodView):
    @require_role("decide", "auditor", "analyst")
    @blp.arguments(FactsArgsSchema(), location="query")
    @blp.response(200, CustomerFactsSchema)
    def get(self, args: dict[str, Any], customer_id: str) -> dict[str, Any]:
        """The customer's facts derived from the stored ledger as of a date."""
        from engine.facts import derive_facts
        from storage.ledger import load_ledger

        ledger = load_ledger(customer_id) if len(customer_id) <= 64 else None
        if ledger is None:
            raise ApiProblem(404, f"unknown customer {customer_id!r}")
        as_of = args.get("as_of") or today()
        facts = derive_facts(ledger, as_of)
        return {
            "customer_id": customer_id,
            "as_of": as_of.isoformat(),
            "facts": to_jsonable(facts),
        }


def init_app(api: Api) -> None:
    """Register the customer endpoints."""
    api.register_blueprint(blp)
