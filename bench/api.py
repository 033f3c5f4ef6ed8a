"""Benchmark of the HTTP API under gunicorn: decisions against a trivial JSON endpoint.

Starts `gunicorn -w 2 -k sync api.wsgi:app` on a free loopback port over a fresh database
(the default rule sets loaded, one API key) — SQLite, the embedded default, then PostgreSQL, the
production database (TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test, a fresh
schema; skipped when unreachable) — then drives it from separate processes:

1. peak, closed loop: C concurrent clients, each sending the next request when the last one is
   answered, for D seconds; GET /healthz (the trivial JSON endpoint) and
   POST /v1/decisions/credit with complete facts (every decision is evaluated and stored),
   alternating for R rounds, the median round of each reported, and the ratio of the two
   throughputs;
2. fixed rate, open loop: stored decisions at --rate per second (default 200) for
   --rate-seconds (default 60), latency measured from the moment each request was due (so a
   slow server cannot hide its queue): p50, p99, max and the error count.

Run alone: `python bench/api.py [--db sqlite,postgresql] [--duration 3] [--rate 200]
[--rate-seconds 60]` (--rate 0 leaves the fixed rate out). On a 2-core machine the load
generator shares the cores with the two workers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FACTS = {
    "customer_id": "BENCH-1",
    "segment": "smb",
    "country": "DE",
    "tenure_months": 40,
    "credit_limit": "10000.00",
    "credit_score": 720,
    "open_balance": "1000.00",
    "overdue_balance": "0.00",
    "overdue_1_30": "0.00",
    "overdue_31_60": "0.00",
    "overdue_61_90": "0.00",
    "overdue_90_plus": "0.00",
    "days_past_due": 0,
    "invoices_open": 1,
    "invoices_overdue": 0,
    "days_until_next_due": 12,
    "utilization": 0.1,
    "disputed_amount": "0.00",
    "has_open_dispute": False,
    "on_payment_plan": False,
    "plan_missed_installments": 0,
    "has_active_promise": False,
    "promises_broken_12m": 0,
    "late_payments_12m": 0,
    "avg_days_late_12m": 0.0,
    "last_reminder_tone": "none",
    "in_agency": False,
    "on_hold": False,
    "requested_amount": "500.00",
}


def http_request(method: str, path: str, key: str = "", body: bytes = b"") -> bytes:
    """The raw bytes of one HTTP/1.1 request that closes its connection."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def send(port: int, raw: bytes) -> int:
    """Send one request, read the whole answer; its status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head = b"".join(chunks)[:12]
    return int(head[9:12]) if head.startswith(b"HTTP/1.") else 0


def closed_loop(port: int, raw: bytes, threads: int, until: float, out: mp.Queue) -> None:
    """Driver process: `threads` clients back to back until `until`; puts (latencies, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        mine, bad = [], 0
        while time.time() < until:
            started = time.perf_counter()
            try:
                ok = send(port, raw) in (200, 201)
            except OSError:
                ok = False
            mine.append(time.perf_counter() - started)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors[0]))


def open_loop(
    port: int, raw: bytes, threads: int, start: float, rate: float, count: int, out: mp.Queue
) -> None:
    """Driver process: requests i = 0..count-1 due at start + i/rate, shared by `threads`
    clients; latency counted from the due time. Puts (latencies, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(offset: int) -> None:
        mine, bad = [], 0
        for i in range(offset, count, threads):
            due = start + i / rate
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            try:
                ok = send(port, raw) in (200, 201)
            except OSError:
                ok = False
            mine.append(time.time() - due)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors[0]))


def run_drivers(target, args_of, processes: int) -> tuple[list[float], int]:
    """Run `processes` driver processes; merged latencies and error count."""
    context = mp.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=target, args=(*args_of(p), out)) for p in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for lat, _ in results for x in lat]
    return latencies, sum(err for _, err in results)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(name: str, latencies: list[float], errors: int, seconds: float) -> dict:
    return {
        "name": name,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
    }


def median_round(results: list[dict], name: str) -> dict:
    """The round with the median throughput, renamed."""
    ordered = sorted(results, key=lambda r: r["rps"])
    return {**ordered[len(ordered) // 2], "name": name}


def prepare(workdir: Path, url: str = "") -> tuple[str, str]:
    """A fresh database (SQLite in `workdir` unless `url` is given) with the default rule sets
    and a decide key: (url, key)."""
    from api.usecases import init_database
    from storage import keys

    url = url or f"sqlite:///{workdir / 'bench.db'}"
    init_database(url, ROOT / "rules")
    key, _ = keys.create_key("bench", "decide")
    return url, key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "CREDO_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers),
        "-k",
        "sync",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "api.wsgi:app",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if send(port, http_request("GET", "/healthz")) == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def measure_peak(port: int, raw: bytes, args: argparse.Namespace, name: str) -> dict:
    """Peak of one endpoint: closed-loop clients for args.duration seconds."""
    until = time.time() + args.duration
    latencies, errors = run_drivers(
        closed_loop, lambda _: (port, raw, args.threads, until), args.processes
    )
    return summary(name, latencies, errors, args.duration)


def measure_rate(port: int, raw: bytes, args: argparse.Namespace, rate: float, name: str) -> dict:
    """`rate` requests a second for args.rate_seconds, each timed from when it was due."""
    count = max(1, int(rate * args.rate_seconds))
    start = time.time() + 1.0  # every driver is up before the first request is due
    per_process = rate / args.processes

    def args_of(p: int) -> tuple:
        share = len(range(p, count, args.processes))
        return (port, raw, args.threads, start + p / rate, per_process, share)

    latencies, errors = run_drivers(open_loop, args_of, args.processes)
    return summary(name, latencies, errors, count / rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="peak rounds per endpoint")
    parser.add_argument("--processes", type=int, default=2, help="load-generating processes")
    parser.add_argument("--threads", type=int, default=4, help="clients per process")
    parser.add_argument(
        "--rate", type=float, default=200, help="fixed rate: decisions per second (0: none)"
    )
    parser.add_argument("--rate-seconds", type=float, default=60, help="fixed rate: seconds")
    parser.add_argument(
        "--db",
        default="sqlite,postgresql",
        help="databases to measure on, comma-separated (PostgreSQL: TEST_DATABASE_URL or "
        "postgresql://postgres@127.0.0.1:5432/test, in a fresh schema)",
    )
    args = parser.parse_args()
    for kind in args.db.split(","):
        args.load_before = os.getloadavg()[0]  # other work on the machine skews every figure
        if kind == "sqlite":
            rows = measure(args, "")
        else:
            base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
            sys.path.insert(0, str(ROOT / "tests"))
            from conftest import postgres_schema

            try:
                with postgres_schema(base) as url:
                    rows = measure(args, url)
            except Exception as exc:  # noqa: BLE001 - unreachable server: say so, go on
                print(f"postgresql: skipped ({type(exc).__name__}: {exc})")
                continue
        report(kind, rows, args)


def measure(args: argparse.Namespace, url: str) -> list[dict]:
    """Peak of both endpoints and the decision endpoint at the fixed rate, on `url` (SQLite
    when empty)."""
    with tempfile.TemporaryDirectory(prefix="credo-bench-") as tmp:
        url, key = prepare(Path(tmp), url)
        port = free_port()
        server = start_gunicorn(url, port, args.workers)
        try:
            trivial = http_request("GET", "/healthz")
            body = json.dumps({"facts": FACTS}).encode()
            decide = http_request("POST", "/v1/decisions/credit", key, body)
            for _ in range(20 * args.workers):  # every worker loads its rule sets
                if send(port, decide) != 201:
                    raise SystemExit("the decision endpoint does not answer 201")
            # Rounds alternate the two endpoints, so load from elsewhere on the machine
            # weighs on both alike; each row reports the median round.
            rounds: dict[str, list[dict]] = {"trivial": [], "decide": []}
            for _ in range(args.rounds):
                rounds["trivial"].append(measure_peak(port, trivial, args, "GET /healthz"))
                rounds["decide"].append(measure_peak(port, decide, args, "POST decision"))
            rows = [
                median_round(rounds["trivial"], "GET /healthz (trivial), peak"),
                median_round(rounds["decide"], "POST /v1/decisions/credit, peak"),
            ]
            # The ratio of each round's pair, measured seconds apart: how far the machine's
            # own pace moved the figure during the run.
            pairs = zip(rounds["trivial"], rounds["decide"], strict=True)
            rows[1]["round_ratios"] = [d["rps"] / t["rps"] for t, d in pairs]
            if args.rate > 0:
                name = f"POST /v1/decisions/credit, {args.rate:g}/s"
                rows.append(measure_rate(port, decide, args, args.rate, name))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return rows


def report(kind: str, rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"{kind}: gunicorn -w {args.workers} -k sync on {os.cpu_count()} cores; load: "
        f"{args.processes} processes x {args.threads} clients, a new connection per request; "
        f"peaks: median of {args.rounds} alternating rounds of {args.duration:g} s; "
        f"fixed rate: {args.rate_seconds:g} s"
    )
    print(f"load average before/after: {args.load_before:.2f} / {os.getloadavg()[0]:.2f}")
    header = f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'requests':>9} {'errors':>7}"
    print(f"{'':40} {header}")
    for r in rows:
        print(
            f"{r['name']:40} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
            f"{r['max_ms']:8.2f} {r['requests']:9d} {r['errors']:7d}"
        )
    ratio = rows[1]["rps"] / rows[0]["rps"]
    each = ", ".join(f"{r:.0%}" for r in rows[1]["round_ratios"])
    print(f"decision / trivial throughput: {ratio:.0%}; round by round: {each}")


if __name__ == "__main__":
    main()
