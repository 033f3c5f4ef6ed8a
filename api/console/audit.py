"""Audit pages (auditors): verify the decision chain over a range, with an anchor if one was
kept, and see the head hash (the operator log is verified beside it, whole); the chain's head
now, to keep outside the database.

Verification calls the use cases GET /v1/audit/verify and `credo audit verify` call
(api.audit_chain): the range is read by parse_bound and resolve_range, checked in the request by
verify_trail, or, past `audit.verify_job_rows` decisions as the API does, by the `audit-verify`
job (api.jobs.launch_job), whose page shows its progress and then the same result. The form is
a POST (it may start a job), with the session's CSRF token like every console form.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import abort, current_app, redirect, render_template, request, url_for

from api.console.access import AUDIT_ROLES, current_person, require_page
from api.console.blueprint import bp

VERIFY_FIELDS = ("from", "to", "anchor_seq", "anchor_hash")
FIELD_LENGTH = 80
AUTO_REFRESH_SECONDS = 3
_JOB_ID = re.compile(r"[0-9a-f-]{36}")


def _settings() -> Any:
    return current_app.extensions["credo"].settings


def _form(values: Any) -> dict[str, str]:
    return {name: values.get(name, "").strip()[:FIELD_LENGTH] for name in VERIFY_FIELDS}


@bp.route("/audit")
@require_page(*AUDIT_ROLES)
def audit_verify() -> Any:
    """The verify form (prefilled from the address: the anchor page links here with its head)."""
    return verify_page(_form(request.args), {})


def verify_page(form: dict[str, str], problems: dict[str, str], status: int = 200, **extra: Any):
    rows = _settings().audit.verify_job_rows
    page = render_template(
        "console/audit_verify.html", form=form, problems=problems, config_rows=rows, **extra
    )
    return page, status


def read_verify_form(form: dict[str, str]) -> tuple[Any, Any, Any, dict[str, str]]:
    """(first seq, last seq, anchor, a problem per field) from the form's text, through the
    API's parsers (api.audit_chain)."""
    from api.audit_chain import AuditInputError, make_anchor, parse_bound, resolve_range

    problems: dict[str, str] = {}
    bounds: dict[str, Any] = {}
    for name in ("from", "to"):
        if form[name]:
            try:
                bounds[name] = parse_bound(name, form[name])
            except AuditInputError as exc:
                problems[exc.field] = exc.message
    anchor = None
    seq_text, hash_text = form["anchor_seq"], form["anchor_hash"]
    if bool(seq_text) != bool(hash_text):
        missing = "anchor_hash" if seq_text else "anchor_seq"
        problems[missing] = "give the anchor's seq and hash together"
    elif seq_text:
        seq = int(seq_text) if seq_text.isascii() and seq_text.isdigit() else seq_text
        try:
            anchor = make_anchor(seq, hash_text)
        except AuditInputError as exc:
            problems[exc.field] = exc.message
    if problems:
        return None, None, None, problems
    try:
        first, last = resolve_range(bounds.get("from"), bounds.get("to"))
    except AuditInputError as exc:
        return None, None, None, {exc.field: exc.message}
    return first, last, anchor, {}


@bp.route("/audit/verify", methods=["POST"])
@require_page(*AUDIT_ROLES)
def audit_verify_run() -> Any:
    """Verify the range now, or start the API's verify job for a large one."""
    from api.audit_chain import AuditInputError, range_size, verify_trail

    form = _form(request.form)
    first, last, anchor, problems = read_verify_form(form)
    if not problems:
        if range_size(first or 1, last) > _settings().audit.verify_job_rows:
            return _start_job(first, last, anchor, form)
        try:
            result = verify_trail(first, last, anchor)
        except AuditInputError as exc:
            problems = {exc.field: exc.message}
    if problems:
        return verify_page(form, problems, 422)
    return verify_page(form, {}, r=result)


def _start_job(first: int | None, last: int | None, anchor: Any, form: dict[str, str]) -> Any:
    from api.jobs import JobError, launch_job

    params = {"from": first, "to": last, "anchor": anchor.to_json() if anchor else None}
    try:
        job = launch_job(_settings(), "audit-verify", params, f"console:{current_person().name}")
    except JobError as exc:
        return verify_page(form, {}, 503, error=str(exc))
    return redirect(url_for("console.audit_verify_job", job_id=job["job_id"]))


@bp.route("/audit/verify/<job_id>")
@require_page(*AUDIT_ROLES)
def audit_verify_job(job_id: str) -> Any:
    """A verification run as a job: its progress while it runs, then its result."""
    from storage.jobs import get_job

    found = get_job(job_id) if _JOB_ID.fullmatch(job_id) else None
    if found is None or found["type"] != "audit-verify":
        abort(404, f"There is no verification job {job_id[:80]!r}.")
    running = found["state"] in ("queued", "running")
    auto = running and request.args.get("auto") == "1"
    return render_template(
        "console/audit_job.html",
        job=found,
        running=running,
        refresh=AUTO_REFRESH_SECONDS if auto else None,
        r=found["result"] if found["state"] == "finished" else None,
    )


@bp.route("/audit/anchor")
@require_page(*AUDIT_ROLES)
def audit_anchor() -> Any:
    """The chain's head now, to copy and keep outside the database (as GET /v1/audit/anchor:
    the same use case, logged the same way)."""
    from api.audit_chain import current_anchor, log_anchor

    anchor = current_anchor()
    log_anchor(anchor, "anchored")
    text = json.dumps(anchor)  # what `credo audit anchor` writes: --anchor-file reads it
    return render_template("console/audit_anchor.html", anchor=anchor, text=text)
