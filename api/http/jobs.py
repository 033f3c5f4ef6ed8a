"""Jobs over HTTP: GET /v1/jobs/{id}, and starting one for the endpoints that answer with a job.

A job (api.jobs) runs in a detached `credo jobs work` process with the app's settings passed as
CREDO_* variables, so no request waits for it and it outlives the web worker that started it:
the starting request answers 202 `{job_id, state}` and the caller polls GET /v1/jobs/{id}.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from flask import url_for
from flask.views import MethodView

from api.http.auth import current_caller, require_role
from api.http.errors import ApiProblem
from api.http.smorest import Api, Blueprint
from storage.jobs import JOB_STATES

blp = Blueprint(
    "jobs",
    __name__,
    url_prefix="/v1/jobs",
    description="Jobs (simulations, backtests, large verifications)",
)

_NULLABLE = {"required": True, "allow_none": True}
_JOB_ID = re.compile(r"[0-9a-f-]{36}")


class JobStartedSchema(ma.Schema):
    job_id = ma.fields.String(required=True)
    state = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(JOB_STATES),
        metadata={"description": "queued, or already running"},
    )


class JobSchema(ma.Schema):
    """A job: what it was asked to do and, once finished, its result."""

    job_id = ma.fields.String(required=True)
    type = ma.fields.String(
        required=True, metadata={"description": "simulate, backtest, audit-verify"}
    )
    state = ma.fields.String(required=True, validate=ma.validate.OneOf(JOB_STATES))
    params = ma.fields.Dict(required=True, metadata={"description": "what the job was given"})
    progress = ma.fields.Dict(
        required=True, metadata={"description": "{done, total} while it runs; {} before"}
    )
    result = ma.fields.Dict(
        **_NULLABLE, metadata={"description": "the job type's result once finished"}
    )
    error = ma.fields.String(**_NULLABLE, metadata={"description": "why it failed"})
    created_by = ma.fields.String(required=True)
    created_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    started_at = ma.fields.String(**_NULLABLE, metadata={"format": "date-time"})
    finished_at = ma.fields.String(**_NULLABLE, metadata={"format": "date-time"})


def started(job: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The 202 answer for a job just started, with the job's Location."""
    location = url_for("jobs.JobById", job_id=job["job_id"])
    return {"job_id": job["job_id"], "state": job["state"]}, 202, {"Location": location}


def caller_name() -> str:
    """Who a job started by this request is recorded as created by."""
    return f"api:{current_caller().name}"


@blp.route("/<string:job_id>")
class JobById(MethodView):
    @require_role("analyst", "auditor")
    @blp.response(200, JobSchema)
    @blp.problem(404, "no such job")
    def get(self, job_id: str) -> dict[str, Any]:
        """One job: its state (queued, running, finished, failed), progress, and its result
        once finished or the reason it failed."""
        from storage.jobs import get_job

        job = get_job(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise ApiProblem(404, f"no job {job_id[:80]!r}")
        return job


def init_app(api: Api) -> None:
    """Register the job endpoints."""
    api.register_blueprint(blp)
