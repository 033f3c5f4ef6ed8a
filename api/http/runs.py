"""Nightly runs over HTTP: start one now, read run reports, collect the worklist (SPEC §6, §8).

`POST /v1/runs` starts a detached `credo run` process with the app's settings passed as CREDO_*
variables (api.http.run_launch), so a run outlives the web worker that started it and never
ties one up. That process takes the run lock and claims the date's run, like every starter:
the answer is 202 with the run it claimed (an integrator then polls `GET /v1/runs/{id}`), 200
when the date's run had finished, or 409 when another run holds the lock — then nothing was
started or made: one run at a time, the caller tries later.
"""

from __future__ import annotations

from typing import Any

from flask import Response, stream_with_context, url_for
from flask.views import MethodView

from api.http import run_launch
from api.http.auth import current_caller, require_role
from api.http.context import app_state
from api.http.decisions import json_response, today
from api.http.errors import ApiProblem
from api.http.run_schemas import (
    ActionListArgsSchema,
    ActionPageSchema,
    RunListArgsSchema,
    RunPageSchema,
    RunSchema,
    RunStartedSchema,
    RunStartSchema,
)
from api.http.smorest import Api, Blueprint
from api.run_views import find_run, run_json, runs_page, worklist_csv, worklist_page

blp = Blueprint("runs", __name__, url_prefix="/v1/runs", description="Nightly runs and worklist")


def _find_run(run_id: str) -> Any:
    run = find_run(run_id)
    if run is None:
        raise ApiProblem(404, f"no run {run_id!r}")
    return run


def _check_limit(limit: int) -> None:
    max_page = app_state().settings.api.max_page_size
    if limit > max_page:
        raise ApiProblem(
            422, "", errors={"limit": [f"must be at most {max_page} (api.max_page_size)"]}
        )


@blp.route("")
class Runs(MethodView):
    @require_role("admin")
    @blp.arguments(RunStartSchema(), required=False)
    @blp.response(202, RunStartedSchema)
    @blp.alt_response(
        200, schema=RunSchema, description="the date's run had finished already (force: rerun)"
    )
    @blp.problem(409, "another run is in progress, or no rule set is active")
    @blp.problem(500, "the run process could not be started (the detail says why)")
    def post(self, body: dict[str, Any]) -> Any:
        """Start the run of a date now (default today), or resume its unfinished run.

        Answers 202 once the run's process holds the run lock and has claimed the run; poll
        GET /v1/runs/{run_id}.
        A date whose run finished is left alone (200 with that run) unless force is true,
        which makes a new attempt. Only one run at a time: 409 while another is in progress.
        """
        from storage.nightly import latest_run

        settings = app_state().settings
        as_of = body.get("as_of") or today()
        force = body.get("force", False)
        done = latest_run(as_of)
        if done is not None and done.state == "finished" and not force:
            return json_response(run_json(done))
        claimed = run_launch.launch_run(settings, as_of, force, f"api:{current_caller().name}")
        if claimed["start"] == "finished":  # finished in the meantime
            return json_response(run_json(_find_run(claimed["run_id"])))
        started = {
            "run_id": claimed["run_id"],
            "as_of": as_of.isoformat(),
            "state": claimed["state"],
        }
        location = url_for("runs.RunById", run_id=claimed["run_id"])
        return {**started, "start": claimed["start"]}, 202, {"Location": location}

    @require_role("decide", "auditor")
    @blp.arguments(RunListArgsSchema(), location="query")
    @blp.response(200, RunPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Runs with their reports, newest first; follow next_before for older ones."""
        from storage.worklist import run_to_json

        _check_limit(args["limit"])
        runs, next_before = runs_page(args["limit"], args.get("before"))
        return {
            "items": [run_to_json(r) for r in runs],
            "next_before": next_before.isoformat() if next_before else None,
        }


@blp.route("/<string:run_id>")
class RunById(MethodView):
    @require_role("decide", "auditor")
    @blp.response(200, RunSchema)
    @blp.problem(404, "no such run")
    def get(self, run_id: str) -> dict[str, Any]:
        """One run: state, report (customers_evaluated, errors, counts, changes, portfolio
        figures) once finished, and progress."""
        return run_json(_find_run(run_id))


@blp.route("/<string:run_id>/actions")
class RunActions(MethodView):
    @require_role("decide", "auditor")
    @blp.arguments(ActionListArgsSchema(), location="query")
    @blp.response(
        200,
        ActionPageSchema,
        description="a page of actions (format=json), or every matching action as CSV with a "
        "header row (format=csv)",
    )
    @blp.doc(responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    @blp.problem(404, "no such run")
    def get(self, args: dict[str, Any], run_id: str) -> Any:
        """The run's worklist: reminders to send (with their message), plan offers, hand-offs,
        credit reviews; filter by type and state (pending, acknowledged, failed, void)."""
        from storage.worklist import action_to_json

        run = _find_run(run_id)
        after = int(args.get("cursor") or 0)
        if args["format"] == "csv":
            rows = worklist_csv(run.run_id, args.get("type"), args.get("state"), after)
            return Response(
                stream_with_context(rows),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="actions-{run.as_of}.csv"'},
            )
        limit = args["limit"]
        _check_limit(limit)
        page, next_cursor = worklist_page(
            run.run_id, args.get("type"), args.get("state"), after, limit
        )
        return {
            "items": [action_to_json(a) for a in page],
            "next_cursor": str(next_cursor) if next_cursor is not None else None,
        }


def init_app(api: Api) -> None:
    """Register the run endpoints."""
    api.register_blueprint(blp)
