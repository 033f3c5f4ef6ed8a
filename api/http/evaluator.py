"""The rule sets a worker decides with, and the one durable_rules Engine of the process.

Each worker keeps parsed RuleSets keyed by (kind, sha256) and asks the database which version
of each kind is active (and which are challengers or pending activations, api.rollout) at most
once per `api.ruleset_refresh_seconds`, so a newly activated version is used by every worker
within that interval, without a restart, and a pending one from its time on, without a query
per decision. A decision takes one `Snapshot` (a frozen object) and uses nothing else: it
cannot mix two versions.

The Engine is created lazily, per process id (gunicorn forks workers after importing the app),
and every evaluation holds its lock: the extension is not thread-safe and never releases the
GIL, so the lock costs nothing a thread could have used.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from api.arms import Challenger
from api.usecases import ActiveRuleSet
from engine.ruleset import RuleSet
from engine.runtime import Engine

_log = logging.getLogger("credo.api")


@dataclass(frozen=True)
class Snapshot:
    """What one decision uses: each kind's active version and the running challengers."""

    active: Mapping[str, ActiveRuleSet]
    challengers: Mapping[str, Challenger]


class RuleSetCache:
    """Active rule sets of one worker, refreshed from the database at most every interval.

    It also holds the versions of pending activations, parsed, with their times: a decision
    asked at or after a pending time is made with that version already (the switch follows
    `clock`, the wall clock unless a test gives another), and the next refresh makes the
    move in the database (api.rollout.activate_due) if nobody has.
    """

    def __init__(self, refresh_seconds: float, clock: Callable[[], datetime] | None = None):
        self._refresh_seconds = refresh_seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._parsed: dict[tuple[str, str], RuleSet] = {}
        self._snapshot = Snapshot({}, {})
        self._pending: tuple[tuple[datetime, ActiveRuleSet], ...] = ()  # soonest first
        self._broken: set[tuple[str, str]] = set()
        self._checked_at: float | None = None
        self._owed = False  # switched to a pending version the database may not show yet
        self._lock = threading.Lock()

    def get(self, kind: str) -> ActiveRuleSet | None:
        """The active version of `kind`, or None if the kind has none."""
        return self.all().get(kind)

    def all(self) -> Mapping[str, ActiveRuleSet]:
        """Every kind's active version (refreshed first if the interval has passed)."""
        return self.snapshot().active

    def snapshot(self) -> Snapshot:
        """The active versions and challengers now: refreshed first if the interval has
        passed or a pending activation's time has come."""
        checked = self._checked_at
        if checked is None or time.monotonic() - checked >= self._refresh_seconds:
            self.refresh()
        pending = self._pending
        if pending and pending[0][0] <= self._clock():
            self._switch_due()
        return self._snapshot

    def _switch_due(self) -> None:
        """Use the pending versions whose time has come, now; the database follows at the next
        refresh. Activating a version ends its kind's experiment."""
        with self._lock:
            now = self._clock()
            due = [p for p in self._pending if p[0] <= now]
            if not due:
                return
            active = dict(self._snapshot.active)
            challengers = dict(self._snapshot.challengers)
            for _, version in due:
                active[version.kind] = version
                challengers.pop(version.kind, None)
            self._snapshot = Snapshot(active, challengers)
            self._pending = tuple(p for p in self._pending if p[0] > now)
            self._owed = True
            self._checked_at = None  # refresh at the next decision: the database follows

    def refresh(self) -> None:
        """Ask the database for the active, challenger and pending versions now (after making
        the pending activations that are due); parse the ones not seen before.

        Versions are parsed in their declared order (a rule set after `handoff` is checked
        against the active hand-off version's outcome). A stored version that no longer parses
        (say, after an upgrade made validation stricter) is logged once and its kind keeps the
        version it had, if any.
        """
        from api.rollout import activate_due
        from storage import rulesets

        with self._lock:
            now = self._clock()
            if self._owed or (self._pending and self._pending[0][0] <= now):
                activate_due(now)
                self._owed = False
            fingerprint = rulesets.active_fingerprint()
            ready = {
                k: self._parsed[(k, sha)] for k, _, sha in fingerprint if (k, sha) in self._parsed
            }
            new = [
                (kind, version, sha256)
                for kind, version, sha256 in fingerprint
                if (kind, sha256) not in self._parsed and (kind, sha256) not in self._broken
            ]
            if new:
                self._parse(new, ready)
            active: dict[str, ActiveRuleSet] = {}
            for kind, version, sha256 in fingerprint:
                ruleset = self._parsed.get((kind, sha256))
                if ruleset is not None:
                    active[kind] = ActiveRuleSet(kind, version, sha256, ruleset)
                elif kind in self._active:
                    active[kind] = self._active[kind]
            challengers = self._challengers(active)
            self._pending = self._pending_versions(active, now)
            self._snapshot = Snapshot(active, challengers)  # replaced whole: old or new
            self._checked_at = time.monotonic()
            self._forget_inactive()

    @property
    def _active(self) -> Mapping[str, ActiveRuleSet]:
        return self._snapshot.active

    def _extra(self, kind: str, version: int, sha256: str, active) -> ActiveRuleSet | None:
        """A version beside the active ones (a challenger, a pending activation), parsed once
        against the other kinds' active versions; None when it does not load."""
        from api.usecases import parse_versions
        from storage import rulesets

        key = (kind, sha256)
        if key not in self._parsed and key not in self._broken:
            stored = rulesets.get_version(kind, version)
            others = {k: a.ruleset for k, a in active.items() if k != kind}
            parsed, problems = parse_versions([stored] if stored else [], others)
            if kind in parsed and parsed[kind].sha256 == sha256:
                self._parsed[key] = parsed[kind].ruleset
            else:
                self._broken.add(key)
                why = "; ".join(str(p) for p in problems) or "not stored"
                _log.error("rule set %s version %s does not load: %s", kind, version, why)
        ruleset = self._parsed.get(key)
        return ActiveRuleSet(kind, version, sha256, ruleset) if ruleset is not None else None

    def _challengers(self, active: Mapping[str, ActiveRuleSet]) -> dict[str, Challenger]:
        from api.arms import running_challengers

        found = {}
        for kind, pin in running_challengers().items():
            version = self._extra(kind, pin["version"], pin["sha256"], active)
            if version is not None and kind in active:
                found[kind] = Challenger(pin["experiment"], pin["share"], version)
        return found

    def _pending_versions(
        self, active, now: datetime
    ) -> tuple[tuple[datetime, ActiveRuleSet], ...]:
        from storage import rulesets

        found = []
        for pending in rulesets.pending_activations():
            at = datetime.fromisoformat(pending["activate_at"])
            kind, version, sha256 = pending["kind"], pending["version"], pending["sha256"]
            parsed = self._extra(kind, version, sha256, active)
            if parsed is not None:
                found.append((at, parsed))
        return tuple(sorted(found, key=lambda p: (p[0], p[1].kind)))

    def _parse(self, new: list[tuple[str, int, str]], ready: dict[str, RuleSet]) -> None:
        from api.usecases import parse_versions
        from storage import rulesets

        stored = [rulesets.get_version(kind, version) for kind, version, _ in new]
        parsed, problems = parse_versions([s for s in stored if s is not None], ready)
        for kind, version, sha256 in new:
            if kind in parsed and parsed[kind].sha256 == sha256:
                self._parsed[(kind, sha256)] = parsed[kind].ruleset
                continue
            self._broken.add((kind, sha256))
            why = "; ".join(str(p) for p in problems) or "not stored"
            _log.error("active rule set %s version %s does not load: %s", kind, version, why)

    def _forget_inactive(self) -> None:
        """Drop versions neither active, challenger nor pending from this cache and from the
        process engine."""
        snapshot = self._snapshot
        keep = {(a.kind, a.sha256) for a in snapshot.active.values()}
        keep |= {(c.version.kind, c.version.sha256) for c in snapshot.challengers.values()}
        keep |= {(v.kind, v.sha256) for _, v in self._pending}
        retired = [key for key in self._parsed if key not in keep]
        if not retired:
            return
        engine = process_engine()
        with engine.lock:
            for key in retired:
                del self._parsed[key]
                engine.unload(key[1])


_engine: Engine | None = None
_engine_pid: int | None = None
_engine_guard = threading.Lock()


def process_engine() -> Engine:
    """The durable_rules Engine of this process (a new one after a fork)."""
    global _engine, _engine_pid
    with _engine_guard:
        if _engine is None or _engine_pid != os.getpid():
            _engine = Engine()
            _engine_pid = os.getpid()
        return _engine
