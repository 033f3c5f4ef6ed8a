"""`credo audit prune` behind a checkpoint, rows of every record format verifying, and the
chain head recorded by every run report (an anchor)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from api_support import complete_facts
from click.testing import CliRunner

from api.cli.main import main
from engine.trace import GENESIS_HASH, chain_hash


@pytest.fixture
def credo(database_url):
    def invoke(*args: str, **env: str):
        full = {"CREDO_DATABASE_URL": database_url, "CREDO_RUN_WORKERS": "1", **env}
        return CliRunner().invoke(main, list(args), env=full)

    return invoke


def _record(n: int, created: datetime) -> dict:
    return {
        "decision_id": f"old-{n}",
        "kind": "credit",
        "customer_id": f"C{n}",
        "as_of": created.date(),
        "outcome": {"decision": "approve", "terms_days": 30},
        "reasons": [f"reason {n}"],
        "fired": [{"id": "CR-1", "name": "n", "priority": 1, "reason": "r", "then": {}, "set": {}}],
        "ruleset": {"kind": "credit", "version": 1, "sha256": "ab" * 32},
        "facts": {"open_balance": "10.00"},
        "requested_by": "test",
        "created_at": created,
        "engine_us": 12,
        "via": "run",
        "earlier": [],
        "explanation": f"Approved on 30 days: reason {n} (rule CR-1).",
        "arm": None,
    }


@pytest.fixture
def old_then_new(db, client, auth) -> None:
    """Six decisions of January 2020 (seq 1–6), then three made today through the API."""
    from storage.decisions import append_decisions

    append_decisions([_record(n, datetime(2020, 1, n, 9, tzinfo=UTC)) for n in range(1, 7)])
    for _ in range(3):
        body = {"facts": complete_facts()}
        assert client.post("/v1/decisions/credit", json=body, headers=auth("decide")).status_code
    return None


def test_prune_refuses_without_a_retention_setting(old_then_new, credo):
    result = credo("audit", "prune", "--before", "2020-01-04", "--yes")
    assert result.exit_code == 2
    assert "pruning is off: set audit.retention_days" in result.output


def test_prune_never_deletes_decisions_newer_than_the_retention(old_then_new, credo):
    today = datetime.now(UTC).date()
    result = credo("audit", "prune", "--before", today.isoformat(), CREDO_AUDIT_RETENTION_DAYS="30")
    assert result.exit_code == 2
    assert f"the date must be {today - timedelta(days=30)} or earlier" in result.output


def test_prune_writes_a_checkpoint_and_verify_starts_from_it(old_then_new, credo, db):
    from storage.decisions import get_decision

    third = get_decision("old-3")
    keep = {"CREDO_AUDIT_RETENTION_DAYS": "30"}
    dry = credo("audit", "prune", "--before", "2020-01-04", **keep)
    assert dry.exit_code == 0 and "would delete 3 decisions (up to #3)" in dry.output
    assert get_decision("old-1") is not None
    done = credo("audit", "prune", "--before", "2020-01-04", "--yes", "--json", **keep)
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["pruned"] == 3 and result["checkpoint"]["seq"] == 3
    assert result["checkpoint"]["hash"] == third["hash"]
    assert get_decision("old-3") is None and get_decision("old-4") is not None
    verified = credo("audit", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    answer = json.loads(verified.output)
    assert (answer["from"], answer["count"], answer["checkpoint"]["seq"]) == (4, 6, 3)
    assert "starts at the retention checkpoint: decision #3" in credo("audit", "verify").output
    refused = credo("audit", "verify", "--from", "2")
    assert refused.exit_code == 2 and "decisions up to #3 were pruned" in refused.output
    with db.atomic():
        db.execute_sql("DELETE FROM decision WHERE seq = 4")
    broken = credo("audit", "verify", "--json")
    assert broken.exit_code == 1
    assert [(p["seq"], p["kind"]) for p in json.loads(broken.output)["problems"]] == [
        (4, "deleted")
    ]


def test_prune_refuses_to_delete_a_part_that_does_not_verify(old_then_new, credo, db):
    with db.atomic():
        db.execute_sql("UPDATE decision SET reasons = '[]' WHERE seq = 2")
    keep = {"CREDO_AUDIT_RETENTION_DAYS": "1"}
    result = credo("audit", "prune", "--before", "2020-01-04", "--yes", **keep)
    assert result.exit_code == 1
    assert "do not verify; nothing deleted" in result.output and "decision #2" in result.output
    from storage.models import Decision

    assert Decision.select().count() == 9


def _store_old_format(fmt: int, n: int) -> None:
    """A decision stored as credo stored it in record format `fmt` (1: no format, via,
    earlier, explanation or arm; 2: no earlier, explanation or arm; 4: no explanation or arm;
    3: no arm), chained after the head."""
    from storage.db import insert_rows
    from storage.decisions import chain_head, prepare_decisions, shape
    from storage.decisions.append import _COLUMNS
    from storage.models import Decision

    (prepared,) = prepare_decisions([_record(n, datetime(2021, 1, n, tzinfo=UTC))])
    dropped = {
        1: ("format", "via", "earlier", "explanation", "arm"),
        2: ("earlier", "explanation", "arm"),
        4: ("explanation", "arm"),
        3: ("arm",),
    }[fmt]
    record = {k: v for k, v in prepared.record.items() if k not in dropped}
    if fmt != 1:
        record["format"] = fmt
    row = dict(zip([c.name for c in shape.COLUMNS], prepared.row, strict=True))
    row.update(format=fmt, arm=None, experiment_id=None)
    row.update({"explanation": None} if "explanation" in dropped else {})
    row.update({"earlier": None} if "earlier" in dropped else {})
    row.update({"via": None} if fmt == 1 else {})
    seq, prev = chain_head()
    values = (seq + 1, *row.values(), prev, chain_hash(record, prev))
    insert_rows(Decision, _COLUMNS, [values])


def test_rows_of_every_record_format_verify_and_each_is_checked(db, client, auth, credo):
    from storage.decisions import get_decision

    old = (1, 2, 4, 3)  # every format before today's, in the order they were introduced
    for n, fmt in enumerate(old, 1):
        _store_old_format(fmt, n)
    client.post("/v1/decisions/credit", json={"facts": complete_facts()}, headers=auth("decide"))
    formats = [get_decision(f"old-{n}").get("format", 1) for n in range(1, 5)]
    assert formats == list(old) and get_decision("old-1")["prev_hash"] == GENESIS_HASH
    assert "explanation" not in get_decision("old-3") and "arm" not in get_decision("old-4")
    result = credo("audit", "verify", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["count"] == 5
    for seq in (1, 2, 3, 4, 5):
        with db.atomic():
            db.execute_sql(f"UPDATE decision SET requested_by = 'someone' WHERE seq = {seq}")
    problems = json.loads(credo("audit", "verify", "--json").output)["problems"]
    assert [(p["seq"], p["kind"]) for p in problems] == [(s, "altered") for s in range(1, 6)]


def test_a_run_report_records_the_chain_head_and_serves_as_an_anchor(
    db, customer, credo, tmp_path, caplog
):
    from storage.decisions import chain_head

    as_of = (date(2024, 5, 1)).isoformat()
    with caplog.at_level("INFO", logger="credo.audit"):
        ran = credo("run", "--as-of", as_of, "--json")
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.stdout)
    head = run["report"]["chain_head"]
    assert (head["seq"], head["hash"]) == chain_head() and head["seq"] > 0 and head["time"]
    assert any(f"hash={head['hash']}" in r.getMessage() for r in caplog.records)
    text = credo("run", "--as-of", as_of, "--force")
    assert "chain head (keep it as an anchor): decision #" in text.output
    report = tmp_path / "run.json"
    report.write_text(ran.stdout)
    assert credo("audit", "verify", "--anchor", str(report)).exit_code == 0
    with db.atomic():
        db.execute_sql(f"DELETE FROM decision WHERE seq > {head['seq'] - 1}")
    cut = credo("audit", "verify", "--anchor", str(report))
    assert cut.exit_code == 1 and "truncated" in cut.output


def test_a_prune_is_an_operator_log_event_stored_with_it(old_then_new, credo, db):
    """`chain.pruned` in the operator log: the checkpoint's seq and hash, the cut, the count
    and who pruned; none for a dry run; and no prune at all when the event cannot be stored."""
    import peewee as pw

    from storage.db import is_postgres
    from storage.decisions import get_decision, retention

    def pruned_events() -> list[dict]:
        out = credo("audit", "log", "--kind", "chain", "--json")
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)

    keep = {"CREDO_AUDIT_RETENTION_DAYS": "30"}
    assert credo("audit", "prune", "--before", "2020-01-03", **keep).exit_code == 0
    assert pruned_events() == []  # saying what would go is no prune
    second = get_decision("old-2")
    done = credo("audit", "prune", "--before", "2020-01-03", "--yes", "--json", **keep)
    assert done.exit_code == 0, done.output
    checkpoint = json.loads(done.output)["checkpoint"]
    (event,) = pruned_events()
    assert (event["kind"], event["actor"]) == ("chain.pruned", "credo audit prune")
    assert event["details"] == {
        "seq": 2,
        "hash": second["hash"],
        "before": "2020-01-03T00:00:00+00:00",
        "pruned": 2,
    }
    assert event["at"] == checkpoint["recorded_at"]
    assert credo("audit", "log", "--verify").exit_code == 0

    # The event and the deletion are one transaction: an operator log that refuses the event
    # (a trigger, as a full disk or a lost connection would) leaves every decision in place.
    if is_postgres(db):
        db.execute_sql(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'the log refuses'; END $$ LANGUAGE plpgsql"
        )
        db.execute_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    else:
        db.execute_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'the log refuses'); END"
        )
    with pytest.raises(pw.DatabaseError, match="the log refuses"):
        retention.prune_through(4, datetime(2020, 1, 5, tzinfo=UTC), "test")
    assert get_decision("old-3") is not None and get_decision("old-4") is not None
    assert retention.latest_checkpoint().seq == 2
