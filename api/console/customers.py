"""Customers: search by id or name, and one customer's ledger timeline, facts, latest
decisions and the letters the worklist prepared."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, render_template, request

from api.console.access import CUSTOMER_ROLES, require_page
from api.console.blueprint import bp

PAGE_SIZE = 50


def today() -> date:
    settings = current_app.extensions["credo"].settings
    return datetime.now(ZoneInfo(settings.facts.timezone)).date()


@bp.route("/customers")
@require_page(*CUSTOMER_ROLES)
def customers() -> Any:
    """Customers whose id or name contains the search text, by id."""
    from api.customer_views import find_customers

    text = request.args.get("q", "").strip()[:200]
    after = request.args.get("after", "")[:64] or None
    page, next_after = find_customers(text, after, PAGE_SIZE)
    return render_template("console/customers.html", q=text, page=page, next_after=next_after)


@bp.route("/customers/<erp_id:customer_id>")
@require_page(*CUSTOMER_ROLES)
def customer(customer_id: str) -> Any:
    """One customer: facts as of today, the ledger newest first, decisions and letters."""
    from api.customer_views import customer_overview
    from engine.facts import FACTS

    overview = customer_overview(customer_id, today())
    if overview is None:
        abort(404, f"There is no customer {customer_id!r}.")
    return render_template("console/customer.html", o=overview, catalogue=FACTS)
