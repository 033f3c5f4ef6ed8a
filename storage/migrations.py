"""Versioned schema migrations (playhouse.migrate), applied in order by `credo init`.

`schema_version` records each applied migration. Migrations never change once released: a later
schema change is a new numbered function. Migration 1 creates its tables from the models; when a
later migration alters one of those tables, copy that model's version-1 definition into this
module and let migration 1 use the copy, so a fresh database and an upgraded one end up equal.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee as pw
from playhouse import migrate as pwm

from storage.db import LockKey, database, is_postgres, write_lock
from storage.models import (
    ApiKey,
    Contact,
    CreditNote,
    Customer,
    Decision,
    DecisionTag,
    Dispute,
    Hold,
    Installment,
    Invoice,
    Meta,
    Payment,
    PaymentAllocation,
    PaymentPlan,
    Promise,
    RuleSetVersion,
    SchemaVersion,
    now_utc,
)
from storage.runs import RUN_MODELS, Run

MIGRATION_LOCK = LockKey.MIGRATIONS

Migration = Callable[[pw.Database, pwm.SchemaMigrator], None]


def _initial(db: pw.Database, migrator: pwm.SchemaMigrator) -> None:
    db.create_tables(
        [
            Meta,
            Customer,
            Invoice,
            Payment,
            PaymentAllocation,
            CreditNote,
            Dispute,
            Promise,
            PaymentPlan,
            Installment,
            Contact,
            Decision,
            DecisionTag,
            RuleSetVersion,
            ApiKey,
            *RUN_MODELS,
        ]
    )


def _holds(db: pw.Database, migrator: pwm.SchemaMigrator) -> None:
    db.create_tables([Hold])
    # Which decisions a rule-set version made, for simulation and rollback reviews
    # (dropped again by migration 4: no query came to use it)
    pwm.migrate(migrator.add_index("decision", ("ruleset_kind", "ruleset_version"), False))


def _idempotency_keys(db: pw.Database, migrator: pwm.SchemaMigrator) -> None:
    # Imported here: storage.idempotency imports storage.decisions (API-owned module).
    from storage.idempotency import create_table

    create_table(db, migrator)


def _lighter_decision_indexes(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Every index is written by each decision stored. These three served no query: the chain is
    # read by seq and looked up by decision_id; prev_hash stays unique (until migration 7);
    # a kind filter walks seq, where a third of the rows match.
    for name in ("decision_hash", "decision_kind_seq", "decision_ruleset_kind_ruleset_version"):
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def _tags_by_key(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Decision tags keyed by (name, value, seq), without a foreign key (see DecisionTag).
    if is_postgres(db):
        for (constraint,) in db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'decision_tag'::regclass "
            "AND contype = 'f'"
        ).fetchall():
            db.execute_sql(f'ALTER TABLE "decision_tag" DROP CONSTRAINT "{constraint}"')
        has_id = db.execute_sql(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'decision_tag' AND column_name = 'id'"
        ).fetchone()
        if has_id:
            db.execute_sql('ALTER TABLE "decision_tag" DROP COLUMN "id"')  # and its primary key
            db.execute_sql('ALTER TABLE "decision_tag" ADD PRIMARY KEY ("name", "value", "seq")')
        db.execute_sql('DROP INDEX IF EXISTS "decision_tag_name_value_seq"')
        return
    db.execute_sql(
        'CREATE TABLE "decision_tag_new" ("seq" INTEGER NOT NULL, "name" VARCHAR(80) NOT NULL, '
        '"value" TEXT NOT NULL, PRIMARY KEY ("name", "value", "seq")) WITHOUT ROWID'
    )
    db.execute_sql(
        'INSERT OR IGNORE INTO "decision_tag_new" ("seq", "name", "value") '
        'SELECT "seq", "name", "value" FROM "decision_tag"'
    )
    db.execute_sql('DROP TABLE "decision_tag"')
    db.execute_sql('ALTER TABLE "decision_tag_new" RENAME TO "decision_tag"')


def _recent_tags(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Tags of single decisions, keyed by seq first (see RecentDecisionTag).
    without_rowid = "" if is_postgres(db) else " WITHOUT ROWID"
    db.execute_sql(
        'CREATE TABLE "decision_tag_recent" ("seq" BIGINT NOT NULL, "name" VARCHAR(80) NOT NULL, '
        f'"value" TEXT NOT NULL, PRIMARY KEY ("seq", "name", "value")){without_rowid}'
    )


def _unindexed_prev_hash(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # The unique index on prev_hash guarded against a fork that seq, the primary key, already
    # rules out (see Decision.prev_hash). Its keys are random: at millions of decisions each
    # append read and wrote a page of it somewhere, and on SQLite it was a seventh of the
    # pages every decision wrote to the log.
    db.execute_sql('DROP INDEX IF EXISTS "decision_prev_hash"')


def _run_planned_at(db: pw.Database, migrator: pwm.SchemaMigrator) -> None:
    # A run's customers are listed into batches in several transactions now (api.nightly.run);
    # planned_at marks a run whose listing is complete. Runs made before were complete at once.
    # Migration 1 creates the run table from today's model, which has the column already.
    if "planned_at" not in {c.name for c in db.get_columns("run")}:
        pwm.migrate(migrator.add_column("run", "planned_at", Run.planned_at))
    Run.update(planned_at=Run.started_at).where(Run.planned_at.is_null()).execute()


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial schema: ledger, decisions, rule sets, keys, runs", _initial),
    (2, "holds (collections pauses); index decisions by rule-set version", _holds),
    # Added by the HTTP API (storage/idempotency.py): Idempotency-Key of POST /v1/decisions.
    (3, "idempotency keys of decision requests", _idempotency_keys),
    (4, "decisions: drop the indexes no query uses", _lighter_decision_indexes),
    (5, "decision tags keyed by (name, value, seq), without a foreign key", _tags_by_key),
    (6, "recent decision tags: single decisions' tags, moved in batches", _recent_tags),
    (7, "decisions: no index on prev_hash (seq already rules out a fork)", _unindexed_prev_hash),
    (10, "runs: planned_at, set once a run's customers are all in batches", _run_planned_at),
)
LATEST = MIGRATIONS[-1][0]


def current_version(db: pw.Database | None = None) -> int:
    """The highest applied migration, 0 for an empty database."""
    db = _bind(db)
    if not _table_exists(db, SchemaVersion._meta.table_name):
        return 0
    latest = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar()
    return int(latest or 0)


def migrate(db: pw.Database | None = None, target: int | None = None) -> list[int]:
    """Apply every migration up to `target` (default: the latest); return those applied.

    Idempotent, and safe when several processes call it at once: they queue on a lock and
    each re-reads the version under it. All pending migrations apply in one transaction.
    """
    db = _bind(db)
    target = LATEST if target is None else target
    if not 0 <= target <= LATEST:
        raise ValueError(f"target: no migration {target} (latest is {LATEST})")
    applied: list[int] = []
    with write_lock(MIGRATION_LOCK):
        db.create_tables([SchemaVersion])
        done = current_version(db)
        migrator = pwm.SchemaMigrator.from_database(db)
        for version, name, apply in MIGRATIONS:
            if done < version <= target:
                apply(db, migrator)
                SchemaVersion.create(version=version, name=name, applied_at=now_utc())
                applied.append(version)
    return applied


def _table_exists(db: pw.Database, table: str) -> bool:
    if is_postgres(db):  # peewee's table_exists looks in "public", not on the search_path
        return db.execute_sql("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None
    return db.table_exists(table)


def _bind(db: pw.Database | None) -> pw.Database:
    if db is None:
        db = database.obj
        if db is None:
            raise RuntimeError("no database: call storage.db.connect(url) first")
    elif database.obj is not db:
        database.initialize(db)
    return db
