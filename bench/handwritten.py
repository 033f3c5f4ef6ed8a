"""The default rule sets (rules/credit.toml, reminder.toml, handoff.toml) written as plain Python.

The benchmark's yardstick: the same decisions without a rules engine. Each function takes a
complete fact set as engine.facts.derive_facts returns it (only the facts the catalogue marks as
possibly absent may be missing) and returns (outcome, fired rule ids), exactly as the engine
decides under `hit_policy = "first"`: the set-only rules that match fire first, then the first
deciding rule. A rule that reads an absent fact does not match, as in the engine. Reasons are not
rendered here. Keep these in step with the TOML files: bench/engine.py reports every mismatch.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

Outcome = dict[str, Any]
FINAL_TONES = ("final", "demand")
HALF_AGAIN = Decimal("1.5")
FOUR_FIFTHS = Decimal("0.8")


def _credit(decision: str, credit_limit: Decimal | None = None) -> Outcome:
    return {"decision": decision, "credit_limit": credit_limit, "terms_days": 30}


def decide_credit(f: dict[str, Any]) -> tuple[Outcome, list[str]]:
    """rules/credit.toml: approve, refer or decline a credit request."""
    broken, late_days, late_count = (
        f["promises_broken_12m"],
        f["days_past_due"],
        f["late_payments_12m"],
    )
    avg_late = f["avg_days_late_12m"]
    if broken >= 2 or late_days > 60 or late_count >= 6 or avg_late > 30:
        band, fired = "high", ["CR-001"]
    elif broken == 1 or late_days > 15 or late_count >= 3 or avg_late > 10:
        band, fired = "medium", ["CR-002"]
    elif broken == 0 and late_days <= 15 and late_count < 3 and avg_late <= 10:
        band, fired = "low", ["CR-003"]
    else:
        band, fired = None, []
    limit, exposure, score = f["credit_limit"], f["new_exposure"], f.get("credit_score")
    if f["in_agency"]:
        return _credit("decline"), fired + ["CR-100"]
    if late_days > 90:
        return _credit("decline"), fired + ["CR-110"]
    if broken >= 3:
        return _credit("decline"), fired + ["CR-120"]
    if f["on_payment_plan"] and f["plan_missed_installments"] >= 1:
        return _credit("decline"), fired + ["CR-130"]
    if score is not None and score < 300:
        return _credit("decline"), fired + ["CR-140"]
    if limit > 0 and exposure > limit * HALF_AGAIN:
        return _credit("decline"), fired + ["CR-150"]
    if (
        limit == 0
        and f["open_balance"] == 0
        and f["requested_amount"] <= 5000
        and score is not None
        and score >= 700
    ):
        return _credit("approve", Decimal("5000.00")), fired + ["CR-200"]
    if limit == 0:
        return _credit("refer"), fired + ["CR-210"]
    if exposure > limit:
        return _credit("refer"), fired + ["CR-220"]
    if f["has_open_dispute"]:
        return _credit("refer"), fired + ["CR-230"]
    if f["on_hold"]:
        return _credit("refer"), fired + ["CR-240"]
    if band == "high":
        return _credit("refer"), fired + ["CR-250"]
    if score is not None and score < 500:
        return _credit("refer"), fired + ["CR-260"]
    if band == "medium" and exposure > limit * FOUR_FIFTHS:
        return _credit("refer"), fired + ["CR-270"]
    if f["on_payment_plan"]:
        return _credit("refer"), fired + ["CR-280"]
    if band == "low" and exposure <= limit:
        return _credit("approve"), fired + ["CR-300"]
    if band == "medium" and exposure <= limit * FOUR_FIFTHS:
        return _credit("approve"), fired + ["CR-310"]
    return _credit("refer"), fired + ["CR-900"]


def _tone(tone: str, channel: str = "email", cadence_days: int = 7) -> Outcome:
    return {"tone": tone, "channel": channel, "cadence_days": cadence_days}


def decide_reminder(f: dict[str, Any]) -> tuple[Outcome, list[str]]:
    """rules/reminder.toml: the tone, channel and cadence of the next reminder."""
    late_days, overdue = f["days_past_due"], f["overdue_balance"]
    if f["in_agency"]:
        return _tone("none"), ["RT-010"]
    if f["on_hold"]:
        return _tone("none"), ["RT-020"]
    if f["has_open_dispute"]:
        return _tone("none"), ["RT-030"]
    if f["on_payment_plan"] and f["plan_missed_installments"] == 0 and late_days >= 1:
        return _tone("friendly", "email", 14), ["RT-040"]
    if f["has_active_promise"] and late_days >= 1:
        return _tone("friendly", "email", 14), ["RT-050"]
    if late_days >= 1 and overdue < 50:
        return _tone("friendly", "email", 30), ["RT-060"]
    if late_days >= 61 and f["last_reminder_tone"] in FINAL_TONES:
        return _tone("demand", "letter", 14), ["RT-100"]
    if late_days >= 31:
        return _tone("final", "letter", 10), ["RT-110"]
    if late_days >= 15 and overdue >= 10000:
        return _tone("firm", "phone", 7), ["RT-120"]
    if late_days >= 15:
        return _tone("firm", "email", 7), ["RT-130"]
    if late_days >= 1:
        return _tone("friendly", "email", 7), ["RT-140"]
    next_due = f.get("days_until_next_due")
    if next_due is not None and 0 <= next_due <= 5:
        return _tone("courtesy", "email", 7), ["RT-150"]
    return _tone("none"), ["RT-900"]


def _action(action: str, agency: str = "") -> Outcome:
    return {"action": action, "agency": agency}


def decide_handoff(f: dict[str, Any]) -> tuple[Outcome, list[str]]:
    """rules/handoff.toml: hold, offer a payment plan or hand off to an agency."""
    late_days, overdue = f["days_past_due"], f["overdue_balance"]
    if f["in_agency"]:
        return _action("none"), ["HO-010"]
    if late_days < 60:
        return _action("none"), ["HO-020"]
    if f["has_open_dispute"]:
        return _action("hold"), ["HO-030"]
    if f["on_hold"]:
        return _action("hold"), ["HO-040"]
    if f["on_payment_plan"] and f["plan_missed_installments"] == 0:
        return _action("none"), ["HO-050"]
    if f["on_payment_plan"] and f["plan_missed_installments"] >= 1:
        return _action("hold"), ["HO-060"]
    if f["has_active_promise"]:
        return _action("none"), ["HO-070"]
    if overdue < 250:
        return _action("none"), ["HO-080"]
    last_payment = f.get("days_since_last_payment")
    eligible = (
        f["promises_broken_12m"] <= 1
        and f["tenure_months"] >= 12
        and last_payment is not None
        and last_payment <= 60
    )
    fired = ["HO-090"] if eligible else []
    if eligible and late_days < 180:
        return _action("offer_plan"), fired + ["HO-100"]
    last_reminder = f.get("days_since_last_reminder")
    final_sent = (
        f["last_reminder_tone"] in FINAL_TONES and last_reminder is not None and last_reminder >= 10
    )
    if late_days >= 90 and overdue >= 10000 and final_sent:
        return _action("handoff", "major-accounts"), fired + ["HO-110"]
    if late_days >= 90 and final_sent:
        return _action("handoff", "standard"), fired + ["HO-120"]
    if late_days >= 90:
        return _action("none"), fired + ["HO-130"]
    return _action("none"), fired + ["HO-900"]


DECIDERS = {"credit": decide_credit, "reminder": decide_reminder, "handoff": decide_handoff}
