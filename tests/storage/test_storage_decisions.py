"""Decisions: append with the hash chain, read, filter, page, verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.trace import GENESIS_HASH, canonical_json, canonical_json_plain, chain_hash
from storage import decisions
from storage.db import COPY_MIN_ROWS
from storage.decisions import DecisionFilter
from storage.errors import InvalidRecord
from storage.models import Decision, JSONText


def hashed(stored: dict) -> dict:
    """The record a stored decision's hash signs: all of it but its place in the chain."""
    return {k: v for k, v in stored.items() if k not in ("seq", "prev_hash", "hash")}


def test_append_chains_each_decision_to_the_previous(db, make_decision):
    first = decisions.append_decision(make_decision(1))
    rest = decisions.append_decisions([make_decision(n) for n in range(2, 6)])
    assert first["seq"] == 1 and first["prev_hash"] == GENESIS_HASH
    assert [d["seq"] for d in rest] == [2, 3, 4, 5]
    chain = [first, *rest]
    for before, after in zip(chain, chain[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    assert first["hash"] == chain_hash(hashed(first), GENESIS_HASH)
    assert (first["format"], first["via"], first["earlier"]) == (decisions.FORMAT, "api", [])
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


def test_one_decision_at_a_time_stores_awkward_text_exactly(db, make_decision):
    awkward = "Mahnung für Ü € 🙂, 'quote' \"double\" back\\slash \\n \x01\x1f tab\t end"
    first = decisions.append_decision(make_decision(1, reasons=[awkward], facts={"n": awkward}))
    second = decisions.append_decision(make_decision(2, requested_by=awkward, customer_id=None))
    assert first["prev_hash"] == GENESIS_HASH and second["prev_hash"] == first["hash"]
    for stored in (first, second):
        assert stored["hash"] == chain_hash(hashed(stored), stored["prev_hash"])
        assert decisions.get_decision(stored["decision_id"]) == stored
    assert decisions.count_decisions(DecisionFilter(rule_id="RT-040")) == 2
    assert decisions.verify_chain() == []


def test_a_writer_with_a_stale_chain_head_cannot_fork_the_chain(db, make_decision):
    # prev_hash has no unique index: seq, the primary key, is what refuses a second decision
    # claiming the same predecessor.
    import peewee as pw

    from storage.decisions import append
    from storage.decisions.append import chain_hash_text

    first = decisions.append_decision(make_decision(1))
    decisions.append_decision(make_decision(2))
    (late,) = decisions.prepare_decisions([make_decision(3)])
    stale = (2, *late.row, first["hash"], chain_hash_text(late.canonical, first["hash"]))
    with pytest.raises(pw.IntegrityError), db.atomic():
        Decision.insert_many([stale], fields=list(append._COLUMNS)).execute()
    assert Decision.select().count() == 2
    assert decisions.verify_chain() == []


# A decision stored before record formats existed (format 1), its hash as that code computed
# it: verification must go on accepting it, and the chain on growing after it.
FORMAT_1_HASH = "fb06cad30ad1c3d8383896c7d0d95024a291a005cd966aeed4162f67923aadbc"


def format_1_row(record: dict) -> dict:
    """The Decision columns of `record` as code before formats stored it (no format, no via)."""
    return {
        "seq": 1,
        **{k: record[k] for k in ("decision_id", "kind", "customer_id", "as_of", "requested_by")},
        **{
            k: JSONText(canonical_json(record[k])) for k in ("outcome", "reasons", "fired", "facts")
        },
        "ruleset_kind": "reminder",
        "ruleset_version": 1,
        "ruleset_sha256": "ab" * 32,
        "created_at": record["created_at"].replace(tzinfo=None),
        "engine_us": record["engine_us"],
        "prev_hash": GENESIS_HASH,
        "hash": FORMAT_1_HASH,
    }


def test_a_decision_of_format_2_still_verifies_and_the_chain_grows_after_it(db, make_decision):
    """Format 4 added `earlier`: rows written as format 2 (no `earlier` member, the column
    NULL) read back without it and verify; a new decision chains after them with it."""
    later = ("earlier", "explanation", "arm")
    record = {k: v for k, v in make_decision(1).items() if k not in later}
    row = {**format_1_row(record), "via": "api", "format": 2}
    row["hash"] = chain_hash({**record, "format": 2}, GENESIS_HASH)
    Decision.insert(**row).execute()
    old = decisions.get_decision("dec-1")
    assert old["format"] == 2 and "earlier" not in old
    assert old["hash"] == chain_hash(hashed(old), GENESIS_HASH)
    ref = {"kind": "handoff", "version": 3, "sha256": "cd" * 32, "decision_id": "d-9"}
    new = decisions.append_decision(make_decision(2, earlier=[{**ref, "facts": ["a_b"]}]))
    assert new["prev_hash"] == old["hash"] and new["earlier"][0]["decision_id"] == "d-9"
    assert decisions.get_decision("dec-2") == new
    assert decisions.verify_chain() == []
    # `earlier` is signed like any other member: altering it is found.
    db.execute_sql('UPDATE "decision" SET "earlier" = \'[]\' WHERE "seq" = 2')
    assert [p.seq for p in decisions.verify_chain()] == [2]


def test_a_decision_of_format_4_still_verifies_after_format_3_added_explanation(db, make_decision):
    """Format 4 (`earlier`) was written before format 3 (`explanation`): a format-4 row reads
    back with `earlier` and without `explanation`, verifies, and the chain grows after it with
    rows of the formats after it (3, then 5), which carry both."""
    record = {k: v for k, v in make_decision(1).items() if k not in ("explanation", "arm")}
    ref = {"kind": "handoff", "version": 1, "sha256": "cd" * 32, "decision_id": None}
    record["earlier"] = [{**ref, "facts": ["handoff_action"]}]
    row = {**format_1_row(record), "via": "api", "format": 4}
    row["earlier"] = JSONText(canonical_json(record["earlier"]))
    row["hash"] = chain_hash({**record, "format": 4}, GENESIS_HASH)
    Decision.insert(**row).execute()
    old = decisions.get_decision("dec-1")
    assert old["format"] == 4 and "explanation" not in old and old["earlier"] == record["earlier"]
    assert old["hash"] == chain_hash(hashed(old), GENESIS_HASH)
    new = decisions.append_decision(make_decision(2))
    assert new["format"] == decisions.FORMAT == 5 and new["earlier"] == []
    assert new["explanation"] == "Firm reminder by email: reason 2 (rule RT-040)."
    assert decisions.get_decision("dec-2") == new
    assert decisions.verify_chain() == []
    # The explanation is signed: rewording it is found; relabelling the row as format 4
    # (which has no explanation) is found too.
    db.execute_sql('UPDATE "decision" SET "explanation" = \'Approved.\' WHERE "seq" = 2')
    assert [p.seq for p in decisions.verify_chain()] == [2]
    db.execute_sql(
        'UPDATE "decision" SET "explanation" = \'Firm reminder by email: reason 2 (rule '
        'RT-040).\', "format" = 4 WHERE "seq" = 2'
    )
    assert [p.seq for p in decisions.verify_chain()] == [2]


def test_a_decision_of_format_4_still_verifies_and_arm_is_signed_from_format_5(db, make_decision):
    """Format 5 added `arm`: a row written as format 4 (no `arm` member, its columns NULL) reads
    back without it and verifies; a decision under an experiment records its arm, in two
    columns, signed like the rest."""
    record = {k: v for k, v in make_decision(1).items() if k not in ("arm", "explanation")}
    row = {**format_1_row(record), "via": "api", "format": 4, "earlier": JSONText("[]")}
    row["hash"] = chain_hash({**record, "format": 4}, GENESIS_HASH)
    Decision.insert(**row).execute()
    old = decisions.get_decision("dec-1")
    assert old["format"] == 4 and "arm" not in old and old["earlier"] == []
    arm = {"name": "challenger", "experiment": 3}
    new = decisions.append_decision(make_decision(2, arm=arm))
    plain = decisions.append_decision(make_decision(3))
    assert (new["format"], new["arm"], plain["arm"]) == (5, arm, None)
    assert decisions.get_decision("dec-2") == new
    assert Decision.get(Decision.seq == 2).experiment_id == 3
    assert decisions.verify_chain() == []
    db.execute_sql('UPDATE "decision" SET "arm" = \'champion\' WHERE "seq" = 2')
    assert [p.seq for p in decisions.verify_chain()] == [2]


@pytest.mark.parametrize(
    "arm",
    [
        {"name": "control", "experiment": 1},
        {"name": "challenger", "experiment": "1"},
        {"name": "challenger", "experiment": 0},
        {"name": "challenger"},
        "challenger",
    ],
)
def test_a_bad_arm_is_refused_naming_it(db, make_decision, arm):
    with pytest.raises(InvalidRecord) as caught:
        decisions.append_decision(make_decision(1, arm=arm))
    assert caught.value.field == "arm"


def test_a_decision_hashed_before_formats_existed_still_verifies(db, make_decision):
    Decision.insert(**format_1_row(make_decision(1)), format=1, via=None).execute()
    old = decisions.get_decision("dec-1")
    assert "format" not in old and "via" not in old  # format 1: the twelve SPEC §5 fields
    assert old["hash"] == chain_hash(hashed(old), GENESIS_HASH) == FORMAT_1_HASH
    new = decisions.append_decision(make_decision(2))
    assert new["prev_hash"] == FORMAT_1_HASH and new["format"] == decisions.FORMAT
    assert decisions.verify_chain() == []
    # The format is signed: relabelling a row's format is an alteration like any other.
    db.execute_sql('UPDATE "decision" SET "format" = 1 WHERE "seq" = 2')
    assert [(p.seq, "altered" in p.problem) for p in decisions.verify_chain()] == [(2, True)]
    db.execute_sql('UPDATE "decision" SET "format" = 7 WHERE "seq" = 2')
    assert "unknown record format 7" in decisions.verify_chain()[0].problem


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"created_at": datetime(2024, 1, 1)}, "created_at"),
        ({"as_of": "2024-01-01"}, "as_of"),
        ({"decision_id": ""}, "decision_id"),
        ({"facts": {"x": float("nan")}}, "facts"),
        ({"ruleset": {"kind": "reminder"}}, "ruleset"),
        ({"engine_us": -1}, "engine_us"),
        ({"engine_us": 2**63}, "engine_us"),
        ({"via": "web"}, "via"),
        ({"via": None}, "via"),
        ({"customer_id": "C\x001"}, "customer_id"),
        ({"requested_by": "\ud800"}, "requested_by"),
        ({"reasons": ["lone \udc00 surrogate"]}, "reasons"),
        ({"facts": {"x": Decimal("1"), "y": "\ud800"}}, "facts"),
        ({"fired": [{"name": "no id"}]}, "fired"),
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
    assert [(p.seq, p.decision_id, p.kind) for p in problems] == [
        (3, "dec-3", "altered"),
        (5, "dec-5", "altered"),
        (7, None, "deleted"),
    ]
    assert "decision #7 is missing" in str(problems[2])
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
    assert [(p.seq, p.decision_id, p.kind) for p in problems] == [
        (2, "dec-3", "reordered"),
        (3, "dec-2", "reordered"),
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=0, max_value=2**63 - 1))
def test_the_shortcut_encoding_of_scalars_writes_exactly_the_canonical_json(text, number):
    """What the hash signs must not depend on which encoder wrote a field."""
    from storage.decisions.shape import Count, Text

    try:
        expected = canonical_json_plain(text)
        expected.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(InvalidRecord):
            Text(10**6, empty=True).encode("x", text, {})
        return
    if "\x00" not in text:
        assert Text(10**6, empty=True).encode("x", text, {})[1] == expected
    assert Count().encode("n", number, {})[1] == canonical_json_plain(number)


def test_appends_on_a_live_connection_go_on_after_hundreds_of_other_connections(db, make_decision):
    # Regression: the PostgreSQL append once kept which connections had prepared its
    # statement, and forgot them all after 257 connections, live ones too: the next PREPARE
    # on a live connection failed ("already exists") and so did every later append on it.
    import threading

    decisions.append_decision(make_decision(1))  # this thread's connection stays open
    errors = []

    def others() -> None:
        try:
            for n in range(2, 262):
                with db.connection_context():  # a connection of its own each time
                    decisions.append_decision(make_decision(n))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=others)
    thread.start()
    thread.join()
    assert errors == []
    assert decisions.append_decision(make_decision(262))["seq"] == 262
    assert decisions.verify_chain() == []
