"""Schemas of the run endpoints: starting a run, run reports, the worklist of actions."""

from __future__ import annotations

import marshmallow as ma

from api.intake.schemas import Day
from api.nightly.actions import ACTION_TYPES
from storage.runs import ACTION_STATES, RUN_STATES

_NULLABLE = {"required": True, "allow_none": True}


class RunStartSchema(ma.Schema):
    """POST /v1/runs (the body may be left out)."""

    as_of = Day(metadata={"description": "the run's date (default: today, facts.timezone)"})
    force = ma.fields.Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={"description": "run the date again although its run finished (a new attempt)"},
    )


class RunStartedSchema(ma.Schema):
    run_id = ma.fields.String(required=True)
    as_of = ma.fields.String(required=True, metadata={"format": "date"})
    state = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(RUN_STATES),
        metadata={"description": "running, or finished/failed when the run was that quick"},
    )
    start = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(["new", "resume"]),
        metadata={"description": "new: a new run; resume: the date's unfinished run goes on"},
    )


class ProgressSchema(ma.Schema):
    batches_done = ma.fields.Integer(required=True)
    batches_total = ma.fields.Integer(required=True)
    customers_done = ma.fields.Integer(required=True, metadata={"description": "errors included"})
    errors = ma.fields.Integer(required=True)


class RunSchema(ma.Schema):
    """A run and its report (SPEC §8)."""

    run_id = ma.fields.String(required=True)
    as_of = ma.fields.String(required=True, metadata={"format": "date"})
    attempt = ma.fields.Integer(required=True, metadata={"description": "1, then 2… per force"})
    state = ma.fields.String(required=True, validate=ma.validate.OneOf(RUN_STATES))
    requested_by = ma.fields.String(required=True)
    rulesets = ma.fields.Dict(
        required=True, metadata={"description": "{kind: {version, sha256}} used by the run"}
    )
    customers_total = ma.fields.Integer(required=True)
    started_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    finished_at = ma.fields.String(**_NULLABLE, metadata={"format": "date-time"})
    error = ma.fields.String(**_NULLABLE, metadata={"description": "why the run failed"})
    report = ma.fields.Dict(
        required=True,
        metadata={
            "description": "empty until the run finishes; then customers_evaluated, errors "
            "[{customer_id, error}], errors_count, message_errors [{customer_id, template, "
            "error}] (reminders whose message failed to render), message_errors_count, "
            "message_errors_by_template, decisions (counts by kind and outcome), "
            "changes since the previous run, actions (counts by type and state) and "
            "portfolio: currencies and by_currency {currency: {customers, balances, aging, "
            "overdue_share, dso_days, cei_percent}}, never a sum across currencies — "
            "docs/operations.md explains the figures"
        },
    )
    progress = ma.fields.Nested(ProgressSchema, metadata={"description": "batches done so far"})


class RunListArgsSchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=20,
        validate=ma.validate.Range(min=1),
        metadata={"description": "page size (at most api.max_page_size)"},
    )
    before = Day(metadata={"description": "runs dated before this day (next_before of a page)"})


class RunPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(RunSchema), required=True)
    next_before = ma.fields.String(
        **_NULLABLE, metadata={"format": "date", "description": "null on the last page"}
    )


class ActionListArgsSchema(ma.Schema):
    type = ma.fields.String(validate=ma.validate.OneOf(ACTION_TYPES))
    state = ma.fields.String(validate=ma.validate.OneOf(ACTION_STATES))
    limit = ma.fields.Integer(
        load_default=100,
        validate=ma.validate.Range(min=1),
        metadata={"description": "page size for format=json (at most api.max_page_size)"},
    )
    cursor = ma.fields.String(
        validate=ma.validate.Regexp(r"^[0-9]{1,18}$", error="not a cursor from a previous page"),
        metadata={"description": "next_cursor of the previous page: actions after it"},
    )
    format = ma.fields.String(
        load_default="json",
        validate=ma.validate.OneOf(["json", "csv"]),
        metadata={"description": "json (pages) or csv (every matching action, streamed)"},
    )


class ActionSchema(ma.Schema):
    """Something the ERP should do for a customer."""

    action_id = ma.fields.Integer(required=True)
    run_id = ma.fields.String(required=True)
    customer_id = ma.fields.String(required=True)
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(ACTION_TYPES))
    state = ma.fields.String(required=True, validate=ma.validate.OneOf(ACTION_STATES))
    state_reason = ma.fields.String(
        **_NULLABLE, metadata={"description": "why it was acknowledged or made void"}
    )
    decision_id = ma.fields.String(**_NULLABLE)
    created_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    updated_at = ma.fields.String(**_NULLABLE, metadata={"format": "date-time"})
    payload = ma.fields.Dict(
        required=True,
        metadata={
            "description": "reminder: tone, channel, cadence_days, notice, currency, balances, "
            "oldest_invoice, invoices, contact?, by e-mail or letter message {subject, body, "
            "language, template}, by phone call_script {subject, body, language, template}, "
            "plan? {count, interval_days, total, instalments [{number, due_date, amount}]}, "
            "charges? {shown, interest_rate, grace_days, interest, fees, total, invoices}; "
            "offer_plan/handoff: action, agency, currency, balances, invoices, plan?; "
            "credit_review: decision, current_limit, proposed_limit; all: decision_id, reasons"
        },
    )


class ActionPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ActionSchema), required=True)
    next_cursor = ma.fields.String(**_NULLABLE, metadata={"description": "null on the last page"})
