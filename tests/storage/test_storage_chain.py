"""verify_chain over a chain longer than its window: the same findings whether the rows fit in
memory or are read in a sliding window, and a range that starts after a retention checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.trace import chain_hash
from storage import decisions
from storage.decisions import chain, rehash, retention


def _tamper(db, *statements: str) -> None:
    with db.atomic():
        for statement in statements:
            db.execute_sql(statement)


def _forge_after(db, seq: int) -> None:
    """Renumber the decisions after `seq` one up; a forged copy of `seq`, correctly chained to
    it, takes the free place."""
    from storage.models import Decision

    source = decisions.get_decision(f"dec-{seq}")
    record = {k: v for k, v in source.items() if k not in ("seq", "prev_hash", "hash")}
    record["decision_id"] = "forged"
    _tamper(
        db,
        "DELETE FROM decision_tag",
        f"UPDATE decision SET seq = -seq WHERE seq > {seq}",
        "UPDATE decision SET seq = 1 - seq WHERE seq < 0",
    )
    columns = [f.column_name for f in Decision._meta.sorted_fields]
    chosen = {
        "seq": str(seq + 1),
        "decision_id": "'forged'",
        "hash": f"'{chain_hash(record, source['hash'])}'",
        "prev_hash": f"'{source['hash']}'",
    }
    picked = ", ".join(chosen.get(c, f'"{c}"') for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    _tamper(db, f"INSERT INTO decision ({names}) SELECT {picked} FROM decision WHERE seq = {seq}")


def _swap(db, a: int, b: int) -> None:
    _tamper(
        db,
        f"UPDATE decision SET seq = -1 WHERE seq = {a}",
        f"UPDATE decision SET seq = {a} WHERE seq = {b}",
        f"UPDATE decision SET seq = {b} WHERE seq = -1",
    )


EXPECTED = [
    (5, "dec-5", "altered"),
    (12, None, "deleted"),
    (20, "dec-26", "reordered"),  # the swap of 20 and 26, after the insertion below
    (26, "dec-20", "reordered"),
    (31, "forged", "inserted"),
    (59, "dec-59", "reordered"),  # 58 and 59 swapped: seq 58 now holds dec-58's successor
    (60, "dec-58", "reordered"),
]


@pytest.fixture
def tampered(db, make_decision):
    decisions.append_decisions([make_decision(n) for n in range(1, 61)])
    _tamper(db, "UPDATE decision SET reasons = '[\"changed\"]' WHERE seq = 5")
    _tamper(db, "DELETE FROM decision WHERE seq = 12")
    _forge_after(db, 30)  # dec-31 … dec-60 now at 32 … 61
    _swap(db, 20, 26)
    _swap(db, 59, 60)  # dec-58 and dec-59
    return db


def test_every_kind_is_found_with_any_window(tampered, monkeypatch):
    found = [(p.seq, p.decision_id, p.kind) for p in decisions.verify_chain()]
    assert found == EXPECTED
    for window in (7, 10):  # the swaps lie within the window; rows are forgotten as it slides
        monkeypatch.setattr(chain, "WINDOW", window)
        assert [(p.seq, p.decision_id, p.kind) for p in decisions.verify_chain()] == EXPECTED


def test_a_window_smaller_than_a_move_still_reports_it(tampered, monkeypatch):
    monkeypatch.setattr(chain, "WINDOW", 2)
    seqs = {p.seq for p in decisions.verify_chain()}
    assert {5, 12, 31} <= seqs and seqs & {20, 21} and seqs & {26, 27}


def test_a_range_reports_only_its_rows(tampered):
    assert [p.seq for p in decisions.verify_chain(first_seq=14, last_seq=30)] == [20, 26]
    # Rows around the range are read to judge its rows by; their own problems are not its.
    assert decisions.verify_chain(first_seq=13, last_seq=19) == []
    assert [p.seq for p in decisions.verify_chain(first_seq=12, last_seq=19)] == [12]
    assert decisions.verify_chain(first_seq=32, last_seq=57) == []


def test_after_a_prune_verification_starts_at_the_checkpoint(db, make_decision):
    decisions.append_decisions([make_decision(n) for n in range(1, 21)])
    head = decisions.chain_head()
    through, count = retention.prunable_through(datetime(2024, 4, 15, 2, 0, 10, tzinfo=UTC))
    checkpoint = retention.prune_through(through, datetime(2024, 4, 15, tzinfo=UTC), "test")
    assert (checkpoint.seq, checkpoint.pruned) == (through, count) and 0 < count < 20
    problems: list = []
    scan = chain.scan_chain(problems.append)
    assert problems == [] and scan.first_seq == through + 1 and scan.count == 20 - count
    assert decisions.chain_head() == head
    with pytest.raises(chain.RangeError, match=f"decisions up to #{through} were pruned"):
        decisions.verify_chain(first_seq=1)
    # The first decision kept must still chain to the checkpoint's hash.
    _tamper(db, f"DELETE FROM decision WHERE seq = {through + 1}")
    assert [(p.seq, p.kind) for p in decisions.verify_chain()] == [(through + 1, "deleted")]


def test_the_quick_hash_path_builds_exactly_the_canonical_record(db, make_decision):
    """Verification hashes the columns as stored; it must give the very text the decoded
    record's canonical JSON is, for every column type (whole seconds, awkward text, null)."""
    from engine.trace import canonical_json

    awkward = 'Mahnung für Ü € 🙂 "q" \\ \t\x01'
    decisions.append_decisions(
        [
            make_decision(1, created_at=datetime(2024, 4, 15, 2, 0, 0, tzinfo=UTC)),
            make_decision(2, requested_by=awkward, customer_id=None, reasons=[awkward]),
        ]
    )
    query = chain.Decision.select(*rehash.COLUMNS).order_by(chain.Decision.seq)
    for raw in db.execute_sql(*query.sql()).fetchall():
        record = decisions.get_decision(raw[rehash.INDEX["decision_id"]])
        hashed = {k: v for k, v in record.items() if k not in ("seq", "prev_hash", "hash")}
        assert rehash._stored_canonical(raw) == canonical_json(hashed)
    # A time written in another form than the database's own is read by its codec instead.
    with db.atomic():
        db.execute_sql("UPDATE decision SET created_at = '2024-04-15T02:00:00' WHERE seq = 1")
    assert decisions.verify_chain() == []  # the same moment, however written
