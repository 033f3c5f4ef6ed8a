"""Starting a prepared run in a detached `credo run --run-id` process, for POST /v1/runs.

The process gets the app's settings as CREDO_* variables (paths made absolute), writes its
output to <data_dir>/logs/run-<run_id>.log and outlives the web worker. Before answering, the
request waits until the process has taken the run lock: `execute_run` clears the run's error
once it holds the lock, so the request marks the run first and waits for the mark to go. If
the process exits without taking the lock (another run took it in the meantime), the run is
marked failed with the reason and the request answers 409; a later start resumes the run.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import fields
from datetime import date
from pathlib import Path

from api.http.errors import ApiProblem
from api.settings import PROJECT_ROOT, Settings

log = logging.getLogger("credo.api.runs")

STARTING = "starting: waiting for the run process to take the run lock"
START_TIMEOUT_SECONDS = 30.0
LOCK_BUSY = "another run is in progress"


def check_run_lock() -> None:
    """409 when another run holds the run lock now (taken and released at once otherwise)."""
    from storage.nightly import RunBusy, owner_id, run_lock

    try:
        with run_lock(f"{owner_id()}:api-check", ttl_seconds=10):
            pass
    except RunBusy as exc:
        raise ApiProblem(
            409, f"{exc}; nothing was started: try again when it has finished (GET /v1/runs)"
        ) from exc


def child_env(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting of `settings` as a CREDO_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDO_") or k == "CREDO_CONFIG"}
    for section in fields(settings):
        values = getattr(settings, section.name)
        if section.name == "base_dir":
            continue
        for item in fields(values):
            env[f"CREDO_{section.name}_{item.name}".upper()] = str(getattr(values, item.name))
    env["CREDO_DATABASE_URL"] = settings.database_url
    env["CREDO_PATHS_DATA_DIR"] = str(settings.data_dir)
    env["CREDO_PATHS_RULES_DIR"] = str(settings.rules_dir)
    # `-m api` must import this very code, from whatever directory the app was started in.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    return env


def launch_run(settings: Settings, run_id: str, as_of: date) -> str:
    """Execute the prepared run `run_id` in a detached process; the run's state once that
    process holds the run lock (or has ended). ApiProblem 409 when another run took the lock
    first, 500 when the process failed to start the run."""
    from storage.runs import Run

    # Marked per launch: the reaper of an earlier launch that failed must not mark this one.
    starting = f"{STARTING} (launch {uuid.uuid4().hex[:8]})"
    Run.update(error=starting).where(Run.run_id == run_id).execute()
    log_path = _log_path(settings, run_id)
    command = [sys.executable, "-m", "api", "run", "--run-id", run_id, "--as-of", str(as_of)]
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            command,
            env=child_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not stopped by a signal sent to the web server's group
        )
    except OSError as exc:
        _mark_not_started(run_id, starting, f"could not start {command[0]}: {exc}")
        raise ApiProblem(500, f"could not start the run process: {exc}") from exc
    finally:
        if log_path:
            output.close()
    answered = threading.Event()
    reaper = threading.Thread(target=_reap, args=(process, run_id, starting, log_path, answered))
    reaper.daemon = True
    reaper.start()
    try:
        return _wait_started(process, run_id, starting, log_path)
    finally:
        answered.set()


def _log_path(settings: Settings, run_id: str) -> Path | None:
    folder = settings.data_dir / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("run %s: no log file (%s)", run_id, exc)
        return None
    return folder / f"run-{run_id}.log"


def _wait_started(
    process: subprocess.Popen, run_id: str, starting: str, log_path: Path | None
) -> str:
    from storage.worklist import get_run

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        code = process.poll()
        run = get_run(run_id)
        if run.error != starting:
            return run.state
        if code is not None:
            reason = _tail(log_path) or f"the run process exited with code {code}"
            _mark_not_started(run_id, starting, reason)
            status = 409 if LOCK_BUSY in reason else 500
            raise ApiProblem(status, f"run {run_id} not started: {reason}")
        time.sleep(0.05)
    log.warning("run %s: its process has not taken the run lock yet", run_id)
    return get_run(run_id).state


def _reap(
    process: subprocess.Popen,
    run_id: str,
    starting: str,
    log_path: Path | None,
    answered: threading.Event,
) -> None:
    """Wait for the run process (no zombie is left); record a start that never happened,
    when the request that started it has stopped waiting."""
    code = process.wait()
    answered.wait()
    if code == 0:
        return
    log.warning("run %s: process exited with code %s (log: %s)", run_id, code, log_path)
    from storage.db import database

    try:
        with database.connection_context():
            _mark_not_started(run_id, starting, _tail(log_path) or f"exit code {code}")
    except Exception:  # noqa: BLE001 - the app may be gone; the log has the details
        log.warning("run %s: could not record its exit", run_id, exc_info=True)


def _mark_not_started(run_id: str, starting: str, reason: str) -> None:
    """Mark the run failed with `reason` if the process of the launch marked `starting` never
    took the lock (resumable); a later launch of the same run is left alone."""
    from storage.runs import Run

    Run.update(state="failed", error=f"not started: {reason}"[:2000]).where(
        (Run.run_id == run_id) & (Run.error == starting)
    ).execute()


def _tail(log_path: Path | None) -> str:
    """The last non-empty line the run process wrote."""
    if log_path is None:
        return ""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")[:500]
