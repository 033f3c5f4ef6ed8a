"""Simulate and backtest a stored rule-set version over HTTP, as jobs (SPEC §6):

POST /v1/rulesets/{kind}/versions/{version}/simulate  {as_of?, sample?, seed?}
POST /v1/rulesets/{kind}/versions/{version}/backtest  {from, to}

Both check what they can at once (the version exists, an active version to compare with, the
parameters) and answer 202 `{job_id, state}`; the result comes from GET /v1/jobs/{id}. The
results are those of `credo rules simulate|backtest KIND VERSION --json` (api.simulation,
api.backtest). Nothing from either enters the decision trail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.http import jobs
from api.http.auth import require_role
from api.http.context import app_state
from api.http.decisions import today
from api.http.errors import ApiProblem
from api.http.jobs import JobStartedSchema
from api.http.smorest import Api, Blueprint
from api.intake.schemas import Day
from api.simulation import MAX_SAMPLE, MAX_SEED, SimulationError

blp = Blueprint(
    "simulations",
    __name__,
    url_prefix="/v1/rulesets",
    description="Simulate and backtest a rule-set version (jobs)",
)


def _whole(minimum: int, maximum: int, description: str, **kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(minimum, maximum),
        metadata={"description": description},
        **kwargs,
    )


class SimulateSchema(ma.Schema):
    """POST …/simulate (the body may be left out)."""

    as_of = Day(metadata={"description": "date the facts are derived as of (default: today)"})
    sample = _whole(
        1, MAX_SAMPLE, "evaluate this many customers chosen by seed (default: every customer)"
    )
    seed = _whole(
        0, MAX_SEED, "picks the sample: the same seed, the same customers", load_default=None
    )


class BacktestSchema(ma.Schema):
    """POST …/backtest: the period of the decisions replayed (creation dates, UTC)."""

    first = Day(data_key="from", required=True, metadata={"description": "first day, included"})
    last = Day(data_key="to", required=True, metadata={"description": "last day, included"})

    @ma.validates_schema
    def _ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data["first"] > data["last"]:
            raise ma.ValidationError("must be on or before to", "from")


def _version_number(kind: str, version: str) -> int:
    """The path's version as a number; 404 when it is not one (1, 2, …)."""
    if not (version.isascii() and version.isdigit()) or len(version) > 10:
        raise ApiProblem(404, f"rule set {kind[:64]} has no version {version[:40]!r}")
    return int(version)


def _start(start: Callable[..., dict[str, Any]], *args: Any) -> Any:
    """Start a job through its use case (api.simulation, api.backtest): 202 with the job; 404
    for an unknown kind or version; 409 without an active version to compare with, or for a
    stored version today's validator refuses; 422 for parameters out of range."""
    from api.jobs import JobError
    from api.simulation import BadParameters, UnknownVersion

    try:
        job = start(app_state().settings, *args, jobs.caller_name())
    except UnknownVersion as exc:
        raise ApiProblem(404, str(exc)) from exc
    except BadParameters as exc:
        raise ApiProblem(422, "parameters out of range", errors=exc.errors) from exc
    except SimulationError as exc:  # NoActiveVersion, InvalidVersion
        raise ApiProblem(409, str(exc)) from exc
    except JobError as exc:
        raise ApiProblem(500, str(exc)) from exc
    return jobs.started(job)


# `version` is taken as text and checked here: a path whose version is no number is a 404 like
# an unknown version, not a routing miss.
@blp.route("/<string:kind>/versions/<string:version>/simulate")
class Simulate(MethodView):
    @require_role("analyst")
    @blp.arguments(SimulateSchema(), required=False)
    @blp.response(202, JobStartedSchema)
    @blp.problem(404, "no such rule-set kind or version")
    @blp.problem(409, "no active version to compare with, or a version that does not validate")
    def post(self, body: dict[str, Any], kind: str, version: str) -> Any:
        """Simulate a version on the stored customers beside the active version: a job.

        Every customer (or a seeded sample) is evaluated as of a date by both versions; the
        job's result has, per outcome field, the from→to matrix with the customers' open and
        overdue balances per currency, and the customers whose outcome changes (the first 100
        by id, and their count). Nothing is stored but the job.
        """
        from api.simulation_jobs import start_simulation

        number = _version_number(kind, version)
        as_of = body.get("as_of") or today()
        return _start(start_simulation, kind, number, as_of, body.get("sample"), body.get("seed"))


@blp.route("/<string:kind>/versions/<string:version>/backtest")
class Backtest(MethodView):
    @require_role("analyst")
    @blp.arguments(BacktestSchema())
    @blp.response(202, JobStartedSchema)
    @blp.problem(404, "no such rule-set kind or version")
    @blp.problem(409, "a stored version that does not validate today")
    def post(self, body: dict[str, Any], kind: str, version: str) -> Any:
        """Replay a version over the stored decisions of its kind made in a period: a job.

        Each decision created from `from` to `to` (UTC dates, both included) is evaluated on
        the facts it stored; the job's result lists those decided differently (the first 100
        by seq, and their count) with old and new outcome and reasons, and the from→to matrix
        with money per currency.
        """
        from api.simulation_jobs import start_backtest

        number = _version_number(kind, version)
        return _start(start_backtest, kind, number, body["first"], body["last"])


def init_app(api: Api) -> None:
    """Register the simulation and backtest endpoints."""
    api.register_blueprint(blp)
