"""Reading rule sets, for the HTTP API and `credo rules history|show|diff` alike: the kinds and
their active versions, one kind's versions and event history, one version's exact source, files
(a reminder version's templates) and events, and the differences between two versions."""

from __future__ import annotations

from typing import Any

from api.lifecycle import UnknownVersion, check_kind, parsed, stored_version
from api.nightly.templates import has_templates
from engine.ruleset_diff import diff_files, diff_rulesets


def list_rulesets() -> list[dict[str, Any]]:
    """Every kind with its active version (if any, without source) and number of versions."""
    from api.rollout import activate_due
    from storage import rulesets

    activate_due()  # a pending activation whose time came is made before it is shown
    items = []
    for kind in rulesets.list_kinds():
        history = rulesets.history(kind)
        active = next((v for v in history if v["state"] == "active"), None)
        items.append({"kind": kind, "active": active, "versions": len(history)})
    return items


def ruleset_overview(kind: str) -> dict[str, Any]:
    """One kind: the active version with its source, every version (oldest first, without
    sources), every lifecycle event (oldest first), its pending activation ({version, at, by,
    owner, note} or None) and its experiment (the running one, else the last, else None).
    UnknownVersion for an unknown kind."""
    from api.rollout import activate_due
    from storage import experiments, rulesets

    check_kind(kind)
    activate_due()  # a pending activation whose time came is made before it is shown
    history = rulesets.history(kind)
    if not history:
        known = ", ".join(rulesets.list_kinds()) or "none"
        raise UnknownVersion(f"unknown rule-set kind {kind!r}; known kinds: {known}")
    events = rulesets.events(kind)
    return {
        "kind": kind,
        "active": rulesets.get_active(kind),
        "pending": _pending(rulesets.pending_activations(kind), events),
        "experiment": experiments.latest_experiment(kind),
        "history": history,
        "events": events,
    }


def _pending(pending: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict | None:
    """The kind's pending activation with who scheduled it (its last `scheduled` event)."""
    if not pending:
        return None
    version = pending[0]["version"]
    made = [e for e in events if e["version"] == version and e["event"] == "scheduled"]
    last = made[-1] if made else {"by": None, "owner": None, "note": ""}
    return {
        "version": version,
        "at": pending[0]["activate_at"],
        "by": last["by"],
        "owner": last["owner"],
        "note": last["note"],
    }


def version_detail(
    kind: str, version: int | None = None, template_text: bool = False
) -> dict[str, Any]:
    """A version (the active one when `version` is None) with its exact source, its events and,
    for a kind with templates, its files: path, sha256 and length, and the text with
    `template_text` (None for other kinds)."""
    from storage import rulesets

    if version is None:
        check_kind(kind)
        active = rulesets.get_active(kind)
        if active is None:
            ruleset_overview(kind)  # UnknownVersion for an unknown kind
            raise UnknownVersion(f"rule set {kind} has no active version; name a version")
        version = active["version"]
    stored = stored_version(kind, version)
    templates = None
    if has_templates(kind):
        templates = rulesets.file_index(kind, version)
        if template_text:
            texts = rulesets.get_files(kind, version) or {}
            templates = [{**entry, "text": texts[entry["path"]]} for entry in templates]
    return {**stored, "templates": templates, "events": rulesets.events(kind, version)}


def diff_versions(kind: str, old: int, new: int) -> dict[str, Any]:
    """What changed from version `old` to version `new` of `kind` (engine.ruleset_diff): the
    rules and, for a kind with templates, the templates."""
    from storage import rulesets

    before, after = stored_version(kind, old), stored_version(kind, new)
    templates = None
    if has_templates(kind):
        templates = diff_files(rulesets.get_files(kind, old), rulesets.get_files(kind, new))
    return {
        "kind": kind,
        "from": _ref(before),
        "to": _ref(after),
        **diff_rulesets(parsed(before), parsed(after)),
        "templates": templates,
    }


def _ref(stored: dict[str, Any]) -> dict[str, Any]:
    return {key: stored[key] for key in ("version", "state", "sha256", "templates_sha256")}
