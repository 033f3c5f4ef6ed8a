"""Schemas of the rollout endpoints (api/http/rollout.py): pending activations, challengers
and the comparison of an experiment's arms."""

from __future__ import annotations

import marshmallow as ma

from api.arms import MAX_SHARE, MIN_SHARE
from api.http.ruleset_schemas import ExperimentSchema, VersionSchema, _note


class CancelSchema(ma.Schema):
    """POST …/versions/{version}/cancel."""

    note = _note(required=True)


class ChallengeSchema(ma.Schema):
    """POST …/versions/{version}/challenge."""

    share = ma.fields.Integer(
        required=True,
        strict=True,
        metadata={"description": f"percent of the customers, {MIN_SHARE} to {MAX_SHARE}"},
    )
    note = _note(required=True)


class StopSchema(ma.Schema):
    """POST /v1/rulesets/{kind}/experiment/stop."""

    note = _note(required=True)


class ChallengerSchema(VersionSchema):
    """The version, now the challenger, and its experiment."""

    experiment = ma.fields.Nested(ExperimentSchema, required=True)


class ExperimentArgsSchema(ma.Schema):
    """GET /v1/rulesets/{kind}/experiment."""

    experiment = ma.fields.Integer(
        validate=ma.validate.Range(1, 2**31 - 1),
        metadata={"description": "its id (default: the running one, else the last)"},
    )


class ExperimentReportSchema(ma.Schema):
    """The arms of an experiment compared over the same period (api.experiment)."""

    kind = ma.fields.String(required=True)
    experiment = ma.fields.Nested(ExperimentSchema, required=True)
    period = ma.fields.Dict(required=True, metadata={"description": "from, to (dates)"})
    as_of = ma.fields.String(required=True, metadata={"description": "payments known until"})
    arms = ma.fields.Dict(
        required=True,
        metadata={
            "description": "champion and challenger: version, decisions, customers, outcomes "
            "(field → value → decisions), paid_within (14 and 30 days: customers, paying, "
            "cleared, not yet; by_currency: the share of the overdue balance at decision time "
            "paid, with the amounts behind it, per currency, never summed across currencies)"
        },
    )
    comparison = ma.fields.Dict(
        required=True,
        metadata={
            "description": "two-proportion z-test of customers who cleared their "
            "overdue balance within 30 days, and a note"
        },
    )
