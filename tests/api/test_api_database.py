"""The API's database connections: the PostgreSQL pool's check-out, and a database that goes
away mid-service (503, then recovery)."""

from __future__ import annotations

import pytest
from api_support import complete_facts

from storage.db import is_postgres


@pytest.fixture
def pool(app):
    if not is_postgres():
        pytest.skip("PostgreSQL only: the SQLite pool has no server to ask")
    return app.extensions["credo"].database


def decide(client, auth):
    return client.post(
        "/v1/decisions/credit", json={"facts": complete_facts()}, headers=auth("decide")
    )


def idle_backend_pids(pool) -> list[int]:
    return [conn.get_backend_pid() for _, _, conn in pool._connections]


def test_a_connection_handed_back_a_moment_ago_is_reused_without_asking_the_server(
    client, auth, pool, monkeypatch
):
    asked = []
    check = pool._adapter.is_connection_closed
    monkeypatch.setattr(
        pool._adapter, "is_connection_closed", lambda c: asked.append(1) or check(c)
    )
    assert decide(client, auth).status_code == 201
    first = idle_backend_pids(pool)
    assert decide(client, auth).status_code == 201
    assert asked == [] and idle_backend_pids(pool) == first
    monkeypatch.setattr(type(pool), "PING_AFTER", 0.0)  # idle long enough: asked (SELECT 1)
    assert decide(client, auth).status_code == 201
    assert asked and idle_backend_pids(pool) == first


def test_a_connection_the_server_dropped_costs_one_503_then_the_api_recovers(client, auth, pool):
    import psycopg2

    assert decide(client, auth).status_code == 201
    (pid,) = idle_backend_pids(pool)
    admin = psycopg2.connect(dbname=pool.database, **pool.connect_params)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:  # as a server restart would
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()
    failed = decide(client, auth)
    assert failed.status_code == 503, failed.get_data(as_text=True)
    assert failed.mimetype == "application/problem+json"
    assert failed.headers["Retry-After"] == "1"
    assert "retry" in failed.json["detail"]
    assert decide(client, auth).status_code == 201
    assert pid not in idle_backend_pids(pool)
