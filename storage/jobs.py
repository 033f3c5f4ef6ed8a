"""Jobs: work too long for a request (a simulation, a backtest), run by a process of its own.

A job is stored queued with its type and parameters, taken by one worker process (queued →
running, a conditional update, so two processes never run one job), and ends finished with its
result or failed with the reason. Its progress is stored while it runs, for GET /v1/jobs/{id}.
What a job type does lives in api.jobs; storage records the moves. Table made by migration 12.
"""

from __future__ import annotations

import uuid
from typing import Any

import peewee as pw

from storage.models import ID_LENGTH, BaseModel, JSONField, UtcDateTimeField, now_utc

JOB_STATES = ("queued", "running", "finished", "failed")
MAX_ERROR_LENGTH = 2000


class Job(BaseModel):
    job_id = pw.CharField(max_length=ID_LENGTH, primary_key=True)
    type = pw.CharField(max_length=32)
    state = pw.CharField(max_length=16, default="queued")
    params = JSONField(default=dict)
    result = JSONField(null=True)
    error = pw.TextField(default="")
    progress = JSONField(default=dict)  # {"done": n, "total": n} while it runs
    created_by = pw.CharField(max_length=200)
    created_at = UtcDateTimeField()
    started_at = UtcDateTimeField(null=True)
    finished_at = UtcDateTimeField(null=True)


def job_to_json(job: Job) -> dict[str, Any]:
    """A job as JSON values (timestamps ISO 8601 UTC; error null unless it failed)."""
    return {
        "job_id": job.job_id,
        "type": job.type,
        "state": job.state,
        "params": job.params,
        "progress": job.progress,
        "result": job.result,
        "error": job.error or None,
        "created_by": job.created_by,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def create_job(job_type: str, params: dict[str, Any], created_by: str) -> dict[str, Any]:
    """Store a new queued job; return it."""
    job = Job.create(
        job_id=str(uuid.uuid4()),
        type=job_type,
        params=params,
        created_by=created_by[:200],
        created_at=now_utc(),
    )
    return job_to_json(job)


def get_job(job_id: str) -> dict[str, Any] | None:
    """One job, or None when there is no such job."""
    job = Job.get_or_none(Job.job_id == job_id)
    return job_to_json(job) if job else None


def take_job(job_id: str) -> bool:
    """Move a queued job to running; False when it is not queued (taken already, or gone)."""
    query = Job.update(state="running", started_at=now_utc()).where(
        (Job.job_id == job_id) & (Job.state == "queued")
    )
    return query.execute() == 1


def record_progress(job_id: str, done: int, total: int) -> None:
    """Store how far a running job has come."""
    Job.update(progress={"done": done, "total": total}).where(
        (Job.job_id == job_id) & (Job.state == "running")
    ).execute()


def finish_job(job_id: str, result: dict[str, Any]) -> None:
    """A running job is done: store its result."""
    Job.update(state="finished", result=result, finished_at=now_utc()).where(
        (Job.job_id == job_id) & (Job.state == "running")
    ).execute()


def fail_job(job_id: str, error: str) -> bool:
    """Mark a job that has not ended failed with `error`; False when it had ended already."""
    query = Job.update(
        state="failed", error=error[:MAX_ERROR_LENGTH] or "failed", finished_at=now_utc()
    ).where((Job.job_id == job_id) & Job.state.in_(("queued", "running")))
    return query.execute() == 1
