"""Helpers of the console's audit tests (imported as `console_audit_support`): decisions made
over the API, a page's text as a reader sees it, a stored decision altered behind credo's back."""

from __future__ import annotations

import html
import re

from api_support import complete_facts

HOSTILE = "<script>alert(1)</script>"
# A credit order over the limit by a low-risk customer: CR-300 refers it (as test_audit_decisions).
OVER_LIMIT = {
    "requested_amount": "61250.00",
    "open_balance": "0.00",
    "credit_limit": "50000.00",
    "new_exposure": "61250.00",
    "invoices_paid_12m": 5,
}
HANDOFF = {
    "days_past_due": 61,
    "overdue_balance": "4200.00",
    "last_reminder_tone": "final",
    "days_since_last_reminder": 21,
    "promises_broken_12m": 2,
}


def decide(client, auth, kind: str, **facts) -> dict:
    body = {"facts": complete_facts(**facts), "as_of": "2024-05-01"}
    response = client.post(f"/v1/decisions/{kind}", json=body, headers=auth("decide"))
    assert response.status_code == 201, response.json
    return response.json


def text_of(response) -> str:
    """The page's text without tags, entities decoded (what a reader sees)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def tamper(decision_id: str, column: str, value: str) -> None:
    from storage.db import database

    database.execute_sql(
        f'UPDATE "decision" SET "{column}" = {database.param} WHERE "decision_id" = '
        + database.param,
        (value, decision_id),
    )
