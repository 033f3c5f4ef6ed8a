"""Hot reload under gunicorn: the time from `activate` to the first decision on the new version
in every worker (SPEC §6: within 5 seconds, no restart, no query per decision to find out).

Starts `gunicorn -w 2 -k sync api.wsgi:app` on a fresh database (the default rule sets, three
approved reminder versions waiting, a decide key) with the configured refresh interval
(api.ruleset_refresh_seconds, 2 s), and keeps client threads sending reminder decisions, each
with an X-Request-Id that gunicorn's access log pairs with the worker's pid. Each round
activates the next version (api.lifecycle.activate_version, as `credo rules activate` does) and
measures, per worker, the time from the activation's commit to the first answer made with the
new version, and the last request sent after the commit still answered with the old one.

Run alone: `python bench/reload.py [--rounds 3] [--db sqlite,postgresql]`. The end-to-end test
tests/api/test_hot_reload.py uses the same machinery and checks every answer's version.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FACTS = {
    "customer_id": "RELOAD-1", "segment": "smb", "country": "DE", "tenure_months": 40,
    "credit_limit": "10000.00", "credit_score": 720, "open_balance": "1000.00",
    "overdue_balance": "0.00", "overdue_1_30": "0.00", "overdue_31_60": "0.00",
    "overdue_61_90": "0.00", "overdue_90_plus": "0.00", "days_past_due": 0, "invoices_open": 1,
    "invoices_overdue": 0, "days_until_next_due": 12, "utilization": 0.1,
    "disputed_amount": "0.00", "has_open_dispute": False, "on_payment_plan": False,
    "plan_missed_installments": 0, "has_active_promise": False, "promises_broken_12m": 0,
    "late_payments_12m": 0, "avg_days_late_12m": 0.0, "last_reminder_tone": "none",
    "in_agency": False, "on_hold": False, "requested_amount": "500.00",
}  # fmt: skip


@dataclass(frozen=True)
class Person:
    name: str
    owner: str
    role: str


ANALYST = Person("reload-analyst", "ann", "analyst")
APPROVER = Person("reload-approver", "ben", "approver")


@dataclass(frozen=True)
class Answer:
    """One decision request: its id, when it was sent and answered (time.monotonic, the same
    clock in every process of the machine), the status and the version that decided."""

    request_id: int
    sent: float
    received: float
    status: int
    version: int | None
    sha256: str | None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def approve_versions(count: int) -> list[int]:
    """`count` new reminder versions (reasons reworded), drafted, proposed and approved."""
    from api import lifecycle

    source = (ROOT / "rules" / "reminder.toml").read_text(encoding="utf-8")
    policy = lifecycle.Policy()
    made = []
    for n in range(count):
        text = source.replace("the agency does the chasing", f"the agency chases ({n})", 1)
        version = lifecycle.draft_version("reminder", text, f"reload {n}", ANALYST)["version"]
        lifecycle.propose_version("reminder", version, ANALYST, policy)
        lifecycle.approve_version("reminder", version, APPROVER, policy)
        made.append(version)
    return made


def activate(version: int) -> tuple[float, float]:
    """Activate `version` of reminder now: (monotonic time before, after its commit)."""
    from api import lifecycle

    before = time.monotonic()
    lifecycle.activate_version("reminder", version, APPROVER, "reload bench")
    return before, time.monotonic()


def worker_pids(master: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def start_gunicorn(url: str, port: int, access_log: Path, workers: int = 2) -> subprocess.Popen:
    """gunicorn with sync workers whose access log lines are `<X-Request-Id> <worker pid>`."""
    env = {**os.environ, "CREDO_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "sync"]
    command += ["-b", f"127.0.0.1:{port}", "--log-level", "critical"]
    command += ["--access-logfile", str(access_log)]
    command += ["--access-logformat", "%({x-request-id}i)s %(p)s", "api.wsgi:app"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited")
        if len(worker_pids(server.pid)) == workers:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return server
            except OSError:
                pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not start")


@dataclass
class Spray:
    """Client threads sending reminder decisions (given facts) until stopped."""

    port: int
    key: str
    threads: int = 4
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ids: itertools.count = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for _ in range(self.threads):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._running.append(thread)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._running:
            thread.join(60)
        return sorted(self.answers, key=lambda a: a.request_id)

    def _client(self) -> None:
        body = json.dumps({"facts": FACTS})
        while not self._stop.is_set():
            with self._lock:
                request_id = next(self._ids)
            headers = {
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                "X-Request-Id": str(request_id),
            }
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            sent = time.monotonic()
            try:
                connection.request("POST", "/v1/decisions/reminder", body=body, headers=headers)
                response = connection.getresponse()
                data = json.loads(response.read() or b"{}")
                status = response.status
            except (OSError, http.client.HTTPException, ValueError):
                status, data = 0, {}
            finally:
                connection.close()
            ruleset = data.get("ruleset") or {}
            answer = Answer(
                request_id, sent, time.monotonic(), status,
                ruleset.get("version"), ruleset.get("sha256"),
            )  # fmt: skip
            with self._lock:
                self.answers.append(answer)


def worker_of(access_log: Path) -> dict[int, int]:
    """{request id: pid of the worker that answered it} from the access log."""
    found = {}
    for line in access_log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():  # gunicorn writes the pid as <1234>
            found[int(parts[0])] = int(parts[1].strip("<>"))
    return found


def per_worker(answers: list[Answer], workers: dict[int, int], new: int, done: float) -> dict:
    """For each worker: seconds from the activation's commit (`done`) to its first answer with
    version `new`, and to the send of its last request answered with an older one."""
    figures: dict[int, dict[str, float | None]] = {}
    for answer in answers:
        pid = workers.get(answer.request_id)
        if pid is None or answer.status != 201:
            continue
        mine = figures.setdefault(pid, {"first_new": None, "last_old_sent": None})
        if answer.version == new:
            if mine["first_new"] is None or answer.received - done < mine["first_new"]:
                mine["first_new"] = answer.received - done
        elif answer.sent > done:
            mine["last_old_sent"] = max(mine["last_old_sent"] or 0.0, answer.sent - done)
    return figures


def prepare(workdir: Path, url: str = "") -> tuple[str, str]:
    """A fresh database (SQLite in `workdir` unless `url` is given) with the default rule sets
    and a decide key: (url, key)."""
    from api.usecases import init_database
    from storage import keys

    url = url or f"sqlite:///{workdir / 'reload.db'}"
    init_database(url, ROOT / "rules")
    key, _ = keys.create_key("reload-bench", "decide")
    return url, key


def measure(url: str, rounds: int, settle: float) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="credo-reload-") as tmp:
        url, key = prepare(Path(tmp), url)
        versions = approve_versions(rounds)
        log = Path(tmp) / "access.log"
        server = start_gunicorn(url, free_port(), log)
        spray = Spray(int(server.args[server.args.index("-b") + 1].rsplit(":", 1)[1]), key)
        rows = []
        try:
            spray.start()
            time.sleep(settle)
            marks = []
            for version in versions:
                marks.append((version, *activate(version)))
                time.sleep(settle)
            answers = spray.stop()
        finally:
            server.terminate()
            server.wait(30)
        workers = worker_of(log)
        for version, _, done in marks:
            mine = [a for a in answers if a.sent > done - settle and a.sent < done + settle]
            rows.append({"version": version, "workers": per_worker(mine, workers, version, done)})
        failed = sum(a.status != 201 for a in answers)
        print(f"  {len(answers)} decisions, {failed} not 201")
        return rows


def report(name: str, rows: list[dict]) -> None:
    print(f"{name}: seconds from activate's commit to the first decision on the new version")
    print(f"  {'version':>7}  {'worker':>8}  {'first new':>9}  {'last old sent':>13}")
    worst = 0.0
    for row in rows:
        for pid, figures in sorted(row["workers"].items()):
            first = figures["first_new"]
            worst = max(worst, first if first is not None else float("inf"))
            last = figures["last_old_sent"]
            print(
                f"  {row['version']:>7}  {pid:>8}  "
                f"{'never' if first is None else f'{first:.2f}':>9}  "
                f"{'-' if last is None else f'{last:.2f}':>13}"
            )
    print(f"  worst: {worst:.2f} s (target ≤ 5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="activations to time")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds between them")
    parser.add_argument("--db", default="sqlite,postgresql", help="databases, comma-separated")
    args = parser.parse_args()
    for kind in args.db.split(","):
        if kind == "sqlite":
            report(kind, measure("", args.rounds, args.settle))
            continue
        base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import postgres_schema

        try:
            with postgres_schema(base) as url:
                report(kind, measure(url, args.rounds, args.settle))
        except Exception as exc:  # noqa: BLE001 - unreachable server: say so, go on
            print(f"postgresql: skipped ({type(exc).__name__}: {exc})")


if __name__ == "__main__":
    main()
