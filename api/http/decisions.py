"""Decisions: make one (POST /v1/decisions/{kind}), read one, list, export (SPEC §5, §6).

A decision is stored, with its place in the hash chain, before it is returned. With an
Idempotency-Key header the same key and body return the stored decision again (200, header
Idempotent-Replayed: true); the same key with another body is 409. A dry run is a what-if:
decided the same way (api.decide), answered with 200 and `dry_run: true`, never stored.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, request, stream_with_context
from flask.views import MethodView

from api.http.auth import current_caller, require_role
from api.http.context import app_state
from api.http.decision_audit import DecisionReadArgsSchema, add_routes, read_decision
from api.http.decision_schemas import (
    DECISION_OR_WHAT_IF,
    DecisionExportArgsSchema,
    DecisionListArgsSchema,
    DecisionPageSchema,
    DecisionRequestSchema,
    DecisionSchema,
    IdempotencyHeaderSchema,
    ReadDecisionSchema,
)
from api.http.errors import ApiProblem
from api.http.rulesets import RULESET_LINK, version_link
from api.http.smorest import Api, Blueprint

blp = Blueprint("decisions", __name__, url_prefix="/v1/decisions", description="Decisions")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from values that are already JSON (stored decisions are)."""
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def today() -> date:
    """Today in the configured timezone (facts.timezone)."""
    return datetime.now(ZoneInfo(app_state().settings.facts.timezone)).date()


# POST takes a kind and GET a decision id: one path template, because OpenAPI forbids two
# templates that differ only in the parameter's name.
@blp.route("/<string:kind_or_id>")
class DecisionResource(MethodView):
    @require_role("decide")
    @blp.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @blp.arguments(DecisionRequestSchema())
    @blp.response(201, DecisionSchema)
    @blp.alt_response(
        200,
        schema=DECISION_OR_WHAT_IF,
        description="replayed for an Idempotency-Key (the stored decision), or a dry run "
        "(evaluated, not stored: `dry_run: true`, no decision_id, seq or hashes)",
    )
    @blp.problem(404, "unknown kind, customer or version")
    @blp.problem(409, "Idempotency-Key used before with another body")
    def post(self, body: dict[str, Any], kind_or_id: str, idempotency_key: str | None = None):
        """Decide now for the kind in the path with its active version; store the decision
        with its trace and return it. A dry run is decided the same way and not stored (no
        decision row, no idempotency record); only a dry run may evaluate another stored
        `version` (a draft, a retired version) instead of the active one."""
        from api.decide import DecisionRequest, decide
        from api.http import deciding
        from api.http.evaluator import process_engine

        kind = kind_or_id
        caller = current_caller()
        dry_run = body["dry_run"]
        key = None if dry_run else idempotency_key  # a what-if stores nothing, keeps no key
        # Hashed without dry_run (false here), as before requests had it.
        plain = {name: value for name, value in body.items() if name != "dry_run"}
        request_sha = deciding.request_sha256(kind, plain) if key else ""
        if key:
            earlier = deciding.find_replay(caller.name, key, request_sha)
            if earlier is not None:
                return _decision_response(earlier, replayed=True)
        asked = DecisionRequest(
            kind,
            body.get("customer_id"),
            body.get("facts"),
            body.get("as_of") or today(),
            caller.name,
            "api",
            dry_run=dry_run,
            version=body.get("version"),
        )
        stored: list[deciding.Stored] = []

        def store(record: dict[str, Any]) -> dict[str, Any]:
            stored.append(deciding.store(record, caller.name, key, request_sha))
            return stored[-1].decision

        with deciding.problems():
            now = app_state().rulesets.snapshot()  # one snapshot: no decision mixes two
            decision = decide(asked, now.active, process_engine(), store, now.challengers)
        if not stored:
            return json_response(decision)  # a what-if: 200, nothing stored
        first = stored[0]
        return _decision_response(first.decision, replayed=first.replayed)

    @require_role("auditor")
    @blp.arguments(DecisionReadArgsSchema(), location="query", as_kwargs=True)
    @blp.response(200, ReadDecisionSchema, headers=RULESET_LINK)
    @blp.problem(422, "why_not does not apply (a rule set under `all`)")
    def get(self, kind_or_id: str, why_not: bool = False) -> Response:
        """One decision (by the id in the path) with its facts, rule version, fired rules,
        explanation and hashes; for a credit decision referred or declined, what would change
        it; with why_not=1, why the rules ranked above the deciding one did not apply."""
        from api.decision_views import find_decision

        found = find_decision(kind_or_id)
        if found is None:
            raise ApiProblem(404, f"no decision {kind_or_id[:80]!r}")
        body = read_decision(found, why_not)
        return json_response(body, headers=version_link(found["ruleset"]))


def _decision_response(decision: dict[str, Any], *, replayed: bool) -> Response:
    """201 with the decision just stored (200 when replayed)."""
    headers = {"Location": f"{request.root_path}{blp.url_prefix}/{decision['decision_id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(decision, 200 if replayed else 201, headers)


@blp.route("")
class Decisions(MethodView):
    @require_role("auditor")
    @blp.arguments(DecisionListArgsSchema(), location="query")
    @blp.response(200, DecisionPageSchema)
    def get(self, args: dict[str, Any]) -> Response:
        """Decisions matching the filters, a page at a time (follow next_cursor)."""
        from api.decision_views import list_decisions

        max_page = app_state().settings.api.max_page_size
        if args["limit"] > max_page:
            raise ApiProblem(
                422, "", errors={"limit": [f"must be at most {max_page} (api.max_page_size)"]}
            )
        cursor = args.get("cursor")
        page = list_decisions(
            decision_filter(args),
            int(cursor) if cursor else None,
            args["limit"],
            newest_first=args["order"] == "desc",
        )
        next_cursor = str(page.next_cursor) if page.next_cursor is not None else None
        return json_response({"items": page.items, "next_cursor": next_cursor})


@blp.route("/export")
class DecisionExport(MethodView):
    @require_role("auditor")
    @blp.arguments(DecisionExportArgsSchema(), location="query")
    @blp.response(
        200,
        content_type="application/x-ndjson",
        description="one decision per line (format=jsonl) or CSV with a header row (format=csv)",
    )
    def get(self, args: dict[str, Any]) -> Response:
        """Every matching decision, streamed as JSON lines or CSV (read in chunks)."""
        from api.audit_records import decisions_csv
        from storage.decisions import iter_decisions

        filters = decision_filter(args)
        if args["format"] == "csv":
            lines = decisions_csv(iter_decisions(filters))
            mimetype, name = "text/csv", "decisions.csv"
        else:
            lines = (json.dumps(d, ensure_ascii=False) + "\n" for d in iter_decisions(filters))
            mimetype, name = "application/x-ndjson", "decisions.jsonl"
        return Response(
            stream_with_context(lines),
            mimetype=mimetype,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def decision_filter(args: dict[str, Any]):
    """storage's DecisionFilter from the query arguments (api.decision_views)."""
    from api.decision_views import decision_filter as build

    return build(
        customer_id=args.get("customer_id"),
        kind=args.get("kind"),
        outcome=args.get("outcome") or (),
        rule=args.get("rule"),
        created_from=args.get("from_"),
        created_to=args.get("to"),
    )


add_routes(blp)  # POST /v1/decisions/{id}/replay, GET /v1/decisions/{id}/evidence


def init_app(api: Api) -> None:
    """Register the decision endpoints (and the dry run's answer, which DECISION_OR_WHAT_IF
    names)."""
    from api.http.decision_schemas import WhatIfDecisionSchema

    api.spec.components.schema("WhatIfDecision", schema=WhatIfDecisionSchema)
    api.register_blueprint(blp)
