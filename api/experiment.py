"""Champion and challenger compared (issue 17): one use case for `GET /v1/rulesets/{kind}/
experiment`, `credo rules experiment KIND` and, later, the console.

Both arms are read over the same period, the experiment's (from its start to its end, or to
`as_of` while it runs), from the decisions that recorded the experiment in their `arm`:
- customers and decisions per arm, and the decisions' outcomes by field and value;
- what happened next, from the ledger: for each customer, its first decision in the experiment
  is the moment; the overdue balance then (the decision's `overdue_balance` fact) is what could
  be paid, and the payments dated in the N days after the decision's as_of date (the day after
  it to the Nth day, inclusive) are what was paid, counted up to that balance. The share paid
  within N days is, per currency (money is never added across currencies), the paid sum over
  the overdue sum of the customers whose N days are over by `as_of` (the others are counted as
  `not_yet`); the counts of customers paying and clearing their balance are over all of them.
- a two-proportion z-test on the customers who cleared their overdue balance within 30 days:
  with p ≥ 0.05 the note says the arms are too small (or too alike) to tell apart.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from api.lifecycle_rules import UnknownVersion, check_kind

WINDOWS = (14, 30)
ARMS = ("champion", "challenger")
SIGNIFICANCE = 0.05


def compare_arms(
    kind: str, experiment_id: int | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """The arms of an experiment of `kind` (by id, else the running one, else the last)
    compared; payments are known until `as_of` (default today, UTC). UnknownVersion when
    the kind has no such experiment."""
    from storage import experiments

    check_kind(kind)
    as_of = as_of or datetime.now(UTC).date()
    if experiment_id is not None:
        experiment = experiments.get_experiment(experiment_id)
        if experiment is None or experiment["kind"] != kind:
            raise UnknownVersion(f"rule set {kind} has no experiment {experiment_id}")
    else:
        experiment = experiments.latest_experiment(kind)
        if experiment is None:
            raise UnknownVersion(
                f"rule set {kind} has had no experiment: start one with `credo rules challenge "
                f"{kind} VERSION --share 10 --note WHY`"
            )
    decisions = _decisions(experiment["id"])
    end = experiment["ended_at"]
    period_to = min(as_of, date.fromisoformat(end[:10])) if end else as_of
    arms = {}
    for arm in ARMS:
        mine = [d for d in decisions if d["arm"] == arm]
        arms[arm] = _arm_figures(arm, experiment, mine, as_of)
    return {
        "kind": kind,
        "experiment": experiment,
        "period": {"from": experiment["started_at"][:10], "to": period_to.isoformat()},
        "as_of": as_of.isoformat(),
        "arms": arms,
        "comparison": two_proportions(
            arms["champion"]["paid_within"]["30"], arms["challenger"]["paid_within"]["30"]
        ),
    }


def _decisions(experiment_id: int) -> list[dict[str, Any]]:
    """The experiment's decisions, oldest first: seq, customer, arm, as_of, outcome and the
    overdue balance it saw."""
    from storage.models import Decision

    query = (
        Decision.select(
            Decision.seq, Decision.customer_id, Decision.arm, Decision.as_of,
            Decision.outcome, Decision.facts,
        )
        .where(Decision.experiment_id == experiment_id)
        .order_by(Decision.seq)
    )  # fmt: skip
    found = []
    for row in query:
        facts = _json(row.facts)
        found.append(
            {
                "customer_id": row.customer_id,
                "arm": row.arm,
                "as_of": row.as_of,
                "outcome": _json(row.outcome),
                "overdue": Decimal(str(facts.get("overdue_balance") or "0")),
            }
        )
    return found


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _arm_figures(
    arm: str, experiment: dict[str, Any], decisions: list[dict[str, Any]], as_of: date
) -> dict[str, Any]:
    outcomes: dict[str, Counter] = {}
    first: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        for field, value in decision["outcome"].items():
            outcomes.setdefault(field, Counter())[str(value)] += 1
        first.setdefault(decision["customer_id"], decision)
    payments, currencies = _payments(list(first), as_of), _currencies(list(first))
    for customer_id, decision in first.items():
        decision["currency"] = currencies.get(customer_id, "")
    return {
        "version": experiment[arm],
        "decisions": len(decisions),
        "customers": len(first),
        "outcomes": {f: dict(sorted(c.items())) for f, c in sorted(outcomes.items())},
        "paid_within": {
            str(days): paid_within(days, first.values(), payments, as_of) for days in WINDOWS
        },
    }


def _currencies(customer_ids: list[str]) -> dict[str, str]:
    """Each customer's currency (a customer no longer stored has none)."""
    from storage.models import Customer

    found = {}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        query = Customer.select(Customer.id, Customer.currency).where(Customer.id.in_(chunk))
        found.update(query.tuples())
    return found


def _payments(customer_ids: list[str], as_of: date) -> dict[str, list[tuple[date, Decimal]]]:
    """(date, amount) of each customer's payments dated up to `as_of`."""
    from storage.models import Payment

    found: dict[str, list[tuple[date, Decimal]]] = {c: [] for c in customer_ids}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        query = Payment.select(Payment.customer, Payment.date, Payment.amount).where(
            Payment.customer.in_(chunk) & (Payment.date <= as_of)
        )
        for customer, day, amount in query.tuples():
            found[customer].append((day, amount))
    return found


def paid_within(
    days: int,
    first: Any,
    payments: dict[str, list[tuple[date, Decimal]]],
    as_of: date,
) -> dict[str, Any]:
    """The share of the overdue balance paid within `days` of each customer's first decision,
    per currency, with the sums and counts behind it (see the module's docstring)."""
    money: dict[str, list] = {}  # currency -> [overdue, paid, customers]
    counted = paying = cleared = not_yet = no_overdue = 0
    for decision in first:
        overdue, start = decision["overdue"], decision["as_of"]
        if overdue <= 0:
            no_overdue += 1
            continue
        if start + timedelta(days=days) > as_of:
            not_yet += 1
            continue
        end = start + timedelta(days=days)
        paid = sum(
            (a for d, a in payments.get(decision["customer_id"], []) if start < d <= end),
            Decimal("0.00"),
        )
        paid = min(paid, overdue)
        counted += 1
        sums = money.setdefault(decision.get("currency", ""), [Decimal("0.00"), Decimal("0.00"), 0])
        sums[0] += overdue
        sums[1] += paid
        sums[2] += 1
        paying += paid > 0
        cleared += paid >= overdue
    return {
        "days": days,
        "by_currency": {
            currency: {
                "share": float(round(paid_sum / overdue_sum, 4)),
                "paid": str(paid_sum),
                "overdue": str(overdue_sum),
                "customers": customers,
            }
            for currency, (overdue_sum, paid_sum, customers) in sorted(money.items())
        },
        "customers": counted,
        "customers_paying": paying,
        "customers_cleared": cleared,
        "not_yet": not_yet,
        "no_overdue": no_overdue,
    }


def two_proportions(champion: dict[str, Any], challenger: dict[str, Any]) -> dict[str, Any]:
    """Two-proportion z-test of the customers who cleared their overdue balance (`customers_
    cleared` of `customers`) in each arm: z, the two-sided p-value and a note."""
    n1, c1 = champion["customers"], champion["customers_cleared"]
    n2, c2 = challenger["customers"], challenger["customers_cleared"]
    what = f"customers who cleared their overdue balance within {champion['days']} days"
    base = {"measure": what, "champion": [c1, n1], "challenger": [c2, n2]}
    if n1 == 0 or n2 == 0:
        note = f"too small to tell apart: no {what.split(' who')[0]} to compare in " + (
            "either arm" if n1 == n2 == 0 else ("the champion" if n1 == 0 else "the challenger")
        )
        return {**base, "z": None, "p_value": None, "distinguishable": False, "note": note}
    pooled = (c1 + c2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        z, p_value = 0.0, 1.0
    else:
        z = (c2 / n2 - c1 / n1) / spread
        p_value = math.erfc(abs(z) / math.sqrt(2))
    rates = f"{c1}/{n1} champion, {c2}/{n2} challenger"
    figures = f"z = {z:.2f}, p = {p_value:.3f}"
    if p_value >= SIGNIFICANCE:
        note = (
            f"too small to tell apart: {rates} {what} ({figures}; two-proportion z-test, "
            f"a difference needs p < {SIGNIFICANCE})"
        )
    else:
        better = "challenger" if z > 0 else "champion"
        note = f"the {better} does better: {rates} {what} ({figures}; two-proportion z-test)"
    return {
        **base,
        "z": round(z, 3),
        "p_value": round(p_value, 4),
        "distinguishable": p_value < SIGNIFICANCE,
        "note": note,
    }
