"""schemathesis against /openapi.json, in process: no server error for any generated request, and
every response conforms to the documented schema (status, content type, body)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

MAX_EXAMPLES = 20


@pytest.fixture
def api_schema(app, customer):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_no_server_error_and_responses_conform(api_schema, auth, db):
    headers = auth("admin")  # the widest role, so requests get past authorisation
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 18
    failures = []
    for operation in operations:

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(headers=headers)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert failures == [], "\n\n".join(failures)
