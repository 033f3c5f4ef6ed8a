"""API keys: 401 without a valid key, 403 with the wrong role, admin may do everything."""

from __future__ import annotations

import time

from api_support import complete_facts

ROLES = ("decide", "analyst", "approver", "auditor", "admin")
READ_RULES = {"analyst", "approver", "auditor"}  # an approver reads what it approves

# (method, path, json body, roles that may call it besides admin)
ENDPOINTS = [
    ("post", "/v1/decisions/credit", {"facts": complete_facts()}, {"decide"}),
    ("get", "/v1/decisions", None, {"auditor"}),
    ("get", "/v1/decisions/some-id", None, {"auditor"}),
    ("get", "/v1/decisions/export", None, {"auditor"}),
    (
        "put",
        "/v1/customers/C1",
        {"name": "A", "currency": "EUR", "credit_limit": 1, "since": "2020-01-01"},
        {"decide"},
    ),
    ("post", "/v1/invoices", {}, {"decide"}),
    ("post", "/v1/ledger/batch", {"records": []}, {"decide"}),
    ("get", "/v1/customers/C1/facts", None, {"decide", "auditor", "analyst"}),
    ("get", "/v1/rulesets", None, READ_RULES),
    ("get", "/v1/rulesets/credit", None, READ_RULES),
    ("post", "/v1/rulesets/credit/versions", {}, {"analyst"}),
    ("get", "/v1/rulesets/credit/versions/1", None, READ_RULES),
    ("post", "/v1/rulesets/credit/versions/1/test", None, {"analyst", "approver"}),
    ("post", "/v1/rulesets/credit/versions/1/propose", None, {"analyst"}),
    ("post", "/v1/rulesets/credit/versions/1/approve", None, {"approver"}),
    ("post", "/v1/rulesets/credit/versions/1/reject", None, {"approver"}),
    ("post", "/v1/rulesets/credit/versions/1/activate", None, {"approver"}),
    ("post", "/v1/rulesets/credit/versions/1/test-cases", {}, {"analyst"}),
    ("get", "/v1/rulesets/credit/diff?from=1&to=1", None, READ_RULES),
]


def call(client, method, path, body, headers):
    # Read and close: a streamed export left open would be finalised during a later request.
    with getattr(client, method)(path, json=body, headers=headers) as response:
        response.get_data()
    return response


def test_every_endpoint_checks_its_roles(client, auth):
    for method, path, body, allowed in ENDPOINTS:
        for role in ROLES:
            response = call(client, method, path, body, auth(role))
            if role in allowed or role == "admin":
                assert response.status_code not in (401, 403), (path, role, response.json)
                continue
            assert response.status_code == 403, (path, role, response.json)
            detail = response.json["detail"]
            assert f"API key 'erp-{role}' has role '{role}'" in detail
            assert all(f"'{r}'" in detail for r in allowed), detail


def test_every_endpoint_needs_a_key(client):
    for method, path, body, _ in ENDPOINTS:
        response = call(client, method, path, body, {})
        assert response.status_code == 401, path
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_keys_are_401(client, keys):
    for header, detail in (
        ("", "missing API key"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <key>'"),
        ("Bearer", "must be 'Bearer <key>'"),
        ("Bearer credo_not-a-real-key", "invalid or revoked API key"),
        ("Bearer " + "x" * 10_000, "invalid or revoked API key"),
    ):
        headers = {"Authorization": header} if header else {}
        response = client.get("/v1/decisions", headers=headers)
        assert response.status_code == 401, header[:20]
        assert detail in response.json["detail"]


def test_a_revoked_key_stops_working_within_the_key_cache_time(app, client, keys, auth):
    from storage.keys import list_keys, revoke_key

    app.config["CREDO_KEY_CACHE_SECONDS"] = 0.3
    assert client.get("/v1/decisions", headers=auth("auditor")).status_code == 200
    revoke_key(next(k.id for k in list_keys() if k.name == "erp-auditor"))
    assert client.get("/v1/decisions", headers=auth("auditor")).status_code == 200  # cached
    time.sleep(0.35)
    response = client.get("/v1/decisions", headers=auth("auditor"))
    assert response.status_code == 401
    assert response.json["detail"] == "invalid or revoked API key"

    app.config["CREDO_KEY_CACHE_SECONDS"] = 0  # no cache: revocation is immediate
    assert client.get("/v1/decisions", headers=auth("analyst")).status_code == 403
    revoke_key(next(k.id for k in list_keys() if k.name == "erp-analyst"))
    assert client.get("/v1/decisions", headers=auth("analyst")).status_code == 401


def test_auth_is_checked_before_the_body(client):
    response = client.post("/v1/decisions/credit", data="{not json", content_type="text/plain")
    assert response.status_code == 401


def test_the_keys_name_is_recorded_as_requested_by(client, auth):
    body = {"facts": complete_facts()}
    decision = client.post("/v1/decisions/credit", json=body, headers=auth("admin")).json
    assert decision["requested_by"] == "erp-admin"


def test_probes_and_docs_need_no_key(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
