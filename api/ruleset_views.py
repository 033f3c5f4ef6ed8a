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
    from storage import rulesets

    items = []
    for kind in rulesets.list_kinds():
        history = rulesets.history(kind)
        active = next((v for v in history if v["state"] == "active"), None)
        items.append({"kind": kind, "active": active, "versions": len(history)})
    return items


def ruleset_overview(kind: str) -> dict[str, Any]:
    """One kind: the active version with its source, every version (oldest first, without
    sources) and every lifecycle event (oldest first). UnknownVersion for an unknown kind."""
    from storage import rulesets

    check_kind(kind)
    history = rulesets.history(kind)
    if not history:
        known = ", ".join(rulesets.list_kinds()) or "none"
        raise UnknownVersion(f"unknown rule-set kind {kind!r}; known kinds: {known}")
    return {
        "kind": kind,
        "active": rulesets.get_active(kind),
        "history": history,
        "events": rulesets.events(kind),
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
