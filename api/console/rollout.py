"""Rolling a version out from its page (approvers): activate it at a time (a pending
activation, made by whoever looks first once the time has come), cancel that, saying why; and
the report comparing an experiment's champion and challenger.

The moves are the use cases of POST …/activate with `at` and POST …/cancel (api.lifecycle,
api.rollout), the report GET /v1/rulesets/{kind}/experiment's (api.experiment.compare_arms), as
`credo rules activate --at`, `credo rules cancel` and `credo rules experiment` call them.
"""

from __future__ import annotations

import re
from typing import Any

from flask import abort, redirect, render_template, request, url_for

from api import lifecycle, rollout
from api.console.access import current_person, require_page
from api.console.blueprint import bp
from api.lifecycle import MOVE_ROLES, READ_ROLES

# What a browser's datetime-local field sends (no zone): the page says the time is UTC.
_LOCAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?")


def utc_text(text: str) -> str:
    """The form's time as the use case reads it: a datetime-local value (no zone) is UTC;
    anything else goes as typed, for the use case to accept or name what is wrong."""
    text = text.strip()[:80]
    return text + "Z" if _LOCAL.fullmatch(text) else text


def _refused(kind: str, version: int, exc: lifecycle.LifecycleError, form: dict[str, str]):
    from api.console.rulesets import _refusal, version_page

    status, message = _refusal(exc)
    if isinstance(exc, lifecycle.InvalidInput) and exc.field in ("at", "note"):
        problems = {f"rollout_{exc.field}": exc.message}
        return version_page(kind, version, status, rollout_form=form, rollout_problems=problems)
    return version_page(kind, version, status, error=message, rollout_form=form)


@bp.route("/rulesets/<kind>/versions/<int:version>/activate-at", methods=["POST"])
@require_page(*MOVE_ROLES["activate"])
def ruleset_activate_at(kind: str, version: int) -> Any:
    """approved → a pending activation at the time given (UTC)."""
    form = {
        "rollout_at": request.form.get("rollout_at", "").strip()[:80],
        "rollout_note": request.form.get("rollout_note", "")[:4000],
    }
    try:
        note, at = form["rollout_note"] or None, utc_text(form["rollout_at"])
        lifecycle.activate_version(kind, version, current_person(), note, at)
    except lifecycle.LifecycleError as exc:
        return _refused(kind, version, exc, form)
    return redirect(url_for("console.ruleset", kind=kind, version=version, done="scheduled"))


@bp.route("/rulesets/<kind>/versions/<int:version>/cancel", methods=["POST"])
@require_page(*MOVE_ROLES["cancel"])
def ruleset_cancel(kind: str, version: int) -> Any:
    """Cancel the version's pending activation, saying why (it stays approved)."""
    form = {"cancel_note": request.form.get("cancel_note", "")[:4000]}
    try:
        rollout.cancel_activation(kind, version, current_person(), form["cancel_note"])
    except lifecycle.InvalidInput as exc:
        from api.console.rulesets import version_page

        problems = {"cancel_note": exc.message}
        return version_page(kind, version, 422, rollout_form=form, rollout_problems=problems)
    except lifecycle.LifecycleError as exc:
        return _refused(kind, version, exc, form)
    done = "stays approved: its pending activation was cancelled"
    return redirect(url_for("console.ruleset", kind=kind, version=version, done=done))


@bp.route("/rulesets/<kind>/experiment")
@require_page(*READ_ROLES)
def ruleset_experiment(kind: str) -> Any:
    """The kind's experiment (the running one, else the last; ?experiment=N for another):
    the champion and the challenger compared over the same period."""
    from api.console.rulesets import _refusal
    from api.experiment import compare_arms

    text = request.args.get("experiment", "")
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None
    if text and (number is None or number < 1):
        abort(404, f"There is no experiment {text[:40]!r} of {kind[:40]!r}.")
    try:
        report = compare_arms(kind, number)
    except lifecycle.LifecycleError as exc:
        abort(*_refusal(exc))
    return render_template("console/experiment.html", kind=kind, x=report)
