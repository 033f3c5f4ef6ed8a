"""Portfolio and runs: aging per currency, DSO and CEI over the last runs, run reports and the
worklist with its CSV."""

from __future__ import annotations

from datetime import date

from flask import Response, abort, render_template, request, stream_with_context

from api.console.access import PORTFOLIO_ROLES, require_page
from api.console.blueprint import bp
from api.console.charts import bar_chart, line_chart

RUNS_PER_PAGE = 20
ACTIONS_PER_PAGE = 50
AGING = (("1_30", "1–30 days"), ("31_60", "31–60"), ("61_90", "61–90"), ("90_plus", "90+"))


@bp.route("/portfolio")
@require_page(*PORTFOLIO_ROLES)
def portfolio() -> str:
    """The latest run's aging per currency, DSO and CEI per currency over the last runs."""
    from api.run_views import portfolio_trend, runs_page

    trend = portfolio_trend()
    latest = trend[-1] if trend else None
    aging = {}
    if latest:
        for currency, figures in latest["by_currency"].items():
            bars = [(label, figures["aging"][key]) for key, label in AGING]
            aging[currency] = {"figures": figures, "chart": bar_chart(bars)}
    currencies = sorted({c for point in trend for c in point["by_currency"]})
    labels = [point["as_of"] for point in trend]

    def series(figure: str) -> dict[str, list[float | None]]:
        return {c: [(p["by_currency"].get(c) or {}).get(figure) for p in trend] for c in currencies}

    recent, _ = runs_page(5, None)
    return render_template(
        "console/portfolio.html",
        latest=latest,
        aging=aging,
        trend=trend,
        currencies=currencies,
        dso=line_chart(labels, series("dso_days")) if trend else None,
        cei=line_chart(labels, series("cei_percent")) if trend else None,
        recent=recent,
    )


@bp.route("/runs")
@require_page(*PORTFOLIO_ROLES)
def runs() -> str:
    """Runs, newest first, with their headline figures."""
    from api.run_views import runs_page

    before = _date_arg("before")
    page, next_before = runs_page(RUNS_PER_PAGE, before)
    return render_template("console/runs.html", runs=page, next_before=next_before)


def _date_arg(name: str) -> date | None:
    text = request.args.get(name, "")
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400, f"{name}: expected a date like 2024-05-31")


def _worklist_filters() -> tuple[str | None, str | None]:
    from api.nightly.actions import ACTION_TYPES
    from storage.runs import ACTION_STATES

    type_ = request.args.get("type") or None
    state = request.args.get("state") or None
    if type_ is not None and type_ not in ACTION_TYPES:
        abort(400, f"type: expected one of {', '.join(ACTION_TYPES)}")
    if state is not None and state not in ACTION_STATES:
        abort(400, f"state: expected one of {', '.join(ACTION_STATES)}")
    return type_, state


@bp.route("/runs/<run_id>")
@require_page(*PORTFOLIO_ROLES)
def run(run_id: str) -> str:
    """One run's report and its worklist, filtered by action type and state."""
    from api.nightly.actions import ACTION_TYPES
    from api.run_views import find_run, run_json, worklist_page
    from storage.runs import ACTION_STATES

    found = find_run(run_id)
    if found is None:
        abort(404, f"There is no run {run_id!r}.")
    type_, state = _worklist_filters()
    cursor = request.args.get("cursor", "")
    after = int(cursor) if cursor.isdigit() and len(cursor) <= 18 else 0
    actions, next_cursor = worklist_page(found.run_id, type_, state, after, ACTIONS_PER_PAGE)
    return render_template(
        "console/run.html",
        run=run_json(found),
        actions=actions,
        next_cursor=next_cursor,
        type_=type_ or "",
        state=state or "",
        types=ACTION_TYPES,
        states=ACTION_STATES,
    )


@bp.route("/runs/<run_id>/worklist.csv")
@require_page(*PORTFOLIO_ROLES)
def worklist_csv(run_id: str) -> Response:
    """The run's worklist (with the page's filters) as CSV, the same file the API gives."""
    from api.run_views import find_run
    from api.run_views import worklist_csv as csv_text

    found = find_run(run_id)
    if found is None:
        abort(404, f"There is no run {run_id!r}.")
    type_, state = _worklist_filters()
    return Response(
        stream_with_context(csv_text(found.run_id, type_, state)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="actions-{found.as_of}.csv"'},
    )
