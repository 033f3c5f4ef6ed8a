"""Rule sets, read side: GET /v1/rulesets and GET /v1/rulesets/{kind} (SPEC §6).

The write side (drafts, tests, simulation, maker-checker) is another module's job; this one shows
what is active, its TOML source and every version's history.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.http.auth import require_role
from api.http.errors import ApiProblem
from api.http.smorest import Api, Blueprint

blp = Blueprint("rulesets", __name__, url_prefix="/v1/rulesets", description="Rule sets (read)")

_NULLABLE_TEXT = {"allow_none": True, "required": True}


class VersionSchema(ma.Schema):
    """One version of a rule set, without its source."""

    kind = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    state = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(["draft", "proposed", "approved", "active", "retired"]),
    )
    sha256 = ma.fields.String(required=True)
    note = ma.fields.String(required=True)
    created_by = ma.fields.String(required=True)
    created_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    proposed_by = ma.fields.String(**_NULLABLE_TEXT)
    proposed_at = ma.fields.String(**_NULLABLE_TEXT, metadata={"format": "date-time"})
    approved_by = ma.fields.String(**_NULLABLE_TEXT)
    approved_at = ma.fields.String(**_NULLABLE_TEXT, metadata={"format": "date-time"})
    activated_by = ma.fields.String(**_NULLABLE_TEXT)
    activated_at = ma.fields.String(**_NULLABLE_TEXT, metadata={"format": "date-time"})
    retired_at = ma.fields.String(**_NULLABLE_TEXT, metadata={"format": "date-time"})
    activate_at = ma.fields.String(
        **_NULLABLE_TEXT,
        metadata={"format": "date-time", "description": "a scheduled activation, if any"},
    )


class ActiveVersionSchema(VersionSchema):
    """The active version, with its TOML source."""

    source = ma.fields.String(required=True)


class RuleSetSummarySchema(ma.Schema):
    kind = ma.fields.String(required=True)
    active = ma.fields.Nested(VersionSchema, required=True, allow_none=True)
    versions = ma.fields.Integer(required=True, metadata={"description": "how many versions"})


class RuleSetListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(RuleSetSummarySchema), required=True)


class RuleSetSchema(ma.Schema):
    kind = ma.fields.String(required=True)
    active = ma.fields.Nested(ActiveVersionSchema, required=True, allow_none=True)
    history = ma.fields.List(
        ma.fields.Nested(VersionSchema), required=True, metadata={"description": "oldest first"}
    )


@blp.route("")
class RuleSets(MethodView):
    @require_role("analyst", "auditor")
    @blp.response(200, RuleSetListSchema)
    def get(self) -> dict[str, Any]:
        """Every kind with its active version (if any) and number of versions."""
        from storage import rulesets

        items = []
        for kind in rulesets.list_kinds():
            history = rulesets.history(kind)
            active = next((v for v in history if v["state"] == "active"), None)
            items.append({"kind": kind, "active": active, "versions": len(history)})
        return {"items": items}


@blp.route("/<string:kind>")
class RuleSetByKind(MethodView):
    @require_role("analyst", "auditor")
    @blp.response(200, RuleSetSchema)
    def get(self, kind: str) -> dict[str, Any]:
        """One kind: its active version with the TOML source, and every version's history."""
        from storage import rulesets

        history = rulesets.history(kind)
        if not history:
            known = ", ".join(rulesets.list_kinds()) or "none"
            raise ApiProblem(404, f"unknown rule-set kind {kind!r}; known kinds: {known}")
        return {"kind": kind, "active": rulesets.get_active(kind), "history": history}


def init_app(api: Api) -> None:
    """Register the rule-set endpoints."""
    api.register_blueprint(blp)
