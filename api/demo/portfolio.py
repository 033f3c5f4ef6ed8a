"""A seeded synthetic portfolio for `credo demo` and the benchmarks, as the ERP's JSON records.

Customers in four segments and a dozen countries, with credit limits to match, and a contact
person for about three in four; 18 months of invoices on 30-day terms; payers from prompt to
chronically late and distressed; partial payments, credit notes, disputes (most resolved),
promises kept and broken, payment plans kept and missed, reminders, calls and agency
placements already sent, and a few collections holds.
Customer n's records depend only on (seed, n, as_of): a larger portfolio extends a smaller one.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

HISTORY_DAYS = 548  # 18 months
TERMS_DAYS = 30
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Profile:
    """How a kind of payer behaves."""

    weight: float
    late: tuple[int, int]  # days after the due date a payment arrives (range)
    partial: float  # chance an invoice is paid in two parts
    never: float  # chance an old invoice is still unpaid
    promise: float  # chance a late invoice gets a promise to pay
    dispute: float  # chance an invoice is disputed
    allocates: float  # chance a payment names its invoice


PROFILES = {
    "prompt": Profile(0.34, (-8, 2), 0.02, 0.0, 0.0, 0.01, 0.80),
    "steady": Profile(0.28, (-3, 12), 0.05, 0.0, 0.05, 0.02, 0.85),
    "slow": Profile(0.20, (5, 38), 0.10, 0.01, 0.25, 0.03, 0.90),
    "late": Profile(0.12, (20, 80), 0.18, 0.05, 0.40, 0.05, 0.95),
    "distressed": Profile(0.06, (45, 160), 0.25, 0.30, 0.50, 0.06, 1.00),
}
# segment: (weight, credit limit range, invoices per month)
SEGMENTS = {
    "small_business": (0.45, (2_000, 25_000), 0.9),
    "mid_market": (0.33, (25_000, 150_000), 1.8),
    "enterprise": (0.15, (150_000, 1_000_000), 3.0),
    "public_sector": (0.07, (50_000, 400_000), 1.2),
}
COUNTRIES = (  # country, currency, company suffix, weight
    ("DE", "EUR", "GmbH", 0.22),
    ("FR", "EUR", "SARL", 0.14),
    ("NL", "EUR", "B.V.", 0.09),
    ("GB", "GBP", "Ltd", 0.14),
    ("US", "USD", "Inc.", 0.10),
    ("IT", "EUR", "S.r.l.", 0.07),
    ("ES", "EUR", "S.L.", 0.07),
    ("AT", "EUR", "GmbH", 0.05),
    ("CH", "CHF", "AG", 0.04),
    ("SE", "SEK", "AB", 0.04),
    ("PL", "PLN", "Sp. z o.o.", 0.04),
)
_WORDS = (
    "Alpine Baltic Cedar Delta Ember Fjord Granite Harbor Iris Juniper Kestrel Linden Meridian "
    "Nordic Orchid Pioneer Quarry Riverside Summit Tundra Union Vertex Willow Zenith"
).split()
_TRADES = (
    "Logistics Foods Components Textiles Pharma Builders Electrics Plastics Software Paper "
    "Machinery Furniture Chemicals Metals Packaging Optics"
).split()
HOLD_REASONS = (
    "Insolvency check requested by the CFO",
    "Key account: collections paused by sales",
    "Bank details being verified",
    "Goods returned, awaiting inspection",
)


def _money(value: float | Decimal) -> str:
    return str(Decimal(value).quantize(CENT))


def generate_portfolio(
    customers: int = 2000, seed: int = 7, as_of: date | None = None
) -> Iterator[dict]:
    """Every record of `customers` synthetic customers, customer by customer, each customer's
    record first; money as strings with two decimals, dates as ISO 8601."""
    as_of = as_of or date.today()
    for n in range(customers):
        yield from generate_customer(n, seed, as_of)


def _tone(days_late: int, last_tone: str) -> str:
    """The reminder ladder: friendly, firm, final, then demand only after a final notice."""
    if days_late <= 14:
        return "friendly"
    if days_late <= 30:
        return "firm"
    if days_late <= 60 or last_tone not in ("final", "demand"):
        return "final"
    return "demand"


def _pick(rng: random.Random, weighted: dict[str, Any]) -> str:
    names = list(weighted)
    weights = [w.weight if isinstance(w, Profile) else w[0] for w in weighted.values()]
    return rng.choices(names, weights)[0]


def generate_customer(n: int, seed: int, as_of: date) -> list[dict[str, Any]]:
    """The records of customer n."""
    rng = random.Random(f"credo-demo/{seed}/{n}")
    segment = _pick(rng, SEGMENTS)
    _, (low, high), per_month = SEGMENTS[segment]
    profile = PROFILES[_pick(rng, PROFILES)]
    country, currency, suffix, _ = rng.choices(COUNTRIES, [c[3] for c in COUNTRIES])[0]
    customer_id = f"C{n:06d}"
    limit = Decimal(rng.randrange(low, high, 1000))
    since = as_of - timedelta(days=rng.randint(90, 365 * 12))
    customer = {
        "type": "customer",
        "id": customer_id,
        "name": f"{rng.choice(_WORDS)} {rng.choice(_TRADES)} {suffix}",
        "segment": segment,
        "country": country,
        "currency": currency,
        "credit_limit": _money(limit),
        "since": since.isoformat(),
    }
    if rng.random() < 0.85:
        customer["credit_score"] = max(0, min(1000, int(rng.gauss(680, 120))))
    contact = _contact(seed, n, country)
    if contact is not None:
        customer["contact"] = contact
    book = _Book(rng, customer_id, profile, as_of)
    start = max(since, as_of - timedelta(days=HISTORY_DAYS))
    day = start
    while day <= as_of:
        if rng.random() < per_month / 30:
            book.invoice(day, limit)
        day += timedelta(days=1)
    book.contacts()
    book.plans()
    book.hold()
    return [customer, *book.records]


# Contact persons by country: given names (with the salutation they take) and family names.
_GIVEN = {
    "de": (("Anna", "ms"), ("Jonas", "mr"), ("Katrin", "ms"), ("Lukas", "mr"), ("Sabine", "ms")),
    "en": (("Emma", "ms"), ("Oliver", "mr"), ("Sarah", "ms"), ("James", "mr"), ("Alex", "")),
    "other": (("Marie", "ms"), ("Luca", "mr"), ("Sofia", "ms"), ("Lars", "mr"), ("Eva", "ms")),
}
_FAMILY = {
    "de": ("Weber", "Schneider", "Fischer", "Wagner", "Becker", "Hoffmann"),
    "en": ("Smith", "Taylor", "Brown", "Wilson", "Evans", "Walker"),
    "other": ("Martin", "Rossi", "García", "de Vries", "Nowak", "Lindberg"),
}
_LANGUAGES = {"DE": "de", "AT": "de", "CH": "de", "GB": "en", "US": "en"}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _contact(seed: int, n: int, country: str) -> dict[str, str] | None:
    """Customer n's contact person, for about three customers in four; from a generator of its
    own, so the rest of the customer's records are those of a portfolio without contacts."""
    rng = random.Random(f"credo-demo/{seed}/{n}/contact")
    if rng.random() >= 0.75:
        return None
    language = _LANGUAGES.get(country, "")
    names = language or "other"
    given, salutation = rng.choice(_GIVEN[names])
    family = rng.choice(_FAMILY[names])
    contact = {
        "name": f"{given} {family}",
        "email": _ascii(f"{given}.{family}".lower().replace(" ", "")) + "@example.com",
    }
    if language:
        contact["language"] = language
    # A family name of several words is greeted by full name: the salutation is left out.
    if salutation and " " not in family:
        contact["salutation"] = salutation
    return contact


class _Book:
    """One customer's history, written as it happens."""

    def __init__(self, rng: random.Random, customer_id: str, profile: Profile, as_of: date):
        self.rng, self.customer_id, self.profile, self.as_of = rng, customer_id, profile, as_of
        self.records: list[dict[str, Any]] = []
        self.counter = 0
        self.unpaid_overdue: list[tuple[str, Decimal, date]] = []  # (id, amount, due)
        # (due, paid on, dispute opened, dispute resolved) of every invoice, for the reminders
        self.history: list[tuple[date, date | None, date | None, date | None]] = []

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{self.customer_id}-{prefix}{self.counter:04d}"

    def _add(self, kind: str, **fields: Any) -> str:
        record_id = self._id(kind[:2].upper())
        record = {"type": kind, "id": record_id, "customer_id": self.customer_id}
        for key, value in fields.items():
            record[key] = value.isoformat() if isinstance(value, date) else value
        self.records.append(record)
        return record_id

    def invoice(self, issued: date, limit: Decimal) -> None:
        rng, as_of = self.rng, self.as_of
        amount = (limit * Decimal(rng.uniform(0.02, 0.16))).quantize(CENT) + Decimal(50)
        due = issued + timedelta(days=TERMS_DAYS)
        invoice_id = self._add("invoice", issue_date=issued, due_date=due, amount=_money(amount))
        owed = amount
        if rng.random() < 0.03:  # a credit note for returned or damaged goods
            credit = (amount * Decimal(rng.uniform(0.05, 0.3))).quantize(CENT)
            credited_on = issued + timedelta(days=rng.randint(3, 20))
            if credited_on <= as_of:
                self.records.append(
                    {
                        "type": "credit_note",
                        "id": self._id("CN"),
                        "customer_id": self.customer_id,
                        "invoice_id": invoice_id,
                        "date": credited_on.isoformat(),
                        "amount": _money(credit),
                    }
                )
                owed -= credit
        paid_on = due + timedelta(days=rng.randint(*self.profile.late))
        paid_on = max(paid_on, issued + timedelta(days=1))
        paid_on, opened, resolved = self._dispute(invoice_id, due, paid_on)
        if (as_of - due).days > 90 and rng.random() < self.profile.never:
            paid_on = None
        self._promise(due, paid_on, owed)
        self.history.append((due, paid_on, opened, resolved))
        if paid_on is None or paid_on > as_of:
            if due < as_of:
                self.unpaid_overdue.append((invoice_id, owed, due))
            return
        self._pay(invoice_id, owed, paid_on)

    def _dispute(self, invoice_id: str, due: date, paid_on: date) -> tuple:
        """Maybe a dispute: (payment date, opened, resolved); no payment while it is open."""
        rng = self.rng
        if rng.random() >= self.profile.dispute:
            return paid_on, None, None
        opened = due + timedelta(days=rng.randint(-12, 20))
        if opened > self.as_of:
            return paid_on, None, None
        record = {
            "type": "dispute",
            "id": self._id("DI"),
            "invoice_id": invoice_id,
            "opened": opened.isoformat(),
            "reason": rng.choice(
                ("wrong quantity", "price differs from order", "goods damaged", "not delivered")
            ),
        }
        resolved = opened + timedelta(days=rng.randint(7, 75))
        self.records.append(record)
        if rng.random() < 0.75 and resolved <= self.as_of:
            record["resolved"] = resolved.isoformat()
            return max(paid_on, resolved + timedelta(days=rng.randint(0, 10))), opened, resolved
        return None, opened, None

    def _pay(self, invoice_id: str, owed: Decimal, paid_on: date) -> None:
        rng = self.rng
        parts = [owed]
        if rng.random() < self.profile.partial and owed > 100:
            first = (owed * Decimal(rng.uniform(0.3, 0.7))).quantize(CENT)
            parts = [first, owed - first]
        for k, part in enumerate(parts):
            day = (
                paid_on - timedelta(days=rng.randint(5, 25))
                if k == 0 and len(parts) > 1
                else paid_on
            )
            fields: dict[str, Any] = {"date": day, "amount": _money(part)}
            if rng.random() < self.profile.allocates:
                fields["allocations"] = [{"invoice_id": invoice_id, "amount": _money(part)}]
            self._add("payment", **fields)

    def contacts(self) -> None:
        """Reminders as a credit controller sends them: once a week at most, for the account,
        in the tone its oldest undisputed unpaid invoice calls for; calls for late payers; an
        agency placement for long-ignored demands (a few recalled later)."""
        rng, as_of = self.rng, self.as_of
        if not self.history:
            return
        history = sorted(self.history, key=lambda h: h[0])
        courtesy = rng.random() < 0.3
        last_tone, last_day, placed = "none", date.min, False
        day = history[0][0] - timedelta(days=rng.randint(3, 9))
        while day <= as_of and not placed:
            late, upcoming = self._lateness(history, day)
            tone = _tone(late, last_tone) if late else ("courtesy" if upcoming and courtesy else "")
            if tone and (tone != last_tone or (day - last_day).days >= 14):
                self._contact("reminder", day, tone=tone)
                last_tone, last_day = tone, day
                if tone in ("final", "demand") and self.profile.late[1] > 40 and rng.random() < 0.3:
                    self._contact("call", min(day + timedelta(days=2), as_of))
                if tone == "demand" and late > 120 and rng.random() < 0.5:
                    placed = True
                    self._contact("agency_placement", day)
                    recalled = day + timedelta(days=rng.randint(30, 90))
                    if rng.random() < 0.2 and recalled <= as_of:
                        self._contact("agency_recall", recalled)
            day += timedelta(days=7)

    @staticmethod
    def _lateness(history: list[tuple], day: date) -> tuple[int, bool]:
        """Days past due of the oldest unpaid undisputed invoice on `day` (0 if none), and
        whether an unpaid invoice falls due within five days."""
        for due, paid_on, opened, resolved in history:
            unpaid = paid_on is None or paid_on > day
            if due >= day:
                if unpaid and (due - day).days <= 5:
                    return 0, True
                if due - day > timedelta(days=5):
                    break
                continue
            disputed = opened is not None and opened <= day and (resolved is None or resolved > day)
            if unpaid and not disputed:
                return (day - due).days, False
        return 0, False

    def _contact(self, kind: str, day: date, **fields: Any) -> None:
        record = {"type": kind, "id": self._id("K"), "customer_id": self.customer_id}
        self.records.append({**record, "date": day.isoformat(), **fields})

    def _promise(self, due: date, paid_on: date | None, owed: Decimal) -> None:
        """A promise made while the invoice was late: kept if the payment came by its date."""
        rng = self.rng
        late_days = ((paid_on or self.as_of) - due).days
        if late_days < 20 or rng.random() >= self.profile.promise:
            return
        made_on = due + timedelta(days=rng.randint(10, late_days - 5))
        if made_on > self.as_of:
            return
        promised = made_on + timedelta(days=rng.randint(5, 21))
        if rng.random() < 0.5 and paid_on is not None:
            promised = max(promised, paid_on)  # this one is kept
        self._add("promise", made_on=made_on, date=promised, amount=_money(owed))

    def plans(self) -> None:
        """An active plan over long-unpaid invoices, with installments kept or missed."""
        rng, as_of = self.rng, self.as_of
        old = [(i, a) for i, a, due in self.unpaid_overdue if (as_of - due).days > 60]
        if not old or rng.random() >= 0.35:
            return
        total = sum((a for _, a in old), Decimal(0))
        count = rng.randint(3, 6)
        agreed = as_of - timedelta(days=rng.randint(20, 100))
        share = (total / count).quantize(CENT)
        installments = []
        for k in range(count):
            amount = share if k < count - 1 else total - share * (count - 1)
            installments.append((agreed + timedelta(days=30 * (k + 1)), amount))
        keeps = rng.random() < 0.6
        for due, amount in installments:
            if due <= as_of and (keeps or rng.random() < 0.4):
                self._add(
                    "payment", date=due - timedelta(days=rng.randint(0, 3)), amount=_money(amount)
                )
        self._add(
            "payment_plan",
            status="active",
            installments=[
                {"due_date": due.isoformat(), "amount": _money(amount)}
                for due, amount in installments
            ],
        )

    def hold(self) -> None:
        rng = self.rng
        if rng.random() >= 0.02:
            return
        start = self.as_of - timedelta(days=rng.randint(0, 60))
        fields: dict[str, Any] = {"reason": rng.choice(HOLD_REASONS), "start": start}
        if rng.random() < 0.6:
            fields["end"] = start + timedelta(days=rng.randint(5, 90))
        self._add("hold", **fields)
