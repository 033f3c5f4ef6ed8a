"""The arms of an experiment compared (issue 17 item 3) on a hand-built ledger whose payments
are worked out by hand, over HTTP and `credo rules experiment`; on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest
from api_support import CUSTOMER, invoice
from lifecycle_support import make_people
from rollout_support import BASE, approved_version

from api.arms import arm_of


@pytest.fixture
def as_(app):
    keys = make_people()
    return lambda name: {"Authorization": f"Bearer {keys[name]}"}


def _pick(experiment: int) -> tuple[list[str], list[str]]:
    """Two customer ids in the champion's arm and three in the challenger's (share 50)."""
    ids = [f"P{n:03d}" for n in range(100)]
    champion = [c for c in ids if arm_of(experiment, c, 50) == "champion"][:2]
    challenger = [c for c in ids if arm_of(experiment, c, 50) == "challenger"][:3]
    return champion, challenger


def _payment(pid: str, cid: str, day: str, amount: str) -> dict:
    return {"type": "payment", "id": pid, "customer_id": cid, "date": day, "amount": amount}


@pytest.fixture
def experiment(client, as_, auth) -> dict:
    """Experiment of reminder version 2 on 50%; five customers, each 500.00 overdue when
    decided on 2024-05-01, then paying:
      champion A: 200.00 on 05-10 (day 9), 300.00 on 05-25 (day 24)  → 14 d: 200, 30 d: 500
      champion B: nothing                                             → 0, 0
      challenger C: 500.00 on 05-03 (day 2)                           → 500, 500 (cleared)
      challenger D: 100.00 on 05-20 (day 19), 900.00 on 05-28 (day 27) → 0, 500 (capped)
      challenger E: 50.00 on 05-01, the decision's day (not after it)  → 0, 0
    """
    version = approved_version(client, as_)
    started = client.post(
        f"{BASE}/versions/{version}/challenge",
        json={"share": 50, "note": "clearer wording"},
        headers=as_("carol-approver"),
    ).json["experiment"]
    (a, b), (c, d, e) = _pick(started["id"])
    records = []
    for cid in (a, b, c, d, e):
        records.append({"type": "customer", "id": cid, **CUSTOMER})
        records.append(
            {"type": "invoice", **invoice(f"{cid}-I", cid, "2024-03-12", "2024-04-11", "500.00")}
        )
    decide = auth("decide")
    assert (
        client.post("/v1/ledger/batch", json={"records": records}, headers=decide).status_code
        == 200
    )
    for cid in (a, b, c, d, e):
        body = {"customer_id": cid, "as_of": "2024-05-01"}
        decided = client.post("/v1/decisions/reminder", json=body, headers=decide)
        assert decided.json["facts"]["overdue_balance"] == "500.00"
    payments = [
        _payment("PA1", a, "2024-05-10", "200.00"),
        _payment("PA2", a, "2024-05-25", "300.00"),
        _payment("PC1", c, "2024-05-03", "500.00"),
        _payment("PD1", d, "2024-05-20", "100.00"),
        _payment("PD2", d, "2024-05-28", "900.00"),
        _payment("PE1", e, "2024-05-01", "50.00"),
    ]
    assert (
        client.post("/v1/ledger/batch", json={"records": payments}, headers=decide).status_code
        == 200
    )
    return started


def test_the_arms_compared_on_payments_worked_out_by_hand(client, as_, experiment):
    response = client.get(f"{BASE}/experiment", headers=as_("dave-auditor"))
    assert response.status_code == 200, response.json  # as_of today: every window is over
    report = response.json
    champion, challenger = report["arms"]["champion"], report["arms"]["challenger"]
    assert (champion["version"], challenger["version"]) == (1, 2)
    assert (champion["customers"], challenger["customers"]) == (2, 3)
    assert (champion["decisions"], challenger["decisions"]) == (2, 3)
    (tone,) = champion["outcomes"]["tone"]
    assert champion["outcomes"]["tone"] == {tone: 2} and challenger["outcomes"]["tone"] == {tone: 3}

    def figures(arm, days):
        paid = arm["paid_within"][str(days)]
        (currency,) = paid["by_currency"]
        money = paid["by_currency"][currency]
        assert money["customers"] == paid["customers"]
        return (
            money["share"], money["paid"], money["overdue"], paid["customers"],
            paid["customers_paying"], paid["customers_cleared"], paid["not_yet"],
        )  # fmt: skip

    assert figures(champion, 14) == (0.2, "200.00", "1000.00", 2, 1, 0, 0)
    assert figures(champion, 30) == (0.5, "500.00", "1000.00", 2, 1, 1, 0)
    assert figures(challenger, 14) == (0.3333, "500.00", "1500.00", 3, 1, 1, 0)
    assert figures(challenger, 30) == (0.6667, "1000.00", "1500.00", 3, 2, 2, 0)

    comparison = report["comparison"]
    z = (2 / 3 - 1 / 2) / math.sqrt(0.6 * 0.4 * (1 / 2 + 1 / 3))  # pooled 3 of 5 cleared
    assert comparison["z"] == round(z, 3) == 0.373
    assert comparison["p_value"] == round(math.erfc(z / math.sqrt(2)), 4)
    assert comparison["distinguishable"] is False
    assert comparison["note"].startswith(
        "too small to tell apart: 1/2 champion, 2/3 challenger customers who cleared their "
        "overdue balance within 30 days (z = 0.37, p = 0.709"
    )
    assert report["period"]["from"] == experiment["started_at"][:10]


def test_windows_not_over_yet_are_counted_apart(client, as_, experiment):
    """On 2024-05-20 the 14 days are over (05-15), the 30 days are not (05-31)."""
    response = client.get(f"{BASE}/experiment", headers=as_("dave-auditor"))
    assert response.status_code == 200
    from datetime import date

    from api.experiment import compare_arms

    report = compare_arms("reminder", as_of=date(2024, 5, 20))
    champion = report["arms"]["champion"]["paid_within"]
    (money,) = champion["14"]["by_currency"].values()
    assert (money["share"], champion["14"]["customers"]) == (0.2, 2)
    thirty = champion["30"]
    assert (thirty["by_currency"], thirty["customers"], thirty["not_yet"]) == ({}, 0, 2)
    assert report["comparison"]["note"] == (
        "too small to tell apart: no customers to compare in either arm"
    )


def test_the_report_of_a_kind_without_experiment_is_404(client, as_):
    response = client.get("/v1/rulesets/credit/experiment", headers=as_("dave-auditor"))
    assert response.status_code == 404
    assert response.json["detail"] == (
        "rule set credit has had no experiment: start one with `credo rules challenge credit "
        "VERSION --share 10 --note WHY`"
    )
    other = client.get(f"{BASE}/experiment?experiment=99", headers=as_("dave-auditor"))
    assert (
        other.status_code == 404
        and other.json["detail"] == "rule set reminder has no experiment 99"
    )
    bad = client.get(f"{BASE}/experiment?experiment=abc", headers=as_("dave-auditor"))
    assert bad.status_code == 422 and "experiment" in bad.json["errors"]


def test_credo_rules_experiment_prints_the_arms_and_refusals_exit_2(settings, experiment):
    from click.testing import CliRunner

    from api.cli.main import main

    env = {"CREDO_DATABASE_URL": settings.database_url}
    shown = CliRunner().invoke(main, ["rules", "experiment", "reminder"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == (
        f"reminder: experiment {experiment['id']}, running: version 2 on 50% of customers "
        "against version 1"
    )
    assert (
        "  paid within 30 days: 50.0% in EUR (500.00 of 1000.00 overdue) (2 customers, "
        "1 cleared, 0 not yet due)"
    ) in lines
    assert (
        "  paid within 14 days: 33.3% in EUR (500.00 of 1500.00 overdue) (3 customers, "
        "1 cleared, 0 not yet due)"
    ) in lines
    assert lines[-1].startswith("too small to tell apart: 1/2 champion, 2/3 challenger")
    unknown = CliRunner().invoke(main, ["rules", "experiment", "credit"], env=env)
    assert unknown.exit_code == 2 and "rule set credit has had no experiment" in unknown.output
    stop = CliRunner().invoke(main, ["rules", "stop-challenge", "reminder", "--note", "x"], env=env)
    assert stop.exit_code == 2 and "this command acts as an API key" in stop.output


def test_money_is_shared_per_currency_never_summed_across():
    from datetime import date
    from decimal import Decimal as D

    from api.experiment import paid_within

    day = date(2024, 5, 1)
    first = [
        {"customer_id": "E", "as_of": day, "overdue": D("1000.00"), "currency": "EUR"},
        {"customer_id": "G", "as_of": day, "overdue": D("300.00"), "currency": "GBP"},
        {"customer_id": "G2", "as_of": day, "overdue": D("100.00"), "currency": "GBP"},
    ]
    payments = {"E": [(date(2024, 5, 3), D("250.00"))], "G": [(date(2024, 5, 9), D("400.00"))]}
    paid = paid_within(14, first, payments, date(2024, 6, 30))
    assert paid["by_currency"] == {
        "EUR": {"share": 0.25, "paid": "250.00", "overdue": "1000.00", "customers": 1},
        "GBP": {"share": 0.75, "paid": "300.00", "overdue": "400.00", "customers": 2},
    }  # G paid more than it owed: counted up to its balance
    assert (paid["customers"], paid["customers_paying"], paid["customers_cleared"]) == (3, 2, 1)
