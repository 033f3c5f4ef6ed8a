"""Order between rule sets (SPEC §4, `after`): one account's decisions see each other.

A rule set that declares `after = ["handoff"]` is decided after the hand-off rule set for the
same account, and reads that decision's outcome fields as facts named `<kind>_<field>`
(`handoff_action`). This module holds what follows from that, once:

- `parse_rulesets`: several rule files parsed in their declared order, each validated against
  the outcome fields of the rule sets it names (cycles and unknown kinds are problems);
- `evaluation_order` and `check_cross_references`: the order a set of rule sets is decided in,
  and whether the set holds together (a version that drops an outcome field, or a value,
  another rule set reads cannot be active beside it);
- `decide_in_order`: one account decided by several rule sets, each after those it names,
  with the facts each one saw and where its earlier facts came from.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import Problem, RuleFileError
from engine.ruleset import RuleSet, earlier_fact_name, parse_ruleset
from engine.ruleset_checks import earlier_value_errors
from engine.trace import Evaluation

Source = tuple[str, str]  # (TOML text, path or label for messages)


def declared_after(text: str) -> tuple[str, ...]:
    """The kinds a rule file's text names in `after` (none if unreadable: its parse says why)."""
    try:
        after = tomllib.loads(text).get("after", ())
    except tomllib.TOMLDecodeError:
        return ()
    if not isinstance(after, list):
        return ()
    return tuple(k for k in after if isinstance(k, str))


def _topological(after: Mapping[str, Iterable[str]]) -> tuple[list[str], list[list[str]]]:
    """Kinds so that each comes after those it names (ties by name), and the cycles found.

    Names outside `after`'s keys, and a kind naming itself, are ignored here (the rule
    file's own validation reports them).
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done
    cycles: list[list[str]] = []

    def visit(kind: str, path: list[str]) -> None:
        if state.get(kind) == 2:
            return
        if state.get(kind) == 1:
            cycles.append([*path[path.index(kind) :], kind])
            return
        state[kind] = 1
        for earlier in sorted(set(after[kind]) - {kind}):
            if earlier in after:
                visit(earlier, [*path, kind])
        state[kind] = 2
        order.append(kind)

    for kind in sorted(after):
        visit(kind, [])
    return order, cycles


def _cycle_problems(cycles: list[list[str]], paths: Mapping[str, str]) -> list[Problem]:
    """One problem for each rule set in a cycle, naming the cycle."""
    return [
        Problem(paths[kind], f"after: the rule sets wait on each other: {' → '.join(cycle)}")
        for cycle in cycles
        for kind in dict.fromkeys(cycle)
    ]


def parse_rulesets(
    sources: Mapping[str, Source], ready: Mapping[str, RuleSet] | None = None
) -> tuple[dict[str, RuleSet], list[Problem]]:
    """Parse rule files by kind, each after the ones it names in `after`.

    `sources` maps kind -> (text, path); `ready` holds rule sets already parsed that files may
    name too. Returns the rule sets that passed and every problem: each file's own, and for
    cycles in `after`. A file that names a kind that failed is itself reported.
    """
    ready = dict(ready or {})
    after = {kind: declared_after(text) for kind, (text, _) in sources.items()}
    order, cycles = _topological(after)
    paths = {kind: path for kind, (_, path) in sources.items()}
    problems = _cycle_problems(cycles, paths)
    in_cycle = {kind for cycle in cycles for kind in cycle}
    parsed: dict[str, RuleSet] = {}
    kinds = set(sources) | set(ready)
    for kind in order:
        text, path = sources[kind]
        if kind in in_cycle:
            continue
        failed = [k for k in after[kind] if k in sources and k != kind and k not in parsed]
        if failed:
            message = f"after: rule set '{failed[0]}' has problems of its own; fix it first"
            problems.append(Problem(path, message))
            continue
        providers = {**ready, **parsed}
        earlier = {k: providers[k].outcome for k in after[kind] if k in providers}
        try:
            parsed[kind] = parse_ruleset(text, path, kind, earlier, kinds)
        except RuleFileError as exc:
            problems.extend(exc.problems)
    return parsed, problems


def evaluation_order(rulesets: Iterable[RuleSet]) -> list[RuleSet]:
    """The rule sets in the order they decide an account: each after those it names.

    Raises RuleFileError when they name an absent kind or wait on each other (a set that passed
    check_cross_references never does).
    """
    by_kind = {r.kind: r for r in rulesets}
    problems = [
        Problem(r.path, f"after: no active rule set '{k}'")
        for r in by_kind.values()
        for k in r.after
        if k not in by_kind
    ]
    order, cycles = _topological({kind: r.after for kind, r in by_kind.items()})
    problems += _cycle_problems(cycles, {kind: r.path for kind, r in by_kind.items()})
    if problems:
        raise RuleFileError(problems)
    return [by_kind[kind] for kind in order]


def check_cross_references(rulesets: Mapping[str, RuleSet]) -> list[Problem]:
    """Whether rule sets that will be active together hold together, by kind.

    Every kind named in `after` must be among them, without cycles; every earlier-decision fact
    a rule set reads (in a `when` or a `reason`) must still be an outcome field of that kind, of
    the same kind of value, and every word a `when` compares it with must still be allowed. A
    problem names the rule set that provides the field and the one that reads it. Pure: call it
    with the active versions and the candidate in place of its kind before activating it.
    """
    problems: list[Problem] = []
    try:
        evaluation_order(rulesets.values())
    except RuleFileError as exc:
        problems.extend(exc.problems)
    for reader in rulesets.values():
        for name, rule_ids in reader.earlier_facts_read().items():
            kind, old = reader.earlier_facts()[name]
            provider = rulesets.get(kind)
            if provider is None:
                continue  # reported above
            rules = ", ".join(rule_ids)
            new = provider.outcome.get(old.name)
            where = f"rule set {reader.kind} ({reader.path}, rules {rules}) reads it as {name}"
            if new is None:
                problems.append(
                    Problem(provider.path, f"outcome field '{old.name}' is gone, but {where}")
                )
            elif (new.type, new.values is None) != (old.type, old.values is None):
                problems.append(
                    Problem(
                        provider.path,
                        f"outcome field '{old.name}' is now a {_describe(new)}, not a "
                        f"{_describe(old)}, but {where}",
                    )
                )
            else:
                problems += _dropped_values(provider, reader, name, rule_ids)
    return problems


def _describe(spec: Any) -> str:
    return "choice of words" if spec.values is not None else f"{spec.type} value"


def _dropped_values(provider: RuleSet, reader: RuleSet, name: str, rule_ids: list[str]):
    kind = provider.kind
    field = name[len(kind) + 1 :]
    specs = {name: (kind, provider.outcome[field])}
    for rule_id in rule_ids:
        rule = reader.rule(rule_id)
        for error in earlier_value_errors(rule.when, specs) if rule else ():
            yield Problem(
                provider.path,
                f"rule set {reader.kind} ({reader.path}, rule {rule_id}) compares {name} with a "
                f"value this version no longer decides: {error.message}",
            )


@dataclass(frozen=True)
class Earlier:
    """Facts one decision took from an earlier decision of the same account."""

    kind: str
    facts: tuple[str, ...]  # the <kind>_<field> names, in outcome order


@dataclass(frozen=True)
class Step:
    """One rule set's decision for the account: the facts it saw and where some came from."""

    ruleset: RuleSet
    facts: dict[str, Any]
    earlier: tuple[Earlier, ...]
    evaluation: Evaluation


Evaluate = Callable[[RuleSet, dict[str, Any]], Evaluation]


def decide_in_order(
    evaluate: Evaluate,
    rulesets: Iterable[RuleSet],
    facts: Mapping[str, Any],
    given: Mapping[str, Any] | None = None,
) -> list[Step]:
    """Decide one account with every rule set, each after the rule sets it names.

    A rule set that names `handoff` in `after` sees the facts plus `handoff_<field>` for every
    outcome field of the hand-off decision (a field without a value stays absent). `given`
    holds earlier-decision facts the caller gave: they win over the computed ones and are not
    reported as coming from a decision (None: the caller made the fact absent). Returns one
    Step per rule set, in evaluation order.
    """
    given = dict(given or {})
    outcomes: dict[str, dict[str, Any]] = {}
    steps = []
    for ruleset in evaluation_order(rulesets):
        seen = dict(facts)
        earlier = []
        for kind in ruleset.after:
            taken = []
            for field, value in outcomes[kind].items():
                name = earlier_fact_name(kind, field)
                if name in given or value is None:
                    continue
                seen[name] = value
                taken.append(name)
            earlier.append(Earlier(kind, tuple(taken)))
        names = ruleset.earlier_facts()
        seen.update((k, v) for k, v in given.items() if k in names and v is not None)
        evaluation = evaluate(ruleset, seen)
        outcomes[ruleset.kind] = evaluation.outcome
        steps.append(Step(ruleset, seen, tuple(earlier), evaluation))
    return steps


def needed_for(kind: str, rulesets: Mapping[str, RuleSet]) -> list[RuleSet]:
    """The rule set of `kind` and every rule set it waits on, directly or not."""
    wanted, todo = {}, [kind]
    while todo:
        current = todo.pop()
        if current in wanted or current not in rulesets:
            continue
        wanted[current] = rulesets[current]
        todo.extend(rulesets[current].after)
    return list(wanted.values())


__all__ = [
    "Earlier",
    "Step",
    "check_cross_references",
    "decide_in_order",
    "declared_after",
    "evaluation_order",
    "needed_for",
    "parse_rulesets",
]
