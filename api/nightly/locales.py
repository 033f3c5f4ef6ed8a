"""Money and dates in letters, written as the reader writes them (Babel's CLDR data).

A letter's locale is its language and the customer's country: a German letter to a customer in
Germany is `de_DE` (`49.443,72 €`, `7. Dezember 2026`), to one in Austria `de_AT`
(`€ 49.443,72`), an English one to the United Kingdom `en_GB` (`£1,234.50`, `7 December 2026`);
a pair CLDR does not know falls back to the language alone (`en`: `December 7, 2026`).

Templates use them as filters (api.nightly.sandbox offers them, each counting as a step):

    {{ total_overdue|money }}            the letter's currency, e.g. 49.443,72 €
    {{ amount|money("GBP") }}            another currency
    {{ inv.due_date|date }}              the long form, e.g. 7. Dezember 2026
    {{ inv.due_date|date("short") }}     or short, medium, long, full
    {{ charges.interest_rate|number }}   a number, e.g. 12,27

A value that is not an amount or a date is an error naming it, never a guess.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import pass_context

DEFAULT_LOCALE = "en"
DATE_FORMATS = ("short", "medium", "long", "full")
_MAX_AMOUNT = Decimal(10) ** 15


@lru_cache(maxsize=512)
def letter_locale(language: str, country: str = "") -> str:
    """The locale of a letter in `language` to a customer in `country` (ISO codes): the pair
    when CLDR knows it, else the language, else English."""
    language = (language or "").replace("-", "_")
    country = (country or "").upper()
    for name in (f"{language}_{country}" if country and "_" not in language else "", language):
        if not name:
            continue
        try:
            Locale.parse(name)
        except (UnknownLocaleError, ValueError, TypeError):
            continue
        return name
    return DEFAULT_LOCALE


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"money: {value!r} is not an amount")
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"money: {str(value)[:40]!r} is not an amount") from None
    if not amount.is_finite() or abs(amount) >= _MAX_AMOUNT:
        raise ValueError(f"money: {str(value)[:40]!r} is not an amount within 10^15")
    return amount


def _day(value: Any) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"date: {str(value)[:40]!r} is not a date written YYYY-MM-DD") from None


# Parsed locales and formatted values are kept: a letter about 2,000 invoices formats 4,000
# amounts and dates, many of them alike, and parsing a locale costs more than formatting.
_parsed = lru_cache(maxsize=256)(Locale.parse)


@lru_cache(maxsize=8192)
def _money(amount: Decimal, currency: str, locale: str) -> str:
    return format_currency(amount, currency, locale=_parsed(locale))


@lru_cache(maxsize=8192)
def _date(day: date, locale: str, form: str) -> str:
    return format_date(day, form, locale=_parsed(locale))


def format_money(value: Any, currency: str, locale: str) -> str:
    """`value` in `currency` as written in `locale`, always with the currency's decimals."""
    if not isinstance(currency, str) or len(currency) > 8:
        raise ValueError("money: the currency must be a code such as 'EUR'")
    return _money(_amount(value), currency, locale)


def format_day(value: Any, locale: str, form: str = "long") -> str:
    """A date (or YYYY-MM-DD) as written in `locale`, in one of DATE_FORMATS."""
    if form not in DATE_FORMATS:
        raise ValueError(f"date: the form must be one of {', '.join(DATE_FORMATS)}")
    return _date(_day(value), locale, form)


def format_number(value: Any, locale: str) -> str:
    """A number as written in `locale` (decimal separator, grouping)."""
    return format_decimal(_amount(value), locale=_parsed(locale))


def _locale(context: Any) -> str:
    return context.get("locale") or DEFAULT_LOCALE


@pass_context
def money_filter(context: Any, value: Any, currency: str | None = None) -> str:
    return format_money(value, currency or context.get("currency") or "EUR", _locale(context))


@pass_context
def date_filter(context: Any, value: Any, form: str = "long") -> str:
    return format_day(value, _locale(context), form)


@pass_context
def number_filter(context: Any, value: Any) -> str:
    return format_number(value, _locale(context))


FILTERS = {"money": money_filter, "date": date_filter, "number": number_filter}
