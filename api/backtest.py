"""Backtest: a candidate rule set replayed over the stored decisions of its kind made in a past
period, each on the facts it stored, beside the outcome it had. Lists the decisions it would
have decided differently, with the same from→to matrix and money as a simulation (api.impact).
Nothing is stored.

The period is of creation dates (UTC), both ends included. Decisions are read in seq order a
chunk at a time (storage.decisions.iter_decisions), so a period of any size fits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from api.impact import UNKNOWN_CURRENCY, Impact
from api.impact import side as side_of
from api.settings import Settings
from api.simulation import BadParameters, Candidate, stored_candidate
from engine.runtime import Engine

Progress = Callable[[int, int], None]  # (done, total)
CHUNK = 1000


def check_period(first: date, last: date) -> None:
    """BadParameters unless `first` is on or before `last`."""
    if first > last:
        raise BadParameters({"from": [f"must be on or before to ({last.isoformat()})"]})


def backtest(
    candidate: Candidate, first: date, last: date, progress: Progress | None = None
) -> dict[str, Any]:
    """Evaluate `candidate` on the stored facts of every decision of its kind created from
    `first` to `last` (inclusive, UTC); the decisions whose outcome would differ."""
    from storage.decisions import DecisionFilter, count_decisions, iter_decisions

    check_period(first, last)
    kind = candidate.ruleset.kind
    filters = DecisionFilter(
        kind=kind,
        created_from=datetime.combine(first, time(), UTC),
        created_to=datetime.combine(last + timedelta(days=1), time(), UTC),
    )
    total = count_decisions(filters)
    engine, impact, done = Engine(), Impact(order_key="seq"), 0
    for chunk in _chunks(iter_decisions(filters, CHUNK), CHUNK):
        _replay(engine, candidate, chunk, impact)
        done += len(chunk)
        if progress:
            progress(done, total)
    return {
        "type": "backtest",
        "kind": kind,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "candidate": candidate.to_json(),
        "decisions": total,
        **impact.to_json(candidate.ruleset),
    }


def backtest_job(
    settings: Settings,  # noqa: ARG001 - every job type takes them
    params: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """The "backtest" job type (api.jobs): params kind, version, from, to."""
    candidate = stored_candidate(params["kind"], params["version"])
    first, last = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
    return backtest(candidate, first, last, progress)


def _chunks(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(items, size)):
        yield chunk


def _replay(
    engine: Engine, candidate: Candidate, decisions: list[dict[str, Any]], impact: Impact
) -> None:
    from engine.facts import FACTS, check_facts
    from storage.ledger import customer_currencies

    currencies = customer_currencies(_ids(decisions))
    for decision in decisions:
        stored = decision["facts"]
        subject = {
            "seq": decision["seq"],
            "decision_id": decision["decision_id"],
            "customer_id": decision["customer_id"],
            "as_of": decision["as_of"],
            "created_at": decision["created_at"],
            "ruleset": decision["ruleset"],
        }
        try:
            # Facts outside today's catalogue (an earlier decision's, say) pass unchanged.
            facts = check_facts(stored, complete=False, extra_names=set(stored) - set(FACTS))
            new = engine.evaluate(candidate.ruleset, facts)
        except Exception as exc:  # noqa: BLE001 - one decision's failure is counted, not fatal
            impact.add_error(subject, exc)
            continue
        old = {
            "outcome": decision["outcome"],
            "reasons": decision["reasons"],
            "fired": [rule["id"] for rule in decision["fired"]],
        }
        impact.add(
            subject,
            currencies.get(decision["customer_id"], UNKNOWN_CURRENCY),
            facts.get("open_balance", Decimal("0.00")),
            facts.get("overdue_balance", Decimal("0.00")),
            old,
            side_of(new),
        )


def _ids(decisions: Iterable[dict[str, Any]]) -> list[str]:
    return [d["customer_id"] for d in decisions if d["customer_id"] is not None]
