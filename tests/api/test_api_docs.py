"""/openapi.json, /docs (offline), probes, and the rule-set refresh of a running app."""

from __future__ import annotations

import re

from api_support import complete_facts, make_settings


def test_openapi_documents_every_endpoint_with_problem_errors(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, methods in {
        "/v1/decisions/{kind_or_id}": {"get", "post"},
        "/v1/decisions": {"get"},
        "/v1/decisions/export": {"get"},
        "/v1/decisions/{decision_id}/replay": {"post"},
        "/v1/decisions/{decision_id}/evidence": {"get"},
        "/v1/customers/{customer_id}": {"put"},
        "/v1/customers/{customer_id}/facts": {"get"},
        "/v1/invoices": {"post"},
        "/v1/payments": {"post"},
        "/v1/credit-notes": {"post"},
        "/v1/disputes": {"post"},
        "/v1/promises": {"post"},
        "/v1/payment-plans": {"post"},
        "/v1/contacts": {"post"},
        "/v1/holds": {"post"},
        "/v1/ledger/batch": {"post"},
        "/v1/rulesets": {"get"},
        "/v1/rulesets/{kind}": {"get"},
        "/v1/rulesets/{kind}/versions": {"post"},
        "/v1/rulesets/{kind}/versions/{version}": {"get"},
        "/v1/rulesets/{kind}/versions/{version}/test": {"post"},
        "/v1/rulesets/{kind}/versions/{version}/propose": {"post"},
        "/v1/rulesets/{kind}/versions/{version}/approve": {"post"},
        "/v1/rulesets/{kind}/versions/{version}/reject": {"post"},
        "/v1/rulesets/{kind}/versions/{version}/activate": {"post"},
        "/v1/rulesets/{kind}/versions/{version}/test-cases": {"post"},
        "/v1/rulesets/{kind}/diff": {"get"},
        "/v1/audit/verify": {"get"},
        "/v1/audit/anchor": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            operation = paths[path][method]
            if path.startswith("/v1/"):
                assert operation["security"] == [{"bearerAuth": []}], path
    default = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == ["application/problem+json"]
    invoice = spec["components"]["schemas"]["Invoice"]
    assert invoice["properties"]["due_date"] == {"type": "string", "format": "date"}
    assert invoice["additionalProperties"] is False


def test_openapi_is_a_valid_document(client):
    # The OpenAPI 3.0 meta-schema schemathesis ships (openapi-spec-validator is not a dependency).
    import jsonschema_rs
    from schemathesis.specs.openapi.definitions import OPENAPI_30

    validator = jsonschema_rs.Draft4Validator(OPENAPI_30)
    errors = list(validator.iter_errors(client.get("/openapi.json").json))
    assert errors == [], [e.message for e in errors[:5]]
    paths = client.get("/openapi.json").json["paths"]
    templates = [re.sub(r"\{[^}]*\}", "{}", path) for path in paths]
    assert len(templates) == len(set(templates))  # no two paths differ only in a parameter name


def test_docs_page_loads_nothing_from_outside(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/openapi.json" in html and "validatorUrl: null" in html
    for asset in assets:
        with client.get(asset) as response:
            assert response.status_code == 200, asset
            assert len(response.data) > 500
    assert client.get("/docs/assets/index.html").status_code == 404


def test_readyz_reports_active_versions(client):
    assert client.get("/readyz").json == {
        "status": "ready",
        "database": "ok",
        "rulesets": {"credit": 1, "handoff": 1, "reminder": 1},
    }


def test_readyz_is_503_without_rule_sets(db, database_url, tmp_path):
    from api.app import create_app

    settings = make_settings(database_url, tmp_path).with_database_url(database_url)
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 503
    assert "no active rule set" in response.json["detail"]


def _activate_new_credit_version(note: str) -> int:
    from storage import rulesets

    source = rulesets.get_active("credit")["source"].replace('title = "', f'title = "{note} ', 1)
    from engine.ruleset import sha256_of

    stored = rulesets.create_version(
        "credit", source, sha256_of(source), created_by="test", state="active"
    )
    return stored["version"]


def test_a_newly_activated_version_is_used_after_the_refresh_interval(
    db, database_url, tmp_path, settings, auth
):
    from api.app import create_app

    slow = make_settings(database_url, tmp_path, ruleset_refresh_seconds=3600.0)
    apps = {
        "fresh": create_app(settings),
        "cached": create_app(slow.with_database_url(database_url)),
    }
    body = {"facts": complete_facts()}
    for app in apps.values():  # both load version 1
        response = app.test_client().post("/v1/decisions/credit", json=body, headers=auth("decide"))
        assert response.json["ruleset"]["version"] == 1

    version = _activate_new_credit_version("v2")
    fresh = (
        apps["fresh"].test_client().post("/v1/decisions/credit", json=body, headers=auth("decide"))
    )
    assert fresh.json["ruleset"]["version"] == version == 2
    cached = apps["cached"].test_client()
    stale = cached.post("/v1/decisions/credit", json=body, headers=auth("decide"))
    assert stale.json["ruleset"]["version"] == 1  # within its hour-long interval
    apps["cached"].extensions["credo"].rulesets.refresh()
    renewed = cached.post("/v1/decisions/credit", json=body, headers=auth("decide"))
    assert renewed.json["ruleset"]["version"] == 2
    assert renewed.json["ruleset"]["sha256"] == fresh.json["ruleset"]["sha256"]


ROLLOUT_SECTIONS = ("## Activate at a time", "## Try a policy on a share of customers")


def test_the_rollout_sections_of_rules_md_run_and_answer_what_they_show(tmp_path, monkeypatch):
    """docs/rules.md, "Activate at a time" and "Try a policy on a share of customers": their
    shell blocks run in order against a demo database, each shown answer matched."""
    import json
    import signal
    from pathlib import Path

    from click.testing import CliRunner
    from doc_runner import DocError, Shell, match, read_blocks, split_commands
    from lifecycle_support import edited_reminder

    from api.cli.main import main

    doc = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    text = doc.read_text(encoding="utf-8")
    first = text[: text.index(ROLLOUT_SECTIONS[0])].count("\n") + 1
    end = text.index("\n## ", text.index(ROLLOUT_SECTIONS[1]))
    last = text[:end].count("\n") + 1
    blocks = [b for b in read_blocks(doc) if b.run and first <= b.line <= last]
    assert len(blocks) >= 8 and all(b.answer is not None for b in blocks[1:])

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDO_DATABASE_URL", f"sqlite:///{tmp_path / 'credo.db'}")
    monkeypatch.setenv("CREDO_RUN_WORKERS", "1")
    (tmp_path / "reminder.toml").write_text(edited_reminder(), encoding="utf-8")

    def credo(args: list[str]) -> str:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        if result.exit_code != 0:
            raise DocError(f"credo {' '.join(args)}: exit {result.exit_code}: {result.output}")
        return result.stdout

    def serve(args: list[str]) -> str:
        raise DocError("these sections start no server")

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    shell = Shell(credo=credo, serve=serve, cwd=tmp_path, doc_base="http://127.0.0.1:8000")
    try:
        for block in blocks:
            commands = split_commands(block.text)
            for number, command in enumerate(commands, 1):
                where = f"docs/rules.md, block at line {block.line}, command {number}: {command}"
                try:
                    answer = shell.run(command)
                except DocError as exc:
                    raise DocError(f"{where}\n{exc}") from None
                if number == len(commands) and block.answer is not None:
                    actual = json.loads(answer.output)
                    problems = match(json.loads(block.answer.text), actual)
                    assert not problems, f"{where}\n" + "\n".join(problems) + f"\n{actual}"
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
