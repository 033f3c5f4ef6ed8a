"""The `credo demo` use case: a synthetic portfolio into a demo database, the nightly run of its
date (every open account decided with the active rule sets, the worklist, the report), an admin
key for the web console, and a summary (decisions by outcome, the riskiest accounts, how to
open the console).

A database is a demo database when its meta table holds the demo's marker, which records how
many rows of each kind of data (keys, ledger records, decisions, rule-set versions, runs) the
demo made. `credo demo` refuses, without changing anything, a database holding more than that:
someone's keys, imports, decisions (API, CLI or a run), rule-set versions. Otherwise, or with
`--force`, it starts afresh: a SQLite file is deleted and made anew (a `credo serve` still
holding the old file then fails /readyz), a PostgreSQL schema's tables are emptied.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import peewee as pw
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from api.settings import Settings

DEMO_KEY = "demo"
IMPORT_BATCH = 5000
DECIDE_BATCH = 500
# The outcome field that sums up each default kind in the summary.
# (The nightly credit decision asks nothing: its `decision` is none, its `status` says it all.)
HEADLINE = {"credit": "status", "reminder": "tone", "handoff": "action"}
_SEVERITY = {"handoff": 3, "offer_plan": 2, "hold": 1, "review_dispute": 1, "stop": 2, "watch": 1}


class DemoRefused(Exception):
    """The database holds data that `credo demo` did not make."""


def run_demo(
    settings: Settings,
    customers: int,
    seed: int,
    as_of: date,
    console: Console,
    force: bool = False,
) -> dict[str, Any]:
    """Make the demo database, import the portfolio, decide, print and return the summary.

    Raises DemoRefused, before changing anything, when the database holds data the demo did
    not make itself, unless `force`.
    """
    from api.usecases import init_database

    started = time.perf_counter()
    url = settings.database_url
    replaced = _prepare_database(url, force)
    init = init_database(url, settings.rules_dir)
    _mark_demo(customers, seed, as_of, made=None)
    _log_reset(replaced, customers, seed, as_of)
    records = _import_portfolio(customers, seed, as_of, console)
    decisions, report = _run_the_night(settings, as_of, console)
    console_key = _console_key(settings)
    _mark_demo(customers, seed, as_of, made=_count_data())
    summary = {
        "database": init["database"],
        "replaced": replaced,
        "customers": customers,
        "records": records,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "decisions": _by_outcome(decisions),
        "riskiest": _riskiest(decisions),
        # money per currency, never added across currencies (api.nightly.report)
        "portfolio": report.get("portfolio", {}),
        "actions": report.get("actions", {}),
        "seconds": round(time.perf_counter() - started, 1),
        "console": console_key,
    }
    _print_summary(summary, console)
    return summary


# What a user's data is made of, by table: before replacing a database the demo compares these
# counts with the ones its marker recorded. Rows that come with these (allocations,
# installments, decision tags, idempotency keys, a run's actions) come and go with them.
# Records the demo made and someone then changed (the same id sent again) are not told apart.
DATA_TABLES = (
    ("api_key", "API key"),
    ("customer", "customer"),
    ("invoice", "invoice"),
    ("payment", "payment"),
    ("credit_note", "credit note"),
    ("dispute", "dispute"),
    ("promise", "promise"),
    ("payment_plan", "payment plan"),
    ("contact", "contact"),
    ("hold", "hold"),
    ("decision", "decision"),
    ("rule_set_version", "rule-set version"),
    ("run", "run"),
)
INIT_CREATOR = "credo init"  # created_by of the rule-set versions `credo init` loads


def _prepare_database(url: str, force: bool) -> bool:
    """Refuse (DemoRefused) a database holding data the demo did not make, unless `force`;
    empty a demo database (or any, with `force`). Whether a database was replaced."""
    from storage.db import connect, is_postgres, redact
    from storage.migrations import current_version

    db = connect(url)
    if current_version(db) == 0:
        db.close()
        return False
    marker = _read_marker()
    if not force:
        found = _foreign_data(marker)
        if found:
            db.close()
            raise DemoRefused(
                f"refusing: database {redact(url)} holds data that `credo demo` did not make "
                f"({found}); use --force to replace it, or point CREDO_DATABASE_URL at "
                "another database"
            )
        if marker is None:  # initialised and empty: the demo fills it in place
            db.close()
            return False
    if is_postgres(db):
        # Every table of the schema but the migrations' record: the demo starts afresh.
        cursor = db.execute_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'schema_version'"
        )
        tables = ", ".join(f'"{name}"' for (name,) in cursor.fetchall())
        db.execute_sql(f"TRUNCATE TABLE {tables} RESTART IDENTITY CASCADE")
        db.close()
    else:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db.database}{suffix}").unlink(missing_ok=True)
    return True


def _foreign_data(marker: dict[str, Any] | None) -> str:
    """What the database holds beyond what the demo (or `credo init`) made, in words; "" if
    nothing."""
    from storage.models import RuleSetVersion

    if marker is not None and not isinstance(marker.get("made"), dict):
        return (
            "the data of a `credo demo` that did not finish, or of an earlier release's, "
            "which did not record what it made"
        )
    if marker is not None:
        made = marker["made"]
    else:
        loaded = RuleSetVersion.select(pw.fn.COUNT(pw.SQL("*")))
        made = {
            "rule_set_version": loaded.where(RuleSetVersion.created_by == INIT_CREATOR).scalar()
        }
    counts = _count_data()
    extra = [
        (counts[table] - made.get(table, 0), noun)
        for table, noun in DATA_TABLES
        if counts[table] > made.get(table, 0)
    ]
    return ", ".join(f"{n} {noun}{'' if n == 1 else 's'}" for n, noun in extra)


def _count_data() -> dict[str, int]:
    """Rows of each of DATA_TABLES (0 for a table an older schema does not have yet)."""
    from storage.db import database
    from storage.migrations import table_exists

    return {
        table: database.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        if table_exists(database.obj, table)
        else 0
        for table, _ in DATA_TABLES
    }


def _read_marker() -> dict[str, Any] | None:
    """The demo's marker (what it made), None when the demo did not make this database."""
    from storage.models import Meta

    row = Meta.get_or_none(Meta.key == DEMO_KEY)
    if row is None:
        return None
    try:
        marker = json.loads(row.value)
    except ValueError:
        return {}
    return marker if isinstance(marker, dict) else {}


def _mark_demo(customers: int, seed: int, as_of: date, made: dict[str, int] | None) -> None:
    """Record that the demo made this database and, once it has finished, how many rows of
    each of DATA_TABLES it made (None while it is still at work)."""
    from storage.models import Meta

    marker = {"customers": customers, "seed": seed, "as_of": as_of.isoformat(), "made": made}
    Meta.insert(key=DEMO_KEY, value=json.dumps(marker)).on_conflict(
        conflict_target=[Meta.key], preserve=[Meta.value]
    ).execute()


def _log_reset(replaced: bool, customers: int, seed: int, as_of: date) -> None:
    """The operator log's `demo.reset`: the database was filled afresh by `credo demo`
    (`replaced`: a database holding earlier data, this log's earlier events with it, was
    emptied first)."""
    from storage.audit_log import append_event

    details = {"replaced": replaced, "customers": customers, "seed": seed, "as_of": as_of}
    append_event("demo.reset", "credo demo", details)


def _import_portfolio(customers: int, seed: int, as_of: date, console: Console) -> int:
    from api.demo.portfolio import generate_portfolio
    from api.intake.schemas import validate_record
    from storage.db import analyze
    from storage.ledger import upsert_records

    count = 0
    batch: list[dict[str, Any]] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing the portfolio", total=customers)
        for record in generate_portfolio(customers, seed, as_of):
            batch.append(validate_record(record))
            if record["type"] == "customer":
                progress.advance(task)
            if len(batch) >= IMPORT_BATCH:
                count += _upsert(upsert_records, batch)
                batch = []
        count += _upsert(upsert_records, batch)
    analyze()
    return count


def _upsert(upsert_records: Any, batch: list[dict[str, Any]]) -> int:
    result = upsert_records(batch)
    if result.rejected:  # the generator makes valid records: this is a bug, say so loudly
        raise RuntimeError(f"demo records rejected: {result.rejected[:3]}")
    return result.accepted


def _run_the_night(
    settings: Settings, as_of: date, console: Console
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The nightly run of `as_of` over the portfolio (decisions, worklist, report), as
    `credo run` makes it; its decisions, which are all the database holds, and its report."""
    from api.nightly.run import execute_run, prepare_run
    from storage.decisions import iter_decisions
    from storage.worklist import get_run

    with console.status("the nightly run: deciding every open account"):
        run, _ = prepare_run(settings, as_of, False, "credo demo")
        execute_run(settings, run.run_id)
    return list(iter_decisions()), get_run(run.run_id).report or {}


CONSOLE_KEY = "demo-console"


def _console_key(settings: Settings) -> dict[str, str]:
    """An admin key for the web console on the demo data, and how to open it."""
    from storage.keys import create_key

    key, _ = create_key(CONSOLE_KEY, "admin", owner="demo", actor="credo demo")
    host = settings.api.host if settings.api.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return {
        "command": "credo serve",
        "url": f"http://{host}:{settings.api.port}/console/",
        "key_name": CONSOLE_KEY,
        "key": key,
    }


def _headline(decision: dict[str, Any]) -> tuple[str, Any]:
    outcome = decision["outcome"]
    name = HEADLINE.get(decision["kind"]) or min(outcome, default="")
    return name, outcome.get(name)


def _by_outcome(decisions: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {}
    for decision in decisions:
        name, value = _headline(decision)
        counts.setdefault(decision["kind"], Counter())[f"{name}={value}"] += 1
    return {kind: dict(counter.most_common()) for kind, counter in sorted(counts.items())}


def _riskiest(decisions: list[dict[str, Any]], count: int = 10) -> list[dict[str, Any]]:
    """The `count` accounts with the most severe outcomes, then the most days past due; each
    with its overdue balance in its own currency."""
    from storage.ledger import customer_currencies

    accounts: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        account = accounts.setdefault(
            decision["customer_id"], {"customer_id": decision["customer_id"], "outcomes": {}}
        )
        facts = decision["facts"]
        account["overdue_balance"] = facts.get("overdue_balance", "0.00")
        account["days_past_due"] = facts.get("days_past_due", 0)
        account["outcomes"][decision["kind"]] = _headline(decision)[1]
        account.setdefault("reasons", {})[decision["kind"]] = _deciding_reason(decision)

    def risk(account: dict[str, Any]) -> tuple:
        severity = sum(_SEVERITY.get(str(v), 0) for v in account["outcomes"].values())
        return (severity, account["days_past_due"], float(account["overdue_balance"]))

    riskiest = sorted(accounts.values(), key=risk, reverse=True)[:count]
    currencies = customer_currencies(a["customer_id"] for a in riskiest)
    for account in riskiest:
        account["currency"] = currencies.get(account["customer_id"], "")
    return riskiest


def _deciding_reason(decision: dict[str, Any]) -> str:
    """The reason of the rule that set the headline outcome (else the first reason)."""
    name, _ = _headline(decision)
    deciding = [f["reason"] for f in decision["fired"] if name in f["then"]]
    return (deciding or decision["reasons"] or [""])[0]


def _main_reason(account: dict[str, Any]) -> str:
    """The reason behind the account's most severe outcome (hand-off first on a tie)."""
    kinds = sorted(
        account["reasons"],
        key=lambda k: (_SEVERITY.get(str(account["outcomes"].get(k)), 0), k == "handoff"),
    )
    return account["reasons"][kinds[-1]] if kinds else ""


def _print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Decisions as of {summary['as_of']}")
    table.add_column("kind")
    table.add_column("outcome")
    table.add_column("decisions", justify="right")
    for kind, counts in summary["decisions"].items():
        for outcome, number in counts.items():
            table.add_row(kind, outcome, str(number))
            kind = ""
    console.print(table)
    risky = Table(title="The ten riskiest accounts")
    for name in ("customer", "overdue", "days late", "outcomes", "reasons"):
        risky.add_column(name, justify="right" if name in ("overdue", "days late") else "left")
    for account in summary["riskiest"]:
        outcomes = ", ".join(f"{k}: {v}" for k, v in account["outcomes"].items())
        risky.add_row(
            account["customer_id"],
            f"{account['overdue_balance']} {account.get('currency', '')}".strip(),
            str(account["days_past_due"]),
            outcomes,
            _main_reason(account),
        )
    console.print(risky)
    if summary.get("portfolio"):
        from api.nightly.report import portfolio_lines

        console.print("Portfolio by currency (never added across currencies):")
        for line in portfolio_lines(summary["portfolio"]):
            console.print(f"  {line}", markup=False, highlight=False)
    if summary.get("actions"):
        actions = summary["actions"].items()
        counts = ", ".join(f"{sum(states.values())} {kind}" for kind, states in actions)
        console.print(f"Tonight's worklist: {counts}.")
    if summary["replaced"]:
        console.print(
            "The database was replaced: restart any `credo serve` or `credo scheduler` that "
            "had it open (on SQLite they would go on using the deleted file)."
        )
    console.print(
        f"{summary['customers']} customers, {summary['records']} ledger records, "
        f"{sum(sum(c.values()) for c in summary['decisions'].values())} decisions stored in "
        f"{summary['seconds']} s. Database: {summary['database']}"
    )
    web = summary["console"]
    console.print(
        f"Web console: run `{web['command']}` (with the same settings) and open {web['url']}; "
        f"sign in with the admin key {web['key_name']} made for it:",
        highlight=False,
    )
    console.print(web["key"], highlight=False, soft_wrap=True)


def is_demo_database() -> bool:
    """Whether `credo demo` made this database."""
    from storage.models import Meta

    return Meta.select().where(Meta.key == DEMO_KEY).exists()
