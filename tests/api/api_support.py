"""Helpers shared by the API tests (imported as `api_support`: tests/ has no packages)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from api.settings import ApiSettings, Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def make_settings(database_url: str, base_dir: Path, **api: object) -> Settings:
    """Settings for a test app; rule-set changes are seen at once unless told otherwise."""
    api_settings = replace(ApiSettings(ruleset_refresh_seconds=0.0), **api)
    settings = Settings(base_dir=base_dir, api=api_settings)
    return replace(settings, paths=replace(settings.paths, rules_dir=str(RULES_DIR)))


CUSTOMER = {
    "name": "Acme GmbH",
    "segment": "mid_market",
    "country": "DE",
    "currency": "EUR",
    "credit_limit": "20000.00",
    "credit_score": 640,
    "since": "2020-02-29",
}


def invoice(invoice_id: str, customer_id: str, issued: str, due: str, amount: str) -> dict:
    return {
        "id": invoice_id,
        "customer_id": customer_id,
        "issue_date": issued,
        "due_date": due,
        "amount": amount,
    }


def complete_facts(**overrides: object) -> dict:
    """A complete fact set given directly (credit and reminder decide from it)."""
    facts = {
        "customer_id": "X9",
        "segment": "smb",
        "country": "DE",
        "tenure_months": 40,
        "credit_limit": "10000.00",
        "credit_score": 720,
        "open_balance": "1000.00",
        "overdue_balance": "0.00",
        "overdue_1_30": "0.00",
        "overdue_31_60": "0.00",
        "overdue_61_90": "0.00",
        "overdue_90_plus": "0.00",
        "days_past_due": 0,
        "invoices_open": 1,
        "invoices_overdue": 0,
        "days_until_next_due": 12,
        "utilization": 0.1,
        "disputed_amount": "0.00",
        "has_open_dispute": False,
        "on_payment_plan": False,
        "plan_missed_installments": 0,
        "has_active_promise": False,
        "promises_broken_12m": 0,
        "late_payments_12m": 0,
        "avg_days_late_12m": 0.0,
        "last_reminder_tone": "none",
        "in_agency": False,
        "on_hold": False,
        "requested_amount": "500.00",
    }
    facts.update(overrides)
    return facts
