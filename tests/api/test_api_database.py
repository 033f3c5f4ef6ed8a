"""The API's database connections when the server drops one: the pool replaces a dropped idle
connection unnoticed, and a connection dropped while a request uses it costs that request a
503 with Retry-After, then the API recovers."""

from __future__ import annotations

import pytest
from api_support import complete_facts

from storage.db import is_postgres


@pytest.fixture
def pool(app):
    if not is_postgres():
        pytest.skip("PostgreSQL only: a SQLite file has no server to drop a connection")
    return app.extensions["credo"].database


def decide(client, auth):
    return client.post(
        "/v1/decisions/credit", json={"facts": complete_facts()}, headers=auth("decide")
    )


def idle_backend_pids(pool) -> list[int]:
    return [conn.get_backend_pid() for _, _, conn in pool._connections]


def terminate(pool, pid: int) -> None:
    """End a server process as a server restart would."""
    import psycopg2

    admin = psycopg2.connect(dbname=pool.database, **pool.connect_params)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()


def test_an_idle_connection_the_server_dropped_is_replaced_before_a_request_uses_it(
    client, auth, pool
):
    assert decide(client, auth).status_code == 201
    (pid,) = idle_backend_pids(pool)
    terminate(pool, pid)
    assert decide(client, auth).status_code == 201
    assert pid not in idle_backend_pids(pool)


def test_a_connection_the_server_dropped_costs_one_503_then_the_api_recovers(
    app, client, auth, pool
):
    dropped = []

    @app.before_request
    def _drop_once() -> None:  # after the pool has checked the connection, before its use
        if not dropped:
            dropped.append(pool.connection().get_backend_pid())
            terminate(pool, dropped[0])

    failed = decide(client, auth)
    assert failed.status_code == 503, failed.get_data(as_text=True)
    assert failed.mimetype == "application/problem+json"
    assert failed.headers["Retry-After"] == "1"
    assert "retry" in failed.json["detail"]
    assert decide(client, auth).status_code == 201
    assert dropped[0] not in idle_backend_pids(pool)
