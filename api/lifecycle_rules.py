"""The rules the rule-set lifecycle enforces (api/lifecycle.py): who may make a move (roles,
four eyes), from which state, with what text and note; and the refusals that name the rule.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.checks import SMOKE_TIMEOUT, VersionCheck, describe
from engine.errors import Problem, RuleFileError
from engine.locate import locate_problems
from engine.ruleset import KIND_RE, RuleSet, parse_ruleset

MOVE_ROLES = {
    "draft": ("analyst",),
    "test": ("analyst", "approver"),
    "propose": ("analyst",),
    "approve": ("approver",),
    "reject": ("approver",),
    "activate": ("approver",),
    "cancel": ("approver",),  # a pending activation
    "challenge": ("approver",),  # start or stop a challenger (api.rollout)
}
READ_ROLES = ("analyst", "approver", "auditor")
NOTE_LENGTH = 2000
MAX_VERSION = 2**31 - 1  # the version column is a 32-bit integer


class Actor(Protocol):
    """Who makes a move: an API key's name, the person or system behind it, and its role."""

    name: str
    owner: str
    role: str


@dataclass(frozen=True)
class Credo:
    """The product itself, for the moves `credo init` makes (loading the shipped rule sets)."""

    name: str = "credo init"
    owner: str = "credo init"
    role: str = "admin"


@dataclass(frozen=True)
class Policy:
    """The lifecycle settings: four eyes, and the smoke test's time limit."""

    four_eyes: bool = True
    smoke_timeout: float = SMOKE_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(settings.rules.four_eyes, settings.engine.smoke_timeout_seconds)


class LifecycleError(Exception):
    """Base of the lifecycle's refusals; the message names the rule that refused."""


class UnknownVersion(LifecycleError):
    """No such kind or version (HTTP 404)."""


class InvalidInput(LifecycleError):
    """A bad argument: `field` names it (HTTP 422)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidRuleSet(LifecycleError):
    """The TOML text fails validation: every problem, with rule id, field and line (HTTP 422).
    `field` names the input at fault: the TOML `source`, or the `templates` stored with it."""

    def __init__(self, problems: list[Problem], field: str = "source"):
        self.problems, self.field = problems, field
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        where = " in the templates" if field == "templates" else ""
        super().__init__(f"rule set not stored: {count}{where}:\n" + "\n".join(map(str, problems)))


class Refused(LifecycleError):
    """The version's state or its checks forbid the move (HTTP 409); `cases` holds the failing
    [[test]] cases when those are why."""

    def __init__(self, message: str, cases: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.cases = cases or []


class NotAllowed(LifecycleError):
    """The actor may not make the move: its role, or four eyes (HTTP 403)."""


def problem_json(problem: Problem) -> dict[str, Any]:
    """A validation problem as JSON: its parts that are known, and the whole as `text`."""
    return {k: v for k, v in vars(problem).items() if v is not None} | {"text": str(problem)}


def allow(actor: Actor, move: str) -> None:
    """NotAllowed unless the actor's role may make `move` (admin may make every move)."""
    roles = MOVE_ROLES[move]
    if actor.role != "admin" and actor.role not in roles:
        needed = " or ".join(f"'{role}'" for role in roles)
        raise NotAllowed(
            f"roles: key '{actor.name}' has role '{actor.role}'; {move} needs {needed} (or admin)"
        )


def clean_note(note: str | None, *, required: bool = False, why: str = "") -> str:
    """The note without surrounding space; InvalidInput when missing but required, too long,
    or holding characters the databases cannot store (NUL, lone surrogates)."""
    note = (note or "").strip()
    if required and not note:
        raise InvalidInput("note", why or "say why (a note is required)")
    if len(note) > NOTE_LENGTH:
        raise InvalidInput("note", f"at most {NOTE_LENGTH} characters, not {len(note)}")
    bad = unstorable(note)
    if bad:
        raise InvalidInput("note", bad)
    return note


def check_kind(kind: str) -> str:
    """The kind if it is a valid rule-set name; UnknownVersion otherwise (nothing has it)."""
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise UnknownVersion(f"unknown rule-set kind {kind[:60]!r}: kinds are lowercase names")
    return kind


def stored_version(kind: str, version: int) -> dict[str, Any]:
    """Version `version` of `kind` with its source; UnknownVersion naming what exists."""
    from storage import rulesets

    check_kind(kind)
    found = rulesets.get_version(kind, version) if 1 <= version <= MAX_VERSION else None
    if found is not None:
        return found
    history = rulesets.history(kind)
    if not history:
        known = ", ".join(rulesets.list_kinds()) or "none"
        raise UnknownVersion(f"unknown rule-set kind {kind!r}; known kinds: {known}")
    raise UnknownVersion(f"rule set {kind} has no version {version} (versions 1 to {len(history)})")


def validate_source(source: str, origin: str, kind: str | None = None) -> RuleSet:
    """The TOML text parsed and validated; InvalidRuleSet listing every problem, each with the
    rule id, field and line where the text shows them. With `kind`, the text's kind must be it."""
    bad = unstorable(source)
    if bad:
        line = next(n for n, text in enumerate(source.split("\n"), 1) if unstorable(text))
        raise InvalidRuleSet([Problem(origin, bad, line=line)])
    problems: list[Problem] = []
    if kind is not None:
        problems += _kind_problems(source, origin, kind)
    try:
        ruleset = parse_text(source, origin)
    except RuleFileError as exc:
        problems += exc.problems
    if problems:
        raise InvalidRuleSet(locate_problems(problems, source))
    return ruleset


def _kind_problems(source: str, origin: str, kind: str) -> list[Problem]:
    try:
        written = tomllib.loads(source).get("kind")
    except tomllib.TOMLDecodeError:
        return []  # parse_ruleset reports the syntax error
    if isinstance(written, str) and written != kind:
        return [
            Problem(origin, f"kind '{written}' must be '{kind}', the rule set it is a version of")
        ]
    return []


def unstorable(text: str) -> str | None:
    """What makes `text` unstorable in the databases (NUL, lone surrogates), or None."""
    if "\x00" in text:
        return "holds a NUL character, which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"holds U+{code:04X}, a lone surrogate, which cannot be stored"
    return None


def parse_text(
    source: str,
    origin: str,
    kind: str | None = None,
    providers: Mapping[str, RuleSet] | None = None,
) -> RuleSet:
    """parse_ruleset for a version's text, given the outcome fields of the rule sets it names
    in `after`: those in `providers` (the versions a stored decision read), else the active
    ones (a reminder version reads the active hand-off's); RuleFileError."""
    from engine.order import declared_after

    names = declared_after(source)
    providers = providers or {}
    earlier = {k: providers[k].outcome for k in names if k in providers}
    if set(names) - set(earlier):
        from api.usecases import parse_versions
        from storage import rulesets

        active, _ = parse_versions(rulesets.list_active())  # those that parse
        earlier.update(
            {k: active[k].ruleset.outcome for k in names if k in active and k not in earlier}
        )
    return parse_ruleset(source, origin, kind, earlier)


def parsed(stored: dict[str, Any]) -> RuleSet:
    """A stored version parsed; InvalidRuleSet if it no longer validates (a stricter release)."""
    origin = f"{stored['kind']} version {stored['version']}"
    try:
        return parse_text(stored["source"], origin)
    except RuleFileError as exc:
        raise InvalidRuleSet(locate_problems(exc.problems, stored["source"])) from None


def must_pass(check: VersionCheck, subject: str) -> None:
    """Refused unless the smoke test and every [[test]] case passed."""
    if check.problems:
        raise Refused(
            f"smoke test must pass before {subject} is proposed: "
            + "; ".join(problem.message for problem in check.problems)
        )
    if check.failed:
        names = ", ".join(f"'{case['name']}' ({_first_difference(case)})" for case in check.failed)
        raise Refused(
            f"tests must pass before {subject} is proposed: {len(check.failed)} of "
            f"{len(check.cases)} [[test]] cases fail: {names}",
            check.failed,
        )


def _first_difference(case: dict[str, Any]) -> str:
    if case.get("error"):
        return str(case["error"])
    for field, expected in case["expected"].items():
        actual = case["actual"].get(field)
        if actual != expected:
            return f"{field}: expected {describe(expected)}, got {describe(actual)}"
    return "differs"


def require_state(row: dict[str, Any], allowed: tuple[str, ...], rule: str) -> None:
    """Refused with `rule` (e.g. "only a draft can be proposed") unless the version's state
    is one of `allowed`."""
    if row["state"] not in allowed:
        raise Refused(f"{rule}; version {row['version']} is {row['state']}")


def four_eyes(kind: str, version: int, actor: Actor) -> None:
    """NotAllowed when the actor's owner drafted or proposed the version, by any key."""
    from storage import rulesets

    made = [
        e["event"]
        for e in rulesets.events(kind, version)
        if e["event"] in ("drafted", "proposed") and e["owner"] == actor.owner
    ]
    if made:
        what = " and ".join(dict.fromkeys(made))
        raise NotAllowed(
            f"four eyes: {actor.owner} {what} version {version}; a different person must "
            f"approve it (the key '{actor.name}' belongs to {actor.owner})"
        )
