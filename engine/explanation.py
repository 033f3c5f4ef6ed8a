"""A decision in plain words: the explanation made with each decision and hashed with it (SPEC
§5, record format 3): the outcome in a few words, the reasons of the rules that fired (those
that set an outcome field first), and their ids. Pure and cheap: it is made on the hot path
from what the evaluation already holds (bench/audit_decisions.py measures it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.ruleset import format_value

EXPLANATION_LENGTH = 1000  # characters; the stored field's limit
MAX_REASONS = 3  # reasons quoted in an explanation; more are counted

_DECISION = {"approve": "Approved", "refer": "Referred to a controller", "decline": "Declined"}
_STATUS = {"ok": "account in good standing", "watch": "account on watch", "stop": "credit stopped"}
_ACTION = {
    "none": "No hand-off",
    "hold": "Hand-off on hold",
    "review_dispute": "Dispute to be reviewed by a controller",
    "offer_plan": "Payment plan to offer",
}
_NOTICE = {
    "plan_offer": "payment-plan offer",
    "plan_default": "plan default notice",
    "promise_broken": "broken-promise call",
}


def _credit(outcome: Mapping[str, Any]) -> str | None:
    decision, status = outcome.get("decision"), outcome.get("status")
    standing = _STATUS.get(status, f"credit status {status}") if status else None
    if decision in _DECISION:
        head = _DECISION[decision] + (f", {standing}" if standing else "")
    elif decision in (None, "none") and standing:
        head = standing[0].upper() + standing[1:]
    else:
        return None
    limit = outcome.get("credit_limit")
    if limit is not None:
        head += f", limit {format_value(limit)} proposed"
    return head


def _handoff(outcome: Mapping[str, Any]) -> str | None:
    action = outcome.get("action")
    if action == "handoff":
        agency = outcome.get("agency")
        return f"Handed to the {agency} agency" if agency else "Handed to an agency"
    return _ACTION.get(action)


def _reminder(outcome: Mapping[str, Any]) -> str | None:
    tone, channel = outcome.get("tone"), outcome.get("channel")
    if tone == "none":
        return "No reminder"
    if not isinstance(tone, str):
        return None
    what = _NOTICE.get(outcome.get("notice"), "reminder")
    return f"{tone.capitalize()} {what}" + (f" by {channel}" if channel else "")


_HEADLINES = {"credit": _credit, "handoff": _handoff, "reminder": _reminder}


def headline(kind: str, outcome: Mapping[str, Any]) -> str:
    """The outcome in a few words: the shipped kinds' fields in their words, any other kind's
    as "field value" pairs."""
    known = _HEADLINES.get(kind)
    head = known(outcome) if known else None
    if head:
        return head
    parts = [
        f"{name} {format_value(value)}"
        for name, value in outcome.items()
        if value not in (None, "")
    ]
    text = ", ".join(parts) or "No outcome"
    return text[0].upper() + text[1:]


def explanation(kind: str, outcome: Mapping[str, Any], fired: Sequence[Any]) -> str:
    """One or two sentences from a decision's outcome and its fired rules' reasons (objects
    with `id`, `reason` and `then`, or dicts with those keys): the rules that set an outcome
    field first, then those that derived facts. At most EXPLANATION_LENGTH characters, without
    control characters."""
    deciding, supporting = [], []
    for rule in fired:
        then, reason, rule_id = (
            (rule["then"], rule["reason"], rule["id"])
            if isinstance(rule, Mapping)
            else (rule.then, rule.reason, rule.id)
        )
        (deciding if then else supporting).append((rule_id, reason))
    ordered = deciding + supporting
    reasons = [r.rstrip(". ") for _, r in ordered if r][:MAX_REASONS]
    text = headline(kind, outcome)
    if reasons:
        text += ": " + "; ".join(reasons)
        more = sum(1 for _, r in ordered if r) - len(reasons)
        if more:
            text += f"; and {more} more"
    if ordered:
        ids = ", ".join(rule_id for rule_id, _ in ordered)
        text += f" (rule{'s' if len(ordered) > 1 else ''} {ids})"
    text += "."
    if not text.isprintable():  # control characters, lone surrogates: never stored
        text = "".join(c if c.isprintable() else " " for c in text)
    if len(text) > EXPLANATION_LENGTH:
        text = text[: EXPLANATION_LENGTH - 1] + "…"
    return text


__all__ = ["EXPLANATION_LENGTH", "MAX_REASONS", "explanation", "headline"]
