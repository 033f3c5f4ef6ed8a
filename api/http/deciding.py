"""The steps of POST /v1/decisions/{kind}: facts, evaluation, storage, idempotency."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, NamedTuple

import peewee as pw

from api.http.errors import ApiProblem
from api.http.evaluator import ActiveRuleSet, evaluate
from engine.trace import canonical_json


def request_sha256(kind: str, body: dict[str, Any]) -> str:
    """What makes two requests "the same" for an Idempotency-Key: kind and validated body."""
    return hashlib.sha256(canonical_json({"kind": kind, "body": body}).encode()).hexdigest()


def find_replay(requested_by: str, key: str, request_sha: str) -> dict[str, Any] | None:
    """The decision stored earlier for this key and request, if any (409 for another body)."""
    from storage import idempotency
    from storage.errors import Conflict

    try:
        return idempotency.find(requested_by, key, request_sha)
    except Conflict as exc:
        raise ApiProblem(409, str(exc), slug="idempotency-conflict") from exc


def gather_facts(body: dict[str, Any], as_of: date) -> dict[str, Any]:
    """The facts to evaluate (api.usecases.gather_facts), its errors as problems."""
    from api.usecases import UnknownCustomer
    from api.usecases import gather_facts as gather

    try:
        return gather(body.get("customer_id"), body.get("facts"), as_of)
    except UnknownCustomer as exc:
        raise ApiProblem(404, str(exc)) from exc


def decide(
    active: ActiveRuleSet, body: dict[str, Any], as_of: date, requested_by: str
) -> dict[str, Any]:
    """Evaluate the request with one rule-set version; the decision record to store."""
    from api.usecases import build_decision_record

    facts = gather_facts(body, as_of)
    evaluation = evaluate(active, facts)
    return build_decision_record(
        evaluation, active, facts, body.get("customer_id"), as_of, requested_by
    )


class Stored(NamedTuple):
    decision: dict[str, Any]  # as stored: the SPEC §5 fields, seq, prev_hash, hash
    replayed: bool  # an earlier decision, for the same Idempotency-Key and body
    body: str | None = None  # the decision's JSON, when at hand


def store(record: dict[str, Any], requested_by: str, key: str | None, request_sha: str) -> Stored:
    """Append the decision to the chain (once per idempotency key)."""
    from storage import idempotency
    from storage.decisions import append_prepared, as_stored, prepare_decisions, stored_json
    from storage.errors import Conflict

    if not key:
        prepared = prepare_decisions([record])  # encoding, before queueing for the lock
        with _queued_writer():
            placed = append_prepared(prepared)
        body = stored_json(prepared[0], placed[0])
        return Stored(as_stored(prepared[0], placed[0]), False, body)
    with _queued_writer():
        try:
            remembered = idempotency.append_once(record, requested_by, key, request_sha)
        except Conflict as exc:
            raise ApiProblem(409, str(exc), slug="idempotency-conflict") from exc
    return Stored(remembered.decision, remembered.replayed)


_lock_files: dict[tuple[int, str], int] = {}
_lock_files_guard = threading.Lock()


@contextmanager
def _queued_writer() -> Iterator[None]:
    """On SQLite, queue the API's writers of one database file on an flock before they ask
    SQLite for its write lock.

    SQLite makes a writer that finds the file locked sleep and retry (1, 2, 5, 10 ms…), which
    under load costs workers more time asleep than the lock is ever held; a kernel lock hands
    over at once. Other writers (the nightly run) still meet SQLite's own lock and wait as
    before. Threads of one process are serialised by the same lock.
    """
    from storage.db import database

    db = database.obj
    if not isinstance(db, pw.SqliteDatabase) or db.database in ("", ":memory:"):
        yield
        return
    key = (os.getpid(), db.database)
    with _lock_files_guard:
        fd = _lock_files.get(key)
        if fd is None:
            fd = os.open(db.database + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
            _lock_files[key] = fd
    with _thread_lock:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


_thread_lock = threading.Lock()
