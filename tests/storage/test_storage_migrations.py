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
    empty_db, make_decision, append_format_1
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
    stored = append_format_1([make_decision(n) for n in range(1, 8)])
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


def test_decisions_of_an_earlier_release_keep_verifying_and_their_staged_tags_are_found(
    empty_db, make_decision, append_format_1
):
    """Migration 8: decisions stored before record formats read back as format 1 (no format,
    no via), their hashes verify, new ones (format 2) chain after them; the tags staged in
    decision_tag_recent join decision_tag and the staging table is gone."""
    from engine.trace import GENESIS_HASH
    from storage import decisions
    from storage.decisions import FORMAT, DecisionFilter
    from storage.migrations import table_exists

    assert migrate(empty_db, target=7) == list(range(1, 8))
    old = append_format_1([make_decision(n) for n in range(1, 4)])
    old += append_format_1([make_decision(n) for n in range(4, 6)], "decision_tag_recent")
    assert old[0]["prev_hash"] == GENESIS_HASH and old[3]["prev_hash"] == old[2]["hash"]
    assert migrate(empty_db)[0] == 8

    assert not table_exists(empty_db, "decision_tag_recent")
    assert decisions.get_decision("dec-4") == old[3]
    assert "via" not in old[3] and "format" not in old[3]
    tagged = decisions.query_decisions(DecisionFilter(rule_id="RT-040")).items
    assert [d["decision_id"] for d in tagged] == [f"dec-{n}" for n in range(1, 6)]
    new = decisions.append_decision(make_decision(6))
    assert (new["seq"], new["prev_hash"], new["format"]) == (6, old[-1]["hash"], FORMAT)
    assert decisions.count_decisions(DecisionFilter(outcome={"tone": "friendly"})) == 3
    assert decisions.verify_chain() == []


def test_a_migration_numbered_below_the_highest_applied_is_applied_too(empty_db):
    """Changes developed side by side land in either order: a database that has 13 but not
    12 (12 arrived later) gets 12 on the next migrate, and only 12."""
    from storage.migrations import table_exists
    from storage.models import SchemaVersion

    migrate(empty_db)
    SchemaVersion.delete().where(SchemaVersion.version == 12).execute()
    empty_db.execute_sql('DROP TABLE "job"')
    assert migrate(empty_db) == [12]
    assert table_exists(empty_db, "job")
    assert migrate(empty_db) == []


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
