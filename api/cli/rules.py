"""`credo rules check|test` and `credo decide`: rule files and decisions from the command line."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from api.cli.main import CliContext, pass_cli
from engine.checks import describe, run_tests, smoke_test
from engine.errors import FactError, Problem, RuleFileError
from engine.ruleset import RuleSet
from engine.trace import to_jsonable


def _rule_files(ctx: CliContext, files: tuple[str, ...]) -> list[Path]:
    if files:
        return [Path(f) for f in files]
    found = sorted(ctx.settings.rules_dir.glob("*.toml"))
    if not found:
        raise click.UsageError(f"no rule files in {ctx.settings.rules_dir}")
    return found


def _load_all(paths: list[Path]) -> dict[Path, tuple[RuleSet | None, list[Problem]]]:
    """Each rule file parsed after the rule sets it names in `after`, which are the files of
    the same folder (the given files first), and the whole set checked for what one rule set
    reads of another (engine.order): by file, its rule set (None if invalid) and problems."""
    from engine.order import check_cross_references, parse_rulesets

    sources: dict[str, tuple[str, str]] = {}
    problems: dict[str, list[Problem]] = {str(p): [] for p in paths}
    siblings = sorted({s for p in paths for s in p.parent.glob("*.toml")} - set(paths))
    for path in [*paths, *siblings]:
        if path.stem in sources:
            continue
        try:
            sources[path.stem] = (path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            problems.setdefault(str(path), []).append(
                Problem(str(path), f"cannot read file: {exc}")
            )
    parsed, found = parse_rulesets(sources)
    if not found:
        found = check_cross_references(parsed)
    for problem in found:
        problems.setdefault(problem.path, []).append(problem)
    by_path = {ruleset.path: ruleset for ruleset in parsed.values()}
    result = {}
    for path in paths:
        mine = problems[str(path)]
        ruleset = None if mine else by_path.get(str(path))
        if ruleset is None and not mine:  # a sibling it waits on failed
            mine = [Problem(str(path), "not checked: a rule set it names in `after` has problems")]
        result[path] = (ruleset, mine)
    return result


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {k: v for k, v in vars(problem).items() if v is not None} | {"text": str(problem)}


@click.group("rules")
def rules() -> None:
    """Check and test rule files (rules/*.toml)."""


@rules.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def check(ctx: CliContext, files: tuple[str, ...], as_json: bool) -> None:
    """Validate rule files and smoke-test them in the engine; exit 2 listing every problem."""
    report = []
    for path, (ruleset, problems) in _load_all(_rule_files(ctx, files)).items():
        if ruleset is not None:
            problems = smoke_test(ruleset, ctx.settings.engine.smoke_timeout_seconds)
        report.append(
            {
                "path": str(path),
                "kind": ruleset.kind if ruleset else None,
                "sha256": ruleset.sha256 if ruleset else None,
                "rules": len(ruleset.rules) if ruleset else None,
                "ok": not problems,
                "problems": [_problem_json(p) for p in problems],
            }
        )
    templates = _check_templates(ctx) if not files else []
    failed = any(not entry["ok"] for entry in report) or bool(templates)
    if as_json:
        click.echo(
            json.dumps({"ok": not failed, "files": report, "templates": templates}, indent=2)
        )
    else:
        for entry in report:
            if entry["ok"]:
                click.echo(f"ok  {entry['path']}: {entry['kind']}, {entry['rules']} rules")
            for problem in entry["problems"]:
                click.echo(problem["text"], err=True)
        for problem in templates:
            click.echo(f"templates: {problem}", err=True)
    if failed:
        sys.exit(2)


def _check_templates(ctx: CliContext) -> list[str]:
    """Render every reminder template of rules/templates with a sample account."""
    from api.nightly.messages import MessageError, MessageRenderer

    folder = ctx.settings.rules_dir / "templates"
    if not folder.exists():
        return []
    try:
        return MessageRenderer(folder).check()
    except MessageError as exc:
        return [str(exc)]


@rules.command("test")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def test(ctx: CliContext, files: tuple[str, ...], as_json: bool) -> None:
    """Run the [[test]] cases of rule files; exit 1 when a case fails, 2 on an invalid file."""
    from engine.runtime import Engine

    engine = Engine()
    report, invalid = [], False
    for path, (ruleset, problems) in _load_all(_rule_files(ctx, files)).items():
        if ruleset is None:
            invalid = True
            for problem in problems:
                click.echo(str(problem), err=True)
            continue
        for result in run_tests(ruleset, engine):
            report.append({"file": str(path), **vars(result)})
    failed = [r for r in report if not r["passed"]]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "passed": len(report) - len(failed),
                    "failed": len(failed),
                    "cases": to_jsonable(report),
                },
                indent=2,
            )
        )
    else:
        for r in report:
            click.echo(f"{'PASS' if r['passed'] else 'FAIL'}  {r['file']}: {r['name']}")
            if not r["passed"]:
                _explain_failure(r)
        click.echo(f"{len(report) - len(failed)} passed, {len(failed)} failed")
    if invalid:
        sys.exit(2)
    if failed:
        sys.exit(1)


def _explain_failure(result: dict[str, Any]) -> None:
    if result["error"]:
        click.echo(f"      error: {result['error']}")
    for field, expected in result["expected"].items():
        actual = result["actual"].get(field)
        mark = "  " if actual == expected else "≠ "
        click.echo(f"    {mark}{field}: expected {describe(expected)}, got {describe(actual)}")
    click.echo(f"      rules fired: {', '.join(result['fired']) or 'none'}")
    for reason in result["reasons"]:
        click.echo(f"        - {reason}")


@click.command("decide")
@click.argument("kind")
@click.option("--customer", help="Decide for this stored customer (facts from its ledger).")
@click.option(
    "--facts",
    "facts_file",
    type=click.File("r"),
    help="JSON file of facts ('-': stdin); with --customer they add or override.",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False),
    help="Rule file to use instead of rules/KIND.toml (without --customer).",
)
@click.option(
    "--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Date of the facts (default today)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@pass_cli
def decide(ctx: CliContext, kind: str, customer, facts_file, rules_file, as_of, as_json) -> None:
    """Decide KIND and print the decision with its trace.

    With --customer the active stored rule-set version decides from the stored ledger and the
    decision is stored in the audit chain, as through the API. With --facts alone the rule file
    decides a what-if, which is not stored.
    """
    if facts_file is None and customer is None:
        raise click.UsageError("give --customer ID or --facts FILE")
    given = _read_facts(facts_file) if facts_file else None
    day = as_of.date() if as_of else date.today()
    if customer is not None:
        decision = _decide_stored(ctx, kind, customer, given, day)
    else:
        decision = _decide_from_file(ctx, kind, rules_file, given, day)
    if as_json:
        click.echo(json.dumps(decision, indent=2, ensure_ascii=False))
        return
    outcome = ", ".join(f"{k}={describe(v)}" for k, v in decision["outcome"].items())
    version = decision["ruleset"]["version"]
    click.echo(f"{kind}: {outcome}" + (f" (version {version})" if version else " (what-if)"))
    for fired in decision["fired"]:
        click.echo(
            f"  fired {fired['id']} (priority {fired['priority']}) {fired['name']}: "
            f"{fired['reason']}"
        )
    if not decision["fired"]:
        click.echo("  no rule matched: defaults apply")
    for earlier in decision.get("earlier") or ():
        given = ", ".join(f"{n}={describe(decision['facts'].get(n))}" for n in earlier["facts"])
        click.echo(
            f"  facts from the {earlier['kind']} decision (version {earlier['version']}, "
            f"not stored): {given or 'none'}"
            if earlier["decision_id"] is None
            else f"  facts from {earlier['kind']} decision {earlier['decision_id']}: {given}"
        )
    if decision.get("decision_id"):
        click.echo(f"  stored as decision {decision['decision_id']}")


def _read_facts(facts_file) -> dict[str, Any]:
    try:
        raw = json.load(facts_file)
    except ValueError as exc:
        raise click.UsageError(f"{facts_file.name}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise click.UsageError(f"{facts_file.name}: expected a JSON object of facts")
    return raw


def _decide_from_file(ctx: CliContext, kind, rules_file, given, day: date) -> dict[str, Any]:
    from engine.facts import check_facts
    from engine.runtime import Engine

    path = Path(rules_file) if rules_file else ctx.settings.rules_dir / f"{kind}.toml"
    if not path.exists():
        raise click.UsageError(f"no rule set '{kind}' ({path} does not exist)")
    ruleset, problems = _load_all([path])[path]
    if ruleset is None:
        raise click.UsageError("\n".join(str(p) for p in problems))
    try:
        facts = check_facts(given, complete=True, earlier=ruleset.earlier_facts())
    except FactError as exc:
        raise click.UsageError(f"facts: {exc}") from None
    evaluation = Engine().evaluate(ruleset, facts)
    return {
        "kind": ruleset.kind,
        "customer_id": facts.get("customer_id"),
        "as_of": day.isoformat(),
        **to_jsonable(evaluation.trace_json()),
        "ruleset": {"kind": ruleset.kind, "version": None, "sha256": ruleset.sha256},
        "facts": to_jsonable(facts),
        "engine_us": evaluation.engine_us,
        "earlier": [],  # facts given directly: an earlier decision's are the caller's
    }


def _decide_stored(ctx: CliContext, kind, customer: str, given, day: date) -> dict[str, Any]:
    from api.cli.data import _open_initialised
    from api.usecases import UnknownCustomer, decide_one, load_active_rulesets
    from engine.runtime import Engine
    from storage.decisions import append_decision

    _open_initialised(ctx)
    try:
        active = load_active_rulesets()
    except RuleFileError as exc:
        raise click.ClickException(f"the active rule sets do not load: {exc}") from None
    if kind not in active:
        raise click.UsageError(f"no active rule set '{kind}' (see `credo rules history`)")
    try:
        record = decide_one(Engine().evaluate, active, kind, customer, given, day, "cli", via="cli")
    except UnknownCustomer as exc:
        raise click.UsageError(str(exc)) from None
    except FactError as exc:
        raise click.UsageError(f"facts: {exc}") from None
    except RuleFileError as exc:  # the active versions do not hold together
        raise click.ClickException(f"the active rule sets cannot decide {kind!r}: {exc}") from None
    return append_decision(record)


def register(main: click.Group) -> None:
    main.add_command(rules)
    main.add_command(decide)
