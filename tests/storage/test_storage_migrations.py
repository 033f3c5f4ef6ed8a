"""Migrations: `migrate` is idempotent, and a database made by an older migration upgrades
without losing rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from storage import ledger
from storage.migrations import LATEST, MIGRATIONS, current_version, migrate
from storage.models import Customer, Invoice, SchemaVersion

# The numbers of every migration (numbers reserved for work elsewhere leave gaps).
NUMBERS = [number for number, _, _ in MIGRATIONS]


def test_migrate_twice_changes_nothing(empty_db):
    assert migrate(empty_db) == NUMBERS
    assert migrate(empty_db) == []
    assert current_version(empty_db) == LATEST
    assert SchemaVersion.select().count() == len(NUMBERS)


def test_version_1_database_upgrades_without_losing_rows(empty_db, records):
    assert migrate(empty_db, target=1) == [1]
    assert current_version(empty_db) == 1
    without_holds = [r for r in records if r["type"] != "hold"]
    result = ledger.upsert_records(without_holds)
    assert not result.rejected
    before = {
        "customers": list(Customer.select().order_by(Customer.id).dicts()),
        "invoices": list(Invoice.select().order_by(Invoice.id).dicts()),
    }

    assert migrate(empty_db) == [n for n in NUMBERS if n >= 2]

    assert list(Customer.select().order_by(Customer.id).dicts()) == before["customers"]
    assert list(Invoice.select().order_by(Invoice.id).dicts()) == before["invoices"]
    # Migration 2 made the holds table: holds can be stored and read now.
    hold = {
        "type": "hold",
        "id": "H9",
        "customer_id": "C1",
        "reason": "audit",
        "start": date(2024, 5, 1),
    }
    assert ledger.upsert_records([hold]).inserted == 1
    loaded = ledger.load_ledger("C1")
    assert [h.id for h in loaded.holds] == ["H9"]
    assert loaded.customer.credit_limit == Decimal("20000.00")


def test_unknown_target_is_refused(empty_db):
    import pytest

    with pytest.raises(ValueError, match="no migration 99"):
        migrate(empty_db, target=99)


def test_decision_tags_of_an_earlier_release_are_rekeyed_without_losing_rows(
    empty_db, make_decision
):
    """Migration 5: the tag table as releases before it made it (an id, a foreign key to the
    decision, an index) becomes one keyed by (name, value, seq), its rows kept, searches the
    same."""
    from engine.trace import GENESIS_HASH
    from storage import decisions
    from storage.db import is_postgres
    from storage.decisions import DecisionFilter

    assert migrate(empty_db, target=4) == [1, 2, 3, 4]
    serial = "SERIAL" if is_postgres(empty_db) else "INTEGER"
    empty_db.execute_sql('DROP TABLE "decision_tag"')
    empty_db.execute_sql(
        f'CREATE TABLE "decision_tag" ("id" {serial} NOT NULL PRIMARY KEY, '
        '"seq" INTEGER NOT NULL REFERENCES "decision" ("seq"), "name" VARCHAR(80) NOT NULL, '
        '"value" TEXT NOT NULL)'
    )
    empty_db.execute_sql(
        'CREATE INDEX "decision_tag_name_value_seq" ON "decision_tag" ("name", "value", "seq")'
    )
    stored = decisions.append_decisions([make_decision(n) for n in range(1, 8)])
    firm = DecisionFilter(outcome={"tone": "firm"})
    before = [d["seq"] for d in stored if d["outcome"]["tone"] == "firm"]
    tagged_before = empty_db.execute_sql('SELECT count(*) FROM "decision_tag"').fetchone()[0]
    assert stored[0]["prev_hash"] == GENESIS_HASH and before and tagged_before

    assert migrate(empty_db) == [n for n in NUMBERS if n >= 5]
    assert empty_db.execute_sql('SELECT count(*) FROM "decision_tag"').fetchone()[0] == (
        tagged_before
    )
    assert [d["seq"] for d in decisions.query_decisions(firm).items] == before
    more = decisions.append_decisions([make_decision(n) for n in range(20, 22)])
    tagged = decisions.query_decisions(DecisionFilter(rule_id="RT-040")).items
    assert {d["seq"] for d in tagged} == {d["seq"] for d in [*stored, *more]}
    assert decisions.verify_chain() == []


def test_runs_of_an_earlier_release_count_as_planned(empty_db):
    """Migration 10: runs made before it listed their customers in one transaction, so each
    is planned (planned_at = started_at); a new run is not until its customers are listed."""
    from datetime import UTC, datetime

    from storage.runs import Run

    assert migrate(empty_db, target=7)[-1] == 7
    empty_db.execute_sql('ALTER TABLE "run" DROP COLUMN "planned_at"')  # as releases before made it
    started = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    empty_db.execute_sql(
        'INSERT INTO "run" ("run_id", "as_of", "attempt", "state", "requested_by", "rulesets", '
        '"batch_size", "customers_total", "report", "error", "started_at") '
        "VALUES ('r1', '2026-03-02', 1, 'finished', 'test', '{}', 500, 0, '{}', '', "
        "'2026-03-02 01:30:00')"
    )

    assert migrate(empty_db) == [n for n in NUMBERS if n > 7]
    run = Run.get_by_id("r1")
    assert run.planned_at == run.started_at == started
