"""A decision examined as an auditor does: why the rules ranked above the deciding one did not
apply (why-not), the decision evaluated again with its version's stored text (replay, for
auditors), and that version's exact text and approval history (version evidence, for auditors).

Each page calls the use case the API and `credo audit` call: api.decision_audit.why_not_of
(GET /v1/decisions/{id}?why_not=1), api.audit_replay.replay_one (POST /v1/decisions/{id}/replay)
and api.decision_audit.version_evidence (GET /v1/decisions/{id}/evidence).
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, render_template

from api.console.access import AUDIT_ROLES, DECISION_ROLES, require_page
from api.console.blueprint import bp


def _unknown(decision_id: str) -> Any:
    abort(404, f"There is no decision {decision_id[:80]!r}.")


@bp.route("/decisions/<decision_id>/why-not")
@require_page(*DECISION_ROLES)
def decision_why_not(decision_id: str) -> Any:
    """Each rule ranked above the deciding one, the first condition that failed and the values
    it read (rule sets under `first`); why it does not apply otherwise."""
    from api.audit_replay import UnknownDecision
    from api.decision_audit import NotExplainable, why_not_of
    from api.decision_views import find_decision

    try:
        answer, refused = why_not_of(decision_id), None
    except UnknownDecision:
        return _unknown(decision_id)
    except NotExplainable as exc:
        answer, refused = None, str(exc).removeprefix("why_not: ")
    return render_template(
        "console/decision_why_not.html",
        d=find_decision(decision_id),
        w=answer,
        refused=refused,
    )


def shown(value: Any) -> str:
    """A stored or replayed value as indented JSON text, for a page that escapes it."""
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str)


@bp.route("/decisions/<decision_id>/replay", methods=["POST"])
@require_page(*AUDIT_ROLES)
def decision_replay(decision_id: str) -> Any:
    """Evaluate the decision again with its version's stored text; its page with the result:
    equal, or each difference with both sides."""
    from api.audit_replay import UnknownDecision, replay_one
    from api.console.decisions import decision_page

    try:
        result = replay_one(decision_id)
    except UnknownDecision:
        return _unknown(decision_id)
    differences = [
        {**d, "stored_text": shown(d["stored"]), "replayed_text": shown(d["replayed"])}
        for d in result["differences"]
    ]
    return decision_page(decision_id, replay={**result, "differences": differences})


@bp.route("/decisions/<decision_id>/evidence")
@require_page(*AUDIT_ROLES)
def decision_evidence(decision_id: str) -> Any:
    """The version that made the decision: its exact text (its sha256 checked against the
    recorded one) and its approval history."""
    from api.audit_replay import UnknownDecision
    from api.decision_audit import version_evidence
    from api.lifecycle_rules import UnknownVersion

    try:
        evidence = version_evidence(decision_id)
    except UnknownDecision:
        return _unknown(decision_id)
    except UnknownVersion as exc:
        abort(404, str(exc))
    return render_template("console/decision_evidence.html", e=evidence)
