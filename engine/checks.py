"""What a rule set must pass before it is used: its own [[test]] cases and the smoke test.

The smoke test evaluates the rule set on ordinary and extreme fact sets in a *subprocess* with a
time limit: the C engine can hang (holding the GIL) or kill its process (SIGFPE, segfault) on
rule sets beyond its limits, and that must become a validation error, never a dead server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.errors import EngineError, Problem
from engine.ruleset import RuleSet, format_value
from engine.trace import to_jsonable

SMOKE_TIMEOUT = 20.0


@dataclass(frozen=True)
class CaseResult:
    """One [[test]] case: what was expected, what the engine decided, and why."""

    name: str
    passed: bool
    expected: dict[str, Any]
    actual: dict[str, Any]
    fired: list[str]
    reasons: list[str]
    error: str | None = None


def run_tests(ruleset: RuleSet, engine: Any) -> list[CaseResult]:
    """Evaluate every [[test]] case of the rule set with `engine` (an engine.runtime.Engine)."""
    results = []
    for case in ruleset.tests:
        try:
            evaluation = engine.evaluate(ruleset, case.facts)
        except EngineError as exc:
            results.append(CaseResult(case.name, False, case.expect, {}, [], [], str(exc)))
            continue
        actual = {k: evaluation.outcome.get(k) for k in case.expect}
        fired = [f.id for f in evaluation.fired]
        passed = actual == case.expect and (case.fired is None or list(case.fired) == fired)
        if case.fired is not None:
            actual = {**actual, "fired": fired}
        expected = case.expect if case.fired is None else {**case.expect, "fired": list(case.fired)}
        results.append(
            CaseResult(case.name, passed, expected, actual, fired, list(evaluation.reasons))
        )
    return results


def smoke_corpus() -> list[dict[str, Any]]:
    """Ordinary and extreme fact sets, every one valid input for every rule set."""
    from engine.facts import FACTS

    def fill(number: Any, money: Any, flag: bool, text: str, optional: bool) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        for name, spec in FACTS.items():
            if spec.optional and not optional:
                continue
            facts[name] = {
                "int": number,
                "float": float(number),
                "money": money,
                "bool": flag,
                "str": text,
            }[spec.type]
        return facts

    ordinary = fill(12, Decimal("1250.00"), False, "retail", True)
    ordinary.update(last_reminder_tone="friendly", utilization=0.45)
    return [
        ordinary,
        fill(0, Decimal("0.00"), False, "", False),
        fill(0, Decimal("0.00"), True, "none", True),
        fill(999_999_999, Decimal("999999999999.99"), True, "x" * 200, True),
        fill(-999_999_999, Decimal("-999999999999.99"), False, "ü€", True),
        fill(1, Decimal("0.01"), True, "final", False),
        {},
    ]


def _with_earlier(cases: list[dict[str, Any]], ruleset: RuleSet) -> list[dict[str, Any]]:
    """The corpus with the facts earlier decisions give (each allowed word in turn; typed
    fields their default), and once without them."""
    earlier = ruleset.earlier_facts()
    if not earlier:
        return cases
    out = []
    for index, facts in enumerate(cases):
        added = dict(facts)
        for name, (_, spec) in earlier.items():
            value = spec.values[index % len(spec.values)] if spec.values else spec.default
            if value is not None:
                added[name] = value
        out.append(added)
    return [*out, *cases[:1]]


def _earlier_json(ruleset: RuleSet) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        kind: {name: to_jsonable(vars(spec)) for name, spec in fields.items()}
        for kind, fields in ruleset.earlier.items()
    }


@dataclass(frozen=True)
class VersionCheck:
    """What a rule set must pass before it is proposed: the smoke test's problems and the
    outcome of each [[test]] case (as JSON values: name, passed, expected, actual, fired,
    reasons, error)."""

    problems: list[Problem]
    cases: list[dict[str, Any]]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [case for case in self.cases if not case["passed"]]


def smoke_test(ruleset: RuleSet, timeout: float = SMOKE_TIMEOUT) -> list[Problem]:
    """Evaluate the rule set on the smoke corpus in a subprocess; problems if it fails."""
    return check_ruleset(ruleset, timeout).problems


def check_ruleset(ruleset: RuleSet, timeout: float = SMOKE_TIMEOUT) -> VersionCheck:
    """The smoke test and the [[test]] cases of the rule set, run in a subprocess.

    A rule set not yet smoke-tested may crash or hang the engine, so nothing of it runs in the
    calling process (an API worker, say). When the subprocess fails, `problems` says how and
    `cases` is empty.
    """
    payload = json.dumps(
        {"source": ruleset.source, "path": ruleset.path, "earlier": _earlier_json(ruleset)}
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "engine.checks"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return _failed(
            ruleset,
            f"smoke test: the rules engine did not finish within {timeout:g} s "
            "(it hangs on rule sets with very many distinct constants); simplify the rule set",
        )
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return _failed(ruleset, f"smoke test: the rules engine crashed ({name})")
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return _failed(ruleset, f"smoke test failed: {tail[0]}")
    problems = [Problem(ruleset.path, f"smoke test: {message}") for message in report["errors"]]
    return VersionCheck(problems, report["cases"])


def _failed(ruleset: RuleSet, message: str) -> VersionCheck:
    return VersionCheck([Problem(ruleset.path, message)], [])


def _smoke_main() -> int:
    """Subprocess side of check_ruleset: evaluate the corpus twice and run the [[test]] cases;
    report errors and case results as JSON."""
    from dataclasses import asdict

    from engine.ruleset import OutcomeField, parse_ruleset
    from engine.runtime import Engine
    from engine.trace import to_jsonable

    request = json.loads(sys.stdin.read())
    earlier = {
        kind: {name: _outcome_field(OutcomeField, spec) for name, spec in fields.items()}
        for kind, fields in request.get("earlier", {}).items()
    }
    ruleset = parse_ruleset(request["source"], request["path"], earlier=earlier)
    engine = Engine()
    errors: list[str] = []
    corpus = _with_earlier(smoke_corpus(), ruleset)
    cases = [("corpus", i, facts) for i, facts in enumerate(corpus)]
    cases += [("test", case.name, case.facts) for case in ruleset.tests]
    for origin, label, facts in cases:
        try:
            first = engine.evaluate(ruleset, facts)
            second = engine.evaluate(ruleset, facts)
        except EngineError as exc:
            errors.append(f"{origin} case {label}: {exc}")
            continue
        if first.trace_json() != second.trace_json():
            errors.append(f"{origin} case {label}: two evaluations disagreed")
    results = [to_jsonable(asdict(result)) for result in run_tests(ruleset, engine)]
    engine.unload(ruleset)
    print(json.dumps({"errors": errors, "cases": results}))
    return 0


def _outcome_field(cls: Any, spec: dict[str, Any]) -> Any:
    """An OutcomeField back from its JSON form (values a tuple, a money default a Decimal)."""
    values = tuple(spec["values"]) if spec["values"] is not None else None
    default = spec["default"]
    if spec["type"] == "money" and default is not None:
        default = Decimal(default)
    return cls(spec["name"], spec["type"], values, default, spec["minimum"], spec["maximum"])


def describe(value: Any) -> str:
    """A value as the CLI shows it in expected-vs-actual lines."""
    return format_value(value) if not isinstance(value, list) else ", ".join(value)


if __name__ == "__main__":
    sys.exit(_smoke_main())
