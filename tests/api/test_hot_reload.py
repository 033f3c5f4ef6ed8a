"""Hot reload, proven (issue 14 item 8): gunicorn with two workers on a real database; a version
is activated while clients send decisions, and every answer's version is checked against the
activation's time: before it, the old; from the commit plus the refresh interval, the new;
each answer names one version with its own sha256. The machinery is bench/reload.py's."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from reload import (  # noqa: E402 - bench/ is not a package
    Spray,
    activate,
    approve_versions,
    free_port,
    start_gunicorn,
    worker_of,
)

REFRESH = 2.0  # api.ruleset_refresh_seconds in config.toml, which the workers read
MARGIN = 0.25  # a request sent this long after the deadline cannot have been read before it


def _wait_for(spray: Spray, condition, count: int, timeout: float = 120) -> None:
    """Until `count` answers meet `condition` (the machine may be busy: no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while sum(map(condition, list(spray.answers))) < count:
        assert time.monotonic() < deadline, "the server does not answer"
        time.sleep(0.05)


def test_every_worker_switches_within_the_refresh_interval_and_no_answer_mixes(
    settings, database_url
):
    from storage import keys, rulesets

    key, _ = keys.create_key("erp", "decide")
    (new,) = approve_versions(1)
    shas = {v["version"]: v["sha256"] for v in rulesets.history("reminder")}
    with tempfile.TemporaryDirectory(prefix="credo-reload-") as tmp:
        log = Path(tmp) / "access.log"
        port = free_port()
        server = start_gunicorn(database_url, port, log)
        spray = Spray(port, key)
        try:
            spray.start()
            _wait_for(spray, lambda a: a.status == 201, 20)  # the workers are deciding
            started, done = activate(new)
            _wait_for(spray, lambda a: a.sent > done + REFRESH + MARGIN, 20)
            answers = spray.stop()
        finally:
            server.terminate()
            server.wait(30)
        workers = worker_of(log)

    assert answers and all(a.status == 201 for a in answers), {a.status for a in answers}
    assert all(a.version in (1, new) and a.sha256 == shas[a.version] for a in answers)
    before = [a for a in answers if a.received < started]
    after = [a for a in answers if a.sent > done + REFRESH + MARGIN]
    assert len(before) >= 20 and len(after) >= 20
    assert {a.version for a in before} == {1}
    assert {a.version for a in after} == {new}
    # every worker answered with the new version, and no worker went back to the old one
    pids = {workers[a.request_id] for a in answers if a.request_id in workers}
    assert len(pids) == 2
    for pid in pids:
        mine = [a for a in answers if workers.get(a.request_id) == pid]
        first_new = min(a.sent for a in mine if a.version == new)
        assert all(a.version == new for a in mine if a.sent > first_new), pid
