"""Rule sets: the list, a version's rules, tests and history, the draft editor (each validation
problem beside the line it names), the lifecycle moves per role, and the diff of two versions.
Every move is a use case of api.lifecycle, as in the API and `credo rules`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, current_app, redirect, render_template, request, url_for

from api import lifecycle
from api.console.access import SIMULATE_ROLES, current_person, require_page
from api.console.blueprint import bp
from api.lifecycle import MOVE_ROLES, READ_ROLES

SOURCE_LIMIT = 1_000_000  # characters of TOML the editor takes (the API's body limit is similar)


def _policy() -> lifecycle.Policy:
    return lifecycle.Policy.from_settings(current_app.extensions["credo"].settings)


def _refusal(exc: lifecycle.LifecycleError) -> tuple[int, str]:
    """A lifecycle refusal as (HTTP status, message), as the API maps them."""
    if isinstance(exc, lifecycle.UnknownVersion):
        return 404, str(exc)
    if isinstance(exc, lifecycle.NotAllowed):
        return 403, str(exc)
    if isinstance(exc, lifecycle.Refused):
        return 409, str(exc)
    return 422, str(exc)


@bp.route("/rulesets")
@require_page(*READ_ROLES)
def rulesets() -> str:
    """Every rule set with its active version and the versions waiting for a move."""
    from api.ruleset_views import list_rulesets, ruleset_overview

    items = []
    for item in list_rulesets():
        overview = ruleset_overview(item["kind"])
        waiting = ("draft", "proposed", "approved")
        pending = [v for v in overview["history"] if v["state"] in waiting]
        experiment = overview["experiment"]
        items.append(
            {
                **item,
                "pending": pending,
                "activation": overview["pending"],
                "challenger": experiment if experiment and not experiment["ended_at"] else None,
            }
        )
    return render_template("console/rulesets.html", items=items)


def version_page(kind: str, version: int | None, status: int = 200, **extra: Any) -> Any:
    from api.ruleset_views import ruleset_overview, version_detail

    try:
        overview = ruleset_overview(kind)
        detail = version_detail(kind, version)
        parsed = lifecycle.parsed(detail)
    except lifecycle.LifecycleError as exc:
        code, message = _refusal(exc)
        abort(code, message)
    from api.console.simulations import simulate_defaults

    person = current_person()
    can = {move: person.may((*roles, "admin")) for move, roles in MOVE_ROLES.items()}
    can["simulate"] = person.may((*SIMULATE_ROLES, "admin"))
    extra.setdefault("sim_form", simulate_defaults())
    extra.setdefault("sim_problems", {})
    extra.setdefault("rollout_form", {})
    extra.setdefault("rollout_problems", {})
    page = render_template(
        "console/ruleset.html",
        kind=kind,
        overview=overview,
        v=detail,
        ruleset=parsed,
        can=can,
        **extra,
    )
    return page, status


@bp.route("/rulesets/<kind>")
@require_page(*READ_ROLES)
def ruleset(kind: str) -> Any:
    """One version (the active one unless ?version=N): rules, tests, events; moves by role."""
    text = request.args.get("version", "")
    version = int(text) if text.isdigit() and len(text) <= 9 else None
    return version_page(kind, version)


@bp.route("/rulesets/<kind>/diff")
@require_page(*READ_ROLES)
def ruleset_diff(kind: str) -> Any:
    """Rule-level differences between two versions, side by side."""
    from api.ruleset_views import diff_versions

    numbers = [request.args.get(name, "") for name in ("from", "to")]
    if not all(n.isdigit() and len(n) <= 9 for n in numbers):
        abort(400, "from and to: version numbers, e.g. ?from=1&to=2")
    try:
        diff = diff_versions(kind, int(numbers[0]), int(numbers[1]))
    except lifecycle.LifecycleError as exc:
        abort(*_refusal(exc))
    return render_template("console/ruleset_diff.html", kind=kind, diff=diff)


def annotate(source: str, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The source's lines, numbered, each with the problems located on it."""
    lines = [{"number": n, "text": t, "problems": []} for n, t in enumerate(source.split("\n"), 1)]
    for problem in problems:
        line = problem.get("line")
        if isinstance(line, int) and 1 <= line <= len(lines):
            lines[line - 1]["problems"].append(problem)
    return lines


@bp.route("/rulesets/<kind>/draft", methods=["GET", "POST"])
@require_page(*MOVE_ROLES["draft"])
def ruleset_draft(kind: str) -> Any:
    """The editor: a version's TOML (default: the active one) to change and store as a draft."""
    from api.ruleset_views import version_detail

    if request.method == "GET":
        text = request.args.get("from", "")
        try:
            base = version_detail(kind, int(text) if text.isdigit() and len(text) <= 9 else None)
        except lifecycle.LifecycleError as exc:
            abort(*_refusal(exc))
        form = {"source": base["source"], "note": "", "base": base["version"]}
        return render_template("console/ruleset_draft.html", kind=kind, form=form)
    form = {
        "source": request.form.get("source", "")[:SOURCE_LIMIT].replace("\r\n", "\n"),
        "note": request.form.get("note", "")[:4000],
        "base": request.form.get("base", ""),
    }
    try:
        drafted = lifecycle.draft_version(kind, form["source"], form["note"], current_person())
    except lifecycle.InvalidRuleSet as exc:
        problems = [lifecycle.problem_json(p) for p in exc.problems]
        unplaced = [p for p in problems if not isinstance(p.get("line"), int)]
        return render_template(
            "console/ruleset_draft.html",
            kind=kind,
            form=form,
            problems=problems,
            unplaced=unplaced,
            listing=annotate(form["source"], problems),
        ), 422
    except lifecycle.LifecycleError as exc:
        status, message = _refusal(exc)
        page = render_template("console/ruleset_draft.html", kind=kind, form=form, error=message)
        return page, status
    if request.form.get("then") == "simulate" and current_person().may((*SIMULATE_ROLES, "admin")):
        from api.console.simulations import simulate_draft

        return simulate_draft(kind, drafted["version"])
    return redirect(url_for("console.ruleset", kind=kind, version=drafted["version"]))


def _move(kind: str, version: int, make: Callable[[], Any], done: str) -> Any:
    try:
        make()
    except lifecycle.LifecycleError as exc:
        status, message = _refusal(exc)
        return version_page(kind, version, status, error=message)
    return redirect(url_for("console.ruleset", kind=kind, version=version, done=done))


def _note() -> str | None:
    return request.form.get("note", "")[:4000] or None


@bp.route("/rulesets/<kind>/versions/<int:version>/test", methods=["POST"])
@require_page(*MOVE_ROLES["test"])
def ruleset_test(kind: str, version: int) -> Any:
    """Run the version's [[test]] cases and smoke test; show the results on its page."""
    try:
        result = lifecycle.run_version_tests(kind, version, current_person(), _policy())
    except lifecycle.LifecycleError as exc:
        status, message = _refusal(exc)
        return version_page(kind, version, status, error=message)
    return version_page(kind, version, tested=result)


@bp.route("/rulesets/<kind>/versions/<int:version>/propose", methods=["POST"])
@require_page(*MOVE_ROLES["propose"])
def ruleset_propose(kind: str, version: int) -> Any:
    """draft → proposed (its tests must pass)."""
    person, policy, note = current_person(), _policy(), _note()
    return _move(
        kind,
        version,
        lambda: lifecycle.propose_version(kind, version, person, policy, note),
        "proposed",
    )


@bp.route("/rulesets/<kind>/versions/<int:version>/approve", methods=["POST"])
@require_page(*MOVE_ROLES["approve"])
def ruleset_approve(kind: str, version: int) -> Any:
    """proposed → approved (four eyes: by another person than its maker)."""
    person, policy, note = current_person(), _policy(), _note()
    return _move(
        kind,
        version,
        lambda: lifecycle.approve_version(kind, version, person, policy, note),
        "approved",
    )


@bp.route("/rulesets/<kind>/versions/<int:version>/reject", methods=["POST"])
@require_page(*MOVE_ROLES["reject"])
def ruleset_reject(kind: str, version: int) -> Any:
    """proposed → rejected."""
    person, note = current_person(), _note()
    return _move(
        kind, version, lambda: lifecycle.reject_version(kind, version, person, note), "rejected"
    )


@bp.route("/rulesets/<kind>/versions/<int:version>/activate", methods=["POST"])
@require_page(*MOVE_ROLES["activate"])
def ruleset_activate(kind: str, version: int) -> Any:
    """approved or retired → active (a rollback needs a note)."""
    person, note = current_person(), _note()
    return _move(
        kind, version, lambda: lifecycle.activate_version(kind, version, person, note), "activated"
    )


@bp.route("/decisions/<decision_id>/test-case", methods=["POST"])
@require_page(*MOVE_ROLES["draft"])
def decision_test_case(decision_id: str) -> Any:
    """A new draft of the decision's rule set with the decision pinned as a [[test]] case."""
    from api.console.decisions import decision_page
    from api.decision_tests import add_test_to_draft

    name = request.form.get("name", "").strip()[:200] or None
    try:
        draft = add_test_to_draft(None, None, decision_id, current_person(), _policy(), name)
    except lifecycle.UnknownVersion as exc:
        abort(404, str(exc))
    except lifecycle.LifecycleError as exc:  # a bad name, a case the active version fails
        status, message = _refusal(exc)
        return decision_page(decision_id, status, pin_error=message, pin_name=name or "")
    return redirect(
        url_for("console.ruleset", kind=draft["kind"], version=draft["version"], done="drafted")
    )
