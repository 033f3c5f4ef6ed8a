"""Every malformed request gets a 4xx application/problem+json saying what is wrong; never a 500."""

from __future__ import annotations

from api_support import complete_facts, invoice, make_settings

PROBLEM = "application/problem+json"


def post_raw(client, auth, path, data, content_type="application/json"):
    return client.post(path, data=data, content_type=content_type, headers=auth("decide"))


def assert_problem(response, status, *, detail_has="", field=None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status
    assert body["type"].startswith("urn:credo:problem:")
    assert body["title"] and body["detail"]
    assert detail_has in body["detail"], body["detail"]
    if field is not None:
        assert field in body["errors"], body["errors"]
    return body


MALFORMED = [
    ('{"facts": ', "malformed JSON: Expecting value at line 1 column 11"),
    ('{"facts": {"open_balance": NaN}}', "NaN is not a valid JSON number"),
    ('{"facts": {"open_balance": Infinity}}', "Infinity is not a valid JSON number"),
    ('{"facts": {"open_balance": -Infinity}}', "-Infinity is not a valid JSON number"),
    ('{"facts": {"open_balance": 1e999}}', "number 1e999 is out of range"),
    ('{"facts": {}, "facts": {}}', "duplicate key 'facts'"),
    ('{"facts": {"open_balance": ' + "9" * 5000 + "}}", "malformed JSON"),
    ("[" * 100_000 + "]" * 100_000, "malformed JSON"),
    ("{'facts': {}}", "malformed JSON: Expecting property name enclosed in double quotes"),
]


def test_malformed_json_is_400(client, auth):
    for data, detail in MALFORMED:
        response = post_raw(client, auth, "/v1/decisions/credit", data)
        assert_problem(response, 400, detail_has=detail)


def test_body_that_is_not_utf8_is_400(client, auth):
    response = post_raw(client, auth, "/v1/decisions/credit", b'{"facts": "\xff"}')
    assert_problem(response, 400, detail_has="not UTF-8")


def test_body_that_is_not_json_is_415(client, auth):
    response = post_raw(client, auth, "/v1/invoices", "id=I1", "application/x-www-form-urlencoded")
    assert_problem(response, 415, detail_has="must be application/json")


BAD_DECISION_BODIES = [
    ([1, 2], "_schema", "Invalid input type."),
    ({"facts": "all of them"}, "facts", "Not a valid mapping type."),
    ({"facts": {}, "bogus": 1}, "bogus", "Unknown field."),
    ({"customer_id": 42}, "customer_id", "Not a valid string."),
    ({"customer_id": ""}, "customer_id", "Length must be between 1 and 64."),
    ({"facts": {}, "as_of": "2023-02-29"}, "as_of", "not a date that exists"),
    ({"facts": {}, "as_of": "9999-01-01"}, "as_of", "must be between 1900-01-01 and 2199-12-31"),
    ({"facts": complete_facts(open_balance="1e3")}, "facts.open_balance", "like"),
    ({"facts": complete_facts(open_balance=10**13)}, "facts.open_balance", "out of range"),
    ({"facts": complete_facts(utilization=True)}, "facts.utilization", ""),
]


def test_invalid_decision_bodies_are_422_naming_the_field(client, auth):
    for body, field, message in BAD_DECISION_BODIES:
        response = client.post("/v1/decisions/credit", json=body, headers=auth("decide"))
        problem = assert_problem(response, 422, field=field)
        assert message in " ".join(problem["errors"][field]), (body, problem)


BAD_INVOICE_CHANGES = [
    ({"amount": "-1.00"}, "amount", "must not be negative"),
    ({"amount": 1e15}, "amount", "must be at most"),
    ({"amount": "12.345"}, "amount", "at most two decimals"),
    ({"amount": "twelve"}, "amount", "is not an amount"),
    ({"amount": None}, "amount", ""),
    ({"due_date": "2023-02-29"}, "due_date", "not a date that exists"),
    ({"due_date": "2024-01-01"}, "due_date", "must not be before issue_date"),
    ({"issue_date": 20240101}, "issue_date", "YYYY-MM-DD"),
    ({"colour": "red"}, "colour", "Unknown field."),
    ({"id": None}, "id", ""),
]


def test_invalid_ledger_records_are_422_naming_the_field(client, auth):
    for changes, field, message in BAD_INVOICE_CHANGES:
        body = {**invoice("I1", "C1", "2024-02-01", "2024-03-02", "10.00"), **changes}
        response = client.post("/v1/invoices", json=body, headers=auth("decide"))
        problem = assert_problem(response, 422, field=field)
        assert message in " ".join(problem["errors"][field]), (changes, problem)


def test_missing_fields_are_listed_together(client, auth):
    response = client.post("/v1/invoices", json={"id": "I1"}, headers=auth("decide"))
    problem = assert_problem(response, 422)
    assert set(problem["errors"]) == {"customer_id", "issue_date", "due_date", "amount"}
    assert problem["errors"]["amount"] == ["Missing data for required field."]


def test_unknown_path_and_method(client, auth):
    assert_problem(
        client.get("/v1/nothing-here"), 404, detail_has="no resource at /v1/nothing-here"
    )
    response = client.delete("/v1/invoices", headers=auth("decide"))
    assert_problem(response, 405, detail_has="DELETE is not allowed on /v1/invoices")
    assert "POST" in response.headers["Allow"]


def test_oversized_body_is_413(db, database_url, tmp_path):
    from api.app import create_app
    from storage import keys

    settings = make_settings(database_url, tmp_path, max_body_bytes=2000)
    app = create_app(settings.with_database_url(database_url))
    key, _ = keys.create_key("erp", "decide")
    body = {"records": [{"type": "customer", "id": f"C{i}", "name": "x" * 50} for i in range(40)]}
    response = app.test_client().post(
        "/v1/ledger/batch", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert_problem(response, 413, detail_has="larger than 2000 bytes (api.max_body_bytes)")


def test_an_unexpected_error_is_a_500_problem_without_internals(app, caplog):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert body["detail"] == "internal error; the server log has the details"
    assert "secret internals" in caplog.text
