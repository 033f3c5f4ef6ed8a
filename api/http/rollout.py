"""Rolling rule changes out over HTTP (issue 17): pending activations and champion/challenger.

POST …/versions/{version}/activate with {"at"}     a pending activation (api/http/rulesets.py)
POST /v1/rulesets/{kind}/versions/{version}/cancel   cancel it, saying why
POST /v1/rulesets/{kind}/versions/{version}/challenge   the version decides for a share
POST /v1/rulesets/{kind}/experiment/stop             end the experiment (the challenger stays
                                                      approved)
GET  /v1/rulesets/{kind}/experiment                  the arms compared (api.experiment)

Each view calls the use case the `credo rules` commands call (api.rollout, api.experiment);
refusals become problem+json as for the other lifecycle moves.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api import rollout
from api.http.auth import current_caller, require_role
from api.http.context import app_state
from api.http.rollout_schemas import (
    CancelSchema,
    ChallengerSchema,
    ChallengeSchema,
    ExperimentArgsSchema,
    ExperimentReportSchema,
    ExperimentSchema,
    StopSchema,
)
from api.http.ruleset_schemas import VersionSchema
from api.http.rulesets import lifecycle_problems
from api.http.smorest import Api, Blueprint
from api.lifecycle import MOVE_ROLES, READ_ROLES, Policy

blp = Blueprint("rollout", __name__, url_prefix="/v1/rulesets", description="Rule sets")


@blp.route("/<string:kind>/versions/<int:version>/cancel")
class VersionCancel(MethodView):
    @require_role(*MOVE_ROLES["cancel"])
    @blp.arguments(CancelSchema())
    @blp.response(200, VersionSchema)
    @blp.problem(404, "unknown kind or version")
    @blp.problem(409, "the version has no pending activation")
    def post(self, body: dict[str, Any], kind: str, version: int) -> dict[str, Any]:
        """Cancel the version's pending activation (`activate` with `at`), saying why; it stays
        approved."""
        with lifecycle_problems():
            return rollout.cancel_activation(kind, version, current_caller(), body["note"])


@blp.route("/<string:kind>/versions/<int:version>/challenge")
class VersionChallenge(MethodView):
    @require_role(*MOVE_ROLES["challenge"])
    @blp.arguments(ChallengeSchema())
    @blp.response(200, ChallengerSchema)
    @blp.problem(403, "four eyes: the key's owner drafted or proposed the version")
    @blp.problem(404, "unknown kind or version")
    @blp.problem(409, "not approved, a challenger already runs, or no active version")
    def post(self, body: dict[str, Any], kind: str, version: int) -> dict[str, Any]:
        """approved → challenger: the version decides for `share` percent of the stored
        customers (the same customers for the whole experiment, chosen by a hash of the
        experiment and customer ids) beside the active version, which decides for the rest and
        for decisions from given facts. Four eyes as for an approval. Activating the challenger
        promotes it; activating another version, or `…/experiment/stop`, ends the
        experiment."""
        policy = Policy.from_settings(app_state().settings)
        with lifecycle_problems():
            return rollout.start_challenger(
                kind, version, body["share"], current_caller(), policy, body["note"]
            )


@blp.route("/<string:kind>/experiment/stop")
class ExperimentStop(MethodView):
    @require_role(*MOVE_ROLES["challenge"])
    @blp.arguments(StopSchema())
    @blp.response(200, ExperimentSchema)
    @blp.problem(409, "no challenger to stop")
    def post(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        """End the kind's experiment: its challenger goes back to approved and every decision
        uses the active version again."""
        with lifecycle_problems():
            return rollout.stop_challenger(kind, current_caller(), body["note"])


@blp.route("/<string:kind>/experiment")
class ExperimentReport(MethodView):
    @require_role(*READ_ROLES)
    @blp.arguments(ExperimentArgsSchema(), location="query")
    @blp.response(200, ExperimentReportSchema)
    @blp.problem(404, "unknown kind, or no experiment")
    def get(self, args: dict[str, Any], kind: str) -> dict[str, Any]:
        """The arms of the kind's experiment compared over the same period: customers,
        outcomes by value, and the share of the overdue balance (at decision time) paid within
        14 and 30 days, with the counts behind each figure and a two-proportion test."""
        from api.experiment import compare_arms

        with lifecycle_problems():
            return compare_arms(kind, args.get("experiment"))


def init_app(api: Api) -> None:
    """Register the rollout endpoints."""
    api.register_blueprint(blp)
