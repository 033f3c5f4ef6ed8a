"""The operator log (storage.audit_log): appended in order under its lock, hash-chained the way
decisions are, and every kind of tampering with its rows in SQL found by verify_audit_log, on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

import pytest

from engine.trace import GENESIS_HASH, canonical_json
from storage import audit_log, keys, rulesets
from storage.db import database
from storage.errors import InvalidRecord


def _fill(count: int = 5) -> list[dict]:
    return [
        audit_log.append_event("run.started", f"actor-{n}", {"run_id": f"r{n}", "as_of": "2024"})
        for n in range(1, count + 1)
    ]


def test_events_are_chained_with_the_decisions_hash_formula(db):
    first, second = _fill(2)
    assert (first["seq"], first["prev_hash"]) == (1, GENESIS_HASH)
    assert second["prev_hash"] == first["hash"]
    record = {k: first[k] for k in ("format", "at", "actor", "kind", "details")}
    recomputed = hashlib.sha256(
        (GENESIS_HASH + "\n" + canonical_json(record)).encode("utf-8")
    ).hexdigest()
    assert recomputed == first["hash"]
    stored = audit_log.query_events().items
    assert stored == [first, second]  # read back exactly as appended
    assert audit_log.verify_audit_log() == []
    assert audit_log.log_head() == (2, second["hash"])


def test_a_lifecycle_event_and_a_key_are_logged_in_their_own_transaction(db):
    rulesets.create_version("credit", "a", "1" * 64, created_by="ann")
    rulesets.record_event("credit", 1, "drafted", by="ann-key", owner="ann", note="why")
    _key, info = keys.create_key("bob", "approver", actor="credo keys")
    keys.revoke_key(info.id, actor="someone")
    keys.revoke_key(info.id, actor="someone")  # revoking again changes nothing: no event
    events = audit_log.query_events().items
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("ruleset.drafted", "ann-key"),
        ("key.created", "credo keys"),
        ("key.revoked", "someone"),
    ]
    assert events[0]["details"] == {
        "ruleset": "credit",
        "version": 1,
        "owner": "ann",
        "note": "why",
        "event_id": 1,
    }
    assert events[1]["details"] == {
        "id": info.id,
        "name": "bob",
        "owner": "bob",
        "role": "approver",
    }


def test_a_move_that_fails_leaves_no_event(db):
    with pytest.raises(ValueError, match="event"):
        rulesets.record_event("credit", 1, "published", by="x", owner="x")
    with pytest.raises(ValueError, match="name"):
        keys.create_key("=HYPERLINK(1)", "decide")
    assert audit_log.query_events().items == []


def test_the_kind_filter_takes_a_kind_or_everything_under_it(db):
    audit_log.append_event("ruleset.approved", "a")
    audit_log.append_event("ruleset.activated", "a")
    audit_log.append_event("rulesets_x", "a")  # not under "ruleset"
    audit_log.append_event("run.started", "b")
    kinds = lambda f: [e["kind"] for e in audit_log.iter_events(f)]  # noqa: E731
    assert kinds(audit_log.EventFilter(kind="ruleset")) == ["ruleset.approved", "ruleset.activated"]
    assert kinds(audit_log.EventFilter(kind="ruleset.activated")) == ["ruleset.activated"]
    assert kinds(audit_log.EventFilter(kind="run", actor="b")) == ["run.started"]
    later = datetime(2999, 1, 1, tzinfo=UTC)
    assert kinds(audit_log.EventFilter(at_from=later)) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kind", "Key Created", "dotted lowercase"),
        ("actor", "", "1 to 200"),
        ("actor", "x\x00y", "NUL"),
        ("details", {"note": "lone \ud800"}, "lone surrogate"),
        ("details", {"x": {1, 2}}, "not representable"),
    ],
)
def test_a_bad_event_is_refused_naming_the_member(db, field, value, message):
    given = {"kind": "key.created", "actor": "a", "details": {}, field: value}
    with pytest.raises(InvalidRecord, match=message) as raised:
        audit_log.append_event(given["kind"], given["actor"], given["details"])
    assert raised.value.field == field
    assert audit_log.query_events().items == []


def _problems() -> list[tuple[int, str]]:
    return [(p.seq, p.problem) for p in audit_log.verify_audit_log()]


def test_altered_details_actor_or_time_are_found(db):
    _fill()
    database.execute_sql("""UPDATE audit_event SET details = '{"run_id":"rX"}' WHERE seq = 2""")
    database.execute_sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 4")
    found = _problems()
    assert [seq for seq, _ in found] == [2, 4]
    assert all("hash does not match" in problem for _, problem in found)


def test_an_altered_time_is_found(db):
    _fill()
    database.execute_sql("UPDATE audit_event SET at = '2001-01-01 00:00:00' WHERE seq = 3")
    assert [seq for seq, _ in _problems()] == [3]


def test_a_deleted_event_is_found(db):
    _fill()
    database.execute_sql("DELETE FROM audit_event WHERE seq = 3")
    assert _problems() == [(4, "events #3 to #3 are missing (removed)")]


def test_two_swapped_events_are_found(db):
    _fill()
    # Exchange the contents of #2 and #3, keeping their seq (a reordering).
    rows = {
        seq: row
        for seq, *row in database.execute_sql(
            "SELECT seq, at, actor, kind, details, prev_hash, hash FROM audit_event "
            "WHERE seq IN (2, 3)"
        ).fetchall()
    }
    for seq, other in ((2, 3), (3, 2)):
        at, actor, kind, details, prev_hash, digest = rows[other]
        database.execute_sql(
            "UPDATE audit_event SET at = ?, actor = ?, kind = ?, details = ?, prev_hash = ?, "
            "hash = ? WHERE seq = ?".replace("?", _placeholder()),
            (at, actor, kind, details, prev_hash, digest, seq),
        )
    found = _problems()
    assert [seq for seq, _ in found][:1] == [2]
    assert any("prev_hash does not match" in problem for _, problem in found)


def test_an_inserted_event_is_found(db):
    _fill(3)
    forged = audit_log.append_event("key.created", "mallory", {"name": "backdoor"})
    # Re-number the forged event into the middle: #2 .. #4 move up by one.
    for seq in (3, 2):
        database.execute_sql(f"UPDATE audit_event SET seq = seq + 10 WHERE seq = {seq}")
    database.execute_sql(f"UPDATE audit_event SET seq = 2 WHERE seq = {forged['seq']}")
    for seq in (12, 13):
        database.execute_sql(f"UPDATE audit_event SET seq = {seq - 9} WHERE seq = {seq}")
    found = _problems()
    assert found and found[0][0] == 2
    assert "prev_hash does not match" in found[0][1]


def test_unreadable_contents_are_a_problem_not_a_crash(db):
    _fill(2)
    database.execute_sql("UPDATE audit_event SET details = 'not json' WHERE seq = 1")
    found = _problems()
    assert found[0][0] == 1 and "unreadable" in found[0][1]


def test_a_range_is_verified_from_the_event_before_it(db):
    _fill(6)
    database.execute_sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 2")
    assert [p.seq for p in audit_log.verify_audit_log(4, 6)] == []
    assert [p.seq for p in audit_log.verify_audit_log(2, 3)] == [2]
    assert json.loads(json.dumps(audit_log.verify_audit_log()[0].to_json()))["seq"] == 2


def _placeholder() -> str:
    from storage.db import is_postgres

    return "%s" if is_postgres() else "?"


def test_concurrent_writers_keep_one_chain(db):
    """Threads (each with its own connection) appending at once: every event is placed, in one
    chain, none lost to a collision on seq."""
    import threading

    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(15):
                audit_log.append_event("import.done", f"worker-{worker}", {"n": n})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert audit_log.log_head()[0] == 60
    assert audit_log.verify_audit_log() == []


def test_a_run_is_logged_whatever_its_requester_and_however_long_its_error(db):
    from storage.nightly import create_run, finish_run

    run = create_run(date(2024, 6, 3), "", {}, 10)
    finish_run(run.run_id, "failed", {}, "OperationalError: " + "x" * 5000)
    started, failed = audit_log.query_events().items
    assert (started["kind"], started["actor"]) == ("run.started", "unknown")
    assert (failed["kind"], failed["actor"]) == ("run.failed", "unknown")
    assert failed["details"]["error"] == ("OperationalError: " + "x" * 5000)[:2000]
    assert failed["details"]["as_of"] == "2024-06-03"
    assert audit_log.verify_audit_log() == []
