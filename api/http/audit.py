"""The auditor's chain endpoints (api.audit_chain, the same use cases as `credo audit`):

GET /v1/audit/verify?from=&to=&anchor_seq=&anchor_hash=  verify the decision chain (and the
                                                         whole operator log)
GET /v1/audit/anchor                                     the chain's head {seq, hash, time}

A range of at most `audit.verify_job_rows` decisions (100,000 by default) is verified in the
request: 200 with the result. A larger one runs as a job: 202 {job_id, state} with a Location
to poll (GET /v1/jobs/{id}), whose result is the same object.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.http import jobs
from api.http.auth import require_role
from api.http.context import app_state
from api.http.decisions import json_response
from api.http.errors import ApiProblem
from api.http.smorest import Api, Blueprint

blp = Blueprint(
    "audit", __name__, url_prefix="/v1/audit", description="The decision chain: verify, anchor"
)

_MAX_SEQ = 2**63 - 1


class ChainVerifyArgsSchema(ma.Schema):
    first = ma.fields.String(
        data_key="from",
        validate=ma.validate.Length(max=20),
        metadata={"description": "first decision: seq number, or creation date YYYY-MM-DD"},
    )
    last = ma.fields.String(
        data_key="to",
        validate=ma.validate.Length(max=20),
        metadata={"description": "last decision: seq number, or creation date YYYY-MM-DD"},
    )
    anchor_seq = ma.fields.Integer(
        validate=ma.validate.Range(0, _MAX_SEQ),
        metadata={"description": "an anchor's seq (credo audit anchor): with anchor_hash"},
    )
    anchor_hash = ma.fields.String(
        validate=ma.validate.Regexp(r"^[0-9a-f]{64}$", error="expected 64 hexadecimal digits"),
        metadata={"description": "the anchored decision's hash: with anchor_seq"},
    )

    @ma.validates_schema
    def _both(self, data: dict[str, Any], **_kwargs: Any) -> None:
        for given, missing in (("anchor_seq", "anchor_hash"), ("anchor_hash", "anchor_seq")):
            if given in data and missing not in data:
                raise ma.ValidationError(f"is needed with {given}", missing)


class ChainProblemSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    decision_id = ma.fields.String(required=True, allow_none=True)
    kind = ma.fields.String(
        required=True, metadata={"description": "altered, deleted, inserted or reordered"}
    )
    problem = ma.fields.String(required=True, metadata={"description": "what does not match"})


class ChainHeadSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    hash = ma.fields.String(required=True)


class ChainAnchorSchema(ChainHeadSchema):
    time = ma.fields.String(required=True, metadata={"format": "date-time"})


class AnchorCheckSchema(ChainAnchorSchema):
    ok = ma.fields.Boolean(required=True)
    problem = ma.fields.String(required=True, allow_none=True)


class LogProblemSchema(ma.Schema):
    seq = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True, allow_none=True, metadata={"description": "event kind"})
    problem = ma.fields.String(required=True, metadata={"description": "what does not match"})


class OperatorLogCheckSchema(ma.Schema):
    """The operator log's verification (as `credo audit log --verify --json`)."""

    ok = ma.fields.Boolean(required=True)
    events = ma.fields.Integer(required=True, metadata={"description": "events checked"})
    head = ma.fields.Nested(ChainHeadSchema, required=True)
    problems = ma.fields.List(ma.fields.Nested(LogProblemSchema), required=True)


class ChainVerifySchema(ma.Schema):
    """The result of a verification (also a verify job's result)."""

    ok = ma.fields.Boolean(required=True)
    first = ma.fields.Integer(data_key="from", attribute="from", required=True)
    last = ma.fields.Integer(data_key="to", attribute="to", required=True, allow_none=True)
    count = ma.fields.Integer(required=True, metadata={"description": "decisions checked"})
    head = ma.fields.Nested(
        ChainHeadSchema, required=True, metadata={"description": "the last decision checked"}
    )
    problems = ma.fields.List(ma.fields.Nested(ChainProblemSchema), required=True)
    problems_count = ma.fields.Integer(required=True)
    anchor = ma.fields.Nested(AnchorCheckSchema, required=True, allow_none=True)
    checkpoint = ma.fields.Dict(
        required=True, allow_none=True, metadata={"description": "the retention checkpoint"}
    )
    operator_log = ma.fields.Nested(
        OperatorLogCheckSchema,
        required=True,
        metadata={"description": "the whole operator log, verified beside the decisions"},
    )


@blp.route("/verify")
class Verify(MethodView):
    @require_role("auditor")
    @blp.arguments(ChainVerifyArgsSchema(), location="query")
    @blp.response(200, ChainVerifySchema)
    @blp.alt_response(202, description="a large range: verified by a job (GET /v1/jobs/{id})")
    @blp.problem(503, "a large range's job could not be started")
    def get(self, args: dict[str, Any]) -> Any:
        """Recompute the decision chain's hashes over a range (default: all): ok with the count
        and the last hash, or each altered, deleted, inserted or reordered decision; with an
        anchor, whether the chain still reaches it; and the whole operator log's (ok is false
        when either does not hold)."""
        from api.audit_chain import (
            AuditInputError,
            make_anchor,
            parse_bound,
            range_size,
            resolve_range,
            verify_trail,
        )

        try:
            bounds = [
                parse_bound(name, args[key]) if key in args else None
                for key, name in (("first", "from"), ("last", "to"))
            ]
            anchor = (
                make_anchor(args["anchor_seq"], args["anchor_hash"])
                if "anchor_seq" in args
                else None
            )
            first, last = resolve_range(*bounds)
            if range_size(first or 1, last) > app_state().settings.audit.verify_job_rows:
                params = {"from": first, "to": last, "anchor": anchor and anchor.to_json()}
                return json_response(*_start_job(params))
            return verify_trail(first, last, anchor)
        except AuditInputError as exc:
            raise ApiProblem(422, "", errors={exc.field: [exc.message]}) from None


def _start_job(params: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A verify job for the caller (api.jobs.launch_job, as the simulations start theirs): the
    202 answer; 503 when its process cannot start."""
    from api.jobs import JobError, launch_job

    try:
        job = launch_job(app_state().settings, "audit-verify", params, jobs.caller_name())
    except JobError as exc:
        raise ApiProblem(503, str(exc)) from exc
    return jobs.started(job)


@blp.route("/anchor")
class AnchorNow(MethodView):
    @require_role("auditor")
    @blp.response(200, ChainAnchorSchema)
    def get(self) -> dict[str, Any]:
        """The chain's head now {seq, hash, time}: keep it outside the database, and verify
        against it later (anchor_seq, anchor_hash) to catch decisions cut from the end."""
        from api.audit_chain import current_anchor, log_anchor

        anchor = current_anchor()
        log_anchor(anchor, "anchored")
        return anchor


def init_app(api: Api) -> None:
    """Register the audit endpoints."""
    api.register_blueprint(blp)
