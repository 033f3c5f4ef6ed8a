"""Schemas of the decision endpoints: request bodies, query arguments and stored decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import marshmallow as ma

from api.intake.schemas import FIRST_DAY, LAST_DAY, Day, Text
from api.lifecycle_rules import MAX_VERSION
from storage.idempotency import MAX_KEY_LENGTH
from storage.models import ID_LENGTH

_ID = ma.validate.Length(min=1, max=ID_LENGTH)
_KIND = ma.validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$", error="not a rule-set kind")
# Each outcome filter is a subquery; SQLite's parser overflows at some 70 of them (a 503 a
# client would retry forever). A rule set decides a handful of fields.
MAX_OUTCOME_FILTERS = 20


class JsonBoolean(ma.fields.Boolean):
    """A JSON true or false, nothing else: "false", 0 or "no" read as a boolean could turn a
    dry run into a stored decision."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ma.ValidationError("must be true or false")
        return value


class DecisionRequestSchema(ma.Schema):
    """POST /v1/decisions/{kind}: a stored customer, facts given directly, or both."""

    customer_id = Text(
        ID_LENGTH,
        min_length=1,
        metadata={"description": "decide from this customer's stored ledger"},
    )
    # No field for the keys or values: JSON keys are strings, and check_facts names unknown
    # facts and checks each value by its fact's type (string facts as engine.text says).
    facts = ma.fields.Dict(
        metadata={
            "description": "facts by name (SPEC §3). Without customer_id: the complete set "
            "(facts that may be absent can be left out). With customer_id: added to or "
            "overriding the derived facts, e.g. requested_amount; null makes a fact absent.",
            "example": {"requested_amount": "2500.00"},
        },
    )
    as_of = Day(metadata={"description": "date the facts are derived as of (default: today)"})
    dry_run = JsonBoolean(
        load_default=False,
        metadata={
            "description": "true: a what-if, decided the same way and never stored (no "
            "decision row, no Idempotency-Key record); answered with 200 and `dry_run: true`"
        },
    )
    version = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(1, MAX_VERSION),
        metadata={
            "description": "with dry_run only: evaluate this stored version of the kind (a "
            "draft, a proposed or retired version, …) instead of the active one; a stored "
            "decision is always made by the active version"
        },
    )

    @ma.validates_schema
    def _customer_or_facts(self, data: dict[str, Any], **_: Any) -> None:
        if "customer_id" not in data and "facts" not in data:
            raise ma.ValidationError("give customer_id, facts or both", "_schema")

    @ma.validates_schema
    def _version_in_dry_runs_only(self, data: dict[str, Any], **_: Any) -> None:
        if "version" in data and not data.get("dry_run"):
            raise ma.ValidationError(
                'evaluates another stored version: dry runs only (add "dry_run": true); a '
                "stored decision is always made by the active version",
                "version",
            )


class IdempotencyHeaderSchema(ma.Schema):
    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=[
            ma.validate.Length(min=1, max=MAX_KEY_LENGTH),
            ma.validate.Regexp(r"^[\x21-\x7e]+$", error="must be printable ASCII, no spaces"),
        ],
        metadata={
            "description": "repeat a request safely: the same key and body return the first "
            "decision again; the same key with another body is 409"
        },
    )


class Moment(ma.fields.Field):
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when no offset is given), on a day
    between FIRST_DAY and LAST_DAY: at the calendar's edges, moving it to UTC (or past the
    day's end) would overflow."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise ma.ValidationError("must be a date (2024-05-31) or a date-time")
        try:
            if len(value) == 10:
                moment = datetime.combine(date.fromisoformat(value), time(), UTC)
            else:
                moment = datetime.fromisoformat(value)
        except ValueError:
            raise ma.ValidationError(
                f"{value!r} is not a valid date (2024-05-31) or date-time (2024-05-31T14:00:00Z)"
            ) from None
        if not FIRST_DAY <= moment.date() <= LAST_DAY:
            raise ma.ValidationError(f"must be between {FIRST_DAY} and {LAST_DAY}")
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class EndMoment(Moment):
    """An exclusive end: a plain date includes that whole day (the end is the next midnight)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        return moment + timedelta(days=1) if len(value) == 10 else moment


class DecisionFilterSchema(ma.Schema):
    """Filters shared by listing and export."""

    customer_id = ma.fields.String(validate=_ID)
    kind = ma.fields.String(validate=_KIND)
    outcome = ma.fields.List(
        ma.fields.String(
            validate=ma.validate.Regexp(
                r"^[a-z][a-z0-9_]{0,39}=.{0,200}$", error="must be field=value, e.g. tone=firm"
            )
        ),
        validate=ma.validate.Length(
            max=MAX_OUTCOME_FILTERS, error="at most {max} outcome filters in one query"
        ),
        metadata={
            "description": "outcome field=value (repeat for several, at most "
            f"{MAX_OUTCOME_FILTERS}; all must hold)"
        },
    )
    rule = ma.fields.String(
        validate=ma.validate.Length(min=1, max=40),
        metadata={"description": "decisions where this rule id fired"},
    )
    from_ = Moment(
        data_key="from",
        metadata={
            "type": "string",
            "description": "created at or after (date or date-time, UTC)",
            "example": "2024-05-01",
        },
    )
    to = EndMoment(
        metadata={
            "type": "string",
            "description": "created before this date-time; a date includes that whole day",
            "example": "2024-05-31",
        },
    )


class DecisionListArgsSchema(DecisionFilterSchema):
    limit = ma.fields.Integer(
        load_default=50,
        validate=ma.validate.Range(min=1),
        metadata={"description": "page size (at most api.max_page_size, 500 by default)"},
    )
    cursor = ma.fields.String(
        validate=ma.validate.Regexp(r"^[0-9]{1,18}$", error="not a cursor from a previous page"),
        metadata={"description": "next_cursor of the previous page"},
    )
    order = ma.fields.String(
        load_default="asc",
        validate=ma.validate.OneOf(["asc", "desc"]),
        metadata={"description": "asc: oldest first (default); desc: newest first"},
    )


class DecisionExportArgsSchema(DecisionFilterSchema):
    format = ma.fields.String(
        load_default="jsonl",
        validate=ma.validate.OneOf(["jsonl", "csv"]),
        metadata={"description": "jsonl (one decision per line, default) or csv"},
    )


class FiredRuleSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    priority = ma.fields.Integer(required=True)
    reason = ma.fields.String(required=True)
    then = ma.fields.Dict(required=True, metadata={"description": "outcome fields it set"})
    set = ma.fields.Dict(required=True, metadata={"description": "derived facts it set"})


class RuleSetRefSchema(ma.Schema):
    kind = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)


class EarlierDecisionSchema(ma.Schema):
    """Where a decision's facts came from an earlier decision of the same account."""

    kind = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)
    decision_id = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the earlier decision, stored beside it in a run; else null"},
    )
    facts = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "the <kind>_<field> facts it gave", "example": ["handoff_action"]},
    )


class DecisionSchema(ma.Schema):
    """A stored decision with its full trace (SPEC §5)."""

    decision_id = ma.fields.String(required=True)
    seq = ma.fields.Integer(required=True, metadata={"description": "position in the chain"})
    kind = ma.fields.String(required=True)
    customer_id = ma.fields.String(required=True, allow_none=True)
    as_of = ma.fields.String(required=True, metadata={"format": "date"})
    outcome = ma.fields.Dict(
        required=True,
        metadata={"description": "decided fields; money as strings with two decimals"},
    )
    reasons = ma.fields.List(ma.fields.String(), required=True)
    fired = ma.fields.List(ma.fields.Nested(FiredRuleSchema), required=True)
    ruleset = ma.fields.Nested(RuleSetRefSchema, required=True)
    facts = ma.fields.Dict(required=True, metadata={"description": "the facts evaluated"})
    requested_by = ma.fields.String(required=True, metadata={"description": "API key name"})
    created_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    engine_us = ma.fields.Integer(required=True, metadata={"description": "engine time, µs"})
    format = ma.fields.Integer(
        metadata={
            "description": "record format its hash signs: 3 (4, then 2, before it); absent on 1"
        }
    )
    via = ma.fields.String(
        metadata={"description": "how it was made: api, run or cli; absent on format 1"}
    )
    earlier = ma.fields.List(
        ma.fields.Nested(EarlierDecisionSchema),
        metadata={
            "description": "facts taken from earlier decisions of the account (a rule set "
            "decided `after` another); absent before format 4"
        },
    )
    explanation = ma.fields.String(
        metadata={
            "description": "one or two plain sentences from the outcome and the fired rules' "
            "reasons, hashed with the decision; absent before format 3"
        }
    )
    prev_hash = ma.fields.String(required=True)
    hash = ma.fields.String(required=True)


class ChangeSchema(ma.Schema):
    """One fact that, moved just past a number, makes the version decide otherwise."""

    fact = ma.fields.String(required=True)
    now = ma.fields.Raw(required=True)
    must_be = ma.fields.String(required=True, metadata={"example": "<= 50000.00"})
    outcome = ma.fields.Dict(required=True, metadata={"example": {"decision": "approve"}})
    rule = ma.fields.String(required=True, allow_none=True)
    text = ma.fields.String(
        required=True, metadata={"example": "approve if new_exposure ≤ 50,000.00; now 61,250.00"}
    )


class WhyNotRuleSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    priority = ma.fields.Integer(required=True)
    when = ma.fields.String(required=True)
    applied = ma.fields.Boolean(
        required=True, metadata={"description": "fired, but set no outcome field"}
    )
    failed = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "the first condition that failed"}
    )
    read = ma.fields.Dict(required=True, metadata={"description": "the fact values it read"})
    message = ma.fields.String(
        required=True, metadata={"example": "HO-020 did not apply: days_past_due 61 is not > 90"}
    )


class WhyNotSchema(ma.Schema):
    decided_by = ma.fields.String(required=True, allow_none=True)
    rules = ma.fields.List(ma.fields.Nested(WhyNotRuleSchema), required=True)


class ReadDecisionSchema(DecisionSchema):
    """GET /v1/decisions/{id}: the stored decision, and beside it what is computed when it is
    read (not hashed, not stored)."""

    what_would_change = ma.fields.List(
        ma.fields.Nested(ChangeSchema),
        metadata={
            "description": "credit decisions referred or declined: single facts that, "
            "moved past the number the deciding rule compares them with, change the decision"
        },
    )
    why_not = ma.fields.Nested(WhyNotSchema, metadata={"description": "with why_not=1"})


class WhatIfDecisionSchema(ma.Schema):
    """A dry run's answer: the decision as it would be made, never stored."""

    dry_run = ma.fields.Boolean(
        required=True,
        metadata={"description": "always true: not stored (no decision_id, seq or hashes)"},
    )
    kind = ma.fields.String(required=True)
    customer_id = ma.fields.String(required=True, allow_none=True)
    as_of = ma.fields.String(required=True, metadata={"format": "date"})
    outcome = ma.fields.Dict(required=True)
    reasons = ma.fields.List(ma.fields.String(), required=True)
    fired = ma.fields.List(ma.fields.Nested(FiredRuleSchema), required=True)
    ruleset = ma.fields.Nested(
        RuleSetRefSchema,
        required=True,
        metadata={"description": "the active version, or the `version` asked for"},
    )
    facts = ma.fields.Dict(required=True)
    requested_by = ma.fields.String(required=True)
    created_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    engine_us = ma.fields.Integer(required=True)
    via = ma.fields.String(
        required=True, metadata={"description": "how it was asked: api (cli: credo decide)"}
    )
    explanation = ma.fields.String(
        required=True, metadata={"description": "one or two plain sentences"}
    )


# The 200 answer of POST /v1/decisions/{kind}: a replayed decision or a dry run's.
DECISION_OR_WHAT_IF = {
    "oneOf": [
        {"$ref": "#/components/schemas/Decision"},
        {"$ref": "#/components/schemas/WhatIfDecision"},
    ]
}


class DecisionPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(DecisionSchema), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


class DecisionLinksSchema(ma.Schema):
    ruleset_version = ma.fields.String(
        required=True,
        metadata={"description": "the rule-set version that made it: its source and history"},
    )


class LinkedDecisionSchema(DecisionSchema):
    """GET /v1/decisions/{id}: the stored decision as it is, and links beside it."""

    links = ma.fields.Nested(DecisionLinksSchema, required=True)
