"""Starting a run in a detached `credo run` process, for POST /v1/runs.

The process gets the app's settings as CREDO_* variables (paths made absolute), writes its
output to <data_dir>/logs/run-<as_of>.log and outlives the web worker. It takes the run lock
and claims the date's run itself (resumes it, or makes it), as every starter does, so a request
never makes a run that another process then has to find: it tells the request which run it
claimed, or why it claimed none (another run holds the lock, no rule set is active), as one
JSON line on a pipe, and then works the run.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from api.http.errors import ApiProblem
from api.process_logs import last_line, log_file
from api.settings import Settings, child_env

log = logging.getLogger("credo.api.runs")

# The process claims the run in a second or two (imports, the lock, one row), a minute at most
# on a machine under load.
START_TIMEOUT_SECONDS = 60.0


def launch_run(settings: Settings, as_of: date, force: bool, requested_by: str) -> dict[str, Any]:
    """Start `credo run` for `as_of` in a detached process and return what it claimed:
    {"run_id", "start": "new" | "resume" | "finished", "state"}. ApiProblem 409 when it
    claimed nothing because another run holds the lock or no rule set is active (nothing was
    started), 500 when the process failed otherwise (the detail quotes its last words)."""
    log_path = log_file(settings.data_dir / "logs", f"run-{as_of}")
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "api", "run", "--as-of", str(as_of)]
    # As a JSON string: ASCII whatever the key's name holds (a NUL cannot be an argument).
    command += ["--requested-by", json.dumps(requested_by), "--announce-fd", str(write_end)]
    command += ["--force"] if force else []
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            command,
            env=child_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            start_new_session=True,  # not stopped by a signal sent to the web server's group
        )
    except OSError as exc:
        os.close(read_end)
        raise ApiProblem(500, f"could not start the run process: {exc}") from exc
    finally:
        os.close(write_end)
        if log_path:
            output.close()
    threading.Thread(target=_reap, args=(process, as_of, log_path), daemon=True).start()
    with os.fdopen(read_end, "rb") as pipe:
        said = _read_line(pipe, START_TIMEOUT_SECONDS)
    if said is None:
        code = _exit_code(process)
        reason = last_line(log_path) or f"the run process exited with code {code}"
        if code is None:
            reason = f"the run process has not claimed a run after {START_TIMEOUT_SECONDS:.0f} s"
        raise ApiProblem(500, f"run of {as_of} not started: {reason}")
    message = json.loads(said)
    if "refused" in message:
        raise ApiProblem(409, f"{message['refused']}; nothing was started")
    return message


def _read_line(pipe: Any, timeout: float) -> str | None:
    """The one line the run process writes, None when it ends the pipe (or the time runs out)
    without writing one."""
    deadline, data = time.monotonic() + timeout, b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([pipe], [], [], left)[0]:
            return None
        chunk = os.read(pipe.fileno(), 4096)
        if not chunk:
            return None
        data += chunk
    return data.decode("utf-8")


def _exit_code(process: subprocess.Popen, grace: float = 5.0) -> int | None:
    """The process's exit code once it has ended the pipe (it is exiting), None if it lives."""
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        return None


def _reap(process: subprocess.Popen, as_of: date, log_path: Path | None) -> None:
    """Wait for the run process, so that none is left a zombie; log a failure."""
    code = process.wait()
    if code != 0:
        log.warning("run of %s: process exited with code %s (log: %s)", as_of, code, log_path)
