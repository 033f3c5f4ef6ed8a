"""End to end: a real server on a free loopback port, called over HTTP.

One server runs in a thread (werkzeug's, threaded, as `credo serve` runs it); one is the
`credo serve` command in a subprocess, with a key made by `credo keys create`; one is gunicorn,
the production server, in a subprocess.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from api_support import CUSTOMER, complete_facts
from doc_shell import free_port, wait_until_up
from werkzeug.serving import make_server


def request(base: str, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """(status, headers, parsed JSON or text) of one HTTP request."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        connection.request(method, path, body=data, headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode()
        kind = response.headers.get("Content-Type", "")
        parsed = json.loads(text) if "json" in kind and "ndjson" not in kind else text
        return response.status, response.headers, parsed
    finally:
        connection.close()


@pytest.fixture
def server(app):
    """The app on werkzeug's threaded server at http://127.0.0.1:<free port>."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def test_a_decision_over_http(server, auth):
    status, headers, customer = request(server, "PUT", "/v1/customers/C1", CUSTOMER, auth("decide"))
    assert status == 200, customer
    body = {"customer_id": "C1", "facts": {"requested_amount": "100.00"}}
    status, headers, decision = request(
        server, "POST", "/v1/decisions/credit", body, auth("decide")
    )
    assert status == 201, decision
    assert headers["Content-Type"] == "application/json"
    status, _, stored = request(server, "GET", headers["Location"], headers=auth("auditor"))
    assert status == 200 and stored == decision


def test_errors_over_http_are_problems(server, auth):
    status, headers, problem = request(
        server, "POST", "/v1/decisions/credit", raw=b'{"facts": NaN}', headers=auth("decide")
    )
    assert status == 400 and headers["Content-Type"] == "application/problem+json"
    assert "NaN" in problem["detail"]
    status, _, problem = request(server, "GET", "/v1/decisions")
    assert status == 401
    big = b'{"facts": {"x": "' + b"a" * 2_000_000 + b'"}}'
    status, _, problem = request(
        server, "POST", "/v1/decisions/credit", raw=big, headers=auth("decide")
    )
    assert status == 413 and "api.max_body_bytes" in problem["detail"]


def test_an_oversized_chunked_body_is_413(server, auth):
    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = [b'{"facts": {"x": "', *([b"a" * 65536] * 20), b'"}}']  # 1.3 MB, no length
    headers = {**auth("decide"), "Content-Type": "application/json"}
    try:
        connection.request(
            "POST", "/v1/decisions/credit", body=iter(chunks), headers=headers, encode_chunked=True
        )
        response = connection.getresponse()
        problem = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 413, problem
    assert problem["type"] == "urn:credo:problem:payload-too-large"


def test_urls_that_are_not_text_over_http_are_422(server, auth):
    """None of these reaches the database (PostgreSQL refuses NUL in text)."""
    for path, name in (
        ("/v1/customers/a%00b/facts", "customer_id"),
        ("/v1/decisions?customer_id=%ED%A0%80", "customer_id"),
        ("/v1/decisions/export?rule=a%00b", "rule"),
    ):
        status, headers, problem = request(server, "GET", path, headers=auth("auditor"))
        assert status == 422, (path, problem)
        assert headers["Content-Type"] == "application/problem+json"
        assert name in problem["errors"], (path, problem)


def test_concurrent_requests_with_one_idempotency_key_store_one_decision(server, auth):
    body = {"facts": complete_facts()}

    def post(index: int):
        key = {"Idempotency-Key": f"k-{index % 3}"}
        return request(server, "POST", "/v1/decisions/credit", body, {**auth("decide"), **key})

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(24)))
    assert all(status in (200, 201) for status, _, _ in results), results
    assert sum(status == 201 for status, _, _ in results) == 3
    ids = {decision["decision_id"] for _, _, decision in results}
    assert len(ids) == 3

    status, _, text = request(server, "GET", "/v1/decisions/export", headers=auth("auditor"))
    lines = [json.loads(line) for line in text.splitlines()]
    assert {d["decision_id"] for d in lines} == ids
    for earlier, later in zip(lines, lines[1:], strict=False):
        assert later["prev_hash"] == earlier["hash"]


def _credo() -> list[str]:
    script = Path(sys.executable).parent / "credo"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from api.cli.main import main; main()"]


def test_credo_serve_in_a_subprocess(settings, database_url):
    env = {**os.environ, "CREDO_DATABASE_URL": database_url}
    made = subprocess.run(
        [*_credo(), "keys", "create", "--name", "erp", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = made.stdout.splitlines()[-1]
    port = free_port()
    process = subprocess.Popen(
        [*_credo(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        headers = {"Authorization": f"Bearer {key}"}
        status, _, ready = request(base, "GET", "/readyz")
        assert status == 200 and ready["rulesets"]["credit"] == 1
        body = {"facts": complete_facts(), "as_of": "2024-05-01"}
        status, _, decision = request(base, "POST", "/v1/decisions/reminder", body, headers)
        assert status == 201, decision
        assert decision["requested_by"] == "erp"
        path = f"/v1/decisions/{decision['decision_id']}"
        assert request(base, "GET", path, headers=headers)[2] == decision
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_bytes_not_utf8_in_urls_under_gunicorn_are_422(settings, database_url, auth):
    """gunicorn hands a path's bytes over as they came (PEP 3333), werkzeug's own server as
    U+FFFD: the production server is where a lone surrogate's bytes reach the app."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "-w", "1", "-b", f"127.0.0.1:{port}", "api.wsgi:app"],
        env={**os.environ, "CREDO_DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        for path, name in (
            ("/v1/decisions/%ED%A0%80", "kind_or_id"),
            ("/v1/customers/C%FF1/facts", "customer_id"),
            ("/v1/decisions?customer_id=%ED%A0%80", "customer_id"),
        ):
            status, _, problem = request(base, "GET", path, headers=auth("auditor"))
            assert status == 422, (path, problem)
            assert name in problem["errors"], (path, problem)
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
