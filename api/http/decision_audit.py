"""One stored decision examined by an auditor: `POST /v1/decisions/{id}/replay` (evaluate it
again with its version's stored text and compare) and `GET /v1/decisions/{id}/evidence` (that
text and the version's approval history); `GET /v1/decisions/{id}?why_not=1` answers with
`why_not` (api.http.decisions reads it through `read_decision` here). The use cases are
api.audit_replay and api.decision_audit, which `credo audit` calls too.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.http.auth import require_role
from api.http.errors import ApiProblem
from api.http.ruleset_schemas import VersionDetailSchema
from api.http.rulesets import RULESET_LINK, version_link


class DecisionReadArgsSchema(ma.Schema):
    why_not = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "1 (or true): add `why_not`, the rules ranked above the deciding one "
            "(rule sets under `first`) with the first condition that failed and the fact "
            "values it read; computed now from the stored facts and version"
        },
    )


class ReplayDifferenceSchema(ma.Schema):
    field = ma.fields.String(
        required=True, metadata={"description": "outcome, reasons, fired, facts or ruleset…"}
    )
    stored = ma.fields.Raw(required=True, allow_none=True)
    replayed = ma.fields.Raw(required=True, allow_none=True)
    problem = ma.fields.String(required=True)


class ReplaySchema(ma.Schema):
    decision_id = ma.fields.String(required=True)
    seq = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    ruleset = ma.fields.Dict(required=True, metadata={"description": "{kind, version, sha256}"})
    same = ma.fields.Boolean(
        required=True,
        metadata={"description": "outcome, reasons and fired list equal byte for byte"},
    )
    differences = ma.fields.List(ma.fields.Nested(ReplayDifferenceSchema), required=True)
    replayed = ma.fields.Dict(
        required=True,
        allow_none=True,
        metadata={"description": "the replayed outcome, reasons and fired list"},
    )


class VersionEvidenceSchema(VersionDetailSchema):
    """The version that made a decision (its exact source, templates and events), with the
    sha256 its text has now beside the one the decision recorded."""

    decision_id = ma.fields.String(required=True)
    decided_with = ma.fields.Dict(
        required=True, metadata={"description": "{kind, version, sha256} the decision recorded"}
    )
    source_sha256 = ma.fields.String(required=True, metadata={"description": "its sha256, now"})
    matches = ma.fields.Boolean(
        required=True, metadata={"description": "the text hashes to the recorded sha256"}
    )


def read_decision(decision: dict[str, Any], why_not: bool) -> dict[str, Any]:
    """A stored decision as GET answers it: the stored decision, `what_would_change` for a
    credit decision referred or declined (when a single change would do), and `why_not` when
    asked (422 when it does not apply); both are computed now, not part of the hashed record."""
    from api.decision_audit import NotExplainable, what_would_change
    from api.decision_audit import why_not as why_not_of

    body = dict(decision)
    changes = what_would_change(decision)
    if changes:
        body["what_would_change"] = changes
    if why_not:
        try:
            body["why_not"] = why_not_of(decision)
        except NotExplainable as exc:
            raise ApiProblem(422, str(exc), errors={"why_not": [str(exc)]}) from None
    return body


def _found(decision_id: str) -> None:
    raise ApiProblem(404, f"no decision {decision_id[:80]!r}")


def add_routes(blp: Any) -> None:
    """Add the replay and evidence endpoints to the decisions blueprint."""
    from api.http.decisions import json_response

    @blp.route("/<string:decision_id>/replay")
    class DecisionReplay(MethodView):
        @require_role("auditor")
        @blp.response(200, ReplaySchema)
        @blp.problem(404, "no such decision")
        def post(self, decision_id: str):
            """Evaluate the stored decision again with the stored text of the version that made
            it (never the active version or a file) and compare its outcome, reasons and fired
            list byte for byte: `same`, or each difference with both sides."""
            from api.audit_replay import UnknownDecision, replay_one

            try:
                return json_response(replay_one(decision_id))
            except UnknownDecision:
                _found(decision_id)

    @blp.route("/<string:decision_id>/evidence")
    class DecisionEvidenceResource(MethodView):
        @require_role("auditor")
        @blp.response(200, VersionEvidenceSchema, headers=RULESET_LINK)
        @blp.problem(404, "no such decision")
        def get(self, decision_id: str):
            """The exact rule text that made the decision, its sha256 checked against the one
            the decision recorded, and that version's approval history (drafted, proposed,
            approved, activated: who, when, the note)."""
            from api.audit_replay import UnknownDecision
            from api.decision_audit import version_evidence
            from api.lifecycle_rules import UnknownVersion

            try:
                data = version_evidence(decision_id)
            except UnknownDecision:
                _found(decision_id)
            except UnknownVersion as exc:
                raise ApiProblem(404, str(exc)) from None
            return json_response(data, headers=version_link(data["decided_with"]))
