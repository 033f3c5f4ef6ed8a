"""Finding customers by id or name, a page at a time (for the console's customer search), and
the names of a page of customers."""

from __future__ import annotations

from typing import Any

import peewee as pw

from storage.models import Customer


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: pw.Field, pattern: str) -> pw.Node:
    # LIKE with an explicit escape on both databases (peewee's own LIKE is GLOB on SQLite),
    # lower-cased on both sides: PostgreSQL's LIKE minds case, SQLite's only for non-ASCII.
    return pw.NodeList((pw.fn.LOWER(column), pw.SQL("LIKE"), pattern, pw.SQL("ESCAPE '\\'")))


def search_customers(text: str = "", after: str | None = None, limit: int = 50) -> list[dict]:
    """Customers whose id or name contains `text` (any case), by id, after the id `after`;
    up to `limit` + 1 rows, so the caller sees whether there are more."""
    query = Customer.select().order_by(Customer.id).limit(limit + 1)
    if text:
        pattern = _like_pattern(text.lower())
        query = query.where(_contains(Customer.id, pattern) | _contains(Customer.name, pattern))
    if after:
        query = query.where(Customer.id > after)
    return [_row(c) for c in query]


def _row(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "segment": customer.segment,
        "country": customer.country,
        "currency": customer.currency,
        "credit_limit": f"{customer.credit_limit:.2f}",
    }


def customer_names(customer_ids: list[str]) -> dict[str, str]:
    """The name of each given customer that is stored, by id (a page's worth of ids)."""
    ids = [i for i in dict.fromkeys(customer_ids) if isinstance(i, str)]
    if not ids:
        return {}
    query = Customer.select(Customer.id, Customer.name).where(Customer.id.in_(ids))
    return dict(query.tuples())
