"""Decisions: append with the hash chain, read, filter, page, verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.trace import GENESIS_HASH, canonical_json_plain, chain_hash
from storage import decisions
from storage.db import COPY_MIN_ROWS, is_postgres
from storage.decisions import DECISION_FIELDS, DecisionFilter
from storage.errors import InvalidRecord
from storage.models import Decision


def test_append_chains_each_decision_to_the_previous(db, make_decision):
    first = decisions.append_decision(make_decision(1))
    rest = decisions.append_decisions([make_decision(n) for n in range(2, 6)])
    assert first["seq"] == 1 and first["prev_hash"] == GENESIS_HASH
    assert [d["seq"] for d in rest] == [2, 3, 4, 5]
    chain = [first, *rest]
    for before, after in zip(chain, chain[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    hashed = {k: first[k] for k in DECISION_FIELDS}
    assert first["hash"] == chain_hash(hashed, GENESIS_HASH)
    assert decisions.chain_head() == (5, rest[-1]["hash"])
    assert decisions.verify_chain() == []


def test_stored_decision_reads_back_exactly_as_returned(db, make_decision):
    record = make_decision(
        3, created_at=datetime(2024, 4, 15, 4, 0, tzinfo=timezone(timedelta(hours=2)))
    )
    stored = decisions.append_decision(record)
    assert stored["created_at"] == "2024-04-15T02:00:00+00:00"
    assert stored["facts"]["open_balance"] == "1200.50"
    assert stored["facts"]["utilization"] == 1 / 3
    assert decisions.get_decision("dec-3") == stored
    assert decisions.get_decision("nope") is None


@pytest.mark.parametrize("control", ["", "\x1d\x1e\x1f"])
def test_a_bulk_append_stores_awkward_text_and_nulls_exactly(db, make_decision, control):
    # Enough rows for PostgreSQL's COPY path (storage.db.COPY_MIN_ROWS), with every character
    # its text format escapes, non-ASCII text, null facts and a customer id of null; and
    # with the control characters that path uses as stand-ins while it builds its buffer.
    awkward = 'tab\there, new\nline, cr\rreturn, back\\slash \\N, "quoted", Mahnung für Ü €'
    awkward += control
    records = [
        make_decision(
            n,
            reasons=[awkward, f"#{n}"],
            facts={"note": awkward, "gone": None},
            requested_by=awkward,  # a column of plain text, not JSON
        )
        for n in range(1, COPY_MIN_ROWS + 11)
    ]
    records[0]["customer_id"] = None
    stored = decisions.append_decisions(records)
    for expected in (stored[0], stored[-1]):
        assert decisions.get_decision(expected["decision_id"]) == expected
    assert stored[5]["reasons"][0] == awkward and stored[5]["facts"]["gone"] is None
    assert decisions.get_decision(stored[0]["decision_id"])["customer_id"] is None
    assert decisions.verify_chain() == []
    tagged = DecisionFilter(outcome={"tone": "firm"}, rule_id="RT-040")
    assert decisions.count_decisions(tagged) == sum(r["outcome"]["tone"] == "firm" for r in stored)


def test_one_decision_at_a_time_hashes_awkward_text_as_credo_does(db, make_decision):
    # One decision outside a transaction is how the API appends. On PostgreSQL the server
    # computes the chain hash: it must agree with Python's for any text, the first decision
    # of the chain included.
    awkward = "Mahnung für Ü € 🙂, 'quote' \"double\" back\\slash \\n \x01\x1f tab\t end"
    first = decisions.append_decision(make_decision(1, reasons=[awkward], facts={"n": awkward}))
    second = decisions.append_decision(make_decision(2, requested_by=awkward, customer_id=None))
    assert first["prev_hash"] == GENESIS_HASH and second["prev_hash"] == first["hash"]
    for stored in (first, second):
        hashed = {k: stored[k] for k in DECISION_FIELDS}
        assert stored["hash"] == chain_hash(hashed, stored["prev_hash"])
        assert decisions.get_decision(stored["decision_id"]) == stored
    assert decisions.count_decisions(DecisionFilter(rule_id="RT-040")) == 2
    assert decisions.verify_chain() == []


def test_a_writer_with_a_stale_chain_head_cannot_fork_the_chain(db, make_decision):
    # prev_hash has no unique index: seq, the primary key, is what refuses a second decision
    # claiming the same predecessor.
    import peewee as pw

    first = decisions.append_decision(make_decision(1))
    decisions.append_decision(make_decision(2))
    rows, _tags, placed = decisions._chained(
        decisions.prepare_decisions([make_decision(3)]), (first["seq"], first["hash"])
    )
    assert placed[0][1] == first["hash"]  # it would claim decision 1 as its predecessor
    with pytest.raises(pw.IntegrityError), db.atomic():
        decisions.insert_rows(Decision, decisions._COLUMNS, rows)
    assert Decision.select().count() == 2
    assert decisions.verify_chain() == []


def test_searches_find_staged_tags_before_and_after_they_are_settled(db, make_decision):
    # On SQLite, decisions stored a few at a time by a writer that settles them later (the
    # API) stage their tags; a settle moves them into the tag table. No search may tell the
    # difference.
    from storage.models import DecisionTag, RecentDecisionTag

    bulk = decisions.append_decisions([make_decision(n) for n in range(1, 13)])
    single = [decisions.append_decision(make_decision(n), stage_tags=True) for n in range(13, 17)]
    assert decisions.append_decision(make_decision(17))["seq"] == 17  # not staged: the CLI's
    bulk.append(decisions.get_decision("dec-17"))
    staged = RecentDecisionTag.select().count()
    assert staged == (0 if is_postgres() else 3 * len(single))  # tone, cadence_days, rule
    searches = [
        DecisionFilter(outcome={"tone": "firm"}),
        DecisionFilter(outcome={"cadence_days": "7"}, rule_id="RT-040"),
        DecisionFilter(rule_id="RT-040", customer_id="C3"),
        DecisionFilter(outcome={"tone": "none"}),
    ]
    stored = sorted([*bulk, *single], key=lambda d: d["seq"])
    expected = [
        [d["seq"] for d in stored if d["outcome"]["tone"] == "firm"],
        [d["seq"] for d in stored],
        [d["seq"] for d in stored if d["customer_id"] == "C3"],
        [],
    ]
    for search, seqs in zip(searches, expected, strict=True):
        assert [d["seq"] for d in decisions.query_decisions(search).items] == seqs
    tags = DecisionTag.select().count()
    assert decisions.settle_recent_tags() == staged
    assert RecentDecisionTag.select().count() == 0
    assert DecisionTag.select().count() == tags + staged
    for search, seqs in zip(searches, expected, strict=True):
        assert [d["seq"] for d in decisions.query_decisions(search).items] == seqs
        assert decisions.count_decisions(search) == len(seqs)
    assert decisions.settle_recent_tags() == 0
    RecentDecisionTag.insert(decision=1, name="rule", value="RT-040").execute()  # moved before
    assert decisions.settle_recent_tags() == 0 and RecentDecisionTag.select().count() == 0


def test_postgresql_prepares_the_append_again_when_the_server_forgot_it(db, make_decision):
    # A connection pooler in front of PostgreSQL may hand the session to someone else, who
    # discards its prepared statements.
    if not is_postgres():
        pytest.skip("PostgreSQL only: SQLite has no prepared statements on the server")
    decisions.append_decision(make_decision(1))
    db.execute_sql("DEALLOCATE ALL")
    stored = decisions.append_decision(make_decision(2))
    assert stored["seq"] == 2
    # One statement forgotten (two tags), another still there (three tags): PREPARE would
    # refuse to make that one again.
    decisions.append_decision(make_decision(3, fired=[]))
    db.execute_sql("DEALLOCATE credo_append_2")
    assert decisions.append_decision(make_decision(4, fired=[]))["seq"] == 4
    assert decisions.append_decision(make_decision(5))["seq"] == 5
    assert decisions.verify_chain() == []


def test_postgresql_append_commits_early_but_leaves_the_session_as_it_was(db, make_decision):
    # The append commits without waiting for the log flush (the chain lock is free sooner),
    # then waits for it in a second transaction of the same query. Neither the relaxed
    # setting nor an open transaction may outlive the query, even when it fails.
    import peewee as pw

    if not is_postgres():
        pytest.skip("PostgreSQL only: SQLite commits without a server")
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    connection = db.connection()
    first = decisions.append_decision(make_decision(1))
    assert db.execute_sql("SHOW synchronous_commit").fetchone()[0] == "on"
    assert connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    with pytest.raises(pw.IntegrityError):  # the same decision id again
        decisions.append_decision(make_decision(1))
    assert connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
    assert db.execute_sql("SHOW synchronous_commit").fetchone()[0] == "on"
    second = decisions.append_decision(make_decision(2))
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
    assert decisions.verify_chain() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"created_at": datetime(2024, 1, 1)}, "created_at"),
        ({"as_of": "2024-01-01"}, "as_of"),
        ({"decision_id": ""}, "decision_id"),
        ({"facts": {"x": float("nan")}}, "facts"),
        ({"ruleset": {"kind": "reminder"}}, "ruleset"),
        ({"engine_us": -1}, "engine_us"),
    ],
)
def test_malformed_decisions_are_refused_naming_the_field(db, make_decision, change, field):
    with pytest.raises(InvalidRecord) as caught:
        decisions.append_decisions([make_decision(1), make_decision(2, **change)])
    assert caught.value.field == field
    assert Decision.select().count() == 0


def test_filters_and_cursor_pages(db, make_decision):
    decisions.append_decisions([make_decision(n) for n in range(1, 21)])
    decisions.append_decision(
        make_decision(
            21,
            kind="credit",
            outcome={"decision": "refer", "terms_days": 30},
            fired=[],
            ruleset={"kind": "credit", "version": 2, "sha256": "cd" * 32},
        )
    )
    firm = DecisionFilter(kind="reminder", outcome={"tone": "firm"})
    pages, after = [], None
    while True:
        page = decisions.query_decisions(firm, after=after, limit=4)
        pages.append([d["seq"] for d in page.items])
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert pages == [[1, 3, 5, 7], [9, 11, 13, 15], [17, 19]]
    assert decisions.count_decisions(DecisionFilter(outcome={"terms_days": "30"})) == 1
    assert decisions.count_decisions(DecisionFilter(rule_id="RT-040")) == 20
    assert decisions.count_decisions(DecisionFilter(customer_id="C1", kind="reminder")) == 3
    newest = decisions.query_decisions(None, limit=2, newest_first=True)
    assert [d["seq"] for d in newest.items] == [21, 20] and newest.next_cursor == 20
    window = DecisionFilter(
        created_from=datetime(2024, 4, 15, 2, 0, 5, tzinfo=UTC),
        created_to=datetime(2024, 4, 15, 2, 0, 8, tzinfo=UTC),
    )
    assert [d["seq"] for d in decisions.iter_decisions(window, chunk_size=2)] == [5, 6, 7]


def _tamper(db, sql: str) -> None:
    db.execute_sql(sql)


def test_verify_finds_altered_removed_and_reordered_rows(db, make_decision):
    decisions.append_decisions([make_decision(n) for n in range(1, 11)])
    _tamper(
        db, 'UPDATE decision SET outcome = \'{"tone":"demand","cadence_days":7}\' WHERE seq = 3'
    )
    _tamper(db, "UPDATE decision SET facts = '{broken' WHERE seq = 5")
    _tamper(db, "DELETE FROM decision_tag WHERE seq = 7")
    _tamper(db, "DELETE FROM decision WHERE seq = 7")
    problems = decisions.verify_chain()
    assert [(p.seq, "altered" in p.problem) for p in problems] == [
        (3, True),
        (5, True),
        (8, False),
    ]
    assert "#7 to #7 are missing" in str(problems[2])
    assert decisions.verify_chain(first_seq=9) == []
    assert [p.seq for p in decisions.verify_chain(first_seq=4, last_seq=6)] == [5]


def test_verify_finds_two_rows_swapped(db, make_decision):
    decisions.append_decisions([make_decision(n) for n in range(1, 5)])
    # Swap the contents of 2 and 3 by renumbering through a free seq.
    _tamper(db, "DELETE FROM decision_tag")
    _tamper(db, "UPDATE decision SET seq = 100 WHERE seq = 2")
    _tamper(db, "UPDATE decision SET seq = 2 WHERE seq = 3")
    _tamper(db, "UPDATE decision SET seq = 3 WHERE seq = 100")
    problems = decisions.verify_chain()
    assert [p.seq for p in problems] == [2, 3, 4]
    assert all("prev_hash" in p.problem for p in problems)


_TEXT = st.text()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _TEXT,
        st.integers(),
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_the_shortcut_encoding_of_scalars_writes_exactly_the_canonical_json(value):
    """What the hash signs must not depend on which encoder wrote it."""
    from storage.decisions import _scalar_json, tag_value

    assert _scalar_json(value) == canonical_json_plain(value)
    assert tag_value(value) == (value if isinstance(value, str) else json.dumps(value))
