"""The engine's errors: one base class, structured subclasses that say what a person needs."""

from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation problem in a rule file, located as precisely as we can."""

    path: str
    message: str
    rule_id: str | None = None
    field: str | None = None
    line: int | None = None
    column: int | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.rule_id:
            parts.append(f"rule {self.rule_id}")
        text = self.message
        if self.field:
            text = f"{self.field}: {text}"
        if self.suggestion:
            text += f" (did you mean '{self.suggestion}'?)"
        if self.column is not None:
            text += f" at column {self.column}"
        parts.append(text)
        return ": ".join(parts)


class RuleFileError(EngineError):
    """A rule file failed validation; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class FactError(EngineError):
    """Facts given to the engine are missing, of the wrong type or out of range.

    `errors` maps each fact name to its messages, the shape the HTTP layer returns.
    """

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(errors.items()))
        super().__init__(detail)


class EvaluationError(EngineError):
    """The rules engine failed on one evaluation (e.g. a durable_rules error code)."""
