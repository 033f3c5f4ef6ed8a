"""Hostile values in URLs: dates at the calendar's edges, too many filters, NUL bytes and bytes
that are not UTF-8 in path and query parameters. Each is a 422 naming the parameter; never a
500, nor a 503 a client would retry forever."""

from __future__ import annotations

import pytest
from api_support import CUSTOMER

from api.http.decision_schemas import MAX_OUTCOME_FILTERS

PROBLEM = "application/problem+json"
LISTINGS = ("/v1/decisions", "/v1/decisions/export")
TEXT = "must be UTF-8 text without control characters"


def get(client, path, headers, **kwargs):
    # Read and close: a streamed export left open would be finalised during a later request.
    with client.get(path, headers=headers, **kwargs) as response:
        response.get_data()
    return response


def assert_names(response, field, message):
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert message in " ".join(response.json["errors"][field]), response.json
    assert field in response.json["detail"]


@pytest.fixture
def decided(client, auth, customer) -> str:
    """The id of one stored decision (for customer C1)."""
    body = {"customer_id": customer, "as_of": "2024-05-01"}
    response = client.post("/v1/decisions/credit", json=body, headers=auth("decide"))
    assert response.status_code == 201, response.json
    return response.json["decision_id"]


EDGE_DATES = [
    ("to", "9999-12-31"),
    ("from", "9999-12-31T23:59:59-01:00"),
    ("to", "0001-01-01T00:00:00+01:00"),
    ("from", "0001-01-01"),
    ("to", "9999-12-31T23:59:59+00:00"),
]


def test_dates_at_the_edge_of_the_calendar_are_422_naming_the_parameter(client, auth):
    for path in LISTINGS:
        for name, value in EDGE_DATES:
            response = get(client, path, auth("auditor"), query_string={name: value})
            assert_names(response, name, "must be between 1900-01-01 and 2199-12-31")
    for path, name in (("/v1/customers/C1/facts", "as_of"), ("/v1/runs", "before")):
        for value in ("9999-12-31", "0001-01-01"):
            response = get(client, path, auth("admin"), query_string={name: value})
            assert_names(response, name, "must be between 1900-01-01 and 2199-12-31")
    response = client.post("/v1/runs", json={"as_of": "9999-12-31"}, headers=auth("admin"))
    assert_names(response, "as_of", "must be between 1900-01-01 and 2199-12-31")


def test_the_last_and_first_days_allowed_still_filter(client, auth, decided):
    for query in ({"to": "2199-12-31"}, {"from": "1900-01-01T00:00:00+14:00"}):
        response = get(client, "/v1/decisions", auth("auditor"), query_string=query)
        assert response.status_code == 200, response.json
        assert [d["decision_id"] for d in response.json["items"]] == [decided]
        response = get(client, "/v1/decisions/export", auth("auditor"), query_string=query)
        assert response.status_code == 200 and decided in response.get_data(as_text=True)
    response = get(client, "/v1/decisions", auth("auditor"), query_string={"from": "2199-12-31"})
    assert response.json["items"] == []


def test_too_many_outcome_filters_are_422_naming_the_cap(client, auth, decided):
    many = [("outcome", f"field_{i}=x") for i in range(100)]
    for path in LISTINGS:
        response = get(client, path, auth("auditor"), query_string=many)
        assert_names(response, "outcome", f"at most {MAX_OUTCOME_FILTERS} outcome filters")
        assert "Retry-After" not in response.headers
    most = [("outcome", f"field_{i}=x") for i in range(MAX_OUTCOME_FILTERS)]
    response = get(client, "/v1/decisions", auth("auditor"), query_string=[*most, ("rule", "X")])
    assert response.status_code == 200 and response.json["items"] == []


def test_the_openapi_document_states_the_cap(client):
    parameters = client.get("/openapi.json").json["paths"]["/v1/decisions"]["get"]["parameters"]
    outcome = next(p for p in parameters if p["name"] == "outcome")
    assert outcome["schema"]["maxItems"] == MAX_OUTCOME_FILTERS


# (method, path template, parameter named in it, role, body)
PATH_PARAMETERS = [
    ("GET", "/v1/decisions/{}", "kind_or_id", "auditor", None),
    ("POST", "/v1/decisions/{}", "kind_or_id", "decide", {"customer_id": "C1"}),
    ("GET", "/v1/customers/{}/facts", "customer_id", "auditor", None),
    ("PUT", "/v1/customers/{}", "customer_id", "decide", CUSTOMER),
    ("GET", "/v1/runs/{}", "run_id", "auditor", None),
    ("GET", "/v1/runs/{}/actions", "run_id", "auditor", None),
    ("GET", "/v1/rulesets/{}", "kind", "auditor", None),
]


def test_nul_and_control_characters_in_path_parameters_are_422_naming_them(client, auth):
    for method, template, name, role, body in PATH_PARAMETERS:
        for value in ("a%00b", "%00", "C1%0A", "a%7Fb"):
            path = template.format(value)
            response = client.open(path, method=method, json=body, headers=auth(role))
            assert_names(response, name, TEXT)


def test_bytes_not_utf8_in_path_parameters_are_422_naming_them(client, auth):
    """A server hands the path's bytes over as latin-1 characters (PEP 3333); werkzeug would
    read the lone surrogate's bytes ED A0 80 as three U+FFFD and look that id up."""
    for method, template, name, role, body in PATH_PARAMETERS:
        for raw in (b"\xed\xa0\x80", b"C\xff1"):
            path_info = template.format(raw.decode("latin-1"))
            response = client.open(
                "/",
                method=method,
                json=body,
                headers=auth(role),
                environ_overrides={"PATH_INFO": path_info},
            )
            assert_names(response, name, TEXT)


QUERY_FILTERS = [
    "customer_id=a%00b",
    "customer_id=%ED%A0%80",
    "customer_id=%FF",
    "kind=credit%00",
    "rule=CR%00-010",
    "rule=CR-010%0D%0A",
    "outcome=tone=firm%00",
    "outcome=tone=%ED%A0%80",
]


def test_nul_and_bytes_not_utf8_in_query_filters_are_422_naming_them(client, auth, decided):
    for path in LISTINGS:
        for query in QUERY_FILTERS:
            response = get(client, f"{path}?{query}", auth("auditor"))
            assert_names(response, query.partition("=")[0], TEXT)
    # Sent raw rather than percent-encoded: werkzeug's request.args raised on it (a 500).
    for query in ("customer_id=\xff", "customer_id=\xed\xa0\x80"):
        response = get(
            client, "/v1/decisions", auth("auditor"), environ_overrides={"QUERY_STRING": query}
        )
        assert_names(response, "customer_id", TEXT)
    response = get(client, "/v1/customers/C1/facts?as_of=%00", auth("auditor"))
    assert_names(response, "as_of", TEXT)


def test_percent_signs_meant_literally_still_filter(client, auth, decided):
    """`%25ED%25A0%2580` is the nine characters "%ED%A0%80": text, found nowhere."""
    response = get(client, "/v1/decisions?customer_id=%25ED%25A0%2580", auth("auditor"))
    assert response.status_code == 200 and response.json["items"] == []
    response = get(client, "/v1/decisions?customer_id=C1&kind=credit", auth("auditor"))
    assert [d["decision_id"] for d in response.json["items"]] == [decided]


def test_a_bad_query_on_an_unknown_path_is_still_404(client, auth):
    response = get(client, "/v1/nothing?customer_id=%00", auth("auditor"))
    assert response.status_code == 404
