"""The worklist: actions derived from a customer's decisions, and when an action goes void.

An action is something the ERP should do: send a reminder (with a ready message, or a call
script for a call), offer a payment plan, hand the account to an agency, have a controller
settle a dispute open too long, review the account's credit. The ERP acknowledges it by
posting the contact it made (`POST /v1/contacts`), which the next night's facts read back
(last_reminder_tone, days_since_last_reminder, in_agency).

The actions follow the decisions, which already agree with each other (the reminder rule set
decides after the hand-off rule set, SPEC §4 `after`): nothing here second-guesses a decision.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from zlib import crc32

from api.nightly.letters import contact_context
from api.nightly.messages import MessageError, MessageRenderer, reminder_context
from api.nightly.terms import late_charges, plan_terms
from engine.account import Account
from engine.ledger import Ledger
from engine.trace import to_jsonable

ACTION_TYPES = ("reminder", "offer_plan", "handoff", "review_dispute", "credit_review")
HANDOFF_ACTIONS = ("offer_plan", "handoff", "review_dispute")  # handoff outcomes with an action
NO_REMINDER = ("none", "", None)


def derive_actions(
    decisions: dict[str, dict[str, Any]],
    facts: dict[str, Any],
    ledger: Ledger,
    as_of: date,
    renderer: MessageRenderer | None,
    account: Account | None = None,
) -> list[dict[str, Any]]:
    """Actions for one customer from its decisions (by kind) of one run.

    A reminder is due when the reminder decision names a tone and its cadence allows it: no
    reminder of the same tone was sent within the decision's cadence_days. `account`, the
    ledger as of `as_of` when the caller has it (engine.facts.derive_facts_and_account), saves
    settling the ledger again.
    """
    actions = []
    account = _LazyAccount(ledger, as_of, account)
    reminder = decisions.get("reminder")
    handoff = decisions.get("handoff")
    plan = _plan(handoff["outcome"], account) if handoff else None
    if reminder and _reminder_due(reminder["outcome"], facts):
        actions.append(_reminder(reminder, facts, account, renderer, plan))
    if handoff and handoff["outcome"].get("action") in HANDOFF_ACTIONS:
        actions.append(_handoff(handoff, facts, account, plan))
    credit = decisions.get("credit")
    if credit and _credit_review_due(credit["outcome"], facts, as_of):
        actions.append(_credit_review(credit, facts, ledger.customer.currency))
    return actions


def _reminder_due(outcome: dict[str, Any], facts: dict[str, Any]) -> bool:
    tone = outcome.get("tone")
    if tone in NO_REMINDER:
        return False
    cadence = outcome.get("cadence_days") or 0
    since = facts.get("days_since_last_reminder")
    same_tone = facts.get("last_reminder_tone") == tone
    return not (same_tone and since is not None and since < cadence)


class _LazyAccount:
    """The account as of the run's date, computed once and only when an action needs it."""

    def __init__(self, ledger: Ledger, as_of: date, account: Account | None = None):
        self.ledger, self.as_of, self._account = ledger, as_of, account

    def get(self) -> Account:
        if self._account is None:
            self._account = Account(self.ledger, self.as_of)
        return self._account


def _invoices(lazy: _LazyAccount, disputed: bool | None = None) -> list[dict[str, Any]]:
    """The open invoices, each with `disputed`; only the disputed ones or only the others
    when `disputed` says so."""
    account, as_of = lazy.get(), lazy.as_of
    rows = []
    for invoice in account.invoices:
        unpaid = account.unpaid[invoice.id]
        in_dispute = invoice.id in account.disputed_invoice_ids
        if unpaid > 0 and (disputed is None or disputed == in_dispute):
            rows.append(
                {
                    "invoice_id": invoice.id,
                    "due_date": invoice.due_date.isoformat(),
                    "amount": to_jsonable(invoice.amount),
                    "unpaid": to_jsonable(unpaid),
                    "days_past_due": max((as_of - invoice.due_date).days, 0),
                    "disputed": in_dispute,
                }
            )
    return rows


def _plan(outcome: dict[str, Any], lazy: _LazyAccount) -> dict[str, Any] | None:
    """The terms of the payment plan a handoff decision offers (api.nightly.terms), or None."""
    if outcome.get("action") != "offer_plan":
        return None
    account = lazy.get()
    return plan_terms(
        account.undisputed_overdue_balance,
        lazy.as_of,
        outcome.get("plan_instalments") or 3,
        outcome.get("plan_interval_days") or 30,
    )


def _amounts(facts: dict[str, Any], currency: str) -> dict[str, Any]:
    overdue = facts.get("overdue_balance", Decimal(0))
    return to_jsonable(
        {
            "currency": currency,
            "open_balance": facts.get("open_balance", Decimal(0)),
            "overdue_balance": overdue,
            "undisputed_overdue_balance": facts.get("undisputed_overdue_balance", overdue),
            "disputed_amount": facts.get("disputed_amount", Decimal(0)),
            "days_past_due": facts.get("days_past_due", 0),
        }
    )


def template_name(outcome: dict[str, Any]) -> str:
    """The text of a reminder: the notice's own (plan_offer, plan_default, promise_broken),
    else the call script for a reminder by phone, else the tone's letter."""
    notice = outcome.get("notice") or "reminder"
    if notice != "reminder":
        return notice
    return "call" if outcome.get("channel") == "phone" else outcome["tone"]


def _reminder(decision, facts, lazy: _LazyAccount, renderer, plan) -> dict[str, Any]:
    """A reminder: by e-mail or letter it carries the letter (`message`), by phone the call
    script (`call_script`: what to say, the amounts, the promise or plan it is about); the plan
    terms when it is the plan offer, the late charges when the customer's country has a basis
    for them (`charges.shown`: whether the letter states them, the outcome's show_charges)."""
    outcome = decision["outcome"]
    tone = outcome["tone"]
    ledger, as_of = lazy.ledger, lazy.as_of
    customer = ledger.customer
    invoices = _invoices(lazy, disputed=False)  # a reminder never chases a disputed invoice
    overdue = [i for i in invoices if i["days_past_due"] > 0]
    channel = outcome.get("channel", "email")
    payload: dict[str, Any] = {
        "tone": tone,
        "channel": channel,
        "cadence_days": outcome.get("cadence_days"),
        "notice": outcome.get("notice") or "reminder",
        **_amounts(facts, customer.currency),
        "oldest_invoice": overdue[0] if overdue else (invoices[0] if invoices else None),
        "invoices": overdue if tone != "courtesy" else invoices,
        "decision_id": decision["decision_id"],
        "reasons": decision["reasons"],
    }
    if customer.contact is not None:
        payload["contact"] = contact_context(customer.contact)
    plan = plan if payload["notice"] == "plan_offer" else None
    if plan is not None:
        payload["plan"] = to_jsonable(plan)
    charges = None
    if renderer is not None and tone != "courtesy":
        basis = renderer.charges_basis(customer.country)
        charges = late_charges(basis, customer.currency, overdue, outcome.get("show_charges"))
        if charges is not None:
            payload["charges"] = to_jsonable(charges)
    if renderer is not None:
        discount = _discount(outcome, as_of) if tone == "courtesy" else None
        contact = customer.contact
        language = renderer.language_for(customer.country, contact.language if contact else "")
        key = "call_script" if channel == "phone" else "message"
        try:
            context = reminder_context(ledger, as_of, tone, discount, plan, lazy.get(), charges)
            message = renderer.render(template_name(outcome), context, language)
            payload[key] = {
                "subject": message.subject,
                "body": message.body,
                "language": message.language,
                "template": message.template,
            }
        except MessageError as exc:  # the only error render raises: this message is lost, no more
            payload["message_error"] = str(exc)
            payload["message_template"] = exc.template
    return {"type": "reminder", "customer_id": ledger.customer.id, "payload": payload}


def _discount(outcome: dict[str, Any], as_of: date) -> dict[str, Any] | None:
    percent = outcome.get("discount_percent")
    if not percent:
        return None
    days = outcome.get("discount_days") or 10
    return {"percent": percent, "until": date.fromordinal(as_of.toordinal() + days).isoformat()}


def _handoff(decision, facts, lazy: _LazyAccount, plan) -> dict[str, Any]:
    outcome = decision["outcome"]
    action = outcome["action"]
    invoices = [i for i in _invoices(lazy) if i["days_past_due"] > 0 or i["disputed"]]
    if action == "review_dispute":  # the controller settles the disputed invoices
        invoices = [i for i in invoices if i["disputed"]]
    payload = {
        "action": action,
        "agency": outcome.get("agency", ""),
        **_amounts(facts, lazy.ledger.customer.currency),
        "oldest_dispute_days": facts.get("oldest_dispute_days"),
        "invoices": invoices,
        "decision_id": decision["decision_id"],
        "reasons": decision["reasons"],
    }
    if action == "offer_plan" and plan is not None:
        payload["plan"] = to_jsonable(plan)
    return {"type": action, "customer_id": lazy.ledger.customer.id, "payload": payload}


def _credit_review_due(outcome: dict[str, Any], facts: dict[str, Any], as_of: date) -> bool:
    """A review when the decision proposes another limit, or on the account's turn in its
    review cycle: every `review_days` (the credit rule set sets it by risk band; 0 or absent:
    none), each account on a day of its own within the cycle, so a cycle's reviews spread
    evenly over its days instead of all falling on one night."""
    proposed = outcome.get("credit_limit")
    current = facts.get("credit_limit")
    changed = proposed not in (None, "") and Decimal(str(proposed)) != Decimal(str(current or 0))
    cycle = outcome.get("review_days") or 0
    return changed or (cycle > 0 and review_turn(str(facts.get("customer_id", "")), as_of, cycle))


def review_turn(customer_id: str, as_of: date, cycle_days: int) -> bool:
    """Whether `as_of` is the customer's day in a review cycle of `cycle_days` days: the same
    day every cycle, from a stable hash of its id (the same in every process and run)."""
    return (as_of.toordinal() + crc32(customer_id.encode("utf-8"))) % cycle_days == 0


def _credit_review(decision, facts, currency: str) -> dict[str, Any]:
    outcome = decision["outcome"]
    payload = {
        "decision": outcome.get("decision"),
        "status": outcome.get("status"),
        "review_days": outcome.get("review_days"),
        "current_limit": to_jsonable(facts.get("credit_limit", Decimal(0))),
        "proposed_limit": outcome.get("credit_limit"),
        "utilization": facts.get("utilization"),
        **_amounts(facts, currency),
        "decision_id": decision["decision_id"],
        "reasons": decision["reasons"],
    }
    return {"type": "credit_review", "customer_id": facts.get("customer_id"), "payload": payload}


def void_reason(
    action_type: str,
    payload: dict[str, Any],
    facts: dict[str, Any],
    disputed_ids: frozenset[str] | set[str] = frozenset(),
) -> str | None:
    """Why a pending action no longer holds for the customer's current facts, or None.

    The worklist must never ask to chase a customer who has paid, disputes an invoice it
    names, is on hold, or has been placed with an agency in the meantime. `disputed_ids`: the
    invoices with a dispute open now (a reminder names only undisputed ones; a dispute on
    another invoice leaves it standing).
    """
    if action_type == "credit_review":
        return None
    if action_type == "review_dispute":
        return None if facts.get("has_open_dispute") else "the dispute is resolved"
    if action_type == "reminder":
        named = {i.get("invoice_id") for i in payload.get("invoices") or ()}
        if named & set(disputed_ids):
            return "an invoice it names is now disputed"
    elif facts.get("has_open_dispute"):
        return "an invoice is now disputed"
    if facts.get("on_hold"):
        return "a collections hold now covers the account"
    if facts.get("in_agency"):
        return "the account is now with an agency"
    courtesy = payload.get("tone") == "courtesy"
    chased = "undisputed_overdue_balance" if action_type == "reminder" else "overdue_balance"
    owed = facts.get("open_balance" if courtesy else chased, Decimal(0))
    if Decimal(str(owed)) <= 0:
        return "the customer has paid" if not courtesy else "nothing is coming due any more"
    if action_type in ("handoff", "offer_plan"):
        if facts.get("on_payment_plan") and action_type == "offer_plan":
            return "a payment plan is now active"
        if action_type == "handoff" and (
            facts.get("on_payment_plan") or facts.get("has_active_promise")
        ):
            return "a payment plan or promise to pay is now active"
    return None
