"""The fact catalogue (SPEC §3): what rules can test, derived from a ledger as of a date.

Each fact is one small function registered with its name, type and meaning; `FACTS` lists them
in SPEC order and is what the rule validator and docs/rules.md read. `derive_facts` computes them
from a `Ledger` (the arithmetic several facts share, and how payments settle invoices, is in
engine.account); `check_facts` validates facts a caller gives directly.
"""

from __future__ import annotations

import calendar
import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from engine.account import Account
from engine.errors import FactError
from engine.ledger import Ledger
from engine.text import printable, text_problem

FACT_TYPES = ("str", "int", "money", "float", "bool")
CENT = Decimal("0.01")
ZERO = Decimal(0)
# Utilization when the credit limit is 0 and something is owed: the rules engine takes no inf.
UTILIZATION_NO_LIMIT = 999.0
MONEY_LIMIT = Decimal("1e12")
INT_LIMIT = 10**9
# The longest string fact given directly: ids, segments and tones are far shorter.
MAX_TEXT_FACT = 200


@dataclass(frozen=True)
class FactSpec:
    """A catalogue entry: name, type (one of FACT_TYPES), meaning, whether it may be absent
    (`optional`: derived facts leave it out when there is nothing to say) and whether a complete
    fact set given directly must hold it (`required`: facts added to the catalogue later are not,
    so callers written before them go on working)."""

    name: str
    type: str
    description: str
    optional: bool = False
    required: bool = True


class _Context(Account):
    """What the fact functions read: the account as of the date, and the requested amount."""

    def __init__(self, ledger: Ledger, as_of: date, requested_amount: Decimal):
        super().__init__(ledger, as_of)
        self.requested_amount = requested_amount


FACTS: dict[str, FactSpec] = {}
_DERIVERS: dict[str, Callable[[_Context], object]] = {}


def fact(name: str, type: str, description: str, *, optional: bool = False, required: bool = True):
    """Register the decorated function as the derivation of fact `name` (in catalogue order).

    An `optional` fact's function returns None when the fact is absent; optional facts are
    never required in a complete fact set given directly, and facts with `required=False`
    neither (the facts added after callers were written).
    """
    if type not in FACT_TYPES or name in FACTS:
        raise ValueError(f"fact {name}: unknown type {type!r} or registered twice")

    def register(fn: Callable[[_Context], object]) -> Callable[[_Context], object]:
        FACTS[name] = FactSpec(name, type, description, optional, required and not optional)
        _DERIVERS[name] = fn
        return fn

    return register


def _add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, clamped to the month's last day (Jan 31 + 1 = Feb 29)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# The catalogue, in SPEC §3 order.


@fact("customer_id", "str", "The ERP's id of the customer")
def _customer_id(ctx: _Context) -> str:
    return ctx.customer.id


@fact("segment", "str", 'Segment from the customer record ("" if unknown)')
def _segment(ctx: _Context) -> str:
    return ctx.customer.segment or ""


@fact("country", "str", 'Country from the customer record ("" if unknown)')
def _country(ctx: _Context) -> str:
    return ctx.customer.country or ""


@fact(
    "tenure_months",
    "int",
    "Whole calendar months from the customer record's `since` date to as_of; a month ending on a "
    "day the month lacks ends on its last day (Jan 31 to Feb 29 is one month); 0 if since is later",
)
def _tenure_months(ctx: _Context) -> int:
    since, as_of = ctx.customer.since, ctx.as_of
    months = (as_of.year - since.year) * 12 + as_of.month - since.month
    if months > 0 and _add_months(since, months) > as_of:
        months -= 1
    return max(months, 0)


@fact("credit_limit", "money", "Current approved credit limit")
def _credit_limit(ctx: _Context) -> Decimal:
    return ctx.customer.credit_limit


@fact("credit_score", "int", "External credit score 0–1000, if the ERP sent one", optional=True)
def _credit_score(ctx: _Context) -> int | None:
    return ctx.customer.credit_score


@fact("open_balance", "money", "Sum of unpaid amounts (amount − paid − credited) of open invoices")
def _open_balance(ctx: _Context) -> Decimal:
    return ctx.open_balance


@fact("overdue_balance", "money", "Unpaid amounts of open invoices due before as_of")
def _overdue_balance(ctx: _Context) -> Decimal:
    return ctx.overdue_balance


@fact("overdue_1_30", "money", "Unpaid amounts of invoices 1–30 days past due")
def _overdue_1_30(ctx: _Context) -> Decimal:
    return ctx.buckets[0]


@fact("overdue_31_60", "money", "Unpaid amounts of invoices 31–60 days past due")
def _overdue_31_60(ctx: _Context) -> Decimal:
    return ctx.buckets[1]


@fact("overdue_61_90", "money", "Unpaid amounts of invoices 61–90 days past due")
def _overdue_61_90(ctx: _Context) -> Decimal:
    return ctx.buckets[2]


@fact("overdue_90_plus", "money", "Unpaid amounts of invoices more than 90 days past due")
def _overdue_90_plus(ctx: _Context) -> Decimal:
    return ctx.buckets[3]


@fact("days_past_due", "int", "Days past due of the oldest unpaid, undisputed invoice; 0 if none")
def _days_past_due(ctx: _Context) -> int:
    return ctx.days_past_due


@fact("invoices_open", "int", "Number of open invoices (disputed ones included)")
def _invoices_open(ctx: _Context) -> int:
    return ctx.invoices_open


@fact("invoices_overdue", "int", "Number of open invoices due before as_of")
def _invoices_overdue(ctx: _Context) -> int:
    return ctx.invoices_overdue


@fact(
    "days_until_next_due",
    "int",
    "Days from as_of to the earliest due date of an open invoice not yet due (0: due today)",
    optional=True,
)
def _days_until_next_due(ctx: _Context) -> int | None:
    return ctx.days_until_next_due


@fact(
    "utilization",
    "float",
    f"open_balance / credit_limit, 4 decimals (0 when both are 0; {UTILIZATION_NO_LIMIT} when "
    "the limit is 0 and something is owed)",
)
def _utilization(ctx: _Context) -> float:
    limit, balance = ctx.customer.credit_limit, ctx.open_balance
    if limit <= 0:
        return UTILIZATION_NO_LIMIT if balance > 0 else 0.0
    return round(float(balance / limit), 4)


@fact("disputed_amount", "money", "Unpaid amount of invoices with a dispute open on as_of")
def _disputed_amount(ctx: _Context) -> Decimal:
    return ctx.disputed_amount


@fact("has_open_dispute", "bool", "An open invoice has a dispute open on as_of")
def _has_open_dispute(ctx: _Context) -> bool:
    return ctx.disputed_amount > 0


@fact(
    "undisputed_overdue_balance",
    "money",
    "Unpaid amounts of overdue invoices without an open dispute: what reminders may chase "
    "(facts given directly: overdue_balance when has_open_dispute is false and it is omitted)",
    required=False,
)
def _undisputed_overdue_balance(ctx: _Context) -> Decimal:
    return ctx.undisputed_overdue_balance


@fact(
    "oldest_dispute_days",
    "int",
    "Days since the oldest dispute open on as_of (on an invoice still owed) was opened",
    optional=True,
)
def _oldest_dispute_days(ctx: _Context) -> int | None:
    opened = ctx.oldest_dispute_opened
    return (ctx.as_of - opened).days if opened is not None else None


@fact("on_payment_plan", "bool", "An active payment plan exists")
def _on_payment_plan(ctx: _Context) -> bool:
    return any(plan.status == "active" for plan in ctx.ledger.payment_plans)


@fact(
    "plan_missed_installments",
    "int",
    "Installments of the active plan due before as_of that payments made since 30 days before "
    "its first installment do not cover, applied in due order",
)
def _plan_missed(ctx: _Context) -> int:
    return ctx.plan_missed_installments


@fact("has_active_promise", "bool", "A promise to pay made by as_of, for as_of or later")
def _has_active_promise(ctx: _Context) -> bool:
    return ctx.active_promise


@fact(
    "promises_broken_12m",
    "int",
    "Promises whose date, in the last 12 months, passed without payments from made_on to that "
    "date adding up to the amount",
)
def _promises_broken_12m(ctx: _Context) -> int:
    return sum(1 for day in ctx.broken_promise_dates if ctx.in_last_year(day))


@fact(
    "late_payments_12m",
    "int",
    "Invoices settled (by payments or credit notes) in the last 12 months after their due date",
)
def _late_payments_12m(ctx: _Context) -> int:
    return len(ctx.late_days)


@fact(
    "invoices_paid_12m",
    "int",
    "Invoices settled (by payments or credit notes) in the last 12 months, on time or late: "
    "0 is a customer without a payment history",
    required=False,
)
def _invoices_paid_12m(ctx: _Context) -> int:
    return ctx.invoices_paid_12m


@fact(
    "avg_days_late_12m",
    "float",
    "Average days from due date to settlement of those late invoices, 2 decimals (0 if none)",
)
def _avg_days_late_12m(ctx: _Context) -> float:
    late = ctx.late_days
    return round(sum(late) / len(late), 2) if late else 0.0


@fact("days_since_last_payment", "int", "Days since the latest payment", optional=True)
def _days_since_last_payment(ctx: _Context) -> int | None:
    return (ctx.as_of - ctx.payments[-1].date).days if ctx.payments else None


@fact("last_reminder_tone", "str", 'Tone of the latest reminder sent ("none" if never)')
def _last_reminder_tone(ctx: _Context) -> str:
    reminder = ctx.last_reminder
    return (reminder.tone or "none") if reminder else "none"


@fact("days_since_last_reminder", "int", "Days since the latest reminder sent", optional=True)
def _days_since_last_reminder(ctx: _Context) -> int | None:
    reminder = ctx.last_reminder
    return (ctx.as_of - reminder.date).days if reminder else None


@fact(
    "in_agency",
    "bool",
    "The latest agency placement dated by as_of has no agency recall on or after its date",
)
def _in_agency(ctx: _Context) -> bool:
    as_of = ctx.as_of
    placed = [
        c.date for c in ctx.ledger.contacts if c.type == "agency_placement" and c.date <= as_of
    ]
    if not placed:
        return False
    last = max(placed)
    return not any(
        c.type == "agency_recall" and last <= c.date <= as_of for c in ctx.ledger.contacts
    )


@fact("on_hold", "bool", "A collections hold covers as_of (start <= as_of <= end, if any)")
def _on_hold(ctx: _Context) -> bool:
    as_of = ctx.as_of
    return any(h.start <= as_of and (h.end is None or h.end >= as_of) for h in ctx.ledger.holds)


@fact("days_since_broken_promise", "int", "Days since the latest broken promise", optional=True)
def _days_since_broken_promise(ctx: _Context) -> int | None:
    broken = ctx.broken_promise_dates
    return (ctx.as_of - max(broken)).days if broken else None


@fact("requested_amount", "money", "Credit decisions: the order value asked for (default 0)")
def _requested_amount(ctx: _Context) -> Decimal:
    return ctx.requested_amount


@fact("new_exposure", "money", "open_balance + requested_amount")
def _new_exposure(ctx: _Context) -> Decimal:
    return ctx.open_balance + ctx.requested_amount


@fact(
    "requested_limit",
    "money",
    "Credit decisions: a credit limit the customer asks for; given by the caller, never derived",
    optional=True,
)
def _requested_limit(ctx: _Context) -> None:
    return None


def derive_facts(
    ledger: Ledger, as_of: date, requested_amount: Decimal = ZERO
) -> dict[str, object]:
    """The customer's facts as of `as_of`, in catalogue order; absent facts are left out.

    Money facts are Decimal quantized to 0.01. `requested_amount` is the order value of a credit
    request (0 otherwise): a non-negative amount with at most 2 decimals, else FactError.
    How payments, credit notes, disputes, promises and plans are read: see engine.account.
    """
    return derive_facts_and_account(ledger, as_of, requested_amount)[0]


def derive_facts_and_account(
    ledger: Ledger, as_of: date, requested_amount: Decimal = ZERO
) -> tuple[dict[str, object], Account]:
    """derive_facts, and the account as of `as_of` it read (open invoices with what is unpaid
    of each), for callers that need both: the nightly run's reminder messages."""
    try:
        requested = _to_money(requested_amount)
    except ValueError as exc:
        raise FactError({"requested_amount": [str(exc)]}) from None
    ctx = _Context(ledger, as_of, requested)
    facts: dict[str, object] = {}
    for name, derive in _DERIVERS.items():
        value = derive(ctx)
        if value is None:
            continue
        if type(value) is Decimal:
            value = value.quantize(CENT)
        facts[name] = value
    return facts, ctx


# Facts a complete fact set may leave out although they are never absent: they get defaults.
_DEFAULTED = ("requested_amount", "new_exposure")


def check_facts(
    raw: dict,
    *,
    complete: bool,
    extra_names: Iterable[str] = (),
    earlier: Mapping[str, tuple[str, Any]] | None = None,
) -> dict[str, object]:
    """Validate facts given directly as JSON values and convert them to their catalogue types.

    money: a JSON number or a string, at most 2 decimals, not negative → Decimal; int: a whole
    number (3.0 is 3) → int; float: a number → float; bool: true/false only; str: a string of
    at most MAX_TEXT_FACT characters that can be stored (engine.text).
    NaN, infinities, |money| >= 1e12 and |int| >= 1e9 are refused. null stands for an absent fact
    and is allowed only for the facts that may be absent. Names outside the catalogue are refused
    (with a did-you-mean suggestion) unless listed in `extra_names`, whose values pass unchanged,
    or in `earlier` (facts an earlier decision gives, name -> (kind, its OutcomeField)), whose
    values must be allowed values of that outcome field (null: absent).
    With `complete`, every fact that cannot be absent must be given; requested_amount defaults
    to 0 and the facts that follow from others get their values (see fill_defaults).

    Returns the converted facts, catalogue facts first in catalogue order, then the others.
    Raises FactError with every problem found, by fact name.
    """
    if not isinstance(raw, dict):
        raise FactError({"facts": ["must be an object mapping fact names to values"]})
    extras, earlier = set(extra_names), earlier or {}
    errors: dict[str, list[str]] = {}
    checked: dict[str, object] = {}
    for name, value in raw.items():
        spec = FACTS.get(name) if isinstance(name, str) else None
        if spec is None:
            if name in earlier:
                _check_earlier(name, value, earlier[name], checked, errors)
            elif name in extras:
                checked[name] = value
            else:
                errors[printable(str(name))] = [_unknown_name(str(name), extras | set(earlier))]
        elif value is None:
            if not spec.optional:
                errors[name] = ["must not be null: this fact is never absent"]
        else:
            try:
                checked[name] = _CONVERTERS[spec.type](value)
            except ValueError as exc:
                errors[name] = [str(exc)]
    if complete:
        for spec in FACTS.values():
            if spec.required and spec.name not in raw and spec.name not in _DEFAULTED:
                errors[spec.name] = ["missing: a complete fact set must include it"]
    if errors:
        raise FactError(errors)
    if complete:
        checked.setdefault("requested_amount", ZERO.quantize(CENT))
        fill_defaults(checked, raw)
    ordered = {name: checked[name] for name in FACTS if name in checked}
    ordered.update((name, value) for name, value in checked.items() if name not in FACTS)
    return ordered


def fill_defaults(facts: dict[str, object], given: Iterable[str]) -> None:
    """Set the facts that follow from others, unless `given`: new_exposure (open_balance +
    requested_amount) and, when no dispute is open, undisputed_overdue_balance
    (= overdue_balance). With a dispute open and no undisputed_overdue_balance given, it is
    left as it is (absent in a fact set given directly)."""
    given = set(given)
    if "new_exposure" not in given:
        facts["new_exposure"] = facts["open_balance"] + facts["requested_amount"]  # type: ignore[operator]
    if "undisputed_overdue_balance" not in given and facts.get("has_open_dispute") is False:
        facts["undisputed_overdue_balance"] = facts["overdue_balance"]


def _check_earlier(name, value, source, checked, errors) -> None:
    from engine.ruleset import convert_outcome_value  # noqa: PLC0415 (ruleset imports facts)

    if value is None:
        return
    kind, spec = source
    converted, error = convert_outcome_value(spec, value)
    if error is None and isinstance(converted, str):
        error = _storable_text(converted)
    if error:
        errors[name] = [f"{error} (the {kind} decision's {spec.name})"]
    else:
        checked[name] = converted


MAX_EARLIER_TEXT = 200


def _storable_text(text: str) -> str | None:
    """Why a word given for an earlier decision's field cannot be stored with the decision."""
    if len(text) > MAX_EARLIER_TEXT:
        return f"longer than {MAX_EARLIER_TEXT} characters"
    if "\x00" in text:
        return "NUL characters are not allowed"
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "a lone surrogate is not valid Unicode"
    return None


def _unknown_name(name: str, extras: set[str]) -> str:
    close = difflib.get_close_matches(name, [*FACTS, *extras], n=1)
    return f"unknown fact (did you mean '{close[0]}'?)" if close else "unknown fact"


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float | Decimal):
        return "a number"
    return "a list" if isinstance(value, list) else "an object"


_MONEY_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# An amount every check below passes: at most 12 digits, 2 decimals, no sign. Most are.
_PLAIN_MONEY_TEXT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")


def _to_money(value: object) -> Decimal:
    if type(value) is str and _PLAIN_MONEY_TEXT.fullmatch(value):
        return Decimal(value).quantize(CENT)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(
            f'must be an amount of money (a number or a string like "12.50"), '
            f"not {_json_kind(value)}"
        )
    if isinstance(value, str):
        if not _MONEY_TEXT.fullmatch(value):
            raise ValueError(f'must be an amount of money like "12.50", not {value[:40]!r}')
        amount = Decimal(value)
    else:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if abs(amount) >= MONEY_LIMIT:
        raise ValueError("is out of range: money must be less than 1e12")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount != amount.quantize(CENT):
        raise ValueError("must have at most 2 decimals")
    return amount.quantize(CENT)


def _to_int(value: object) -> int:
    if type(value) is int and -INT_LIMIT < value < INT_LIMIT:  # bool is not int here
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"must be a whole number, not {_json_kind(value)}")
    if not isinstance(value, int):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        if value != int(value):
            raise ValueError(f"must be a whole number, not {value}")
    if abs(value) >= INT_LIMIT:
        raise ValueError("is out of range: whole numbers must be less than 1e9")
    return int(value)


def _to_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"must be a number, not {_json_kind(value)}")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if abs(value) >= MONEY_LIMIT:
        raise ValueError("is out of range: numbers must be less than 1e12")
    return float(value)


def _to_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_json_kind(value)}")
    return value


def _to_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_json_kind(value)}")
    if len(value) > MAX_TEXT_FACT:
        raise ValueError(f"must be at most {MAX_TEXT_FACT} characters long")
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


_CONVERTERS: dict[str, Callable[[object], object]] = {
    "money": _to_money,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
}


def fact_catalogue_markdown() -> str:
    """The catalogue as a Markdown table (fact, type, may be absent, meaning) for docs/rules.md.

    "when omitted": always derived, but facts given directly may leave it out.
    """
    lines = ["| fact | type | may be absent | meaning |", "|---|---|---|---|"]
    for spec in FACTS.values():
        meaning = spec.description.replace("|", "\\|")
        absent = "yes" if spec.optional else "no" if spec.required else "when omitted"
        lines.append(f"| `{spec.name}` | {spec.type} | {absent} | {meaning} |")
    return "\n".join(lines) + "\n"
