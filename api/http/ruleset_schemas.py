"""Schemas of the rule-set endpoints (api/http/rulesets.py): versions, events, tests, diffs."""

from __future__ import annotations

import marshmallow as ma

from api.http.errors import ProblemSchema
from api.lifecycle import MAX_VERSION, NOTE_LENGTH
from storage.rulesets import EVENTS, STATES

_NULLABLE_TEXT = {"allow_none": True, "required": True}
_TIME = {"format": "date-time"}


class VersionSchema(ma.Schema):
    """One version of a rule set, without its source; the *_by and *_at fields keep the latest
    move of each sort (the whole history is in the events)."""

    kind = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True, validate=ma.validate.OneOf(STATES))
    sha256 = ma.fields.String(required=True, metadata={"description": "of its TOML source"})
    templates_sha256 = ma.fields.String(
        **_NULLABLE_TEXT,
        metadata={
            "description": "of the templates stored with it (a reminder version's texts and "
            "company.toml): SHA-256 of the lines `<sha256>  <path>` sorted by path, as "
            "`LC_ALL=C sha256sum company.toml reminder/*.j2` prints them; null for a kind "
            "without templates"
        },
    )
    note = ma.fields.String(required=True, metadata={"description": "why it was drafted"})
    created_by = ma.fields.String(required=True)
    created_at = ma.fields.String(required=True, metadata=_TIME)
    proposed_by = ma.fields.String(**_NULLABLE_TEXT)
    proposed_at = ma.fields.String(**_NULLABLE_TEXT, metadata=_TIME)
    approved_by = ma.fields.String(**_NULLABLE_TEXT)
    approved_at = ma.fields.String(**_NULLABLE_TEXT, metadata=_TIME)
    activated_by = ma.fields.String(**_NULLABLE_TEXT)
    activated_at = ma.fields.String(**_NULLABLE_TEXT, metadata=_TIME)
    retired_at = ma.fields.String(**_NULLABLE_TEXT, metadata=_TIME)
    activate_at = ma.fields.String(
        **_NULLABLE_TEXT,
        metadata={**_TIME, "description": "its pending activation, if any (activate with at)"},
    )


class ActiveVersionSchema(VersionSchema):
    """The active version, with its TOML source."""

    source = ma.fields.String(required=True)


class EventSchema(ma.Schema):
    """One lifecycle move: which version, what, by which key (`by`), whose key, when, why."""

    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    event = ma.fields.String(required=True, validate=ma.validate.OneOf(EVENTS))
    by = ma.fields.String(required=True, metadata={"description": "the API key's name"})
    owner = ma.fields.String(required=True, metadata={"description": "the key's owner"})
    at = ma.fields.String(required=True, metadata=_TIME)
    note = ma.fields.String(required=True)


class TemplateFileSchema(ma.Schema):
    """One file stored with a version: a reminder text, a piece, or company.toml."""

    path = ma.fields.String(required=True, metadata={"example": "reminder/firm.en.j2"})
    sha256 = ma.fields.String(required=True, metadata={"description": "of its UTF-8 text"})
    chars = ma.fields.Integer(required=True, metadata={"description": "its length"})
    text = ma.fields.String(metadata={"description": "the text, with ?text=true"})


class VersionDetailSchema(ActiveVersionSchema):
    """Any version with its exact TOML source, its templates and its events, oldest first."""

    templates = ma.fields.List(
        ma.fields.Nested(TemplateFileSchema),
        **_NULLABLE_TEXT,
        metadata={"description": "the files stored with it, by path; null for a kind without"},
    )
    events = ma.fields.List(ma.fields.Nested(EventSchema), required=True)


class VersionDetailArgsSchema(ma.Schema):
    """GET /v1/rulesets/{kind}/versions/{version}."""

    text = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "true: each template with its text (default: path and hash)"},
    )


class RuleSetSummarySchema(ma.Schema):
    kind = ma.fields.String(required=True)
    active = ma.fields.Nested(VersionSchema, required=True, allow_none=True)
    versions = ma.fields.Integer(required=True, metadata={"description": "how many versions"})


class RuleSetListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(RuleSetSummarySchema), required=True)


class PendingSchema(ma.Schema):
    """A pending activation: the version that becomes active at `at`, and who scheduled it."""

    version = ma.fields.Integer(required=True)
    at = ma.fields.String(required=True, metadata=_TIME)
    by = ma.fields.String(**_NULLABLE_TEXT, metadata={"description": "the API key's name"})
    owner = ma.fields.String(**_NULLABLE_TEXT)
    note = ma.fields.String(required=True)


class ExperimentSchema(ma.Schema):
    """A champion/challenger experiment: the challenger version on `share` percent of the
    customers beside the champion (the active version when it started)."""

    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    champion = ma.fields.Integer(required=True)
    challenger = ma.fields.Integer(required=True)
    share = ma.fields.Integer(required=True, metadata={"description": "percent, 1 to 50"})
    started_at = ma.fields.String(required=True, metadata=_TIME)
    started_by = ma.fields.String(required=True)
    ended_at = ma.fields.String(**_NULLABLE_TEXT, metadata=_TIME)
    ended_by = ma.fields.String(**_NULLABLE_TEXT)
    ended_how = ma.fields.String(
        **_NULLABLE_TEXT,
        metadata={"description": "stopped, promoted or replaced; null while it runs"},
    )


class RuleSetSchema(ma.Schema):
    kind = ma.fields.String(required=True)
    active = ma.fields.Nested(ActiveVersionSchema, required=True, allow_none=True)
    pending = ma.fields.Nested(
        PendingSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the version that becomes active at a time, if any"},
    )
    experiment = ma.fields.Nested(
        ExperimentSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the running experiment, else the last one, if any"},
    )
    history = ma.fields.List(
        ma.fields.Nested(VersionSchema), required=True, metadata={"description": "oldest first"}
    )
    events = ma.fields.List(
        ma.fields.Nested(EventSchema), required=True, metadata={"description": "oldest first"}
    )


def _note(**kwargs) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.Length(max=NOTE_LENGTH),
        metadata={"description": "why (stored with the event)"},
        **kwargs,
    )


class DraftSchema(ma.Schema):
    """POST /v1/rulesets/{kind}/versions."""

    source = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1),
        metadata={"description": "the rule set's TOML text; its kind must be the path's"},
    )
    note = _note(required=True)
    templates = ma.fields.Dict(
        metadata={
            "description": "reminder only: the texts and company.toml the version is stored "
            "with, by path (company.toml, reminder/<tone>.<language>.j2, reminder/_<piece>.j2); "
            "every text must render with the sample accounts. Left out: those of the active "
            "version are carried over (its drafted event says so)",
            "example": {"company.toml": 'name = "Example Supplies GmbH"\n', "…": "…"},
        },
    )


class MoveSchema(ma.Schema):
    """POST …/propose, …/approve, …/reject (the body may be left out)."""

    note = _note()


class ActivateSchema(MoveSchema):
    """POST …/activate. A rollback (a retired version, or one older than the active) needs a
    note. With `at`, an approved version becomes active at that time (a pending activation)."""

    at = ma.fields.String(
        metadata={
            **_TIME,
            "description": "when it becomes active (ISO 8601 with a time zone, in the future): "
            "a pending activation, made then with nobody present; cancel it with …/cancel",
            "example": "2027-01-01T00:00:00Z",
        }
    )


class PinRequestSchema(ma.Schema):
    """POST …/versions/{version}/test-cases: pin a stored decision as a [[test]] case."""

    decision_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    name = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "the case's name (default: from the decision)"},
    )
    note = _note()


class ProblemItemSchema(ma.Schema):
    """One validation problem of a rule set's text."""

    path = ma.fields.String(required=True)
    message = ma.fields.String(required=True)
    rule_id = ma.fields.String()
    field = ma.fields.String()
    line = ma.fields.Integer()
    column = ma.fields.Integer()
    suggestion = ma.fields.String()
    text = ma.fields.String(required=True, metadata={"description": "the whole, as one line"})


class CaseSchema(ma.Schema):
    """One [[test]] case: expected and actual outcome fields, rules fired, reasons."""

    name = ma.fields.String(required=True)
    passed = ma.fields.Boolean(required=True)
    expected = ma.fields.Dict(required=True)
    actual = ma.fields.Dict(required=True)
    fired = ma.fields.List(ma.fields.String(), required=True)
    reasons = ma.fields.List(ma.fields.String(), required=True)
    error = ma.fields.String(required=True, allow_none=True)


class CaseRunSchema(ma.Schema):
    kind = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)
    passed = ma.fields.Integer(required=True)
    failed = ma.fields.Integer(required=True)
    cases = ma.fields.List(ma.fields.Nested(CaseSchema), required=True)
    problems = ma.fields.List(
        ma.fields.Nested(ProblemItemSchema),
        required=True,
        metadata={"description": "smoke-test problems"},
    )


class PinnedCaseSchema(ma.Schema):
    kind = ma.fields.String(required=True)
    decision_id = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True, metadata={"description": "decided by"})
    name = ma.fields.String(required=True)
    text = ma.fields.String(required=True, metadata={"description": "the TOML appended"})


class PinnedDraftSchema(VersionSchema):
    """The new draft, with the case appended to its base version."""

    base_version = ma.fields.Integer(required=True, metadata={"description": "made from"})
    test_case = ma.fields.Nested(PinnedCaseSchema, required=True)


class DiffArgsSchema(ma.Schema):
    """GET /v1/rulesets/{kind}/diff?from=&to=."""

    first = ma.fields.Integer(
        data_key="from", required=True, validate=ma.validate.Range(1, MAX_VERSION)
    )
    last = ma.fields.Integer(
        data_key="to", required=True, validate=ma.validate.Range(1, MAX_VERSION)
    )


class VersionRefSchema(ma.Schema):
    version = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True)
    sha256 = ma.fields.String(required=True)
    templates_sha256 = ma.fields.String(**_NULLABLE_TEXT)


class ChangedFileSchema(ma.Schema):
    path = ma.fields.String(required=True)
    diff = ma.fields.String(required=True, metadata={"description": "unified diff"})


class FilesDiffSchema(ma.Schema):
    added = ma.fields.List(ma.fields.String(), required=True)
    removed = ma.fields.List(ma.fields.String(), required=True)
    changed = ma.fields.List(ma.fields.Nested(ChangedFileSchema), required=True)


class DiffSchema(ma.Schema):
    """What changed from one version to another, rule by rule and field by field."""

    kind = ma.fields.String(required=True)
    first = ma.fields.Nested(VersionRefSchema, data_key="from", attribute="from", required=True)
    last = ma.fields.Nested(VersionRefSchema, data_key="to", attribute="to", required=True)
    same_rules = ma.fields.Boolean(
        required=True, metadata={"description": "only comments, layout or tests differ"}
    )
    settings = ma.fields.List(ma.fields.Dict(), required=True)
    outcome = ma.fields.Dict(required=True, metadata={"description": "added, removed, changed"})
    rules = ma.fields.Dict(required=True, metadata={"description": "added, removed, changed"})
    firing_order = ma.fields.Dict(required=True, allow_none=True)
    tests = ma.fields.Dict(required=True, metadata={"description": "added, removed"})
    templates = ma.fields.Nested(
        FilesDiffSchema,
        **_NULLABLE_TEXT,
        metadata={"description": "templates added, removed, changed; null without templates"},
    )


class RuleSetProblemSchema(ProblemSchema):
    """A problem of the rule-set calls: validation problems of the TOML text, or the failing
    [[test]] cases that refused a proposal."""

    problems = ma.fields.List(ma.fields.Nested(ProblemItemSchema))
    cases = ma.fields.List(ma.fields.Nested(CaseSchema))
