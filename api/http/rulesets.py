"""Rule sets over HTTP (SPEC §6): read them, and move versions through the lifecycle.

GET  /v1/rulesets, /v1/rulesets/{kind}               kinds; one kind's versions and events
POST /v1/rulesets/{kind}/versions                    a new draft from TOML text
GET  /v1/rulesets/{kind}/versions/{version}          its exact source, templates and events
POST …/versions/{version}/test                       run its [[test]] cases
POST …/versions/{version}/propose|approve|reject|activate
POST …/versions/{version}/test-cases                 a new draft pinning a stored decision
GET  /v1/rulesets/{kind}/diff?from=&to=              rule-level differences

Each view parses its input and calls one use case (api.lifecycle, api.ruleset_views,
api.decision_tests), which the `credo rules` commands call too; their refusals become
problem+json here: 404 unknown, 422 invalid, 403 not this key (role, four eyes), 409 not in
this state or its checks fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import request
from flask.views import MethodView

from api import lifecycle
from api.http.auth import current_caller, require_role
from api.http.context import app_state
from api.http.errors import PROBLEM_MIMETYPE, ApiProblem
from api.http.ruleset_schemas import (
    ActivateSchema,
    CaseRunSchema,
    DiffArgsSchema,
    DiffSchema,
    DraftSchema,
    MoveSchema,
    PinnedDraftSchema,
    PinRequestSchema,
    RuleSetListSchema,
    RuleSetProblemSchema,
    RuleSetSchema,
    VersionDetailArgsSchema,
    VersionDetailSchema,
    VersionSchema,
)
from api.http.smorest import Api, Blueprint
from api.lifecycle import MOVE_ROLES, READ_ROLES

blp = Blueprint("rulesets", __name__, url_prefix="/v1/rulesets", description="Rule sets")


def version_path(kind: str, version: int) -> str:
    """The path of a rule-set version's resource (GET it for its source and history)."""
    return f"{request.root_path}{blp.url_prefix}/{kind}/versions/{version}"


# A decision's record stays as stored; the version that made it is linked beside it (RFC 8288).
RULESET_LINK = {
    "Link": {
        "description": "the rule-set version that made the decision (its source and history): "
        '</v1/rulesets/{kind}/versions/{n}>; rel="ruleset-version"',
        "schema": {"type": "string"},
    }
}


def version_link(ruleset: dict[str, Any]) -> dict[str, str]:
    """The Link header naming the version of a decision's `ruleset` {kind, version}."""
    path = version_path(ruleset["kind"], ruleset["version"])
    return {"Link": f'<{path}>; rel="ruleset-version"'}


@contextmanager
def lifecycle_problems() -> Iterator[None]:
    """The use cases' refusals as problem+json."""
    try:
        yield
    except lifecycle.UnknownVersion as exc:
        raise ApiProblem(404, str(exc)) from None
    except lifecycle.InvalidInput as exc:
        raise ApiProblem(422, str(exc), errors={exc.field: [exc.message]}) from None
    except lifecycle.InvalidRuleSet as exc:
        texts = [str(problem) for problem in exc.problems]
        detail = f"{str(exc).splitlines()[0]} " + "; ".join(texts)
        raise ApiProblem(
            422,
            detail if len(detail) <= 2000 else detail[:1997] + "...",
            errors={exc.field: texts},
            extra={"problems": [lifecycle.problem_json(p) for p in exc.problems]},
        ) from None
    except lifecycle.NotAllowed as exc:
        raise ApiProblem(403, str(exc)) from None
    except lifecycle.Refused as exc:
        raise ApiProblem(409, str(exc), extra={"cases": exc.cases} if exc.cases else None) from None


def _policy() -> lifecycle.Policy:
    return lifecycle.Policy.from_settings(app_state().settings)


def _problem(status: int, description: str) -> Any:
    """Document an error answer that may carry validation problems or failing cases."""
    return blp.alt_response(
        status,
        schema=RuleSetProblemSchema,
        content_type=PROBLEM_MIMETYPE,
        description=description,
    )


@blp.route("")
class RuleSets(MethodView):
    @require_role(*READ_ROLES)
    @blp.response(200, RuleSetListSchema)
    def get(self) -> dict[str, Any]:
        """Every kind with its active version (if any) and number of versions."""
        from api.ruleset_views import list_rulesets

        return {"items": list_rulesets()}


@blp.route("/<string:kind>")
class RuleSetByKind(MethodView):
    @require_role(*READ_ROLES)
    @blp.response(200, RuleSetSchema)
    @blp.problem(404, "unknown kind")
    def get(self, kind: str) -> dict[str, Any]:
        """One kind: its active version with the TOML source, every version, and the lifecycle
        events (drafted, proposed, approved, rejected, activated, rolled_back, retired)."""
        from api.ruleset_views import ruleset_overview

        with lifecycle_problems():
            return ruleset_overview(kind)


@blp.route("/<string:kind>/versions")
class Versions(MethodView):
    @require_role(*MOVE_ROLES["draft"])
    @blp.arguments(DraftSchema())
    @blp.response(201, VersionSchema)
    @_problem(
        422,
        "the TOML text or a template fails validation: every problem, with rule id, field "
        "and line, or template and line",
    )
    def post(self, body: dict[str, Any], kind: str) -> tuple[dict[str, Any], int, dict]:
        """Store TOML text as the next version of the kind, a draft, with its templates for a
        reminder version (given, or carried over from the active version). Nothing is stored
        when the text or a template fails validation."""
        with lifecycle_problems():
            draft = lifecycle.draft_version(
                kind, body["source"], body["note"], current_caller(), body.get("templates")
            )
        return draft, 201, {"Location": version_path(kind, draft["version"])}


@blp.route("/<string:kind>/versions/<int:version>")
class VersionByNumber(MethodView):
    @require_role(*READ_ROLES)
    @blp.arguments(VersionDetailArgsSchema(), location="query")
    @blp.response(200, VersionDetailSchema)
    @blp.problem(404, "unknown kind or version")
    def get(self, args: dict[str, Any], kind: str, version: int) -> dict[str, Any]:
        """Any version's exact TOML source, its templates (a reminder version's texts and
        company.toml: path and sha256, and the text with ?text=true) and its lifecycle
        events."""
        from api.ruleset_views import version_detail

        with lifecycle_problems():
            return version_detail(kind, version, template_text=args["text"])


@blp.route("/<string:kind>/versions/<int:version>/test")
class VersionTest(MethodView):
    @require_role(*MOVE_ROLES["test"])
    @blp.response(200, CaseRunSchema)
    @blp.problem(404, "unknown kind or version")
    def post(self, kind: str, version: int) -> dict[str, Any]:
        """Run the version's [[test]] cases and smoke test (in a subprocess): each case passed
        or failed, with expected and actual outcome fields."""
        with lifecycle_problems():
            return lifecycle.run_version_tests(kind, version, current_caller(), _policy())


@blp.route("/<string:kind>/versions/<int:version>/propose")
class VersionPropose(MethodView):
    @require_role(*MOVE_ROLES["propose"])
    @blp.arguments(MoveSchema(), required=False)
    @blp.response(200, VersionSchema)
    @blp.problem(404, "unknown kind or version")
    @_problem(409, "not a draft, or its [[test]] cases or smoke test fail")
    def post(self, body: dict[str, Any], kind: str, version: int) -> dict[str, Any]:
        """draft → proposed, once its [[test]] cases and the smoke test pass."""
        with lifecycle_problems():
            return lifecycle.propose_version(
                kind, version, current_caller(), _policy(), body.get("note")
            )


@blp.route("/<string:kind>/versions/<int:version>/approve")
class VersionApprove(MethodView):
    @require_role(*MOVE_ROLES["approve"])
    @blp.arguments(MoveSchema(), required=False)
    @blp.response(200, VersionSchema)
    @blp.problem(403, "four eyes: the key's owner drafted or proposed the version")
    @blp.problem(404, "unknown kind or version")
    @blp.problem(409, "not a proposed version")
    def post(self, body: dict[str, Any], kind: str, version: int) -> dict[str, Any]:
        """proposed → approved, by another person than the one who drafted and proposed it
        (four eyes compares the keys' owners)."""
        with lifecycle_problems():
            return lifecycle.approve_version(
                kind, version, current_caller(), _policy(), body.get("note")
            )


@blp.route("/<string:kind>/versions/<int:version>/reject")
class VersionReject(MethodView):
    @require_role(*MOVE_ROLES["reject"])
    @blp.arguments(MoveSchema(), required=False)
    @blp.response(200, VersionSchema)
    @blp.problem(404, "unknown kind or version")
    @blp.problem(409, "not a proposed version")
    def post(self, body: dict[str, Any], kind: str, version: int) -> dict[str, Any]:
        """proposed → rejected."""
        with lifecycle_problems():
            return lifecycle.reject_version(kind, version, current_caller(), body.get("note"))


@blp.route("/<string:kind>/versions/<int:version>/activate")
class VersionActivate(MethodView):
    @require_role(*MOVE_ROLES["activate"])
    @blp.arguments(ActivateSchema(), required=False)
    @blp.response(200, VersionSchema)
    @blp.problem(404, "unknown kind or version")
    @blp.problem(409, "not approved or retired, already active, or a rollback without a note")
    @blp.problem(422, "`at` malformed or not in the future")
    def post(self, body: dict[str, Any], kind: str, version: int) -> dict[str, Any]:
        """approved, retired or challenger → active; the active version is retired in the same
        transaction and every API worker decides with the new one within
        api.ruleset_refresh_seconds. Activating a retired version or one older than the active
        one is a rollback: give a note saying why. Activating the challenger promotes it, and
        activating any version ends the kind's experiment. With `at`, an approved version
        becomes active at that time, with nobody present (a pending activation, listed in the
        rule set and cancellable with …/cancel)."""
        with lifecycle_problems():
            return lifecycle.activate_version(
                kind, version, current_caller(), body.get("note"), body.get("at")
            )


@blp.route("/<string:kind>/versions/<int:version>/test-cases")
class VersionTestCases(MethodView):
    @require_role(*MOVE_ROLES["draft"])
    @blp.arguments(PinRequestSchema())
    @blp.response(201, PinnedDraftSchema)
    @blp.problem(404, "unknown kind, version or decision")
    @_problem(409, "the case fails on the version: it decides the decision otherwise")
    def post(self, body: dict[str, Any], kind: str, version: int) -> tuple[Any, int, dict]:
        """A new draft: this version with a [[test]] case pinning a stored decision (its facts
        and outcome) appended, once the case passes on it."""
        from api.decision_tests import add_test_to_draft

        with lifecycle_problems():
            draft = add_test_to_draft(
                kind,
                version,
                body["decision_id"],
                current_caller(),
                _policy(),
                name=body.get("name"),
                note=body.get("note"),
            )
        return draft, 201, {"Location": version_path(kind, draft["version"])}


@blp.route("/<string:kind>/diff")
class VersionDiff(MethodView):
    @require_role(*READ_ROLES)
    @blp.arguments(DiffArgsSchema(), location="query")
    @blp.response(200, DiffSchema)
    @blp.problem(404, "unknown kind or version")
    def get(self, args: dict[str, Any], kind: str) -> dict[str, Any]:
        """What changed from version `from` to version `to`: rules added, removed and changed
        field by field; outcome fields, values and defaults; firing order; test cases."""
        from api.ruleset_views import diff_versions

        with lifecycle_problems():
            return diff_versions(kind, args["first"], args["last"])


def init_app(api: Api) -> None:
    """Register the rule-set endpoints."""
    api.register_blueprint(blp)
