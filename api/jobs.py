"""Jobs: work too long for a request, started by one and run by a process of its own.

`start_job` stores a queued job and launches `credo jobs work JOB_ID` detached (it outlives
the web worker, which is never held up); that process calls `run_job`, which runs the job
type's function and stores its result or why it failed. A request then polls GET /v1/jobs/{id}.

A job type is a function `(settings, params, progress) -> result` (JSON values), registered in
JOB_TYPES by its dotted path: `progress(done, total)` may be called as it goes. Parameters are
checked by the face that starts the job, before it is stored.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from api.process_logs import last_line, log_file
from api.settings import Settings

log = logging.getLogger("credo.jobs")

JobFunction = Callable[[Settings, dict[str, Any], Callable[[int, int], None]], dict[str, Any]]
JOB_TYPES: dict[str, str] = {
    "simulate": "api.simulation:simulate_job",
    "backtest": "api.backtest:backtest_job",
    "audit-verify": "api.audit_chain:verify_job",
}
PROGRESS_EVERY_SECONDS = 1.0


class JobError(Exception):
    """A job cannot be started or run (unknown type, not queued, process not started)."""


def job_function(job_type: str) -> JobFunction:
    """The function registered for `job_type`; JobError for an unknown type."""
    path = JOB_TYPES.get(job_type)
    if path is None:
        raise JobError(f"unknown job type {job_type!r}; known: {', '.join(sorted(JOB_TYPES))}")
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def start_job(
    job_type: str,
    params: dict[str, Any],
    created_by: str,
    *,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Store a queued job and launch the process that runs it; return the job.

    `env` is the process's environment (the settings it runs with, as CREDO_* variables);
    its output goes to `log_dir`/job-<id>.log. Should the process end without finishing the
    job, the job is marked failed with the log's last line. JobError when it cannot start.
    """
    from storage.jobs import create_job, fail_job, get_job

    job_function(job_type)
    job = create_job(job_type, params, created_by)
    job_id = job["job_id"]
    log_path = log_file(log_dir, f"job-{job_id}")
    command = [sys.executable, "-m", "api", "jobs", "work", job_id]
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            command,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not stopped by a signal sent to the web server's group
        )
    except OSError as exc:
        fail_job(job_id, f"could not start the job process: {exc}")
        raise JobError(f"could not start the job process: {exc}") from exc
    finally:
        if log_path:
            output.close()
    reaper = threading.Thread(target=_reap, args=(process, job_id, log_path), daemon=True)
    reaper.start()
    return get_job(job_id) or job


def launch_job(
    settings: Settings, job_type: str, params: dict[str, Any], created_by: str
) -> dict[str, Any]:
    """`start_job` with `settings` passed to the process as CREDO_* variables and its output
    in <data_dir>/logs: how the API and the console start a job."""
    from api.settings import child_env

    env, log_dir = child_env(settings), settings.data_dir / "logs"
    return start_job(job_type, params, created_by, env=env, log_dir=log_dir)


def run_job(settings: Settings, job_id: str) -> dict[str, Any]:
    """Run the queued job `job_id` here: running, then finished with its result or failed
    with the reason. Returns the job. JobError when it is not queued."""
    from storage.jobs import fail_job, finish_job, get_job, record_progress, take_job

    job = get_job(job_id)
    if job is None:
        raise JobError(f"no job {job_id!r}")
    if not take_job(job_id):
        raise JobError(f"job {job_id} is {job['state']}, not queued: it runs once")
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        if done >= total or time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
            last = time.monotonic()
            record_progress(job_id, done, total)

    try:
        result = job_function(job["type"])(settings, job["params"], progress)
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, job["type"])
        fail_job(job_id, _describe(exc))
    except BaseException:
        fail_job(job_id, "interrupted")
        raise
    else:
        finish_job(job_id, result)
    return get_job(job_id) or job


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if type(exc).__module__.startswith("api.") else f"{type(exc).__name__}: {text}"


def _reap(process: subprocess.Popen, job_id: str, log_path: Path | None) -> None:
    """Wait for the job's process (no zombie is left); a job it left unfinished is failed."""
    code = process.wait()
    if code == 0:
        return
    from storage.db import database
    from storage.jobs import fail_job

    reason = last_line(log_path) or f"the job process exited with code {code}"
    try:
        with database.connection_context():
            if fail_job(job_id, reason):
                log.warning("job %s: process exited with code %s (log: %s)", job_id, code, log_path)
    except Exception:  # noqa: BLE001 - the app may be gone; the log has the details
        log.warning("job %s: could not record its exit", job_id, exc_info=True)
