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
from storage.decisions.retention import ChainCheckpoint
from storage.jobs import Job
from storage.models import (
    ID_LENGTH,
    BaseModel,
    Contact,
    CreditNote,
    Customer,
    DecisionTag,
    Dispute,
    Experiment,
    Hold,
    Installment,
    Invoice,
    Meta,
    Payment,
    PaymentAllocation,
    PaymentPlan,
    Promise,
    RuleSetEvent,
    RuleSetFile,
    RuleSetVersion,
    SchemaVersion,
    UtcDateTimeField,
    now_utc,
)
from storage.runs import RUN_MODELS, Run

MIGRATION_LOCK = LockKey.MIGRATIONS

Migration = Callable[[pw.Database, pwm.SchemaMigrator], None]


class _ApiKeyV1(BaseModel):
    """The api_key table as migration 1 made it (migration 9 adds owner and a unique name)."""

    name = pw.CharField(max_length=100)
    role = pw.CharField(max_length=16)
    key_hash = pw.CharField(max_length=64, unique=True)
    prefix = pw.CharField(max_length=16)
    created_at = UtcDateTimeField()
    revoked_at = UtcDateTimeField(null=True)
    last_used_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "api_key"


class _DecisionV1(BaseModel):
    """storage.models.Decision as migration 1 creates it: without the columns of migration 8."""

    seq = pw.BigIntegerField(primary_key=True)
    decision_id = pw.CharField(max_length=ID_LENGTH, unique=True)
    kind = pw.CharField(max_length=64)
    customer_id = pw.CharField(max_length=ID_LENGTH, null=True)
    as_of = pw.DateField()
    outcome = pw.TextField()
    reasons = pw.TextField()
    fired = pw.TextField()
    facts = pw.TextField()
    ruleset_kind = pw.CharField(max_length=64)
    ruleset_version = pw.IntegerField()
    ruleset_sha256 = pw.CharField(max_length=64)
    requested_by = pw.CharField(max_length=200)
    created_at = UtcDateTimeField(index=True)
    engine_us = pw.BigIntegerField()
    prev_hash = pw.CharField(max_length=64)
    hash = pw.CharField(max_length=64)

    class Meta:
        table_name = "decision"
        indexes = ((("customer_id", "kind", "seq"), False),)


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
            _DecisionV1,
            DecisionTag,
            RuleSetVersion,
            _ApiKeyV1,
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
    # Tags of single decisions, keyed by seq first, moved in batches (until migration 8).
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


def _key_owners_and_unique_names(db: pw.Database, migrator: pwm.SchemaMigrator) -> None:
    # A key's name is the requested_by of what it did, so names become unique (revoked keys
    # keep theirs). Releases before this one accepted a name twice: the oldest key keeps it,
    # each later one is renamed "<name>-2", "-3", … (the first such name no key has), and
    # every key's owner is the name it was created with, so a renamed key still shows whose
    # it is. Decisions stored before keep the name they were made with.
    keys = pw.Table("api_key").bind(db)
    pwm.migrate(migrator.add_column("api_key", "owner", pw.CharField(max_length=100, null=True)))
    keys.update(owner=keys.c.name).execute()
    taken = {row["name"] for row in keys.select(keys.c.name)}
    seen: set[str] = set()
    for row in keys.select(keys.c.id, keys.c.name).order_by(keys.c.id):
        name = row["name"]
        if name in seen:
            renamed = _free_name(name, taken)
            keys.update(name=renamed).where(keys.c.id == row["id"]).execute()
            taken.add(renamed)
        seen.add(name)
    pwm.migrate(
        migrator.add_not_null("api_key", "owner"),
        migrator.add_index("api_key", ("name",), True),
    )


def _free_name(name: str, taken: set[str]) -> str:
    """`name-N` for the smallest N >= 2 that no key has, within 100 characters."""
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = name[: 100 - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def _ruleset_events(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # The lifecycle history gets a table of its own: the version table's who/when columns keep
    # one move of each sort (a rollback overwrote the first activation). The moves those
    # columns still show become events, oldest first; the owner is the owner of the key of
    # that name, if there is one. A retirement was stamped with the time of the activation
    # that caused it, whose key is taken as its author.
    versions = pw.Table("rule_set_version").bind(db)
    keys = pw.Table("api_key").bind(db)
    db.create_tables([RuleSetEvent])
    owners = {row["name"]: row["owner"] for row in keys.select(keys.c.name, keys.c.owner)}
    when = RuleSetVersion.created_at.python_value  # the driver's value as an aware datetime
    rows = list(versions.select().order_by(versions.c.kind, versions.c.version))
    activated_by = {(r["kind"], when(r["activated_at"])): r["activated_by"] for r in rows}
    events = []
    for row in rows:
        retired_at = when(row["retired_at"])
        moves = (
            ("drafted", row["created_at"], row["created_by"], row["note"] or ""),
            ("proposed", row["proposed_at"], row["proposed_by"], ""),
            ("approved", row["approved_at"], row["approved_by"], ""),
            ("activated", row["activated_at"], row["activated_by"], ""),
            ("retired", row["retired_at"], activated_by.get((row["kind"], retired_at)), ""),
        )
        for order, (event, at, by, note) in enumerate(moves):
            if at is not None:
                by = by or "unknown"
                fields = {"event": event, "actor": by, "owner": owners.get(by, by), "note": note}
                events.append((when(at), order, row["kind"], row["version"], fields))
    for at, _, kind, version, fields in sorted(events, key=lambda e: e[:2]):
        RuleSetEvent.insert(kind=kind, version=version, at=at, **fields).execute()


def _audit_log(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # The operator log (storage.audit_log): from now on every key, lifecycle move, run, import
    # and demo reset is appended to it. What happened before stays where it was recorded (the
    # rule-set history, the keys' and runs' own dates): the log starts empty.
    from storage.audit_log import AuditEvent

    db.create_tables([AuditEvent])


def _ruleset_files(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Reminder templates and company.toml are stored with the reminder rule set's versions.
    # The versions stored before have none: `credo init` (which runs the migrations) gives
    # them the files of rules/templates, which every run read until now (api.usecases).
    db.create_tables([RuleSetFile])


def _record_formats(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Each decision says which record format its hash signs (storage.decisions.shape): the
    # rows stored so far are format 1, with no `via`.
    db.execute_sql('ALTER TABLE "decision" ADD COLUMN "format" SMALLINT NOT NULL DEFAULT 1')
    db.execute_sql('ALTER TABLE "decision" ADD COLUMN "via" VARCHAR(8)')
    # Decisions' tags are written where searches read them again: the staged ones join them.
    # (WHERE true: SQLite's parser needs it between a SELECT and ON CONFLICT.)
    db.execute_sql(
        'INSERT INTO "decision_tag" ("seq", "name", "value") SELECT "seq", "name", "value" '
        'FROM "decision_tag_recent" WHERE true ON CONFLICT DO NOTHING'
    )
    db.execute_sql('DROP TABLE "decision_tag_recent"')


def _jobs(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Simulations and backtests run as jobs in a process of their own (storage/jobs.py).
    db.create_tables([Job])


def _earlier_decisions(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Decisions of record format 4 keep the facts they took from earlier decisions of the same
    # account (storage.decisions.shape); older rows have none.
    db.execute_sql('ALTER TABLE "decision" ADD COLUMN "earlier" TEXT')


def _explanations(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Decisions of record format 3 carry a plain-language explanation (storage.decisions.shape);
    # older rows have none.
    db.execute_sql('ALTER TABLE "decision" ADD COLUMN "explanation" TEXT')


def _run_planned_at(db: pw.Database, migrator: pwm.SchemaMigrator) -> None:
    # A run's customers are listed into batches in several transactions now (api.nightly.run);
    # planned_at marks a run whose listing is complete. Runs made before were complete at once.
    # Migration 1 creates the run table from today's model, which has the column already.
    if "planned_at" not in {c.name for c in db.get_columns("run")}:
        pwm.migrate(migrator.add_column("run", "planned_at", Run.planned_at))
    Run.update(planned_at=Run.started_at).where(Run.planned_at.is_null()).execute()


def _chain_checkpoints(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Pruning old decisions leaves a checkpoint (the seq and hash at the cut) that verification
    # starts from (storage.decisions.retention).
    db.create_tables([ChainCheckpoint])


def _rollout(db: pw.Database, _migrator: pwm.SchemaMigrator) -> None:
    # Champion/challenger: experiments, at most one challenger version per kind (as at most
    # one active), and the arm that made a decision (record format 5), searched by experiment.
    # Pending activations use rule_set_version.activate_at, there since migration 1.
    db.create_tables([Experiment])
    db.execute_sql(
        'CREATE UNIQUE INDEX "rule_set_version_one_challenger" ON "rule_set_version" ("kind") '
        "WHERE \"state\" = 'challenger'"
    )
    db.execute_sql('ALTER TABLE "decision" ADD COLUMN "arm" VARCHAR(16)')
    db.execute_sql('ALTER TABLE "decision" ADD COLUMN "experiment_id" INTEGER')
    db.execute_sql(
        'CREATE INDEX "decision_experiment" ON "decision" ("experiment_id", "seq") '
        'WHERE "experiment_id" IS NOT NULL'
    )


def _customer_contacts(db: pw.Database, migrator: pwm.SchemaMigrator) -> None:
    # The contact person letters are addressed to. Migration 1 creates the customer table from
    # today's model, which has the columns already.
    have = {c.name for c in db.get_columns("customer")}
    names = ("contact_name", "contact_email", "contact_language", "contact_salutation")
    adds = [
        migrator.add_column("customer", n, getattr(Customer, n)) for n in names if n not in have
    ]
    if adds:
        pwm.migrate(*adds)


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial schema: ledger, decisions, rule sets, keys, runs", _initial),
    (2, "holds (collections pauses); index decisions by rule-set version", _holds),
    # Added by the HTTP API (storage/idempotency.py): Idempotency-Key of POST /v1/decisions.
    (3, "idempotency keys of decision requests", _idempotency_keys),
    (4, "decisions: drop the indexes no query uses", _lighter_decision_indexes),
    (5, "decision tags keyed by (name, value, seq), without a foreign key", _tags_by_key),
    (6, "recent decision tags: single decisions' tags, moved in batches", _recent_tags),
    (7, "decisions: no index on prev_hash (seq already rules out a fork)", _unindexed_prev_hash),
    (8, "decisions: record format and via; staged tags joined to decision_tag", _record_formats),
    (
        9,
        "API keys: an owner each; names unique (later duplicates renamed name-2, …)",
        _key_owners_and_unique_names,
    ),
    (10, "runs: planned_at, set once a run's customers are all in batches", _run_planned_at),
    (12, "jobs: simulations and backtests run by a process of their own", _jobs),
    (13, "rule-set lifecycle events: their own append-only table", _ruleset_events),
    (14, "operator log: keys, lifecycle moves, runs, imports, chained by hash", _audit_log),
    (15, "decisions: the facts taken from earlier decisions (record format 4)", _earlier_decisions),
    (16, "customers: the contact person letters are addressed to", _customer_contacts),
    (17, "rollout: experiments, one challenger per kind, decisions' arm (format 5)", _rollout),
    (18, "rule-set files: reminder templates stored with their version", _ruleset_files),
    (19, "chain checkpoints: where pruning cut the decision chain", _chain_checkpoints),
    (20, "decisions: a plain-language explanation (record format 3)", _explanations),
)
LATEST = MIGRATIONS[-1][0]


def current_version(db: pw.Database | None = None) -> int:
    """The highest applied migration, 0 for an empty database."""
    db = _bind(db)
    if not table_exists(db, SchemaVersion._meta.table_name):
        return 0
    latest = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar()
    return int(latest or 0)


def migrate(db: pw.Database | None = None, target: int | None = None) -> list[int]:
    """Apply every migration up to `target` (default: the latest) that the database has not
    recorded; return those applied.

    Idempotent, and safe when several processes call it at once: they queue on a lock and
    each re-reads the applied versions under it. All pending migrations apply in one
    transaction. A migration numbered below the highest applied one but never applied (changes
    developed side by side land in either order) is applied too.
    """
    db = _bind(db)
    target = LATEST if target is None else target
    if not 0 <= target <= LATEST:
        raise ValueError(f"target: no migration {target} (latest is {LATEST})")
    applied: list[int] = []
    with write_lock(MIGRATION_LOCK):
        db.create_tables([SchemaVersion])
        done = set(SchemaVersion.select(SchemaVersion.version).scalars())
        migrator = pwm.SchemaMigrator.from_database(db)
        for version, name, apply in MIGRATIONS:
            if version not in done and version <= target:
                apply(db, migrator)
                SchemaVersion.create(version=version, name=name, applied_at=now_utc())
                applied.append(version)
    return applied


def table_exists(db: pw.Database, table: str) -> bool:
    """Whether `table` exists (on PostgreSQL: in the schema of the search path)."""
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
