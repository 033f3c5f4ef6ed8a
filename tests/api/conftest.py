"""Fixtures of the API tests: an app on a fresh, migrated database with the shipped rule sets,
a test client, and one API key per role."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import CUSTOMER, RULES_DIR, invoice, make_settings

from api.settings import Settings

ROLES = ("decide", "analyst", "approver", "auditor", "admin")


@pytest.fixture
def settings(db, database_url: str, tmp_path: Path) -> Settings:
    """Settings of a migrated database holding the default rule sets."""
    from api.usecases import load_default_rulesets

    load_default_rulesets(RULES_DIR)
    return make_settings(database_url, tmp_path).with_database_url(database_url)


@pytest.fixture
def app(settings: Settings):
    from api.app import create_app

    app = create_app(settings)
    yield app
    app.extensions["credo"].database.close_all()  # the pool's idle connections


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def keys(app) -> dict[str, str]:
    """A live key per role, named after it (`erp-decide`, `erp-auditor`, …)."""
    from storage import keys as stored

    return {role: stored.create_key(f"erp-{role}", role)[0] for role in ROLES}


@pytest.fixture
def auth(keys):
    """auth(role) -> the Authorization header of that role's key."""

    def header(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}"}

    return header


@pytest.fixture
def customer(client, auth) -> str:
    """Customer C1 with two invoices, one of them 60 days overdue on 2024-05-01."""
    records = [
        {"type": "customer", "id": "C1", **CUSTOMER},
        {"type": "invoice", **invoice("I1", "C1", "2024-02-01", "2024-03-02", "1200.50")},
        {"type": "invoice", **invoice("I2", "C1", "2024-04-10", "2024-05-10", "800.00")},
    ]
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 200, response.json
    return "C1"
