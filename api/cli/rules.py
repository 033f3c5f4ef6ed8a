"""`credo rules check|test` and `credo decide`: rule files and decisions from the command line
(`credo decide` through api.decide, the use case the API's decisions go through)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from api.cli.main import CliContext, pass_cli
from api.lifecycle_rules import MAX_VERSION
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


def _load_all(
    ctx: CliContext, paths: list[Path]
) -> dict[Path, tuple[RuleSet | None, list[Problem]]]:
    """Each rule file parsed after the rule sets it names in `after`, which are the files of
    the same folder (the given files first), then those of the rules directory, and the whole
    set checked for what one rule set reads of another (engine.order): by file, its rule set
    (None if invalid) and problems. A file in the rules directory must be named after its
    kind; one elsewhere (my.toml) stands for the kind it declares."""
    from engine.order import check_cross_references, parse_rulesets

    rules_dir = ctx.settings.rules_dir.resolve()
    sources: dict[str, tuple[str, str]] = {}
    problems: dict[str, list[Problem]] = {str(p): [] for p in paths}
    siblings = sorted({s for p in paths for s in p.parent.glob("*.toml")} - set(paths))
    shipped = sorted(set(rules_dir.glob("*.toml")) - {p.resolve() for p in [*paths, *siblings]})
    for path in [*paths, *siblings, *shipped]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.setdefault(str(path), []).append(
                Problem(str(path), f"cannot read file: {exc}")
            )
            continue
        kind = path.stem if path.resolve().parent == rules_dir else _declared_kind(text, path)
        if kind not in sources:
            sources[kind] = (text, str(path))
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


def _declared_kind(text: str, path: Path) -> str:
    """The kind a rule file's text declares, else its file name's stem (its parse says why)."""
    import tomllib

    try:
        kind = tomllib.loads(text).get("kind")
    except tomllib.TOMLDecodeError:
        return path.stem
    return kind if isinstance(kind, str) and kind else path.stem


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {k: v for k, v in vars(problem).items() if v is not None} | {"text": str(problem)}


@click.group("rules")
def rules() -> None:
    """Check and test rule files; publish, approve and activate rule-set versions."""


@rules.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--templates",
    "templates_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Render the reminder texts of this directory (default, without FILES: rules/templates).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def check(
    ctx: CliContext, files: tuple[str, ...], templates_dir: Path | None, as_json: bool
) -> None:
    """Validate rule files and smoke-test them in the engine, and render the reminder texts
    with sample accounts; exit 2 listing every problem."""
    report = []
    for path, (ruleset, problems) in _load_all(ctx, _rule_files(ctx, files)).items():
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
    if templates_dir is None and not files:
        templates_dir = ctx.settings.rules_dir / "templates"
    templates = _check_templates(templates_dir) if templates_dir is not None else []
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
        if templates_dir is not None and templates_dir.exists() and not templates:
            click.echo(f"ok  {templates_dir}: every reminder text renders with the samples")
        for problem in templates:
            click.echo(f"templates: {problem}", err=True)
    if failed:
        sys.exit(2)


def _check_templates(folder: Path) -> list[str]:
    """Render every reminder text of `folder` with the sample accounts: the problems."""
    from api.nightly.messages import MessageError, MessageRenderer

    if not folder.exists():
        return []
    try:
        return [str(problem) for problem in MessageRenderer.from_directory(folder).check()]
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
    for path, (ruleset, problems) in _load_all(ctx, _rule_files(ctx, files)).items():
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
    help="What-if: evaluate this rule file instead of the active version (never stored).",
)
@click.option(
    "--version",
    type=click.IntRange(1, MAX_VERSION),
    help="What-if: evaluate this stored version (a draft, a retired one, …) instead of the "
    "active one (never stored).",
)
@click.option(
    "--store",
    is_flag=True,
    help="Store the decision in the audit chain, as the API does (always the active version).",
)
@click.option(
    "--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Date of the facts (default today)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@pass_cli
def decide(
    ctx: CliContext, kind: str, customer, facts_file, rules_file, version, store, as_of, as_json
) -> None:
    """Decide KIND with its active stored version, as `POST /v1/decisions/KIND` does, and
    print the decision with its trace. Without --store it is a what-if: evaluated the same
    way, never stored. --rules FILE and --version N evaluate another text: what-ifs only."""
    from api.decide import DecisionRequest
    from api.decide import decide as decide_request
    from api.nightly.worklist import today_in
    from engine.runtime import Engine

    if facts_file is None and customer is None:
        raise click.UsageError("give --customer ID or --facts FILE")
    if rules_file is not None and version is not None:
        raise click.UsageError("give --rules FILE or --version N, not both")
    if store and (rules_file is not None or version is not None):
        raise click.UsageError(
            "--store: a stored decision is always made by the active version; --rules and "
            "--version are what-ifs, never stored"
        )
    given = _read_facts(facts_file) if facts_file else None
    rules = _what_if_rules(ctx, rules_file) if rules_file is not None else None
    active, challengers = {}, {}
    if customer is not None or rules is None:
        active, challengers = _active_rulesets(ctx)
    day = as_of.date() if as_of else today_in(ctx.settings.facts.timezone)
    asked = DecisionRequest(
        kind, customer, given, day, "cli", "cli", not store, version=version, rules=rules
    )
    decision = _decided(lambda: decide_request(asked, active, Engine(), None, challengers))
    if as_json:
        click.echo(json.dumps(decision, indent=2, ensure_ascii=False))
        return
    _print_decision(decision, rules_file)


def _what_if_rules(ctx: CliContext, rules_file: str) -> RuleSet:
    path = Path(rules_file)
    if not path.exists():
        raise click.UsageError(f"--rules: {path} does not exist")
    ruleset, problems = _load_all(ctx, [path])[path]  # after the rule sets of its folder it names
    if ruleset is None:
        raise click.UsageError("\n".join(str(p) for p in problems))
    return ruleset


def _active_rulesets(ctx: CliContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """The active versions (after making the pending activations that are due) and the
    running challengers, parsed."""
    from api.arms import parse_challengers, running_challengers
    from api.cli.data import _open_initialised
    from api.rollout import activate_due
    from api.usecases import load_active_rulesets

    _open_initialised(ctx)
    activate_due()
    try:
        active = load_active_rulesets()
        return active, parse_challengers(running_challengers(), active)
    except (RuleFileError, LookupError) as exc:
        raise click.ClickException(f"the active rule sets do not load: {exc}") from None


def _decided(decide_now) -> dict[str, Any]:
    """The use case's answer; its refusals as usage errors (exit 2)."""
    from api.decide import UnknownKind
    from api.lifecycle_rules import LifecycleError
    from api.usecases import UnknownCustomer

    try:
        return decide_now()
    except (UnknownKind, UnknownCustomer, LifecycleError) as exc:
        raise click.UsageError(str(exc)) from None
    except FactError as exc:
        raise click.UsageError(f"facts: {exc}") from None
    except RuleFileError as exc:  # the active versions do not hold together
        raise click.ClickException(f"the active rule sets cannot decide: {exc}") from None


def _print_decision(decision: dict[str, Any], rules_file: str | None) -> None:
    kind, version = decision["kind"], decision["ruleset"]["version"]
    outcome = ", ".join(f"{k}={describe(v)}" for k, v in decision["outcome"].items())
    made_by = f"rules {rules_file}" if version is None else f"version {version}"
    what_if = "what-if, " if decision.get("dry_run") else ""
    click.echo(f"{kind}: {outcome} ({what_if}{made_by})")
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
    else:
        click.echo("  not stored (--store stores a decision of the active version)")


def _read_facts(facts_file) -> dict[str, Any]:
    try:
        raw = json.load(facts_file)
    except ValueError as exc:
        raise click.UsageError(f"{facts_file.name}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise click.UsageError(f"{facts_file.name}: expected a JSON object of facts")
    return raw


def register(main: click.Group) -> None:
    from api.cli.lifecycle import register_into

    register_into(rules)
    main.add_command(rules)
    main.add_command(decide)
