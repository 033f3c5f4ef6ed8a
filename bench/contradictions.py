"""One night of the demo portfolio: the worklist by action type, and the accounts whose actions
contradict each other or the collections policy.

    python bench/contradictions.py [--customers 2000] [--seed 7] [--as-of 2025-06-30]

Builds the demo portfolio (`credo demo`) in a fresh SQLite file, runs the nightly run for the
same date (`credo run`), then reads the run's actions and decisions straight from the database
(plain SQL, so the same script measures older versions of credo too) and prints:

- actions by type;
- contradictions, each counted in accounts: a hand-off and a reminder the same night; a plan
  offer and a reminder that does not mention the plan; a credit review for an account with an
  agency; a credit "refer" with no order (requested_amount 0); a call carrying an e-mail text
  instead of a call script; a plan offer without instalments adding up to its total; a letter
  with an ISO date (not written in the letter's locale);
- policy gaps, in accounts: an overdue undisputed balance left unchased because another invoice
  is disputed (no reminder tonight, none in the last 14 days); a promise broken in the last 7
  days, since the last reminder, with no phone call (unless a new promise or a kept payment
  plan stands); a reminder that skips a step of the ladder (friendly, firm, final,
  demand) from the last tone sent, and those of them whose decision's reasons do not say why
  (no reason mentions a skip).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")  # a letter's dates are in its locale
LADDER = {"none": 0, "courtesy": 0, "friendly": 1, "firm": 2, "final": 3, "demand": 4}
CONTRADICTIONS = (
    "handoff_and_reminder",
    "plan_offer_without_plan_in_reminder",
    "credit_review_for_agency_account",
    "refer_without_order",
    "phone_reminder_with_email_text",
    "plan_offer_without_terms",
    "letter_with_iso_date",
)
GAPS = (
    "undisputed_overdue_unchased",
    "broken_promise_without_call",
    "reminder_skips_a_step",
    "reminder_skips_a_step_unexplained",
)


def credo(args: list[str], env: dict[str, str]) -> None:
    """Run the credo CLI of this checkout (or of PYTHONPATH's) with `env`."""
    proc = subprocess.run(
        [sys.executable, "-m", "api", *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"credo {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def night(db: Path) -> tuple[list[dict], dict[tuple[str, str], dict]]:
    """The actions of the latest run, and its decisions by (customer, kind)."""
    con = sqlite3.connect(db)
    run_id = con.execute('SELECT run_id FROM "run" ORDER BY started_at DESC LIMIT 1').fetchone()[0]
    actions = [
        {"customer_id": c, "type": t, "payload": json.loads(p)}
        for c, t, p in con.execute(
            'SELECT customer_id, type, payload FROM "action" WHERE run_id = ?', (run_id,)
        )
    ]
    decisions = {}
    for customer, kind, outcome, facts, reasons in con.execute(
        'SELECT customer_id, kind, outcome, facts, reasons FROM "decision" WHERE requested_by = ?',
        (f"run:{run_id}",),
    ):
        decisions[(customer, kind)] = {
            "outcome": json.loads(outcome),
            "facts": json.loads(facts),
            "reasons": json.loads(reasons),
        }
    return actions, decisions


def mentions_plan(payload: dict) -> bool:
    if payload.get("notice") == "plan_offer":
        return True
    text = payload.get("message") or payload.get("call_script") or {}
    body = text.get("body", "").lower()
    return "plan" in body or "raten" in body


def plan_adds_up(payload: dict) -> bool:
    """The offer's instalments add up to its total (amounts are strings with two decimals)."""
    plan = payload.get("plan") or {}
    cents = sum(int(i["amount"].replace(".", "")) for i in plan.get("instalments", []))
    return bool(plan.get("instalments")) and cents == int(plan["total"].replace(".", ""))


def count(actions: list[dict], decisions: dict) -> tuple[Counter, dict[str, set[str]]]:
    by_type = Counter(a["type"] for a in actions)
    per_customer: dict[str, dict[str, dict]] = defaultdict(dict)
    for action in actions:
        per_customer[action["customer_id"]][action["type"]] = action["payload"]
    found: dict[str, set[str]] = {name: set() for name in CONTRADICTIONS + GAPS}
    for customer, acts in per_customer.items():
        facts = (decisions.get((customer, "credit")) or {}).get("facts", {})
        reminder = acts.get("reminder")
        if "handoff" in acts and reminder:
            found["handoff_and_reminder"].add(customer)
        if "offer_plan" in acts and reminder and not mentions_plan(reminder):
            found["plan_offer_without_plan_in_reminder"].add(customer)
        if "offer_plan" in acts and not plan_adds_up(acts["offer_plan"]):
            found["plan_offer_without_terms"].add(customer)
        if reminder and reminder.get("channel") == "phone" and "message" in reminder:
            found["phone_reminder_with_email_text"].add(customer)
        if reminder and ISO_DATE.search((reminder.get("message") or {}).get("body", "")):
            found["letter_with_iso_date"].add(customer)
        if "credit_review" in acts and facts.get("in_agency"):
            found["credit_review_for_agency_account"].add(customer)
        if reminder:
            last = LADDER.get(facts.get("last_reminder_tone", "none"), 0)
            if LADDER.get(reminder.get("tone"), 0) > last + 1:
                found["reminder_skips_a_step"].add(customer)
                reasons = (decisions.get((customer, "reminder")) or {}).get("reasons", [])
                if not any("skip" in reason for reason in reasons):
                    found["reminder_skips_a_step_unexplained"].add(customer)
    for (customer, kind), decision in decisions.items():
        facts, acts = decision["facts"], per_customer.get(customer, {})
        if kind == "credit":
            asked = float(facts.get("requested_amount") or 0)
            if decision["outcome"].get("decision") == "refer" and asked == 0:
                found["refer_without_order"].add(customer)
            continue
        if kind != "reminder" or facts.get("in_agency") or facts.get("on_hold"):
            continue
        if "handoff" in acts:
            continue
        since = facts.get("days_since_last_reminder")
        quiet = "reminder" not in acts and (since is None or since >= 14)
        if facts.get("has_open_dispute") and facts.get("days_past_due", 0) >= 1 and quiet:
            found["undisputed_overdue_unchased"].add(customer)
        broken = facts.get("days_since_broken_promise")
        kept_plan = facts.get("on_payment_plan") and facts.get("plan_missed_installments") == 0
        agreed = facts.get("has_active_promise") or kept_plan
        if broken is not None and broken <= 7 and facts.get("days_past_due", 0) >= 1 and not agreed:
            reminder = acts.get("reminder")
            if (reminder or {}).get("channel") != "phone" and (since is None or since > broken):
                found["broken_promise_without_call"].add(customer)
    return by_type, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2025-06-30", type=date.fromisoformat)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "credo.db"
        env = {**os.environ, "CREDO_DATABASE_URL": f"sqlite:///{db}", "CREDO_RUN_WORKERS": "1"}
        day = args.as_of.isoformat()
        credo(["demo", "--customers", str(args.customers), "--seed", str(args.seed),
               "--as-of", day, "--json"], env)  # fmt: skip
        credo(["run", "--as-of", day, "--force", "--json"], env)
        actions, decisions = night(db)
    by_type, found = count(actions, decisions)
    print(f"demo portfolio: {args.customers} customers, seed {args.seed}, night of {day}")
    print(f"{'actions by type':<40} {'count':>7}")
    for kind, number in sorted(by_type.items()):
        print(f"  {kind:<38} {number:>7}")
    print(f"  {'all':<38} {sum(by_type.values()):>7}")
    print(f"{'contradictions (accounts)':<40} {'count':>7}")
    for name in CONTRADICTIONS:
        print(f"  {name:<38} {len(found[name]):>7}")
    print(f"  {'accounts with any contradiction':<38} "
          f"{len(set().union(*(found[n] for n in CONTRADICTIONS))):>7}")  # fmt: skip
    print(f"{'policy gaps (accounts)':<40} {'count':>7}")
    for name in GAPS:
        print(f"  {name:<38} {len(found[name]):>7}")


if __name__ == "__main__":
    main()
