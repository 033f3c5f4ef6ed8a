"""The default rule sets (rules/credit.toml, reminder.toml, handoff.toml) written as plain Python.

The benchmark's yardstick: the same decisions without a rules engine. Each function takes a
complete fact set as engine.facts.derive_facts returns it (only the facts the catalogue marks as
possibly absent may be missing) and returns (outcome, fired rule ids), exactly as the engine
decides under `hit_policy = "first"`: the set-only rules that match fire first, then the first
deciding rule. A rule that reads an absent fact does not match, as in the engine. Reasons are not
rendered here. The reminder rule set decides after the hand-off rule set: decide_reminder reads
handoff_action from the facts, and decide_account makes the three decisions in that order.
Keep these in step with the TOML files: bench/engine.py reports every mismatch.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

Outcome = dict[str, Any]
FINAL_TONES = ("final", "demand")
HALF_AGAIN = Decimal("1.5")
FOUR_FIFTHS = Decimal("0.8")
HALF = Decimal("0.5")


def _credit(
    decision: str,
    status: str,
    review_days: int = 0,
    credit_limit: Decimal | None = None,
) -> Outcome:
    return {
        "decision": decision,
        "status": status,
        "credit_limit": credit_limit,
        "terms_days": 30,
        "review_days": review_days,
    }


def _risk_band(f: dict[str, Any]) -> tuple[str | None, list[str]]:
    broken, late_days = f["promises_broken_12m"], f["days_past_due"]
    late_count, avg_late = f["late_payments_12m"], f["avg_days_late_12m"]
    paid = f.get("invoices_paid_12m")
    if broken >= 2 or late_days > 60 or late_count >= 6 or avg_late > 30:
        return "high", ["CR-001"]
    if broken == 1 or late_days > 15 or late_count >= 3 or avg_late > 10:
        return "medium", ["CR-002"]
    if paid is not None and paid >= 1:
        return "low", ["CR-003"]
    if paid is not None and paid == 0:
        return "none", ["CR-004"]
    return None, []


_STOPS = (
    ("CR-100", lambda f: f["in_agency"]),
    ("CR-110", lambda f: f["days_past_due"] > 90),
    ("CR-120", lambda f: f["promises_broken_12m"] >= 3),
    ("CR-130", lambda f: f["on_payment_plan"] and f["plan_missed_installments"] >= 1),
    ("CR-140", lambda f: f.get("credit_score") is not None and f["credit_score"] < 300),
)
_WATCHES = (
    ("CR-230", lambda f: f.get("credit_score") is not None and f["credit_score"] < 500),
    ("CR-231", lambda f: f["has_open_dispute"]),
    ("CR-232", lambda f: f["on_hold"]),
    ("CR-233", lambda f: f["on_payment_plan"]),
    ("CR-234", lambda f: f["credit_limit"] > 0 and f["open_balance"] > f["credit_limit"]),
)


def decide_credit(f: dict[str, Any]) -> tuple[Outcome, list[str]]:
    """rules/credit.toml: the account's status and review cycle; an order or a limit asked."""
    band, fired = _risk_band(f)
    stops = [rule for rule, applies in _STOPS if applies(f)]
    fired += stops
    asked, wanted = f["requested_amount"], f.get("requested_limit")
    limit, exposure, score = f["credit_limit"], f["new_exposure"], f.get("credit_score")
    if stops and asked > 0:
        return _credit("decline", "stop"), fired + ["CR-150"]
    if stops and wanted is not None and wanted > 0:
        return _credit("decline", "stop"), fired + ["CR-155"]
    if f["in_agency"]:
        return _credit("none", "stop", 0), fired + ["CR-160"]
    if stops:
        return _credit("none", "stop", 30), fired + ["CR-161"]
    if asked > 0 and limit > 0 and exposure > limit * HALF_AGAIN:
        return _credit("decline", "watch"), fired + ["CR-200"]
    if limit == 0 and f["open_balance"] == 0 and 0 < asked <= 5000 and (score or 0) >= 700:
        return _credit("approve", "ok", 0, Decimal("5000.00")), fired + ["CR-210"]
    if limit == 0 and asked > 0:
        return _credit("refer", "watch"), fired + ["CR-220"]
    watches = [rule for rule, applies in _WATCHES if applies(f)]
    fired += watches
    if asked > 0:
        return _order(band, bool(watches), exposure, limit, fired)
    if wanted is not None and wanted > 0:
        if band == "low" and wanted <= limit * 2:
            return _credit("approve", "ok"), fired + ["CR-400"]
        return _credit("refer", "watch"), fired + ["CR-410"]
    if band == "high":
        return _credit("none", "watch", 30), fired + ["CR-500"]
    if watches:
        return _credit("none", "watch", 90), fired + ["CR-510"]
    if band == "medium":
        return _credit("none", "watch", 90), fired + ["CR-520"]
    if band == "none":
        return _credit("none", "ok", 90), fired + ["CR-530"]
    if band == "low":
        return _credit("none", "ok", 365), fired + ["CR-540"]
    return _credit("none", "watch", 90), fired + ["CR-900"]


def _order(band, watch: bool, exposure, limit, fired: list[str]) -> tuple[Outcome, list[str]]:
    if exposure > limit:
        return _credit("refer", "watch"), fired + ["CR-300"]
    if watch:
        return _credit("refer", "watch"), fired + ["CR-310"]
    if band == "high":
        return _credit("refer", "watch"), fired + ["CR-315"]
    if band == "medium" and exposure > limit * FOUR_FIFTHS:
        return _credit("refer", "watch"), fired + ["CR-320"]
    if band == "low":
        return _credit("approve", "ok"), fired + ["CR-330"]
    if band == "medium":
        return _credit("approve", "watch"), fired + ["CR-340"]
    if band == "none" and exposure <= limit * HALF:
        return _credit("approve", "ok"), fired + ["CR-350"]
    return _credit("refer", "watch"), fired + ["CR-390"]


def _tone(
    tone: str, channel: str = "email", cadence: int = 7, notice: str = "reminder", charges=False
) -> Outcome:
    return {
        "tone": tone,
        "channel": channel,
        "cadence_days": cadence,
        "notice": notice,
        "show_charges": charges,
    }


_WAIT = {"friendly": 7, "firm": 7, "final": 10, "demand": 14}
_AFTER_FRIENDLY = ("friendly", "firm", "final", "demand")


def decide_reminder(f: dict[str, Any]) -> tuple[Outcome, list[str]]:
    """rules/reminder.toml (after the hand-off: reads handoff_action, if given)."""
    late_days, last = f["days_past_due"], f["last_reminder_tone"]
    action = f.get("handoff_action")
    undisputed = f.get("undisputed_overdue_balance")
    if f["in_agency"]:
        return _tone("none"), ["RT-010"]
    if action == "handoff":
        return _tone("none"), ["RT-015"]
    if f["on_hold"]:
        return _tone("none"), ["RT-020"]
    if f["has_open_dispute"] and late_days == 0:
        return _tone("none"), ["RT-030"]
    if action == "offer_plan":
        return _tone("final", "letter", 14, "plan_offer"), ["RT-035"]
    plan, missed = f["on_payment_plan"], f["plan_missed_installments"]
    if plan and missed == 0 and late_days >= 1:
        return _tone("friendly", "email", 14), ["RT-040"]
    if plan and missed == 1:
        return _tone("firm", "letter", 14, "plan_default"), ["RT-041"]
    if plan and missed >= 2 and last not in FINAL_TONES:
        return _tone("final", "letter", 10, charges=True), ["RT-042"]
    if f["has_active_promise"] and late_days >= 1:
        return _tone("friendly", "email", 14), ["RT-050"]
    broken, since = f.get("days_since_broken_promise"), f.get("days_since_last_reminder")
    if late_days >= 1 and broken is not None and broken <= 14:
        if last == "none":
            return _tone("firm", "phone", 1, "promise_broken"), ["RT-055"]
        if since is not None and broken < since and last in ("courtesy", "friendly"):
            return _tone("firm", "phone", 1, "promise_broken"), ["RT-056"]
        if since is not None and broken < since and last in ("firm", "final", "demand"):
            return _tone("final", "phone", 1, "promise_broken"), ["RT-057"]
    if late_days >= 1 and undisputed is not None and undisputed < 50:
        return _tone("friendly", "email", 30), ["RT-060"]
    if late_days >= 1 and since is not None and since < _WAIT.get(last, 0):
        return _tone("none"), ["RT-090"]
    return _ladder(late_days, last, undisputed, f.get("days_until_next_due"))


def _ladder(late_days: int, last: str, undisputed, next_due) -> tuple[Outcome, list[str]]:
    if late_days >= 61 and last in FINAL_TONES:
        return _tone("demand", "letter", 14, charges=True), ["RT-100"]
    if late_days >= 31 and last in ("firm", "final", "demand"):
        return _tone("final", "letter", 10, charges=True), ["RT-110"]
    if late_days >= 15 and last in _AFTER_FRIENDLY and undisputed is not None:
        if undisputed >= 10000:
            return _tone("firm", "phone", 7), ["RT-120"]
    if late_days >= 15 and last in _AFTER_FRIENDLY:
        return _tone("firm", "email", 7), ["RT-130"]
    if late_days >= 1:
        return _tone("friendly", "email", 7), ["RT-140"]
    if next_due is not None and 0 <= next_due <= 5:
        return _tone("courtesy", "email", 7), ["RT-150"]
    return _tone("none"), ["RT-900"]


def _action(action: str, agency: str = "", instalments: int = 3) -> Outcome:
    return {
        "action": action,
        "agency": agency,
        "plan_instalments": instalments,
        "plan_interval_days": 30,
    }


def decide_handoff(f: dict[str, Any]) -> tuple[Outcome, list[str]]:
    """rules/handoff.toml: hold, offer a plan, escalate a dispute or hand off to an agency."""
    late_days, overdue = f["days_past_due"], f["overdue_balance"]
    plan, missed = f["on_payment_plan"], f["plan_missed_installments"]
    dispute_days = f.get("oldest_dispute_days")
    if f["in_agency"]:
        return _action("none"), ["HO-010"]
    if dispute_days is not None and dispute_days > 30:
        return _action("review_dispute"), ["HO-015"]
    if late_days < 60:
        return _action("none"), ["HO-020"]
    if f["has_open_dispute"]:
        return _action("hold"), ["HO-030"]
    if f["on_hold"]:
        return _action("hold"), ["HO-040"]
    if plan and missed == 0:
        return _action("none"), ["HO-050"]
    if plan and missed == 1:
        return _action("none"), ["HO-060"]
    fired = ["HO-065"] if plan and missed >= 2 else []
    if f["has_active_promise"]:
        return _action("none"), fired + ["HO-070"]
    if overdue < 250:
        return _action("none"), fired + ["HO-080"]
    last_payment = f.get("days_since_last_payment")
    eligible = (
        not plan
        and f["promises_broken_12m"] <= 1
        and f["tenure_months"] >= 12
        and last_payment is not None
        and last_payment <= 60
    )
    fired += ["HO-090"] if eligible else []
    undisputed = f.get("undisputed_overdue_balance")
    if eligible and late_days < 180 and undisputed is not None and undisputed >= 10000:
        return _action("offer_plan", instalments=6), fired + ["HO-095"]
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


def decide_account(f: dict[str, Any]) -> dict[str, tuple[Outcome, list[str]]]:
    """The three decisions of one account as a run makes them: the reminder after the hand-off,
    reading its outcome as handoff_action and handoff_agency."""
    credit, handoff = decide_credit(f), decide_handoff(f)
    seen = {**f, "handoff_action": handoff[0]["action"], "handoff_agency": handoff[0]["agency"]}
    return {"credit": credit, "handoff": handoff, "reminder": decide_reminder(seen)}
