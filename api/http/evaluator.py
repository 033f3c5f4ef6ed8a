"""The rule sets a worker decides with, and the one durable_rules Engine of the process.

Each worker keeps parsed RuleSets keyed by (kind, sha256) and asks the database which version
of each kind is active at most once per `api.ruleset_refresh_seconds`, so a newly activated
version is used by every worker within that interval, without a restart. A decision takes one
`ActiveRuleSet` snapshot (a frozen object) and uses nothing else: it cannot mix two versions.

The Engine is created lazily, per process id (gunicorn forks workers after importing the app),
and every evaluation holds its lock: the extension is not thread-safe and never releases the
GIL, so the lock costs nothing a thread could have used.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from api.usecases import ActiveRuleSet
from engine.ruleset import RuleSet
from engine.runtime import Engine

_log = logging.getLogger("credo.api")


class RuleSetCache:
    """Active rule sets of one worker, refreshed from the database at most every interval."""

    def __init__(self, refresh_seconds: float):
        self._refresh_seconds = refresh_seconds
        self._parsed: dict[tuple[str, str], RuleSet] = {}
        self._active: dict[str, ActiveRuleSet] = {}
        self._broken: set[tuple[str, str]] = set()
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def get(self, kind: str) -> ActiveRuleSet | None:
        """The active version of `kind`, or None if the kind has none."""
        return self.all().get(kind)

    def all(self) -> dict[str, ActiveRuleSet]:
        """Every kind's active version (refreshed first if the interval has passed)."""
        checked = self._checked_at
        if checked is None or time.monotonic() - checked >= self._refresh_seconds:
            self.refresh()
        return self._active

    def refresh(self) -> None:
        """Ask the database for the active versions now; parse the ones not seen before.

        Versions are parsed in their declared order (a rule set after `handoff` is checked
        against the active hand-off version's outcome). A stored version that no longer parses
        (say, after an upgrade made validation stricter) is logged once and its kind keeps the
        version it had, if any.
        """
        from storage import rulesets

        with self._lock:
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
            self._active = active  # replaced whole: readers see the old or the new map
            self._checked_at = time.monotonic()
            self._forget_inactive()

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
        """Drop retired versions from this cache and from the process engine."""
        keep = {(a.kind, a.sha256) for a in self._active.values()}
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
