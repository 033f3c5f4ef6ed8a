"""`credo audit verify|anchor` and GET /v1/audit/verify|anchor: real decisions, tampered with in
SQL, each kind of tampering caught with the right seq and id (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from api_support import complete_facts
from click.testing import CliRunner

from api.cli.main import main
from engine.trace import chain_hash

COUNT = 8


@pytest.fixture
def stored(client, auth) -> list[dict]:
    """COUNT credit decisions made through the API, as stored (seq 1 to COUNT)."""
    made = []
    for n in range(COUNT):
        body = {"facts": complete_facts(requested_amount=f"{1000 + n}.00")}
        response = client.post("/v1/decisions/credit", json=body, headers=auth("decide"))
        assert response.status_code == 201, response.json
        made.append(response.json)
    assert [d["seq"] for d in made] == list(range(1, COUNT + 1))
    return made


@pytest.fixture
def credo(database_url):
    def invoke(*args: str, **env: str):
        return CliRunner().invoke(
            main, ["audit", *args], env={"CREDO_DATABASE_URL": database_url, **env}
        )

    return invoke


def sql(db, text: str, params: tuple = ()) -> None:
    with db.atomic():
        db.execute_sql(text.replace("?", db.param), params)


def found(result) -> list[tuple]:
    return [(p["seq"], p["decision_id"], p["kind"]) for p in json.loads(result.stdout)["problems"]]


def test_an_intact_chain_verifies_with_its_count_and_head(db, stored, credo):
    result = credo("verify", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["ok"] and answer["count"] == COUNT and answer["problems"] == []
    assert answer["head"] == {"seq": COUNT, "hash": stored[-1]["hash"]}
    text = credo("verify")
    assert text.exit_code == 0 and f"{COUNT} decisions checked (#1–#{COUNT})" in text.stdout
    assert text.stdout.rstrip().endswith("OK: the chain holds")
    ranged = json.loads(credo("verify", "--from", "3", "--to", "5", "--json").stdout)
    assert (ranged["from"], ranged["to"], ranged["count"]) == (3, 5, 3)


def test_a_changed_outcome_and_edited_facts_are_altered_rows(db, stored, credo):
    sql(db, "UPDATE decision SET outcome = ? WHERE seq = 2", ('{"decision":"approve"}',))
    sql(db, "UPDATE decision SET facts = replace(facts, '\"DE\"', '\"FR\"') WHERE seq = 6")
    result = credo("verify", "--json")
    assert result.exit_code == 1
    assert found(result) == [
        (2, stored[1]["decision_id"], "altered"),
        (6, stored[5]["decision_id"], "altered"),
    ]
    text = credo("verify").stdout
    assert f"decision #2 ({stored[1]['decision_id']}): altered: its contents hash to" in text
    assert text.rstrip().endswith("BROKEN: the chain does not hold")


def test_a_deleted_row_is_named_by_its_seq(db, stored, credo):
    sql(db, "DELETE FROM decision WHERE seq = 4")
    result = credo("verify", "--json")
    assert result.exit_code == 1 and found(result) == [(4, None, "deleted")]
    assert "decision #4 is missing (deleted)" in credo("verify").stdout


def test_a_row_altered_and_rehashed_breaks_the_next_link(db, stored, credo):
    record = {k: v for k, v in stored[2].items() if k not in ("seq", "prev_hash", "hash")}
    record["outcome"] = {**record["outcome"], "decision": "approve"}
    forged = chain_hash(record, stored[2]["prev_hash"])
    sql(
        db,
        "UPDATE decision SET outcome = ?, hash = ? WHERE seq = 3",
        (json.dumps(record["outcome"], sort_keys=True, separators=(",", ":")), forged),
    )
    result = credo("verify", "--json")
    assert found(result) == [(4, stored[3]["decision_id"], "deleted")]
    assert "decision #3 was altered and its hash recomputed" in result.stdout


@pytest.mark.parametrize(("a", "b"), [(3, 6), (4, 5), (7, 8)])
def test_two_swapped_rows_are_both_reordered(db, stored, credo, a, b):
    sql(db, "DELETE FROM decision_tag")
    sql(db, "UPDATE decision SET seq = -1 WHERE seq = ?", (a,))
    sql(db, "UPDATE decision SET seq = ? WHERE seq = ?", (a, b))
    sql(db, "UPDATE decision SET seq = ? WHERE seq = -1", (b,))
    result = credo("verify", "--json")
    assert result.exit_code == 1
    assert found(result) == [
        (a, stored[b - 1]["decision_id"], "reordered"),
        (b, stored[a - 1]["decision_id"], "reordered"),
    ]


def _insert_forged(db, stored: list[dict], after: int, linked: bool) -> str:
    """Renumber the decisions after seq `after` one up and put a forged one in the gap, chained
    to `after` with a correct hash (`linked`) or with a made-up prev_hash."""
    from storage.models import Decision

    sql(db, "DELETE FROM decision_tag")
    sql(db, "UPDATE decision SET seq = -seq WHERE seq > ?", (after,))
    sql(db, "UPDATE decision SET seq = 1 - seq WHERE seq < 0")
    source = stored[after - 1]
    record = {k: v for k, v in source.items() if k not in ("seq", "prev_hash", "hash")}
    record["decision_id"] = "forged-1"
    prev = source["hash"] if linked else "ab" * 32
    columns = [f.column_name for f in Decision._meta.sorted_fields]
    chosen = {
        "seq": str(after + 1),
        "decision_id": "'forged-1'",
        "prev_hash": f"'{prev}'",
        "hash": f"'{chain_hash(record, prev)}'",
    }
    picked = ", ".join(chosen.get(c, f'"{c}"') for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    sql(db, f"INSERT INTO decision ({names}) SELECT {picked} FROM decision WHERE seq = {after}")
    return "forged-1"


@pytest.mark.parametrize("linked", [True, False])
def test_an_inserted_row_is_named_and_nothing_else(db, stored, credo, linked):
    forged = _insert_forged(db, stored, 4, linked)
    result = credo("verify", "--json")
    assert result.exit_code == 1
    assert found(result) == [(5, forged, "inserted")]
    assert "not in the chain: decision #6 is chained to #4" in result.stdout


def test_a_truncated_tail_is_caught_only_with_an_anchor(db, stored, credo, tmp_path):
    anchor_file = tmp_path / "anchor.json"
    anchored = credo("anchor", "--output", str(anchor_file), "--json")
    assert anchored.exit_code == 0, anchored.output
    anchor = json.loads(anchor_file.read_text())
    assert json.loads(anchored.stdout) == anchor
    assert (anchor["seq"], anchor["hash"]) == (COUNT, stored[-1]["hash"])
    assert credo("verify", "--anchor", str(anchor_file)).exit_code == 0
    sql(db, f"DELETE FROM decision WHERE seq > {COUNT - 2}")
    assert credo("verify").exit_code == 0  # a shorter chain holds by itself
    result = credo("verify", "--anchor", str(anchor_file), "--json")
    assert result.exit_code == 1
    check = json.loads(result.stdout)["anchor"]
    assert not check["ok"] and check["problem"].startswith(
        f"truncated: the chain ends at decision #{COUNT - 2}, but the anchor"
    )
    assert f"decisions #{COUNT - 1}–#{COUNT} were removed" in check["problem"]


def test_an_anchor_whose_hash_differs_is_a_rewritten_chain(db, stored, credo, tmp_path):
    anchor_file = tmp_path / "anchor.json"
    anchor_file.write_text(json.dumps({"seq": 3, "hash": "0" * 63 + "1", "time": "then"}))
    result = credo("verify", "--anchor", str(anchor_file))
    assert result.exit_code == 1 and "the chain was rewritten" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "0"), "a seq number must be from 1"),
        (("--from", "99999999999999999999999"), "a seq number must be from 1"),
        (("--to", "2024-02-30"), "2024-02-30 is not a date that exists"),
        (("--to", "9999-12-31"), "a date must be from 1900-01-01 to 2199-12-31"),
        (("--from", "=1+1"), "expected a seq number or a date"),
        (("--from", "5", "--to", "2"), "the range ends before it starts"),
    ],
)
def test_bad_ranges_exit_2_naming_the_option(db, stored, credo, args, message):
    result = credo("verify", *args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "anchor: not JSON"),
        ('{"seq": -1, "hash": "x"}', "anchor_seq: expected a whole number"),
        ('{"seq": 1, "hash": "XYZ"}', "anchor_hash: expected 64 lowercase"),
        ('{"seq": 1e400, "hash": "x"}', "anchor_seq"),
        ("[1, 2]", "expected an object with seq and hash"),
    ],
)
def test_a_bad_anchor_file_exits_2(db, stored, credo, tmp_path, content, message):
    path = tmp_path / "anchor.json"
    path.write_text(content)
    result = credo("verify", "--anchor", str(path))
    assert result.exit_code == 2 and message in result.output
    missing = credo("verify", "--anchor", str(tmp_path / "none.json"))
    assert missing.exit_code == 2


def test_a_run_report_is_an_anchor(db, stored, credo, tmp_path):
    from api.audit_chain import read_anchor

    run_json = {"run_id": "r", "report": {"chain_head": {"seq": 2, "hash": stored[1]["hash"]}}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json))
    assert read_anchor(path.read_text()).seq == 2
    assert credo("verify", "--anchor", str(path)).exit_code == 0


def test_the_operator_log_is_verified_beside_the_decisions(db, stored, credo, client, auth):
    """`credo audit verify` and GET /v1/audit/verify check the whole operator log too and report
    it apart: an altered event fails the verification (exit 1, ok false) with the decisions
    still holding, and says which of the two does not hold."""
    from storage.audit_log import iter_events, log_head

    auditor = auth("auditor")
    events, head = log_head()
    first = next(iter_events())
    assert events > 0  # the keys the requests were made with
    intact = json.loads(credo("verify", "--json").stdout)
    assert intact["operator_log"] == {
        "ok": True,
        "events": events,
        "head": {"seq": events, "hash": head},
        "problems": [],
    }
    assert credo("verify").stdout.splitlines()[-2:] == [
        f"operator log OK: {events} events, head #{events} {head}",
        "OK: the chain holds",
    ]
    sql(db, "UPDATE audit_event SET actor = 'someone else' WHERE seq = 1")
    result = credo("verify", "--json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert not answer["ok"] and answer["problems"] == [] and answer["count"] == COUNT
    assert not answer["operator_log"]["ok"]
    assert [(p["seq"], p["kind"]) for p in answer["operator_log"]["problems"]] == [
        (1, first["kind"])
    ]
    ranged = credo("verify", "--from", "2", "--to", "3", "--json")
    assert ranged.exit_code == 1  # a range narrows the decisions; the log is checked whole
    text = credo("verify")
    assert text.exit_code == 1
    assert text.stdout.splitlines()[-3:] == [
        "operator log BROKEN: 1 problem",
        f"  event #1 ({first['kind']}): hash does not match the event's contents: "
        "the event was altered",
        "BROKEN: the chain holds, but the operator log does not",
    ]
    over_http = client.get("/v1/audit/verify", headers=auditor)
    assert over_http.status_code == 200 and over_http.json == answer
    sql(db, "UPDATE decision SET reasons = '[]' WHERE seq = 2")
    both = credo("verify")
    assert both.exit_code == 1
    assert both.stdout.rstrip().endswith("BROKEN: the chain does not hold")
