"""The web console through Flask's test client: sign-in and its cookie, CSRF, headers,
escaping, and the pages reading the same use cases as the API."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from api_support import CUSTOMER, RULES_DIR, invoice
from console_support import csrf_from, sign_in

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def hostile(client, auth) -> str:
    """A customer named like a script, with an overdue invoice, decided once."""
    records = [
        {"type": "customer", "id": "EVIL1", **CUSTOMER, "name": HOSTILE},
        {"type": "invoice", **invoice("I<b>1", "EVIL1", "2024-02-01", "2024-03-02", "950.00")},
        {
            "id": "K1",
            "customer_id": "EVIL1",
            "date": "2024-03-20",
            "type": "call",
            "note": "<img src=x onerror=alert(2)>",
        },
    ]
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    assert response.status_code == 200, response.json
    body = {"customer_id": "EVIL1", "as_of": "2024-05-01"}
    response = client.post("/v1/decisions/reminder", json=body, headers=auth("decide"))
    assert response.status_code == 201, response.json
    return response.json["decision_id"]


def test_signing_in_sets_a_strict_cookie_holding_no_key(app, client, keys):
    response = client.get("/console/decisions")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/sign-in?next=/console/decisions"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/console/decisions"' in page
    response = client.post(
        "/console/sign-in",
        data={"key": keys["auditor"], "csrf_token": csrf_from(page), "next": "/console/decisions"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/decisions"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("credo_console=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/console"):
        assert attribute in cookie.split("; "), cookie
    stored = app.session_interface.get_signing_serializer(app).loads(
        cookie.split(";")[0].split("=", 1)[1]
    )
    assert isinstance(stored["key"].pop("id"), int)
    assert stored["key"] == {"name": "erp-auditor", "role": "auditor", "owner": "erp-auditor"}
    assert keys["auditor"] not in str(stored)
    assert client.get("/console/decisions").status_code == 200


def test_a_wrong_key_is_refused_and_next_never_leaves_the_console(client, keys):
    page = client.get("/console/sign-in").get_data(as_text=True)
    for key in ("credo_not-a-key", "x" * 10_000, ""):
        response = client.post("/console/sign-in", data={"key": key, "csrf_token": csrf_from(page)})
        assert response.status_code == 401
        assert "not valid, or it was revoked" in response.get_data(as_text=True)
    for target in ("//evil.example/x", "https://evil.example/console/", "/v1/decisions", "/\\evil"):
        page = client.get("/console/sign-in").get_data(as_text=True)
        response = client.post(
            "/console/sign-in",
            data={"key": keys["auditor"], "csrf_token": csrf_from(page), "next": target},
        )
        assert response.headers["Location"] == "/console/", target
        token = csrf_from(client.get("/console/").get_data(as_text=True))
        assert client.post("/console/sign-out", data={"csrf_token": token}).status_code == 302


def test_every_post_needs_the_sessions_csrf_token(client, keys):
    page = client.get("/console/sign-in").get_data(as_text=True)
    for token in (None, "", "forged", csrf_from(page) + "x"):
        data = {"key": keys["admin"]} | ({"csrf_token": token} if token is not None else {})
        response = client.post("/console/sign-in", data=data)
        assert response.status_code == 400
        assert "did not come from this console" in response.get_data(as_text=True)
    token = sign_in(client, keys["admin"])
    assert client.post("/console/sign-out", data={}).status_code == 400
    assert client.get("/console/").status_code == 200  # still signed in
    assert client.post("/console/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_a_revoked_key_is_signed_out_at_its_next_click(client, keys):
    from storage.keys import list_keys, revoke_key

    sign_in(client, keys["auditor"])
    assert client.get("/console/decisions").status_code == 200
    revoke_key(next(k.id for k in list_keys() if k.name == "erp-auditor"))
    response = client.get("/console/decisions")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "was revoked or changed" in page


def test_console_responses_carry_the_security_headers(client, keys):
    sign_in(client, keys["admin"])
    for path in ("/console/sign-in", "/console/", "/console/no-such-page", "/console/decisions"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        for directive in (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ):
            assert directive in csp, (path, csp)
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/console/no-such-page").status_code == 404
    with client.get("/console/static/console.css") as css:  # closes the file it streams
        assert css.status_code == 200 and css.mimetype == "text/css"
    assert "Content-Security-Policy" not in client.get("/healthz").headers


def test_user_data_is_escaped_on_every_page(client, keys, hostile):
    sign_in(client, keys["admin"])
    pages = (
        "/console/customers",
        "/console/customers?q=%3Cscript",
        "/console/customers/EVIL1",
        f"/console/decisions/{hostile}",
        "/console/decisions?customer=%3Cscript%3E",
        "/console/customers/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "<img" not in html, path
    html = client.get("/console/customers/EVIL1").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "I&lt;b&gt;1" in html


def test_the_decision_page_shows_each_fired_rules_condition_and_the_values_it_tested(
    client, keys, customer, auth
):
    body = {"customer_id": customer, "as_of": "2024-05-01"}
    decision = client.post("/v1/decisions/reminder", json=body, headers=auth("decide")).json
    fired = decision["fired"][0]
    sign_in(client, keys["analyst"])
    html = client.get(f"/console/decisions/{decision['decision_id']}").get_data(as_text=True)
    from api.usecases import load_ruleset_files

    rulesets = load_ruleset_files(sorted(RULES_DIR.glob("*.toml")))
    rule = next(r for r in rulesets if r.kind == "reminder").rule(fired["id"])
    assert fired["id"] in html and rule.name in html
    from markupsafe import escape

    assert str(escape(rule.when_text)) in html
    assert "<code>days_past_due</code></td><td>60</td>" in html.replace("\n", "")
    listing = client.get(f"/console/decisions?customer={customer}&kind=reminder")
    assert decision["decision_id"] in listing.get_data(as_text=True)
    none = client.get(f"/console/decisions?customer={customer}&kind=credit")
    assert "No decision matches" in none.get_data(as_text=True)


def test_bad_decision_filters_are_named_beside_their_field(client, keys):
    sign_in(client, keys["auditor"])
    response = client.get("/console/decisions?kind=Bad!&version=x&from=2024-13-01&outcome=firm")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="f-kind-note">a kind is lower-case' in html
    assert 'id="f-version-note">a version is a whole number' in html
    assert 'id="f-from-note">a date like' in html
    assert 'id="f-outcome-note">write field=value' in html
    assert client.get("/console/decisions/nope").status_code == 404
    for raw in ("%ED%A0%80", "%00", "x" * 300):  # a lone surrogate's bytes, NUL, too long
        response = client.get("/console/decisions/" + raw)
        assert response.status_code in (404, 422), raw
        assert response.mimetype == "text/html"


def test_decisions_are_paged_newest_first(client, keys, auth):
    from api_support import complete_facts

    made = []
    for _ in range(3):
        body = {"facts": complete_facts()}
        made.append(client.post("/v1/decisions/credit", json=body, headers=auth("decide")).json)
    sign_in(client, keys["auditor"])
    from api.console import decisions as page_module

    page_module.PAGE_SIZE, old = 2, page_module.PAGE_SIZE
    try:
        first = client.get("/console/decisions?kind=credit").get_data(as_text=True)
        assert made[2]["decision_id"] in first and made[0]["decision_id"] not in first
        cursor = made[1]["seq"]
        assert f"cursor={cursor}" in first and "kind=credit" in first
        second = client.get(f"/console/decisions?kind=credit&cursor={cursor}")
        assert made[0]["decision_id"] in second.get_data(as_text=True)
    finally:
        page_module.PAGE_SIZE = old


def test_the_portfolio_never_adds_up_currencies_and_the_worklist_csv_is_the_apis(
    app, client, keys, auth
):
    from api.nightly.run import execute_run, prepare_run

    records = []
    for cid, currency, amount in (("E1", "EUR", "1000.00"), ("S1", "SEK", "50000.00")):
        records.append({"type": "customer", "id": cid, **CUSTOMER, "currency": currency})
        records.append(
            {"type": "invoice", **invoice(f"I{cid}", cid, "2024-01-02", "2024-02-01", amount)}
        )
    client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    settings = app.extensions["credo"].settings
    for day in (date(2024, 4, 1), date(2024, 5, 1)):
        run, _ = prepare_run(settings, day, False, "test")
        execute_run(settings, run.run_id, workers=1)
    from storage.worklist import list_runs

    latest = list_runs(1)[0]
    by_currency = latest.report["portfolio"]["by_currency"]
    assert by_currency["EUR"]["aging"]["61_90"] == "1000.00"
    assert by_currency["SEK"]["aging"]["61_90"] == "50000.00"
    sign_in(client, keys["auditor"])
    html = client.get("/console/portfolio").get_data(as_text=True)
    assert "Overdue EUR by days past due" in html and "Overdue SEK by days past due" in html
    assert "1,000.00" in html and "50,000.00" in html and "51,000.00" not in html
    assert html.count("<polyline") == 4  # DSO and CEI, one line per currency
    run_page = client.get(f"/console/runs/{latest.run_id}").get_data(as_text=True)
    assert "Worklist" in run_page and "E1" in run_page
    # the page's filters give the API's file (api.run_views.worklist_csv, csv_chunks), byte for
    # byte; streamed: each read and closed before the next request
    for query in ("", "state=pending", "type=reminder&state=pending", "type=reminder"):
        with client.get(f"/console/runs/{latest.run_id}/worklist.csv?{query}") as ours:
            assert ours.mimetype == "text/csv"
            assert ours.headers["Content-Disposition"].startswith("attachment; filename=")
            text = ours.get_data(as_text=True)
        url = f"/v1/runs/{latest.run_id}/actions?format=csv&{query}"
        with client.get(url, headers=auth("auditor")) as theirs:
            assert text == theirs.get_data(as_text=True), query
        assert text.startswith("action_id,run_id,") and text.count("\r\n") >= 2, query
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "action_id" and {r[2] for r in rows[1:]} == {"E1", "S1"}
    assert client.get(f"/console/runs/{latest.run_id}?type=bogus").status_code == 400


def test_a_run_whose_report_predates_currencies_gets_them_from_the_ledger(app, client, auth):
    from api.nightly.run import execute_run, prepare_run
    from api.run_views import portfolio_by_currency
    from storage.runs import Run

    records = [
        {"type": "customer", "id": "E1", **CUSTOMER},
        {"type": "invoice", **invoice("I1", "E1", "2024-01-02", "2024-02-01", "700.00")},
    ]
    client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    settings = app.extensions["credo"].settings
    run, _ = prepare_run(settings, date(2024, 4, 1), False, "test")
    execute_run(settings, run.run_id, workers=1)
    report = Run.get_by_id(run.run_id).report
    del report["portfolio"]["by_currency"]
    Run.update(report=report).where(Run.run_id == run.run_id).execute()
    figures = portfolio_by_currency(Run.get_by_id(run.run_id))
    assert figures["EUR"]["aging"]["31_60"] == "700.00"  # 60 days past due


def test_the_customer_page_shows_the_timeline_facts_decisions_and_letters(
    client, keys, customer, auth
):
    records = [
        {
            "type": "payment",
            "id": "P1",
            "customer_id": customer,
            "date": "2024-04-02",
            "amount": "200.00",
        },
        {
            "type": "hold",
            "id": "H1",
            "customer_id": customer,
            "reason": "audit",
            "start": "2024-04-05",
        },
    ]
    client.post("/v1/ledger/batch", json={"records": records}, headers=auth("decide"))
    client.post(
        "/v1/decisions/credit",
        json={"customer_id": customer, "as_of": "2024-05-01"},
        headers=auth("decide"),
    )
    sign_in(client, keys["analyst"])
    html = client.get(f"/console/customers/{customer}").get_data(as_text=True)
    assert "Acme GmbH" in html
    for text in (
        "invoice issued, due 2024-03-02",
        "payment (oldest due first)",
        "collections hold: audit",
    ):
        assert text in html, text
    assert html.index("2024-04-05") < html.index("2024-04-02") < html.index("2024-02-01")
    assert "<code>open_balance</code>" in html
    assert ">credit</a>" in html  # the latest credit decision, linked
    assert client.get("/console/customers/NOPE").status_code == 404
    listing = client.get("/console/customers?q=acme").get_data(as_text=True)
    assert f">{customer}</a>" in listing
    assert "No customer matches" in client.get("/console/customers?q=%25_").get_data(as_text=True)


def test_the_secret_is_made_once_per_data_directory_unless_configured(settings, tmp_path):
    from dataclasses import replace

    from api.console import console_secret
    from api.settings import ConsoleSettings

    first = console_secret(settings)
    assert len(first) >= 32 and console_secret(settings) == first
    path = settings.data_dir / "console_secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    configured = replace(settings, console=ConsoleSettings(secret_key="s" * 40))
    assert console_secret(configured) == "s" * 40
