"""Helpers of the rollout tests (imported as `rollout_support`): an approved second reminder
version, customers with overdue invoices, and a clock a test moves by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api_support import CUSTOMER, invoice
from lifecycle_support import edited_reminder

BASE = "/v1/rulesets/reminder"


@dataclass
class Clock:
    """A wall clock a test sets: `now` is what it says."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def approved_version(client, as_, tag: str = "the agency chases") -> int:
    """A new reminder version drafted and proposed by alice, approved by bob."""
    draft = client.post(
        f"{BASE}/versions",
        json={"source": edited_reminder(tag), "note": "clearer reason"},
        headers=as_("alice-analyst"),
    )
    assert draft.status_code == 201, draft.json
    version = draft.json["version"]
    for who, move in (("alice-analyst", "propose"), ("bob-approver", "approve")):
        moved = client.post(f"{BASE}/versions/{version}/{move}", headers=as_(who))
        assert moved.status_code == 200, moved.json
    return version


def add_customers(client, headers, count: int, prefix: str = "K") -> list[str]:
    """`count` customers, each with one invoice 20 days overdue on 2024-05-01."""
    records = []
    for n in range(count):
        cid = f"{prefix}{n:03d}"
        records.append({"type": "customer", "id": cid, **CUSTOMER})
        records.append(
            {"type": "invoice", **invoice(f"{cid}-I", cid, "2024-03-12", "2024-04-11", "500.00")}
        )
    response = client.post("/v1/ledger/batch", json={"records": records}, headers=headers)
    assert response.status_code == 200, response.json
    return [f"{prefix}{n:03d}" for n in range(count)]


def in_an_hour() -> datetime:
    return (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
