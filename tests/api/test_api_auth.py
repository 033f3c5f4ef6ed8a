"""API keys: 401 without a valid key, 403 with the wrong role, admin may do everything."""

from __future__ import annotations

import re
import time

from api_support import complete_facts
from flask import url_for

ROLES = ("decide", "analyst", "approver", "auditor", "admin")

# Routes served without a key, and whether /openapi.json documents them. Every other route
# declares its roles with require_role. (Later: the web console's pages.)
PUBLIC = {
    "/healthz": True,
    "/readyz": True,
    "/openapi.json": False,
    "/docs": False,
    "/docs/assets/<name>": False,
}


def served_routes(app):
    """(rule, method, roles declared in code or None) for every route in Flask's url_map."""
    from api.http.auth import declared_roles

    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, declared_roles(app.view_functions[rule.endpoint], method)


def sample_url(app, rule) -> str:
    """The rule's URL with every path parameter set to an id that does not exist."""
    with app.test_request_context():
        # "1" fits every converter (a version number too) and names nothing stored
        return url_for(rule.endpoint, **dict.fromkeys(rule.arguments, "1"))


def openapi_path(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^:<>]+)>", r"{\1}", rule.rule)


def call(client, method, path, headers):
    # A body no endpoint accepts (422 once past authorisation): nothing is written or started.
    body = None if method == "GET" else []
    # Read and close: a streamed export left open would be finalised during a later request.
    with client.open(path, method=method, json=body, headers=headers) as response:
        response.get_data()
    return response


def test_every_route_declares_its_roles_or_is_public(app):
    public = set()
    for rule, method, roles in served_routes(app):
        if roles is None:
            assert rule.rule in PUBLIC, f"{method} {rule.rule} needs no key: require_role?"
            public.add(rule.rule)
        else:
            assert "admin" in roles and set(roles) <= set(ROLES), (rule.rule, roles)
    assert public == set(PUBLIC)


def test_every_route_needs_a_key_and_a_role_declared_for_it(app, client, auth):
    routes = [(r, m, roles) for r, m, roles in served_routes(app) if roles is not None]
    assert len(routes) >= 20
    for rule, method, roles in routes:
        path = sample_url(app, rule)
        response = call(client, method, path, {})
        assert response.status_code == 401, (method, path)
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        for role in ROLES:
            response = call(client, method, path, auth(role))
            if role in roles:
                assert response.status_code not in (401, 403), (method, path, role)
                continue
            assert response.status_code == 403, (method, path, role, response.json)
            detail = response.json["detail"]
            assert f"API key 'erp-{role}' has role '{role}'" in detail
            assert all(f"'{r}'" in detail for r in roles if r != "admin"), detail


def test_every_served_route_is_in_the_openapi_document_with_its_roles(app, client):
    paths = client.get("/openapi.json").json["paths"]
    served = set()
    for rule, method, roles in served_routes(app):
        if not PUBLIC.get(rule.rule, True):
            assert openapi_path(rule) not in paths, rule.rule
            continue
        operation = paths[openapi_path(rule)][method.lower()]
        served.add((openapi_path(rule), method.lower()))
        if roles is not None:
            assert operation["security"] == [{"bearerAuth": []}], rule.rule
            assert f"Roles: {', '.join(roles)}." in operation["description"], rule.rule
        else:
            assert "security" not in operation, rule.rule
    documented = {(p, m) for p, ops in paths.items() for m in ops if m != "parameters"}
    assert documented == served  # and nothing documented is left unserved


def test_the_working_directorys_static_folder_is_not_served(app, client, tmp_path, monkeypatch):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "secret.txt").write_text("operator notes")
    monkeypatch.chdir(tmp_path)
    for path in ("/static/secret.txt", "/static/../static/secret.txt"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"operator notes" not in response.data
    assert not any(rule.rule.startswith("/static") for rule in app.url_map.iter_rules())


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
