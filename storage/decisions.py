"""Decisions, append-only, in one hash chain (SPEC §5).

Each decision gets the next `seq`, the previous decision's hash as `prev_hash`, and
`hash = engine.trace.chain_hash(<the SPEC §5 fields>, prev_hash)`. Appends are serialised by a
database lock (PostgreSQL advisory lock, SQLite BEGIN IMMEDIATE) taken before the chain head is
read, and `seq` (head + 1, with the head's hash as `prev_hash`) is the primary key, so concurrent
writers can never fork the chain: one with a stale head collides on seq. `verify_chain`
recomputes every hash from the row's columns, so it finds rows altered, removed or reordered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from json.encoder import encode_basestring  # the C function json uses
from typing import Any

import peewee as pw

from engine.trace import (
    GENESIS_HASH,
    canonical_json_plain,
    chain_hash,
    chain_hash_text,
    to_jsonable,
)
from storage.db import (
    LockKey,
    database,
    insert_rows,
    insert_sql,
    insert_statement,
    is_postgres,
    write_lock,
)
from storage.errors import InvalidRecord, StorageError
from storage.models import ID_LENGTH, Decision, DecisionTag, RecentDecisionTag

# The fields a decision is hashed over, as SPEC §5 lists them.
DECISION_FIELDS = (
    "decision_id",
    "kind",
    "customer_id",
    "as_of",
    "outcome",
    "reasons",
    "fired",
    "ruleset",
    "facts",
    "requested_by",
    "created_at",
    "engine_us",
)
CHAIN_LOCK = LockKey.DECISION_CHAIN  # appends to the decision chain queue on it
_READ_CHUNK = 1000


@dataclass(frozen=True)
class DecisionFilter:
    """Which decisions to list: all given conditions hold. `created_from` is inclusive,
    `created_to` exclusive; `outcome` maps an outcome field to its value as text."""

    customer_id: str | None = None
    kind: str | None = None
    outcome: Mapping[str, str] = field(default_factory=dict)
    rule_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True)
class DecisionPage:
    items: list[dict[str, Any]]
    next_cursor: int | None  # pass as `after` for the next page; None on the last page


@dataclass(frozen=True)
class ChainProblem:
    """One row where the chain does not hold."""

    seq: int
    decision_id: str | None
    problem: str

    def __str__(self) -> str:
        return f"decision #{self.seq} ({self.decision_id}): {self.problem}"


def append_decision(record: Mapping[str, Any], *, stage_tags: bool = False) -> dict[str, Any]:
    """Store one decision at the head of the chain; return it as stored (JSON values, with
    seq, prev_hash and hash). `stage_tags`: see append_prepared."""
    prepared = prepare_decisions([record])
    placed = append_prepared(prepared, stage_tags=stage_tags)
    return as_stored(prepared[0], placed[0])


@dataclass(frozen=True)
class PreparedDecision:
    """A decision checked and encoded for the chain, all but its place in it (seq, hashes).

    Preparing is pure CPU work that can happen anywhere (a nightly worker process); appending
    prepared decisions under the chain lock is then only hashing and inserting.
    """

    record: dict[str, Any]  # the SPEC §5 fields as JSON values
    canonical: str  # the record's canonical JSON: what its hash signs
    row: tuple  # the Decision columns (database values); seq, prev_hash, hash left None
    tags: tuple[tuple[str, str], ...]  # (name, value) of DecisionTag

    def for_writer(self) -> PreparedDecision:
        """This decision with only the record fields a writer reads besides the row
        (ids, kind, as_of, outcome): much less to send from a worker process to the writing
        one than the whole record with its facts and trace, which `canonical` and `row` hold."""
        slim = {name: self.record[name] for name in _WRITER_FIELDS}
        return PreparedDecision(slim, self.canonical, self.row, self.tags)


_WRITER_FIELDS = ("decision_id", "kind", "customer_id", "as_of", "outcome")


def prepare_decisions(records: Sequence[Mapping[str, Any]]) -> list[PreparedDecision]:
    """Check and encode decisions; raises InvalidRecord naming the field of the first bad one."""
    memo: dict[int, tuple[Any, Any, str]] = {}
    prepared = []
    for record in records:
        plain, canonical, texts = _prepare(record, memo)
        row = _row_values(record, plain, texts)
        prepared.append(PreparedDecision(plain, canonical, row, _tag_pairs(plain)))
    return prepared


def append_prepared(
    prepared: Sequence[PreparedDecision], *, stage_tags: bool = False
) -> list[tuple[int, str, str]]:
    """Store prepared decisions at the head of the chain, in order, under one lock and in one
    transaction; (seq, prev_hash, hash) of each.

    `stage_tags`, for a writer that settles them later (the API: settle_recent_tags): on
    SQLite, the tags go to RecentDecisionTag."""
    if not prepared:
        return []
    postgres = is_postgres()
    if not database.in_transaction():
        if not postgres:
            return _append_in_one_sqlite_transaction(prepared, stage_tags)
        if len(prepared) == 1:
            return [_append_one_in_one_round_trip(prepared[0])]
        return _append_in_two_round_trips(prepared)
    with write_lock(CHAIN_LOCK):
        rows, tags, placed = _chained(prepared, database.execute_sql(_HEAD_SQL).fetchone())
        insert_rows(Decision, _COLUMNS, rows)
        insert_rows(*_tag_table(stage_tags and not postgres), tags)
    return placed


def _tag_table(staged: bool) -> tuple[type[pw.Model], list[pw.Field]]:
    """Where a decision's tags are written, and its columns: staged or searched."""
    if staged:
        return RecentDecisionTag, _RECENT_TAG_COLUMNS
    return DecisionTag, _TAG_COLUMNS


def _append_in_one_sqlite_transaction(
    prepared: Sequence[PreparedDecision], stage_tags: bool
) -> list[tuple[int, str, str]]:
    """append_prepared on SQLite outside a transaction (an API decision, `credo decide`): the
    same statements in one BEGIN IMMEDIATE transaction, sent straight to the driver's
    connection, without peewee's transaction and query machinery around them (about 20 of an
    API decision's 120 µs here, measured in-process). Errors are peewee's all the same."""
    connection = database.connection()
    decisions_sql = insert_sql(Decision, _COLUMNS)
    tags_sql = insert_sql(*_tag_table(stage_tags))
    with pw.__exception_wrapper__:
        connection.execute("BEGIN IMMEDIATE")
        try:
            rows, tags, placed = _chained(prepared, connection.execute(_HEAD_SQL).fetchone())
            if len(rows) == 1:
                connection.execute(decisions_sql, rows[0])
            else:
                connection.executemany(decisions_sql, rows)
            connection.executemany(tags_sql, tags)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    return placed


def settle_recent_tags() -> int:
    """Move the tags in RecentDecisionTag into DecisionTag, in one transaction; how many.

    Searches give the same answers before and after: they read both tables. Called by the
    API after responses, once its workers have staged a few hundred decisions.
    """
    move = 'INSERT INTO "decision_tag" ("seq", "name", "value") SELECT "seq", "name", "value" '
    # WHERE true: SQLite's parser needs it between a SELECT and ON CONFLICT (3.24+).
    move += 'FROM "decision_tag_recent" WHERE true ON CONFLICT DO NOTHING'
    with write_lock(CHAIN_LOCK):
        moved = database.execute_sql(move).rowcount
        database.execute_sql('DELETE FROM "decision_tag_recent"')
    return moved


def _append_one_in_one_round_trip(decision: PreparedDecision) -> tuple[int, str, str]:
    """append_prepared of one decision on PostgreSQL outside a transaction (an API decision),
    in a single round trip of two transactions:

    1. the chain lock, then a prepared statement that reads the chain head and inserts the
       decision and its tags, committed without waiting for the server to flush its log
       (`SET LOCAL synchronous_commit TO off`): the lock is free for the next writer at once,
       instead of after the flush. Two workers' flushes overlap where they used to queue;
       on two cores the API's decisions went from about 800 to 1,100 a second;
    2. the decision's place in the chain read back, with `txid_current()`: a transaction
       with an id commits with the session's own synchronous_commit, so its commit waits
       until the log is flushed up to it, the decision's commit included (and replicated,
       where the server waits for synchronous standbys). The decision is durable before
       credo answers, as before; each costs one transaction id more.

    The server places the row after the head it finds and computes its chain hash with the
    formula of `engine.trace.chain_hash_text` (SHA-256 over prev_hash, a newline and the
    canonical JSON in UTF-8); the hash that comes back is checked against Python's all the
    same. The statement is prepared once per connection and tag count (its parsing and
    planning cost the server more than its execution); should the server have forgotten it
    (a connection pooler between us and it), it is prepared again and the query retried.
    """
    row = decision.row
    params = [decision.canonical if i == _HASH else row[i] for i in _GIVEN_OR_HASH]
    for name, value in decision.tags:
        params += (name, value)
    params.append(decision.record["decision_id"])
    tag_count = len(decision.tags)
    cursor = database.cursor()
    with pw.__exception_wrapper__:
        try:
            _execute_append(cursor, tag_count, params)
        except Exception as exc:
            if getattr(exc, "pgcode", None) != _UNKNOWN_STATEMENT:
                raise
            _forget_prepared(cursor.connection)
            _execute_append(cursor, tag_count, params)
        seq, prev, digest, _ = cursor.fetchone()
    if digest != chain_hash_text(decision.canonical, prev):
        raise StorageError(
            f"PostgreSQL hashed decision {seq} differently from credo: check the database's "
            "encoding, run `credo verify` and report this"
        )
    return seq, prev, digest


_UNKNOWN_STATEMENT = "26000"  # SQLSTATE invalid_sql_statement_name
# Tag counts whose append statement each connection (id, server process id) has prepared.
_PREPARED_ON: dict[tuple[int, int], set[int]] = {}


def _execute_append(cursor: Any, tag_count: int, params: list) -> None:
    """The query of `_append_one_in_one_round_trip`; `params` end with the decision id. A
    failure rolls back what the query began."""
    connection = cursor.connection
    key = (id(connection), connection.get_backend_pid())
    prepared = _PREPARED_ON.get(key)
    if prepared is None:
        if len(_PREPARED_ON) > 256:  # keys of connections closed since
            _PREPARED_ON.clear()
        prepared = _PREPARED_ON[key] = set()
    if tag_count not in prepared:
        cursor.execute(_append_statement(tag_count))
        prepared.add(tag_count)
    placeholders = ", ".join(["%s"] * (len(params) - 1))
    try:
        cursor.execute(
            f"BEGIN; SELECT pg_advisory_xact_lock({CHAIN_LOCK}); "
            "SET LOCAL synchronous_commit TO off; "
            f"EXECUTE credo_append_{tag_count}({placeholders}); COMMIT; "
            'SELECT "seq", "prev_hash", "hash", txid_current() FROM "decision" '
            'WHERE "decision_id" = %s',
            params,
        )
    except Exception:
        from psycopg2.extensions import TRANSACTION_STATUS_IDLE

        if connection.get_transaction_status() != TRANSACTION_STATUS_IDLE:  # BEGIN stays open
            try:
                cursor.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the connection is gone: nothing to roll back
                pass
        raise


def _forget_prepared(connection: Any) -> None:
    """Start this connection's prepared statements afresh, on the server too: it forgot one
    (a pooler gave us another session) and may still hold others, which PREPARE refuses."""
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    _PREPARED_ON.pop((id(connection), connection.get_backend_pid()), None)


def _append_statement(tag_count: int) -> str:
    """PREPARE of the insert for `_append_one_in_one_round_trip`, for `tag_count` tags; its
    parameters: the row's values except seq and prev_hash, the canonical JSON in the hash's
    place, then each tag's name and value."""
    numbers = iter(range(1, len(_GIVEN_OR_HASH) + 2 * tag_count + 1))
    server = {_SEQ: "head.seq", _PREV: "head.prev"}
    values = []
    for i in range(len(_COLUMNS)):
        if i == _HASH:
            values.append(
                f"encode(sha256(convert_to(head.prev || chr(10) || ${next(numbers)}, 'UTF8')), "
                "'hex')"
            )
        else:
            values.append(server.get(i) or f"${next(numbers)}")
    names = ", ".join(f'"{f.column_name}"' for f in _COLUMNS)
    sql = (
        f"PREPARE credo_append_{tag_count} AS "
        f"WITH head AS (SELECT coalesce(h.seq, 0) + 1 AS seq, coalesce(h.hash, '{GENESIS_HASH}')"
        f" AS prev FROM (SELECT 1) AS one LEFT JOIN ({_HEAD_SQL}) AS h ON true), "
        f'd AS (INSERT INTO "decision" ({names}) SELECT {", ".join(values)} FROM head '
        'RETURNING "seq", "prev_hash", "hash")'
    )
    if tag_count:
        tags = ", ".join(f"(${next(numbers)}, ${next(numbers)})" for _ in range(tag_count))
        sql += (
            ', t AS (INSERT INTO "decision_tag" ("seq", "name", "value") '
            f"SELECT d.seq, v.name, v.value FROM d CROSS JOIN (VALUES {tags}) AS v(name, value))"
        )
    return sql + ' SELECT "seq", "prev_hash", "hash" FROM d'


def _append_in_two_round_trips(prepared: Sequence[PreparedDecision]) -> list[tuple[int, str, str]]:
    """append_prepared of several decisions on PostgreSQL outside a transaction. Every other
    writer of the chain waits while its lock is held, so it is held for two round trips rather
    than six: BEGIN, the lock and the chain head in one; the inserts and COMMIT in the other."""
    cursor = database.cursor()
    with pw.__exception_wrapper__:
        cursor.execute(f"BEGIN; SELECT pg_advisory_xact_lock({CHAIN_LOCK}); {_HEAD_SQL}")
        try:
            rows, tags, placed = _chained(prepared, cursor.fetchone())
            statements = [insert_statement(Decision, _COLUMNS, rows)]
            if tags:
                statements.append(insert_statement(DecisionTag, _TAG_COLUMNS, tags))
            cursor.execute("; ".join([*statements, "COMMIT"]))
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the connection is gone: nothing to roll back
                pass
            raise
    return placed


def _chained(
    prepared: Sequence[PreparedDecision], head: tuple | None
) -> tuple[list[list], list[tuple], list[tuple[int, str, str]]]:
    """Decision rows and tag rows of `prepared` placed after the chain's `head` (seq, hash),
    and (seq, prev_hash, hash) of each."""
    seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
    rows, tags, placed = [], [], []
    for decision in prepared:
        seq += 1
        digest = chain_hash_text(decision.canonical, prev)
        row = list(decision.row)
        row[_SEQ], row[_PREV], row[_HASH] = seq, prev, digest
        rows.append(row)
        tags.extend((seq, name, value) for name, value in decision.tags)
        placed.append((seq, prev, digest))
        prev = digest
    return rows, tags, placed


def append_decisions(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Store decisions in the given order, under one lock and in one transaction; return them
    as stored (JSON values, with seq, prev_hash and hash)."""
    prepared = prepare_decisions(records)
    placed = append_prepared(prepared)
    return [as_stored(d, p) for d, p in zip(prepared, placed, strict=True)]


def as_stored(decision: PreparedDecision, placed: tuple[int, str, str]) -> dict[str, Any]:
    """A prepared decision as stored, from its place (seq, prev_hash, hash) in the chain."""
    seq, prev, digest = placed
    return {**decision.record, "seq": seq, "prev_hash": prev, "hash": digest}


def stored_json(decision: PreparedDecision, placed: tuple[int, str, str]) -> str:
    """as_stored as JSON text: the canonical JSON the hash signs, then seq, prev_hash and hash
    (no second encoding of facts and trace)."""
    seq, prev, digest = placed
    return f'{decision.canonical[:-1]},"seq":{seq},"prev_hash":"{prev}","hash":"{digest}"}}'


_HEAD_SQL = 'SELECT "seq", "hash" FROM "decision" ORDER BY "seq" DESC LIMIT 1'
_COLUMNS = Decision._meta.sorted_fields
_NAMES = [f.name for f in _COLUMNS]
_SEQ, _PREV, _HASH = _NAMES.index("seq"), _NAMES.index("prev_hash"), _NAMES.index("hash")
# Columns whose value the one-round-trip query is given: all but seq and prev_hash (the
# server's), the hash's place taking the canonical JSON the server hashes.
_GIVEN_OR_HASH = [i for i in range(len(_COLUMNS)) if i not in (_SEQ, _PREV)]
_TAG_COLUMNS = [DecisionTag.decision, DecisionTag.name, DecisionTag.value]
_RECENT_TAG_COLUMNS = [RecentDecisionTag.decision, RecentDecisionTag.name, RecentDecisionTag.value]


def _prepare(
    record: Mapping[str, Any], memo: dict[int, tuple[Any, Any, str]]
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """The SPEC §5 fields as JSON values, checked, their canonical JSON, and the canonical JSON
    of each field by name; raises InvalidRecord naming the field."""
    missing = [name for name in DECISION_FIELDS if name not in record]
    if missing:
        raise InvalidRecord(missing[0], "missing")
    _check_text(record, "decision_id", ID_LENGTH)
    _check_text(record, "kind", 64)
    _check_text(record, "requested_by", 200, allow_empty=True)
    if record["customer_id"] is not None:
        _check_text(record, "customer_id", ID_LENGTH)
    as_of = record["as_of"]
    if not isinstance(as_of, date) or isinstance(as_of, datetime):
        raise InvalidRecord("as_of", f"expected a date, got {as_of!r}")
    created = record["created_at"]
    if not isinstance(created, datetime) or created.tzinfo is None:
        raise InvalidRecord("created_at", "expected an aware datetime (UTC)")
    for name, kind in (("outcome", dict), ("facts", dict), ("reasons", list), ("fired", list)):
        if not isinstance(record[name], kind):
            raise InvalidRecord(name, f"expected a {kind.__name__}")
    if not all(isinstance(f, dict) and isinstance(f.get("id"), str) for f in record["fired"]):
        raise InvalidRecord("fired", "each fired rule must be an object with an id")
    ruleset = record["ruleset"]
    if not (
        isinstance(ruleset, Mapping)
        and isinstance(ruleset.get("kind"), str)
        and isinstance(ruleset.get("version"), int)
        and isinstance(ruleset.get("sha256"), str)
    ):
        raise InvalidRecord("ruleset", "expected {kind, version, sha256}")
    engine_us = record["engine_us"]
    if not isinstance(engine_us, int) or isinstance(engine_us, bool) or engine_us < 0:
        raise InvalidRecord("engine_us", "expected a non-negative integer")
    prepared = {name: record[name] for name in DECISION_FIELDS}
    prepared["as_of"] = as_of.isoformat()
    prepared["created_at"] = created.astimezone(UTC).isoformat()
    prepared["ruleset"] = {k: ruleset[k] for k in ("kind", "version", "sha256")}
    texts: dict[str, str] = {}
    try:
        for name in _JSON_PARTS:
            prepared[name], texts[name] = _encode(prepared[name], memo)
        for name in _SORTED_FIELDS:
            if name not in texts:
                texts[name] = _scalar_json(prepared[name])
    except (TypeError, ValueError) as exc:
        raise InvalidRecord("facts", f"not representable as JSON: {exc}") from None
    # The record's canonical JSON, from its fields' (sorted keys, as canonical_json writes it)
    canonical = "{" + ",".join(f'"{name}":{texts[name]}' for name in _SORTED_FIELDS) + "}"
    return prepared, canonical, texts


_JSON_PARTS = ("outcome", "reasons", "fired", "facts")
_SORTED_FIELDS = tuple(sorted(DECISION_FIELDS))


def _encode(value: Any, memo: dict[int, tuple[Any, Any, str]]) -> tuple[Any, str]:
    """A field as JSON values and its canonical JSON text. `memo` shares the work for an object
    several records hold (a customer's facts, decided by three rule sets); values that are not
    JSON yet (Decimal, dates) are converted first."""
    hit = memo.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1], hit[2]
    try:
        plain, text = value, canonical_json_plain(value)
    except TypeError:
        plain = to_jsonable(value)
        text = canonical_json_plain(plain)
    memo[id(value)] = (value, plain, text)
    return plain, text


def _scalar_json(value: Any) -> str:
    """canonical_json_plain of one field, without the encoder's set-up cost for the common
    scalars (strings, integers, null): the same text, a fraction of the time."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return canonical_json_plain(value)


def _row_values(record: Mapping[str, Any], plain: dict[str, Any], texts: dict) -> tuple:
    """The Decision columns as database values, in _COLUMNS order; seq and hashes None."""
    ruleset = plain["ruleset"]
    return (
        None,
        plain["decision_id"],
        plain["kind"],
        plain["customer_id"],
        record["as_of"],  # a date (checked), as DateField stores it
        texts["outcome"],
        texts["reasons"],
        texts["fired"],
        texts["facts"],
        ruleset["kind"],
        ruleset["version"],
        ruleset["sha256"],
        plain["requested_by"],
        _CREATED_AT_DB(record["created_at"]),
        plain["engine_us"],
        None,
        None,
    )


_ROW_ORDER = (
    "seq",
    "decision_id",
    "kind",
    "customer_id",
    "as_of",
    "outcome",
    "reasons",
    "fired",
    "facts",
    "ruleset_kind",
    "ruleset_version",
    "ruleset_sha256",
    "requested_by",
    "created_at",
    "engine_us",
    "prev_hash",
    "hash",
)
if tuple(_NAMES) != _ROW_ORDER:  # _row_values builds rows in this order
    raise RuntimeError(f"Decision columns changed: {_NAMES}; update _row_values")
_CREATED_AT_DB = Decision.created_at.db_value


def _check_text(record: Mapping[str, Any], name: str, limit: int, allow_empty=False) -> None:
    value = record[name]
    if not isinstance(value, str) or len(value) > limit or (not value and not allow_empty):
        raise InvalidRecord(name, f"expected a string of 1 to {limit} characters")


def tag_value(value: Any) -> str:
    """How an outcome value is matched by a filter: strings as they are, others as JSON."""
    if isinstance(value, str):
        return value
    return _scalar_json(value) if type(value) is int or value is None else json.dumps(value)


def _tag_pairs(d: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(name, value) of the DecisionTag rows of a decision's JSON values."""
    tags = [(f"outcome.{k}", tag_value(v)) for k, v in d["outcome"].items()]
    return (*tags, *(("rule", rule_id) for rule_id in dict.fromkeys(f["id"] for f in d["fired"])))


# --- reading ----------------------------------------------------------------------------------


def to_record(row: Decision) -> dict[str, Any]:
    """A stored decision as JSON values: the SPEC §5 fields plus seq, prev_hash and hash."""
    return {
        "seq": row.seq,
        **_decision_json(row.__data__),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _decision_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """The SPEC §5 fields, as hashed, from a row's values by field name."""
    return {
        "decision_id": values["decision_id"],
        "kind": values["kind"],
        "customer_id": values["customer_id"],
        "as_of": values["as_of"].isoformat(),
        "outcome": values["outcome"],
        "reasons": values["reasons"],
        "fired": values["fired"],
        "ruleset": {
            "kind": values["ruleset_kind"],
            "version": values["ruleset_version"],
            "sha256": values["ruleset_sha256"],
        },
        "facts": values["facts"],
        "requested_by": values["requested_by"],
        "created_at": values["created_at"].isoformat(),
        "engine_us": values["engine_us"],
    }


def get_decision(decision_id: str) -> dict[str, Any] | None:
    """One decision by its id, or None."""
    row = Decision.get_or_none(Decision.decision_id == decision_id)
    return to_record(row) if row else None


def _filtered(filters: DecisionFilter) -> pw.ModelSelect:
    query = Decision.select()
    if filters.customer_id is not None:
        query = query.where(Decision.customer_id == filters.customer_id)
    if filters.kind is not None:
        query = query.where(Decision.kind == filters.kind)
    tags = [(f"outcome.{k}", str(v)) for k, v in filters.outcome.items()]
    if filters.rule_id is not None:
        tags.append(("rule", filters.rule_id))
    for name, value in tags:
        tagged = DecisionTag.select(DecisionTag.decision).where(
            (DecisionTag.name == name) & (DecisionTag.value == value)
        )
        recent = RecentDecisionTag.select(RecentDecisionTag.decision).where(
            (RecentDecisionTag.name == name) & (RecentDecisionTag.value == value)
        )
        query = query.where(Decision.seq.in_(tagged) | Decision.seq.in_(recent))
    if filters.created_from is not None:
        query = query.where(Decision.created_at >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(Decision.created_at < filters.created_to)
    return query


def query_decisions(
    filters: DecisionFilter | None = None,
    *,
    after: int | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> DecisionPage:
    """One page of matching decisions in seq order; `after` is the previous page's cursor."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = _filtered(filters or DecisionFilter())
    if after is not None:
        query = query.where(Decision.seq < after if newest_first else Decision.seq > after)
    order = Decision.seq.desc() if newest_first else Decision.seq
    rows = list(query.order_by(order).limit(limit + 1))
    items = [to_record(row) for row in rows[:limit]]
    next_cursor = items[-1]["seq"] if len(rows) > limit else None
    return DecisionPage(items, next_cursor)


def iter_decisions(
    filters: DecisionFilter | None = None, chunk_size: int = _READ_CHUNK
) -> Iterator[dict[str, Any]]:
    """Every matching decision in seq order, read in chunks (for exports of any size)."""
    after = None
    while True:
        page = query_decisions(filters, after=after, limit=chunk_size)
        yield from page.items
        if page.next_cursor is None:
            return
        after = page.next_cursor


def count_decisions(filters: DecisionFilter | None = None) -> int:
    """How many decisions match."""
    return _filtered(filters or DecisionFilter()).count()


def chain_head() -> tuple[int, str]:
    """The last decision's seq and hash; (0, GENESIS_HASH) when none is stored."""
    head = Decision.select(Decision.seq, Decision.hash).order_by(Decision.seq.desc()).first()
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


# --- verification -----------------------------------------------------------------------------

_CHAIN_COLUMNS = (
    Decision.seq,
    Decision.decision_id,
    Decision.kind,
    Decision.customer_id,
    Decision.as_of,
    Decision.outcome,
    Decision.reasons,
    Decision.fired,
    Decision.ruleset_kind,
    Decision.ruleset_version,
    Decision.ruleset_sha256,
    Decision.facts,
    Decision.requested_by,
    Decision.created_at,
    Decision.engine_us,
    Decision.prev_hash,
    Decision.hash,
)


def verify_chain(first_seq: int | None = None, last_seq: int | None = None) -> list[ChainProblem]:
    """Check the chain from `first_seq` to `last_seq` (default: all); [] when it holds.

    Each row's hash is recomputed from its columns (finds altered rows), its prev_hash compared
    with the hash of the row before it and seq numbers checked for gaps (finds removed, inserted
    or reordered rows). Removing the newest rows leaves a valid shorter chain: compare
    `chain_head()` with a copy kept elsewhere to detect that.
    """
    prev_seq, prev_hash = 0, GENESIS_HASH
    after = None
    if first_seq is not None and first_seq > 1:
        after = first_seq - 1
        before = (
            Decision.select(Decision.seq, Decision.hash)
            .where(Decision.seq < first_seq)
            .order_by(Decision.seq.desc())
            .first()
        )
        if before is not None:
            prev_seq, prev_hash = before.seq, before.hash
    problems: list[ChainProblem] = []
    while True:
        query = Decision.select(*_CHAIN_COLUMNS).order_by(Decision.seq).limit(_READ_CHUNK)
        if after is not None:
            query = query.where(Decision.seq > after)
        if last_seq is not None:
            query = query.where(Decision.seq <= last_seq)
        # Raw rows: a tampered column must become a problem, not an exception while reading.
        rows = database.execute_sql(*query.sql()).fetchall()
        if not rows:
            return problems
        for raw in rows:
            problems.extend(_check_row(raw, prev_seq, prev_hash))
            prev_seq, prev_hash = raw[0], raw[-1]
        after = rows[-1][0]


def _check_row(raw: tuple, prev_seq: int, prev_hash: str) -> list[ChainProblem]:
    seq, decision_id, stored_prev, stored_hash = raw[0], raw[1], raw[-2], raw[-1]
    found = []
    if seq != prev_seq + 1:
        found.append(
            f"decisions #{prev_seq + 1} to #{seq - 1} are missing (removed)"
            if seq > prev_seq + 1
            else f"out of sequence after decision #{prev_seq}"
        )
    elif stored_prev != prev_hash:
        found.append(
            f"prev_hash does not match the hash of decision #{prev_seq} "
            "(a decision was removed, inserted or reordered)"
        )
    try:
        record = _raw_record(raw)
    except (TypeError, ValueError, AttributeError) as exc:
        found.append(f"contents unreadable ({exc}): the row was altered")
    else:
        if chain_hash(record, stored_prev) != stored_hash:
            found.append("hash does not match the decision's contents: the row was altered")
    return [ChainProblem(seq, decision_id, problem) for problem in found]


def _raw_record(raw: tuple) -> dict[str, Any]:
    columns = zip(_CHAIN_COLUMNS, raw, strict=True)
    return _decision_json({column.name: column.python_value(value) for column, value in columns})
