"""A gunicorn worker killed (SIGKILL) during a burst of decisions loses none that were
answered 2xx: each was committed before its answer, and the chain still verifies.

A real gunicorn with two sync workers on a free loopback port, as production runs it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from api_support import complete_facts

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 4
PER_CLIENT = 40


def post_decision(port: int, key: str) -> tuple[int, str | None]:
    """(status, decision_id) of one POST /v1/decisions/credit; status 0 when the connection
    broke before an answer came."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"facts": complete_facts()})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        connection.request("POST", "/v1/decisions/credit", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return response.status, json.loads(answer)["decision_id"]
    return response.status, None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_pids(master: int) -> list[int]:
    """The processes whose parent is gunicorn's master: its workers."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
    return found


def start_gunicorn(database_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "CREDO_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "sync"]
    command += ["-b", f"127.0.0.1:{port}", "--log-level", "critical", "api.wsgi:app"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        if len(worker_pids(server.pid)) == 2:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return server
            except OSError:
                pass
        time.sleep(0.1)
    server.kill()
    raise AssertionError("gunicorn did not start")


def test_killing_a_worker_mid_burst_loses_no_answered_decision(settings, database_url):
    from storage import keys
    from storage.decisions import count_decisions, get_decision, verify_chain

    key, _ = keys.create_key("erp", "decide")
    port = free_port()
    server = start_gunicorn(database_url, port)
    answered: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(PER_CLIENT):
            result = post_decision(port, key)
            with lock:
                answered.append(result)

    try:
        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        while sum(status == 201 for status, _ in answered) < 20:  # the burst is under way
            time.sleep(0.005)
        victim = worker_pids(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        for thread in clients:
            thread.join(120)
    finally:
        server.terminate()
        server.wait(30)

    ok = [decision_id for status, decision_id in answered if status == 201]
    assert len(answered) == CLIENTS * PER_CLIENT
    assert len(ok) > 20  # the other worker, then the new one, went on deciding
    assert all(status in (0, 201, 503) for status, _ in answered), answered
    missing = [decision_id for decision_id in ok if get_decision(decision_id) is None]
    assert missing == []
    assert count_decisions() >= len(ok)  # a decision may be stored whose answer was cut off
    assert verify_chain() == []
