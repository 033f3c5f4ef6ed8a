"""Simulate and backtest a stored rule-set version over HTTP, as jobs (SPEC §6):

POST /v1/rulesets/{kind}/versions/{version}/simulate  {as_of?, sample?, seed?}
POST /v1/rulesets/{kind}/versions/{version}/backtest  {from, to}

Both check what they can at once (the version exists, an active version to compare with, the
parameters) and answer 202 `{job_id, state}`; the result comes from GET /v1/jobs/{id}. The
results are those of `credo rules simulate|backtest KIND VERSION --json` (api.simulation,
api.backtest). Nothing from either enters the decision trail.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.http import jobs
from api.http.auth import require_role
from api.http.decisions import today
from api.http.errors import ApiProblem
from api.http.jobs import JobStartedSchema
from api.http.smorest import Api, Blueprint
from api.intake.schemas import Day
from api.simulation import DEFAULT_SEED, MAX_SAMPLE, MAX_SEED

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


def _candidate_and_active(kind: str, version: int, need_active: bool) -> None:
    """404 for an unknown kind or version; 409 without an active version to compare with, or
    for a stored version today's validator refuses."""
    from api.simulation import (
        InvalidVersion,
        NoActiveVersion,
        UnknownVersion,
        active_version,
        stored_candidate,
    )

    try:
        stored_candidate(kind, version)
        if need_active:
            active_version(kind)
    except UnknownVersion as exc:
        raise ApiProblem(404, str(exc)) from exc
    except (NoActiveVersion, InvalidVersion) as exc:
        raise ApiProblem(409, str(exc)) from exc


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
        number = _version_number(kind, version)
        _candidate_and_active(kind, number, need_active=True)
        params = {
            "kind": kind,
            "version": number,
            "as_of": (body.get("as_of") or today()).isoformat(),
            "sample": body.get("sample"),
            "seed": DEFAULT_SEED if body.get("seed") is None else body["seed"],
        }
        return jobs.start("simulate", params)


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
        number = _version_number(kind, version)
        _candidate_and_active(kind, number, need_active=False)
        params = {
            "kind": kind,
            "version": number,
            "from": body["first"].isoformat(),
            "to": body["last"].isoformat(),
        }
        return jobs.start("backtest", params)


def init_app(api: Api) -> None:
    """Register the simulation and backtest endpoints."""
    api.register_blueprint(blp)
