"""Simulate and backtest a rule-set version from its page (or straight from the draft editor),
and the job page that follows it: "running" with its progress until the job ends (the page is
checked again by a link, or every few seconds when the reader asks for it: no script), then the
from→to matrix of each outcome field as a table and a chart, the money behind each cell, and
the customers (or decisions) that change, a page at a time.

Starting goes through the use cases the API's POST …/simulate and …/backtest call
(api.simulation_jobs: start_simulation, start_backtest): a job run by its own process
(api.jobs), read back as GET /v1/jobs/{id} reads it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import abort, current_app, redirect, render_template, request, url_for

from api.console.access import JOB_ROLES, SIMULATE_ROLES, current_person, require_page
from api.console.blueprint import bp
from api.console.charts import flow_chart, value_key
from api.console.customers import today
from api.intake.schemas import Day
from api.simulation import MAX_SAMPLE, MAX_SEED

CHANGED_PER_PAGE = 25
AUTO_REFRESH_SECONDS = 3
BACKTEST_DAYS = 30  # the period the backtest form offers: the last 30 days
_JOB_ID = re.compile(r"[0-9a-f-]{36}")


class SimulateForm(ma.Schema):
    """The simulate form: as the API's body, its numbers as the text a form sends."""

    as_of = Day(load_default=None)
    sample = ma.fields.Integer(validate=ma.validate.Range(1, MAX_SAMPLE), load_default=None)
    seed = ma.fields.Integer(validate=ma.validate.Range(0, MAX_SEED), load_default=None)


class BacktestForm(ma.Schema):
    """The backtest form: the period of the decisions replayed (creation dates, UTC)."""

    first = Day(data_key="from", required=True)
    last = Day(data_key="to", required=True)


def _settings() -> Any:
    return current_app.extensions["credo"].settings


def _created_by() -> str:
    return f"console:{current_person().name}"


def simulate_defaults() -> dict[str, str]:
    """What the version page's simulate and backtest forms hold before anyone types."""
    day = today()
    return {
        "as_of": day.isoformat(),
        "sample": "",
        "seed": "",
        "from": (day - timedelta(days=BACKTEST_DAYS)).isoformat(),
        "to": day.isoformat(),
    }


def _read(schema: ma.Schema, names: tuple[str, ...]) -> tuple[dict[str, str], Any, dict]:
    """(the form's text as sent, the loaded values or None, a message per field)."""
    form = {name: request.form.get(name, "").strip()[:40] for name in names}
    try:
        return form, schema.load({k: v for k, v in form.items() if v}), {}
    except ma.ValidationError as exc:
        messages = exc.normalized_messages()
        return form, None, {k: " ".join(map(str, v)) for k, v in messages.items()}


def _refused(kind: str, version: int, exc: Exception, form: dict[str, str]) -> Any:
    """The version page again, with why the job did not start (nothing was stored)."""
    from api.console.rulesets import version_page
    from api.jobs import JobError
    from api.simulation import BadParameters, UnknownVersion

    if isinstance(exc, BadParameters):
        problems = {k: " ".join(v) for k, v in exc.errors.items()}
        return version_page(kind, version, 422, sim_form=form, sim_problems=problems)
    status = 404 if isinstance(exc, UnknownVersion) else 500 if isinstance(exc, JobError) else 409
    return version_page(kind, version, status, error=str(exc), sim_form=form, sim_problems={})


@bp.route("/rulesets/<kind>/versions/<int:version>/simulate", methods=["POST"])
@require_page(*SIMULATE_ROLES)
def ruleset_simulate(kind: str, version: int) -> Any:
    """Simulate the version (a draft or any stored one) beside the active version: a job."""
    from api.console.rulesets import version_page
    from api.jobs import JobError
    from api.simulation import SimulationError
    from api.simulation_jobs import start_simulation

    form, loaded, problems = _read(SimulateForm(), ("as_of", "sample", "seed"))
    form = {**simulate_defaults(), **form}
    if problems:
        return version_page(kind, version, 422, sim_form=form, sim_problems=problems)
    as_of = loaded["as_of"] or today()
    try:
        job = start_simulation(
            _settings(), kind, version, as_of, loaded["sample"], loaded["seed"], _created_by()
        )
    except (SimulationError, JobError) as exc:
        return _refused(kind, version, exc, form)
    return redirect(url_for("console.job", job_id=job["job_id"]))


@bp.route("/rulesets/<kind>/versions/<int:version>/backtest", methods=["POST"])
@require_page(*SIMULATE_ROLES)
def ruleset_backtest(kind: str, version: int) -> Any:
    """Replay the version over the decisions of its kind made in a period: a job."""
    from api.console.rulesets import version_page
    from api.jobs import JobError
    from api.simulation import SimulationError
    from api.simulation_jobs import start_backtest

    form, loaded, problems = _read(BacktestForm(), ("from", "to"))
    form = {**simulate_defaults(), **form}
    if problems:
        return version_page(kind, version, 422, sim_form=form, sim_problems=problems)
    try:
        job = start_backtest(
            _settings(), kind, version, loaded["first"], loaded["last"], _created_by()
        )
    except (SimulationError, JobError) as exc:
        return _refused(kind, version, exc, form)
    return redirect(url_for("console.job", job_id=job["job_id"]))


def simulate_draft(kind: str, version: int) -> Any:
    """For the editor's "Store as a draft and simulate": the just-stored draft simulated as of
    today on every customer; the draft's page with why, when it cannot start."""
    from api.console.rulesets import version_page
    from api.jobs import JobError
    from api.simulation import SimulationError
    from api.simulation_jobs import start_simulation

    try:
        job = start_simulation(_settings(), kind, version, today(), None, None, _created_by())
    except (SimulationError, JobError) as exc:
        message = f"Stored as version {version}; the simulation did not start: {exc}"
        return version_page(kind, version, 200, error=message)
    return redirect(url_for("console.job", job_id=job["job_id"]))


@bp.route("/jobs/<job_id>")
@require_page(*JOB_ROLES)
def job(job_id: str) -> Any:
    """A simulation or backtest: running with its progress, failed with why, or its result."""
    from storage.jobs import get_job

    found = get_job(job_id) if _JOB_ID.fullmatch(job_id) else None
    if found is None:
        abort(404, f"There is no job {job_id[:80]!r}.")
    running = found["state"] in ("queued", "running")
    auto = running and request.args.get("auto") == "1"
    impact = None
    if found["state"] == "finished" and found["type"] in ("simulate", "backtest"):
        impact = impact_view(found["result"], _page_number())
    return render_template(
        "console/job.html",
        job=found,
        running=running,
        refresh=AUTO_REFRESH_SECONDS if auto else None,
        r=found["result"] if impact else None,
        impact=impact,
    )


def _page_number() -> int:
    text = request.args.get("page", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else 1


def impact_view(result: dict[str, Any], page: int) -> dict[str, Any]:
    """What the job page draws of a simulation's or backtest's result: per outcome field the
    matrix as rows, its chart and the money per cell and currency; a page of the changes."""
    fields = []
    for name, matrix in result["matrix"].items():
        cells = matrix["cells"]
        grid = {(value_key(c["from"]), value_key(c["to"])): c for c in cells}
        froms = _present(matrix["values"], {value_key(c["from"]) for c in cells})
        tos = _present(matrix["values"], {value_key(c["to"]) for c in cells})
        rows = [
            {
                "value": old,
                "cells": [grid.get((value_key(old), value_key(new))) for new in tos],
                "total": sum(c["count"] for c in cells if value_key(c["from"]) == value_key(old)),
            }
            for old in froms
        ]
        money = [
            {"cell": c, "currency": currency, **sums}
            for c in cells
            for currency, sums in c["money"].items()
        ]
        fields.append(
            {
                "name": name,
                "tos": tos,
                "rows": rows,
                "chart": flow_chart(matrix["values"], cells),
                "money": money,
                "changed": sum(c["count"] for c in cells if c["changed"]),
            }
        )
    fields.sort(key=lambda f: -f["changed"])  # the fields that change most first
    listed = result["changed"]
    pages = max(1, -(-len(listed) // CHANGED_PER_PAGE))
    page = min(max(page, 1), pages)
    shown = listed[(page - 1) * CHANGED_PER_PAGE : page * CHANGED_PER_PAGE]
    return {
        "fields": fields,
        "changed": shown,
        "names": _names(shown),
        "page": page,
        "pages": pages,
        "first": (page - 1) * CHANGED_PER_PAGE + 1,
        "listed": len(listed),
    }


def _present(values: list[Any], keys: set[str]) -> list[Any]:
    """The declared values that occur among `keys`, in declared order (each value is declared
    in the result's `values`, the others after them)."""
    return [v for v in values if value_key(v) in keys]


def _names(changes: list[dict[str, Any]]) -> dict[str, str]:
    from api.customer_views import customer_names

    return customer_names([c["customer_id"] for c in changes if c.get("customer_id")])
